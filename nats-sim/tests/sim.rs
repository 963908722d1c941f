//! Seeded schedules through the core: a bounded number in CI, a campaign on demand.
//!
//! - `cargo test -p nats-sim --test sim`: the CI budget (`SIM_SEEDS`, default below), seeds from 0.
//! - `SIM_SEEDS=1000000 cargo test --release -p nats-sim --test sim -- --nocapture`: a campaign over every
//!   core, with the schedules per second and the faults covered printed at the end.
//! - `SIM_SEED=1234 cargo test -p nats-sim --test sim -- --nocapture`: replays one seed and prints its trace.
//! - `SIM_START=N` starts a campaign at seed N.

use std::time::Instant;

use nats_sim::Counts;

/// Seeds run when `SIM_SEEDS` is not set.
const CI_SEEDS: u64 = 2_000;

/// Seeds that once found a bug, kept so that it stays fixed. Each runs whatever `SIM_SEEDS` says.
const REGRESSIONS: &[(u64, &str)] = &[
    (
        236,
        "a raised max (UNSUB 2, then UNSUB 4) reached a server that had ended the subscription at the lower one; \
         the client believed it live for ever",
    ),
    (
        1_011_138,
        "the fix's SUB then UNSUB, split across two reads: a message between them ended the subscription at the old \
         max again",
    ),
];

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn seeds_that_found_bugs_stay_fixed() {
    for &(seed, what) in REGRESSIONS {
        if let Err(failure) = nats_sim::run(seed) {
            panic!("regression ({what}):\n{failure}");
        }
    }
}

/// Runs `SIM_SEEDS` seeds (default `ci_seeds`) of one simulation on every core, or replays `SIM_SEED`; prints
/// the rate and what the schedules covered, and returns the counts.
fn campaign(label: &str, ci_seeds: u64, run: fn(u64) -> Result<nats_sim::Outcome, nats_sim::Failure>) -> Counts {
    if let Some(seed) = env("SIM_SEED") {
        match run(seed) {
            Ok(outcome) => {
                println!(
                    "{label} seed {seed}: {} steps, {:?} simulated; {}",
                    outcome.steps, outcome.simulated, outcome.counts
                );
                return outcome.counts;
            }
            Err(failure) => panic!("{label}: {failure}"),
        }
    }
    let seeds = env("SIM_SEEDS").unwrap_or(ci_seeds);
    let start = env("SIM_START").unwrap_or(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u64).min(seeds.max(1));
    let began = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let mut counts = Counts::default();
                let mut steps = 0;
                let mut seed = start + t;
                while seed < start + seeds {
                    let outcome = run(seed)?;
                    counts.add(&outcome.counts);
                    steps += outcome.steps;
                    seed += threads;
                }
                Ok::<_, nats_sim::Failure>((counts, steps))
            })
        })
        .collect();
    let mut counts = Counts::default();
    let mut steps = 0;
    let mut failures = Vec::new();
    for worker in workers {
        match worker.join().expect("a simulation thread panicked outside a seed") {
            Ok((c, s)) => {
                counts.add(&c);
                steps += s;
            }
            Err(failure) => failures.push(failure),
        }
    }
    if let Some(first) = failures.iter().min_by_key(|f| f.seed) {
        panic!("{label}: {first}");
    }
    let secs = began.elapsed().as_secs_f64();
    println!(
        "{label}: simulated {seeds} schedules from seed {start} ({steps} steps) in {secs:.1} s: {:.0} schedules/s on \
         {threads} threads; {counts}",
        seeds as f64 / secs
    );
    counts
}

#[test]
fn seeded_schedules_keep_every_promise() {
    let counts = campaign("core", CI_SEEDS, nats_sim::run);
    if env("SIM_SEED").is_none() {
        assert!(counts.delivered > 0 && counts.flushed > 0 && counts.reconnects > 0, "the schedules exercised nothing");
    }
}

#[test]
fn ordered_consumer_schedules_deliver_every_message_once_in_order() {
    let counts = campaign("ordered consumer", CI_SEEDS, nats_sim::ordered::run);
    if env("SIM_SEED").is_none() {
        assert!(counts.delivered > 0 && counts.resets > 0, "the schedules exercised nothing");
    }
}

#[test]
fn pull_consume_schedules_never_leak_pending_and_deliver_everything() {
    let counts = campaign("pull consume", CI_SEEDS, nats_sim::pull::run);
    if env("SIM_SEED").is_none() {
        assert!(counts.delivered > 0 && counts.reconnects > 0 && counts.stalls > 0, "the schedules exercised nothing");
    }
}

#[test]
fn service_core_schedules_keep_their_statistics_true() {
    let counts = campaign("service core", CI_SEEDS, nats_sim::service::run);
    if env("SIM_SEED").is_none() {
        assert!(counts.answered > 0 && counts.flushed > 0, "the schedules exercised nothing");
    }
}
