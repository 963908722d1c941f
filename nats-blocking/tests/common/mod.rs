//! Helpers shared by the real-server integration tests. Every wait here is bounded: a bug fails a test, it
//! never hangs it.
#![allow(dead_code)]

use nats_blocking::EventReceiver;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use nats_blocking::ConnectOptionsExt as _;
use nats_blocking::{Client, ConnectOptions, Event, Message, ReconnectPolicy, Subscriber};
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

/// Anything events can be received from with a timeout: the client's receiver or a recorder's channel.
pub(crate) trait RecvEvents {
    fn recv_event(&self, timeout: Duration) -> Result<Event, RecvTimeoutError>;
}

impl RecvEvents for EventReceiver {
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
