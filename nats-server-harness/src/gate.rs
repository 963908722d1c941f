//! A latch for tests and benchmarks: threads wait at it until another opens it, once and for all.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Threads wait at it ([`wait`](Self::wait)) until another [`open`](Self::open)s it; it stays open.
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    /// Blocks until the gate is open.
    pub fn wait(&self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        while !*open {
            open = self.opened.wait(open).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Blocks until the gate is open, at most `timeout`; true if it opened.
    pub fn wait_for(&self, timeout: Duration) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (open, _) = self.opened.wait_timeout_while(open, timeout, |open| !*open).unwrap_or_else(|e| e.into_inner());
        *open
    }

    /// Opens the gate: every waiting thread goes on, and later waits return at once.
    pub fn open(&self) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.opened.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn waits_until_opened_and_stays_open() {
        let gate = Arc::new(Gate::default());
        assert!(!gate.wait_for(Duration::from_millis(5)), "closed at first");
        let waiter = std::thread::spawn({
            let gate = gate.clone();
            move || gate.wait()
        });
        gate.open();
        waiter.join().unwrap();
        assert!(gate.wait_for(Duration::ZERO));
    }
}
