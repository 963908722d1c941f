//! The JetStream and Key/Value commands of `micro` (`stream`, `js pub`, `consumer`, `kv`) as a user runs them:
//! a subprocess with `--server <url>` against a real `nats-server` with JetStream, judged by stdout (human and
//! `--json`), stderr and exit code. Every process is bounded in time and killed if it overruns.

mod common;

use std::time::Duration;

use common::{assert_clean_failure, assert_usage_error, micro, micro_quiet, Background, Output};
use nats_server_harness::NatsServer;
use serde_json::Value;

fn jetstream_server() -> NatsServer {
    NatsServer::builder().jetstream(true).start().expect("a nats-server with JetStream starts")
}

/// Runs `micro --json ...` and parses its stdout.
fn micro_json(url: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = micro_quiet(url, &all);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("micro {args:?} printed no JSON ({e}): {out:?}"))
}

fn lines(out: &Output) -> Vec<&str> {
    out.stdout.lines().collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Streams and publishing
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn stream_add_pub_info_ls_get_purge_rm() {
    let server = jetstream_server();
    let url = server.url();

    assert_eq!(micro_quiet(&url, &["stream", "ls"]).stdout.trim(), "No streams defined");
    assert_eq!(micro_json(&url, &["stream", "ls"]), serde_json::json!([]));

    let out = micro_quiet(
        &url,
        &[
            "stream",
            "add",
            "ORDERS",
            "--subjects",
            "orders.>,audit.*",
            "--storage",
            "memory",
            "--retention",
            "limits",
            "--max-msgs",
            "100",
            "--max-age",
            "1d",
            "--dupe-window",
            "90s",
        ],
    );
    assert!(out.stdout.starts_with("Stream ORDERS created"), "{out:?}");
    for expected in ["Subjects: orders.>, audit.*", "Storage: memory", "Max Msgs: 100", "Max Age: 1d", "Window: 1m30s"]
    {
        assert!(out.stdout.contains(expected), "{expected:?} in {out:?}");
    }

    let info = micro_json(&url, &["stream", "info", "ORDERS"]);
    assert_eq!(info["type"], "io.nats.jetstream.api.v1.stream_info_response", "the server's reply: {info}");
    let config = &info["config"];
    assert_eq!(config["subjects"], serde_json::json!(["orders.>", "audit.*"]));
    assert_eq!((config["storage"].as_str(), config["retention"].as_str()), (Some("memory"), Some("limits")));
    assert_eq!(config["max_msgs"], 100);
    assert_eq!(config["max_age"].as_u64(), Some(86_400 * 1_000_000_000));
    assert_eq!(config["duplicate_window"].as_u64(), Some(90 * 1_000_000_000));

    // Publishing: acks name the stream and sequence; a repeated message id is a duplicate.
    let out = micro_quiet(&url, &["js", "pub", "orders.new", "one", "--msg-id", "m1"]);
    assert_eq!(out.stdout.trim(), "Published to orders.new: stream ORDERS seq 1");
    let out = micro_quiet(&url, &["js", "pub", "orders.new", "one again", "--msg-id", "m1"]);
    assert!(out.stdout.contains("stream ORDERS seq 1") && out.stdout.contains("duplicate"), "{out:?}");
    let dup = micro_json(&url, &["js", "pub", "orders.new", "one again", "--msg-id", "m1"]);
    assert_eq!(
        (dup["stream"].as_str(), dup["seq"].as_u64(), dup["duplicate"].as_bool()),
        (Some("ORDERS"), Some(1), Some(true))
    );
    let out = micro_quiet(&url, &["js", "pub", "audit.x", "two", "-H", "X-Trace:abc"]);
    assert!(out.stdout.contains("stream ORDERS seq 2") && !out.stdout.contains("duplicate"), "{out:?}");
    let ack = micro_json(&url, &["js", "pub", "orders.new", "three"]);
    assert_eq!((ack["stream"].as_str(), ack["seq"].as_u64()), (Some("ORDERS"), Some(3)));
    assert!(ack.get("duplicate").is_none(), "{ack}");

    let out = micro_quiet(&url, &["stream", "info", "ORDERS"]);
    assert!(out.stdout.contains("Messages: 3") && out.stdout.contains("Sequences: 1 to 3"), "{out:?}");

    let out = micro_quiet(&url, &["stream", "ls"]);
    let row = lines(&out).into_iter().find(|l| l.starts_with("ORDERS")).unwrap_or_else(|| panic!("{out:?}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..5], ["ORDERS", "orders.>,", "audit.*", "memory", "3"], "{row:?}");
    let listed = micro_json(&url, &["stream", "ls"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(
        (listed[0]["config"]["name"].as_str(), listed[0]["state"]["messages"].as_u64()),
        (Some("ORDERS"), Some(3))
    );

    // One stored message, with its headers.
    let out = micro_quiet(&url, &["stream", "get", "ORDERS", "2"]);
    assert_eq!(lines(&out)[0].split(',').next(), Some("[audit.x] stream ORDERS seq 2"), "{out:?}");
    assert!(lines(&out).contains(&"X-Trace: abc") && lines(&out).last() == Some(&"two"), "{out:?}");
    let got = micro_json(&url, &["stream", "get", "ORDERS", "2"]);
    assert_eq!((got["message"]["subject"].as_str(), got["message"]["seq"].as_u64()), (Some("audit.x"), Some(2)));
    assert_eq!(got["message"]["data"], "dHdv", "base64 of \"two\", as the server sends it");
    assert_clean_failure(&micro(&url, &["stream", "get", "ORDERS", "99"]), &["99", "orders", "not found"]);

    // Purges: by subject keeping the newest, then everything.
    let out = micro_quiet(&url, &["stream", "purge", "ORDERS", "--subject", "orders.new", "--keep", "1"]);
    assert_eq!(out.stdout.trim(), "Purged 1 message(s) on orders.new from stream ORDERS, kept the newest 1");
    assert_eq!(micro_json(&url, &["stream", "info", "ORDERS"])["state"]["messages"], 2);
    let purged = micro_json(&url, &["stream", "purge", "ORDERS"]);
    assert_eq!((purged["success"].as_bool(), purged["purged"].as_u64()), (Some(true), Some(2)), "{purged}");
    assert!(micro_quiet(&url, &["stream", "info", "ORDERS"]).stdout.contains("Messages: 0"));

    let out = micro_quiet(&url, &["stream", "rm", "ORDERS"]);
    assert_eq!(out.stdout.trim(), "Deleted stream ORDERS");
    assert_clean_failure(&micro(&url, &["stream", "info", "ORDERS"]), &["stream orders not found"]);

    // Other retention, JSON reply of a create.
    let created = micro_json(&url, &["stream", "add", "WQ", "--subjects", "wq.*", "--retention", "workqueue"]);
    assert_eq!(created["type"], "io.nats.jetstream.api.v1.stream_create_response", "{created}");
    assert_eq!(
        (created["config"]["retention"].as_str(), created["config"]["storage"].as_str()),
        (Some("workqueue"), Some("file"))
    );
    assert_eq!(micro_json(&url, &["stream", "rm", "WQ"])["success"], true);
}

#[test]
fn stream_and_publish_errors() {
    let server = jetstream_server();
    let url = server.url();
    for args in [
        &["stream", "info", "MISSING"][..],
        &["stream", "rm", "MISSING"],
        &["stream", "purge", "MISSING"],
        &["stream", "get", "MISSING", "1"],
        &["--json", "stream", "info", "MISSING"],
    ] {
        let out = micro(&url, args);
        assert_clean_failure(&out, &["stream missing not found"]);
        assert!(out.stdout.is_empty(), "{out:?}");
    }

    micro_quiet(&url, &["stream", "add", "ONE", "--subjects", "one.>"]);
    let out = micro(&url, &["stream", "add", "TWO", "--subjects", "one.a"]);
    assert_clean_failure(&out, &["stream two", "overlap"]);
    let out = micro(&url, &["stream", "add", "ONE", "--subjects", "other.>"]);
    assert_clean_failure(&out, &["stream one already exists"]);

    let out = micro(&url, &["js", "pub", "nowhere.at.all", "x"]);
    assert_clean_failure(&out, &["no stream", "nowhere.at.all"]);

    // Wrong flags and values are usage errors.
    assert_usage_error(&micro(&url, &["stream", "add", "X", "--storage", "disk"]), "invalid value 'disk'");
    assert_usage_error(&micro(&url, &["stream", "add", "X", "--retention", "forever"]), "invalid value");
    assert_usage_error(&micro(&url, &["stream", "add", "X", "--max-age", "5x"]), "not a duration");
    assert_usage_error(&micro(&url, &["stream", "add", "X", "--colour", "red"]), "unexpected argument");
    assert_usage_error(&micro(&url, &["stream", "get", "ONE", "first"]), "invalid value");
    assert_usage_error(&micro(&url, &["js", "pub"]), "SUBJECT");

    // Durations up to days; negative limits mean unlimited.
    let out =
        micro_quiet(&url, &["stream", "add", "D", "--max-age", "2h", "--dupe-window", "500ms", "--max-msgs", "-1"]);
    assert!(out.stdout.contains("Max Age: 2h") && out.stdout.contains("Dupe Window: 500ms"), "{out:?}");
    assert!(out.stdout.contains("Max Msgs: unlimited"), "{out:?}");

    // A server without JetStream.
    let plain = NatsServer::start();
    let out = micro(&plain.url(), &["stream", "ls"]);
    assert_clean_failure(&out, &["jetstream"]);
}

// ---------------------------------------------------------------------------------------------------------------
// Consumers
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn consumers_add_ls_info_next_acks_rm() {
    let server = jetstream_server();
    let url = server.url();
    micro_quiet(&url, &["stream", "add", "ORDERS", "--subjects", "orders.>"]);
    for (subject, data) in
        [("orders.a", "first"), ("orders.b", "second"), ("orders.a", "third"), ("orders.c", "fourth")]
    {
        micro_quiet(&url, &["js", "pub", subject, data]);
    }

    assert_eq!(micro_quiet(&url, &["consumer", "ls", "ORDERS"]).stdout.trim(), "No consumers on stream ORDERS");

    let out = micro_quiet(&url, &["consumer", "add", "ORDERS", "PROC", "--filter", "orders.>"]);
    assert!(out.stdout.starts_with("Consumer PROC created on stream ORDERS"), "{out:?}");
    for expected in ["Kind: pull, durable", "Filter: orders.>", "Deliver: all", "Ack: explicit", "Pending: 4"] {
        assert!(out.stdout.contains(expected), "{expected:?} in {out:?}");
    }
    let created = micro_json(&url, &["consumer", "add", "ORDERS", "NEWONLY", "--deliver", "new"]);
    assert_eq!(created["type"], "io.nats.jetstream.api.v1.consumer_create_response", "{created}");
    let config = &created["config"];
    assert_eq!((config["deliver_policy"].as_str(), config["ack_policy"].as_str()), (Some("new"), Some("explicit")));
    assert_eq!((config["durable_name"].as_str(), created["num_pending"].as_u64()), (Some("NEWONLY"), Some(0)));
    let last = micro_json(&url, &["consumer", "add", "ORDERS", "LAST", "--filter", "orders.b", "--deliver", "last"]);
    assert_eq!((last["config"]["filter_subject"].as_str(), last["num_pending"].as_u64()), (Some("orders.b"), Some(1)));

    let out = micro_quiet(&url, &["consumer", "ls", "ORDERS"]);
    let names: Vec<&str> = lines(&out).iter().skip(2).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(names, ["LAST", "NEWONLY", "PROC"], "{out:?}");
    let listed = micro_json(&url, &["consumer", "ls", "ORDERS"]);
    let names: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["LAST", "NEWONLY", "PROC"], "{listed}");

    // Three messages printed and acked: nothing left pending an ack.
    let out = micro_quiet(&url, &["consumer", "next", "ORDERS", "PROC", "--count", "3"]);
    let got = lines(&out);
    assert_eq!(got.len(), 7, "three messages of two lines and the summary: {out:?}");
    assert!(got[0].starts_with("[orders.a] stream seq 1, consumer seq 1, delivered 1x, 3 pending"), "{out:?}");
    assert_eq!((got[1], got[3], got[5]), ("first", "second", "third"), "{out:?}");
    assert!(got[4].starts_with("[orders.a] stream seq 3"), "{out:?}");
    assert_eq!(got[6], "Acknowledged 3 message(s)");
    let info = micro_json(&url, &["consumer", "info", "ORDERS", "PROC"]);
    assert_eq!(info["type"], "io.nats.jetstream.api.v1.consumer_info_response", "{info}");
    assert_eq!(info["num_ack_pending"], 0, "{info}");
    assert_eq!(
        (info["ack_floor"]["stream_seq"].as_u64(), info["delivered"]["stream_seq"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(info["num_pending"], 1, "{info}");
    let out = micro_quiet(&url, &["consumer", "info", "ORDERS", "PROC"]);
    for expected in ["Ack Pending: 0", "Ack Floor: stream seq 3, consumer seq 3", "Pending: 1"] {
        assert!(out.stdout.contains(expected), "{expected:?} in {out:?}");
    }

    let next = micro_json(&url, &["consumer", "next", "ORDERS", "PROC", "--count", "5", "--wait", "300ms"]);
    assert_eq!(next.as_array().map(Vec::len), Some(1), "{next}");
    let m = &next[0];
    assert_eq!(
        (m["subject"].as_str(), m["data"].as_str(), m["stream_seq"].as_u64()),
        (Some("orders.c"), Some("fourth"), Some(4))
    );
    assert_eq!(
        (m["stream"].as_str(), m["consumer"].as_str(), m["pending"].as_u64()),
        (Some("ORDERS"), Some("PROC"), Some(0))
    );
    assert_eq!(micro_json(&url, &["consumer", "info", "ORDERS", "PROC"])["num_ack_pending"], 0);

    // Nothing left: a note, exit 0, after the wait.
    let out = micro_quiet(&url, &["consumer", "next", "ORDERS", "PROC", "--wait", "300ms"]);
    assert_eq!(out.stdout.trim(), "No messages available on consumer PROC of stream ORDERS");
    assert!(out.elapsed < Duration::from_secs(5), "{out:?}");
    assert_eq!(micro_json(&url, &["consumer", "next", "ORDERS", "PROC", "--wait", "300ms"]), serde_json::json!([]));

    // The filtered consumer sees only its subject, from the last message on it.
    let out = micro_quiet(&url, &["consumer", "next", "ORDERS", "LAST"]);
    assert!(lines(&out)[0].starts_with("[orders.b] stream seq 2") && lines(&out)[1] == "second", "{out:?}");

    let out = micro_quiet(&url, &["consumer", "rm", "ORDERS", "NEWONLY"]);
    assert_eq!(out.stdout.trim(), "Deleted consumer NEWONLY of stream ORDERS");
    assert_clean_failure(&micro(&url, &["consumer", "info", "ORDERS", "NEWONLY"]), &["consumer newonly not found"]);
    assert_clean_failure(&micro(&url, &["consumer", "rm", "ORDERS", "NEWONLY"]), &["not found"]);
    assert_clean_failure(&micro(&url, &["consumer", "next", "ORDERS", "GHOST"]), &["consumer ghost not found"]);
    assert_clean_failure(&micro(&url, &["consumer", "add", "MISSING", "C"]), &["stream missing not found"]);
    assert_clean_failure(&micro(&url, &["consumer", "ls", "MISSING"]), &["stream missing not found"]);
    assert_eq!(micro_json(&url, &["consumer", "rm", "ORDERS", "LAST"])["success"], true);

    assert_usage_error(&micro(&url, &["consumer", "next", "ORDERS", "PROC", "--count", "0"]), "--count");
    assert_usage_error(&micro(&url, &["consumer", "add", "ORDERS", "X", "--deliver", "first"]), "invalid value");
}

// ---------------------------------------------------------------------------------------------------------------
// Key/Value
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn kv_add_put_get_del_history_ls_info_rm() {
    let server = jetstream_server();
    let url = server.url();
    assert_eq!(micro_quiet(&url, &["kv", "ls"]).stdout.trim(), "No Key/Value buckets");

    let out = micro_quiet(&url, &["kv", "add", "cfg", "--history", "5", "--ttl", "1h"]);
    assert!(out.stdout.starts_with("Bucket cfg created"), "{out:?}");
    assert!(out.stdout.contains("History: 5") && out.stdout.contains("TTL: 1h"), "{out:?}");
    let other = micro_json(&url, &["kv", "add", "other", "--storage", "memory"]);
    assert_eq!(
        (other["config"]["name"].as_str(), other["config"]["storage"].as_str()),
        (Some("KV_other"), Some("memory"))
    );

    assert_eq!(
        micro_quiet(&url, &["kv", "put", "cfg", "color", "blue"]).stdout.trim(),
        "cfg > color = blue (revision 1)"
    );
    let ack = micro_json(&url, &["kv", "put", "cfg", "color", "red"]);
    assert_eq!((ack["stream"].as_str(), ack["seq"].as_u64()), (Some("KV_cfg"), Some(2)), "{ack}");

    let out = micro_quiet(&url, &["kv", "get", "cfg", "color"]);
    assert!(lines(&out)[0].starts_with("cfg > color revision 2 created "), "{out:?}");
    assert_eq!(lines(&out).last(), Some(&"red"), "{out:?}");
    assert_eq!(micro_quiet(&url, &["kv", "get", "cfg", "color", "--raw"]).stdout, "red\n");
    let entry = micro_json(&url, &["kv", "get", "cfg", "color"]);
    assert_eq!((entry["value"].as_str(), entry["revision"].as_u64()), (Some("red"), Some(2)), "{entry}");
    assert_eq!((entry["key"].as_str(), entry["operation"].as_str()), (Some("color"), Some("PUT")), "{entry}");

    let out = micro_quiet(&url, &["kv", "history", "cfg", "color"]);
    let rows: Vec<Vec<&str>> = lines(&out).iter().skip(4).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        rows.iter().map(|r| (r[0], r[1], r[4])).collect::<Vec<_>>(),
        [("1", "PUT", "blue"), ("2", "PUT", "red")],
        "{out:?}"
    );

    assert_eq!(micro_quiet(&url, &["kv", "del", "cfg", "color"]).stdout.trim(), "Deleted cfg > color (revision 3)");
    let out = micro(&url, &["kv", "get", "cfg", "color"]);
    assert_clean_failure(&out, &["color", "not found", "deleted"]);
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_clean_failure(&micro(&url, &["kv", "get", "cfg", "never"]), &["key never not found in bucket cfg"]);
    let history = micro_json(&url, &["kv", "history", "cfg", "color"]);
    let ops: Vec<&str> = history.as_array().unwrap().iter().filter_map(|e| e["operation"].as_str()).collect();
    assert_eq!(ops, ["PUT", "PUT", "DEL"], "{history}");
    assert_clean_failure(&micro(&url, &["kv", "history", "cfg", "never"]), &["not found"]);

    micro_quiet(&url, &["kv", "put", "cfg", "size", "3"]);
    let out = micro_quiet(&url, &["kv", "ls"]);
    let row = lines(&out).into_iter().find(|l| l.starts_with("cfg")).unwrap_or_else(|| panic!("{out:?}"));
    assert_eq!(row.split_whitespace().take(4).collect::<Vec<_>>(), ["cfg", "4", "5", "1h"], "{row:?}");
    assert_eq!(micro_json(&url, &["kv", "ls"]), serde_json::json!(["cfg", "other"]));
    assert_eq!(micro_quiet(&url, &["kv", "ls", "cfg"]).stdout, "size\n", "deleted keys are not listed");
    assert_eq!(micro_json(&url, &["kv", "ls", "cfg"]), serde_json::json!(["size"]));
    assert_eq!(micro_quiet(&url, &["kv", "ls", "other"]).stdout.trim(), "No keys in bucket other");

    let out = micro_quiet(&url, &["kv", "info", "cfg"]);
    assert!(out.stdout.contains("Bucket cfg") && out.stdout.contains("Values: 4"), "{out:?}");
    assert_eq!(micro_json(&url, &["kv", "info", "cfg"])["config"]["max_msgs_per_subject"], 5);

    // Bucket streams stay out of `stream ls` unless asked for.
    assert!(!micro_quiet(&url, &["stream", "ls"]).stdout.contains("KV_cfg"));
    assert!(micro_quiet(&url, &["stream", "ls", "--all"]).stdout.contains("KV_cfg"));

    assert_eq!(micro_quiet(&url, &["kv", "rm", "cfg"]).stdout.trim(), "Deleted bucket cfg");
    assert_eq!(micro_json(&url, &["kv", "rm", "other"])["success"], true);
    for args in [
        &["kv", "get", "cfg", "size"][..],
        &["kv", "put", "cfg", "size", "4"],
        &["kv", "del", "cfg", "size"],
        &["kv", "history", "cfg", "size"],
        &["kv", "info", "cfg"],
        &["kv", "ls", "cfg"],
        &["kv", "rm", "cfg"],
        &["kv", "watch", "cfg", "size"],
    ] {
        assert_clean_failure(&micro(&url, args), &["bucket cfg not found"]);
    }
    assert_eq!(micro_quiet(&url, &["kv", "ls"]).stdout.trim(), "No Key/Value buckets");

    assert_clean_failure(&micro(&url, &["kv", "add", "bad.name"]), &["invalid bucket name"]);
    assert_usage_error(&micro(&url, &["kv", "add", "b", "--history", "65"]), "65");
    assert_usage_error(&micro(&url, &["kv", "put", "b", "k"]), "VALUE");
}

#[test]
fn kv_watch_prints_the_latest_value_then_changes() {
    let server = jetstream_server();
    let url = server.url();
    micro_quiet(&url, &["kv", "add", "w", "--history", "3"]);
    micro_quiet(&url, &["kv", "put", "w", "k", "v1"]);
    micro_quiet(&url, &["kv", "put", "w", "k", "v2"]);
    micro_quiet(&url, &["kv", "put", "w", "other", "x"]);

    let mut watch = Background::spawn(&url, &["kv", "watch", "w", "k", "--count", "3"]);
    let first = watch.line();
    assert!(first.ends_with("] PUT w > k (revision 2): v2"), "the latest value only, first: {first:?}");
    micro_quiet(&url, &["kv", "put", "w", "k", "v3"]);
    micro_quiet(&url, &["kv", "del", "w", "k"]);
    assert!(watch.line().ends_with("] PUT w > k (revision 4): v3"));
    assert!(watch.line().ends_with("] DEL w > k (revision 5)"));
    assert!(watch.wait_exit().success(), "exits after --count entries");

    let out = micro_quiet(&url, &["--json", "kv", "watch", "w", "other", "--count", "1"]);
    let entry: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON entry per line");
    assert_eq!(
        (entry["key"].as_str(), entry["value"].as_str(), entry["revision"].as_u64()),
        (Some("other"), Some("x"), Some(3))
    );

    // The whole bucket: the latest value of every key.
    let out = micro_quiet(&url, &["kv", "watch", "w", "--count", "2"]);
    assert_eq!(out.stdout.lines().filter(|l| l.contains(" w > ")).count(), 2, "{out:?}");
    assert_usage_error(&micro(&url, &["kv", "watch"]), "BUCKET");
}

#[test]
fn consumer_add_makes_a_push_consumer_with_deliver_subject_group_and_heartbeat() {
    let server = jetstream_server();
    let url = server.url();
    micro_quiet(&url, &["stream", "add", "PUSHED", "--subjects", "pushed.>", "--storage", "memory"]);
    let args = ["consumer", "add", "PUSHED", "watcher", "--deliver-subject", "to.watchers", "--deliver-group", "w"];
    let out = micro_quiet(&url, &[&args[..], &["--heartbeat", "2s", "--flow-control"]].concat());
    assert!(out.stdout.contains("Kind: push, durable"), "{out:?}");
    assert!(out.stdout.contains("Deliver To: to.watchers, group w"), "{out:?}");
    assert!(out.stdout.contains("Heartbeat: 2s, flow control"), "{out:?}");
    let info = micro_json(&url, &["consumer", "info", "PUSHED", "watcher"]);
    assert_eq!(info["config"]["deliver_subject"], "to.watchers");
    assert_eq!(info["config"]["deliver_group"], "w");
    assert_eq!(info["config"]["flow_control"], true);
    assert_eq!(info["config"]["idle_heartbeat"], 2_000_000_000u64);
    // A group or a heartbeat makes sense only for a push consumer.
    assert_usage_error(&micro(&url, &["consumer", "add", "PUSHED", "x", "--deliver-group", "w"]), "--deliver-subject");
}

#[test]
fn kv_watch_takes_history_and_ignore_deletes() {
    let server = jetstream_server();
    let url = server.url();
    micro_quiet(&url, &["kv", "add", "hw", "--history", "5"]);
    micro_quiet(&url, &["kv", "put", "hw", "k", "one"]);
    micro_quiet(&url, &["kv", "put", "hw", "k", "two"]);
    micro_quiet(&url, &["kv", "del", "hw", "k"]);
    micro_quiet(&url, &["kv", "put", "hw", "j", "kept"]);
    let out = micro_quiet(&url, &["kv", "watch", "hw", "--history", "--ignore-deletes", "--count", "3"]);
    let values: Vec<&str> = out.stdout.lines().filter_map(|l| l.rsplit(": ").next()).collect();
    assert_eq!(values, ["one", "two", "kept"], "{out:?}");
    assert!(!out.stdout.contains("DEL"), "{out:?}");
    let usage = micro(&url, &["kv", "watch", "hw", "--updates-only", "--history"]);
    assert_usage_error(&usage, "--history");
}
