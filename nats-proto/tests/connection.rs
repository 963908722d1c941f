//! Connection state machine: the handshake (CONNECT contents, tolerated ops, failures, initial-connect retry
//! and backoff) and TLS negotiation.
//!
//! The other `connection_*` test files cover keep-alive and flush, subscriptions, the request mux, reconnect,
//! errors, drain, close and statistics. All share the harness in `common/mod.rs`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use nats_proto::{
    Action, Auth, ClientOp, CloseReason, ConnectionError, Credentials, Event, ReconnectPolicy, ServerError,
    ServerErrorKind, State,
};

#[test]
fn handshake_sends_connect_and_ping_then_reports_connected() {
    let mut p = Peer::new(config(&[URL]));
    assert_eq!(p.actions(), [Action::Dial(addr(URL))]);
    assert!(p.events().is_empty());
    assert_eq!(p.conn.state(), State::Dialing);
    assert!(!p.conn.is_connected());

    p.conn.handle_connected(p.now());
    assert_eq!(p.conn.state(), State::AwaitInfo);
    assert!(p.sent().is_empty(), "the client waits for INFO before writing");

    p.input(default_info());
    let ops = p.sent();
    let [ClientOp::Connect(c), ClientOp::Ping] = ops.as_slice() else { panic!("expected CONNECT + PING, got {ops:?}") };
    assert!(!c.verbose, "verbose must be off");
    assert!(!c.pedantic, "pedantic must be off");
    assert_eq!(c.protocol, 1);
    assert!(c.headers && c.no_responders, "INFO.headers is true: {c:?}");
    assert!(c.echo, "echo is on unless no_echo");
    assert!(!c.tls_required);
    assert_eq!(c.lang, "rust");
    assert_eq!((&c.user, &c.pass, &c.auth_token), (&None, &None, &None));
    assert_eq!(p.conn.state(), State::AwaitPong);
    assert!(p.events().is_empty(), "not connected before the PONG");

    p.input("PONG\r\n");
    assert_eq!(p.events(), [Event::Connected(addr(URL))]);
    assert_eq!(p.conn.state(), State::Connected);
    assert!(p.conn.is_connected());
    assert_eq!(p.conn.server_info().map(|i| i.server_id.as_str()), Some("S1"));
    assert_eq!(p.conn.current_server(), Some(&addr(URL)));
    assert!(p.sent().is_empty());
}

#[test]
fn connect_mirrors_info_headers_and_no_echo() {
    let mut cfg = config(&[URL]);
    cfg.no_echo = true;
    cfg.name = Some("tester".into());
    let mut p = Peer::new(cfg);
    let c = p.connect_info(&info_line(r#""headers":false,"max_payload":1048576"#));
    assert!(!c.headers && !c.no_responders, "INFO.headers is false: {c:?}");
    assert!(!c.echo, "no_echo asks for echo:false");
    assert_eq!(c.name.as_deref(), Some("tester"));
}

#[test]
fn no_echo_needs_protocol_one() {
    let mut cfg = config(&[URL]);
    cfg.no_echo = true;
    let mut p = Peer::new(cfg);
    p.drain();
    p.conn.handle_connected(p.now());
    p.input("INFO {\"server_id\":\"old\",\"proto\":0}\r\n");
    assert!(p.sent().is_empty(), "no CONNECT to a server that cannot honour echo:false");
    let events = p.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::ConnectFailed { error: ConnectionError::Incompatible(_), .. })),
        "{events:?}"
    );
}

#[test]
fn credentials_come_from_url_userinfo() {
    let mut p = Peer::new(config(&["nats://u:p@127.0.0.1:4222"]));
    p.drain();
    let c = p.connect_info(&default_info());
    assert_eq!((c.user.as_deref(), c.pass.as_deref(), c.auth_token.as_deref()), (Some("u"), Some("p"), None));

    let mut p = Peer::new(config(&["nats://tok@127.0.0.1:4222"]));
    p.drain();
    let c = p.connect_info(&default_info());
    assert_eq!((c.user.as_deref(), c.pass.as_deref(), c.auth_token.as_deref()), (None, None, Some("tok")));
}

#[test]
fn credentials_fall_back_to_config_auth() {
    let mut cfg = config(&[URL]);
    let mut auth = Auth::default();
    auth.token = Some("cfg-token".into());
    auth.user_password = Some(("cu".into(), "cp".into()));
    cfg.auth = auth;
    let mut p = Peer::new(cfg);
    p.drain();
    let c = p.connect_info(&default_info());
    assert_eq!(c.auth_token.as_deref(), Some("cfg-token"));
    assert_eq!((c.user.as_deref(), c.pass.as_deref()), (Some("cu"), Some("cp")));
    let shown = format!("{:?}", p.conn.config().auth);
    assert!(!shown.contains("cfg-token") && !shown.contains("cp\""), "secrets in Debug: {shown}");
}

#[test]
fn credentials_callback_gets_the_nonce_and_fills_connect() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = config(&[URL]);
    let mut auth = Auth::default();
    auth.token = Some("static".into());
    let log = seen.clone();
    auth.callback = Some(Arc::new(move |nonce: Option<&str>| {
        log.lock().unwrap().push(nonce.map(str::to_owned));
        let mut c = Credentials::default();
        c.jwt = Some("eyJ.jwt".into());
        c.nkey = Some("UPUBLIC".into());
        c.sig = Some(format!("signed:{}", nonce.unwrap_or("-")));
        Ok(c)
    }));
    cfg.auth = auth;
    let mut p = Peer::new(cfg);
    p.drain();
    let c = p.connect_info(&info_line(r#""nonce":"abc123""#));
    assert_eq!(c.jwt.as_deref(), Some("eyJ.jwt"));
    assert_eq!(c.nkey.as_deref(), Some("UPUBLIC"));
    assert_eq!(c.sig.as_deref(), Some("signed:abc123"));
    assert_eq!(c.auth_token.as_deref(), Some("static"), "fields the callback leaves unset keep the static ones");
    assert_eq!(*seen.lock().unwrap(), [Some("abc123".to_owned())]);
    let shown = format!("{c:?}");
    assert!(!shown.contains("signed:abc123"), "the signature is a secret: {shown}");

    // Without a nonce the callback still runs, with None.
    let mut p2 = Peer::new({
        let mut cfg = config(&[URL]);
        let log = seen.clone();
        let mut auth = Auth::default();
        auth.callback = Some(Arc::new(move |nonce: Option<&str>| {
            log.lock().unwrap().push(nonce.map(str::to_owned));
            Ok(Credentials::default())
        }));
        cfg.auth = auth;
        cfg
    });
    p2.events();
    let c = p2.connect_info(&default_info());
    assert_eq!((c.jwt, c.sig), (None, None));
    assert_eq!(seen.lock().unwrap().last(), Some(&None));
}

#[test]
fn credentials_are_made_by_the_driver_and_a_late_answer_is_ignored() {
    let called = Arc::new(Mutex::new(0));
    let mut cfg = config(&[URL]);
    cfg.retry_on_initial_connect = true;
    let mut auth = Auth::default();
    let count = called.clone();
    auth.callback = Some(Arc::new(move |_: Option<&str>| {
        *count.lock().unwrap() += 1;
        Ok(Credentials::default())
    }));
    cfg.auth = auth;
    let mut p = Peer::new(cfg);
    p.drain();
    let now = p.now();
    p.conn.handle_connected(now);
    // Fed directly (not through `Peer::input`, which answers as a driver would).
    p.conn.handle_input(now, info_line(r#""nonce":"n-1""#).as_bytes());
    assert_eq!(p.conn.state(), State::AwaitCredentials);
    assert_eq!(p.actions(), [Action::Credentials { nonce: Some("n-1".into()), ask: 1 }]);
    assert!(p.sent().is_empty(), "no CONNECT before the credentials");
    assert_eq!(*called.lock().unwrap(), 0, "the core never calls the callback itself");
    let mut c = Credentials::default();
    c.jwt = Some("eyJ.late".into());
    c.sig = Some("sig".into());
    p.conn.handle_credentials(p.now(), 1, Ok(c.clone()));
    match p.sent().as_slice() {
        [ClientOp::Connect(info), ClientOp::Ping] => assert_eq!(info.jwt.as_deref(), Some("eyJ.late")),
        other => panic!("expected CONNECT + PING, got {other:?}"),
    }
    p.conn.handle_credentials(p.now(), 1, Ok(c.clone()));
    assert!(p.sent().is_empty(), "a second answer is ignored");

    // An attempt whose credentials take longer than the connect timeout fails like any slow handshake, and
    // the answer that comes afterwards is ignored.
    p.eof();
    p.drain();
    p.advance_to_timeout();
    assert!(p.actions().iter().any(|a| matches!(a, Action::Dial(_))));
    p.conn.handle_connected(p.now());
    p.conn.handle_input(p.now(), default_info().as_bytes());
    assert_eq!(p.actions(), [Action::Credentials { nonce: None, ask: 2 }]);
    p.advance_to_timeout();
    assert_ne!(p.conn.state(), State::AwaitCredentials);
    let events = p.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::ConnectFailed { error: ConnectionError::ConnectTimeout, .. })),
        "{events:?}"
    );
    p.conn.handle_credentials(p.now(), 2, Ok(c.clone()));
    assert!(p.sent().is_empty(), "the answer for an attempt given up writes nothing");
    // The next attempt's wait does not take the previous attempt's answer (signed over another nonce).
    p.advance_to_timeout();
    p.conn.handle_connected(p.now());
    p.conn.handle_input(p.now(), info_line(r#""nonce":"n-3""#).as_bytes());
    assert_eq!(p.actions().last(), Some(&Action::Credentials { nonce: Some("n-3".into()), ask: 3 }));
    p.conn.handle_credentials(p.now(), 2, Ok(c.clone()));
    assert!(p.sent().is_empty(), "an answer to ask 2 is not taken by ask 3");
    assert_eq!(p.conn.state(), State::AwaitCredentials);
    p.conn.handle_credentials(p.now(), 3, Ok(c));
    assert!(matches!(p.sent().as_slice(), [ClientOp::Connect(_), ClientOp::Ping]));
}

#[test]
fn failing_credentials_callback_fails_the_attempt_with_backoff() {
    let mut cfg = config(&[URL]);
    cfg.retry_on_initial_connect = true;
    let mut auth = Auth::default();
    auth.callback = Some(Arc::new(|_: Option<&str>| Err("seed file unreadable".to_owned())));
    cfg.auth = auth;
    let mut p = Peer::new(cfg);
    p.drain();
    p.conn.handle_connected(p.now());
    p.input(default_info());
    assert!(!p.sent().iter().any(|op| matches!(op, ClientOp::Connect(_))), "no CONNECT without credentials");
    let events = p.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::ConnectFailed { error: ConnectionError::Credentials(why), .. } if why == "seed file unreadable"
        )),
        "{events:?}"
    );
    assert_eq!(p.conn.state(), State::Disconnected);
    // Each further failure waits longer: no tight loop.
    let mut waits = Vec::new();
    for _ in 0..4 {
        let retry = p.conn.poll_timeout().expect("a reconnect timer");
        waits.push(retry - p.now());
        p.advance(retry - p.now());
        assert!(p.actions().iter().any(|a| matches!(a, Action::Dial(_))), "the timer dials again");
        p.conn.handle_connected(p.now());
        p.input(default_info());
        assert_eq!(p.conn.state(), State::Disconnected);
    }
    assert!(waits[3] >= Duration::from_millis(100), "backoff grows: {waits:?}");
}

#[test]
fn ok_and_server_ping_during_handshake_are_tolerated() {
    let mut p = Peer::new(config(&[URL]));
    p.drain();
    p.connect_info(&default_info());
    p.input("+OK\r\nPING\r\n");
    assert_eq!(p.sent(), [ClientOp::Pong], "a PING during the handshake is answered");
    assert_eq!(p.conn.state(), State::AwaitPong);
    assert!(p.events().is_empty(), "+OK is not a PONG: {:?}", p.conn.state());
    p.input("+OK\r\nPONG\r\n");
    assert_eq!(p.events(), [Event::Connected(addr(URL))]);
    assert_eq!(p.conn.state(), State::Connected);
}

#[test]
fn handshake_survives_split_input() {
    let mut p = Peer::new(config(&[URL]));
    p.drain();
    p.conn.handle_connected(p.now());
    let info = default_info();
    let (a, b) = info.as_bytes().split_at(10);
    p.input(a);
    assert!(p.sent().is_empty());
    p.input(b);
    assert!(matches!(p.sent().as_slice(), [ClientOp::Connect(_), ClientOp::Ping]));
    p.input("PO");
    assert!(p.events().is_empty());
    p.input("NG\r\n");
    assert_eq!(p.events(), [Event::Connected(addr(URL))]);
}

#[test]
fn non_info_first_op_fails_with_expected_info() {
    let mut p = Peer::new(config(&[URL]));
    p.drain();
    p.conn.handle_connected(p.now());
    p.input("PONG\r\n");
    assert!(p.sent().is_empty());
    assert_eq!(p.actions(), [Action::CloseTransport]);
    assert_eq!(
        p.events(),
        [
            Event::ConnectFailed { server: addr(URL), error: ConnectionError::ExpectedInfo },
            Event::Closed(CloseReason::InitialConnectFailed(ConnectionError::ExpectedInfo)),
        ]
    );
    assert_eq!(p.conn.state(), State::Closed);
}

#[test]
fn connect_timeout_without_info() {
    let mut p = Peer::new(config(&[URL]));
    p.drain();
    p.conn.handle_connected(p.now());
    assert_eq!(p.timeout_in(), Some(Duration::from_secs(5)), "connect_timeout defaults to 5 s");
    p.advance(Duration::from_millis(4999));
    assert!(p.events().is_empty());
    assert_eq!(p.conn.state(), State::AwaitInfo);
    p.advance(Duration::from_millis(1));
    assert_eq!(p.actions(), [Action::CloseTransport]);
    assert_eq!(
        p.events(),
        [
            Event::ConnectFailed { server: addr(URL), error: ConnectionError::ConnectTimeout },
            Event::Closed(CloseReason::InitialConnectFailed(ConnectionError::ConnectTimeout)),
        ]
    );
    assert_eq!(p.conn.state(), State::Closed);
    assert_eq!(p.conn.poll_timeout(), None, "a closed connection has no timers");
}

#[test]
fn connect_timeout_covers_the_whole_handshake() {
    let mut p = Peer::new(config(&[URL]));
    p.drain();
    p.advance(Duration::from_secs(3));
    p.conn.handle_connected(p.now());
    p.input(default_info());
    p.sent();
    // Deadline is 5 s after the dial, not after INFO.
    p.advance(Duration::from_secs(2));
    let events = p.events();
    assert!(
        events.contains(&Event::ConnectFailed { server: addr(URL), error: ConnectionError::ConnectTimeout }),
        "{events:?}"
    );
}

#[test]
fn auth_violation_fails_the_initial_connect() {
    let mut p = Peer::new(config(&[URL]));
    p.drain();
    p.connect_info(&default_info());
    p.input("-ERR 'Authorization Violation'\r\n");
    let events = p.events();
    let err = ServerError::new("Authorization Violation");
    assert_eq!(err.kind(), ServerErrorKind::AuthorizationViolation);
    assert_eq!(p.actions(), [Action::CloseTransport]);
    assert_eq!(
        events,
        [
            Event::ServerError(err.clone()),
            Event::ConnectFailed { server: addr(URL), error: ConnectionError::Server(err.clone()) },
            Event::Closed(CloseReason::InitialConnectFailed(ConnectionError::Server(err))),
        ]
    );
    let Event::ConnectFailed { error: ConnectionError::Server(e), .. } = &events[1] else { unreachable!() };
    assert_eq!(e.kind(), ServerErrorKind::AuthorizationViolation);
    assert!(e.is_auth_error());
    assert_eq!(p.conn.state(), State::Closed);
}

#[test]
fn initial_connect_tries_each_server_once_without_retry() {
    let mut p = Peer::new(config(&[URL, URL2]));
    assert_eq!(p.actions(), [Action::Dial(addr(URL))]);
    assert!(p.events().is_empty());
    p.eof(); // the dial failed
    assert_eq!(p.events(), [Event::ConnectFailed { server: addr(URL), error: ConnectionError::TransportClosed }]);
    assert_eq!(p.actions(), [Action::CloseTransport]);
    p.advance_to_timeout();
    assert_eq!(p.actions(), [Action::Dial(addr(URL2))]);
    assert!(p.events().is_empty());
    p.eof();
    let events = p.events();
    assert_eq!(
        events.last(),
        Some(&Event::Closed(CloseReason::InitialConnectFailed(ConnectionError::TransportClosed)))
    );
    assert_eq!(p.conn.state(), State::Closed);
}

#[test]
fn retry_on_initial_connect_backs_off_between_failures() {
    let mut cfg = config(&[URL]);
    cfg.retry_on_initial_connect = true;
    let policy = ReconnectPolicy {
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(300),
        jitter: Duration::from_millis(10),
        ..ReconnectPolicy::default()
    };
    cfg.reconnect = policy.clone();
    let mut p = Peer::new(cfg);
    let mut waits = Vec::new();
    for attempt in 1..=6u32 {
        assert_eq!(p.actions(), [Action::Dial(addr(URL))], "attempt {attempt}");
        p.connect_info(&default_info());
        p.input("-ERR 'Authorization Violation'\r\n");
        let events = p.events();
        assert_eq!(p.actions(), [Action::CloseTransport], "attempt {attempt}");
        assert!(
            events.iter().any(|e| matches!(e, Event::ConnectFailed {
                error: ConnectionError::Server(s), ..
            } if s.kind() == ServerErrorKind::AuthorizationViolation)),
            "attempt {attempt}: {events:?}"
        );
        assert!(!events.iter().any(|e| matches!(e, Event::Closed(_))), "retry is on: {events:?}");
        assert_eq!(p.conn.servers().failed_attempts(&addr(URL)), Some(attempt));
        let wait = p.timeout_in().expect("a reconnect timer");
        assert!(wait > Duration::ZERO, "a failed attempt waits before the next dial");
        assert!(wait <= policy.max_delay + policy.jitter, "attempt {attempt}: {wait:?} over max + jitter");
        // No dial before the deadline, one at it.
        p.advance(wait - Duration::from_millis(1));
        assert!(p.events().is_empty(), "dialed early on attempt {attempt}");
        p.advance(Duration::from_millis(1));
        waits.push(wait);
    }
    // 50, 100, 200, then capped at 300 (each plus up to 10 ms of jitter).
    let floor = [50, 100, 200, 300, 300, 300];
    for (w, f) in waits.iter().zip(floor) {
        assert!(*w >= Duration::from_millis(f) && *w <= Duration::from_millis(f + 10), "{waits:?}");
    }
    assert!(waits.windows(2).take(3).all(|w| w[0] < w[1]), "backoff grows: {waits:?}");
}

#[test]
fn require_tls_fails_against_a_server_without_tls() {
    for (url, require) in [(URL, true), ("tls://127.0.0.1:4222", false)] {
        let mut cfg = config(&[url]);
        cfg.require_tls = require;
        let mut p = Peer::new(cfg);
        p.drain();
        p.conn.handle_connected(p.now());
        p.input(default_info());
        assert!(p.sent().is_empty(), "{url}: no CONNECT in clear text");
        assert_eq!(p.actions(), [Action::CloseTransport]);
        assert_eq!(
            p.events(),
            [
                Event::ConnectFailed { server: addr(url), error: ConnectionError::TlsUnavailable },
                Event::Closed(CloseReason::InitialConnectFailed(ConnectionError::TlsUnavailable)),
            ],
            "{url}"
        );
    }
}

#[test]
fn connect_deadline_covers_the_attempt_only() {
    let mut cfg = config(&[URL]);
    cfg.connect_timeout = Duration::from_secs(3);
    let mut p = Peer::new(cfg);
    p.drain();
    assert_eq!(p.conn.connect_deadline(), Some(p.now() + Duration::from_secs(3)), "set when the dial starts");
    p.conn.handle_connected(p.now());
    p.input(info_line(&format!("{INFO_FIELDS},\"tls_required\":true")));
    // A request with an earlier deadline moves poll_timeout, not the attempt's deadline.
    let _ = p.conn.request(p.now(), "svc", None, bytes::Bytes::new(), Some(Duration::from_millis(10)));
    assert_eq!(p.conn.poll_timeout(), Some(p.now() + Duration::from_millis(10)));
    assert_eq!(p.conn.connect_deadline(), Some(p.now() + Duration::from_secs(3)));
    p.conn.handle_tls_ready(p.now());
    p.sent();
    p.input("PONG\r\n");
    assert_eq!(p.conn.connect_deadline(), None, "cleared once connected");
}

#[test]
fn server_tls_required_starts_tls_before_connect() {
    let mut p = Peer::new(config(&[URL]));
    p.drain();
    p.conn.handle_connected(p.now());
    p.input(info_line(&format!("{INFO_FIELDS},\"tls_required\":true")));
    assert_eq!(p.actions(), [Action::StartTls(addr(URL))]);
    assert!(p.events().is_empty());
    assert_eq!(p.conn.state(), State::AwaitTls);
    assert!(p.sent().is_empty(), "CONNECT only after TLS is up");
    // The driver owns the socket for the handshake: not even a PONG may be written in plaintext now.
    p.input("PING\r\n");
    assert!(p.sent().is_empty(), "no plaintext PONG during the TLS handshake");
    assert_eq!(p.conn.transmit_len(), 0);

    p.conn.handle_tls_ready(p.now());
    let ops = p.sent();
    let [ClientOp::Connect(c), ClientOp::Ping] = ops.as_slice() else { panic!("{ops:?}") };
    assert!(c.tls_required, "CONNECT says the client is on TLS");
    p.input("PONG\r\n");
    assert_eq!(p.events(), [Event::Connected(addr(URL))]);
}

#[test]
fn require_tls_with_tls_available_upgrades() {
    let mut cfg = config(&[URL]);
    cfg.require_tls = true;
    let mut p = Peer::new(cfg);
    p.drain();
    p.conn.handle_connected(p.now());
    p.input(info_line(&format!("{INFO_FIELDS},\"tls_available\":true")));
    assert_eq!(p.actions(), [Action::StartTls(addr(URL))]);
    assert!(p.events().is_empty());
    assert!(p.sent().is_empty());
    p.conn.handle_tls_ready(p.now());
    assert!(matches!(p.sent().as_slice(), [ClientOp::Connect(c), ClientOp::Ping] if c.tls_required));
}

#[test]
fn tls_first_starts_tls_before_info() {
    let mut cfg = config(&[URL]);
    cfg.tls_first = true;
    let mut p = Peer::new(cfg);
    p.drain();
    p.conn.handle_connected(p.now());
    assert_eq!(p.actions(), [Action::StartTls(addr(URL))], "TLS right after the transport is up");
    assert!(p.events().is_empty(), "TLS right after the transport is up");
    assert_eq!(p.conn.state(), State::AwaitTls);
    assert!(p.sent().is_empty());

    p.conn.handle_tls_ready(p.now());
    assert_eq!(p.conn.state(), State::AwaitInfo);
    assert!(p.sent().is_empty(), "still waiting for INFO");

    p.input(info_line(&format!("{INFO_FIELDS},\"tls_required\":true")));
    assert!(p.actions().is_empty(), "no second StartTls");
    let ops = p.sent();
    assert!(matches!(ops.as_slice(), [ClientOp::Connect(c), ClientOp::Ping] if c.tls_required), "{ops:?}");
    p.input("PONG\r\n");
    assert_eq!(p.events(), [Event::Connected(addr(URL))]);
}

#[test]
fn no_servers_means_the_default_local_server() {
    let mut p = Peer::new(nats_proto::Config::default());
    assert_eq!(p.actions(), [Action::Dial(addr("nats://127.0.0.1:4222"))]);
    assert!(p.events().is_empty());
}

#[test]
fn retry_then_success_reports_connected_and_resets_the_backoff() {
    let mut cfg = config(&[URL]);
    cfg.retry_on_initial_connect = true;
    let mut p = Peer::new(cfg);
    for _ in 0..3 {
        p.drain();
        p.eof(); // dial failed
        p.drain();
        assert!(p.advance_to_timeout() > Duration::ZERO);
    }
    let events = p.handshake();
    assert!(events.contains(&Event::Connected(addr(URL))), "the first success is Connected: {events:?}");
    assert_eq!(p.conn.servers().failed_attempts(&addr(URL)), Some(0), "success clears the failure count");
    let s = p.conn.statistics();
    assert_eq!((s.connects, s.reconnects), (1, 0));
    // Consecutive failures restarted: the next loss reconnects at once.
    p.eof();
    p.drain();
    assert_eq!(p.timeout_in(), Some(Duration::ZERO));
}
