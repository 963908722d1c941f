//! The runs of a cell and what is computed from them: min/median/max over the clean runs, and ratios to
//! async-nats paired round by round.

use crate::spec::{Client, RunResult, Workload};

/// One attempt at one cell.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// The round it ran in; runs of different clients in one round ran back to back.
    pub(crate) round: usize,
    /// Whether it counts: it finished and others stayed under the threshold while it ran.
    pub(crate) clean: bool,
    /// What the child measured, or why there is nothing.
    pub(crate) outcome: Result<RunResult, String>,
}

impl Run {
    /// The result, if the run counts.
    fn clean_result(&self) -> Option<&RunResult> {
        self.outcome.as_ref().ok().filter(|_| self.clean)
    }
}

/// Every attempt at one (workload, size, pinned, client).
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    /// The workload this row reports.
    pub(crate) workload: Workload,
    /// Payload size in bytes.
    pub(crate) size: usize,
    /// Client and server on one CPU.
    pub(crate) pinned: bool,
    /// Who ran it.
    pub(crate) client: Client,
    /// Messages per run.
    pub(crate) messages: usize,
    /// Every attempt, clean or not, in order.
    pub(crate) runs: Vec<Run>,
}

impl Cell {
    /// How many runs count.
    pub(crate) fn clean_runs(&self) -> usize {
        self.runs.iter().filter(|r| r.clean_result().is_some()).count()
    }

    /// `metric` of each clean run, with its round.
    pub(crate) fn clean_values(&self, metric: impl Fn(&RunResult) -> Option<f64>) -> Vec<(usize, f64)> {
        self.runs.iter().filter_map(|r| Some((r.round, metric(r.clean_result()?)?))).collect()
    }

    /// The figure ratios are taken of: p50 for latency rows (lower is better), msgs/s for the others.
    pub(crate) fn headline(&self) -> Vec<(usize, f64)> {
        if self.workload.is_latency() {
            self.clean_values(|r| r.p50_us)
        } else {
            self.clean_values(|r| Some(r.msgs_per_s))
        }
    }

    /// min/median/max of `metric` over the clean runs.
    pub(crate) fn summary(&self, metric: impl Fn(&RunResult) -> Option<f64>) -> Option<Summary> {
        summarize(&self.clean_values(metric).into_iter().map(|(_, v)| v).collect::<Vec<_>>())
    }
}

/// Smallest, median and largest of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    /// The smallest.
    pub(crate) min: f64,
    /// The median (the mean of the two middle values for an even count).
    pub(crate) median: f64,
    /// The largest.
    pub(crate) max: f64,
}

/// min/median/max of `values`; `None` when there are none.
pub(crate) fn summarize(values: &[f64]) -> Option<Summary> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 };
    Some(Summary { min: v[0], median, max: v[v.len() - 1] })
}

/// Ratios of a client's figure to the baseline's figure of the same round, for every round where both have a
/// clean run. Pairing by round keeps the drift of a shared machine out of the spread: both ran within seconds.
pub(crate) fn paired_ratios(client: &[(usize, f64)], baseline: &[(usize, f64)]) -> Vec<f64> {
    client
        .iter()
        .filter_map(|&(round, v)| {
            let (_, b) = baseline.iter().find(|(r, _)| *r == round)?;
            (*b > 0.0).then(|| v / b)
        })
        .collect()
}

/// A cell's figure against async-nats's in the same group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ratio {
    /// Median over median.
    pub(crate) of_medians: f64,
    /// min/median/max of the per-round ratios; `None` when no round had both clean.
    pub(crate) paired: Option<Summary>,
    /// How many rounds were paired.
    pub(crate) pairs: usize,
}

/// The ratio of `cell` to `baseline` on their headline figure; `None` without clean runs on either side.
pub(crate) fn ratio(cell: &Cell, baseline: &Cell) -> Option<Ratio> {
    let (mine, base) = (cell.headline(), baseline.headline());
    let median = |v: &[(usize, f64)]| summarize(&v.iter().map(|&(_, x)| x).collect::<Vec<_>>()).map(|s| s.median);
    let (m, b) = (median(&mine)?, median(&base)?);
    if b <= 0.0 {
        return None;
    }
    let pairs = paired_ratios(&mine, &base);
    Some(Ratio { of_medians: m / b, paired: summarize(&pairs), pairs: pairs.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(round: usize, clean: bool, rate: f64) -> Run {
        Run { round, clean, outcome: Ok(RunResult { msgs_per_s: rate, ..RunResult::default() }) }
    }

    fn cell(client: Client, runs: Vec<Run>) -> Cell {
        Cell { workload: Workload::Publish, size: 16, pinned: false, client, messages: 1, runs }
    }

    #[test]
    fn summary_of_odd_even_and_empty() {
        assert_eq!(summarize(&[3.0, 1.0, 2.0]), Some(Summary { min: 1.0, median: 2.0, max: 3.0 }));
        assert_eq!(summarize(&[4.0, 1.0, 2.0, 10.0]), Some(Summary { min: 1.0, median: 3.0, max: 10.0 }));
        assert_eq!(summarize(&[5.0]), Some(Summary { min: 5.0, median: 5.0, max: 5.0 }));
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[f64::NAN]), None);
    }

    #[test]
    fn only_clean_finished_runs_count() {
        let mut runs = vec![run(0, true, 10.0), run(1, false, 1000.0), run(2, true, 30.0)];
        runs.push(Run { round: 3, clean: true, outcome: Err("child died".into()) });
        let c = cell(Client::OursBlocking, runs);
        assert_eq!(c.clean_runs(), 2);
        assert_eq!(c.headline(), vec![(0, 10.0), (2, 30.0)]);
        assert_eq!(c.summary(|r| Some(r.msgs_per_s)).map(|s| s.median), Some(20.0));
    }

    #[test]
    fn ratios_pair_runs_of_the_same_round() {
        let mine = [(0, 20.0), (1, 30.0), (3, 50.0)];
        let base = [(0, 10.0), (1, 10.0), (2, 10.0), (3, 0.0)];
        // Round 2 has no run of mine, round 3 no usable baseline.
        assert_eq!(paired_ratios(&mine, &base), vec![2.0, 3.0]);
    }

    #[test]
    fn ratio_of_medians_and_paired_spread() {
        let mine = cell(Client::OursBlocking, vec![run(0, true, 20.0), run(1, true, 40.0), run(2, false, 1.0)]);
        let base = cell(Client::AsyncNats, vec![run(0, true, 10.0), run(1, true, 10.0), run(2, true, 40.0)]);
        let r = ratio(&mine, &base).unwrap();
        assert_eq!(r.of_medians, 3.0);
        assert_eq!(r.pairs, 2);
        assert_eq!(r.paired, Some(Summary { min: 2.0, median: 3.0, max: 4.0 }));
    }

    #[test]
    fn latency_ratio_is_p50_over_p50() {
        let lat = |round, p50| Run {
            round,
            clean: true,
            outcome: Ok(RunResult { p50_us: Some(p50), msgs_per_s: 1.0, ..RunResult::default() }),
        };
        let mut mine = cell(Client::OursTokio, vec![lat(0, 30.0)]);
        let mut base = cell(Client::AsyncNats, vec![lat(0, 60.0)]);
        mine.workload = Workload::Reqrep;
        base.workload = Workload::Reqrep;
        assert_eq!(ratio(&mine, &base).unwrap().of_medians, 0.5);
    }

    #[test]
    fn no_ratio_without_clean_baseline() {
        let mine = cell(Client::OursBlocking, vec![run(0, true, 20.0)]);
        let base = cell(Client::AsyncNats, vec![run(0, false, 10.0)]);
        assert_eq!(ratio(&mine, &base), None);
    }
}
