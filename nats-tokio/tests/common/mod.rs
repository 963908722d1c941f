//! Helpers shared by the real-server integration tests of the async client. Every wait here is bounded: a
//! bug fails a test, it never hangs it.
#![allow(dead_code)]

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nats_server_harness::NatsServer;
use nats_tokio::ConnectOptionsExt as _;
use nats_tokio::{Client, ConnectOptions, Event, Events, Message, ReconnectPolicy, Subscriber};

/// The longest any single expected thing (a message, an event, a call) may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// A future that must complete within a limit; it panics, naming where it was awaited, when it does not.
pub(crate) struct Bounded<F: Future> {
    inner: Pin<Box<tokio::time::Timeout<F>>>,
    limit: Duration,
    at: &'static Location<'static>,
}

impl<F: Future> Future for Bounded<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let (limit, at) = (self.limit, self.at);
        match self.inner.as_mut().poll(cx) {
            Poll::Ready(Ok(v)) => Poll::Ready(v),
            Poll::Ready(Err(_)) => panic!("the call awaited at {at} did not complete within {limit:?}"),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// `.bounded()` / `.within(limit)` on every future: a hang becomes a panic naming the call site.
pub(crate) trait BoundedExt: Future + Sized {
    /// Completes within [`WAIT`] or panics.
    #[track_caller]
    fn bounded(self) -> Bounded<Self> {
        self.within(WAIT)
    }

    /// Completes within `limit` or panics.
    #[track_caller]
    fn within(self, limit: Duration) -> Bounded<Self> {
        Bounded { inner: Box::pin(tokio::time::timeout(limit, self)), limit, at: Location::caller() }
    }
}

impl<F: Future> BoundedExt for F {}

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
        jitter: Duration::ZERO,
    }
}

/// Connects to `server` with [`options`].
pub(crate) async fn connect(server: &NatsServer) -> Client {
    let url = server.url();
    match options(&url).connect().bounded().await {
        Ok(client) => client,
        Err(e) => panic!("connect to {url}: {e}"),
    }
}

/// The next message, or a panic naming `what` after [`WAIT`] (or when the subscription ends).
#[track_caller]
pub(crate) fn recv<'a>(sub: &'a mut Subscriber, what: &'a str) -> impl Future<Output = Message> + 'a {
    let at = Location::caller();
    async move {
        let sid = sub.sid();
        match tokio::time::timeout(WAIT, sub.next()).await {
            Ok(Some(msg)) => msg,
            Ok(None) => panic!("{what} (at {at}): subscription {sid} ended (end reason {:?})", sub.end_reason()),
            Err(_) => panic!("{what} (at {at}): no message on subscription {sid} within {WAIT:?}"),
        }
    }
}

/// The next message within `limit`: `Err(())` when none came in time, `Ok(None)` when the subscription ended.
pub(crate) async fn next_within(sub: &mut Subscriber, limit: Duration) -> Result<Option<Message>, ()> {
    tokio::time::timeout(limit, sub.next()).await.map_err(|_| ())
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

/// Reads until the subscription ends, failing if it does not end within [`WAIT`] of the last message.
#[track_caller]
pub(crate) fn read_to_end(sub: &mut Subscriber) -> impl Future<Output = Vec<Message>> + '_ {
    let at = Location::caller();
    async move {
        let mut out = vec![];
        loop {
            match tokio::time::timeout(WAIT, sub.next()).await {
                Ok(Some(msg)) => out.push(msg),
                Ok(None) => return out,
                Err(_) => panic!("(at {at}) subscription {} did not end after {} messages", sub.sid(), out.len()),
            }
        }
    }
}

/// Asserts the subscription has ended: no message, `None` at once.
#[track_caller]
pub(crate) fn assert_ended(sub: &mut Subscriber) -> impl Future<Output = ()> + '_ {
    let at = Location::caller();
    async move {
        let started = Instant::now();
        match tokio::time::timeout(WAIT, sub.next()).await {
            Ok(None) => {}
            Ok(Some(msg)) => panic!("(at {at}) subscription {} should have ended, got {msg:?}", sub.sid()),
            Err(_) => panic!("(at {at}) subscription {} should have ended, it still waits", sub.sid()),
        }
        assert!(started.elapsed() < Duration::from_secs(1), "(at {at}) an ended subscription should not wait");
    }
}

/// Waits for the first event matching `pred` on the `events()` stream, panicking after `timeout`. Returns it
/// and the events before it.
pub(crate) async fn wait_event(
    events: &mut Events,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> (Event, Vec<Event>) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = vec![];
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(e)) if pred(&e) => return (e, seen),
            Ok(Some(e)) => seen.push(e),
            Ok(None) => panic!("the event stream ended waiting for {what}; saw {seen:?}"),
            Err(_) => panic!("no {what} event within {timeout:?}; saw {seen:?}"),
        }
    }
}

/// Polls `cond` every few milliseconds until it holds, panicking with `what` after `timeout`.
pub(crate) async fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A loopback port with nothing listening on it.
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// A numeric field (`"name": 12`) of a monitoring endpoint's JSON body.
#[track_caller]
pub(crate) fn json_number(body: &str, field: &str) -> u64 {
    let key = format!("\"{field}\":");
    let at = body.find(&key).unwrap_or_else(|| panic!("{field} missing from {body}"));
    let digits: String =
        body[at + key.len()..].chars().skip_while(|c| c.is_whitespace()).take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("{field} is not a number in {body}"))
}

/// Subscriptions the server holds over all clients (needs monitoring).
#[track_caller]
pub(crate) fn server_subscriptions(server: &NatsServer) -> u64 {
    json_number(&server.monitor_get("/subsz").expect("GET /subsz"), "num_subscriptions")
}
