//! Publish/subscribe with the async client against a real nats-server: subjects and wildcards, queue groups,
//! unsubscribing, headers, replies, the `Stream` impl, and the receive calls.

mod common;

use std::collections::HashSet;
use std::future::poll_fn;
use std::pin::Pin;
use std::time::{Duration, Instant};

use common::{
    assert_ended, connect, next_within, read_to_end, recv, subject, take_queued, text, BoundedExt as _, WAIT,
};
use futures_core::Stream;
use nats_server_harness::NatsServer;
use nats_tokio::{Error, Headers, Subscriber};

#[tokio::test]
async fn publish_and_receive_in_order() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("basic.one").bounded().await.unwrap();
    for i in 0..3 {
        client.publish("basic.one", format!("m{i}")).bounded().await.unwrap();
    }
    for i in 0..3 {
        let msg = recv(&mut sub, "basic message").await;
        assert_eq!(subject(&msg), "basic.one");
        assert_eq!(text(&msg), format!("m{i}"));
        assert!(msg.reply().is_none());
        assert!(msg.headers().is_none());
        assert!(msg.status().is_none());
    }
    // An empty payload is a message too.
    client.publish("basic.one", "").bounded().await.unwrap();
    assert!(recv(&mut sub, "empty payload").await.payload().is_empty());
    // Nothing else: a different subject does not match.
    client.publish("basic.two", "other").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    assert!(sub.try_next().is_none());
}

/// Every form of payload arrives as sent: a buffer the caller rewrites between publishes (copied, never held),
/// a borrowed body past the size at which shared ones are chained, a borrowed `Bytes`, owned ones.
#[tokio::test]
async fn borrowed_and_owned_payloads_arrive_as_sent() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("forms").bounded().await.unwrap();
    let mut buf = Vec::new();
    for i in 0..3u8 {
        buf.clear();
        buf.extend_from_slice(&[b'a' + i; 10]);
        client.publish("forms", &buf[..]).bounded().await.unwrap();
    }
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    client.publish("forms", &big).bounded().await.unwrap();
    let shared = nats_tokio::bytes::Bytes::from(big.clone());
    client.publish("forms", &shared).bounded().await.unwrap();
    client.publish("forms", shared.clone()).bounded().await.unwrap();
    client.publish("forms", String::from("owned")).bounded().await.unwrap();
    // The buffer is rewritten before anything is flushed: what left must be what it held at each call.
    buf.clear();
    buf.extend_from_slice(b"zzzz");
    client.flush().bounded().await.unwrap();
    for i in 0..3u8 {
        assert_eq!(recv(&mut sub, "borrowed").await.payload(), &[b'a' + i; 10][..]);
    }
    for form in ["borrowed large", "borrowed Bytes", "owned Bytes"] {
        assert_eq!(recv(&mut sub, form).await.payload(), &big[..], "{form}");
    }
    assert_eq!(text(&recv(&mut sub, "owned String").await), "owned");
}

#[tokio::test]
async fn wildcards_star_and_greater_than() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut star = client.subscribe("wild.*").bounded().await.unwrap();
    let mut gt = client.subscribe("wild.>").bounded().await.unwrap();
    let mut mid = client.subscribe("wild.*.end").bounded().await.unwrap();
    for s in ["wild.a", "wild.a.b", "wild.x.end", "wild", "other.a", "wild.b"] {
        client.publish(s, s).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    let got = |sub: &mut Subscriber| -> Vec<String> { take_queued(sub).iter().map(subject).collect() };
    assert_eq!(got(&mut star), ["wild.a", "wild.b"]);
    assert_eq!(got(&mut gt), ["wild.a", "wild.a.b", "wild.x.end", "wild.b"]);
    assert_eq!(got(&mut mid), ["wild.x.end"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_group_spreads_load_without_duplicates() {
    const N: usize = 300;
    let server = NatsServer::start();
    let client = connect(&server).await;
    let publisher = connect(&server).await;
    let mut members = vec![];
    for _ in 0..3 {
        members.push(client.queue_subscribe("work.items", "workers").bounded().await.unwrap());
    }
    // A plain subscriber next to the group still sees everything.
    let mut observer = client.subscribe("work.items").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    for i in 0..N {
        publisher.publish("work.items", i.to_string()).bounded().await.unwrap();
    }
    publisher.flush().bounded().await.unwrap();
    // The publisher's flush orders its messages before our PONG.
    client.flush().bounded().await.unwrap();
    let mut seen = HashSet::new();
    let mut total = 0;
    for (i, member) in members.iter_mut().enumerate() {
        let got = take_queued(member);
        assert!(!got.is_empty(), "member {i} got nothing of {N}");
        for msg in got {
            total += 1;
            assert!(seen.insert(text(&msg)), "duplicate delivery of {}", text(&msg));
        }
    }
    assert_eq!(total, N);
    assert_eq!(seen.len(), N);
    assert_eq!(take_queued(&mut observer).len(), N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_group_members_in_separate_tasks_share_the_work() {
    const N: usize = 200;
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut workers = vec![];
    for _ in 0..4 {
        let mut member = client.queue_subscribe("tasks.x", "pool").bounded().await.unwrap();
        // Each member reads in a task of its own until the subscription ends.
        workers.push(tokio::spawn(async move {
            let mut got = vec![];
            while let Some(msg) = member.next().await {
                got.push(text(&msg).parse::<usize>().unwrap());
            }
            got
        }));
    }
    client.flush().bounded().await.unwrap();
    for i in 0..N {
        client.publish("tasks.x", i.to_string()).bounded().await.unwrap();
    }
    // The drain delivers what is in flight, then ends every member's stream.
    client.drain().bounded().await.unwrap();
    let mut all = vec![];
    for (i, w) in workers.into_iter().enumerate() {
        let got = w.bounded().await.expect("a member task panicked");
        assert!(!got.is_empty(), "member {i} got nothing of {N}");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "member {i} saw its share out of order");
        all.extend(got);
    }
    all.sort_unstable();
    assert_eq!(all, (0..N).collect::<Vec<_>>(), "each message went to exactly one member");
}

#[tokio::test]
async fn unsubscribe_after_delivers_exactly_n_then_ends() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("max.n").bounded().await.unwrap();
    sub.unsubscribe_after(5).bounded().await.unwrap();
    for i in 0..10 {
        client.publish("max.n", i.to_string()).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    let got: Vec<String> = read_to_end(&mut sub).await.iter().map(text).collect();
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
    assert!(sub.next().bounded().await.is_none(), "the stream stays ended after the max");
    assert!(sub.end_reason().is_some());
    // Unsubscribing an ended subscription is harmless.
    sub.unsubscribe().bounded().await.unwrap();
}

#[tokio::test]
async fn unsubscribe_after_counts_messages_already_delivered() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("max.later").bounded().await.unwrap();
    for i in 0..3 {
        client.publish("max.later", i.to_string()).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    // Three delivered, the max is five in total: two more, then the end.
    sub.unsubscribe_after(5).bounded().await.unwrap();
    for i in 3..10 {
        client.publish("max.later", i.to_string()).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    let got: Vec<String> = read_to_end(&mut sub).await.iter().map(text).collect();
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
}

#[tokio::test]
async fn unsubscribe_after_a_max_already_reached_ends_at_once() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("max.reached").bounded().await.unwrap();
    for i in 0..3 {
        client.publish("max.reached", i.to_string()).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    // Three delivered already: a max of three ends the subscription now.
    sub.unsubscribe_after(3).bounded().await.unwrap();
    let started = Instant::now();
    let got: Vec<String> = read_to_end(&mut sub).await.iter().map(text).collect();
    assert_eq!(got, ["0", "1", "2"]);
    assert!(started.elapsed() < Duration::from_secs(1), "the end came only after {:?}", started.elapsed());
}

#[tokio::test]
async fn unsubscribe_stops_delivery_but_keeps_received_messages() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("unsub.x").bounded().await.unwrap();
    let mut other = client.subscribe("unsub.x").bounded().await.unwrap();
    client.publish("unsub.x", "before-1").bounded().await.unwrap();
    client.publish("unsub.x", "before-2").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    sub.unsubscribe().bounded().await.unwrap();
    client.publish("unsub.x", "after").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    // Already received: still readable.
    assert_eq!(text(&recv(&mut sub, "queued before unsubscribe").await), "before-1");
    assert_eq!(text(&recv(&mut sub, "queued before unsubscribe").await), "before-2");
    assert_ended(&mut sub).await;
    assert!(sub.end_reason().is_some(), "an ended subscription has an end reason");
    assert!(!matches!(sub.end_reason(), Some(Error::Permission(_))));
    let others: Vec<String> = take_queued(&mut other).iter().map(text).collect();
    assert_eq!(others, ["before-1", "before-2", "after"]);
}

#[tokio::test]
async fn dropping_a_subscriber_unsubscribes_on_the_server() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let dropped = client.subscribe("drop.x").bounded().await.unwrap();
    let mut witness = client.subscribe("drop.>").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();

    let before = client.statistics().in_msgs;
    client.publish("drop.x", "both").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    // Two subscriptions match: the server sends the message twice.
    assert_eq!(client.statistics().in_msgs - before, 2);
    assert_eq!(text(&recv(&mut witness, "first").await), "both");

    drop(dropped);
    let before = client.statistics().in_msgs;
    client.publish("drop.x", "one").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    // Only the witness's copy came: the dropped subscription is gone on the server too.
    assert_eq!(client.statistics().in_msgs - before, 1, "the server still delivers to a dropped subscriber");
    assert_eq!(text(&recv(&mut witness, "second").await), "one");
    assert!(witness.try_next().is_none());
}

#[tokio::test]
async fn headers_round_trip_multi_valued_and_case_preserving() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("hdr.x").bounded().await.unwrap();
    let mut headers = Headers::new();
    headers.append("X-Multi", "one").unwrap();
    headers.append("X-Multi", "two").unwrap();
    headers.insert("Mixed-Case-Name", "Value With Spaces").unwrap();
    headers.insert("lower", "l").unwrap();
    client.publish_with_headers("hdr.x", &headers, "body").bounded().await.unwrap();

    let msg = recv(&mut sub, "message with headers").await;
    assert_eq!(text(&msg), "body");
    let got = msg.headers().expect("headers arrive");
    assert_eq!(got.get_all("X-Multi").collect::<Vec<_>>(), ["one", "two"]);
    assert_eq!(got.get("X-Multi"), Some("one"));
    assert_eq!(got.get("Mixed-Case-Name"), Some("Value With Spaces"));
    assert_eq!(got.get("mixed-case-name"), None, "get is case-sensitive");
    assert_eq!(got.get_ignore_case("MIXED-CASE-NAME"), Some("Value With Spaces"));
    assert_eq!(got.get_ignore_case("LOWER"), Some("l"));
    assert!(got.status().is_none());
    let names: Vec<String> =
        got.iter().map(|(n, _)| String::from_utf8(n.to_vec()).unwrap()).filter(|n| !n.is_empty()).collect();
    assert_eq!(names, ["X-Multi", "X-Multi", "Mixed-Case-Name", "lower"], "names keep their case and order");
    assert_eq!(msg.size(), got.as_bytes().len() + 4);
    // Back to the builder form, equal to what was sent.
    let back = got.to_headers();
    assert_eq!(back.iter().collect::<Vec<_>>(), headers.iter().collect::<Vec<_>>());
}

#[tokio::test]
async fn publish_with_reply_and_respond() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("rep.req").bounded().await.unwrap();
    let mut replies = client.subscribe("rep.answers").bounded().await.unwrap();
    client.publish_with_reply("rep.req", "rep.answers", "question").bounded().await.unwrap();
    let msg = recv(&mut sub, "request").await;
    assert_eq!(msg.reply().and_then(|r| r.as_str()), Some("rep.answers"));
    // `respond` never waits: no `.await`.
    msg.respond("answer").unwrap();
    let mut h = Headers::new();
    h.insert("K", "v").unwrap();
    msg.respond_with_headers(Some(&h), "answer2").unwrap();
    let a = recv(&mut replies, "reply").await;
    assert_eq!((subject(&a), text(&a)), ("rep.answers".to_owned(), "answer".to_owned()));
    let b = recv(&mut replies, "reply with headers").await;
    assert_eq!(text(&b), "answer2");
    assert_eq!(b.headers().and_then(|h| h.get("K")), Some("v"));
    // No reply subject: respond is a typed error, nothing sent.
    client.publish("rep.req", "no reply").bounded().await.unwrap();
    let plain = recv(&mut sub, "plain").await;
    assert!(matches!(plain.respond("x"), Err(Error::Command(_))));
    client.publish_with_reply_and_headers("rep.req", "rep.answers", &h, "q3").bounded().await.unwrap();
    let q3 = recv(&mut sub, "request with headers").await;
    assert_eq!(text(&q3), "q3");
    assert_eq!(q3.headers().and_then(|h| h.get("K")), Some("v"));
    assert_eq!(q3.reply().and_then(|r| r.as_str()), Some("rep.answers"));
    client.flush().bounded().await.unwrap();
    assert!(replies.try_next().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscriber_is_a_stream_woken_by_a_publish_from_another_task() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("stream.x").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    // Nothing yet: a poll through the `Stream` impl is pending.
    let pending = poll_fn(|cx| std::task::Poll::Ready(Pin::new(&mut sub).poll_next(cx).is_pending())).await;
    assert!(pending, "an empty subscription polled ready");

    let publisher = client.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        publisher.publish("stream.x", "a").await.unwrap();
        publisher.publish("stream.x", "b").await.unwrap();
    });
    // The same subscriber read through `Stream::poll_next`, woken by the other task's publish.
    let a = poll_fn(|cx| Pin::new(&mut sub).poll_next(cx)).bounded().await.expect("woken by a publish");
    assert_eq!(text(&a), "a");
    let b = poll_fn(|cx| Pin::new(&mut sub).poll_next(cx)).bounded().await.expect("second");
    assert_eq!(text(&b), "b");
    task.bounded().await.unwrap();
    sub.unsubscribe().bounded().await.unwrap();
    assert!(poll_fn(|cx| Pin::new(&mut sub).poll_next(cx)).bounded().await.is_none(), "ends after unsubscribe");
}

#[tokio::test]
async fn try_next_pending_and_waiting() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("recv.x").bounded().await.unwrap();
    let started = Instant::now();
    assert!(sub.try_next().is_none());
    assert!(started.elapsed() < Duration::from_millis(500), "try_next must not wait");

    // Nothing comes: a bounded wait times out and leaves the subscription usable.
    assert!(next_within(&mut sub, Duration::from_millis(150)).await.is_err());

    client.publish("recv.x", "a").bounded().await.unwrap();
    client.publish("recv.x", "b").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    assert_eq!(sub.pending(), (2, 2));
    assert_eq!(text(&sub.try_next().expect("queued after flush")), "a");
    assert_eq!(text(&recv(&mut sub, "queued").await), "b");
    assert!(sub.try_next().is_none());
    assert_eq!(sub.pending(), (0, 0));
    assert_eq!(sub.dropped(), 0);

    sub.unsubscribe().bounded().await.unwrap();
    assert!(sub.try_next().is_none());
    assert_ended(&mut sub).await;
}

#[tokio::test]
async fn payload_sizes_around_buffer_boundaries_arrive_intact() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("size.x").bounded().await.unwrap();
    let sizes = [0, 1, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 300_000, client.max_payload()];
    let body = |n: usize| -> Vec<u8> { (0..n).map(|i| (i % 251) as u8).collect() };
    for &n in &sizes {
        client.publish("size.x", body(n)).bounded().await.unwrap();
    }
    for &n in &sizes {
        let msg = recv(&mut sub, "sized message").await;
        assert_eq!(msg.payload().len(), n);
        assert!(msg.payload()[..] == body(n)[..], "payload of {n} bytes corrupted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_volume_with_a_concurrent_reader_loses_nothing() {
    const N: usize = 50_000;
    let server = NatsServer::start();
    let client = connect(&server).await;
    let publisher = connect(&server).await;
    let mut sub = client.subscribe("volume.x").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    let reader = tokio::spawn(async move {
        let mut next = 0usize;
        while next < N {
            let msg = match next_within(&mut sub, WAIT).await {
                Ok(Some(msg)) => msg,
                other => panic!("stalled after {next} messages: {other:?}"),
            };
            assert_eq!(text(&msg), format!("{next:08}"), "out of order");
            next += 1;
        }
        sub.dropped()
    });
    for i in 0..N {
        publisher.publish("volume.x", format!("{i:08}")).bounded().await.unwrap();
    }
    publisher.flush().bounded().await.unwrap();
    let dropped = reader.within(Duration::from_secs(30)).await.expect("reader");
    assert_eq!(dropped, 0, "nothing dropped with the default limits");
    assert_eq!(publisher.statistics().out_msgs, N as u64);
    assert_eq!(client.statistics().in_msgs, N as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_on_one_client_keep_each_tasks_order() {
    const TASKS: usize = 10;
    const EACH: usize = 1000;
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("conc.pub").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    client.publish("conc.pub", format!("{t}:{i}")).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.within(Duration::from_secs(15)).await.expect("a publisher task failed");
    }
    client.flush().bounded().await.unwrap();
    let mut next = [0usize; TASKS];
    for msg in take_queued(&mut sub) {
        let text = text(&msg);
        let (t, i) = text.split_once(':').unwrap();
        let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[t], "task {t}'s publishes arrived out of order");
        next[t] += 1;
    }
    assert_eq!(next, [EACH; TASKS], "messages missing");
    assert_eq!(client.statistics().out_msgs, (TASKS * EACH) as u64);
}

/// Messages keep their order while other tasks issue commands on the same client (flushes, subscribes,
/// unsubscribes, requests): commands must not overtake the driver in handing messages out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_stay_in_order_while_other_tasks_issue_commands() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    const N: usize = 100_000;
    let server = NatsServer::start();
    let client = connect(&server).await;
    let publisher = connect(&server).await;
    let mut sub = client.subscribe("order.x").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let busy = busy_tasks(&client, 2, &stop);
    let reader = tokio::spawn(async move {
        let mut out_of_order = vec![];
        let mut last: Option<usize> = None;
        for n in 0..N {
            let msg = match next_within(&mut sub, WAIT).await {
                Ok(Some(msg)) => msg,
                other => panic!("stalled after {n} messages: {other:?}"),
            };
            let i: usize = text(&msg).parse().unwrap();
            if last.is_some_and(|l| i != l + 1) {
                out_of_order.push((last.unwrap(), i));
            }
            last = Some(i);
        }
        out_of_order
    });
    for i in 0..N {
        publisher.publish("order.x", i.to_string()).bounded().await.unwrap();
    }
    publisher.flush().bounded().await.unwrap();
    let out_of_order = reader.within(Duration::from_secs(30)).await.expect("reader");
    stop.store(true, Ordering::SeqCst);
    for task in busy {
        assert!(task.bounded().await.unwrap() > 0);
    }
    assert!(out_of_order.is_empty(), "messages out of order (previous, next): {out_of_order:?}");
}

/// Spawns `n` tasks that keep issuing commands on `client` (each routes the core's pending events from the
/// calling task) until `stop` is set; each returns how many calls it made.
fn busy_tasks(
    client: &nats_tokio::Client,
    n: usize,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..n)
        .map(|k| {
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let mut calls = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    if k % 2 == 0 {
                        client.flush().await.unwrap();
                    } else {
                        drop(client.subscribe("busy.other").await.unwrap());
                    }
                    calls += 1;
                    tokio::task::yield_now().await;
                }
                calls
            })
        })
        .collect()
}

/// `unsubscribe_after(n)` delivers exactly n messages even while other tasks issue commands on the client:
/// the end of the subscription must not overtake its last messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_after_delivers_exactly_n_while_other_tasks_issue_commands() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    const ROUNDS: usize = 100;
    const MAX: usize = 500;
    let server = NatsServer::start();
    let client = connect(&server).await;
    let publisher = connect(&server).await;
    let stop = Arc::new(AtomicBool::new(false));
    let busy = busy_tasks(&client, 2, &stop);
    let mut short = vec![];
    for round in 0..ROUNDS {
        let subject = format!("maxbusy.{round}");
        let mut sub = client.subscribe(&subject).bounded().await.unwrap();
        sub.unsubscribe_after(MAX as u64).bounded().await.unwrap();
        client.flush().bounded().await.unwrap();
        for i in 0..MAX + 10 {
            publisher.publish(&subject, i.to_string()).bounded().await.unwrap();
        }
        publisher.flush().bounded().await.unwrap();
        let got: Vec<usize> = read_to_end(&mut sub).await.iter().map(|m| text(m).parse().unwrap()).collect();
        if got != (0..MAX).collect::<Vec<_>>() {
            let missing: Vec<usize> = (0..MAX).filter(|i| !got.contains(i)).collect();
            short.push((round, got.len(), missing));
        }
    }
    stop.store(true, Ordering::SeqCst);
    for task in busy {
        task.bounded().await.unwrap();
    }
    assert!(short.is_empty(), "rounds that did not get exactly 0..{MAX} (round, received, missing): {short:?}");
}

/// After `flush()` returns, every message the server sent before its PONG is queued, even while other tasks
/// issue commands on the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_orders_messages_before_it_while_other_tasks_issue_commands() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    const ROUNDS: usize = 200;
    const EACH: usize = 300;
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("flushbusy.x").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let busy = busy_tasks(&client, 2, &stop);
    let mut late = vec![];
    let mut total = 0;
    for round in 0..ROUNDS {
        for i in 0..EACH {
            client.publish("flushbusy.x", i.to_string()).bounded().await.unwrap();
        }
        client.flush().bounded().await.unwrap();
        let queued = take_queued(&mut sub).len();
        total += queued;
        if queued != EACH {
            late.push((round, queued));
        }
    }
    stop.store(true, Ordering::SeqCst);
    for task in busy {
        task.bounded().await.unwrap();
    }
    total += take_queued(&mut sub).len();
    assert!(late.is_empty(), "flush returned before its messages were queued (round, queued of {EACH}): {late:?}");
    assert_eq!(total, ROUNDS * EACH);
}
