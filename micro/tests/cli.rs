//! The `micro` binary as a user runs it: a subprocess with `--server <url>` against a real `nats-server`, judged
//! by its stdout, stderr and exit code. Every process is bounded in time and killed if it overruns; background
//! processes (`sub`, `reply`, `demo`) are killed when their guard is dropped, even when a test fails.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use nats_server_harness::NatsServer;
use serde_json::Value;

/// The longest a foreground `micro` may run.
const LIMIT: Duration = Duration::from_secs(20);
/// The longest any wait on a background process may take.
const WAIT: Duration = Duration::from_secs(10);

/// What a finished `micro` left behind.
#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

fn micro_command(url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_micro"));
    cmd.arg("--server").arg(url).args(args).env_remove("NATS_URL").stdin(Stdio::null());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Reads a pipe to its end on a thread of its own (so a full pipe never blocks the child).
fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Runs `micro --server <url> <args>` to completion (killed and failed after `LIMIT`).
fn micro(url: &str, args: &[&str]) -> Output {
    let started = Instant::now();
    let mut child = micro_command(url, args).spawn().expect("micro starts");
    let stdout = read_all(child.stdout.take().unwrap());
    let stderr = read_all(child.stderr.take().unwrap());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("micro {args:?} still running after {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap(), elapsed }
}

/// Runs `micro` and insists that it succeeded.
fn micro_ok(url: &str, args: &[&str]) -> Output {
    let out = micro(url, args);
    assert!(out.status.success(), "micro {args:?} failed: {out:?}");
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    out
}

/// A failure as a user should see it: non-zero exit, one line on stderr naming the problem, no panic trace.
fn assert_clean_failure(out: &Output, needle: &str) {
    assert!(!out.status.success(), "expected a failure: {out:?}");
    assert!(!out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line of error: {out:?}");
    assert!(lines[0].to_lowercase().contains(needle), "{:?} should mention {needle:?}", lines[0]);
}

/// A `micro` running in the background, its output lines arriving on channels. Dropping it kills the process.
struct Background {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
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

impl Background {
    fn spawn(url: &str, args: &[&str]) -> Self {
        let mut child = micro_command(url, args).spawn().expect("micro starts");
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Self { child, stdout, stderr }
    }

    /// Waits (at most `WAIT`) for the process to exit on its own.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the background micro did not exit within {WAIT:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every remaining stdout line, until the pipe closes (at most `WAIT`).
    fn rest_of_stdout(&self) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut lines = vec![];
        loop {
            match self.stdout.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Disconnected) => return lines,
                Err(RecvTimeoutError::Timeout) => panic!("stdout still open after {WAIT:?}; got {lines:?}"),
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------------------------
// Messaging
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn pub_then_sub_with_count_and_headers() {
    let server = NatsServer::start();
    let url = server.url();
    let total = 5;
    let mut sub = Background::spawn(&url, &["sub", "cli.count", "--count", &total.to_string()]);

    // Probe until the subscriber prints: then it is subscribed. Probes count towards --count.
    let deadline = Instant::now() + WAIT;
    let mut seen = vec![];
    while seen.is_empty() {
        assert!(Instant::now() < deadline, "micro sub never received a probe");
        let out = micro_ok(&url, &["pub", "cli.count", "probe"]);
        assert!(out.stdout.contains("published 1 message(s) to cli.count"), "{out:?}");
        if let Ok(line) = sub.stdout.recv_timeout(Duration::from_millis(500)) {
            seen.push(line);
        }
    }
    // A probe is three lines at most ([subject], payload): let any straggler arrive.
    while let Ok(line) = sub.stdout.recv_timeout(Duration::from_millis(300)) {
        seen.push(line);
    }
    let probes = seen.iter().filter(|l| *l == "probe").count();
    assert!((1..total).contains(&probes), "{seen:?}");
    let data = total - probes;

    let out = micro_ok(
        &url,
        &["pub", "cli.count", "hello", "--count", &data.to_string(), "-H", "X-Trace:abc", "-H", "Team: core"],
    );
    assert!(out.stdout.contains(&format!("published {data} message(s) to cli.count")), "{out:?}");

    let status = sub.wait_exit();
    assert!(status.success(), "micro sub exits cleanly after --count: {status:?}");
    seen.extend(sub.rest_of_stdout());
    let count = |wanted: &str| seen.iter().filter(|l| *l == wanted).count();
    assert_eq!(count("[cli.count]"), total, "{seen:?}");
    assert_eq!(count("probe"), probes, "{seen:?}");
    assert_eq!(count("hello"), data, "{seen:?}");
    assert_eq!(count("X-Trace: abc"), data, "{seen:?}");
    assert_eq!(count("Team: core"), data, "{seen:?}");
}

#[test]
fn req_to_an_echoing_reply() {
    let server = NatsServer::start();
    let url = server.url();
    let mut reply = Background::spawn(&url, &["reply", "cli.echo", "--count", "1"]);

    // Until `reply` has subscribed, requests find no responders; the first one answered is the one counted.
    let deadline = Instant::now() + WAIT;
    let out = loop {
        let out = micro(&url, &["--timeout", "2s", "req", "cli.echo", "hello there"]);
        if out.status.success() {
            break out;
        }
        assert!(out.stderr.contains("no responders"), "{out:?}");
        assert!(Instant::now() < deadline, "micro reply never answered");
        thread::sleep(Duration::from_millis(50));
    };
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(lines[0].starts_with("[_INBOX."), "{out:?}");
    assert_eq!(lines[1], "hello there");
    assert!(out.stderr.is_empty(), "{out:?}");
    assert!(reply.wait_exit().success(), "micro reply exits after --count 1");
}

#[test]
fn req_without_responders_fails_fast_with_one_line() {
    let server = NatsServer::start();
    let out = micro(&server.url(), &["--timeout", "5s", "req", "nobody.home", "anyone?"]);
    assert_clean_failure(&out, "no responders");
    assert!(out.stderr.contains("nobody.home"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(out.elapsed < Duration::from_secs(3), "waited for the timeout instead: {:?}", out.elapsed);
}

#[test]
fn connection_refused_fails_fast_with_one_line() {
    let url = format!("nats://127.0.0.1:{}", closed_port());
    for args in [&["--timeout", "2s", "pub", "x", "y"][..], &["--timeout", "2s", "ls"], &["req", "x"]] {
        let out = micro(&url, args);
        assert_clean_failure(&out, "connect");
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(out.elapsed < Duration::from_secs(4), "{args:?} took {:?}", out.elapsed);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Services: `micro demo` in the background
// ---------------------------------------------------------------------------------------------------------------

/// Starts `micro demo` and waits until discovery finds it.
fn start_demo(url: &str) -> Background {
    let demo = Background::spawn(url, &["demo"]);
    let line = demo.stderr.recv_timeout(WAIT).expect("micro demo announces itself");
    assert!(line.starts_with("demo-service ") && line.contains("running"), "{line}");
    let deadline = Instant::now() + WAIT;
    while !micro(url, &["--timeout", "1s", "ls"]).stdout.contains("demo-service") {
        assert!(Instant::now() < deadline, "micro ls never listed the demo");
        thread::sleep(Duration::from_millis(50));
    }
    demo
}

#[test]
fn demo_listed_pinged_and_described() {
    let server = NatsServer::start();
    let url = server.url();
    let _demo = start_demo(&url);

    let ls = micro_ok(&url, &["--timeout", "500ms", "ls"]);
    let lines: Vec<&str> = ls.stdout.lines().collect();
    assert!(lines[0].split_whitespace().eq(["Name", "Version", "ID", "Description"]), "{ls:?}");
    let row: Vec<&str> =
        lines.iter().find(|l| l.starts_with("demo-service")).expect("a demo row").split_whitespace().collect();
    assert_eq!(&row[..2], ["demo-service", "1.0.0"], "{ls:?}");
    let id = row[2].to_owned();
    assert_eq!(id.len(), 22, "{ls:?}");
    assert!(ls.stdout.contains("A demo of the NATS Service API"), "{ls:?}");

    let ping = micro_ok(&url, &["--timeout", "500ms", "ping"]);
    let line = ping.stdout.lines().find(|l| l.starts_with("demo-service")).expect("the demo answers PING");
    assert!(line.contains(&id) && line.contains("rtt="), "{ping:?}");
    let ping = micro_ok(&url, &["--timeout", "500ms", "ping", "demo-service"]);
    assert_eq!(ping.stdout.lines().filter(|l| l.contains("rtt=")).count(), 1, "{ping:?}");

    let info = micro_ok(&url, &["--timeout", "1s", "info", "demo-service"]);
    let fields: Vec<(String, String)> = info
        .stdout
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .collect();
    let values = |key: &str| fields.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    assert_eq!(values("Service"), [format!("demo-service ({id})")], "{info:?}");
    assert_eq!(values("Version"), ["1.0.0"], "{info:?}");
    assert_eq!(values("Name"), ["echo", "sum", "flaky"], "{info:?}");
    assert_eq!(values("Subject"), ["demo.ECHO", "demo.sum", "demo.flaky"], "{info:?}");
    assert_eq!(values("Queue Group"), ["q", "q", "q"], "{info:?}");
    assert_eq!(values("Requests").len(), 3, "stats shown per endpoint: {info:?}");

    let json = micro_ok(&url, &["--timeout", "500ms", "--json", "ls"]);
    let all: Vec<Value> = serde_json::from_str(json.stdout.trim()).expect("--json ls prints a JSON array");
    assert!(!all.is_empty());
    for service in &all {
        assert_eq!(service["type"], "io.nats.micro.v1.info_response", "{service}");
    }
    let demo = all.iter().find(|s| s["name"] == "demo-service").expect("the demo in --json ls");
    assert_eq!(demo["id"], id.as_str());
    let subjects: Vec<&str> =
        demo["endpoints"].as_array().unwrap().iter().map(|e| e["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["demo.ECHO", "demo.sum", "demo.flaky"]);

    let missing = micro(&url, &["--timeout", "500ms", "info", "no-such-service"]);
    assert_clean_failure(&missing, "no-such-service");
}

#[test]
fn demo_requests_and_stats() {
    let server = NatsServer::start();
    let url = server.url();
    let _demo = start_demo(&url);

    let sum = micro_ok(&url, &["--timeout", "2s", "request", "demo-service", "sum", "[1,2,3]"]);
    let total: Value = serde_json::from_str(sum.stdout.trim()).expect("the sum is JSON");
    assert_eq!(total.as_f64(), Some(6.0), "{sum:?}");
    let echo = micro_ok(&url, &["--timeout", "2s", "request", "demo-service", "echo", "hi there"]);
    assert_eq!(echo.stdout.trim_end(), "hi there");

    let nope = micro(&url, &["--timeout", "2s", "request", "demo-service", "nope", "{}"]);
    assert_clean_failure(&nope, "nope");
    assert!(nope.stderr.contains("no endpoint"), "{nope:?}");
    let bad = micro(&url, &["--timeout", "2s", "request", "demo-service", "sum", "not numbers"]);
    assert_clean_failure(&bad, "400");

    let stats = micro_ok(&url, &["--timeout", "500ms", "stats", "demo-service"]);
    let rows: Vec<Vec<&str>> = stats.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        rows[0],
        ["ID", "Endpoint", "Requests", "Queue", "Group", "Errors", "Processing", "Time", "Average", "Time"],
        "{stats:?}"
    );
    let endpoint = |name: &str| rows.iter().find(|r| r.get(1) == Some(&name)).unwrap_or_else(|| panic!("{name} row"));
    // echo: the one request above; sum: [1,2,3] and the bad one (an error).
    assert_eq!((endpoint("echo")[2], endpoint("echo")[4]), ("1", "0"), "{stats:?}");
    assert_eq!((endpoint("sum")[2], endpoint("sum")[4]), ("2", "1"), "{stats:?}");
    let total = rows.iter().find(|r| r.first() == Some(&"Total")).expect("a Total row");
    let requests: u64 = rows.iter().filter(|r| r.len() == 7 && r[3] == "q").map(|r| r[2].parse::<u64>().unwrap()).sum();
    assert_eq!(total[1], requests.to_string(), "{stats:?}");
    let errors: u64 = rows.iter().filter(|r| r.len() == 7 && r[3] == "q").map(|r| r[4].parse::<u64>().unwrap()).sum();
    assert_eq!(total[2], errors.to_string(), "{stats:?}");

    let json = micro_ok(&url, &["--timeout", "500ms", "--json", "stats", "demo-service"]);
    let all: Vec<Value> = serde_json::from_str(json.stdout.trim()).expect("--json stats prints a JSON array");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["type"], "io.nats.micro.v1.stats_response");
    assert!(all[0]["endpoints"].as_array().unwrap().iter().all(|e| e["processing_time"].is_u64()));
}
