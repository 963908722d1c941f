//! The scripted fake server lives in `nats_server_harness::fake`; here are the blocking-side waits.
//!
//! [`within`] runs a whole test body on a thread with a deadline, so a client that hangs (in a call or while
//! being dropped) fails the test instead of stalling the run.
#![allow(dead_code, unused_imports)]

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(crate) use nats_server_harness::fake::*;

/// Runs `body` on a thread of its own and fails if it does not finish within `limit` (a hang anywhere, including
/// in a destructor, becomes a failure). A panic in `body` is passed on.
pub(crate) fn within<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
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

/// `server.finish()`: waits (bounded) for the script to end and passes on its panic.
pub(crate) trait Finish {
    fn finish(self);
}

impl Finish for FakeServer {
    fn finish(self) {
        self.finish_within(STEP * 3);
    }
}
