//! Deterministic simulation of the sans-IO core.
//!
//! Each seed builds a small world: a cluster of model servers that speak enough NATS to be honest (INFO with
//! `connect_urls` and lame duck, CONNECT with or without auth, PING/PONG, SUB/UNSUB with max-msgs, queue
//! groups, PUB/HPUB routed as MSG/HMSG, no-responders, `-ERR` for permissions, authorization and payload
//! size, slow consumers), clients that are real [`nats_proto::Connection`]s, and a network between them
//! that splits reads and writes at any byte, delays, stalls, resets, refuses dials and swallows bytes
//! (half-open sockets). Time is simulated; everything is drawn from the seed, so a failure replays exactly.
//!
//! Every step checks the promises a user relies on:
//! - a publish covered by a completed flush reached the server;
//! - a message the server sent and the client read in full is delivered once to a live subscription, to
//!   the right one, intact, never more than its max;
//! - a request ends (answered with the right payload, timed out no earlier than its deadline, no
//!   responders, or closed) and never hangs past its deadline, and never answers after its end;
//! - the reconnect buffer stays within its bound, and an overflow is a typed error;
//! - a drain ends within its timeout; a closed connection holds nothing;
//! - when the network settles, every client is connected and the server holds exactly the client's live
//!   subscriptions, with the same queue groups and the same remaining max-msgs;
//! - no panic.
//!
//! ```
//! let outcome = nats_sim::run(42).expect("seed 42 keeps every promise");
//! assert!(outcome.steps > 0);
//! ```
//!
//! `cargo test -p nats-sim` runs a bounded number of seeds; `SIM_SEEDS=1000000 cargo test --release -p
//! nats-sim` runs a campaign, and a failure prints the one line that replays it (`SIM_SEED=...`).

mod client;
pub mod ordered;
pub mod pull;
mod rng;
mod server;
pub mod service;
mod world;

use std::fmt;
use std::time::Duration;

pub use rng::SimRng;

/// What one seed did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Steps taken (workload, network and fault actions).
    pub steps: u64,
    /// Simulated time that passed.
    pub simulated: Duration,
    /// What happened, counted.
    pub counts: Counts,
}

/// Faults injected and behaviours exercised, counted over one seed or a whole campaign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Deliveries of part of what was waiting (a read or write cut at some byte).
    pub partial_io: u64,
    /// Connections reset (both ends see the end at once, bytes in flight lost).
    pub resets: u64,
    /// Server restarts (every connection of the node dropped, its subscriptions forgotten).
    pub restarts: u64,
    /// Lame-duck notices followed by a shutdown.
    pub lame_ducks: u64,
    /// Dials refused.
    pub refused_dials: u64,
    /// Connections turned half-open (bytes swallowed, no end seen).
    pub half_open: u64,
    /// Stalls of one direction of a connection.
    pub stalls: u64,
    /// Connections the server closed as slow consumers.
    pub slow_consumers: u64,
    /// Authorization failures.
    pub auth_failures: u64,
    /// Permission `-ERR`s sent.
    pub permission_errors: u64,
    /// Payload-size `-ERR`s sent (the connection closed).
    pub max_payload_errors: u64,
    /// Reconnects completed.
    pub reconnects: u64,
    /// Messages delivered to subscribers and checked.
    pub delivered: u64,
    /// Requests answered.
    pub answered: u64,
    /// Requests timed out.
    pub timed_out: u64,
    /// Requests that met no responders.
    pub no_responders: u64,
    /// Flushes completed (and their coverage checked).
    pub flushed: u64,
    /// Publishes refused with a full reconnect buffer.
    pub buffer_full: u64,
    /// Drains that ended.
    pub drains: u64,
}

impl Counts {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counts) {
        let pairs = [
            (&mut self.partial_io, other.partial_io),
            (&mut self.resets, other.resets),
            (&mut self.restarts, other.restarts),
            (&mut self.lame_ducks, other.lame_ducks),
            (&mut self.refused_dials, other.refused_dials),
            (&mut self.half_open, other.half_open),
            (&mut self.stalls, other.stalls),
            (&mut self.slow_consumers, other.slow_consumers),
            (&mut self.auth_failures, other.auth_failures),
            (&mut self.permission_errors, other.permission_errors),
            (&mut self.max_payload_errors, other.max_payload_errors),
            (&mut self.reconnects, other.reconnects),
            (&mut self.delivered, other.delivered),
            (&mut self.answered, other.answered),
            (&mut self.timed_out, other.timed_out),
            (&mut self.no_responders, other.no_responders),
            (&mut self.flushed, other.flushed),
            (&mut self.buffer_full, other.buffer_full),
            (&mut self.drains, other.drains),
        ];
        for (mine, theirs) in pairs {
            *mine += theirs;
        }
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "partial reads/writes {}, resets {}, restarts {}, lame ducks {}, refused dials {}, half-open {}, \
             stalls {}, slow consumers {}, auth failures {}, permission errors {}, max-payload errors {}, \
             reconnects {}, messages delivered {}, requests answered {}, timed out {}, no responders {}, \
             flushes {}, reconnect buffer full {}, drains {}",
            self.partial_io,
            self.resets,
            self.restarts,
            self.lame_ducks,
            self.refused_dials,
            self.half_open,
            self.stalls,
            self.slow_consumers,
            self.auth_failures,
            self.permission_errors,
            self.max_payload_errors,
            self.reconnects,
            self.delivered,
            self.answered,
            self.timed_out,
            self.no_responders,
            self.flushed,
            self.buffer_full,
            self.drains
        )
    }
}

/// A broken promise (or a panic), with what led to it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed that replays it.
    pub seed: u64,
    /// The step at which it was seen.
    pub step: u64,
    /// Simulated time at that step.
    pub at: Duration,
    /// What went wrong.
    pub what: String,
    /// The last actions before it, oldest first.
    pub trace: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {} failed at step {} ({:?} simulated): {}", self.seed, self.step, self.at, self.what)?;
        writeln!(f, "last actions:")?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        write!(f, "replay: SIM_SEED={} cargo test -p nats-sim --test sim -- --nocapture", self.seed)
    }
}

impl std::error::Error for Failure {}

/// Runs one seed to the end: a chaotic phase, then a settled network and the final checks.
pub fn run(seed: u64) -> Result<Outcome, Failure> {
    let mut world = world::World::new(seed);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.run()));
    match result {
        Ok(Ok(())) => Ok(world.outcome()),
        Ok(Err(what)) => Err(world.failure(what)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panic".to_owned());
            Err(world.failure(format!("panicked: {what}")))
        }
    }
}
