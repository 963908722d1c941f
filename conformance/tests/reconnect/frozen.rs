//! A server frozen with `SIGSTOP`: the keep-alive finds the connection stale, and a publisher waiting for
//! room on it is let go.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use conformance::{wait_event, TestClient};
use nats_client::{Error, Event};
use nats_proto::ConnectionError;
use nats_server_harness::NatsServer;

use crate::common::{options, recv, text, WAIT};
use crate::{is_disconnected, is_reconnected, signal, RECONNECT_WAIT};

pub(crate) fn a_frozen_server_is_detected_as_stale_and_left<C: TestClient>() {
    let mut server = NatsServer::start();
    let client = C::connect(options(&server.url()).ping_interval(Duration::from_millis(100)).max_pings_out(2)).unwrap();
    let events = client.events();
    let mut sub = client.subscribe("rc.stale", None).unwrap();
    client.flush().unwrap();
    signal(&server, "-STOP");
    let frozen = Instant::now();
    let lost =
        std::panic::catch_unwind(AssertUnwindSafe(|| wait_event(&events, WAIT, "Disconnected", is_disconnected)));
    signal(&server, "-CONT");
    let (lost, _) = lost.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    assert_eq!(lost, Event::Disconnected(ConnectionError::StaleConnection));
    assert!(frozen.elapsed() < Duration::from_secs(2), "stale after {:?}", frozen.elapsed());
    wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    client.publish("rc.stale", None, None, "alive".into()).unwrap();
    assert_eq!(text(&recv(&mut sub, "after the stale connection")), "alive");
    server.stop();
}

pub(crate) fn a_publisher_waiting_on_a_frozen_server_is_released_when_the_connection_is_lost<C: TestClient>() {
    let server = NatsServer::start();
    let client = C::connect(options(&server.url()).ping_interval(Duration::from_millis(200)).max_pings_out(2)).unwrap();
    let events = client.events();
    signal(&server, "-STOP");
    // The server reads nothing: socket buffers fill, then the client's 32 MiB of unwritten bytes, and the
    // publisher waits for room.
    let (tx, rx) = std::sync::mpsc::channel();
    let c = client.clone();
    let publisher = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        let mut ok = 0;
        let end = loop {
            match c.publish("rc.frozen", None, None, chunk[..].into()) {
                Ok(()) => ok += 1,
                Err(e) => break e,
            }
            // 200 MiB is far past the 32 MiB of unwritten bytes plus the socket buffers.
            if ok >= 200 {
                break Error::Timeout;
            }
        };
        tx.send((ok, format!("{end:?}"))).unwrap();
    });
    let lost =
        std::panic::catch_unwind(AssertUnwindSafe(|| wait_event(&events, WAIT, "Disconnected", is_disconnected)));
    // Disconnected: publishes go to the (8 MiB) reconnect buffer until it is full, instead of waiting for room
    // on a connection that no longer exists.
    let result = rx.recv_timeout(WAIT);
    signal(&server, "-CONT");
    let (lost, _) = lost.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    assert_eq!(lost, Event::Disconnected(ConnectionError::StaleConnection));
    let (ok, end) = result.expect("the publisher is still waiting after the connection was lost");
    assert!(ok < 200, "back-pressure never engaged: {ok} publishes of 1 MiB were accepted by a frozen server");
    assert!(end.starts_with("Command(ReconnectBufferFull"), "publisher ended with {end} after {ok} publishes");
    publisher.join().unwrap();
    client.close();
}
