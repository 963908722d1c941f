//! What `micro bench` shows: the progress bar while clients work, the announcement of a run, and its results
//! in the words and numbers of `nats bench`, or as JSON.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::{per_sec, Load, Sample};
use crate::Cli;

/// Messages one thread counts before it tells the progress bar.
const BATCH: u64 = 256;

// ---------------------------------------------------------------------------------------------------------------
// Progress
// ---------------------------------------------------------------------------------------------------------------

/// A bar on stderr: hidden with `--json`, and by indicatif itself when stderr is not a terminal.
pub(super) fn progress_bar(cli: &Cli, total: u64, label: &'static str) -> ProgressBar {
    if cli.json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let template = "{prefix} [{elapsed_precise}] [{wide_bar}] {human_pos}/{human_len} msgs";
    let style = ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_prefix(label);
    if !bar.is_hidden() {
        // The elapsed time moves even while a subscriber waits for its first message.
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    bar
}

/// Leaves the bar as it is when the run went well, abandons it otherwise.
pub(super) fn finish<T>(bar: &ProgressBar, outcome: Result<T, String>) -> Result<T, String> {
    if bar.is_finished() {
        return outcome;
    }
    match &outcome {
        Ok(_) => bar.finish(),
        Err(_) => bar.abandon(),
    }
    if !bar.is_hidden() {
        // indicatif leaves the cursor at the end of the bar's line: what follows starts on a line of its own.
        eprintln!();
    }
    outcome
}

/// Counts one thread's messages for the progress bar, telling it every `BATCH` and the rest when dropped.
pub(super) struct Tally<'a> {
    bar: &'a ProgressBar,
    pending: u64,
}

impl<'a> Tally<'a> {
    pub(super) fn new(bar: &'a ProgressBar) -> Self {
        Self { bar, pending: 0 }
    }

    pub(super) fn one(&mut self) {
        self.pending += 1;
        if self.pending == BATCH {
            self.bar.inc(BATCH);
            self.pending = 0;
        }
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        self.bar.inc(self.pending);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------------------------------------------

/// The clients of one kind in one run.
pub(super) struct Group {
    pub(super) samples: Vec<Sample>,
    /// Subscribers: report drops.
    pub(super) receiving: bool,
}

impl Group {
    fn msgs(&self) -> u64 {
        self.samples.iter().map(|s| s.msgs).sum()
    }

    fn bytes(&self) -> u64 {
        self.samples.iter().map(|s| s.bytes).sum()
    }

    fn dropped(&self) -> u64 {
        self.samples.iter().map(|s| s.dropped).sum()
    }

    /// From the first start to the last end of the clients that did anything.
    fn seconds(&self) -> f64 {
        let active = || self.samples.iter().filter(|s| s.msgs > 0);
        match (active().map(|s| s.start).min(), active().map(|s| s.end).max()) {
            (Some(start), Some(end)) => end.saturating_duration_since(start).as_secs_f64(),
            _ => 0.0,
        }
    }

    pub(super) fn rate(&self) -> f64 {
        per_sec(self.msgs(), self.seconds())
    }

    pub(super) fn throughput(&self) -> f64 {
        per_sec(self.bytes(), self.seconds())
    }

    /// Min, average, max and standard deviation of the clients' own rates.
    fn spread(&self) -> (f64, f64, f64, f64) {
        let rates: Vec<f64> = self.samples.iter().map(Sample::rate).collect();
        let n = rates.len().max(1) as f64;
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(0.0, f64::max);
        let avg = rates.iter().sum::<f64>() / n;
        let stddev = (rates.iter().map(|r| (r - avg).powi(2)).sum::<f64>() / n).sqrt();
        (if min.is_finite() { min } else { 0.0 }, avg, max, stddev)
    }

    /// A subscriber group that stopped short is a failure, after its report.
    pub(super) fn complete(&self, each: u64, stall: Duration) -> Result<(), String> {
        let (got, dropped) = (self.msgs(), self.dropped());
        let wanted = each * self.samples.len() as u64;
        if got + dropped >= wanted {
            return Ok(());
        }
        let lost = if dropped > 0 { format!(" and dropped {}", commas(dropped)) } else { String::new() };
        Err(format!(
            "received {} of {} messages{lost}: nothing more arrived for {stall:?}",
            commas(got),
            commas(wanted)
        ))
    }

    pub(super) fn totals_json(&self) -> Value {
        json!({
            "msgs": self.msgs(),
            "bytes": self.bytes(),
            "seconds": self.seconds(),
            "msgs_per_sec": self.rate(),
            "bytes_per_sec": self.throughput(),
        })
    }

    pub(super) fn json(&self) -> Value {
        let (min, avg, max, stddev) = self.spread();
        let clients: Vec<Value> = self
            .samples
            .iter()
            .map(|s| {
                let mut c = json!({
                    "msgs": s.msgs,
                    "bytes": s.bytes,
                    "seconds": s.seconds(),
                    "msgs_per_sec": s.rate(),
                    "bytes_per_sec": s.throughput(),
                });
                if self.receiving {
                    c["dropped"] = json!(s.dropped);
                }
                c
            })
            .collect();
        let mut group = self.totals_json();
        group["min_msgs_per_sec"] = json!(min);
        group["avg_msgs_per_sec"] = json!(avg);
        group["max_msgs_per_sec"] = json!(max);
        group["stddev_msgs_per_sec"] = json!(stddev);
        if self.receiving {
            group["dropped"] = json!(self.dropped());
        }
        group["per_client"] = Value::Array(clients);
        group
    }

    /// `Pub stats: 1,234,567 msgs/sec ~ 150.70 MiB/sec (100,000 msgs in 81.00ms)`, then one line per client and
    /// their spread when there are several.
    pub(super) fn print(&self, title: &str, indent: &str) {
        let took = Duration::from_secs_f64(self.seconds());
        say!(
            "{indent}{title} stats: {} msgs/sec ~ {}/sec ({} msgs in {took:.2?})",
            commas_f(self.rate()),
            human_bytes(self.throughput()),
            commas(self.msgs())
        );
        if self.samples.len() > 1 {
            for (i, s) in self.samples.iter().enumerate() {
                let dropped = if s.dropped > 0 { format!(", {} dropped", commas(s.dropped)) } else { String::new() };
                say!(
                    "{indent} [{}] {} msgs/sec ~ {}/sec ({} msgs in {:.2?}{dropped})",
                    i + 1,
                    commas_f(s.rate()),
                    human_bytes(s.throughput()),
                    commas(s.msgs),
                    Duration::from_secs_f64(s.seconds())
                );
            }
            let (min, avg, max, stddev) = self.spread();
            say!(
                "{indent} min {} | avg {} | max {} | stddev {} msgs/sec",
                commas_f(min),
                commas_f(avg),
                commas_f(max),
                commas_f(stddev)
            );
        }
        if self.dropped() > 0 {
            say!("{indent} dropped {} messages: the subscribers fell behind", commas(self.dropped()));
        }
    }
}

/// Round trips, in microseconds.
pub(super) struct Latency {
    min: f64,
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Latency {
    /// From round trips in nanoseconds, sorted.
    pub(super) fn of(sorted: &[u64]) -> Self {
        let us = |ns: u64| ns as f64 / 1000.0;
        let at = |p: f64| {
            // Nearest rank: the smallest value with at least p % of them at or below it.
            let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
            sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied().map_or(0.0, us)
        };
        let mean =
            if sorted.is_empty() { 0.0 } else { sorted.iter().map(|&ns| us(ns)).sum::<f64>() / sorted.len() as f64 };
        Self {
            min: sorted.first().copied().map_or(0.0, us),
            mean,
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: sorted.last().copied().map_or(0.0, us),
        }
    }

    pub(super) fn json(&self) -> Value {
        // Nanosecond precision, no float noise.
        let ns = |us: f64| (us * 1000.0).round() / 1000.0;
        json!({
            "min": ns(self.min), "mean": ns(self.mean), "p50": ns(self.p50), "p90": ns(self.p90), "p99": ns(self.p99),
            "max": ns(self.max),
        })
    }

    pub(super) fn print(&self) {
        say!(
            "Latency (µs): min {:.1} | p50 {:.1} | p90 {:.1} | p99 {:.1} | max {:.1} | mean {:.1}",
            self.min,
            self.p50,
            self.p90,
            self.p99,
            self.max,
            self.mean
        );
    }
}

/// `Starting pub benchmark [subject=x, msgs=100,000, size=128 B, clients=1]`, then `note`, on stderr.
pub(super) fn announce(kind: &str, subject: &str, settings: &[(&str, String)], note: &str) {
    let settings: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!("Starting {kind} benchmark [subject={subject}, {}]{note}", settings.join(", "));
}

pub(super) fn size(load: &Load) -> (&'static str, String) {
    ("size", format!("{} B", commas(load.size as u64)))
}

pub(super) fn print_json(value: Value) {
    say!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
}

/// `1234567` as `1,234,567`.
pub(super) use crate::human::count as commas;

pub(super) fn commas_f(x: f64) -> String {
    commas(x.round() as u64)
}

/// Bytes in binary units: `148.91 MiB`.
pub(super) fn human_bytes(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (mut value, mut unit) = (bytes, 0);
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", units[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_nats_bench() {
        assert_eq!(commas(0), "0");
        assert_eq!(commas(999), "999");
        assert_eq!(commas(1_000), "1,000");
        assert_eq!(commas(1_234_567), "1,234,567");
        assert_eq!(human_bytes(512.0), "512.00 B");
        assert_eq!(human_bytes(1536.0), "1.50 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0), "3.00 MiB");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let ns: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let l = Latency::of(&ns);
        assert_eq!((l.min, l.p50, l.p90, l.p99, l.max), (1.0, 50.0, 90.0, 99.0, 100.0));
        assert_eq!(Latency::of(&[7000]).p99, 7.0);
        assert_eq!(Latency::of(&[]).p50, 0.0);
    }
}
