//! `micro req --count` (every reply printed; a progress bar only on a terminal) and `micro sub --queue` (a
//! queue group shares the messages), as a user runs them against a real `nats-server`.

mod common;

use std::process::Command;
use std::sync::mpsc::RecvTimeoutError;
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_clean_failure, assert_usage_error, micro, micro_ok, Background, WAIT};
use nats_server_harness::{NatsServer, WebSocket};

/// Starts `micro reply SUBJECT` (echoing, for ever) and waits until a request is answered.
fn echo_replier(url: &str, subject: &str) -> Background {
    let reply = Background::spawn(url, &["reply", subject]);
    let deadline = Instant::now() + WAIT;
    while !micro(url, &["--timeout", "1s", "req", subject, "probe"]).status.success() {
        assert!(Instant::now() < deadline, "micro reply never answered");
        thread::sleep(Duration::from_millis(50));
    }
    reply
}

#[test]
fn req_count_prints_every_reply_and_no_bar_when_piped() {
    let server = NatsServer::start();
    let url = server.url();
    let _reply = echo_replier(&url, "cli.many");

    let out = micro_ok(&url, &["req", "cli.many", "foobar", "--count", "25"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 50, "a subject line and a payload per reply: {out:?}");
    for pair in lines.chunks(2) {
        assert!(pair[0].starts_with("[_INBOX.") && pair[0].ends_with(']'), "{out:?}");
        assert_eq!(pair[1], "foobar", "{out:?}");
    }
    assert!(out.stderr.is_empty(), "no progress bar when stdout and stderr are pipes: {out:?}");

    let zero = micro(&url, &["req", "cli.many", "x", "--count", "0"]);
    assert_usage_error(&zero, "--count");
}

#[test]
fn req_count_draws_a_bar_on_a_terminal() {
    let server = NatsServer::start();
    let url = server.url();
    let _reply = echo_replier(&url, "cli.tty");

    // `script` runs the command on a pseudo-terminal: stdout and stderr are both that terminal.
    let command = format!("{} --server {url} req cli.tty foobar --count 25", env!("CARGO_BIN_EXE_micro"));
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("NATS_URL")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs the command on a pseudo-terminal");
    let stdout = common::read_all(child.stdout.take().unwrap());
    let status = common::wait_bounded(&mut child, WAIT, "micro req under script");
    let text = stdout.join().unwrap();
    assert!(status.success(), "{status:?}: {text}");
    assert!(text.contains("25/25 requests"), "the finished bar: {text}");
    assert!(text.contains("] [="), "a drawn bar: {text}");
    assert_eq!(text.matches("foobar").count(), 25, "the replies are printed above the bar: {text}");

    // Twenty requests or fewer: no bar even on a terminal (natscli's threshold).
    let command = format!("{} --server {url} req cli.tty foobar --count 20", env!("CARGO_BIN_EXE_micro"));
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("foobar").count(), 20, "{text}");
    assert!(!text.contains("requests"), "no bar for 20 requests: {text}");
}

#[test]
fn req_count_stops_at_the_first_failure_and_says_which() {
    let server = NatsServer::start();
    let out = micro(&server.url(), &["req", "nobody.home", "x", "--count", "5"]);
    assert_clean_failure(&out, &["request 1 of 5", "no responders on nobody.home"]);
}

/// Reads `[subject]` lines from `sub` until `want` arrived in all and nothing more came for 300 ms.
fn subjects_seen(subs: &[&Background], want: usize) -> Vec<usize> {
    let mut seen = vec![0; subs.len()];
    let deadline = Instant::now() + WAIT;
    loop {
        let mut quiet = true;
        for (i, sub) in subs.iter().enumerate() {
            match sub.stdout.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.starts_with('[') => {
                    seen[i] += 1;
                    quiet = false;
                }
                Ok(_) => quiet = false,
                Err(RecvTimeoutError::Timeout) => {}
                Err(e) => panic!("a subscriber ended: {e}"),
            }
        }
        if quiet && seen.iter().sum::<usize>() >= want {
            return seen;
        }
        assert!(Instant::now() < deadline, "only {seen:?} of {want} messages arrived");
    }
}

#[test]
fn sub_queue_group_shares_the_messages() {
    let server = NatsServer::start();
    let url = server.url();
    let workers = [
        Background::spawn(&url, &["sub", "cli.jobs", "--queue", "workers"]),
        Background::spawn(&url, &["sub", "cli.jobs", "--queue", "workers"]),
    ];
    let watcher = Background::spawn(&url, &["sub", "cli.jobs"]);
    for w in &workers {
        assert_eq!(w.wait_for_stderr("Subscribing on"), "Subscribing on cli.jobs in queue group workers");
    }
    assert_eq!(watcher.wait_for_stderr("Subscribing on"), "Subscribing on cli.jobs");

    let out = micro_ok(&url, &["pub", "cli.jobs", "job", "--count", "40"]);
    assert!(out.stdout.contains("published 40 message(s)"), "{out:?}");

    let shared = subjects_seen(&[&workers[0], &workers[1]], 40);
    assert_eq!(shared.iter().sum::<usize>(), 40, "each message to one worker: {shared:?}");
    assert!(shared.iter().all(|&n| n > 0), "both workers got some (1 in 2^39 to fail by chance): {shared:?}");
    assert_eq!(subjects_seen(&[&watcher], 40), [40], "a plain subscriber sees them all");
}

/// `--server ws://...`: the tool speaks WebSocket (nats-blocking's) on both sides of a request; a `ws://` URL
/// pointing at the NATS port fails in one clean line naming the websocket.
#[test]
fn req_and_reply_over_websocket() {
    let server = NatsServer::builder().websocket(WebSocket::plain()).start().expect("a websocket server");
    let url = server.ws_url();
    let _reply = echo_replier(&url, "cli.ws");
    let out = micro_ok(&url, &["req", "cli.ws", "over websocket"]);
    assert!(out.stdout.lines().any(|l| l == "over websocket"), "{out:?}");

    let wrong = micro(&server.url().replacen("nats://", "ws://", 1), &["--timeout", "2s", "req", "cli.ws", "x"]);
    assert_clean_failure(&wrong, &["websocket"]);
}
