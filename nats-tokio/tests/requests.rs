//! Request/reply with the async client against a real nats-server: the cases that are this client's alone,
//! request futures dropped (cancelled) before their reply came.
//!
//! Everything both clients do alike (replies, timeouts, no responders, headers, `request_many` and dropping
//! its replies, concurrent requests, a responder making requests) is in the conformance suite
//! (`conformance/tests/requests/`), written once and run against both clients.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{connect, options, recv, server_subscriptions, text, wait_until, BoundedExt as _, WAIT};
use nats_server_harness::NatsServer;
use nats_tokio::Client;
use nats_tokio::ConnectOptionsExt as _;
use tokio::task::JoinHandle;

/// A responder task answering `prefix + payload` until its subscription ends.
async fn echo(client: &Client, subject: &str, prefix: &'static str) -> JoinHandle<usize> {
    let mut sub = client.subscribe(subject).bounded().await.unwrap();
    tokio::spawn(async move {
        let mut answered = 0;
        while let Some(msg) = sub.next().await {
            if msg.respond(format!("{prefix}{}", text(&msg))).is_ok() {
                answered += 1;
            }
        }
        answered
    })
}

// Not in the suite: cancelling by dropping a request future is the async client's alone.
/// Request futures dropped by `tokio::time::timeout` before their reply: nothing is left in the mux. The
/// server still has one inbox subscription, late replies arrive but go nowhere, new requests get their own
/// replies, and a drain (which waits for open requests) does not wait for the cancelled ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_requests_leave_nothing_behind() {
    const CANCELLED: usize = 100;
    let server = NatsServer::builder().monitoring(true).start().unwrap();
    let service = connect(&server).await;
    let mut silent = service.subscribe("svc.silent").bounded().await.unwrap();
    let _echo = echo(&service, "svc.echo", "re:").await;
    service.flush().bounded().await.unwrap();
    // A drain waits up to 30 s for open requests: leftovers would show.
    let client = options(&server.url()).drain_timeout(Duration::from_secs(30)).connect().bounded().await.unwrap();
    // The first request sets up the mux subscription.
    assert_eq!(text(&client.request("svc.echo", "first").bounded().await.unwrap()), "re:first");
    let subs_before = server_subscriptions(&server);

    for i in 0..CANCELLED {
        let request = client.request_with_timeout("svc.silent", i.to_string(), Duration::from_secs(30));
        let outcome = tokio::time::timeout(Duration::from_millis(5), request).await;
        assert!(outcome.is_err(), "request {i} completed: {outcome:?}");
    }
    // Every one of them was sent (the silent service has them all) before it was dropped.
    let mut held = vec![];
    for _ in 0..CANCELLED {
        held.push(recv(&mut silent, "a cancelled request").await);
    }
    assert_eq!(server_subscriptions(&server), subs_before, "cancelled requests left subscriptions on the server");

    // Late replies to all of them: they reach the client and are dropped there.
    let in_before = client.statistics().in_msgs;
    for msg in &held {
        msg.respond("late").unwrap();
    }
    service.flush().bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    assert_eq!(client.statistics().in_msgs - in_before, CANCELLED as u64, "the late replies did reach the client");

    // New requests get their own replies, never a late one.
    for i in 0..20 {
        let reply = client.request("svc.echo", i.to_string()).bounded().await.unwrap();
        assert_eq!(text(&reply), format!("re:{i}"));
    }
    assert_eq!(server_subscriptions(&server), subs_before);

    // No open request is left behind: the drain does not wait for any of the 100.
    let started = Instant::now();
    client.drain().within(Duration::from_secs(10)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the drain waited {:?} for cancelled requests",
        started.elapsed()
    );
}

// Not in the suite: cancelling by dropping a request future (in `select!`) is the async client's alone.
/// Cancelling with `select!` while other requests are in flight leaves those untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_some_requests_leaves_the_others_answered() {
    let server = NatsServer::start();
    let service = connect(&server).await;
    let mut requests = service.subscribe("svc.half").bounded().await.unwrap();
    // Answers even payloads at once; odd ones only once told to.
    let release = Arc::new(AtomicBool::new(false));
    let release_ = release.clone();
    let responder = tokio::spawn(async move {
        let mut odd = vec![];
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(1500), requests.next()).await {
            let n: usize = text(&msg).parse().unwrap();
            if n % 2 == 0 {
                msg.respond(format!("re:{n}")).unwrap();
            } else {
                odd.push(msg);
            }
        }
        // Then answer the odd ones (their requests are gone by now) once the test says so.
        wait_until(WAIT, "the test releases the odd replies", || release_.load(Ordering::SeqCst)).await;
        for msg in &odd {
            msg.respond(format!("late:{}", text(msg))).unwrap();
        }
        odd.len()
    });
    service.flush().bounded().await.unwrap();

    let client = connect(&server).await;
    let tasks: Vec<_> = (0..40)
        .map(|n: usize| {
            let client = client.clone();
            tokio::spawn(async move {
                let request = client.request_with_timeout("svc.half", n.to_string(), Duration::from_secs(30));
                tokio::select! {
                    reply = request => Some(reply.map(|m| text(&m))),
                    _ = tokio::time::sleep(Duration::from_millis(800)) => None,
                }
            })
        })
        .collect();
    for (n, task) in tasks.into_iter().enumerate() {
        let outcome = task.within(Duration::from_secs(10)).await.unwrap();
        if n % 2 == 0 {
            assert_eq!(outcome.expect("even requests are answered").unwrap(), format!("re:{n}"));
        } else {
            assert!(outcome.is_none(), "odd request {n} was answered: {outcome:?}");
        }
    }
    release.store(true, Ordering::SeqCst);
    assert_eq!(responder.within(Duration::from_secs(10)).await.unwrap(), 20);
    service.flush().bounded().await.unwrap();
    // The late replies went nowhere; the client goes on.
    let _svc = echo(&service, "svc.next", "next:").await;
    service.flush().bounded().await.unwrap();
    for i in 0..5 {
        assert_eq!(text(&client.request("svc.next", i.to_string()).bounded().await.unwrap()), format!("next:{i}"));
    }
    let started = Instant::now();
    client.drain().bounded().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "the drain waited for cancelled requests");
}
