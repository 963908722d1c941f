//! The quiet-machine guard: how much CPU processes other than ours used over a window, and waiting until that is
//! small before a run.
//!
//! Others = the machine's busy ticks (/proc/stat) minus the ticks of our own processes (the child, the parent,
//! the servers; `/proc/<pid>/stat`). On a 2-core machine one busy neighbour takes half of what we measure, so a run
//! only counts when this stayed under a threshold.

use std::time::{Duration, Instant};

use crate::proc;

/// The machine's busy ticks and our processes' ticks at one instant.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// When it was read.
    at: Instant,
    /// Busy ticks of the whole machine.
    busy: u64,
    /// Ticks of each of our processes; `None` for one that is gone.
    ours: Vec<(u32, Option<u64>)>,
}

/// Reads snapshots for a fixed set of our processes.
#[derive(Debug, Clone)]
pub(crate) struct CpuMeter {
    /// Our processes, this one included.
    pids: Vec<u32>,
}

impl CpuMeter {
    /// A meter counting `pids` and this process as ours.
    pub(crate) fn new(pids: &[u32]) -> CpuMeter {
        let mut all = vec![std::process::id()];
        for &pid in pids {
            if !all.contains(&pid) {
                all.push(pid);
            }
        }
        CpuMeter { pids: all }
    }

    /// The current snapshot; `None` without /proc/stat.
    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        let ours = self.pids.iter().map(|&p| (p, proc::pid_cpu(p))).collect();
        Some(Snapshot { at: Instant::now(), busy: proc::system_busy()?, ours })
    }
}

/// Ticks our processes used between two snapshots. A process missing from either counts nothing, so its CPU
/// shows as others: a run is never called clean on a guess.
pub(crate) fn ours_delta(before: &[(u32, Option<u64>)], after: &[(u32, Option<u64>)]) -> u64 {
    before
        .iter()
        .filter_map(|&(pid, a)| {
            let b = after.iter().find(|(p, _)| *p == pid)?.1?;
            Some(b.saturating_sub(a?))
        })
        .sum()
}

/// Cores used by others over `seconds`, from the machine's busy ticks and ours over that time. Per-process ticks
/// are exact run time rounded down while the machine's are sampled, so ours can exceed the machine's by a tick or
/// two: that is zero, not negative.
pub(crate) fn others_cores(busy_delta: u64, ours_delta: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    busy_delta.saturating_sub(ours_delta) as f64 / proc::USER_HZ / seconds
}

/// Cores used by others between two snapshots, and over how many seconds.
pub(crate) fn others_between(before: &Snapshot, after: &Snapshot) -> (f64, f64) {
    let seconds = after.at.duration_since(before.at).as_secs_f64();
    let busy = after.busy.saturating_sub(before.busy);
    (others_cores(busy, ours_delta(&before.ours, &after.ours), seconds), seconds)
}

/// Whether a run with this much CPU of others counts. Without a reading it does not.
pub(crate) fn is_clean(others: Option<f64>, threshold: f64) -> bool {
    others.is_some_and(|o| o < threshold)
}

/// How waiting for a quiet machine went.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wait {
    /// Time spent waiting.
    pub(crate) waited: Duration,
    /// Others in the last sampled window, in cores.
    pub(crate) others: f64,
    /// Whether the machine was quiet at the end (false: the cap was reached).
    pub(crate) quiet: bool,
}

/// Samples `window`-long windows until others stay under `threshold`, or until `max_wait` has passed (the run then
/// goes ahead, and its own reading decides whether it is clean).
pub(crate) fn wait_quiet(meter: &CpuMeter, threshold: f64, window: Duration, max_wait: Duration) -> Wait {
    let start = Instant::now();
    let Some(mut before) = meter.snapshot() else {
        return Wait { waited: Duration::ZERO, others: 0.0, quiet: false };
    };
    loop {
        std::thread::sleep(window);
        let Some(after) = meter.snapshot() else {
            return Wait { waited: start.elapsed(), others: 0.0, quiet: false };
        };
        let (others, _) = others_between(&before, &after);
        if others < threshold || start.elapsed() >= max_wait {
            return Wait { waited: start.elapsed(), others, quiet: others < threshold };
        }
        before = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn others_is_the_machine_less_ours_per_second() {
        // 150 busy ticks in 1 s, 120 of them ours: 0.3 cores of others.
        assert!((others_cores(150, 120, 1.0) - 0.3).abs() < 1e-9);
        // Over half a second the same ticks are twice the cores.
        assert!((others_cores(150, 120, 0.5) - 0.6).abs() < 1e-9);
    }

    #[test]
    fn ours_above_the_machine_is_zero_others() {
        assert_eq!(others_cores(100, 103, 1.0), 0.0);
        assert_eq!(others_cores(100, 0, 0.0), 0.0);
    }

    #[test]
    fn ours_sums_the_processes_present_in_both() {
        let before = [(1, Some(10)), (2, Some(100)), (3, Some(5)), (4, None)];
        let after = [(1, Some(25)), (2, Some(130)), (3, None), (4, Some(9))];
        // 1: 15, 2: 30; 3 vanished and 4 appeared, neither counts.
        assert_eq!(ours_delta(&before, &after), 45);
    }

    #[test]
    fn clean_only_under_the_threshold_with_a_reading() {
        assert!(is_clean(Some(0.05), 0.15));
        assert!(!is_clean(Some(0.15), 0.15));
        assert!(!is_clean(Some(0.9), 0.15));
        assert!(!is_clean(None, 0.15));
    }

    #[test]
    fn meter_counts_this_process_once() {
        let me = std::process::id();
        let meter = CpuMeter::new(&[7, me, 8, 7]);
        assert_eq!(meter.pids, vec![me, 7, 8]);
    }
}
