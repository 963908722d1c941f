//! The scripted fake server lives in `nats_server_harness::fake`; here are the async-side waits.
//!
//! [`within`] bounds a whole async test body, so a client that hangs fails the test instead of stalling the run;
//! [`Finish::finish`] waits for the script without blocking the runtime.
#![allow(dead_code, unused_imports)]

use std::future::Future;
use std::time::{Duration, Instant};

pub(crate) use nats_server_harness::fake::*;

/// Awaits `body`, failing if it does not finish within `limit` (a hang anywhere in the client becomes a failure).
pub(crate) async fn within<T>(limit: Duration, body: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, body).await {
        Ok(v) => v,
        Err(_) => panic!("the test body did not finish within {limit:?}: the client (or the script) hangs"),
    }
}

/// `server.finish().await`: waits (bounded) for the script to end without blocking the runtime, and passes on
/// its panic.
pub(crate) trait Finish: Sized {
    async fn finish(self);
}

impl Finish for FakeServer {
    async fn finish(self) {
        let limit = STEP * 3;
        let deadline = Instant::now() + limit;
        while !self.is_finished() {
            assert!(Instant::now() < deadline, "the fake server's script did not finish within {limit:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Err(panic) = self.join() {
            std::panic::resume_unwind(panic);
        }
    }
}
