//! `micro ls`, `info`, `stats` and `ping` in natscli's layouts, against services run in this process with the
//! `micro` library, so what they saw is known: the seed scenario (two endpoints, one in queue group "q" and one
//! without a queue group, 100 requests of which 10 failed), and two instances of one service.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{is_human_duration, micro_ok, micro_quiet, BoxedTable, WAIT};
use micro::{EndpointConfig, QueueGroup, Service, ServiceConfig};
use nats_blocking::Client;
use nats_server_harness::NatsServer;
use serde_json::Value;

/// The seed scenario's service: `seed.echo` (queue group `q`) echoes; `seed.flaky` (no queue group) fails
/// every fourth request with a 500.
fn seed_service(url: &str) -> Service<Client> {
    let client = nats_blocking::connect(url).expect("the service connects");
    let config = ServiceConfig::new("seed", "1.0.0").description("the seed scenario").metadata("team", "core");
    let service = Service::start(client, config).expect("the service starts");
    let group = service.root().group("seed", QueueGroup::Inherit).unwrap();
    service
        .endpoint(&group, EndpointConfig::new("echo"), |mut req| {
            let body = req.payload_bytes();
            let _ = req.respond(body);
        })
        .unwrap();
    let seen = AtomicU64::new(0);
    let flaky = EndpointConfig::new("flaky").queue_group(QueueGroup::Disabled);
    service
        .endpoint(&group, flaky, move |mut req| {
            let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
            let _ = if n % 4 == 0 { req.respond_error(500, "unlucky") } else { req.respond("ok") };
        })
        .unwrap();
    service
}

/// Waits until STATS (as JSON) shows `requests` and `errors` in all, so the tables are read once settled.
fn wait_for_totals(url: &str, name: &str, requests: u64, errors: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = micro_quiet(url, &["--timeout", "500ms", "--json", "stats", name]);
        let all: Vec<Value> = serde_json::from_str(out.stdout.trim()).expect("--json stats is a JSON array");
        let endpoints = || all.iter().flat_map(|s| s["endpoints"].as_array().unwrap().iter());
        let total = |key: &str| endpoints().map(|e| e[key].as_u64().unwrap()).sum::<u64>();
        if (total("num_requests"), total("num_errors")) == (requests, errors) {
            return;
        }
        assert!(Instant::now() < deadline, "STATS never showed {requests}/{errors}: {out:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn seed_scenario_in_ls_stats_and_info() {
    let server = NatsServer::start();
    let url = server.url();
    let service = seed_service(&url);
    let id = service.id();
    // 60 requests to echo and 40 to flaky (every fourth of which fails): 100 requests, 10 errors.
    let echo = micro_quiet(&url, &["req", "seed.echo", "foobar", "--count", "60"]);
    assert_eq!(echo.stdout.lines().filter(|l| *l == "foobar").count(), 60, "{echo:?}");
    let flaky = micro_quiet(&url, &["req", "seed.flaky", "foobar", "--count", "40"]);
    let failures = flaky.stdout.lines().filter(|l| *l == "Nats-Service-Error: unlucky").count();
    assert_eq!(failures, 10, "service errors are replies, printed with their headers: {flaky:?}");
    wait_for_totals(&url, "seed", 100, 10);

    let stats = micro_quiet(&url, &["--timeout", "500ms", "stats", "seed"]);
    let table = BoxedTable::parse(&stats.stdout);
    assert_eq!(table.title, "seed Service Statistics", "{stats:?}");
    let columns = ["ID", "Endpoint", "Requests", "Queue Group", "Errors", "Processing Time", "Average Time"];
    assert_eq!(table.header, columns, "{stats:?}");
    assert_eq!(table.body.len(), 2, "{stats:?}");
    assert_eq!(table.body[0][..5], [id.as_str(), "echo", "60", "q", "0"], "{stats:?}");
    assert_eq!(table.body[1][..5], ["", "flaky", "40", "", "10"], "the id once, no queue group: {stats:?}");
    let footer = table.footer.as_ref().expect("a footer");
    assert_eq!(footer[..5], ["", "", "100", "", "10"], "the totals: {stats:?}");
    for row in table.body.iter().chain([footer]) {
        assert!(is_human_duration(&row[5]) && is_human_duration(&row[6]), "{row:?} in {stats:?}");
    }

    let ls = micro_quiet(&url, &["--timeout", "500ms", "ls"]);
    let table = BoxedTable::parse(&ls.stdout);
    assert_eq!(table.title, "All Services", "{ls:?}");
    assert_eq!(table.header, ["Name", "Version", "ID", "Description"], "{ls:?}");
    assert_eq!(table.body, [["seed", "1.0.0", id.as_str(), "the seed scenario"]], "{ls:?}");
    assert!(table.footer.is_none(), "{ls:?}");
    let ls = micro_quiet(&url, &["--timeout", "500ms", "ls", "seed"]);
    assert_eq!(BoxedTable::parse(&ls.stdout).title, "seed Service Instances", "{ls:?}");

    let info = micro_quiet(&url, &["--timeout", "1s", "info", "seed"]);
    let text = &info.stdout;
    let head = format!(
        "Service Information\n\n          Service: seed ({id})\n      Description: the seed scenario\n          \
         Version: 1.0.0\n         Metadata: team: core\n\nEndpoints:\n\n               Name: echo\n            \
         Subject: seed.echo\n        Queue Group: q\n\n               Name: flaky\n            Subject: seed.flaky\n\n\
         Statistics for 2 Endpoint(s):\n\n  echo Endpoint Statistics:\n\n           Requests: 60 in group \"q\"\n"
    );
    assert!(text.starts_with(&head), "{text}");
    assert!(text.contains("\n  flaky Endpoint Statistics:\n\n           Requests: 40 in group \"\"\n"), "{text}");
    let rows = |label: &str| -> Vec<&str> {
        text.lines().filter_map(|l| l.trim_start().strip_prefix(label).and_then(|r| r.strip_prefix(": "))).collect()
    };
    assert_eq!(rows("Errors"), ["0", "10"], "{text}");
    assert_eq!(rows("Last Error"), ["500:unlucky"], "only where there was one: {text}");
    for time in rows("Processing Time") {
        let (total, average) = time.split_once(" (average ").expect("total (average X)");
        assert!(is_human_duration(total) && is_human_duration(average.trim_end_matches(')')), "{time}");
    }
    for started in rows("Started") {
        let (at, age) = started.split_once(" (").expect("a time, then its age");
        assert_eq!(at.len(), "2006-01-02 15:04:05".len(), "{started}");
        let age = age.strip_suffix(" ago)").expect("(X ago)");
        assert!(is_human_duration(age), "{started}");
    }
    service.stop(Duration::from_secs(5));
}

#[test]
fn two_instances_each_id_once_and_ping_lines() {
    let server = NatsServer::start();
    let url = server.url();
    let (a, b) = (seed_service(&url), seed_service(&url));
    let mut ids = [a.id(), b.id()];
    ids.sort();

    let stats = micro_quiet(&url, &["--timeout", "500ms", "stats", "seed"]);
    let table = BoxedTable::parse(&stats.stdout);
    let id_column: Vec<&str> = table.body.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(id_column, [ids[0].as_str(), "", ids[1].as_str(), ""], "sorted, each id once: {stats:?}");
    let endpoints: Vec<&str> = table.body.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(endpoints, ["echo", "flaky", "echo", "flaky"], "{stats:?}");
    assert_eq!(table.footer.as_ref().unwrap()[..5], ["", "", "0", "", "0"], "{stats:?}");
    assert!(table.body.iter().all(|r| r[5] == "0s" && r[6] == "0s"), "nothing processed yet: {stats:?}");

    let ls = micro_quiet(&url, &["--timeout", "500ms", "ls"]);
    let table = BoxedTable::parse(&ls.stdout);
    assert_eq!(table.body[0], ["seed", "1.0.0", ids[0].as_str(), "the seed scenario"], "{ls:?}");
    assert_eq!(table.body[1], ["", "", ids[1].as_str(), ""], "repeats left blank: {ls:?}");

    // natscli's name for these commands: the same tables.
    let alias = micro_quiet(&url, &["--timeout", "500ms", "service", "ls"]);
    assert_eq!(BoxedTable::parse(&alias.stdout).body, table.body, "{alias:?}");
    let alias = micro_quiet(&url, &["--timeout", "500ms", "service", "stats", "seed"]);
    assert_eq!(BoxedTable::parse(&alias.stdout).body, BoxedTable::parse(&stats.stdout).body, "{alias:?}");
    let alias = micro_quiet(&url, &["--timeout", "1s", "service", "info", "seed", &ids[1]]);
    assert!(alias.stdout.contains(&format!("Service: seed ({})", ids[1])), "{alias:?}");

    let ping = micro_ok(&url, &["--timeout", "500ms", "ping", "seed"]);
    let mut seen: Vec<String> = ping
        .stdout
        .lines()
        .map(|line| {
            let (who, rtt) = line.split_once("rtt=").unwrap_or_else(|| panic!("{line:?}"));
            assert_eq!(who.chars().count(), 51, "name and id in a column 50 wide: {line:?}");
            assert!(is_human_duration(rtt), "{line:?}");
            who.trim_end().to_owned()
        })
        .collect();
    seen.sort();
    assert_eq!(seen, [format!("seed {}", ids[0]), format!("seed {}", ids[1])], "{ping:?}");
    a.stop(Duration::from_secs(5));
    b.stop(Duration::from_secs(5));
}
