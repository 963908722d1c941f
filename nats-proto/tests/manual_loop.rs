//! The `manual_loop` example, run against real nats-server processes of both installed versions.

#[allow(dead_code)]
#[path = "../examples/manual_loop.rs"]
mod manual_loop;

use nats_server_harness::{NatsServer, ServerVersion};

fn check(version: ServerVersion) {
    let server = NatsServer::builder().version(version).start().expect("start nats-server");
    let (message, reply, no_responders) =
        manual_loop::run(&server.url()).unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert_eq!(message.subject(), "demo.hello");
    assert_eq!(message.payload(), b"world");
    assert_eq!(message.headers().and_then(|h| h.get("Greeting")), Some("hello"));
    assert_eq!(reply.payload(), b"ping");
    assert!(no_responders, "a request nobody serves is a typed NoResponders error");
}

#[test]
fn manual_loop_against_current_server() {
    check(ServerVersion::Current);
}

#[test]
fn manual_loop_against_old_server() {
    check(ServerVersion::Old);
}
