//! The command line, parsed by hand (the benches crate has no argument parser, and this one is small).

use std::time::Duration;

use crate::spec::{Client, Workload};

/// What this invocation of the binary is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mode {
    /// Print the help text.
    Help,
    /// The orchestrator: run the comparison.
    Compare(Options),
    /// A child: run the spec (JSON) once and print one JSON line.
    Child(String),
    /// The fake ingest server: stream `messages` MSG frames of `size` bytes to the first client.
    FakeIngest {
        /// Payload size in bytes.
        size: usize,
        /// How many frames.
        messages: usize,
    },
}

/// The orchestrator's settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    /// Smaller message counts (not for the memory rows).
    pub(crate) quick: bool,
    /// The workloads to run, in report order.
    pub(crate) only: Vec<Workload>,
    /// The clients to run, in report order.
    pub(crate) clients: Vec<Client>,
    /// Clean runs wanted per cell.
    pub(crate) runs: usize,
    /// Attempts allowed per cell before giving up on more clean runs.
    pub(crate) max_attempts: usize,
    /// Others' CPU, in cores, under which a run is clean.
    pub(crate) threshold: f64,
    /// How long to wait for a quiet machine before a run goes ahead anyway.
    pub(crate) max_wait: Duration,
    /// Also print a markdown table.
    pub(crate) markdown: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            quick: false,
            only: Workload::ALL.to_vec(),
            clients: Client::ALL.to_vec(),
            runs: 3,
            max_attempts: 3 * 3 + 3,
            threshold: 0.15,
            max_wait: Duration::from_secs(60),
            markdown: false,
        }
    }
}

/// The help text.
pub(crate) const HELP: &str = "\
compare: our NATS clients against async-nats and the deprecated `nats` crate, one process per run.

USAGE: compare [OPTIONS]

OPTIONS:
  --quick              smaller message counts (the memory rows keep theirs)
  --only a,b           workloads: publish, raw-publish, pubsub, reqrep, ingest, micro, publish-rss, pubsub-rss
  --clients a,b        clients: ours-blocking, ours-tokio, async-nats, nats-sync, raw
  --runs N             clean runs wanted per cell (default 3)
  --max-attempts N     attempts per cell at most (default 3*runs+3)
  --threshold CORES    CPU of other processes under which a run is clean (default 0.15)
  --max-wait SECS      wait at most this long for a quiet machine before each run (default 60)
  --markdown           also print a README-ready markdown table
  --help               this text

Ratios are to async-nats in the same round: msgs/s over msgs/s (higher is better), and for reqrep p50 over p50
(lower is better). Writes target/bench/compare.json with every run.
";

/// Parses the arguments after the program name.
pub(crate) fn parse(args: &[String]) -> Result<Mode, String> {
    match args.first().map(String::as_str) {
        Some("--child") => return Ok(Mode::Child(args.get(1).ok_or("--child needs a spec")?.clone())),
        Some("--fake-ingest") => {
            let size = number(args.get(1).map(String::as_str), "--fake-ingest size")?;
            let messages = number(args.get(2).map(String::as_str), "--fake-ingest count")?;
            return Ok(Mode::FakeIngest { size, messages });
        }
        _ => {}
    }
    let mut options = Options::default();
    let mut max_attempts = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        // `--flag value` and `--flag=value` alike.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| rest.next().cloned()).ok_or(format!("{flag} needs a value"));
        match flag {
            "--help" | "-h" => return Ok(Mode::Help),
            "--quick" => options.quick = true,
            "--markdown" => options.markdown = true,
            "--only" => options.only = list(&value()?, Workload::parse, &Workload::ALL, "workload")?,
            "--clients" => options.clients = list(&value()?, Client::parse, &Client::ALL, "client")?,
            "--runs" => options.runs = number(Some(&value()?), "--runs")?.max(1),
            "--max-attempts" => max_attempts = Some(number(Some(&value()?), "--max-attempts")?),
            "--threshold" => options.threshold = real(&value()?, "--threshold")?,
            "--max-wait" => options.max_wait = Duration::from_secs_f64(real(&value()?, "--max-wait")?),
            _ => return Err(format!("unknown argument {arg:?} (see --help)")),
        }
    }
    options.max_attempts = max_attempts.unwrap_or(3 * options.runs + 3).max(options.runs);
    Ok(Mode::Compare(options))
}

/// A comma-separated list of names, kept in the canonical order of `all`.
fn list<T: Copy + PartialEq>(
    text: &str,
    parse: fn(&str) -> Option<T>,
    all: &[T],
    what: &str,
) -> Result<Vec<T>, String> {
    let named: Vec<T> = text
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| parse(s.trim()).ok_or(format!("unknown {what} {s:?} (see --help)")))
        .collect::<Result<_, _>>()?;
    if named.is_empty() {
        return Err(format!("no {what} named"));
    }
    Ok(all.iter().copied().filter(|x| named.contains(x)).collect())
}

/// A whole number.
fn number(text: Option<&str>, what: &str) -> Result<usize, String> {
    text.and_then(|t| t.parse().ok()).ok_or(format!("{what} needs a whole number"))
}

/// A non-negative real number.
fn real(text: &str, what: &str) -> Result<f64, String> {
    text.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).ok_or(format!("{what} needs a number >= 0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Mode, String> {
        parse(&line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    }

    fn options(line: &str) -> Options {
        match parse_str(line) {
            Ok(Mode::Compare(o)) => o,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let o = options("");
        assert_eq!(o, Options::default());
        assert_eq!(o.max_attempts, 12);
    }

    #[test]
    fn every_flag() {
        let o = options(
            "--quick --only reqrep,publish --clients async-nats,ours-tokio --runs 2 --threshold 0.3 \
             --max-wait=5 --markdown",
        );
        assert!(o.quick && o.markdown);
        // Canonical order, whatever the order given.
        assert_eq!(o.only, vec![Workload::Publish, Workload::Reqrep]);
        assert_eq!(o.clients, vec![Client::OursTokio, Client::AsyncNats]);
        assert_eq!((o.runs, o.max_attempts), (2, 9));
        assert_eq!(o.threshold, 0.3);
        assert_eq!(o.max_wait, Duration::from_secs(5));
        assert_eq!(options("--runs 4 --max-attempts 2").max_attempts, 4);
    }

    #[test]
    fn internal_modes() {
        assert_eq!(parse_str("--child {}"), Ok(Mode::Child("{}".into())));
        assert_eq!(parse_str("--fake-ingest 16 100"), Ok(Mode::FakeIngest { size: 16, messages: 100 }));
        assert_eq!(parse_str("--quick --help"), Ok(Mode::Help));
    }

    #[test]
    fn errors() {
        assert!(parse_str("--only nope").is_err());
        assert!(parse_str("--only").is_err());
        assert!(parse_str("--clients ,").is_err());
        assert!(parse_str("--runs x").is_err());
        assert!(parse_str("--threshold -1").is_err());
        assert!(parse_str("--bogus").is_err());
        assert!(parse_str("--fake-ingest 16").is_err());
    }
}
