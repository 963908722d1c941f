//! Publishing through a restart: flushed publishes survive, and the reconnect buffer's limit is a typed error.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use conformance::{wait_event, TestClient};
use nats_client::{Error, PendingLimits};
use nats_proto::CommandError;
use nats_server_harness::NatsServer;

use crate::common::{options, take_queued, text, wait_until, WAIT};
use crate::{is_disconnected, is_reconnected, RECONNECT_WAIT};

/// Progress of the publisher thread in [`flushed_publishes_survive_a_restart_mid_stream`].
#[derive(Default)]
struct Progress {
    /// Set just before the server is stopped.
    stopping: bool,
    /// Every publish below this was confirmed by a flush that returned Ok before `stopping`.
    confirmed: u64,
    flushes_ok: u64,
}

pub(crate) fn flushed_publishes_survive_a_restart_mid_stream<C: TestClient>() {
    let mut server = NatsServer::start();
    let limits = PendingLimits { messages: 1_000_000, bytes: 256 << 20 };
    let client = C::connect(options(&server.url()).pending_limits(limits)).unwrap();
    let events = client.events();
    let mut sub = client.subscribe("rc.stream", None).unwrap();
    client.flush().unwrap();
    let progress = Arc::new(Mutex::new(Progress::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (client, progress, stop) = (client.clone(), progress.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut ok, mut errors, mut seq) = (vec![], vec![], 0u64);
            while !stop.load(Ordering::SeqCst) && seq < 1_000_000 {
                match client.publish("rc.stream", None, None, seq.to_string().into()) {
                    Ok(()) => ok.push(seq),
                    Err(e) => errors.push(format!("{seq}: {e:?}")),
                }
                seq += 1;
                if seq % 10 == 0 && client.flush().is_ok() {
                    let mut p = progress.lock().unwrap();
                    p.flushes_ok += 1;
                    if !p.stopping {
                        p.confirmed = seq;
                    }
                }
            }
            (ok, errors)
        })
    };
    wait_until(WAIT, "the publisher is streaming", || progress.lock().unwrap().confirmed >= 300);
    let confirmed = {
        let mut p = progress.lock().unwrap();
        p.stopping = true;
        p.confirmed
    };
    server.stop();
    wait_event(&events, WAIT, "Disconnected", is_disconnected);
    server.restart();
    wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    let flushes_at_reconnect = progress.lock().unwrap().flushes_ok;
    wait_until(WAIT, "the publisher goes on after the reconnect", || {
        progress.lock().unwrap().flushes_ok >= flushes_at_reconnect + 20
    });
    stop.store(true, Ordering::SeqCst);
    let (ok, errors) = publisher.join().expect("publisher thread");
    client.flush().unwrap();
    // The default 8 MiB reconnect buffer is never full here.
    assert!(errors.is_empty(), "publishes failed: {errors:?}");

    let received: Vec<u64> = take_queued(&mut sub).iter().map(|m| text(m).parse().unwrap()).collect();
    assert!(received.windows(2).all(|w| w[0] < w[1]), "duplicated or reordered messages");
    let received: BTreeSet<u64> = received.into_iter().collect();
    let missing: Vec<u64> = ok.iter().copied().filter(|s| !received.contains(s)).collect();
    // Flushed before the stop: arrived.
    assert!(missing.iter().all(|&s| s >= confirmed), "confirmed publishes lost: {missing:?} (confirmed < {confirmed})");
    // At most those in flight at the crash are lost: one contiguous run, before the buffered ones.
    assert!(missing.windows(2).all(|w| w[1] == w[0] + 1), "lost publishes are not one run at the crash: {missing:?}");
    // The publisher waits for a flush after every 10 publishes, so no more than 10 can be in flight.
    assert!(missing.len() <= 10, "{} publishes lost: {missing:?}", missing.len());
    assert!(received.contains(ok.last().unwrap()), "the last publish did not arrive");
}

pub(crate) fn full_reconnect_buffer_is_a_typed_error_and_nothing_else_is_lost<C: TestClient>() {
    const BUFFER: usize = 1000;
    let mut server = NatsServer::start();
    let client = C::connect(options(&server.url()).reconnect_buffer_size(BUFFER)).unwrap();
    let events = client.events();
    let mut sub = client.subscribe("rb.x", None).unwrap();
    client.flush().unwrap();
    let before = client.statistics().out_msgs;

    server.stop();
    wait_event(&events, WAIT, "Disconnected", is_disconnected);
    let payload = |i: usize| format!("{i:0100}");
    let wire = "PUB rb.x 100\r\n".len() + 100 + 2;
    let mut buffered = 0;
    let error = loop {
        match client.publish("rb.x", None, None, payload(buffered).into()) {
            Ok(()) => buffered += 1,
            Err(e) => break e,
        }
        assert!(buffered <= BUFFER / wire, "more publishes buffered than fit");
    };
    assert_eq!(buffered, BUFFER / wire);
    match error {
        Error::Command(CommandError::ReconnectBufferFull { needed, available }) => {
            assert_eq!(needed, wire);
            assert_eq!(available, BUFFER - buffered * wire);
        }
        other => panic!("expected ReconnectBufferFull, got {other:?}"),
    }
    // Still full; only the successful publishes were counted.
    let again = client.publish("rb.x", None, None, payload(99).into());
    assert!(matches!(again, Err(Error::Command(CommandError::ReconnectBufferFull { .. }))), "{again:?}");
    assert_eq!(client.statistics().out_msgs - before, buffered as u64);

    server.restart();
    wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    client.flush().unwrap();
    let got: Vec<String> = take_queued(&mut sub).iter().map(text).collect();
    let expected: Vec<String> = (0..buffered).map(payload).collect();
    assert_eq!(got, expected, "every buffered publish arrives, nothing more");
    // Connected again: the buffer size no longer limits publishing.
    for i in 0..50 {
        client.publish("rb.x", None, None, payload(i).into()).unwrap();
    }
    client.flush().unwrap();
    assert_eq!(take_queued(&mut sub).len(), 50);
}
