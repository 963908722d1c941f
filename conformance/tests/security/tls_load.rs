//! Bytes through the TLS layer: payloads far larger than a TLS record, bursts of small messages, concurrent
//! publishers and readers on one session, and what is buffered at a close.

use std::time::Duration;

use conformance::{TestClient, TestSubscription};
use nats_client::seam::Subscription as _;
use nats_client::PendingLimits;
use nats_server_harness::tls::{ServerTls, TlsFixture};
use nats_server_harness::{NatsServer, ServerVersion};

use crate::common::{recv, serve, text};
use crate::support::{must_connect, pattern, start, tls_server, trusting, BOTH};

pub(crate) fn tls_carries_large_payloads_and_bursts_complete_and_in_order<C: TestClient>() {
    const BURST: usize = 20_000;
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server =
            start(NatsServer::builder().version(version).max_payload(8 << 20).tls(ServerTls::from_fixture(&fixture)));
        let client: C = must_connect(trusting(&server.tls_url(), &fixture), &server, "large payloads");
        assert!(client.max_payload() >= 8 << 20, "{version:?}: max_payload {}", client.max_payload());

        // Much larger than a TLS record (16 KiB) and than the reader's 64 KiB buffers, both ways.
        let mut big = client.subscribe("sec.big", None).unwrap();
        let sizes = [1 << 20, (1 << 20) - 1, 4 << 20, 16 * 1024 + 1, 0];
        for (i, &len) in sizes.iter().enumerate() {
            client.publish("sec.big", None, None, pattern(len, i as u8).into()).unwrap();
        }
        for (i, &len) in sizes.iter().enumerate() {
            let msg = recv(&mut big, "a large message over TLS");
            assert_eq!(msg.payload().len(), len, "{version:?}: message {i}");
            assert!(
                msg.payload() == &pattern(len, i as u8)[..],
                "{version:?}: message {i} ({len} bytes) was corrupted"
            );
        }

        // An echo service: a 1 MiB request and a 1 MiB reply on the same TLS connection.
        let _echo = serve(client.subscribe("sec.echo", None).unwrap(), |m| drop(m.respond(m.payload_bytes())));
        client.flush().unwrap();
        let payload = pattern(1 << 20, 42);
        let reply = client.request_default("sec.echo", None, (&payload).into()).unwrap();
        assert!(reply.payload() == &payload[..], "{version:?}: the echoed 1 MiB payload differs");

        // A burst of small messages: many in one TLS record, records split across reads.
        let mut burst = client.subscribe("sec.burst", None).unwrap();
        client.flush().unwrap();
        for i in 0..BURST {
            client.publish("sec.burst", None, None, i.to_string().into()).unwrap();
        }
        client.flush().unwrap();
        for i in 0..BURST {
            let msg = recv(&mut burst, "a burst message over TLS");
            assert_eq!(text(&msg), i.to_string(), "{version:?}: burst message out of order or lost");
        }
        assert_eq!(burst.dropped(), 0);
        let stats = client.statistics();
        assert_eq!(stats.reconnects, 0, "{version:?}: the connection dropped during the transfer");
        client.drain().unwrap();
    }
}

/// The payload of message `i` of a burst: its number, then filler, so that reordering, loss, duplication
/// and corruption all show.
fn burst_payload(i: usize) -> String {
    let mut s = format!("{i:06}:");
    while s.len() < 200 {
        s.push(char::from(b'a' + (i + s.len()) as u8 % 26));
    }
    s
}

/// A 1 MiB payload with a pattern that is not periodic in any power of two (so a record dropped or
/// repeated at a TLS record boundary cannot line up by accident).
fn big_payload() -> Vec<u8> {
    (0..1usize << 20).map(|i| (i % 251) as u8 ^ (i >> 12) as u8).collect()
}

/// Reads `count` burst messages on a thread of its own, checking each is the next one.
fn read_burst<S: TestSubscription>(mut sub: S, count: usize, who: &'static str) -> std::thread::JoinHandle<S> {
    std::thread::spawn(move || {
        for i in 0..count {
            let msg = sub.next_timeout(Duration::from_secs(5)).unwrap_or_else(|e| {
                panic!("{who}: only {i} of {count} messages arrived: {e:?}");
            });
            assert_eq!(text(&msg), burst_payload(i), "{who}: message {i} wrong or out of order");
        }
        assert_eq!(sub.dropped(), 0, "{who}");
        sub
    })
}

pub(crate) fn tls_carries_a_one_mib_payload_and_a_burst_between_connections<C: TestClient>() {
    const BURST: usize = 20_000;
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = tls_server(version, &fixture);
        let sender: C = must_connect(trusting(&server.tls_url(), &fixture), &server, "sender");
        let receiver: C = must_connect(trusting(&server.url(), &fixture), &server, "receiver");
        assert!(sender.max_payload() >= 1 << 20, "{version:?}: max_payload {}", sender.max_payload());

        // 1 MiB each way: the request on one connection, the reversed echo from the other.
        let big = big_payload();
        let expected_request = big.clone();
        let responder = serve(receiver.subscribe("tls.big", None).unwrap(), move |req| {
            assert_eq!(req.payload().len(), expected_request.len(), "{version:?}");
            assert!(req.payload() == &expected_request[..], "{version:?}: the 1 MiB request arrived corrupted");
            let mut reversed = req.payload().to_vec();
            reversed.reverse();
            req.respond(reversed).unwrap();
        });
        receiver.flush().unwrap();
        let reply = sender.request_default("tls.big", None, (&big).into());
        let reply = reply.unwrap_or_else(|e| panic!("{version:?}: big request: {e}"));
        let mut expected = big.clone();
        expected.reverse();
        assert_eq!(reply.payload().len(), expected.len(), "{version:?}");
        assert!(reply.payload() == &expected[..], "{version:?}: the 1 MiB reply arrived corrupted");

        // A burst from one connection to the other and back to the sender itself: many messages per TLS
        // record and many records per read on the way in, back-pressure on the way out.
        let far = receiver.subscribe("tls.burst", None).unwrap();
        let near = sender.subscribe("tls.burst", None).unwrap();
        receiver.flush().unwrap();
        sender.flush().unwrap();
        let readers = [read_burst(far, BURST, "receiver"), read_burst(near, BURST, "sender")];
        for i in 0..BURST {
            sender.publish("tls.burst", None, None, burst_payload(i).into()).unwrap();
        }
        sender.flush().unwrap();
        let mut subs: Vec<_> = readers.into_iter().map(|r| r.join().expect("a burst reader")).collect();
        sender.flush().unwrap();
        assert!(subs.iter_mut().all(|s| s.try_next().is_none()), "{version:?}: more than the burst arrived");
        let stats = sender.statistics();
        assert_eq!(stats.reconnects, 0, "{version:?}: the connection was lost under load");
        sender.drain().unwrap();
        receiver.drain().unwrap();
        assert_eq!(responder.join().expect("the responder"), 1, "{version:?}");
    }
}

const STRESS_THREADS: usize = 4;
const STRESS_PER_THREAD: usize = 2_000;

/// Sizes from a few bytes to several TLS records.
fn stress_payload(t: usize, i: usize) -> Vec<u8> {
    pattern((i * 7919) % 40_000, t as u8)
}

/// Reads `STRESS_THREADS * STRESS_PER_THREAD` stress messages from `sub`, checking each publisher's order and
/// every payload.
fn check_stress<S: TestSubscription>(mut sub: S, who: &'static str) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut next = [0usize; STRESS_THREADS];
        for _ in 0..STRESS_THREADS * STRESS_PER_THREAD {
            let msg = recv(&mut sub, who);
            let t: usize = msg.subject().as_str().unwrap().rsplit('.').next().unwrap().parse().unwrap();
            let colon = msg.payload().iter().position(|&b| b == b':').unwrap();
            let i: usize = std::str::from_utf8(&msg.payload()[..colon]).unwrap().parse().unwrap();
            assert_eq!(i, next[t], "{who}: publisher {t}'s messages out of order or lost ({} dropped)", sub.dropped());
            next[t] += 1;
            assert!(msg.payload()[colon + 1..] == stress_payload(t, i)[..], "{who}: message {t}/{i} corrupted");
        }
        assert_eq!(next, [STRESS_PER_THREAD; STRESS_THREADS], "{who}");
        assert_eq!(sub.dropped(), 0, "{who}");
    })
}

pub(crate) fn concurrent_publishers_and_receivers_share_one_tls_connection<C: TestClient>() {
    let fixture = TlsFixture::new();
    let server = tls_server(ServerVersion::Current, &fixture);
    // Room for everything (about 160 MB): checking payloads in a debug build is slower than publishing them,
    // and this case is about the bytes, not slow consumers.
    let limits = PendingLimits { messages: 1 << 20, bytes: 1 << 30 };
    let stress_options = || trusting(&server.tls_url(), &fixture).pending_limits(limits);
    let client: C = must_connect(stress_options(), &server, "stress");
    let observer: C = must_connect(stress_options(), &server, "observer");
    // The publishing connection also receives everything it sends: its reader and writer use the session at once.
    let own = client.subscribe("sec.stress.>", None).unwrap();
    let other = observer.subscribe("sec.stress.>", None).unwrap();
    client.flush().unwrap();
    observer.flush().unwrap();
    let readers = [check_stress(own, "own"), check_stress(other, "observer")];
    let publishers: Vec<_> = (0..STRESS_THREADS)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                for i in 0..STRESS_PER_THREAD {
                    let mut payload = format!("{i}:").into_bytes();
                    payload.extend_from_slice(&stress_payload(t, i));
                    client.publish(&format!("sec.stress.{t}"), None, None, payload.into()).unwrap();
                }
            })
        })
        .collect();
    for t in publishers {
        t.join().unwrap();
    }
    client.flush().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(client.statistics().reconnects, 0);
    assert_eq!(observer.statistics().reconnects, 0);
}

pub(crate) fn close_over_tls_writes_what_is_buffered<C: TestClient>() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = tls_server(version, &fixture);
        let receiver: C = must_connect(trusting(&server.tls_url(), &fixture), &server, "receiver");
        let sub = receiver.subscribe("tls.close", None).unwrap();
        receiver.flush().unwrap();
        let sender: C = must_connect(trusting(&server.tls_url(), &fixture), &server, "sender");
        for i in 0..5_000 {
            sender.publish("tls.close", None, None, burst_payload(i).into()).unwrap();
        }
        // No flush: what is still buffered goes out, encrypted, before the connection is dropped.
        sender.close();
        let who =
            if version == ServerVersion::Current { "current server, after close" } else { "old server, after close" };
        read_burst(sub, 5_000, who).join().expect("the buffered messages arrive");
    }
}
