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
mod promises;
pub mod pull;
mod rng;
mod server;
pub mod service;
mod workload;
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

/// Faults injected and behaviours exercised, by name, counted over one seed or a whole campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(std::collections::BTreeMap<&'static str, u64>);

impl Counts {
    /// Counts one more `what`.
    pub fn bump(&mut self, what: &'static str) {
        *self.0.entry(what).or_default() += 1;
    }

    /// How many `what` were counted.
    pub fn get(&self, what: &str) -> u64 {
        self.0.get(what).copied().unwrap_or(0)
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counts) {
        for (what, n) in &other.0 {
            *self.0.entry(what).or_default() += n;
        }
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (what, n) in &self.0 {
            write!(f, "{}{what} {n}", if first { "" } else { ", " })?;
            first = false;
        }
        Ok(())
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

/// The last actions of a run, for its failure report: 40 by default; `SIM_TRACE=N` keeps N and asks the
/// simulations for their verbose view (the server's side of each op, open pull requests).
#[derive(Debug, Clone)]
pub(crate) struct Trace {
    lines: std::collections::VecDeque<String>,
    keep: usize,
    verbose: bool,
}

impl Trace {
    pub(crate) fn from_env() -> Self {
        let asked = std::env::var("SIM_TRACE").ok().and_then(|v| v.parse().ok());
        Self { lines: Default::default(), keep: asked.unwrap_or(40), verbose: asked.is_some() }
    }

    /// Also trace the verbose view.
    pub(crate) fn verbose(&self) -> bool {
        self.verbose
    }

    pub(crate) fn push(&mut self, line: String) {
        if self.lines.len() >= self.keep {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }
}

/// A simulation as [`drive`] runs it: steps drawn from the seed, then an end in which faults stop and
/// everything must come right.
pub(crate) trait Schedule {
    /// Steps in the chaotic phase.
    fn steps(&self) -> u64;
    /// One step; `Err` names the broken promise.
    fn next_step(&mut self) -> Result<(), String>;
    /// Faults stop; the final checks.
    fn wind_down(&mut self) -> Result<(), String>;
    /// Simulated time so far.
    fn elapsed(&self) -> Duration;
    /// What was counted, and the last actions.
    fn report(&self) -> (Counts, Vec<String>);
}

/// Runs a simulation to its end; a broken promise or a panic becomes a [`Failure`] that names the seed.
pub(crate) fn drive<S: Schedule>(seed: u64, mut sim: S) -> Result<Outcome, Failure> {
    let mut step = 0;
    let steps = sim.steps();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        while step < steps {
            step += 1;
            sim.next_step()?;
        }
        sim.wind_down()
    }));
    let at = sim.elapsed();
    let (counts, trace) = sim.report();
    let what = match result {
        Ok(Ok(())) => return Ok(Outcome { steps: step, simulated: at, counts }),
        Ok(Err(what)) => what,
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panic".to_owned());
            format!("panicked: {text}")
        }
    };
    Err(Failure { seed, step, at, what, trace })
}

/// Runs one seed of the core's simulation to the end: a chaotic phase, then a settled network and the final
/// checks.
pub fn run(seed: u64) -> Result<Outcome, Failure> {
    drive(seed, world::World::new(seed))
}
