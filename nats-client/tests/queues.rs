//! The message queue, its receiver and the one-shot slot under the races a client meets: an end while a
//! consumer sleeps, producers and a consumer at full speed (no wake-up lost: a lost one shows as a consumer
//! that sleeps until its deadline with messages waiting), and wakers woken once per delivery, not twice.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use nats_client::queue::{Batch, Empty, MessageQueue, Receiver, Slot};
use nats_client::{Message, PendingLimits};
use nats_proto::SubscriptionEnd;

/// Long enough for any wake-up on a loaded machine; a lost one fails the test after this.
const BOUND: Duration = Duration::from_secs(5);

fn msg(n: usize) -> Message {
    Message::new(nats_proto::Msg::new("s", 1, None, None, n.to_string()), None)
}

fn queue(messages: usize) -> Arc<MessageQueue> {
    Arc::new(MessageQueue::new(PendingLimits { messages, bytes: 1 << 30 }))
}

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count::default());
    (count.clone(), Waker::from(count))
}

#[test]
fn an_end_wakes_a_consumer_blocked_without_a_deadline() {
    let q = queue(16);
    let mut rx = Receiver::new(q.clone());
    let (tx, done) = mpsc::channel();
    thread::spawn(move || tx.send(rx.next(None).map(|_| ())).unwrap());
    thread::sleep(Duration::from_millis(20));
    q.end(SubscriptionEnd::Drained);
    let outcome = done.recv_timeout(BOUND).expect("the consumer woke up");
    assert!(matches!(outcome, Err(Empty::Ended(SubscriptionEnd::Drained))), "{outcome:?}");
}

#[test]
fn messages_queued_before_the_end_are_still_delivered_then_the_end() {
    let q = queue(16);
    let mut rx = Receiver::new(q.clone());
    q.push(msg(1));
    q.push(msg(2));
    q.end(SubscriptionEnd::Unsubscribed);
    q.push(msg(3));
    assert_eq!(rx.next(None).unwrap().payload(), b"1");
    assert_eq!(rx.next(None).unwrap().payload(), b"2");
    assert!(matches!(rx.next(None), Err(Empty::Ended(SubscriptionEnd::Unsubscribed))));
    assert!(matches!(rx.next(None), Err(Empty::Ended(_))), "the end stays");
}

#[test]
fn a_producer_and_a_blocked_consumer_lose_no_wake_up() {
    // Runs of random length, appended and woken as the router does. In lock step (the producer waits until
    // the consumer has taken a run, so the consumer is asleep when the next one comes) a lost wake-up leaves
    // the consumer asleep with a run waiting until its deadline: the test fails. At full speed the order and
    // the count must hold.
    const N: usize = 100_000;
    const LOCK_STEP: usize = 2_000;
    let q = queue(N);
    let mut rx = Receiver::new(q.clone());
    let (taken_tx, taken) = mpsc::channel::<usize>();
    let producer = {
        let q = q.clone();
        thread::spawn(move || {
            let mut batch = Batch::default();
            let (mut n, mut seed) = (0, 0x9e37_79b9_u32);
            while n < N {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                for _ in 0..(1 + seed as usize % 40).min(N - n) {
                    batch.push(msg(n));
                    n += 1;
                }
                assert_eq!(q.append(&mut batch).dropped, 0);
                q.wake();
                if n <= LOCK_STEP {
                    while taken.recv_timeout(BOUND).expect("the consumer took the run") < n {}
                }
            }
            q.end(SubscriptionEnd::Unsubscribed);
        })
    };
    for expected in 0..N {
        let m = rx.next(Some(Instant::now() + BOUND)).unwrap_or_else(|e| panic!("message {expected}: {e:?}"));
        assert_eq!(m.payload(), expected.to_string().as_bytes(), "in order");
        if expected < LOCK_STEP {
            let _ = taken_tx.send(expected + 1);
        }
    }
    assert!(matches!(rx.next(Some(Instant::now() + BOUND)), Err(Empty::Ended(_))));
    producer.join().unwrap();
}

#[test]
fn a_polled_consumer_is_woken_once_per_delivery_and_not_again_without_one() {
    let q = queue(16);
    let mut rx = Receiver::new(q.clone());
    let (count, waker) = counting();
    let mut cx = Context::from_waker(&waker);
    assert!(rx.poll_next(&mut cx).is_pending());
    // The same task polling again registers once, not twice.
    assert!(rx.poll_next(&mut cx).is_pending());
    q.push(msg(1));
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken for the delivery");
    q.wake();
    q.wake();
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "not woken again until it polls again");
    assert!(matches!(rx.poll_next(&mut cx), Poll::Ready(Ok(m)) if m.payload() == b"1"));
    assert!(rx.poll_next(&mut cx).is_pending());
    q.end(SubscriptionEnd::Closed);
    assert_eq!(count.0.load(Ordering::SeqCst), 2, "the end wakes it");
    assert!(matches!(rx.poll_next(&mut cx), Poll::Ready(Err(SubscriptionEnd::Closed))));
}

#[test]
fn past_the_limit_messages_are_counted_not_queued_and_the_consumer_keeps_its_order() {
    let q = queue(3);
    let mut rx = Receiver::new(q.clone());
    for n in 0..5 {
        q.push(msg(n));
    }
    assert_eq!(q.dropped(), 2);
    let got: Vec<_> = std::iter::from_fn(|| rx.try_next()?.ok()).map(|m| m.payload().to_vec()).collect();
    assert_eq!(got, [b"0".to_vec(), b"1".to_vec(), b"2".to_vec()]);
    assert_eq!(rx.dropped(), 2);
}

#[test]
fn a_receiver_that_timed_out_still_gets_what_comes_later() {
    let q = queue(4);
    let mut rx = Receiver::new(q.clone());
    assert!(matches!(rx.next_within(Duration::from_millis(5)), Err(Empty::TimedOut)));
    q.push(msg(7));
    assert_eq!(rx.next_within(BOUND).unwrap().payload(), b"7");
}

#[test]
fn a_slot_set_while_threads_wait_releases_each_and_keeps_the_first_value() {
    let slot = Arc::new(Slot::new());
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let slot = slot.clone();
            thread::spawn(move || slot.wait_cloned(Some(Instant::now() + BOUND)))
        })
        .collect();
    thread::sleep(Duration::from_millis(20));
    slot.set(1);
    slot.set(2);
    for w in waiters {
        assert_eq!(w.join().unwrap(), Some(1), "each cloned waiter sees the first value");
    }
    assert_eq!(slot.wait(None), Some(1), "taken once");
    assert!(!slot.is_set());
}

#[test]
fn a_slot_wakes_every_polling_task_once_and_times_out_a_blocking_waiter() {
    let slot: Slot<u8> = Slot::new();
    let (a, wa) = counting();
    let (b, wb) = counting();
    assert!(slot.poll_cloned(&mut Context::from_waker(&wa)).is_pending());
    assert!(slot.poll_cloned(&mut Context::from_waker(&wa)).is_pending());
    assert!(slot.poll_cloned(&mut Context::from_waker(&wb)).is_pending());
    let start = Instant::now();
    assert_eq!(slot.wait_cloned(Some(start + Duration::from_millis(20))), None);
    assert!(start.elapsed() >= Duration::from_millis(20), "a waiter is not let go before its deadline");
    slot.set(9);
    assert_eq!((a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst)), (1, 1));
    slot.set(10);
    assert_eq!((a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst)), (1, 1), "a second set wakes nobody");
    assert_eq!(slot.poll_take(&mut Context::from_waker(&wa)), Poll::Ready(9));
}
