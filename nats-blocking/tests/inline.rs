//! Inline subscriptions against a real nats-server: handlers on the reader thread answering requests, a wait
//! on the connection from such a handler refused instead of hanging, panics, unsubscribe, drain and close.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{connect, text, wait_event, WAIT};
use nats_blocking::{Error, Event};
use nats_server_harness::NatsServer;

fn deadline() -> Option<Instant> {
    Some(Instant::now() + WAIT)
}

#[test]
fn an_inline_handler_answers_requests_on_the_reader_thread() {
    let server = NatsServer::start();
    let service = connect(&server);
    let (tx, rx) = mpsc::channel();
    let _sub = service
        .subscribe_inline("inline.echo", move |msg| {
            tx.send(std::thread::current().name().map(str::to_owned)).unwrap();
            msg.respond(msg.payload()).unwrap();
        })
        .unwrap();
    service.flush().unwrap();
    let requester = connect(&server);
    for i in 0..200 {
        let reply = requester.request_with_timeout("inline.echo", i.to_string(), WAIT).unwrap();
        assert_eq!(text(&reply), i.to_string());
    }
    let threads: Vec<_> = rx.try_iter().collect();
    assert_eq!(threads.len(), 200);
    assert!(threads.iter().all(|t| t.as_deref() == Some("nats-reader")), "handlers ran on {threads:?}");
}

#[test]
fn requests_from_many_threads_are_all_answered_and_in_order_per_requester() {
    let server = NatsServer::start();
    let service = connect(&server);
    let _sub = service.queue_subscribe_inline("inline.many", "q", |msg| msg.respond(msg.payload()).unwrap()).unwrap();
    service.flush().unwrap();
    let requester = connect(&server);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let c = requester.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    let body = format!("{t}-{i}");
                    assert_eq!(text(&c.request_with_timeout("inline.many", body.clone(), WAIT).unwrap()), body);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("every request answered with its own payload");
    }
}

#[test]
fn waiting_on_the_connection_from_an_inline_handler_fails_at_once() {
    let server = NatsServer::start();
    let client = connect(&server);
    let other = connect(&server);
    let _echo = other.subscribe_with("other.echo", |msg| msg.respond("from other").unwrap()).unwrap();
    other.flush().unwrap();
    let (tx, rx) = mpsc::channel();
    let inner = client.clone();
    let outside = other.clone();
    let _sub = client
        .subscribe_inline("inline.waits", move |_| {
            let started = Instant::now();
            let request = inner.request_with_timeout("other.echo", "x", Duration::from_secs(30));
            let flush = inner.flush();
            let mut plain = inner.subscribe("inline.never").unwrap();
            let next = plain.next_timeout(Duration::from_secs(30));
            let plain_next = plain.next();
            // Another connection's reader answers: that wait is fine.
            let elsewhere = outside.request_with_timeout("other.echo", "x", WAIT).map(|m| text(&m));
            tx.send((request.err(), flush.err(), next.err(), plain_next.is_none(), elsewhere, started.elapsed()))
                .unwrap();
        })
        .unwrap();
    client.flush().unwrap();
    client.publish("inline.waits", "go").unwrap();
    let (request, flush, next, plain_next_none, elsewhere, took) = rx.recv_timeout(WAIT).unwrap();
    assert!(matches!(request, Some(Error::WouldDeadlock)), "{request:?}");
    assert!(matches!(flush, Some(Error::WouldDeadlock)), "{flush:?}");
    assert!(matches!(next, Some(Error::WouldDeadlock)), "{next:?}");
    assert!(plain_next_none);
    assert_eq!(elsewhere.unwrap(), "from other");
    assert!(took < Duration::from_secs(10), "refusals are immediate, took {took:?}");
    // The connection is fine afterwards.
    client.flush().unwrap();
}

#[test]
fn a_panicking_inline_handler_ends_its_own_subscription_only() {
    let server = NatsServer::start();
    let client = connect(&server);
    let panicky = client
        .subscribe_inline("inline.panic", |msg| {
            if msg.payload() == b"boom" {
                panic!("inline handler panicked on purpose");
            }
        })
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let _calm = client.subscribe_inline("inline.calm", move |msg| tx.send(text(&msg)).unwrap()).unwrap();
    client.flush().unwrap();
    client.publish("inline.panic", "boom").unwrap();
    assert!(panicky.wait_ended(deadline()), "the panicking subscription ended");
    assert!(panicky.is_ended());
    client.flush().unwrap();
    let before = client.statistics().in_msgs;
    client.publish("inline.panic", "again").unwrap();
    client.flush().unwrap();
    assert_eq!(client.statistics().in_msgs, before, "unsubscribed on the server too");
    client.publish("inline.calm", "still here").unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "still here");
}

#[test]
fn unsubscribe_returns_once_a_call_in_progress_has_returned() {
    let server = NatsServer::start();
    let client = connect(&server);
    let (started_tx, started) = mpsc::channel();
    let finished = Arc::new(AtomicBool::new(false));
    let done = finished.clone();
    let sub = client
        .subscribe_inline("inline.slow", move |_| {
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            done.store(true, Ordering::SeqCst);
        })
        .unwrap();
    client.flush().unwrap();
    client.publish("inline.slow", "x").unwrap();
    started.recv_timeout(WAIT).unwrap();
    sub.unsubscribe().unwrap();
    assert!(finished.load(Ordering::SeqCst), "unsubscribe returned while the handler still ran");
}

#[test]
fn drain_handles_what_was_sent_then_ends_and_close_ends_the_rest() {
    let server = NatsServer::start();
    let client = connect(&server);
    let (tx, rx) = mpsc::channel();
    let drained = client.subscribe_inline("inline.drain", move |msg| tx.send(text(&msg)).unwrap()).unwrap();
    let open = client.subscribe_inline("inline.open", |_| {}).unwrap();
    client.flush().unwrap();
    for i in 0..100 {
        client.publish("inline.drain", i.to_string()).unwrap();
    }
    drained.drain().unwrap();
    assert!(drained.wait_ended(deadline()), "the drained subscription ended");
    let got: Vec<String> = rx.try_iter().collect();
    assert_eq!(got, (0..100).map(|i| i.to_string()).collect::<Vec<_>>(), "every message sent before the drain");
    assert!(!open.is_ended());
    client.close();
    assert!(open.wait_ended(deadline()), "closing the client ends every inline subscription");
}

#[test]
fn a_handler_that_unsubscribes_is_not_called_again_for_what_was_already_received() {
    let server = NatsServer::start();
    let client = connect(&server);
    let (tx, rx) = mpsc::channel();
    let slot = Arc::new(std::sync::Mutex::new(None));
    let own = slot.clone();
    let sub = client
        .subscribe_inline("inline.once", move |msg| {
            tx.send(text(&msg)).unwrap();
            // Dropping its own handle unsubscribes, from the reader thread.
            drop(own.lock().unwrap().take());
        })
        .unwrap();
    *slot.lock().unwrap() = Some(sub);
    client.flush().unwrap();
    // One burst, so that several messages come in one read.
    for i in 0..50 {
        client.publish("inline.once", i.to_string()).unwrap();
    }
    client.flush().unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "0");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(rx.try_iter().count(), 0, "called again after it unsubscribed");
}

#[test]
fn dropping_the_last_client_handle_held_by_a_handler_does_not_hang_unsubscribe() {
    let server = NatsServer::start();
    let client = connect(&server);
    let held = client.clone();
    let sub = client
        .subscribe_inline("inline.holder", move |_| {
            let _ = held.statistics();
        })
        .unwrap();
    client.flush().unwrap();
    drop(client);
    let (tx, rx) = mpsc::channel();
    // Unsubscribing drops the handler and with it the last client handle, which closes and waits for the reader.
    std::thread::spawn(move || tx.send(sub.unsubscribe().is_ok()).unwrap());
    assert!(rx.recv_timeout(WAIT).expect("unsubscribe returned"));
}

#[test]
fn a_subscription_drained_while_disconnected_ends_without_waiting_for_the_server() {
    let mut server = NatsServer::start();
    let client = connect(&server);
    let events = client.events();
    let sub = client.subscribe_inline("inline.offline", |_| {}).unwrap();
    client.flush().unwrap();
    server.stop();
    wait_event(&events, WAIT, "disconnected", |e| matches!(e, Event::Disconnected(_)));
    sub.drain().unwrap();
    assert!(sub.wait_ended(deadline()), "ended while the server is away");
}
