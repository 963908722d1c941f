//! The parent: starts the servers, waits for a quiet machine before every run, runs each one in a child process
//! and repeats cells until they have their clean runs.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nats_server_harness::NatsServer;

use crate::args::Options;
use crate::plan::{self, Group};
use crate::proc::Machine;
use crate::quiet::{self, CpuMeter};
use crate::spec::{ChildSpec, Client, RunResult, Workload};
use crate::stats::{Cell, Run};

/// The quiet guard's sampling window, and the shortest window a child reads others over.
const QUIET_WINDOW: Duration = Duration::from_millis(300);
/// A child that has not answered by then is killed and its run counted as failed.
const CHILD_TIMEOUT: Duration = Duration::from_secs(300);

/// Everything a comparison found.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The machine it ran on.
    pub(crate) machine: Machine,
    /// `nats-server --version`.
    pub(crate) server_version: String,
    /// Whether the pinned rows could run.
    pub(crate) taskset: bool,
    /// Every cell with all its runs, in report order.
    pub(crate) cells: Vec<Cell>,
}

/// Runs the comparison `options` ask for, handing what there is so far to `after_group` after each group (so that
/// a long run stopped halfway still leaves its figures).
pub(crate) fn run(options: &Options, mut after_group: impl FnMut(&Outcome)) -> Outcome {
    let server = NatsServer::start();
    let taskset = taskset_works();
    if !taskset {
        eprintln!("taskset is missing or refuses: the pinned reqrep rows are left out");
    }
    let mut outcome = Outcome { machine: Machine::read(), server_version: server.version(), taskset, cells: vec![] };
    for group in plan::plan(options, taskset) {
        outcome.cells.extend(run_group(&server, &group, options));
        after_group(&outcome);
    }
    outcome
}

/// Runs a group round by round, each round every member that still needs a clean run (and async-nats whenever any
/// other member does, so that there is a baseline run of the same round to pair with).
fn run_group(server: &NatsServer, group: &Group, options: &Options) -> Vec<Cell> {
    if group.pinned && !pin(server.pid(), "0") {
        eprintln!("could not pin the server to CPU 0: the {} rows are not pinned on its side", group.label());
    }
    let mut cells: Vec<Cell> = group
        .members
        .iter()
        .map(|&(workload, client)| Cell {
            workload,
            size: group.size,
            pinned: group.pinned,
            client,
            messages: group.messages,
            runs: vec![],
        })
        .collect();
    for round in 0.. {
        let due = due_this_round(&cells, options);
        if due.is_empty() {
            break;
        }
        for i in due {
            let run = run_once(server, group, &cells[i], round, options);
            progress(group, &cells[i], &run);
            cells[i].runs.push(run);
        }
    }
    if group.pinned {
        let all = format!("0-{}", Machine::read().nproc.saturating_sub(1));
        // Unpinned rows after this one need the server on every CPU again.
        pin(server.pid(), &all);
    }
    cells
}

/// Which cells run in the next round, by index.
///
/// A cell counts the rounds in which both it and async-nats ran clean (while async-nats can still run): a clean
/// run whose baseline run was not clean gives no paired ratio, so it is run again. async-nats runs while it, or
/// any other cell, is short.
fn due_this_round(cells: &[Cell], options: &Options) -> Vec<usize> {
    let can_try = |c: &Cell| c.runs.len() < options.max_attempts;
    let baseline = cells.iter().find(|c| c.client == Client::AsyncNats).filter(|b| can_try(b));
    let have = |c: &Cell| match baseline {
        Some(b) if c.client != Client::AsyncNats => paired_clean(c, b),
        _ => c.clean_runs(),
    };
    let needs = |c: &Cell| have(c) < options.runs && can_try(c);
    let any_needs = cells.iter().any(needs);
    (0..cells.len())
        .filter(|&i| {
            let c = &cells[i];
            needs(c) || (c.client == Client::AsyncNats && can_try(c) && any_needs)
        })
        .collect()
}

/// Rounds in which both `cell` and `baseline` ran clean.
fn paired_clean(cell: &Cell, baseline: &Cell) -> usize {
    let clean_rounds = |c: &Cell| c.clean_values(|_| Some(0.0)).into_iter().map(|(round, _)| round).collect::<Vec<_>>();
    let base = clean_rounds(baseline);
    clean_rounds(cell).iter().filter(|r| base.contains(r)).count()
}

/// One attempt at a cell: a fake server if it needs one, a quiet machine, then the child.
fn run_once(server: &NatsServer, group: &Group, cell: &Cell, round: usize, options: &Options) -> Run {
    let fake = (cell.workload == Workload::Ingest).then(|| FakeServer::start(group.size, group.messages));
    let url = fake.as_ref().map_or_else(|| server.url(), |f| f.url.clone());
    let exclude: Vec<u32> =
        [Some(std::process::id()), server.pid(), fake.as_ref().map(|f| f.child.id())].into_iter().flatten().collect();
    let wait = quiet::wait_quiet(&CpuMeter::new(&exclude), options.threshold, QUIET_WINDOW, options.max_wait);
    if !wait.quiet {
        eprintln!(
            "  machine still busy after {:.0?} ({:.2} cores of others); running anyway",
            wait.waited, wait.others
        );
    }
    let spec = ChildSpec {
        workload: cell.workload,
        client: cell.client,
        size: group.size,
        messages: group.messages,
        url,
        pinned: group.pinned,
        exclude,
        min_window_s: QUIET_WINDOW.as_secs_f64(),
    };
    let outcome = run_child(&spec);
    drop(fake);
    let clean = outcome.as_ref().is_ok_and(|r| quiet::is_clean(r.others_cores, options.threshold));
    Run { round, clean, outcome }
}

/// Prints one line per run on stderr, so that a long comparison shows it is alive.
fn progress(group: &Group, cell: &Cell, run: &Run) {
    let what = match &run.outcome {
        Ok(r) if cell.workload.is_latency() => format!("p50 {:.1} us", r.p50_us.unwrap_or(f64::NAN)),
        Ok(r) => format!("{:.0} msgs/s", r.msgs_per_s),
        Err(e) => format!("failed: {e}"),
    };
    let others = run.outcome.as_ref().ok().and_then(|r| r.others_cores).map_or("?".into(), |o| format!("{o:.2}"));
    let clean = if run.clean { "clean" } else { "UNCLEAN" };
    eprintln!(
        "[{}] round {} {:<13} {what}, others {others} cores, {clean}",
        group.label(),
        run.round,
        cell.client.name()
    );
}

/// Runs `compare --child <spec>` and reads the one JSON line it prints.
fn run_child(spec: &ChildSpec) -> Result<RunResult, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let mut child = Command::new(exe)
        .arg("--child")
        .arg(spec.to_json())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn child: {e}"))?;
    let output = read_with_timeout(&mut child, CHILD_TIMEOUT);
    let status = child.wait().map_err(|e| format!("wait child: {e}"))?;
    let output = output?;
    let line = output.lines().rev().find(|l| l.starts_with('{'));
    match line {
        Some(line) if status.success() => RunResult::from_json(line),
        _ => Err(format!("child {status}")),
    }
}

/// All of a child's stdout, or an error (and the child killed) if it takes longer than `timeout`.
fn read_with_timeout(child: &mut Child, timeout: Duration) -> Result<String, String> {
    let mut stdout = child.stdout.take().ok_or("no child stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = tx.send(stdout.read_to_string(&mut text).map(|_| text));
    });
    match rx.recv_timeout(timeout) {
        Ok(read) => read.map_err(|e| format!("read child: {e}")),
        Err(_) => {
            let _ = child.kill();
            Err(format!("child took longer than {timeout:?}"))
        }
    }
}

/// The fake ingest server: this binary again (`--fake-ingest`), in its own process so its CPU is not the client's.
struct FakeServer {
    /// The process.
    child: Child,
    /// Where it listens.
    url: String,
}

impl FakeServer {
    /// Starts one that streams `messages` frames of `size` bytes to its first client.
    fn start(size: usize, messages: usize) -> FakeServer {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .args(["--fake-ingest", &size.to_string(), &messages.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the fake ingest server");
        let mut url = String::new();
        let stdout = child.stdout.take().expect("fake server stdout");
        BufReader::new(stdout).read_line(&mut url).expect("fake server URL");
        FakeServer { child, url: url.trim().to_owned() }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Moves every thread of `pid` onto `cpus` (taskset's list syntax).
fn pin(pid: Option<u32>, cpus: &str) -> bool {
    pid.is_some_and(|pid| {
        Command::new("taskset")
            .args(["-a", "-cp", cpus, &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Whether `taskset` is there and may read this process's affinity.
fn taskset_works() -> bool {
    Command::new("taskset")
        .args(["-p", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(client: Client, clean: &[bool]) -> Cell {
        let runs = clean
            .iter()
            .enumerate()
            .map(|(round, &clean)| Run { round, clean, outcome: Ok(RunResult::default()) })
            .collect();
        Cell { workload: Workload::Publish, size: 16, pinned: false, client, messages: 1, runs }
    }

    #[test]
    fn only_cells_short_of_clean_runs_are_due() {
        let options = Options { runs: 2, max_attempts: 4, ..Options::default() };
        let cells = [cell(Client::OursBlocking, &[true, true]), cell(Client::OursTokio, &[true, false])];
        assert_eq!(due_this_round(&cells, &options), vec![1]);
    }

    #[test]
    fn async_nats_runs_while_another_needs_a_pair() {
        let options = Options { runs: 2, max_attempts: 4, ..Options::default() };
        let cells = [cell(Client::AsyncNats, &[true, true]), cell(Client::OursTokio, &[true, false])];
        assert_eq!(due_this_round(&cells, &options), vec![0, 1]);
        let done = [cell(Client::AsyncNats, &[true, true]), cell(Client::OursTokio, &[true, true])];
        assert!(due_this_round(&done, &options).is_empty());
    }

    #[test]
    fn a_clean_run_without_a_clean_baseline_is_run_again() {
        let options = Options { runs: 2, max_attempts: 4, ..Options::default() };
        // Round 1: ours clean, async-nats not; only round 0 pairs.
        let cells = [cell(Client::AsyncNats, &[true, false]), cell(Client::OursTokio, &[true, true])];
        assert_eq!(due_this_round(&cells, &options), vec![0, 1]);
        // Once async-nats can run no more, plain clean runs count.
        let options = Options { runs: 2, max_attempts: 3, ..Options::default() };
        let cells = [cell(Client::AsyncNats, &[false, false, false]), cell(Client::OursTokio, &[true, true])];
        assert!(due_this_round(&cells, &options).is_empty());
    }

    #[test]
    fn attempts_are_capped() {
        let options = Options { runs: 2, max_attempts: 3, ..Options::default() };
        let cells = [cell(Client::AsyncNats, &[false, false, false]), cell(Client::OursTokio, &[false, false, true])];
        assert!(due_this_round(&cells, &options).is_empty());
    }
}
