//! Order and completeness under load: a high-volume stream, concurrent publishers on one client, and other
//! threads issuing commands (flushes, subscribes, unsubscribes) on the client meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use conformance::{TestClient, TestSubscription as _};
use nats_client::seam::Subscription as _;
use nats_server_harness::NatsServer;

use crate::common::{connect, read_to_end, take_queued, text, WAIT};

pub(crate) fn high_volume_with_a_concurrent_reader_loses_nothing<C: TestClient>() {
    const N: usize = 50_000;
    let server = NatsServer::start();
    let client: C = connect(&server);
    let publisher: C = connect(&server);
    let mut sub = client.subscribe("volume.x", None).unwrap();
    client.flush().unwrap();
    let reader = std::thread::spawn(move || {
        let mut next = 0usize;
        while next < N {
            let msg = sub.next_timeout(WAIT).unwrap_or_else(|e| panic!("stalled after {next} messages: {e:?}"));
            assert_eq!(text(&msg), format!("{next:08}"), "out of order");
            next += 1;
        }
        sub.dropped()
    });
    for i in 0..N {
        publisher.publish("volume.x", None, None, format!("{i:08}").into()).unwrap();
    }
    publisher.flush().unwrap();
    assert_eq!(reader.join().expect("reader"), 0, "nothing dropped with the default limits");
    assert_eq!(publisher.statistics().out_msgs, N as u64);
    assert_eq!(client.statistics().in_msgs, N as u64);
}

pub(crate) fn concurrent_publishers_on_one_client_keep_each_threads_order<C: TestClient>() {
    const THREADS: usize = 10;
    const EACH: usize = 1000;
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("conc.pub", None).unwrap();
    client.flush().unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    client.publish("conc.pub", None, None, format!("{t}:{i}").into()).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a publisher thread failed");
    }
    client.flush().unwrap();
    let mut next = [0usize; THREADS];
    for msg in take_queued(&mut sub) {
        let text = text(&msg);
        let (t, i) = text.split_once(':').unwrap();
        let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[t], "thread {t}'s publishes arrived out of order");
        next[t] += 1;
    }
    assert_eq!(next, [EACH; THREADS], "messages missing");
    assert_eq!(client.statistics().out_msgs, (THREADS * EACH) as u64);
}

/// Starts `n` threads that keep issuing commands on `client` (flushes, or a subscribe and its drop) until
/// `stop` is set; each returns how many calls it made.
fn busy_threads<C: TestClient>(client: &C, n: usize, stop: &Arc<AtomicBool>) -> Vec<JoinHandle<u64>> {
    (0..n)
        .map(|k| {
            let (client, stop) = (client.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut calls = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    if k % 2 == 0 {
                        client.flush().unwrap();
                    } else {
                        drop(client.subscribe("busy.other", None).unwrap());
                    }
                    calls += 1;
                    std::thread::yield_now();
                }
                calls
            })
        })
        .collect()
}

/// Messages keep their order while other threads issue commands on the same client: commands must not
/// overtake the connection in handing messages out.
pub(crate) fn messages_stay_in_order_while_other_threads_issue_commands<C: TestClient>() {
    const N: usize = 100_000;
    let server = NatsServer::start();
    let client: C = connect(&server);
    let publisher: C = connect(&server);
    let mut sub = client.subscribe("order.x", None).unwrap();
    client.flush().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let busy = busy_threads(&client, 2, &stop);
    let reader = std::thread::spawn(move || {
        let mut out_of_order = vec![];
        let mut last: Option<usize> = None;
        for n in 0..N {
            let msg = sub.next_timeout(WAIT).unwrap_or_else(|e| panic!("stalled after {n} messages: {e:?}"));
            let i: usize = text(&msg).parse().unwrap();
            if last.is_some_and(|l| i != l + 1) {
                out_of_order.push((last.unwrap(), i));
            }
            last = Some(i);
        }
        out_of_order
    });
    for i in 0..N {
        publisher.publish("order.x", None, None, i.to_string().into()).unwrap();
    }
    publisher.flush().unwrap();
    let out_of_order = reader.join().expect("reader");
    stop.store(true, Ordering::SeqCst);
    for thread in busy {
        assert!(thread.join().unwrap() > 0);
    }
    assert!(out_of_order.is_empty(), "messages out of order (previous, next): {out_of_order:?}");
}

/// `unsubscribe_after(n)` delivers exactly n messages even while other threads issue commands on the
/// client: the end of the subscription must not overtake its last messages.
pub(crate) fn unsubscribe_after_delivers_exactly_n_while_other_threads_issue_commands<C: TestClient>() {
    const ROUNDS: usize = 100;
    const MAX: usize = 500;
    let server = NatsServer::start();
    let client: C = connect(&server);
    let publisher: C = connect(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let busy = busy_threads(&client, 2, &stop);
    let mut short = vec![];
    for round in 0..ROUNDS {
        let subject = format!("maxbusy.{round}");
        let mut sub = client.subscribe(&subject, None).unwrap();
        sub.unsubscribe_after(MAX as u64).unwrap();
        client.flush().unwrap();
        for i in 0..MAX + 10 {
            publisher.publish(&subject, None, None, i.to_string().into()).unwrap();
        }
        publisher.flush().unwrap();
        let got: Vec<usize> = read_to_end(&mut sub).iter().map(|m| text(m).parse().unwrap()).collect();
        if got != (0..MAX).collect::<Vec<_>>() {
            let missing: Vec<usize> = (0..MAX).filter(|i| !got.contains(i)).collect();
            short.push((round, got.len(), missing));
        }
    }
    stop.store(true, Ordering::SeqCst);
    for thread in busy {
        thread.join().unwrap();
    }
    assert!(short.is_empty(), "rounds that did not get exactly 0..{MAX} (round, received, missing): {short:?}");
}

/// After `flush()` returns, every message the server sent before its PONG is queued, even while other
/// threads issue commands on the client.
pub(crate) fn flush_orders_messages_before_it_while_other_threads_issue_commands<C: TestClient>() {
    const ROUNDS: usize = 200;
    const EACH: usize = 300;
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("flushbusy.x", None).unwrap();
    client.flush().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let busy = busy_threads(&client, 2, &stop);
    let mut late = vec![];
    let mut total = 0;
    for round in 0..ROUNDS {
        for i in 0..EACH {
            client.publish("flushbusy.x", None, None, i.to_string().into()).unwrap();
        }
        client.flush().unwrap();
        let queued = take_queued(&mut sub).len();
        total += queued;
        if queued != EACH {
            late.push((round, queued));
        }
    }
    stop.store(true, Ordering::SeqCst);
    for thread in busy {
        thread.join().unwrap();
    }
    total += take_queued(&mut sub).len();
    assert!(late.is_empty(), "flush returned before its messages were queued (round, queued of {EACH}): {late:?}");
    assert_eq!(total, ROUNDS * EACH);
}
