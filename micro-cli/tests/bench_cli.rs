//! `micro bench` as a user runs it: the `micro` binary in a subprocess against a real `nats-server`, judged by its
//! JSON (or text) summary, its stderr and its exit code. The figures are only checked for sense (counts exact,
//! rates positive, percentiles in order), never against a time: benchmarks are not timed tests. Every process is
//! bounded in time and killed if it overruns.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{assert_clean_failure, closed_port, Micro, Output};
use nats_server_harness::NatsServer;
use serde_json::Value;

/// The longest a foreground `micro bench` may run.
const LIMIT: Duration = Duration::from_secs(60);
/// The longest any wait on a background process may take.
const WAIT: Duration = Duration::from_secs(30);
/// `micro` with the bounds above: benchmarks in a debug build take longer than the other commands.
const BENCH: Micro = Micro { limit: LIMIT, wait: WAIT };
/// Messages per run: enough for several progress updates per client, few enough for a debug build.
const MSGS: u64 = 2000;

/// Runs `micro --server <url> <args>` to completion (see [`Micro::run`]).
fn micro(url: &str, args: &[&str]) -> Output {
    BENCH.run(url, args)
}

/// Runs `micro` and insists that it succeeded without a panic (see [`Micro::ok`]).
fn micro_ok(url: &str, args: &[&str]) -> Output {
    BENCH.ok(url, args)
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} is not a count in {v}"))
}

fn f64_of(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// A group of clients (`pub`, `sub` or `req`) that moved `each` messages per client of `size` bytes.
fn assert_group(group: &Value, clients: usize, each: &[u64], size: u64) {
    let per_client = group["per_client"].as_array().unwrap_or_else(|| panic!("no per_client in {group}"));
    assert_eq!(per_client.len(), clients, "{group}");
    let total: u64 = each.iter().sum();
    assert_eq!(u64_of(group, "msgs"), total, "{group}");
    assert_eq!(u64_of(group, "bytes"), total * size, "{group}");
    assert!(f64_of(group, "seconds") > 0.0, "{group}");
    assert!(f64_of(group, "msgs_per_sec") > 0.0, "{group}");
    assert!(size == 0 || f64_of(group, "bytes_per_sec") > 0.0, "{group}");
    let (min, avg, max) =
        (f64_of(group, "min_msgs_per_sec"), f64_of(group, "avg_msgs_per_sec"), f64_of(group, "max_msgs_per_sec"));
    assert!(0.0 < min && min <= avg && avg <= max, "{group}");
    assert!(f64_of(group, "stddev_msgs_per_sec") >= 0.0, "{group}");
    for (client, &n) in per_client.iter().zip(each) {
        assert_eq!(u64_of(client, "msgs"), n, "{group}");
        assert_eq!(u64_of(client, "bytes"), n * size, "{group}");
        assert!(f64_of(client, "msgs_per_sec") > 0.0, "{group}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// bench pub
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn bench_pub_json_splits_the_messages_between_the_clients() {
    let server = NatsServer::start();
    let n = MSGS.to_string();
    let out = micro_ok(
        &server.url(),
        &["--json", "bench", "pub", "bench.pub", "--msgs", &n, "--size", "64", "--clients", "3"],
    );
    let json = out.json();
    assert_eq!(json["mode"], "pub", "{json}");
    assert_eq!(json["subject"], "bench.pub", "{json}");
    assert_eq!((u64_of(&json, "msgs"), u64_of(&json, "size"), u64_of(&json, "clients")), (MSGS, 64, 3), "{json}");
    // 2000 does not divide by 3: the first client takes the extra one.
    assert_group(&json["pub"], 3, &[667, 667, 666], 64);
    assert!(json["pub"].get("dropped").is_none(), "publishers drop nothing: {json}");
    assert!(out.stderr.starts_with("Starting pub benchmark [subject=bench.pub, msgs=2,000"), "{out:?}");
}

#[test]
fn bench_pub_text_summary_reads_like_nats_bench() {
    let server = NatsServer::start();
    let out = micro_ok(&server.url(), &["bench", "pub", "bench.text", "--msgs", "2000", "--clients", "2"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{out:?}");
    assert!(lines[0].starts_with("Pub stats: ") && lines[0].contains(" msgs/sec ~ "), "{out:?}");
    assert!(lines[0].ends_with(')') && lines[0].contains("(2,000 msgs in "), "{out:?}");
    assert!(lines[1].starts_with(" [1] ") && lines[1].contains("(1,000 msgs in "), "{out:?}");
    assert!(lines[2].starts_with(" [2] "), "{out:?}");
    assert!(
        lines[3].starts_with(" min ") && lines[3].contains(" | avg ") && lines[3].contains(" | stddev "),
        "{out:?}"
    );
    // stderr is a pipe here: no progress bar, only the line that says what runs.
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}

#[test]
fn bench_pub_refuses_a_size_over_max_payload() {
    let server = NatsServer::start();
    let out = micro(&server.url(), &["bench", "pub", "bench.big", "--msgs", "10", "--size", "2000000"]);
    assert_clean_failure(&out, &["max_payload"]);
}

// ---------------------------------------------------------------------------------------------------------------
// bench sub (and pub in another process)
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn bench_sub_counts_what_bench_pub_sends() {
    let server = NatsServer::start();
    let url = server.url();
    let n = MSGS.to_string();
    let sub = BENCH.spawn(&url, &["--json", "bench", "sub", "bench.sub", "--msgs", &n, "--clients", "2"]);
    let line = sub.wait_for_stderr("Starting sub benchmark");
    assert!(line.contains("subscribed"), "{line}");

    micro_ok(&url, &["--json", "bench", "pub", "bench.sub", "--msgs", &n, "--size", "32", "--clients", "2"]);
    let out = sub.finish();
    assert!(out.status.success(), "{out:?}");
    let json = out.json();
    assert_eq!(json["mode"], "sub", "{json}");
    assert_eq!((u64_of(&json, "msgs"), u64_of(&json, "clients")), (MSGS, 2), "{json}");
    // Each subscriber receives every message.
    assert_group(&json["sub"], 2, &[MSGS, MSGS], 32);
    assert_eq!(u64_of(&json["sub"], "dropped"), 0, "{json}");
    for client in json["sub"]["per_client"].as_array().unwrap() {
        assert_eq!(u64_of(client, "dropped"), 0, "{json}");
    }
}

#[test]
fn bench_sub_that_gets_too_few_reports_them_and_fails() {
    let server = NatsServer::start();
    let url = server.url();
    let sub = BENCH.spawn(&url, &["--json", "--timeout", "1s", "bench", "sub", "bench.short", "--msgs", "2000"]);
    sub.wait_for_stderr("Starting sub benchmark");

    micro_ok(&url, &["bench", "pub", "bench.short", "--msgs", "500"]);
    let out = sub.finish();
    assert!(!out.status.success(), "stopping short is a failure: {out:?}");
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    assert!(out.stderr.contains("micro: received 500 of 2,000 messages"), "{out:?}");
    // The figures of what did arrive come first.
    let json = out.json();
    assert_eq!(u64_of(&json["sub"], "msgs"), 500, "{json}");
}

#[test]
fn bench_pubsub_in_one_process() {
    let server = NatsServer::start();
    let n = MSGS.to_string();
    let out = micro_ok(
        &server.url(),
        &["--json", "bench", "pubsub", "bench.both", "--msgs", &n, "--clients", "2", "--subs", "2"],
    );
    let json = out.json();
    assert_eq!(json["mode"], "pubsub", "{json}");
    assert_group(&json["pub"], 2, &[MSGS / 2, MSGS / 2], 128);
    assert_group(&json["sub"], 2, &[MSGS, MSGS], 128);
    assert_eq!(u64_of(&json["total"], "msgs"), 3 * MSGS, "{json}");
    assert!(f64_of(&json["total"], "msgs_per_sec") > 0.0, "{json}");
}

// ---------------------------------------------------------------------------------------------------------------
// bench req
// ---------------------------------------------------------------------------------------------------------------

fn assert_latency(json: &Value) {
    let l = &json["latency_us"];
    let [min, p50, p90, p99, max] = ["min", "p50", "p90", "p99", "max"].map(|k| f64_of(l, k));
    assert!(0.0 < min && min <= p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{json}");
    let mean = f64_of(l, "mean");
    assert!(min <= mean && mean <= max, "{json}");
}

#[test]
fn bench_req_json_with_its_own_replier() {
    let server = NatsServer::start();
    let n = MSGS.to_string();
    let out = micro_ok(
        &server.url(),
        &["--json", "bench", "req", "bench.req", "--msgs", &n, "--clients", "2", "--size", "16"],
    );
    let json = out.json();
    assert_eq!(json["mode"], "req", "{json}");
    assert_group(&json["req"], 2, &[MSGS / 2, MSGS / 2], 16);
    assert_latency(&json);
}

#[test]
fn bench_req_text_summary_has_percentiles() {
    let server = NatsServer::start();
    let out = micro_ok(&server.url(), &["bench", "req", "bench.req.text", "--msgs", "500"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(lines[0].starts_with("Req stats: ") && lines[0].contains("(500 msgs in "), "{out:?}");
    assert!(lines[1].starts_with("Latency (µs): min ") && lines[1].contains(" | p99 "), "{out:?}");
}

#[test]
fn bench_req_against_micro_reply() {
    let server = NatsServer::start();
    let url = server.url();
    let _reply = BENCH.spawn(&url, &["reply", "bench.echo"]);
    // Until `micro reply` has subscribed there are no responders: the run fails at once, with one line.
    let deadline = Instant::now() + WAIT;
    let out = loop {
        let out = micro(&url, &["--json", "bench", "req", "bench.echo", "--no-replier", "--msgs", "500"]);
        if out.status.success() {
            break out;
        }
        assert_clean_failure(&out, &["no responders on bench.echo"]);
        assert!(Instant::now() < deadline, "micro reply never answered");
        thread::sleep(Duration::from_millis(50));
    };
    let json = out.json();
    assert_group(&json["req"], 1, &[500], 128);
    assert_latency(&json);
}

#[test]
fn bench_req_without_responders_fails_with_one_line() {
    let server = NatsServer::start();
    let out = micro(&server.url(), &["bench", "req", "nobody.home", "--no-replier", "--msgs", "10"]);
    assert_clean_failure(&out, &["no responders on nobody.home"]);
    assert!(out.stderr.contains("micro reply nobody.home"), "the hint names the way out: {out:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn bench_without_a_server_fails_with_one_line() {
    let url = format!("nats://127.0.0.1:{}", closed_port());
    for kind in ["pub", "sub", "pubsub", "req"] {
        let out = micro(&url, &["--timeout", "2s", "bench", kind, "bench.none", "--msgs", "10"]);
        assert_clean_failure(&out, &["connect"]);
    }
}

#[test]
fn bench_needs_a_message_per_client() {
    let server = NatsServer::start();
    let out = micro(&server.url(), &["bench", "pub", "bench.few", "--msgs", "2", "--clients", "3"]);
    assert_clean_failure(&out, &["--clients"]);
    let out = micro(&server.url(), &["bench", "pub", "bench.none", "--msgs", "0"]);
    assert!(!out.status.success() && out.stdout.is_empty(), "{out:?}");
}
