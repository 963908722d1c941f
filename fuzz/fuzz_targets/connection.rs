//! Arbitrary sequences of inputs, commands and timeouts against a Connection: no panic, and invariants hold.
#![no_main]

use std::time::Duration;

use bytes::{Buf, Bytes};
use libfuzzer_sys::fuzz_target;
use nats_proto::{Action, Config, Connection, Credentials, Event, Instant, ServerAddr, State, WriteBuffer};

const SCRIPT: &[&[u8]] = &[
    b"INFO {\"server_id\":\"s\",\"headers\":true,\"max_payload\":1024,\"proto\":1}\r\n",
    b"PONG\r\n",
    b"PING\r\n",
    b"MSG a 1 2\r\nhi\r\n",
    b"HMSG _INBOX.x.1 2 16 16\r\nNATS/1.0 503\r\n\r\n\r\n",
    b"-ERR 'Authorization Violation'\r\n",
    b"-ERR 'Permissions Violation for Subscription to \"a\"'\r\n",
    b"INFO {\"connect_urls\":[\"127.0.0.1:1\",\"127.0.0.1:2\"],\"ldm\":true}\r\n",
    b"+OK\r\n",
];

fuzz_target!(|data: &[u8]| {
    // Virtual time, not zero: a deadline before the start would show rather than saturate at the origin.
    let start = Instant::from_nanos(1_000_000_000_000);
    let mut now = start;
    let mut config = Config::new(vec![ServerAddr::parse("127.0.0.1:4222").unwrap()]);
    config.retry_on_initial_connect = true;
    config.reconnect_buffer_size = 256;
    // Half the inputs make their credentials with a callback: the core then asks for them
    // (`Action::Credentials`) and op 13 answers, at any point, late or twice.
    if data.len() % 2 == 1 {
        config.auth.callback = Some(std::sync::Arc::new(|_: Option<&str>| Ok(Credentials::default())));
    }
    let mut conn = Connection::new(config, now);
    let mut wire = WriteBuffer::new();
    let mut bytes = data.iter();
    let mut flushes = 0;
    let mut last_ask = 0u64;
    while let Some(&op) = bytes.next() {
        let arg = bytes.next().copied().unwrap_or(0);
        match op % 16 {
            0 => conn.handle_connected(now),
            1 => conn.handle_input(now, SCRIPT[usize::from(arg) % SCRIPT.len()]),
            2 => {
                let n = usize::from(arg).min(bytes.as_slice().len());
                let raw: Vec<u8> = bytes.by_ref().take(n).copied().collect();
                conn.handle_input(now, &raw);
            }
            3 => conn.handle_eof(now),
            4 => {
                now += Duration::from_millis(u64::from(arg) * 50);
                conn.handle_timeout(now);
            }
            5 => drop(conn.publish("a.b", None, None, Bytes::from(vec![0u8; usize::from(arg) * 8]))),
            6 => drop(conn.subscribe(if arg % 2 == 0 { "a" } else { "a.>" }, None)),
            7 => drop(conn.unsubscribe(u64::from(arg % 4), (arg > 128).then_some(u64::from(arg % 3)))),
            8 => drop(conn.request(now, "svc", None, Bytes::new(), Some(Duration::from_millis(u64::from(arg) * 10)))),
            9 => {
                flushes += 1;
                drop(conn.flush(now, Some(Duration::from_secs(1))));
            }
            10 => drop(conn.drain(now)),
            11 if arg == 0 => conn.close(),
            12 => conn.handle_tls_ready(now),
            13 => {
                let answer = if arg % 4 == 0 { Err("unreadable".to_owned()) } else { Ok(Credentials::default()) };
                // The latest ask, or a stale one.
                conn.handle_credentials(now, last_ask.saturating_sub(u64::from(arg % 3 == 1)), answer);
            }
            _ => {
                conn.poll_transmit(&mut wire);
                wire.advance(wire.remaining());
            }
        }
        while let Some(action) = conn.poll_action() {
            match action {
                Action::Dial(_) => assert_ne!(conn.state(), State::Closed, "a closed connection never dials"),
                Action::Credentials { ask, .. } => {
                    assert!(conn.config().auth.callback.is_some(), "credentials are asked for only with a callback");
                    assert!(ask > last_ask, "each ask has a new number");
                    last_ask = ask;
                }
                _ => {}
            }
        }
        while let Some(event) = conn.poll_event() {
            if let Event::Message(m) = &event {
                assert!(m.payload().len() <= 4096);
            }
        }
        if let Some(t) = conn.poll_timeout() {
            // Deadlines are never in the past relative to the start.
            assert!(t >= start);
        }
        if conn.state() == State::Closed {
            assert_eq!(conn.subscription_count(), 0);
            assert_eq!(conn.requests_in_flight(), 0);
            assert_eq!(conn.reconnect_buffer_len(), 0);
        }
        assert!(conn.reconnect_buffer_len() <= 256 + 6 * flushes, "reconnect buffer bounded");
    }
});
