//! Request/reply with the async client against a real nats-server: replies, timeouts, no responders,
//! headers, `request_many` and its stop conditions, many concurrent requests from many tasks, and request
//! futures that are dropped (cancelled) before their reply came.

mod common;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::{connect, options, recv, server_subscriptions, text, wait_until, BoundedExt as _, WAIT};
use nats_server_harness::NatsServer;
use nats_tokio::ConnectOptionsExt as _;
use nats_tokio::{Client, Error, Headers, Message, Responses};
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

/// Every reply of a `request_many`, until it ends (bounded).
async fn collect(mut responses: Responses) -> Vec<Message> {
    let mut out = vec![];
    while let Some(msg) = responses.next().within(Duration::from_secs(15)).await {
        out.push(msg);
    }
    out
}

/// Polls all `futures` together in this task (a small `join_all`).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut done = true;
        for (f, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    out.into_iter().map(|v| v.expect("every future completed")).collect()
}

#[tokio::test]
async fn request_gets_the_reply() {
    let server = NatsServer::start();
    let service = connect(&server).await;
    let client = connect(&server).await;
    let _svc = echo(&service, "svc.echo", "re:").await;
    service.flush().bounded().await.unwrap();
    let reply = client.request("svc.echo", "hello").bounded().await.unwrap();
    assert_eq!(text(&reply), "re:hello");
    // The reply came to this client's inbox, not to the service subject.
    let subject = reply.subject().as_str().unwrap().to_owned();
    assert!(subject.starts_with("_INBOX."), "reply subject {subject}");
    // Again, on the same (already set up) inbox subscription.
    assert_eq!(text(&client.request("svc.echo", "again").bounded().await.unwrap()), "re:again");
}

#[tokio::test]
async fn request_times_out_when_nobody_answers() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    // Someone listens (so no 503), but never answers.
    let mut silent = client.subscribe("svc.silent").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let result = client.request_with_timeout("svc.silent", "anyone?", timeout).bounded().await;
    let took = started.elapsed();
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(took >= timeout - Duration::from_millis(10), "timed out early: {took:?}");
    assert!(took < timeout + Duration::from_millis(1500), "timed out late: {took:?}");
    // The request did reach the silent subscriber.
    let req = recv(&mut silent, "the request").await;
    assert!(req.reply().is_some());
    // A late answer to the abandoned request is dropped, and the client still works.
    req.respond("too late").unwrap();
    let _svc = echo(&client, "svc.live", "").await;
    assert_eq!(text(&client.request("svc.live", "ok").bounded().await.unwrap()), "ok");
    // The default request timeout applies to `request` (here WAIT, 5 s): a silent service is still a timeout.
    let short = common::options(&server.url()).request_timeout(Duration::from_millis(200)).connect();
    let short = short.bounded().await.unwrap();
    let started = Instant::now();
    assert!(matches!(short.request("svc.silent", "x").bounded().await, Err(Error::Timeout)));
    assert!(started.elapsed() >= Duration::from_millis(190), "{:?}", started.elapsed());
}

#[tokio::test]
async fn no_responders_fails_fast() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let started = Instant::now();
    let result = client.request_with_timeout("svc.nobody", "hello", Duration::from_secs(10)).bounded().await;
    assert!(matches!(result, Err(Error::NoResponders)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "no responders took {:?}", started.elapsed());
    // Once more with the default timeout and headers.
    let started = Instant::now();
    let result = client.request_with_headers("svc.nobody", &Headers::new(), "").bounded().await;
    assert!(matches!(result, Err(Error::NoResponders)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_with_headers_both_ways() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut requests = client.subscribe("svc.hdr").bounded().await.unwrap();
    tokio::spawn(async move {
        while let Some(msg) = requests.next().await {
            let mut back = msg.headers().map(|h| h.to_headers()).unwrap_or_default();
            back.append("Replied-By", "svc").unwrap();
            let _ = msg.respond_with_headers(Some(&back), msg.payload_bytes());
        }
    });
    let mut headers = Headers::new();
    headers.append("Trace-Id", "abc").unwrap();
    headers.append("Trace-Id", "def").unwrap();
    let reply = client.request_with_headers("svc.hdr", &headers, "payload").bounded().await.unwrap();
    assert_eq!(text(&reply), "payload");
    let h = reply.headers().expect("reply headers");
    assert_eq!(h.get_all("Trace-Id").collect::<Vec<_>>(), ["abc", "def"]);
    assert_eq!(h.get("Replied-By"), Some("svc"));
    assert!(reply.status().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_many_stops_at_max() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    for _ in 0..5 {
        echo(&client, "svc.many", "").await;
    }
    client.flush().bounded().await.unwrap();
    let started = Instant::now();
    let responses = client.request_many("svc.many", "x", Duration::from_secs(5), None, Some(3)).bounded().await;
    let replies = collect(responses.unwrap()).await;
    assert_eq!(replies.len(), 3);
    assert!(started.elapsed() < Duration::from_secs(2), "max reached but waited {:?}", started.elapsed());
    // All five answer when asked without a max (the stall ends it).
    let all = client
        .request_many("svc.many", "y", Duration::from_secs(5), Some(Duration::from_millis(300)), None)
        .bounded()
        .await
        .unwrap();
    assert_eq!(collect(all).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_many_ends_after_a_stall() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    for _ in 0..2 {
        echo(&client, "svc.stall", "").await;
    }
    client.flush().bounded().await.unwrap();
    let stall = Duration::from_millis(200);
    let started = Instant::now();
    let responses =
        client.request_many("svc.stall", "x", Duration::from_secs(10), Some(stall), None).bounded().await.unwrap();
    let replies: Vec<String> = collect(responses).await.iter().map(text).collect();
    let took = started.elapsed();
    assert_eq!(replies, ["x", "x"]);
    assert!(took >= stall, "ended before the stall interval: {took:?}");
    assert!(took < Duration::from_secs(3), "the stall did not end it: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_many_ends_at_the_overall_timeout() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut requests = client.subscribe("svc.stream").bounded().await.unwrap();
    // Keeps replying every 20 ms, so neither the stall nor a max can end it.
    let stop_ = stop.clone();
    tokio::spawn(async move {
        while let Some(msg) = requests.next().await {
            for i in 0..500 {
                if stop_.load(Ordering::SeqCst) || msg.respond(i.to_string()).is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    client.flush().bounded().await.unwrap();
    let timeout = Duration::from_millis(600);
    let started = Instant::now();
    let responses = client
        .request_many("svc.stream", "go", timeout, Some(Duration::from_millis(400)), Some(1000))
        .bounded()
        .await
        .unwrap();
    let replies: Vec<String> = collect(responses).await.iter().map(text).collect();
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

#[tokio::test]
async fn request_many_with_no_responders_is_empty_and_quick() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let started = Instant::now();
    let responses = client.request_many("svc.none", "x", Duration::from_secs(5), None, None).bounded().await;
    assert_eq!(collect(responses.unwrap()).await.len(), 0);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

/// 100 tasks, 10 requests each, all in flight at once on one client. The responder holds every request until
/// it has all 1,000, then answers them in reverse order: each reply must still reach its own request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_from_a_hundred_tasks_get_their_own_replies() {
    const TASKS: usize = 100;
    const EACH: usize = 10;
    const TOTAL: usize = TASKS * EACH;
    let server = NatsServer::start();
    let service = connect(&server).await;
    let mut requests = service.subscribe("svc.conc").bounded().await.unwrap();
    let responder = tokio::spawn(async move {
        let mut held = Vec::with_capacity(TOTAL);
        while held.len() < TOTAL {
            match tokio::time::timeout(Duration::from_secs(10), requests.next()).await {
                Ok(Some(msg)) => held.push(msg),
                other => panic!("the responder got {} requests, then {other:?}", held.len()),
            }
        }
        for msg in held.iter().rev() {
            msg.respond(format!("re:{}", text(msg))).unwrap();
        }
        held.len()
    });
    service.flush().bounded().await.unwrap();

    let client = connect(&server).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let client = client.clone();
            tokio::spawn(async move {
                let payloads: Vec<String> = (0..EACH).map(|i| format!("{t}-{i}")).collect();
                let requests = payloads
                    .iter()
                    .map(|p| client.request_with_timeout("svc.conc", p.clone(), Duration::from_secs(20)))
                    .collect();
                let replies = join_all(requests).await;
                for (payload, reply) in payloads.iter().zip(replies) {
                    let reply = reply.unwrap_or_else(|e| panic!("request {payload}: {e:?}"));
                    assert_eq!(text(&reply), format!("re:{payload}"), "a reply reached the wrong request");
                }
            })
        })
        .collect();
    assert_eq!(responder.within(Duration::from_secs(20)).await.expect("responder"), TOTAL);
    for task in tasks {
        task.within(Duration::from_secs(20)).await.expect("a request task failed");
    }
    let stats = client.statistics();
    assert_eq!(stats.out_msgs, TOTAL as u64);
    assert_eq!(stats.in_msgs, TOTAL as u64);
    // The mux is one subscription for all of them, and it still works.
    let _svc = echo(&service, "svc.after", "").await;
    service.flush().bounded().await.unwrap();
    assert_eq!(text(&client.request("svc.after", "ok").bounded().await.unwrap()), "ok");
}

/// Publishing tasks in full flow (each writing its own large batches, outside the lock) beside tasks making
/// requests, all on one client: every publish arrives once and in order per task, and every request gets its
/// reply. A wake-up lost between a caller's write and the driver would stall a request or leave publishes
/// unsent until the bounded waits fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_answered_beside_publishers_in_full_flow() {
    const PUBLISHERS: usize = 3;
    const EACH: usize = 20_000;
    let server = NatsServer::start();
    let service = connect(&server).await;
    let _echo = echo(&service, "flow.svc", "re:").await;
    service.flush().bounded().await.unwrap();
    let watcher = connect(&server).await;
    let mut flow = watcher.subscribe("flow.pub.*").bounded().await.unwrap();
    watcher.flush().bounded().await.unwrap();

    let client = connect(&server).await;
    let body = [b'p'; 100];
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|t| {
            let client = client.clone();
            tokio::spawn(async move {
                let subject = format!("flow.pub.{t}");
                for i in 0..EACH {
                    let mut payload = body;
                    payload[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    client.publish(&subject, &payload[..]).await.unwrap();
                }
            })
        })
        .collect();
    let requester = {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                let reply = client.request("flow.svc", format!("{i}")).await.unwrap();
                assert_eq!(text(&reply), format!("re:{i}"));
            }
        })
    };
    requester.within(Duration::from_secs(20)).await.expect("the requests");
    for p in publishers {
        p.within(Duration::from_secs(20)).await.expect("a publisher");
    }
    client.flush().bounded().await.unwrap();
    let mut next = [0u64; PUBLISHERS];
    for _ in 0..PUBLISHERS * EACH {
        let msg = flow.next().within(Duration::from_secs(20)).await.expect("a published message");
        let t: usize = common::subject(&msg).trim_start_matches("flow.pub.").parse().unwrap();
        let seq = u64::from_le_bytes(msg.payload()[..8].try_into().unwrap());
        assert_eq!(seq, next[t], "publisher {t}: lost, repeated or reordered");
        next[t] += 1;
    }
}

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

/// Dropping a `Responses` cancels the `request_many`: later replies are dropped and a drain does not wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_request_many_responses_cancels_it() {
    let server = NatsServer::start();
    let client = options(&server.url()).drain_timeout(Duration::from_secs(30)).connect().bounded().await.unwrap();
    let mut requests = client.subscribe("svc.multi").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    let mut responses =
        client.request_many("svc.multi", "q", Duration::from_secs(30), None, None).bounded().await.unwrap();
    let req = recv(&mut requests, "the request").await;
    req.respond("one").unwrap();
    assert_eq!(text(&responses.next().bounded().await.expect("the first reply")), "one");
    drop(responses);
    // More replies for the dropped request: they arrive and are dropped.
    let before = client.statistics().in_msgs;
    req.respond("two").unwrap();
    req.respond("three").unwrap();
    client.flush().bounded().await.unwrap();
    assert_eq!(client.statistics().in_msgs - before, 2);
    let started = Instant::now();
    client.drain().within(Duration::from_secs(10)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "the drain waited {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_task_can_make_requests_of_its_own() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let _inner = echo(&client, "svc.inner", "inner:").await;
    let mut outer = client.subscribe("svc.outer").bounded().await.unwrap();
    let c = client.clone();
    // The outer service asks the inner one before answering, on the same connection.
    tokio::spawn(async move {
        while let Some(msg) = outer.next().await {
            let inner = c.request_with_timeout("svc.inner", msg.payload_bytes(), WAIT).await.map(|m| text(&m));
            let _ = msg.respond(format!("outer:{}", inner.unwrap_or_else(|e| format!("{e:?}"))));
        }
    });
    client.flush().bounded().await.unwrap();
    for i in 0..5 {
        let reply = client.request("svc.outer", i.to_string()).bounded().await.unwrap();
        assert_eq!(text(&reply), format!("outer:inner:{i}"));
    }
}
