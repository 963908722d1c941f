//! The core over a WebSocket transport (`ws://`, `wss://`): TLS is the URL's, never INFO's, and servers
//! learned from INFO are reached the same way.

mod common;

use common::*;
use nats_proto::{Action, ClientOp, ConnectionError, Event, Scheme, State};

#[test]
fn ws_ignores_info_tls_flags_and_connects_in_plaintext() {
    let mut p = Peer::new(config(&["ws://127.0.0.1:8080"]));
    p.drain();
    p.conn.handle_connected(p.now());
    // The server's NATS port requires TLS; its WebSocket listener does not, and INFO says so for the former.
    p.input(info_line(&format!("{INFO_FIELDS},\"tls_required\":true")));
    assert!(p.actions().is_empty(), "no TLS upgrade inside a WebSocket");
    let ops = p.sent();
    let [ClientOp::Connect(c), ClientOp::Ping] = ops.as_slice() else { panic!("{ops:?}") };
    assert!(!c.tls_required);
    p.input("PONG\r\n");
    assert_eq!(p.events(), [Event::Connected(addr("ws://127.0.0.1:8080"))]);
}

#[test]
fn wss_is_tls_already_even_with_tls_first() {
    let mut cfg = config(&["wss://127.0.0.1"]);
    cfg.tls_first = true;
    cfg.require_tls = true;
    let mut p = Peer::new(cfg);
    p.drain();
    p.conn.handle_connected(p.now());
    assert!(p.actions().is_empty(), "the driver did TLS before the upgrade");
    assert_eq!(p.conn.state(), State::AwaitInfo);
    p.input(default_info());
    let ops = p.sent();
    let [ClientOp::Connect(c), ClientOp::Ping] = ops.as_slice() else { panic!("{ops:?}") };
    assert!(c.tls_required, "CONNECT says the client is on TLS");
}

#[test]
fn ws_with_require_tls_fails_the_attempt() {
    let mut cfg = config(&["ws://127.0.0.1:8080"]);
    cfg.require_tls = true;
    let mut p = Peer::new(cfg);
    p.drain();
    p.conn.handle_connected(p.now());
    p.input(info_line(&format!("{INFO_FIELDS},\"tls_available\":true")));
    assert!(p.sent().is_empty(), "no CONNECT in plaintext");
    let events = p.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::ConnectFailed { error: ConnectionError::TlsUnavailable, .. })),
        "{events:?}"
    );
}

#[test]
fn servers_learned_over_ws_are_dialed_over_ws() {
    let mut p = Peer::new(config(&["ws://127.0.0.1:8080/nats"]));
    p.drain();
    p.conn.handle_connected(p.now());
    p.input(info_line(&format!("{INFO_FIELDS},\"connect_urls\":[\"127.0.0.2:8081\"]")));
    p.sent();
    p.input("PONG\r\n");
    assert!(p.events().contains(&Event::DiscoveredServers));
    p.eof();
    // The next server is the learned one, reached by WebSocket at its own port and the configured path.
    let dial = loop {
        p.advance_to_timeout();
        if let Some(Action::Dial(a)) = p.actions().into_iter().find(|a| matches!(a, Action::Dial(_))) {
            if a.host() == "127.0.0.2" {
                break a;
            }
            p.conn.handle_transport_error(p.now(), ConnectionError::Unreachable("refused".into()));
        }
    };
    assert_eq!((dial.scheme(), dial.port(), dial.path()), (Scheme::Ws, 8081, "/nats"));
}
