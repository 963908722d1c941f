//! Seeded schedules through the core, the consumers and the service core: a bounded number in CI, a campaign
//! on demand.
//!
//! - `cargo test -p nats-sim --test sim`: the CI budget (`SIM_SEEDS`, default below) of each simulation, seeds
//!   from 0, with the count, the rate and what the schedules covered printed (`-- --nocapture` shows it).
//! - `SIM_SEEDS=1000000 cargo test --release -p nats-sim --test sim -- --nocapture`: a campaign on every core.
//! - `SIM_SEED=1234 cargo test -p nats-sim --test sim -- --nocapture`: replays one seed (`SIM_TRACE=N` keeps the
//!   last N actions, with the server's view, for the failure report).
//! - `SIM_START=N` starts a campaign at seed N; a name (or part of one) picks the simulations to run, as with
//!   `cargo test` filters (`core`'s is `seeded_schedules`).
//!
//! The harness is our own (`harness = false`), so that what every simulation did (its seed count, its rate,
//! the faults it covered) is printed in CI too, where a passing test's output would otherwise be swallowed.

use std::time::Instant;

use nats_sim::Counts;

/// Seeds run when `SIM_SEEDS` is not set.
const CI_SEEDS: u64 = 2_000;

/// A simulation: one seed in, what it did or the promise it broke out.
type Run = fn(u64) -> Result<nats_sim::Outcome, nats_sim::Failure>;

/// Seeds that once found a bug, kept so that it stays fixed (whatever `SIM_SEEDS` says).
const REGRESSIONS: &[(Run, u64, &str)] = &[
    (
        nats_sim::run,
        236,
        "core: a raised max (UNSUB 2, then UNSUB 4) reached a server that had ended the subscription at the lower \
         one; the client believed it live for ever",
    ),
    (
        nats_sim::run,
        1_011_138,
        "core: the first fix's SUB then UNSUB, split across two reads: a message between them ended the \
         subscription at the old max again",
    ),
    (
        nats_sim::pull::run,
        496,
        "pull: a bytes-limited pull used up by its bytes ended without a status; its unserved batch stayed counted \
         and shrank every later pull",
    ),
    (nats_sim::pull::run, 44, "pull: a pull filled by such a shrunken batch left bytes counted that never came"),
    (
        nats_sim::service::run,
        0,
        "service core: a request received before a reset and finished after left processing time with no request",
    ),
];

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn seeds_that_found_bugs_stay_fixed() {
    for &(run, seed, what) in REGRESSIONS {
        if let Err(failure) = run(seed) {
            panic!("regression ({what}):\n{failure}");
        }
    }
}

/// Runs `SIM_SEEDS` seeds (default `ci_seeds`) of one simulation on every core, or replays `SIM_SEED`; prints
/// the rate and what the schedules covered, and returns the counts.
fn campaign(label: &str, ci_seeds: u64, run: Run) -> Counts {
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

fn seeded_schedules_keep_every_promise() {
    let counts = campaign("core", CI_SEEDS, nats_sim::run);
    if env("SIM_SEED").is_none() {
        assert!(
            ["messages delivered", "flushes completed", "reconnects", "requests answered"]
                .iter()
                .all(|w| counts.get(w) > 0),
            "the schedules exercised nothing: {counts}"
        );
    }
}

fn ordered_consumer_schedules_deliver_every_message_once_in_order() {
    let counts = campaign("ordered consumer", CI_SEEDS, nats_sim::ordered::run);
    if env("SIM_SEED").is_none() {
        assert!(
            ["messages delivered", "consumer resets", "deliveries lost"].iter().all(|w| counts.get(w) > 0),
            "the schedules exercised nothing: {counts}"
        );
    }
}

fn pull_consume_schedules_never_leak_pending_and_deliver_everything() {
    let counts = campaign("pull consume", CI_SEEDS, nats_sim::pull::run);
    if env("SIM_SEED").is_none() {
        assert!(
            ["messages delivered", "reconnects", "missed heartbeats"].iter().all(|w| counts.get(w) > 0),
            "the schedules exercised nothing: {counts}"
        );
    }
}

fn service_core_schedules_keep_their_statistics_true() {
    let counts = campaign("service core", CI_SEEDS, nats_sim::service::run);
    if env("SIM_SEED").is_none() {
        assert!(
            ["requests finished", "STATS checked", "busy refusals"].iter().all(|w| counts.get(w) > 0),
            "the schedules exercised nothing: {counts}"
        );
    }
}

/// Runs the selected simulations, reporting each as `cargo test` does, and fails the process if any failed.
fn main() {
    let tests: [(&str, fn()); 5] = [
        ("seeds_that_found_bugs_stay_fixed", seeds_that_found_bugs_stay_fixed),
        ("seeded_schedules_keep_every_promise", seeded_schedules_keep_every_promise),
        (
            "ordered_consumer_schedules_deliver_every_message_once_in_order",
            ordered_consumer_schedules_deliver_every_message_once_in_order,
        ),
        (
            "pull_consume_schedules_never_leak_pending_and_deliver_everything",
            pull_consume_schedules_never_leak_pending_and_deliver_everything,
        ),
        ("service_core_schedules_keep_their_statistics_true", service_core_schedules_keep_their_statistics_true),
    ];
    // Flags (`--nocapture`, `-q`, ...) mean nothing here; the first other argument filters by name.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let chosen: Vec<_> = tests.iter().filter(|(name, _)| filter.as_deref().is_none_or(|f| name.contains(f))).collect();
    println!("\nrunning {} tests", chosen.len());
    let began = Instant::now();
    let mut failed = Vec::new();
    for (name, test) in chosen.iter().copied() {
        let ok = std::panic::catch_unwind(test).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(*name);
        }
    }
    let passed = chosen.len() - failed.len();
    let verdict = if failed.is_empty() { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {passed} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        failed.len(),
        tests.len() - chosen.len(),
        began.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}
