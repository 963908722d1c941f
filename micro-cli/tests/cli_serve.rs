//! `micro serve NAME` (natscli's demo echo service) and `micro demo` as a user runs them: they answer, say who
//! answered, log each request, and stop gracefully on SIGTERM or SIGINT with exit code 0.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{micro, micro_quiet, Background, BoxedTable, WAIT};
use nats_server_harness::NatsServer;

/// Waits until `micro ls NAME` lists the service.
fn wait_listed(url: &str, name: &str) {
    let deadline = Instant::now() + WAIT;
    while !micro(url, &["--timeout", "300ms", "ls", name]).stdout.contains(name) {
        assert!(Instant::now() < deadline, "{name} never listed");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_echoes_says_who_answered_and_drains_on_sigterm() {
    let server = NatsServer::start();
    let url = server.url();
    let serve = Background::spawn(&url, &["serve", "svc", "-H", "Team:core"]);
    let banner = serve.line();
    assert_eq!(banner, format!("Service svc handler {} waiting for requests on {url}", serve.pid()));
    let mut rest = vec![];
    while rest.last().is_none_or(|l: &String| l != "Requests Log:") {
        rest.push(serve.line());
    }
    assert_eq!(
        rest,
        [
            "",
            "Listening Subjects:",
            "",
            "  svc.echo: Echo Service",
            "",
            "Custom Response Headers:",
            "",
            "      Team: core",
            "",
            "Requests Log:"
        ],
    );
    wait_listed(&url, "svc");

    let out = micro_quiet(&url, &["req", "svc.echo", "hello", "-H", "X-Trace:abc"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("[_INBOX."), "{out:?}");
    let headers: Vec<(&str, &str)> = lines[1..lines.len() - 1].iter().map(|l| l.split_once(": ").unwrap()).collect();
    let names: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    assert_eq!(names, ["ConnectedUrl", "Handler", "Subject", "Timestamp", "Team", "X-Trace"], "{out:?}");
    assert_eq!(headers[0].1, url, "{out:?}");
    assert_eq!(headers[1].1, serve.pid().to_string(), "{out:?}");
    assert_eq!(headers[2].1, "svc.echo", "{out:?}");
    let stamp = headers[3].1;
    let utc = stamp.len() == "2006-01-02T15:04:05Z".len() && stamp.ends_with('Z');
    let offset = stamp.len() == "2006-01-02T15:04:05+01:00".len() && stamp[19..].starts_with(['+', '-']);
    assert!((utc || offset) && &stamp[10..11] == "T", "RFC 3339 to the second: {out:?}");
    assert_eq!((headers[4].1, headers[5].1), ("core", "abc"), "{out:?}");
    assert_eq!(lines.last(), Some(&"hello"), "{out:?}");
    assert_eq!(serve.line(), "", "a blank line after the banner");
    let logged = serve.line();
    assert!(logged.ends_with(" Handling request on subject svc.echo"), "{logged:?}");
    assert_eq!(logged.len(), "15:04:05 Handling request on subject svc.echo".len(), "{logged:?}");

    let ls = BoxedTable::parse(&micro_quiet(&url, &["--timeout", "500ms", "ls"]).stdout);
    assert_eq!(ls.body[0][0], "svc");
    assert_eq!(ls.body[0][3], "Echo service of the micro tool (svc)");
    let info = micro_quiet(&url, &["--timeout", "1s", "info", "svc"]);
    let data = "\n  Endpoint Specific Statistics:\n\n    {\n        \"total_payload\": 5\n    }\n";
    assert!(info.stdout.contains(data), "the bytes echoed, from the stats handler: {info:?}");
    assert!(info.stdout.contains("            Subject: svc.echo\n        Queue Group: q\n"), "{info:?}");

    serve.signal("TERM");
    let done = serve.finish();
    assert!(done.status.success(), "a clean exit after SIGTERM: {done:?}");
    assert!(done.stderr.starts_with("svc stopped after ") && done.stderr.contains("drained"), "{done:?}");
    let ls = micro_quiet(&url, &["--timeout", "300ms", "ls", "svc"]);
    assert_eq!(ls.stdout.trim(), "No results received", "drained and gone: {ls:?}");
}

#[test]
fn demo_stops_gracefully_on_sigint() {
    let server = NatsServer::start();
    let url = server.url();
    let demo = Background::spawn(&url, &["demo"]);
    let line = demo.wait_for_stderr("demo-service ");
    assert!(line.ends_with("running; stop it with Ctrl-C"), "{line}");
    wait_listed(&url, "demo-service");
    demo.signal("INT");
    let done = demo.finish();
    assert!(done.status.success(), "a clean exit after SIGINT: {done:?}");
    assert!(done.stderr.starts_with("demo-service stopped after "), "{done:?}");
}
