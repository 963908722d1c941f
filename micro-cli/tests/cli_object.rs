//! `micro object` as a user runs it: a subprocess against a real `nats-server` with JetStream. A file goes in
//! and comes back out byte for byte (its digest checked), the listings and infos say what is stored, and the
//! failures are one clean line.

mod common;

use std::fs;

use common::{assert_clean_failure, micro, micro_quiet};
use nats_server_harness::NatsServer;
use serde_json::Value;

/// Deterministic bytes, so a chunk out of place shows.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1]).collect()
}

#[test]
fn object_add_put_ls_info_get_rm() {
    let server = NatsServer::builder().jetstream(true).start().expect("a nats-server with JetStream starts");
    let url = server.url();
    let dir = std::env::temp_dir().join(format!("micro-object-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let source = dir.join("photo.raw");
    let data = content(1_000_000);
    fs::write(&source, &data).unwrap();

    let out = micro_quiet(&url, &["object", "add", "media", "--storage", "memory"]);
    assert!(out.stdout.contains("Information for object store media"), "{out:?}");
    assert!(out.stdout.contains("Sealed: false"), "{out:?}");

    let out = micro_quiet(&url, &["object", "put", "media", source.to_str().unwrap(), "--description", "a test"]);
    assert!(out.stdout.contains("Object information for media > photo.raw"), "{out:?}");
    assert!(out.stdout.contains("(1000000 bytes)") && out.stdout.contains("Chunks: 8"), "{out:?}");
    assert!(out.stdout.contains("Digest: SHA-256="), "{out:?}");

    let out = micro_quiet(&url, &["object", "ls", "media"]);
    let rows: Vec<&str> = out.stdout.lines().filter(|l| l.contains("photo.raw")).collect();
    assert_eq!(rows.len(), 1, "{out:?}");
    let listed: Value = serde_json::from_str(&micro_quiet(&url, &["--json", "object", "ls", "media"]).stdout).unwrap();
    assert_eq!(listed[0]["name"], "photo.raw");
    assert_eq!(listed[0]["size"], 1_000_000);
    assert_eq!(listed[0]["description"], "a test");
    let stores: Value = serde_json::from_str(&micro_quiet(&url, &["--json", "object", "ls"]).stdout).unwrap();
    assert_eq!(stores, serde_json::json!(["media"]));

    let info: Value =
        serde_json::from_str(&micro_quiet(&url, &["--json", "object", "info", "media", "photo.raw"]).stdout).unwrap();
    assert_eq!(info["chunks"], 8);
    assert!(info["mtime"].as_str().is_some_and(|t| t.ends_with('Z')), "{info}");

    let target = dir.join("back.raw");
    let out = micro_quiet(&url, &["object", "get", "media", "photo.raw", "-O", target.to_str().unwrap()]);
    assert!(out.stdout.contains("SHA-256 digest checked"), "{out:?}");
    assert_eq!(fs::read(&target).unwrap(), data, "the file came back byte for byte");
    // To standard output: the content only (text here, as the test reads stdout as text).
    let notes = dir.join("notes.txt");
    fs::write(&notes, "line one\nline two\n").unwrap();
    micro_quiet(&url, &["object", "put", "media", notes.to_str().unwrap(), "--name", "docs/notes.txt"]);
    let stdout = micro_quiet(&url, &["object", "get", "media", "docs/notes.txt", "-O", "-"]);
    assert_eq!(stdout.stdout, "line one\nline two\n");

    assert!(micro_quiet(&url, &["object", "rm", "media", "photo.raw"]).stdout.contains("Deleted photo.raw"));
    let watched = micro_quiet(&url, &["object", "watch", "media", "--count", "2"]);
    let lines: Vec<&str> = watched.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{watched:?}");
    assert!(lines.iter().any(|l| l.contains("DEL media > photo.raw")), "{watched:?}");
    assert!(lines.iter().any(|l| l.contains("PUT media > docs/notes.txt")), "{watched:?}");
    assert_clean_failure(&micro(&url, &["object", "info", "media", "photo.raw"]), &["photo.raw", "not found"]);
    assert_clean_failure(&micro(&url, &["object", "get", "nothing", "x"]), &["object store nothing not found"]);
    assert!(micro_quiet(&url, &["object", "seal", "media"]).stdout.contains("Sealed object store media"));
    let out = micro(&url, &["object", "put", "media", notes.to_str().unwrap(), "--name", "late"]);
    assert_clean_failure(&out, &["object store media"]);
    assert!(micro_quiet(&url, &["object", "rm", "media"]).stdout.contains("Deleted object store media"));
    assert_eq!(micro_quiet(&url, &["object", "ls"]).stdout.trim(), "No object stores");
    let _ = fs::remove_dir_all(&dir);
}
