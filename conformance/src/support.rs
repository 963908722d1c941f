//! Bounded waits for the suite: the hang guard, events, the fake server's end.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nats_client::{Event, EventReceiver};
use nats_server_harness::fake::{FakeServer, STEP};

/// Runs `body` on a thread of its own and fails if it does not finish within `limit` (a hang anywhere,
/// including in a destructor or in a `block_on`, becomes a failure). A panic in `body` is passed on.
pub fn within<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let thread = std::thread::Builder::new().name("test-body".into()).spawn(body).expect("spawn the test body");
    let deadline = Instant::now() + limit;
    while !thread.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the test body did not finish within {limit:?}: the client (or the script) hangs"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    match JoinHandle::join(thread) {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Waits at most `limit` for an event satisfying `pred`; returns it with the events seen before it. Panics
/// with everything seen otherwise.
#[track_caller]
pub fn wait_event(
    events: &EventReceiver,
    limit: Duration,
    what: &str,
    mut pred: impl FnMut(&Event) -> bool,
) -> (Event, Vec<Event>) {
    let deadline = Instant::now() + limit;
    let mut before = vec![];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(e) if pred(&e) => return (e, before),
            Ok(e) => before.push(e),
            Err(_) => panic!("no {what} event within {limit:?}; events seen: {before:?}"),
        }
    }
}

/// `server.finish()`: waits (bounded) for the fake server's script to end and passes on its panic.
pub trait Finish {
    /// Waits at most three [`STEP`]s for the script to end; passes on its panic.
    fn finish(self);
}

impl Finish for FakeServer {
    fn finish(self) {
        self.finish_within(STEP * 3);
    }
}
