//! The server sends what a client must survive without losing the connection (or, for a size it must refuse,
//! survives by reconnecting): a permissions violation, a malformed header block, an oversized announced size,
//! lenient framing, INFO updates announcing servers and lame duck mode.

use std::time::{Duration, Instant};

use conformance::{wait_event, Finish as _, TestClient, TestSubscription as _};
use nats_client::seam::Subscription as _;
use nats_client::{Error, Event};
use nats_proto::{ClientOp, Config, ConnectionError, HeaderError, ParseErrorKind, ServerErrorKind};
use nats_server_harness::fake::{msg, server_info, FakeServer, STEP};

use crate::{largest_allocation, options, payload_of, MAX_PAYLOAD};

// ---- 8. a permissions violation for a subscription ----

pub(crate) fn subscription_permission_violation_ends_the_subscription_not_the_connection<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        c.expect_sub("secret");
        let sid = c.expect_sub("public");
        c.send("-ERR 'Permissions Violation for Subscription to \"secret\"'\r\n");
        c.send(msg("public", sid, b"unaffected"));
        let ops = c.until_eof(STEP);
        assert!(
            ops.iter().any(|op| matches!(op, ClientOp::Pub(p) if p.subject == "public" && p.payload == "still up")),
            "the publish after the violation never reached the server: {ops:?}"
        );
    });
    let client = C::connect(options(server.url())).expect("connect");
    let events = client.events();
    let mut sub = client.subscribe("secret", None).expect("subscribe");
    let mut public = client.subscribe("public", None).expect("subscribe");
    match sub.next_timeout(STEP) {
        Err(Error::Permission(e)) => {
            assert_eq!(e.kind(), ServerErrorKind::PermissionsViolation);
            assert!(e.message().contains("\"secret\""), "{e:?}");
        }
        other => panic!("expected the refused subscription to end with Error::Permission, got {other:?}"),
    }
    let (event, _) = wait_event(&events, STEP, "ServerError", |e| matches!(e, Event::ServerError(_)));
    assert!(matches!(event, Event::ServerError(e) if e.kind() == ServerErrorKind::PermissionsViolation));
    // The other subscription is untouched: it gets its message, and has not ended.
    assert_eq!(payload_of(public.next_timeout(STEP)), b"unaffected");
    let more = public.next_timeout(Duration::from_millis(50));
    assert!(matches!(more, Err(Error::Timeout)), "the other subscription: {more:?}");

    // The connection is still up.
    client.publish("public", None, None, "still up".into()).expect("publish");
    client.flush().expect("flush after the violation");
    assert!(!client.is_closed());
    let later: Vec<Event> = events.try_iter().collect();
    assert!(!later.iter().any(|e| matches!(e, Event::Disconnected(_))), "disconnected: {later:?}");
    assert_eq!(client.statistics().reconnects, 0);
    // Unsubscribing the refused subscription is harmless.
    sub.unsubscribe().expect("unsubscribe an ended subscription");
    drop(sub);
    drop(public);
    drop(client);
    server.finish();
}

// ---- 9. a malformed header block ----

pub(crate) fn malformed_header_block_is_a_bad_message_and_the_next_message_arrives<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        let sid = c.expect_sub("a");
        // 12 bytes of "headers" that do not start with NATS/1.0, then a 5-byte payload.
        c.send(format!("HMSG a {sid} 12 17\r\nXATS/1.0\r\n\r\nhello\r\n"));
        c.send(msg("a", sid, b"good"));
        c.until_eof(STEP);
    });
    let client = C::connect(options(server.url())).expect("connect");
    let events = client.events();
    let mut sub = client.subscribe("a", None).expect("subscribe");

    assert_eq!(payload_of(sub.next_timeout(STEP)), b"good");
    let (event, before) = wait_event(&events, STEP, "BadMessage", |e| matches!(e, Event::BadMessage(_)));
    match event {
        Event::BadMessage(e) => assert_eq!(e.kind(), ParseErrorKind::InvalidHeaders(HeaderError::MissingVersion)),
        _ => unreachable!(),
    }
    assert!(!before.iter().any(|e| matches!(e, Event::Disconnected(_))), "disconnected: {before:?}");
    client.flush().expect("the connection survives a bad header block");
    assert!(sub.try_next().is_none(), "the bad message was delivered too");
    assert_eq!(client.statistics().reconnects, 0);
    drop(sub);
    drop(client);
    server.finish();
}

// ---- 10. an oversized announced size ----

pub(crate) fn oversized_announced_size_is_a_parse_error_not_an_allocation<C: TestClient>() {
    const SMALL: usize = 1024;
    const ANNOUNCED: usize = 999_999_999;
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.greet(&server_info(SMALL));
        let sid = c.expect_sub("a");
        c.send(format!("MSG a {sid} {ANNOUNCED}\r\nthe start of a very long payload"));
        c.until_eof(STEP);

        let mut c = s.accept();
        c.greet(&server_info(SMALL));
        let sid = c.expect_sub("a");
        c.send(msg("a", sid, b"small"));
        c.until_eof(STEP);
    });
    let client = C::connect(options(server.url())).expect("connect");
    assert_eq!(client.max_payload(), SMALL);
    let events = client.events();
    let mut sub = client.subscribe("a", None).expect("subscribe");

    let (event, _) = wait_event(&events, STEP, "Disconnected", |e| matches!(e, Event::Disconnected(_)));
    match event {
        Event::Disconnected(ConnectionError::Parse(e)) => {
            // The inbound cap is the larger of INFO `max_payload` and the configured floor (messages routed
            // from another server of a cluster may exceed this server's own limit); either way it is far
            // below the announced size.
            let limit = SMALL.max(Config::default().limits.max_payload);
            assert!(limit < ANNOUNCED);
            assert_eq!(e.kind(), ParseErrorKind::PayloadTooLarge { size: ANNOUNCED, limit })
        }
        other => panic!("expected Disconnected(Parse(PayloadTooLarge)), got {other:?}"),
    }
    wait_event(&events, STEP, "Reconnected", |e| matches!(e, Event::Reconnected(_)));
    assert_eq!(payload_of(sub.next_timeout(STEP)), b"small");
    let largest = largest_allocation();
    assert!(largest < 64 << 20, "an allocation of {largest} bytes was made (the announced size was refused)");
    drop(sub);
    drop(client);
    server.finish();
}

// ---- 11. lenient framing ----

pub(crate) fn lower_case_ops_tabs_and_bare_lf_are_accepted<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.send("info\t{\"server_id\":\"FAKE\",\"proto\":1,\"headers\":true,\"max_payload\":1048576}\n");
        c.expect("CONNECT", |op| matches!(op, ClientOp::Connect(_)));
        c.auto_pong = false;
        c.expect("the handshake PING", |op| *op == ClientOp::Ping);
        c.send("pong\n");
        c.auto_pong = true;
        let sid = c.expect_sub("a");
        c.send("+ok\n");
        c.send(format!("msg\ta \t{sid}\t5\nhello\r\n"));
        c.send(format!("Msg a\t{sid}  reply.to   3\nbye\r\n"));
        c.send(format!("hmsg a {sid}\t12 14\nNATS/1.0\r\n\r\nhi\r\n"));
        c.send("ping\n");
        c.expect("the PONG to a lower-case ping", |op| *op == ClientOp::Pong);
        c.until_eof(STEP);
    });
    let client = C::connect(options(server.url())).expect("connect with a lower-case handshake");
    let events = client.events();
    let mut sub = client.subscribe("a", None).expect("subscribe");

    // All three arrive (and wait together), then they are read in order.
    let deadline = Instant::now() + STEP;
    while sub.pending() < 3 {
        assert!(Instant::now() < deadline, "three messages did not arrive within {STEP:?}: {}", sub.pending());
        std::thread::sleep(Duration::from_millis(5));
    }
    let m = sub.next_timeout(STEP).expect("msg with tabs and a bare LF");
    assert_eq!((m.subject().as_str(), m.payload(), m.reply().is_none()), (Some("a"), &b"hello"[..], true));
    let m = sub.next_timeout(STEP).expect("mixed-case MSG with a reply");
    assert_eq!(m.reply().and_then(|r| r.as_str()), Some("reply.to"));
    assert_eq!(m.payload(), b"bye");
    let m = sub.next_timeout(STEP).expect("lower-case hmsg");
    assert!(m.headers().is_some());
    assert_eq!(m.payload(), b"hi");
    client.flush().expect("flush");
    let seen: Vec<Event> = events.try_iter().collect();
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Disconnected(_) | Event::BadMessage(_))),
        "lenient framing was not accepted: {seen:?}"
    );
    drop(sub);
    drop(client);
    server.finish();
}

// ---- 12. lame duck mode and discovered servers ----

pub(crate) fn async_info_reports_discovered_servers_and_lame_duck<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        c.expect_sub("a");
        let mut info = server_info(MAX_PAYLOAD);
        // Port 1 on loopback: nobody listens there, should the client ever try it.
        info.connect_urls = vec!["127.0.0.1:1".into()];
        c.send_info(&info);
        info.lame_duck_mode = true;
        c.send_info(&info);
        c.until_eof(STEP);
    });
    let client = C::connect(options(server.url())).expect("connect");
    let events = client.events();
    let _sub = client.subscribe("a", None).expect("subscribe");

    let (_, before) = wait_event(&events, STEP, "DiscoveredServers", |e| *e == Event::DiscoveredServers);
    assert!(before.is_empty(), "unexpected events: {before:?}");
    let (_, before) = wait_event(&events, STEP, "LameDuck", |e| *e == Event::LameDuck);
    assert!(before.is_empty(), "unexpected events: {before:?}");
    client.flush().expect("flush");
    let info = client.server_info().expect("server info");
    assert!(info.lame_duck_mode);
    assert_eq!(info.connect_urls, ["127.0.0.1:1"]);
    let later: Vec<Event> = events.try_iter().collect();
    assert!(later.is_empty(), "the same servers were announced twice, or the connection dropped: {later:?}");
    drop(client);
    server.finish();
}
