//! Limits against a real nats-server: the checks that are this client's alone, invalid subjects and queue
//! names given to callback subscriptions.
//!
//! Everything both clients do alike (slow consumers, the server's max_payload, invalid subjects and queue
//! names) is in the conformance suite (`conformance/tests/limits/`), written once and run against both
//! clients.

mod common;

use common::{connect, recv, text};
use nats_blocking::Error;
use nats_proto::{CommandError, SubjectError};
use nats_server_harness::NatsServer;

// Not in the suite: callback subscriptions (`subscribe_with`, `queue_subscribe_with`) are this client's alone.
#[test]
fn invalid_subjects_and_queues_of_callback_subscriptions_are_typed_errors() {
    let server = NatsServer::start();
    let client = connect(&server);
    match client.subscribe_with("a b", |_| {}) {
        Err(Error::Command(CommandError::InvalidSubject(e))) => assert_eq!(e, SubjectError::Whitespace),
        other => panic!("expected InvalidSubject, got {other:?}"),
    }
    assert!(matches!(
        client.queue_subscribe_with("a", "bad queue", |_| {}),
        Err(Error::Command(CommandError::InvalidQueue(_)))
    ));
    // Nothing was sent, and the connection still works.
    assert_eq!(client.statistics().out_msgs, 0);
    let mut sub = client.subscribe("valid.subject").unwrap();
    client.publish("valid.subject", "ok").unwrap();
    assert_eq!(text(&recv(&mut sub, "after invalid calls")), "ok");
    assert_eq!(client.statistics().connects, 1);
}
