//! A client that has to stop or to let go: a drain against a server that stopped answering, a publisher
//! waiting for room on a connection that is then lost.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conformance::{wait_event, Finish as _, TestClient};
use nats_client::seam::Subscription as _;
use nats_client::{Error, Event};
use nats_proto::{ClientOp, ConnectionError};
use nats_server_harness::fake::{server_info, FakeServer, STEP};

use crate::{options, MAX_PAYLOAD};

pub(crate) fn drain_against_a_stalled_server_is_bounded<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        let sid = c.expect_sub("a");
        // Deaf from here on: the drain's PING is never answered.
        c.auto_pong = false;
        let ops = c.until_eof(STEP * 2);
        assert!(ops.contains(&ClientOp::Unsub { sid, max: None }), "drain sent no UNSUB: {ops:?}");
    });
    let drain_timeout = Duration::from_millis(300);
    let client = C::connect(options(server.url()).drain_timeout(drain_timeout)).expect("connect");
    let mut sub = client.subscribe("a", None).expect("subscribe");
    let start = Instant::now();
    let result = client.drain();
    let elapsed = start.elapsed();
    let closed = client.is_closed();
    // For the report: when did it close, if not by then?
    let closed_after = (!closed).then(|| {
        while !client.is_closed() && start.elapsed() < Duration::from_secs(8) {
            std::thread::sleep(Duration::from_millis(10));
        }
        (client.is_closed(), start.elapsed())
    });
    assert!(matches!(result, Ok(()) | Err(Error::Timeout)), "drain: {result:?}");
    assert!(elapsed < drain_timeout + Duration::from_secs(2), "drain returned only after {elapsed:?}");
    assert!(
        closed,
        "drain returned {result:?} after {elapsed:?} with the client still open (drain timeout {drain_timeout:?}); \
         (closed, time since drain()) a while later: {closed_after:?}"
    );
    let publish = client.publish("a", None, None, "x".into());
    assert!(matches!(publish, Err(Error::Closed)), "publish after the drain: {publish:?}");
    // The subscription has ended, at once.
    let started = Instant::now();
    let next = sub.next_timeout(STEP);
    assert!(matches!(next, Err(Error::Closed)), "the subscription did not end with the drain: {next:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "an ended subscription should not wait");
    drop(sub);
    drop(client);
    server.finish();
}

/// Closes the client when dropped, on every path (a panic included), so that a publisher parked in it is let
/// go and its thread can be joined: the publisher holds a clone, so dropping ours would not close it.
struct CloseOnDrop<C: TestClient>(C);

impl<C: TestClient> Drop for CloseOnDrop<C> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A server that stops reading: publishers fill the socket buffers and the client's 32 MiB of unwritten
/// bytes, then wait for room (back-pressure). When the connection goes stale those bytes are dropped with it,
/// so the waiting publisher must be let go (its publish then returns; later ones go to the reconnect buffer)
/// rather than wait until some later connection happens to write something.
pub(crate) fn publisher_waiting_for_room_is_released_when_the_connection_is_lost<C: TestClient>() {
    const PAYLOAD: usize = 512 << 10;
    const COUNT: usize = 200;
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        // Read nothing more, answer nothing more; the client's next connection attempts get no INFO.
        s.wait_signal();
        drop(c);
    });
    let client =
        C::connect(options(server.url()).ping_interval(Duration::from_millis(500)).max_pings_out(2)).expect("connect");
    let events = client.events();
    let client = CloseOnDrop(client);

    let published = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (client, published, done) = (client.0.clone(), published.clone(), done.clone());
        std::thread::spawn(move || {
            let payload = nats_blocking::bytes::Bytes::from(vec![7u8; PAYLOAD]);
            let mut result = Ok(());
            for _ in 0..COUNT {
                result = client.publish("big", None, None, payload.clone().into());
                if result.is_err() {
                    break;
                }
                published.fetch_add(1, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
            result
        })
    };

    let (event, _) =
        wait_event(&events, Duration::from_secs(10), "Disconnected", |e| matches!(e, Event::Disconnected(_)));
    assert_eq!(event, Event::Disconnected(ConnectionError::StaleConnection));
    let at_loss = published.load(Ordering::SeqCst);
    assert!(
        at_loss < COUNT,
        "back-pressure never engaged: all {COUNT} publishes of {PAYLOAD} bytes were accepted by a server that \
         reads nothing, before the connection was lost"
    );

    // The connection's unwritten bytes are gone with it: the publisher must not stay parked.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let released = done.load(Ordering::SeqCst);
    let after = published.load(Ordering::SeqCst);
    // Closing releases it in any case, so the thread can be joined.
    server.signal();
    drop(events);
    drop(client);
    let result = publisher.join().expect("the publisher panicked");
    assert!(
        released,
        "publish() still waiting 2 s after the connection was lost ({at_loss} publishes before the loss, \
         {after} after; the publisher ended with {result:?} only once the client was closed)"
    );
    server.finish();
}
