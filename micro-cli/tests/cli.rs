//! The `micro` binary as a user runs it: a subprocess with `--server <url>` against a real `nats-server`, judged
//! by its stdout, stderr and exit code. Every process is bounded in time and killed if it overruns; background
//! processes (`sub`, `reply`, `demo`) are killed when their guard is dropped, even when a test fails.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{assert_clean_failure, closed_port, is_human_duration, micro, micro_ok, Background, BoxedTable, WAIT};
use nats_server_harness::NatsServer;
use serde_json::Value;

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
    assert_clean_failure(&out, &["no responders"]);
    assert!(out.stderr.contains("nobody.home"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(out.elapsed < Duration::from_secs(3), "waited for the timeout instead: {:?}", out.elapsed);
}

#[test]
fn connection_refused_fails_fast_with_one_line() {
    let url = format!("nats://127.0.0.1:{}", closed_port());
    for args in [&["--timeout", "2s", "pub", "x", "y"][..], &["--timeout", "2s", "ls"], &["req", "x"]] {
        let out = micro(&url, args);
        assert_clean_failure(&out, &["connect"]);
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
    let table = BoxedTable::parse(&ls.stdout);
    assert_eq!(table.title, "All Services", "{ls:?}");
    assert_eq!(table.header, ["Name", "Version", "ID", "Description"], "{ls:?}");
    let row = table.body.iter().find(|r| r[0] == "demo-service").expect("a demo row");
    assert_eq!(row[1], "1.0.0", "{ls:?}");
    let id = row[2].clone();
    assert_eq!(id.len(), 22, "{ls:?}");
    assert_eq!(row[3], "A demo of the NATS Service API", "{ls:?}");

    let ping = micro_ok(&url, &["--timeout", "500ms", "ping"]);
    let line = ping.stdout.lines().find(|l| l.starts_with("demo-service")).expect("the demo answers PING");
    let (who, rtt) = line.split_once("rtt=").expect("name and id, then rtt=");
    assert_eq!(who.len(), 51, "name and id padded to 50, then a space: {line:?}");
    assert_eq!(who.trim_end(), format!("demo-service {id}"), "{line:?}");
    assert!(is_human_duration(rtt), "{line:?}");
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
    assert_eq!(values("Requests"), [r#"0 in group "q""#; 3], "stats shown per endpoint: {info:?}");
    assert!(info.stdout.contains("\nStatistics for 3 Endpoint(s):\n"), "{info:?}");

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
    assert_clean_failure(&missing, &["no-such-service"]);
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
    assert_clean_failure(&nope, &["nope"]);
    assert!(nope.stderr.contains("no endpoint"), "{nope:?}");
    let bad = micro(&url, &["--timeout", "2s", "request", "demo-service", "sum", "not numbers"]);
    assert_clean_failure(&bad, &["400"]);

    let stats = micro_ok(&url, &["--timeout", "500ms", "stats", "demo-service"]);
    let table = BoxedTable::parse(&stats.stdout);
    assert_eq!(table.title, "demo-service Service Statistics", "{stats:?}");
    let columns = ["ID", "Endpoint", "Requests", "Queue Group", "Errors", "Processing Time", "Average Time"];
    assert_eq!(table.header, columns, "{stats:?}");
    let endpoint = |name: &str| table.body.iter().find(|r| r[1] == name).unwrap_or_else(|| panic!("{name} row"));
    // echo: the one request above; sum: [1,2,3] and the bad one (an error).
    assert_eq!((endpoint("echo")[2].as_str(), endpoint("echo")[4].as_str()), ("1", "0"), "{stats:?}");
    assert_eq!((endpoint("sum")[2].as_str(), endpoint("sum")[4].as_str()), ("2", "1"), "{stats:?}");
    assert_eq!(table.body[0][0].len(), 22, "the instance's id on its first row: {stats:?}");
    assert!(table.body[1..].iter().all(|r| r[0].is_empty()), "and only there: {stats:?}");
    assert!(table.body.iter().all(|r| r[3] == "q"), "{stats:?}");
    let footer = table.footer.expect("a footer with the totals");
    let sum = |column: usize| table.body.iter().map(|r| r[column].parse::<u64>().unwrap()).sum::<u64>();
    assert_eq!(footer[2], sum(2).to_string(), "{stats:?}");
    assert_eq!(footer[4], sum(4).to_string(), "{stats:?}");
    for row in table.body.iter().chain([&footer]) {
        assert!(is_human_duration(&row[5]) && is_human_duration(&row[6]), "{row:?} in {stats:?}");
    }

    let json = micro_ok(&url, &["--timeout", "500ms", "--json", "stats", "demo-service"]);
    let all: Vec<Value> = serde_json::from_str(json.stdout.trim()).expect("--json stats prints a JSON array");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["type"], "io.nats.micro.v1.stats_response");
    assert!(all[0]["endpoints"].as_array().unwrap().iter().all(|e| e["processing_time"].is_u64()));
}
