//! Against a scripted fake WebSocket server (the harness's own implementation of the server side).

use std::time::{Duration, Instant};

use conformance::{wait_event, Finish as _, TestClient, TestSubscription as _};
use nats_client::{Error, Event};
use nats_proto::{ConnectionError, Headers, Msg, ServerOp};
use nats_server_harness::fake::{server_info, wire, Conn, FakeServer, STEP};
use nats_server_harness::fake_ws::ws_frame;

use crate::common::{recv, text, WAIT};
use crate::{is_disconnected, is_reconnected, ws_options, RECONNECT_WAIT};

const MAX_PAYLOAD: usize = 1 << 20;

/// The fake server's URL with the `ws` scheme.
fn ws_url(server: &FakeServer) -> String {
    server.url().replacen("nats://", "ws://", 1)
}

/// Upgrades (no masking allowed), sends INFO and completes the NATS handshake.
fn greet_ws(c: &mut Conn) {
    c.upgrade_websocket(true);
    c.greet(&server_info(MAX_PAYLOAD));
}

#[track_caller]
fn connect_fake<C: TestClient>(server: &FakeServer) -> C {
    C::connect(ws_options(&ws_url(server))).unwrap_or_else(|e| panic!("{}: connect to the fake: {e}", C::NAME))
}

/// Waits (bounded) until the script's connection has seen what `done` looks for in the client's frames.
fn wait_for_frames(c: &mut Conn, what: &str, done: impl Fn(&nats_server_harness::fake_ws::WsStats) -> bool) {
    let deadline = Instant::now() + STEP;
    while !done(&c.ws_stats()) {
        assert!(Instant::now() < deadline, "no {what} from the client: {:?}", c.ws_stats());
        // Reading is what makes the fake see frames; nothing else is expected meanwhile.
        let _ = c.recv(Duration::from_millis(20));
    }
}

/// A MSG and an HMSG, each sent split in two frames at every byte offset (and once in one-byte frames, as one
/// fragmented message): a frame boundary is never an op boundary.
pub(crate) fn every_op_split_at_every_byte_across_frames_arrives_whole<C: TestClient>() {
    let mut headers = Headers::new();
    headers.insert("K", "v").unwrap();
    let ops = [
        wire(&ServerOp::Msg(Msg::new("split.a", 1, Some(&b"reply.x"[..]), None, "hello, frames"))),
        wire(&ServerOp::Msg(Msg::new("split.a", 1, None, Some(&headers.to_block()), "with headers"))),
    ];
    let total: usize = ops.iter().map(|op| op.len() + 1).sum::<usize>() + ops.len();
    let script_ops = ops.clone();
    let server = FakeServer::start(move |s| {
        let mut c = s.accept();
        c.upgrade_websocket(true);
        // Even INFO comes a byte a frame.
        c.set_ws_frames(1, false);
        c.greet(&server_info(MAX_PAYLOAD));
        c.expect_sub("split.a");
        for op in &script_ops {
            for cut in 0..=op.len() {
                c.send_unframed([ws_frame(2, true, &op[..cut]), ws_frame(2, true, &op[cut..])].concat());
            }
            c.set_ws_frames(1, true);
            c.send(op);
        }
        s.wait_signal();
    });
    let client: C = connect_fake(&server);
    let mut sub = client.subscribe("split.a", None).unwrap();
    let mut got = 0;
    for (i, op) in ops.iter().enumerate() {
        for n in 0..=op.len() + 1 {
            let msg = recv(&mut sub, &format!("op {i}, split {n}"));
            if i == 0 {
                assert_eq!(
                    (text(&msg).as_str(), msg.reply().map(|r| r.as_str().unwrap())),
                    ("hello, frames", Some("reply.x"))
                );
            } else {
                assert_eq!(text(&msg), "with headers");
                assert_eq!(msg.headers().and_then(|h| h.get("K")), Some("v"));
            }
            got += 1;
        }
    }
    assert_eq!(got, total);
    assert!(sub.try_next().is_none());
    server.signal();
    server.finish();
}

/// A ping is answered with a pong carrying its payload; a message fragmented into a text frame and
/// continuations, with a ping between fragments, is one stream of bytes.
pub(crate) fn pings_are_answered_and_fragmented_messages_reassembled<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        greet_ws(&mut c);
        c.expect_sub("frag");
        c.send_frame(9, true, b"are you there");
        wait_for_frames(&mut c, "pong", |st| !st.pongs.is_empty());
        assert_eq!(c.ws_stats().pongs, [b"are you there".to_vec()]);
        let op = wire(&ServerOp::Msg(Msg::new("frag", 1, None, None, "fragmented payload")));
        let (a, rest) = op.split_at(5);
        let (b, tail) = rest.split_at(10);
        c.send_unframed(
            [ws_frame(1, false, a), ws_frame(9, true, b"mid"), ws_frame(0, false, b), ws_frame(0, true, tail)].concat(),
        );
        wait_for_frames(&mut c, "second pong", |st| st.pongs.len() == 2);
        s.wait_signal();
    });
    let client: C = connect_fake(&server);
    let mut sub = client.subscribe("frag", None).unwrap();
    assert_eq!(text(&recv(&mut sub, "the fragmented message")), "fragmented payload");
    client.flush().unwrap();
    server.signal();
    server.finish();
}

/// nats-server's `Nats-No-Masking`: asked by default and honoured only when echoed; never asked with
/// `websocket_always_mask`. The fake checks every client frame's mask bit against what was agreed.
pub(crate) fn frames_are_unmasked_only_when_the_server_agreed<C: TestClient>() {
    for (allow, always_mask) in [(true, false), (false, false), (true, true)] {
        let server = FakeServer::start(move |s| {
            let mut c = s.accept();
            let request = c.upgrade_websocket(allow);
            assert_eq!(request.header("Nats-No-Masking").is_some(), !always_mask);
            assert_eq!(request.header("X-Test"), Some("yes"), "configured headers go with the upgrade");
            assert!(request.request_line.starts_with("GET /some/path "), "{}", request.request_line);
            c.greet(&server_info(MAX_PAYLOAD));
            c.expect_sub("m");
            c.send(wire(&ServerOp::Msg(Msg::new("m", 1, None, None, "ack"))));
            c.until_eof(STEP);
            assert!(c.ws_stats().data_frames >= 2);
        });
        let mut options = ws_options(&format!("{}/some/path", ws_url(&server))).websocket_header("X-Test", "yes");
        if always_mask {
            options = options.websocket_always_mask();
        }
        let client: C = C::connect(options).unwrap();
        let mut sub = client.subscribe("m", None).unwrap();
        client.publish("m.other", None, None, vec![1u8; 100_000].into()).unwrap();
        assert_eq!(text(&recv(&mut sub, "the reply")), "ack");
        client.close();
        server.finish();
    }
}

/// A close frame with a code and a reason: the connection is lost with a WebSocket error naming both, and the
/// client reconnects.
pub(crate) fn a_close_frame_ends_the_connection_with_its_code_and_reason<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        greet_ws(&mut c);
        s.wait_signal();
        let mut close = 1008u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"policy says no");
        c.send_frame(8, true, &close);
        let mut again = s.accept();
        greet_ws(&mut again);
        again.until_eof(STEP * 2);
    });
    let client: C = connect_fake(&server);
    let events = client.events();
    server.signal();
    let (lost, _) = wait_event(&events, WAIT, "Disconnected", is_disconnected);
    match lost {
        Event::Disconnected(ConnectionError::WebSocket(why)) => {
            assert!(why.contains("1008") && why.contains("policy says no"), "{why}")
        }
        other => panic!("expected a websocket close, got {other:?}"),
    }
    wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    client.close();
    server.finish();
}

/// Frames that break RFC 6455, one per connection: each loses the connection with a typed WebSocket error
/// (never a panic or a hang), and the client reconnects for the next.
pub(crate) fn malformed_frames_are_typed_errors_then_the_client_reconnects<C: TestClient>() {
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (vec![0xC2, 0x00], "reserved bit"),
        (vec![0x83, 0x00], "opcode"),
        (vec![0x82, 0x81, 1, 2, 3, 4, b'x'], "masked"),
        (ws_frame(0, true, b"x"), "continuation"),
        ([ws_frame(2, false, b"a"), ws_frame(2, true, b"b")].concat(), "inside a fragmented"),
        (vec![0x89, 126, 0, 200], "control frame"),
        (vec![0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0], "63 bits"),
        (ws_frame(8, true, b"x"), "one byte"),
    ];
    let count = bad.len();
    let frames: Vec<Vec<u8>> = bad.iter().map(|(f, _)| f.clone()).collect();
    let server = FakeServer::start(move |s| {
        for frame in &frames {
            let mut c = s.accept();
            greet_ws(&mut c);
            s.wait_signal();
            // Protocol bytes first: what precedes a broken frame is still delivered.
            c.send(wire(&ServerOp::Msg(Msg::new("bad", 1, None, None, "last word"))));
            c.send_unframed(frame);
            c.until_eof(STEP);
        }
        let mut last = s.accept();
        greet_ws(&mut last);
        last.until_eof(STEP * 2);
    });
    let client: C = connect_fake(&server);
    let events = client.events();
    let mut sub = client.subscribe("bad", None).unwrap();
    for (_, what) in &bad {
        server.signal();
        assert_eq!(text(&recv(&mut sub, "the message before the broken frame")), "last word");
        let (lost, _) = wait_event(&events, WAIT, "Disconnected", is_disconnected);
        match lost {
            Event::Disconnected(ConnectionError::WebSocket(why)) => assert!(why.contains(what), "{why} for {what}"),
            other => panic!("expected a websocket error for {what}, got {other:?}"),
        }
        wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    }
    assert_eq!(client.statistics().reconnects as usize, count);
    client.close();
    server.finish();
}

/// An upgrade answered with 403, and one with the wrong accept key: `connect` fails with a WebSocket error.
pub(crate) fn a_refused_upgrade_fails_connect_with_a_typed_error<C: TestClient>() {
    let responses = [
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_owned(),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n\r\n"
            .to_owned(),
    ];
    for (response, expected) in responses.into_iter().zip(["403 Forbidden", "Sec-WebSocket-Accept"]) {
        let server = FakeServer::start(move |s| {
            let mut c = s.accept();
            c.read_upgrade_request();
            c.send_unframed(response.as_bytes());
        });
        let started = Instant::now();
        let result = C::connect(ws_options(&ws_url(&server)).max_reconnects(Some(1)));
        match result {
            Err(Error::Connect(ConnectionError::WebSocket(why))) => assert!(why.contains(expected), "{why}"),
            other => panic!("expected a websocket connect error, got {:?}", other.err()),
        }
        assert!(started.elapsed() < WAIT);
        server.finish();
    }
}
