// Each test binary (cli, bench_cli, cli_jetstream, cli_security) uses a different subset of these helpers.
#![allow(dead_code)]

//! Running the built `micro` binary as a user does: a subprocess with `--server <url>`, judged by its stdout,
//! stderr and exit code. Every process is bounded in time and killed if it overruns; both pipes are always read on
//! threads of their own (so a full pipe never blocks the child); background processes are killed when their guard is
//! dropped, even when a test fails.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest a foreground `micro` may run, unless a test binary says otherwise (see [`Micro`]).
pub(crate) const LIMIT: Duration = Duration::from_secs(20);
/// The longest any wait on a background process may take, unless a test binary says otherwise.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// How long `micro` may take: `limit` bounds a foreground run, `wait` each wait on a background one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Micro {
    pub(crate) limit: Duration,
    pub(crate) wait: Duration,
}

/// The bounds most tests use; [`micro`], [`micro_ok`], [`micro_quiet`] and [`Background::spawn`] run with them.
pub(crate) const MICRO: Micro = Micro { limit: LIMIT, wait: WAIT };

/// What a finished `micro` left behind.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) elapsed: Duration,
}

impl Output {
    /// The one JSON value on stdout.
    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {self:?}"))
    }
}

/// `micro --server <url> <args>`, without `NATS_URL` from the environment, stdin closed, stdout and stderr piped.
pub(crate) fn micro_command(url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_micro"));
    cmd.arg("--server").arg(url).args(args).env_remove("NATS_URL").stdin(Stdio::null());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Reads a pipe to its end on a thread of its own (so a full pipe never blocks the child).
pub(crate) fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Reads a pipe line by line on a thread of its own; the channel disconnects when the pipe closes.
pub(crate) fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for `child` to exit, killing it (and failing) after `limit`.
#[track_caller]
pub(crate) fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

impl Micro {
    /// Runs `micro --server <url> <args>` to completion (killed and failed after `self.limit`).
    #[track_caller]
    pub(crate) fn run(self, url: &str, args: &[&str]) -> Output {
        let started = Instant::now();
        let mut child = micro_command(url, args).spawn().expect("micro starts");
        let stdout = read_all(child.stdout.take().unwrap());
        let stderr = read_all(child.stderr.take().unwrap());
        let status = wait_bounded(&mut child, self.limit, &format!("micro {args:?}"));
        let elapsed = started.elapsed();
        Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap(), elapsed }
    }

    /// Runs `micro` and insists that it succeeded without a panic (it may write to stderr).
    #[track_caller]
    pub(crate) fn ok(self, url: &str, args: &[&str]) -> Output {
        let out = self.run(url, args);
        assert!(out.status.success(), "micro {args:?} failed: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{out:?}");
        out
    }

    /// Runs `micro` and insists that it succeeded quietly: nothing at all on stderr.
    #[track_caller]
    pub(crate) fn quiet(self, url: &str, args: &[&str]) -> Output {
        let out = self.ok(url, args);
        assert!(out.stderr.trim().is_empty(), "micro {args:?} wrote to stderr: {out:?}");
        out
    }

    /// Starts `micro --server <url> <args>` in the background; its waits are bounded by `self.wait`.
    pub(crate) fn spawn(self, url: &str, args: &[&str]) -> Background {
        let started = Instant::now();
        let mut child = micro_command(url, args).spawn().expect("micro starts");
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Background { child, stdout, stderr, wait: self.wait, started }
    }
}

/// [`Micro::run`] with the default bounds.
#[track_caller]
pub(crate) fn micro(url: &str, args: &[&str]) -> Output {
    MICRO.run(url, args)
}

/// [`Micro::ok`] with the default bounds.
#[track_caller]
pub(crate) fn micro_ok(url: &str, args: &[&str]) -> Output {
    MICRO.ok(url, args)
}

/// [`Micro::quiet`] with the default bounds.
#[track_caller]
pub(crate) fn micro_quiet(url: &str, args: &[&str]) -> Output {
    MICRO.quiet(url, args)
}

/// A failure as a user should see it: exit code 1, nothing on stdout, one line on stderr (`micro: ...`) mentioning
/// every needle (in lower case), no panic trace.
#[track_caller]
pub(crate) fn assert_clean_failure(out: &Output, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(1), "expected a failure with exit code 1: {out:?}");
    assert!(!out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line of error: {out:?}");
    assert!(lines[0].starts_with("micro: "), "{out:?}");
    for needle in needles {
        assert!(lines[0].to_lowercase().contains(needle), "{:?} should mention {needle:?}", lines[0]);
    }
    assert!(out.stdout.is_empty(), "{out:?}");
}

/// A usage error from clap: exit code 2 and a word about it.
#[track_caller]
pub(crate) fn assert_usage_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "expected a usage error: {out:?}");
    assert!(out.stderr.contains(needle), "{:?} should mention {needle:?}", out.stderr);
    assert!(out.stdout.is_empty(), "{out:?}");
}

/// A loopback port nobody listens on.
pub(crate) fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A `micro` running in the background (see [`Micro::spawn`]), its output lines arriving on channels. Every wait
/// on it is bounded by its `wait`; dropping it kills the process.
pub(crate) struct Background {
    child: Child,
    pub(crate) stdout: Receiver<String>,
    pub(crate) stderr: Receiver<String>,
    wait: Duration,
    started: Instant,
}

impl Background {
    /// [`Micro::spawn`] with the default bounds.
    pub(crate) fn spawn(url: &str, args: &[&str]) -> Self {
        MICRO.spawn(url, args)
    }

    /// Sends the process a signal by name (`TERM`, `INT`), as `kill -s NAME` does.
    #[track_caller]
    pub(crate) fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-s", name, &pid]).status().expect("kill runs");
        assert!(status.success(), "kill -s {name} {pid}: {status:?}");
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line.
    #[track_caller]
    pub(crate) fn line(&self) -> String {
        self.stdout.recv_timeout(self.wait).expect("a line from the background micro")
    }

    /// Waits for a stderr line starting with `prefix` (skipping others) and returns it.
    #[track_caller]
    pub(crate) fn wait_for_stderr(&self, prefix: &str) -> String {
        let deadline = Instant::now() + self.wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no stderr line starting with {prefix:?} within {:?}: {e}", self.wait),
            }
        }
    }

    /// Waits for the process to exit on its own (killed and failed if it has not within `wait`).
    #[track_caller]
    pub(crate) fn wait_exit(&mut self) -> ExitStatus {
        wait_bounded(&mut self.child, self.wait, "the background micro")
    }

    /// Every stdout line not yet read, until the pipe closes.
    #[track_caller]
    pub(crate) fn rest_of_stdout(&self) -> Vec<String> {
        rest_of(&self.stdout, self.wait, "stdout")
    }

    /// Every stderr line not yet read, until the pipe closes.
    #[track_caller]
    pub(crate) fn rest_of_stderr(&self) -> Vec<String> {
        rest_of(&self.stderr, self.wait, "stderr")
    }

    /// Waits for the process to exit on its own; its status, and the stdout and stderr lines not yet read.
    #[track_caller]
    pub(crate) fn finish(mut self) -> Output {
        let status = self.wait_exit();
        let elapsed = self.started.elapsed();
        let text = |lines: Vec<String>| lines.into_iter().map(|l| l + "\n").collect::<String>();
        Output { status, stdout: text(self.rest_of_stdout()), stderr: text(self.rest_of_stderr()), elapsed }
    }
}

/// Every line still to come on `lines`, until its pipe closes (at most `wait`).
#[track_caller]
fn rest_of(lines: &Receiver<String>, wait: Duration, name: &str) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut got = vec![];
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => got.push(line),
            Err(RecvTimeoutError::Disconnected) => return got,
            Err(RecvTimeoutError::Timeout) => panic!("{name} still open after {wait:?}; got {got:?}"),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A rounded table as `micro ls` and `micro stats` draw it, read back: the title, the column names, the body
/// rows and the footer row, each cell trimmed.
#[derive(Debug)]
pub(crate) struct BoxedTable {
    pub(crate) title: String,
    pub(crate) header: Vec<String>,
    pub(crate) body: Vec<Vec<String>>,
    pub(crate) footer: Option<Vec<String>>,
}

impl BoxedTable {
    /// Parses the table in `text`, insisting on its frame: a rounded top and bottom, a title in a box of its
    /// own, lines between the sections, and every row as wide as the frame.
    #[track_caller]
    pub(crate) fn parse(text: &str) -> Self {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(lines.first().is_some_and(|l| l.starts_with('╭') && l.ends_with('╮')), "no rounded top: {text}");
        assert!(lines.last().is_some_and(|l| l.starts_with('╰') && l.ends_with('╯')), "no rounded bottom: {text}");
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "ragged frame: {text}");
        let mut sections: Vec<Vec<Vec<String>>> = vec![];
        for line in &lines[1..lines.len() - 1] {
            if line.starts_with('├') {
                sections.push(vec![]);
            } else {
                assert!(line.starts_with('│') && line.ends_with('│'), "not a row: {line:?} in {text}");
                let cells = line.trim_matches('│').split('│').map(|c| c.trim().to_owned()).collect();
                match sections.last_mut() {
                    Some(section) => section.push(cells),
                    None => sections.push(vec![cells]),
                }
            }
        }
        assert!((3..=4).contains(&sections.len()), "title, header, body and maybe a footer: {text}");
        assert_eq!(sections[0].len(), 1, "one title row: {text}");
        assert_eq!(sections[0][0].len(), 1, "the title spans the columns: {text}");
        assert_eq!(sections[1].len(), 1, "one header row: {text}");
        let footer = sections.get(3).map(|f| {
            assert_eq!(f.len(), 1, "one footer row: {text}");
            f[0].clone()
        });
        Self { title: sections[0][0][0].clone(), header: sections[1][0].clone(), body: sections[2].clone(), footer }
    }
}

/// Whether `s` is a duration as natscli prints one: `0s`, `10µs`, `1ms`, `1.50s`, `2m5s`, `1h0m3s`.
pub(crate) fn is_human_duration(s: &str) -> bool {
    let whole_units = |s: &str, units: &[&str]| {
        units.iter().any(|u| s.strip_suffix(u).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
    };
    let seconds = s.strip_suffix('s').and_then(|n| n.split_once('.')).is_some_and(|(w, f)| {
        !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) && f.len() == 2 && f.bytes().all(|b| b.is_ascii_digit())
    });
    whole_units(s, &["µs", "ms", "s"]) || seconds || s.contains('m') && s.ends_with('s') && !s.contains('.')
}
