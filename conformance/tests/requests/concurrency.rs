//! Many requests at once: from many threads, a thousand in flight on one client, beside publishers, and from
//! inside a responder.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conformance::TestClient;
use nats_client::seam::{PendingReply as _, Subscription as _};
use nats_client::Error;
use nats_server_harness::NatsServer;

use crate::common::{connect, echo, serve, text, WAIT};

pub(crate) fn concurrent_requests_from_many_threads_match_their_replies<C: TestClient>() {
    const THREADS: usize = 4;
    const EACH: usize = 100;
    let server = NatsServer::start();
    let service: C = connect(&server);
    // Two responders in a queue group: each request is answered once.
    let _svcs: Vec<_> = (0..2).map(|_| echo(&service, "svc.conc", Some("q"), "re:")).collect();
    service.flush().unwrap();
    let client: C = connect(&server);
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let payload = format!("{t}-{i}");
                    let reply = client.request("svc.conc", None, payload.as_str().into(), WAIT).unwrap();
                    assert_eq!(text(&reply), format!("re:{payload}"));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a request thread failed");
    }
    let stats = client.statistics();
    assert_eq!(stats.out_msgs, (THREADS * EACH) as u64);
    assert_eq!(stats.in_msgs, (THREADS * EACH) as u64);
}

/// 100 threads, 10 requests each, all in flight at once on one client (`request_later`, then the waits). The
/// responder holds every request until it has all 1,000, then answers them in reverse order: each reply must
/// still reach its own request.
pub(crate) fn a_thousand_concurrent_requests_get_their_own_replies<C: TestClient>() {
    const THREADS: usize = 100;
    const EACH: usize = 10;
    const TOTAL: usize = THREADS * EACH;
    let server = NatsServer::start();
    let service: C = connect(&server);
    let mut requests = service.subscribe("svc.conc", None).unwrap();
    let responder = std::thread::spawn(move || {
        let mut held = Vec::with_capacity(TOTAL);
        while held.len() < TOTAL {
            match requests.next_timeout(Duration::from_secs(10)) {
                Ok(msg) => held.push(msg),
                other => panic!("the responder got {} requests, then {other:?}", held.len()),
            }
        }
        for msg in held.iter().rev() {
            msg.respond(format!("re:{}", text(msg))).unwrap();
        }
        held.len()
    });
    service.flush().unwrap();

    let client: C = connect(&server);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                let payloads: Vec<String> = (0..EACH).map(|i| format!("{t}-{i}")).collect();
                let pending: Vec<_> = payloads
                    .iter()
                    .map(|p| {
                        client.request_later("svc.conc", None, p.as_str().into(), Duration::from_secs(20)).unwrap()
                    })
                    .collect();
                for (payload, reply) in payloads.iter().zip(pending) {
                    let reply = reply.wait().unwrap_or_else(|e| panic!("request {payload}: {e:?}"));
                    assert_eq!(text(&reply), format!("re:{payload}"), "a reply reached the wrong request");
                }
            })
        })
        .collect();
    assert_eq!(responder.join().expect("responder"), TOTAL);
    for thread in threads {
        thread.join().expect("a request thread failed");
    }
    let stats = client.statistics();
    assert_eq!(stats.out_msgs, TOTAL as u64);
    assert_eq!(stats.in_msgs, TOTAL as u64);
    // The mux is one subscription for all of them, and it still works.
    let _svc = echo(&service, "svc.after", None, "");
    service.flush().unwrap();
    assert_eq!(text(&client.request_default("svc.after", None, "ok".into()).unwrap()), "ok");
}

/// Requests from several threads while another thread publishes in bursts: publishes are gathered while
/// requests must go out at once, and other threads hold the write turn meanwhile. A writer that spins instead
/// of waiting for the turn holds the connection's lock for ever; here that fails the case (the deadline)
/// instead of hanging it.
pub(crate) fn requests_beside_a_bursting_publisher_never_stall_the_writer<C: TestClient>() {
    const THREADS: usize = 4;
    const EACH: usize = 2_000;
    let server = NatsServer::start();
    let service: C = connect(&server);
    let _svc = serve(service.subscribe("svc.mixed", Some("q")).unwrap(), |msg| {
        let _ = msg.respond(msg.payload_bytes());
    });
    service.flush().unwrap();
    let client: C = connect(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (client, stop) = (client.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..64 {
                    client.publish("mixed.noise", None, None, "x".into()).unwrap();
                }
                sent += 64;
                std::thread::sleep(Duration::from_micros(20));
            }
            sent
        })
    };
    let (done, finished) = std::sync::mpsc::channel();
    for t in 0..THREADS {
        let (client, done) = (client.clone(), done.clone());
        std::thread::spawn(move || {
            let outcome = (0..EACH).try_for_each(|i| {
                let payload = format!("{t}-{i}");
                let reply = client.request("svc.mixed", None, payload.as_str().into(), WAIT)?;
                assert_eq!(text(&reply), payload);
                Ok::<_, Error>(())
            });
            let _ = done.send(outcome);
        });
    }
    drop(done);
    let deadline = Instant::now() + Duration::from_secs(60);
    for _ in 0..THREADS {
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = finished.recv_timeout(left).expect("request threads stalled: the writer never sent");
        outcome.expect("a request failed");
    }
    stop.store(true, Ordering::Relaxed);
    let published = publisher.join().expect("publisher failed");
    client.flush().unwrap();
    assert_eq!(client.statistics().out_msgs, published + (THREADS * EACH) as u64);
}

/// Publishing threads in full flow (each writing its own large batches) beside a thread making requests, all
/// on one client: every publish arrives once and in order per publisher, and every request gets its reply. A
/// wake-up lost between a caller's write and the connection's writer would stall a request or leave publishes
/// unsent until the bounded waits fail.
pub(crate) fn requests_are_answered_beside_publishers_in_full_flow<C: TestClient>() {
    const PUBLISHERS: usize = 3;
    const EACH: usize = 20_000;
    let server = NatsServer::start();
    let service: C = connect(&server);
    let _echo = echo(&service, "flow.svc", None, "re:");
    service.flush().unwrap();
    let watcher: C = connect(&server);
    let mut flow = watcher.subscribe("flow.pub.*", None).unwrap();
    watcher.flush().unwrap();

    let client: C = connect(&server);
    let body = [b'p'; 100];
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                let subject = format!("flow.pub.{t}");
                for i in 0..EACH {
                    let mut payload = body;
                    payload[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    client.publish(&subject, None, None, payload[..].into()).unwrap();
                }
            })
        })
        .collect();
    let requester = {
        let client = client.clone();
        std::thread::spawn(move || {
            for i in 0..200 {
                let reply = client.request_default("flow.svc", None, format!("{i}").into()).unwrap();
                assert_eq!(text(&reply), format!("re:{i}"));
            }
        })
    };
    requester.join().expect("the requests");
    for p in publishers {
        p.join().expect("a publisher");
    }
    client.flush().unwrap();
    let mut next = [0u64; PUBLISHERS];
    for _ in 0..PUBLISHERS * EACH {
        let msg = flow.next_timeout(Duration::from_secs(20)).expect("a published message");
        let t: usize = crate::common::subject(&msg).trim_start_matches("flow.pub.").parse().unwrap();
        let seq = u64::from_le_bytes(msg.payload()[..8].try_into().unwrap());
        assert_eq!(seq, next[t], "publisher {t}: lost, repeated or reordered");
        next[t] += 1;
    }
}

/// The outer service asks the inner one before answering, on the same connection: a responder waiting for a
/// reply does not block the delivery of that reply.
pub(crate) fn a_responder_can_make_requests_of_its_own<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let _inner = echo(&client, "svc.inner", None, "inner:");
    let c = client.clone();
    let _outer = serve(client.subscribe("svc.outer", None).unwrap(), move |msg| {
        let inner = c.request("svc.inner", None, msg.payload_bytes().into(), WAIT).map(|m| text(&m));
        let _ = msg.respond(format!("outer:{}", inner.unwrap_or_else(|e| format!("{e:?}"))));
    });
    client.flush().unwrap();
    for i in 0..5 {
        let reply = client.request_default("svc.outer", None, i.to_string().into()).unwrap();
        assert_eq!(text(&reply), format!("outer:inner:{i}"));
    }
}
