//! Helpers shared by the real-server integration tests. Every wait here is bounded: a bug fails a test, it
//! never hangs it.
#![allow(dead_code)]

use nats_blocking::EventReceiver;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nats_blocking::ConnectOptionsExt as _;
use nats_blocking::{Client, ConnectOptions, Error, Event, Message, ReconnectPolicy, Subscriber};
use nats_server_harness::NatsServer;

/// The longest any single expected thing (a message, an event) may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// Options with short, test-friendly timeouts and a fast reconnect backoff.
pub(crate) fn options(url: &str) -> ConnectOptions {
    ConnectOptions::new()
        .server(url)
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(WAIT)
        .flush_timeout(WAIT)
        .drain_timeout(WAIT)
        .reconnect_policy(fast_reconnect())
}

/// Reconnect quickly and for ever: restarts in tests take a few hundred milliseconds.
pub(crate) fn fast_reconnect() -> ReconnectPolicy {
    ReconnectPolicy {
        max_attempts_per_server: None,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        jitter: Duration::from_millis(10),
    }
}

/// Connects to `server` with [`options`].
#[track_caller]
pub(crate) fn connect(server: &NatsServer) -> Client {
    options(&server.url()).connect().unwrap_or_else(|e| panic!("connect to {}: {e}", server.url()))
}

/// The next message, or a panic naming `what` after [`WAIT`].
#[track_caller]
pub(crate) fn recv(sub: &mut Subscriber, what: &str) -> Message {
    match sub.next_timeout(WAIT) {
        Ok(msg) => msg,
        Err(e) => panic!("{what}: expected a message on sid {}, got {e:?}", sub.sid()),
    }
}

/// The payload as UTF-8.
#[track_caller]
pub(crate) fn text(msg: &Message) -> String {
    String::from_utf8(msg.payload().to_vec()).expect("UTF-8 payload")
}

/// The subject as UTF-8.
#[track_caller]
pub(crate) fn subject(msg: &Message) -> String {
    msg.subject().as_str().expect("UTF-8 subject").to_owned()
}

/// Everything already queued on `sub` (call after a `flush`, which orders it after the messages it covers).
pub(crate) fn take_queued(sub: &mut Subscriber) -> Vec<Message> {
    std::iter::from_fn(|| sub.try_next()).collect()
}

/// Reads until the subscription ends, failing if it does not end within [`WAIT`] of the last message.
#[track_caller]
pub(crate) fn read_to_end(sub: &mut Subscriber) -> Vec<Message> {
    let mut out = vec![];
    loop {
        match sub.next_timeout(WAIT) {
            Ok(msg) => out.push(msg),
            Err(Error::Closed) => return out,
            Err(e) => panic!("subscription {} did not end after {} messages: {e:?}", sub.sid(), out.len()),
        }
    }
}

/// Asserts the subscription has ended: no message, `Error::Closed` at once.
#[track_caller]
pub(crate) fn assert_ended(sub: &mut Subscriber) {
    let started = Instant::now();
    match sub.next_timeout(WAIT) {
        Err(Error::Closed) => {}
        other => panic!("subscription {} should have ended, got {other:?}", sub.sid()),
    }
    assert!(started.elapsed() < Duration::from_secs(1), "an ended subscription should not wait");
}

/// Anything events can be received from with a timeout: the client's receiver or a recorder's channel.
pub(crate) trait RecvEvents {
    fn recv_event(&self, timeout: Duration) -> Result<Event, RecvTimeoutError>;
}

impl RecvEvents for EventReceiver {
    fn recv_event(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        self.recv_timeout(timeout)
    }
}

impl RecvEvents for Receiver<Event> {
    fn recv_event(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        self.recv_timeout(timeout)
    }
}

/// Waits for the first event matching `pred`, panicking after `timeout`. Returns it and the events before it.
#[track_caller]
pub(crate) fn wait_event(
    rx: &impl RecvEvents,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> (Event, Vec<Event>) {
    let deadline = Instant::now() + timeout;
    let mut seen = vec![];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_event(left) {
            Ok(e) if pred(&e) => return (e, seen),
            Ok(e) => seen.push(e),
            Err(RecvTimeoutError::Timeout) => panic!("no {what} event within {timeout:?}; saw {seen:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("event channel closed waiting for {what}; saw {seen:?}"),
        }
    }
}

/// Polls `cond` every few milliseconds until it holds, panicking with `what` after `timeout`.
#[track_caller]
pub(crate) fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An event callback that records every event (for events emitted during `connect`, before `events()` can be
/// called), and the receiver it feeds.
pub(crate) fn event_recorder() -> (impl Fn(Event) + Send + Sync + 'static, Receiver<Event>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Arc::new(Mutex::new(tx));
    (move |e| drop(tx.lock().unwrap().send(e)), rx)
}

/// A loopback port with nothing listening on it.
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}
