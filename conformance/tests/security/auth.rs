//! Authentication by token, user and password, and nkey (in options and in URLs, and with TLS), seeds that
//! are no seeds, and the backoff after refused credentials.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conformance::TestClient;
use nats_client::Event;
use nats_proto::{ConnectionError, ReconnectPolicy};
use nats_server_harness::auth::{NkeyUser, OperatorFixture};
use nats_server_harness::tls::{ServerTls, TlsFixture};
use nats_server_harness::NatsServer;

use crate::common::{event_recorder, free_port, options, wait_recorded, WAIT};
use crate::support::{
    connect_fails, corrupt, is_connect_failed, must_connect, nowhere, options_failure, refused, round_trip, start,
    trusting, BOTH,
};

pub(crate) fn token_authentication<C: TestClient>() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).token("t0ken-s3cret"));
        let port = server.port();
        assert!(server.fetch_info().unwrap().contains("\"auth_required\":true"));
        let client: C = must_connect(options(&server.url()).token("t0ken-s3cret"), &server, "token option");
        round_trip(&client, &format!("token{version:?}"));
        let in_url = format!("nats://t0ken-s3cret@127.0.0.1:{port}");
        let client: C = must_connect(options(&in_url), &server, "token in the URL");
        round_trip(&client, &format!("tokenurl{version:?}"));
        // The URL's token wins over the option, either way round.
        let client: C = must_connect(options(&in_url).token("wrong"), &server, "URL token over option");
        round_trip(&client, &format!("tokenwins{version:?}"));
        let wrong_url = format!("nats://wrong@127.0.0.1:{port}");
        refused::<C>(options(&wrong_url).token("t0ken-s3cret"), "wrong token in the URL, right option");

        refused::<C>(options(&server.url()).token("wrong"), "wrong token");
        refused::<C>(options(&server.url()), "no token");
        refused::<C>(options(&wrong_url), "wrong token in the URL");
    }
}

pub(crate) fn user_and_password_authentication<C: TestClient>() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).user_password("alice", "p4ss-w0rd"));
        let port = server.port();
        let opts = options(&server.url()).user_and_password("alice", "p4ss-w0rd");
        let client: C = must_connect(opts, &server, "option");
        round_trip(&client, &format!("userpass{version:?}"));
        let in_url = format!("nats://alice:p4ss-w0rd@127.0.0.1:{port}");
        let (callback, events) = event_recorder();
        let client: C = must_connect(options(&in_url).event_callback(callback), &server, "userinfo in the URL");
        round_trip(&client, &format!("userpassurl{version:?}"));
        // Events name the server without its credentials.
        let (connected, _) = wait_recorded(&events, WAIT, "Connected", |e| matches!(e, Event::Connected(_)));
        assert_eq!(connected, Event::Connected(server.url()), "{version:?}");
        // The URL's credentials win over the options', either way round.
        let opts = options(&in_url).user_and_password("alice", "wrong");
        let client: C = must_connect(opts, &server, "URL userinfo over option");
        round_trip(&client, &format!("userpasswins{version:?}"));
        let opts = options(&format!("nats://alice:wrong@127.0.0.1:{port}")).user_and_password("alice", "p4ss-w0rd");
        refused::<C>(opts, "wrong URL, right options");

        refused::<C>(options(&server.url()).user_and_password("alice", "wrong"), "wrong password");
        refused::<C>(options(&server.url()).user_and_password("bob", "p4ss-w0rd"), "wrong user");
        refused::<C>(options(&server.url()), "no credentials");
        // Refused for a password in the URL: neither the error nor the event shows it.
        let bad_url = format!("nats://alice:wr0ng-url-pass@127.0.0.1:{port}");
        let e = refused::<C>(options(&bad_url), "wrong password in the URL");
        assert!(!format!("{e:?} {e}").contains("wr0ng-url-pass"));
        let (_, _, events) = connect_fails::<C>(options(&bad_url), "wrong password in the URL, events");
        let failed = events.iter().find(|e| is_connect_failed(e)).expect("a ConnectFailed");
        assert!(!format!("{failed:?}").contains("wr0ng-url-pass"), "{failed:?}");
        assert!(matches!(failed, Event::ConnectFailed { server: s, .. } if *s == server.url()), "{failed:?}");
    }
}

pub(crate) fn tls_and_credentials_combine<C: TestClient>() {
    let fixture = TlsFixture::new();
    let operator = OperatorFixture::new();
    let alice = operator.user("alice").unwrap();
    for version in BOTH {
        // A password in a tls:// URL.
        let server = start(
            NatsServer::builder()
                .version(version)
                .tls(ServerTls::from_fixture(&fixture))
                .user_password("alice", "p4ss-w0rd"),
        );
        let in_url = format!("tls://alice:p4ss-w0rd@127.0.0.1:{}", server.port());
        let client: C = must_connect(trusting(&in_url, &fixture), &server, "TLS + userinfo");
        round_trip(&client, &format!("tlsuser{version:?}"));
        let opts = trusting(&server.tls_url(), &fixture).user_and_password("alice", "no");
        refused::<C>(opts, "TLS + wrong password");

        // A user JWT.
        let server =
            start(NatsServer::builder().version(version).operator(&operator).tls(ServerTls::from_fixture(&fixture)));
        let opts = trusting(&server.tls_url(), &fixture).credentials(&alice.creds());
        let client: C = must_connect(opts, &server, "TLS + JWT");
        round_trip(&client, &format!("tlsjwt{version:?}"));
        refused::<C>(trusting(&server.url(), &fixture), "TLS without credentials");
    }

    // TLS first: the INFO carrying the nonce arrives over TLS.
    let user = NkeyUser::generate();
    let server = start(
        NatsServer::builder().nkey_user(user.public_key()).tls(ServerTls::from_fixture(&fixture).handshake_first(true)),
    );
    let opts = trusting(&server.tls_url(), &fixture).tls_first().nkey(user.seed());
    let client: C = must_connect(opts, &server, "TLS first + nkey");
    round_trip(&client, "tlsnkey");
}

pub(crate) fn nkey_authentication<C: TestClient>() {
    for version in BOTH {
        let user = NkeyUser::generate();
        let server = start(NatsServer::builder().version(version).nkey_user(user.public_key()));
        let client: C = must_connect(options(&server.url()).nkey(user.seed()), &server, "nkey");
        round_trip(&client, &format!("nkey{version:?}"));

        let stranger = NkeyUser::generate();
        refused::<C>(options(&server.url()).nkey(stranger.seed()), "an unknown nkey");
        refused::<C>(options(&server.url()), "no nkey");
    }
}

pub(crate) fn a_bad_nkey_seed_fails_connect_at_once_without_showing_the_seed<C: TestClient>() {
    let user = NkeyUser::generate();
    // Seeds with their checksum broken (at the end, in the middle) and garbage; nothing is listening, so only the
    // options can fail.
    let mut broken = user.seed().to_owned();
    let last = broken.pop().unwrap();
    broken.push(if last == 'A' { 'B' } else { 'A' });
    let corrupted = corrupt(user.seed());
    let url = format!("nats://127.0.0.1:{}", free_port());
    for seed in [broken.as_str(), corrupted.as_str(), "SUnot-a-seed-at-all", ""] {
        let opts = options(&url).nkey(seed);
        assert!(seed.is_empty() || !format!("{opts:?}").contains(seed));
        let msg = options_failure::<C>(opts, &format!("bad seed {seed:?}"));
        assert!(msg.contains("seed"), "{msg}");
        if !seed.is_empty() {
            assert!(!msg.contains(seed) && !msg.contains(&seed[..12]), "the error shows the seed: {msg}");
        }
    }
    // Not a seed at all, and a public key where the seed belongs.
    for not_a_seed in ["not a seed", user.public_key()] {
        let msg = options_failure::<C>(nowhere().nkey(not_a_seed), &format!("{not_a_seed:?} as a seed"));
        assert!(msg.contains("seed"), "{msg}");
    }
    // A JWT with a bad seed: the same.
    let operator = OperatorFixture::new();
    let alice = operator.user("alice").unwrap();
    for bad in [broken.as_str(), corrupted.as_str()] {
        let msg = options_failure::<C>(nowhere().jwt(alice.jwt(), bad), "jwt with a bad seed");
        assert!(msg.contains("seed"), "{msg}");
        assert!(!msg.contains(bad) && !msg.contains(&bad[..12]), "{msg}");
    }
    let msg = options_failure::<C>(nowhere().jwt(alice.jwt(), "SUbad"), "jwt with a bad seed");
    assert!(msg.contains("seed"), "{msg}");
}

/// With the default backoff, refused credentials are retried (`retry_on_initial_connect`), but not in a loop.
pub(crate) fn retry_on_initial_connect_with_refused_credentials_backs_off<C: TestClient>() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).token("right"));
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let record = attempts.clone();
        let started = Instant::now();
        let opts = options(&server.url())
            .token("wrong")
            .reconnect_policy(ReconnectPolicy::default())
            .retry_on_initial_connect()
            .event_callback(move |e| {
                if let Event::ConnectFailed { error, .. } = e {
                    record.lock().unwrap().push(error);
                }
            });
        let client = C::connect(opts).expect("with retry_on_initial_connect, connect returns at once");
        assert!(started.elapsed() < Duration::from_secs(1), "{version:?}: connect blocked");
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!client.is_closed(), "{version:?}: the client gave up");
        let attempts = attempts.lock().unwrap().clone();
        // Default backoff (50 ms doubling, plus jitter): about six attempts in 1.5 s. A loop without backoff
        // would make hundreds.
        assert!(attempts.len() >= 2, "{version:?}: no retry after the refusal: {attempts:?}");
        assert!(attempts.len() < 15, "{version:?}: {} attempts in 1.5 s: no backoff", attempts.len());
        for e in &attempts {
            assert!(matches!(e, ConnectionError::Server(s) if s.is_auth_error()), "{version:?}: {e:?}");
        }
        client.close();
    }
}

/// With a 100 ms doubling backoff and no jitter, refused credentials are retried at about 0, 0.1, 0.3, 0.7
/// and 1.5 s, and never connect.
pub(crate) fn refused_credentials_with_retry_on_initial_connect_back_off<C: TestClient>() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).token("right"));
        let (callback, recorded) = event_recorder();
        let policy = ReconnectPolicy {
            max_attempts_per_server: None,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            jitter: Duration::ZERO,
        };
        let opts = options(&server.url())
            .token("wrong")
            .retry_on_initial_connect()
            .reconnect_policy(policy)
            .event_callback(callback);
        let started = Instant::now();
        let client = C::connect(opts).expect("retry_on_initial_connect returns at once");
        assert!(started.elapsed() < Duration::from_secs(1), "{version:?}: connect waited {:?}", started.elapsed());
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!client.is_closed(), "{version:?}: the client keeps trying");
        let events: Vec<Event> = recorded.try_iter().collect();
        let failures: Vec<&ConnectionError> = events
            .iter()
            .filter_map(|e| match e {
                Event::ConnectFailed { error, .. } => Some(error),
                _ => None,
            })
            .collect();
        for error in &failures {
            assert!(
                matches!(error, ConnectionError::Server(e) if e.is_auth_error()),
                "{version:?}: every attempt is refused for its credentials: {error:?}"
            );
        }
        // A loop without backoff would make hundreds.
        assert!((2..=6).contains(&failures.len()), "{version:?}: {} attempts in 1.5 s: {events:?}", failures.len());
        assert!(!events.iter().any(|e| matches!(e, Event::Connected(_))), "{version:?}");
        client.close();
    }
}
