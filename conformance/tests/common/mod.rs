//! What the real-server suites share: connecting to a `nats-server` from `nats-server-harness`, bounded
//! receive helpers, responders on threads of their own, and the `suite!` macro that instantiates every case
//! once per client. Every wait here is bounded: a bug fails a case, it never hangs it.
#![allow(dead_code)]

use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use conformance::{TestClient, TestSubscription};
use nats_client::seam::Subscription as _;
use nats_client::{ConnectOptions, Error, Event, Message};
use nats_proto::ReconnectPolicy;
use nats_server_harness::NatsServer;

/// The longest any single expected thing (a message, an event, a call) may take before the case fails.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// The bound on a whole case, hangs included.
pub(crate) const CASE_LIMIT: Duration = Duration::from_secs(120);

/// Runs one case under the hang guard.
pub(crate) fn run(case: fn()) {
    conformance::within(CASE_LIMIT, case);
}

thread_local! {
    /// [`connect`] uses the server's WebSocket URL (see [`run_over_websocket`]).
    static OVER_WEBSOCKET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs one case under the hang guard over WebSocket: every server the case starts also listens for it, and
/// [`connect`] goes through it (clients a case connects itself stay on `nats://`, beside them).
pub(crate) fn run_over_websocket(case: fn()) {
    conformance::within(CASE_LIMIT, move || {
        nats_server_harness::websocket_by_default(true);
        OVER_WEBSOCKET.with(|w| w.set(true));
        case()
    });
}

/// Instantiates every case once per client: `blocking::<case>` and `tokio::<case>`; after `websocket;`, also
/// once more per client over WebSocket: `blocking_ws::<case>` and `tokio_ws::<case>`.
macro_rules! suite {
    (websocket; $($module:ident :: $case:ident),* $(,)?) => {
        suite! { $($module::$case),* }

        /// The suite on `nats_blocking::Client` over WebSocket.
        mod blocking_ws {
            $(
                #[test]
                fn $case() {
                    crate::common::run_over_websocket(crate::$module::$case::<nats_blocking::Client>);
                }
            )*
        }

        /// The suite on `nats_tokio::Client` over WebSocket.
        mod tokio_ws {
            $(
                #[test]
                fn $case() {
                    crate::common::run_over_websocket(crate::$module::$case::<conformance::TokioClient>);
                }
            )*
        }
    };
    ($($module:ident :: $case:ident),* $(,)?) => {
        /// The suite on `nats_blocking::Client`.
        mod blocking {
            $(
                #[test]
                fn $case() {
                    crate::common::run(crate::$module::$case::<nats_blocking::Client>);
                }
            )*
        }

        /// The suite on `nats_tokio::Client`, driven from blocking code on a shared multi-thread runtime.
        mod tokio {
            $(
                #[test]
                fn $case() {
                    crate::common::run(crate::$module::$case::<conformance::TokioClient>);
                }
            )*
        }
    };
}

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
pub(crate) fn connect<C: TestClient>(server: &NatsServer) -> C {
    let url = if OVER_WEBSOCKET.with(|w| w.get()) { server.ws_url() } else { server.url() };
    C::connect(options(&url)).unwrap_or_else(|e| panic!("{}: connect to {url}: {e}", C::NAME))
}

/// The next message, or a panic naming `what` after [`WAIT`] (or when the subscription ends).
#[track_caller]
pub(crate) fn recv<S: TestSubscription>(sub: &mut S, what: &str) -> Message {
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
pub(crate) fn take_queued<S: TestSubscription>(sub: &mut S) -> Vec<Message> {
    std::iter::from_fn(|| sub.try_next()).collect()
}

/// Reads until the subscription ends, failing if it does not end within [`WAIT`] of the last message.
#[track_caller]
pub(crate) fn read_to_end<S: TestSubscription>(sub: &mut S) -> Vec<Message> {
    let mut out = vec![];
    loop {
        match sub.next_timeout(WAIT) {
            Ok(msg) => out.push(msg),
            Err(Error::Closed) => return out,
            Err(e) => panic!("subscription {} did not end after {} messages: {e:?}", sub.sid(), out.len()),
        }
    }
}

/// Asserts the subscription has ended: no message, `Error::Closed` at once, and `None` from `next_message`.
#[track_caller]
pub(crate) fn assert_ended<S: TestSubscription>(sub: &mut S) {
    let started = Instant::now();
    match sub.next_timeout(WAIT) {
        Err(Error::Closed) => {}
        other => panic!("subscription {} should have ended, got {other:?}", sub.sid()),
    }
    assert!(started.elapsed() < Duration::from_secs(1), "an ended subscription should not wait");
    assert!(sub.next_message().is_none(), "an ended subscription yields nothing");
}

/// Publishes on `from` until `sub` receives one of them, within about [`WAIT`]: for interest that reaches the
/// server asynchronously (across a cluster's routes, or a subscription replayed after `Reconnected`, which is
/// reported before the replay is written). Interest that never arrives still fails.
#[track_caller]
pub(crate) fn publish_until_received<C: TestClient>(from: &C, subject: &str, sub: &mut C::Subscription, tag: &str) {
    for i in 0..50 {
        from.publish(subject, None, None, format!("{tag}-{i}").into()).unwrap();
        if let Ok(msg) = sub.next_timeout(Duration::from_millis(100)) {
            assert!(text(&msg).starts_with(tag), "unexpected {}", text(&msg));
            return;
        }
    }
    panic!("{tag}: no message reached the subscription within 5 s");
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

/// Runs `handle` on every message of `sub`, on a thread of its own, until the subscription ends (the client
/// closing ends it); the thread returns how many it handled.
pub(crate) fn serve<S: TestSubscription>(
    mut sub: S,
    mut handle: impl FnMut(Message) + Send + 'static,
) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut handled = 0;
        while let Some(msg) = sub.next_message() {
            handle(msg);
            handled += 1;
        }
        handled
    })
}

/// A responder on `subject` (in `queue`, if given) answering `prefix + payload`.
#[track_caller]
pub(crate) fn echo<C: TestClient>(
    client: &C,
    subject: &str,
    queue: Option<&str>,
    prefix: &'static str,
) -> JoinHandle<usize> {
    let sub = client.subscribe(subject, queue).unwrap_or_else(|e| panic!("subscribe {subject}: {e:?}"));
    serve(sub, move |msg| {
        let _ = msg.respond(format!("{prefix}{}", text(&msg)));
    })
}

/// An event callback that records every event (for events emitted during `connect`, before `events()` can be
/// called), and the receiver it feeds.
pub(crate) fn event_recorder() -> (impl Fn(Event) + Send + Sync + 'static, Receiver<Event>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Arc::new(Mutex::new(tx));
    (move |e| drop(tx.lock().unwrap().send(e)), rx)
}

/// Waits for the first event of an [`event_recorder`] matching `pred`, panicking after `timeout`. Returns it
/// and the events before it.
#[track_caller]
pub(crate) fn wait_recorded(
    rx: &Receiver<Event>,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> (Event, Vec<Event>) {
    let deadline = Instant::now() + timeout;
    let mut seen = vec![];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) if pred(&e) => return (e, seen),
            Ok(e) => seen.push(e),
            Err(e) => panic!("no {what} event within {timeout:?} ({e:?}); saw {seen:?}"),
        }
    }
}

/// A loopback port with nothing listening on it.
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// Client connections the server has open (needs monitoring).
#[track_caller]
pub(crate) fn server_connections(server: &NatsServer) -> u64 {
    let body = server.monitor_get("/connz").expect("GET /connz");
    let key = "\"num_connections\":";
    let at = body.find(key).unwrap_or_else(|| panic!("num_connections missing from {body}"));
    let digits: String =
        body[at + key.len()..].chars().skip_while(|c| c.is_whitespace()).take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("num_connections is not a number in {body}"))
}
