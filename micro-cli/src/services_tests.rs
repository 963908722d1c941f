//! The service commands' layouts on fixed replies: what `ls`, `stats`, `info` and `ping` print.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use micro::wire::{EndpointInfo, EndpointStats, InfoResponse, StatsResponse};

use super::*;

fn info(name: &str, id: &str, version: &str, description: &str) -> InfoResponse {
    InfoResponse {
        name: name.into(),
        id: id.into(),
        version: version.into(),
        description: description.into(),
        ..InfoResponse::default()
    }
}

fn endpoint(name: &str, queue: &str, requests: u64, errors: u64, time_ns: u64) -> EndpointStats {
    EndpointStats {
        name: name.into(),
        subject: format!("seed.{name}"),
        queue_group: queue.into(),
        num_requests: requests,
        num_errors: errors,
        last_error: if errors > 0 { "500:unlucky".into() } else { String::new() },
        processing_time: time_ns,
        average_processing_time: time_ns.checked_div(requests).unwrap_or(0),
        data: None,
    }
}

/// The seed scenario: two endpoints, one in queue group "q" and one with queueing disabled, 100 requests of
/// which 10 failed; and a second instance that has seen nothing yet.
fn seed_stats() -> Vec<StatsResponse> {
    let one = StatsResponse {
        name: "seed".into(),
        id: "AAAA".into(),
        started: "2023-11-14T22:13:20Z".into(),
        endpoints: vec![endpoint("echo", "q", 50, 0, 500_000), endpoint("flaky", "", 50, 10, 2_000_000_000)],
        ..StatsResponse::default()
    };
    let two = StatsResponse {
        id: "BBBB".into(),
        endpoints: vec![endpoint("echo", "q", 0, 0, 0), endpoint("flaky", "", 0, 0, 0)],
        ..one.clone()
    };
    vec![one, two]
}

#[test]
fn stats_shows_each_id_once_and_totals_in_the_footer() {
    let text = stats_table("seed", &seed_stats());
    let expected = "\
╭────────────────────────────────────────────────────────────────────────────────────╮
│                              seed Service Statistics                               │
├──────┬──────────┬──────────┬─────────────┬────────┬─────────────────┬──────────────┤
│ ID   │ Endpoint │ Requests │ Queue Group │ Errors │ Processing Time │ Average Time │
├──────┼──────────┼──────────┼─────────────┼────────┼─────────────────┼──────────────┤
│ AAAA │ echo     │ 50       │ q           │ 0      │ 500µs           │ 10µs         │
│      │ flaky    │ 50       │             │ 10     │ 2.00s           │ 40ms         │
│ BBBB │ echo     │ 0        │ q           │ 0      │ 0s              │ 0s           │
│      │ flaky    │ 0        │             │ 0      │ 0s              │ 0s           │
├──────┼──────────┼──────────┼─────────────┼────────┼─────────────────┼──────────────┤
│      │          │ 100      │             │ 10     │ 2.00s           │ 20ms         │
╰──────┴──────────┴──────────┴─────────────┴────────┴─────────────────┴──────────────╯";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn stats_counts_have_thousands_separators() {
    let mut all = seed_stats();
    all[0].endpoints[0].num_requests = 1_234_567;
    let text = stats_table("seed", &all);
    assert!(text.contains("│ 1,234,567 "), "{text}");
    assert!(text.contains("│ 1,234,617 "), "the footer's total: {text}");
}

#[test]
fn ls_titles_and_blanks_what_repeats_within_a_service() {
    let infos = [
        info("calc", "C1", "1.0.0", "arithmetic"),
        info("calc", "C2", "1.0.0", "arithmetic"),
        info("calc", "C3", "1.1.0", "arithmetic"),
        info("echo", "E1", "1.0.0", "arithmetic"),
    ];
    let text = ls_table(None, &infos);
    let expected = "\
╭───────────────────────────────────╮
│           All Services            │
├──────┬─────────┬────┬─────────────┤
│ Name │ Version │ ID │ Description │
├──────┼─────────┼────┼─────────────┤
│ calc │ 1.0.0   │ C1 │ arithmetic  │
│      │         │ C2 │             │
│      │ 1.1.0   │ C3 │             │
│ echo │ 1.0.0   │ E1 │ arithmetic  │
╰──────┴─────────┴────┴─────────────╯";
    assert_eq!(text, expected, "\n{text}");
    let one = ls_table(Some("calc"), &infos[..1]);
    assert!(one.lines().nth(1).unwrap().contains("calc Service Instances"), "{one}");
}

#[test]
fn ping_pads_name_and_id_then_the_round_trip() {
    let line = ping_line("calc", "C1", Duration::from_micros(1_234));
    assert_eq!(line, format!("{:<50} rtt=1ms", "calc C1"));
    assert_eq!(ping_line("calc", "C1", Duration::from_nanos(10_400)).split("rtt=").nth(1), Some("10µs"));
}

#[test]
fn info_lists_endpoints_then_their_statistics() {
    let mut i = info("seed", "AAAA", "1.0.0", "the seed scenario");
    i.metadata = BTreeMap::from([("team".to_owned(), "core".to_owned())]);
    i.endpoints = vec![
        EndpointInfo {
            name: "echo".into(),
            subject: "seed.echo".into(),
            queue_group: "q".into(),
            ..EndpointInfo::default()
        },
        EndpointInfo { name: "flaky".into(), subject: "seed.flaky".into(), ..EndpointInfo::default() },
    ];
    let mut stats = seed_stats().remove(0);
    stats.endpoints[0].data = Some(serde_json::json!({"total_payload": 6}));
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
    let text = info_report(&i, Some(&stats), now);

    let head = "\
Service Information

          Service: seed (AAAA)
      Description: the seed scenario
          Version: 1.0.0
         Metadata: team: core

Endpoints:

               Name: echo
            Subject: seed.echo
        Queue Group: q

               Name: flaky
            Subject: seed.flaky

Statistics for 2 Endpoint(s):

  echo Endpoint Statistics:

           Requests: 50 in group \"q\"
    Processing Time: 500µs (average 10µs)
";
    assert!(text.starts_with(head), "\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    let started: Vec<&&str> = lines.iter().filter(|l| l.trim_start().starts_with("Started: ")).collect();
    assert_eq!(started.len(), 2, "one per endpoint: {text}");
    // The local time depends on the machine's zone; its form and the age do not.
    let value = started[0].trim_start().trim_start_matches("Started: ");
    assert_eq!(value.len(), "2023-11-14 22:13:20 (1m40s ago)".len(), "{value}");
    assert!(value.ends_with(":20 (1m40s ago)"), "{value}");
    let tail = "\
             Errors: 0

  Endpoint Specific Statistics:

    {
        \"total_payload\": 6
    }

  flaky Endpoint Statistics:

           Requests: 50 in group \"\"
    Processing Time: 2.00s (average 40ms)
";
    assert!(text.contains(tail), "\n{text}");
    assert!(text.ends_with("             Errors: 10\n         Last Error: 500:unlucky\n"), "\n{text}");
}
