//! The shared state's waiting tables (requests, `request_many`, flushes, event receivers) and the driver's
//! wake-ups, on a driver that does no I/O: the test plays the server by feeding bytes to the core and reading
//! what it wrote, as a driver would.
//!
//! Races: a connection closed while threads wait on every kind of table, replies that come after a request
//! was cancelled, a close racing many requests. Every waiter must come back, with the right outcome, and the
//! driver must be woken when (and only when) a command leaves it something of its own to do.

use nats_client::StdInstant as _;
use std::sync::{mpsc, Arc, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use nats_client::inflight::{flush_outcome, InFlight};
use nats_client::queue::{Empty, Receiver};
use nats_client::router::Wakeups;
use nats_client::shared::{Driver, Locked, Shared, Urgency};
use nats_client::{ConnectOptions, Error, Event};
use nats_proto::{Action, Connection, Payload, ServerAddr, WriteBuffer};

/// Long enough for any waiter to come back on a loaded machine; a hang fails well before the test harness'.
const BOUND: Duration = Duration::from_secs(10);

/// A driver that does no I/O: it counts what it is asked to do.
struct NoIo;

#[derive(Default)]
struct Counts {
    wakes: usize,
    space_freed: usize,
}

impl Driver for NoIo {
    type State = Counts;
    type Signals = ();

    fn send<'a>(_: &'a Shared<Self>, core: MutexGuard<'a, Locked<Self>>, _: Urgency) -> MutexGuard<'a, Locked<Self>> {
        core
    }

    fn wake(_: &Shared<Self>, core: &mut Locked<Self>) {
        core.driver().wakes += 1;
    }

    fn space_freed(_: &Shared<Self>, core: &mut Locked<Self>) {
        core.driver().space_freed += 1;
    }
}

/// A connected client on [`NoIo`], and the test as its server.
struct Harness {
    shared: Arc<Shared<NoIo>>,
    /// The subscription id of the request mux, once a request subscribed it.
    mux_sid: Option<u64>,
}

impl Harness {
    /// Through the handshake: dial, INFO, CONNECT + PING, PONG; events routed.
    fn connected() -> Self {
        let (mut config, settings, _) = ConnectOptions::new().server("nats://127.0.0.1:4222").into_parts().unwrap();
        config.randomize_servers = false;
        let now = nats_proto::Instant::now();
        let shared = Shared::<NoIo>::new(Connection::new(config, now), settings, vec![]);
        let h = Self { shared, mux_sid: None };
        {
            let mut core = h.shared.lock();
            let addr = ServerAddr::parse("nats://127.0.0.1:4222").unwrap();
            assert!(matches!(core.conn_mut().poll_action(), Some(Action::Dial(a)) if a == addr));
            core.set_transport(Some(NoIo));
            core.conn_mut().handle_connected(now);
        }
        h.feed(r#"INFO {"server_id":"S","version":"2.11.0","proto":1,"headers":true,"max_payload":1048576}"#);
        assert!(h.sent().ends_with("PING\r\n"));
        h.feed("PONG");
        assert!(h.shared.lock().conn().is_connected());
        h
    }

    /// Feeds one server line (CRLF added) to the core and routes the events it caused.
    fn feed(&self, line: &str) {
        let mut core = self.shared.lock();
        let mut buf = BytesMut::from(format!("{line}\r\n").as_bytes());
        core.ingest(&self.shared, nats_proto::Instant::now(), &mut buf);
        let mut wake = Wakeups::default();
        core.take_filled(&mut wake);
        while let Some(event) = core.conn_mut().poll_event() {
            core.dispatch(&self.shared, event, &mut wake);
        }
        drop(core);
        wake.wake_all();
    }

    /// What the client wrote since last asked.
    fn sent(&self) -> String {
        let mut wire = WriteBuffer::new();
        self.shared.lock().conn_mut().poll_transmit(&mut wire);
        String::from_utf8(wire.take_bytes().to_vec()).unwrap()
    }

    /// The reply subject of the last `PUB <subject>` the client wrote (a request), noting the mux's SUB.
    fn request_reply_subject(&mut self, subject: &str) -> String {
        let sent = self.sent();
        for line in sent.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            if words.first() == Some(&"SUB") && words[1].starts_with("_INBOX.") {
                self.mux_sid = words.last().and_then(|s| s.parse().ok());
            }
        }
        let line = sent.lines().rfind(|l| l.starts_with(&format!("PUB {subject} "))).expect("a request was sent");
        line.split(' ').nth(2).expect("with a reply subject").to_owned()
    }

    /// Answers on `reply` as a responder would.
    fn answer(&self, reply: &str, payload: &str) {
        let sid = self.mux_sid.expect("the mux subscribed");
        let mut core = self.shared.lock();
        let mut buf = BytesMut::from(format!("MSG {reply} {sid} {}\r\n{payload}\r\n", payload.len()).as_bytes());
        core.ingest(&self.shared, nats_proto::Instant::now(), &mut buf);
        let mut wake = Wakeups::default();
        while let Some(event) = core.conn_mut().poll_event() {
            core.dispatch(&self.shared, event, &mut wake);
        }
        drop(core);
        wake.wake_all();
    }

    fn wakes(&self) -> usize {
        self.shared.lock().driver_ref().wakes
    }
}

/// Runs `f` on a thread and returns its result, failing if it takes longer than [`BOUND`].
fn on_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> mpsc::Receiver<R> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

#[test]
fn a_reply_reaches_its_request_and_a_late_one_is_dropped() {
    let mut h = Harness::connected();
    let request = InFlight::send(&h.shared, "svc", None, Payload::from("q"), BOUND).unwrap();
    let reply = h.request_reply_subject("svc");
    h.answer(&reply, "first");
    assert!(request.is_ready());
    assert_eq!(request.wait(None).unwrap().payload(), b"first");
    // The request is over: a second answer has nowhere to go, and does no harm.
    h.answer(&reply, "second");
    let next = InFlight::send(&h.shared, "svc", None, Payload::from("q2"), BOUND).unwrap();
    let reply2 = h.request_reply_subject("svc");
    assert_ne!(reply, reply2, "each request has a reply subject of its own");
    h.answer(&reply2, "third");
    assert_eq!(next.wait(None).unwrap().payload(), b"third");
}

#[test]
fn outcomes_are_set_once_the_lock_is_released_not_under_it() {
    let mut h = Harness::connected();
    let request = InFlight::send(&h.shared, "svc", None, Payload::from("q"), BOUND).unwrap();
    let reply = h.request_reply_subject("svc");
    let sid = h.mux_sid.expect("the mux subscribed");
    let flush = h.shared.flush(BOUND).unwrap();
    let mut core = h.shared.lock();
    let mut buf = BytesMut::from(format!("MSG {reply} {sid} 1\r\na\r\nPONG\r\n").as_bytes());
    core.ingest(&h.shared, nats_proto::Instant::now(), &mut buf);
    let mut wake = Wakeups::default();
    while let Some(event) = core.conn_mut().poll_event() {
        core.dispatch(&h.shared, event, &mut wake);
    }
    // A waiter woken now would only wake to wait for the lock this thread holds.
    assert!(!request.is_ready() && !flush.is_set());
    drop(core);
    wake.wake_all();
    assert!(request.is_ready() && flush.is_set());
    assert_eq!(request.wait(None).unwrap().payload(), b"a");

    // Outcomes left in a dropped `Wakeups` are set all the same: nobody is left waiting.
    let late = h.shared.flush(BOUND).unwrap();
    let mut core = h.shared.lock();
    let mut buf = BytesMut::from(&b"PONG\r\n"[..]);
    core.ingest(&h.shared, nats_proto::Instant::now(), &mut buf);
    let mut wake = Wakeups::default();
    while let Some(event) = core.conn_mut().poll_event() {
        core.dispatch(&h.shared, event, &mut wake);
    }
    drop(core);
    drop(wake);
    assert!(matches!(late.wait(None).map(flush_outcome), Some(Ok(()))));
}

#[test]
fn a_cancelled_request_takes_no_reply_and_leaves_nothing_waiting() {
    let mut h = Harness::connected();
    let request = InFlight::send(&h.shared, "svc", None, Payload::from("q"), BOUND).unwrap();
    let reply = h.request_reply_subject("svc");
    drop(request);
    h.answer(&reply, "late");
    // The connection still closes cleanly and nothing blocks on the dropped request.
    h.shared.close();
    assert!(h.shared.closed().wait_cloned(Some(Instant::now() + BOUND)).is_some());
}

#[test]
fn closing_ends_every_waiter_blocked_on_another_thread() {
    let h = Harness::connected();
    let shared = h.shared.clone();
    let request = {
        let shared = shared.clone();
        on_thread(move || InFlight::send(&shared, "svc", None, Payload::from("q"), BOUND).unwrap().wait(None))
    };
    let (_, many) = shared.request_many("svc.all", None, Payload::from("q"), BOUND).unwrap();
    let replies = on_thread(move || Receiver::new(many).next(None).map(|_| ()));
    let flush = shared.flush(BOUND).unwrap();
    let flushed = on_thread(move || flush.wait(None).map(flush_outcome));
    let first_connect = {
        let shared = shared.clone();
        on_thread(move || shared.first_connect().wait_cloned(None))
    };
    let events = shared.events();
    // Let the threads block (not needed for correctness: a waiter that comes late finds the outcome set).
    thread::sleep(Duration::from_millis(50));
    let before = h.wakes();
    shared.close();
    assert!(h.wakes() > before, "a close must wake the driver (it writes what is left and ends)");

    assert!(matches!(request.recv_timeout(BOUND).expect("the request came back"), Err(Error::Closed)));
    assert!(matches!(replies.recv_timeout(BOUND).expect("request_many came back"), Err(Empty::Ended(_))));
    assert!(matches!(flushed.recv_timeout(BOUND).expect("the flush came back"), Some(Err(Error::Closed))));
    assert_eq!(first_connect.recv_timeout(BOUND).expect("first connect"), Some(Ok(())), "it had connected");
    let mut saw_closed = false;
    while let Ok(event) = events.try_recv() {
        saw_closed |= matches!(event, Event::Closed);
    }
    assert!(saw_closed, "the receiver saw the close");
    // After the close: new receivers end at once, new commands fail at once.
    assert!(shared.events().try_recv().is_err());
    assert!(matches!(InFlight::send(&shared, "svc", None, Payload::from("q"), BOUND), Err(Error::Closed)));
    assert!(matches!(shared.flush(BOUND), Err(Error::Closed)));
}

#[test]
fn a_flush_is_answered_by_its_pong_and_only_by_it() {
    let h = Harness::connected();
    let first = h.shared.flush(BOUND).unwrap();
    let second = h.shared.flush(BOUND).unwrap();
    assert_eq!(h.sent(), "PING\r\nPING\r\n");
    h.feed("PONG");
    assert!(first.is_set() && !second.is_set(), "PONGs answer flushes in order");
    h.feed("PONG");
    assert!(matches!(second.wait(None).map(flush_outcome), Some(Ok(()))));
    assert!(matches!(first.wait(None).map(flush_outcome), Some(Ok(()))));
}

#[test]
fn a_close_racing_many_requests_leaves_no_waiter_behind() {
    for round in 0..20 {
        let h = Harness::connected();
        // Requesters start before, during and after the close: each must end with `Closed`, either at once
        // (sent after the close) or when the close ends its wait.
        let waiters: Vec<_> = (0..8)
            .map(|i| {
                let shared = h.shared.clone();
                on_thread(move || {
                    thread::sleep(Duration::from_micros(((round * 8 + i) % 5) * 200));
                    InFlight::send(&shared, "svc", None, Payload::from("q"), BOUND)
                        .and_then(|request| request.wait(Some(Instant::now() + BOUND)))
                })
            })
            .collect();
        thread::sleep(Duration::from_micros(400));
        h.shared.close();
        for w in waiters {
            let outcome = w.recv_timeout(BOUND).expect("every requester came back");
            assert!(matches!(outcome, Err(Error::Closed)), "nobody answers, so only the close ends them: {outcome:?}");
        }
    }
}

#[test]
fn only_commands_that_leave_the_driver_work_wake_it_and_once() {
    let h = Harness::connected();
    let before = h.wakes();
    let (sid, _queue) = h.shared.subscribe("plain", None).unwrap();
    h.shared.unsubscribe(sid, None).unwrap();
    let _flush = h.shared.flush(BOUND).unwrap();
    assert_eq!(h.wakes(), before, "bytes alone are the write policy's business, not a wake-up");
    h.shared.close();
    assert_eq!(h.wakes(), before + 1, "a close wakes the driver once");
    h.shared.close();
    assert_eq!(h.wakes(), before + 2, "every later command on a closed connection wakes it again, harmlessly");
}

/// A reconnect's replay (subscriptions, and what was published while down) is marked urgent, so a driver letting
/// a flow of publishes gather writes it at once: `Reconnected` is reported before it is written, and a user acting
/// on the event expects the subscriptions back in place.
#[test]
fn a_reconnect_marks_its_replay_urgent_so_no_driver_holds_it_back() {
    let h = Harness::connected();
    let (_sid, _queue) = h.shared.subscribe("kept", None).unwrap();
    assert!(h.sent().contains("SUB kept "));
    let mut now = nats_proto::Instant::now();
    {
        let mut core = h.shared.lock();
        core.conn_mut().handle_eof(now);
        // The loss closes the transport, then (after the backoff) dials again.
        let mut dialed = false;
        for _ in 0..100 {
            match core.conn_mut().poll_action() {
                Some(Action::Dial(_)) => {
                    dialed = true;
                    break;
                }
                Some(Action::CloseTransport) => drop(core.set_transport(None)),
                Some(_) => {}
                None => {
                    now += Duration::from_millis(100);
                    core.conn_mut().handle_timeout(now);
                }
            }
        }
        assert!(dialed, "the core dials again after a loss");
        core.set_transport(Some(NoIo));
        core.conn_mut().handle_connected(now);
    }
    drop(h.shared.publish(b"while.down", None, None, Payload::from(&b"x"[..]), Urgency::Batch).unwrap());
    h.feed(r#"INFO {"server_id":"S","version":"2.11.0","proto":1,"headers":true,"max_payload":1048576}"#);
    assert!(h.sent().ends_with("PING\r\n"));
    assert!(!h.shared.lock().is_urgent());
    h.feed("PONG");
    assert!(h.shared.lock().is_urgent(), "the replay must not wait for a gathering driver");
    let replay = h.sent();
    assert!(replay.contains("SUB kept ") && replay.contains("PUB while.down 1"), "{replay}");
}
