//! Request/reply against a real nats-server: replies, timeouts, no responders, headers, `request_many` and
//! its three stop conditions, concurrent requests.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{connect, text, WAIT};
use nats_blocking::{Client, Error, Headers};
use nats_server_harness::NatsServer;

/// A responder answering `prefix + payload`.
fn echo(client: &Client, subject: &str, prefix: &'static str) -> nats_blocking::CallbackSubscription {
    client
        .subscribe_with(subject, move |msg| {
            let _ = msg.respond(format!("{prefix}{}", text(&msg)));
        })
        .unwrap()
}

#[test]
fn request_gets_the_reply() {
    let server = NatsServer::start();
    let service = connect(&server);
    let client = connect(&server);
    let _svc = echo(&service, "svc.echo", "re:");
    service.flush().unwrap();
    let reply = client.request("svc.echo", "hello").unwrap();
    assert_eq!(text(&reply), "re:hello");
    // The reply came to this client's inbox, not to the service subject.
    let subject = reply.subject().as_str().unwrap().to_owned();
    assert!(subject.starts_with("_INBOX."), "reply subject {subject}");
    // Again, on the same (already set up) inbox subscription.
    assert_eq!(text(&client.request("svc.echo", "again").unwrap()), "re:again");
}

#[test]
fn request_times_out_when_nobody_answers() {
    let server = NatsServer::start();
    let client = connect(&server);
    // Someone listens (so no 503), but never answers.
    let mut silent = client.subscribe("svc.silent").unwrap();
    client.flush().unwrap();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let result = client.request_with_timeout("svc.silent", "anyone?", timeout);
    let took = started.elapsed();
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(took >= timeout - Duration::from_millis(10), "timed out early: {took:?}");
    assert!(took < timeout + Duration::from_millis(1500), "timed out late: {took:?}");
    // The request did reach the silent subscriber.
    let req = common::recv(&mut silent, "the request");
    assert!(req.reply().is_some());
    // A late answer to the abandoned request is dropped, and the client still works.
    req.respond("too late").unwrap();
    let _svc = echo(&client, "svc.live", "");
    assert_eq!(text(&client.request("svc.live", "ok").unwrap()), "ok");
}

#[test]
fn no_responders_fails_fast() {
    let server = NatsServer::start();
    let client = connect(&server);
    let started = Instant::now();
    let result = client.request_with_timeout("svc.nobody", "hello", Duration::from_secs(10));
    assert!(matches!(result, Err(Error::NoResponders)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "no responders took {:?}", started.elapsed());
    // Once more with the default timeout and headers.
    let started = Instant::now();
    assert!(matches!(client.request_with_headers("svc.nobody", &Headers::new(), ""), Err(Error::NoResponders)));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn request_with_headers_both_ways() {
    let server = NatsServer::start();
    let client = connect(&server);
    let _svc = client
        .subscribe_with("svc.hdr", |msg| {
            let mut back = msg.headers().map(|h| h.to_headers()).unwrap_or_default();
            back.append("Replied-By", "svc").unwrap();
            let _ = msg.respond_with_headers(Some(&back), msg.payload_bytes());
        })
        .unwrap();
    let mut headers = Headers::new();
    headers.append("Trace-Id", "abc").unwrap();
    headers.append("Trace-Id", "def").unwrap();
    let reply = client.request_with_headers("svc.hdr", &headers, "payload").unwrap();
    assert_eq!(text(&reply), "payload");
    let h = reply.headers().expect("reply headers");
    assert_eq!(h.get_all("Trace-Id").collect::<Vec<_>>(), ["abc", "def"]);
    assert_eq!(h.get("Replied-By"), Some("svc"));
    assert!(reply.status().is_none());
}

#[test]
fn request_many_stops_at_max() {
    let server = NatsServer::start();
    let client = connect(&server);
    let _svcs: Vec<_> = (0..5).map(|_| echo(&client, "svc.many", "")).collect();
    client.flush().unwrap();
    let started = Instant::now();
    let replies: Vec<_> =
        client.request_many("svc.many", "x", Duration::from_secs(5), None, Some(3)).unwrap().collect();
    assert_eq!(replies.len(), 3);
    assert!(started.elapsed() < Duration::from_secs(2), "max reached but waited {:?}", started.elapsed());
    // All five answer when asked without a max (the stall ends it).
    let all = client.request_many("svc.many", "y", Duration::from_secs(5), Some(Duration::from_millis(300)), None);
    assert_eq!(all.unwrap().count(), 5);
}

#[test]
fn request_many_ends_after_a_stall() {
    let server = NatsServer::start();
    let client = connect(&server);
    let _svcs: Vec<_> = (0..2).map(|_| echo(&client, "svc.stall", "")).collect();
    client.flush().unwrap();
    let stall = Duration::from_millis(200);
    let started = Instant::now();
    let responses = client.request_many("svc.stall", "x", Duration::from_secs(10), Some(stall), None).unwrap();
    let replies: Vec<String> = responses.map(|m| text(&m)).collect();
    let took = started.elapsed();
    assert_eq!(replies, ["x", "x"]);
    assert!(took >= stall, "ended before the stall interval: {took:?}");
    assert!(took < Duration::from_secs(3), "the stall did not end it: {took:?}");
}

#[test]
fn request_many_ends_at_the_overall_timeout() {
    let server = NatsServer::start();
    let client = connect(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let stop_ = stop.clone();
    // Keeps replying every 20 ms, so neither the stall nor a max can end it.
    let _svc = client
        .subscribe_with("svc.stream", move |msg| {
            for i in 0..500 {
                if stop_.load(Ordering::SeqCst) || msg.respond(i.to_string()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .unwrap();
    client.flush().unwrap();
    let timeout = Duration::from_millis(600);
    let started = Instant::now();
    let responses =
        client.request_many("svc.stream", "go", timeout, Some(Duration::from_millis(400)), Some(1000)).unwrap();
    let replies: Vec<String> = responses.map(|m| text(&m)).collect();
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    assert!(took >= timeout - Duration::from_millis(10), "ended before the timeout: {took:?}");
    assert!(took < timeout + Duration::from_millis(1500), "ended late: {took:?}");
    assert!(replies.len() >= 5, "only {} replies in {took:?}", replies.len());
    assert!(replies.len() < 500);
    // In order, none missing.
    let expected: Vec<String> = (0..replies.len()).map(|i| i.to_string()).collect();
    assert_eq!(replies, expected);
}

#[test]
fn request_many_with_no_responders_is_empty_and_quick() {
    let server = NatsServer::start();
    let client = connect(&server);
    let started = Instant::now();
    let n = client.request_many("svc.none", "x", Duration::from_secs(5), None, None).unwrap().count();
    assert_eq!(n, 0);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[test]
fn concurrent_requests_from_many_threads_match_their_replies() {
    const THREADS: usize = 4;
    const EACH: usize = 100;
    let server = NatsServer::start();
    let service = connect(&server);
    // Two responders in a queue group: each request is answered once.
    let _svcs: Vec<_> = (0..2)
        .map(|_| {
            service
                .queue_subscribe_with("svc.conc", "q", |msg| {
                    let _ = msg.respond(format!("re:{}", text(&msg)));
                })
                .unwrap()
        })
        .collect();
    service.flush().unwrap();
    let client = connect(&server);
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let payload = format!("{t}-{i}");
                    let reply = client.request_with_timeout("svc.conc", payload.clone(), WAIT).unwrap();
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

/// Requests from several threads while another thread publishes in bursts: the writer thread gathers the
/// publishes while requests must go out at once, and other threads hold the write turn meanwhile. A writer that
/// spins instead of waiting for the turn holds the connection's lock for ever; here that fails the test (the
/// deadline) instead of hanging it.
#[test]
fn requests_beside_a_bursting_publisher_never_stall_the_writer() {
    const THREADS: usize = 4;
    const EACH: usize = 2_000;
    let server = NatsServer::start();
    let service = connect(&server);
    let _svc = service
        .queue_subscribe_with("svc.mixed", "q", |msg| {
            let _ = msg.respond(msg.payload_bytes());
        })
        .unwrap();
    service.flush().unwrap();
    let client = connect(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (client, stop) = (client.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..64 {
                    client.publish("mixed.noise", "x").unwrap();
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
                let reply = client.request_with_timeout("svc.mixed", payload.clone(), WAIT)?;
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

#[test]
fn a_handler_can_make_requests_of_its_own() {
    let server = NatsServer::start();
    let client = connect(&server);
    let _inner = echo(&client, "svc.inner", "inner:");
    let c = client.clone();
    // The outer service asks the inner one before answering: handlers do not block the reader.
    let _outer = client
        .subscribe_with("svc.outer", move |msg| {
            let inner = c.request_with_timeout("svc.inner", msg.payload_bytes(), WAIT).map(|m| text(&m));
            let _ = msg.respond(format!("outer:{}", inner.unwrap_or_else(|e| format!("{e:?}"))));
        })
        .unwrap();
    client.flush().unwrap();
    for i in 0..5 {
        assert_eq!(text(&client.request("svc.outer", i.to_string()).unwrap()), format!("outer:inner:{i}"));
    }
}
