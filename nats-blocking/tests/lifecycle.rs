//! The life of a connection against a real nats-server: the case that is this client's alone, callback
//! subscriptions after a close.
//!
//! Everything both clients do alike (connecting and failing to, server info and statistics, both server
//! versions, the event callback and receivers, drain, close, dropping the last handle) is in the conformance
//! suite (`conformance/tests/lifecycle/`), written once and run against both clients.

mod common;

use common::{connect, WAIT};
use nats_blocking::{Error, Event};
use nats_server_harness::NatsServer;

// Not in the suite: callback subscriptions (`subscribe_with`, `queue_subscribe_with`) are this client's alone.
#[test]
fn callback_subscriptions_after_close_are_closed() {
    let server = NatsServer::start();
    let client = connect(&server);
    let events = client.events();
    client.close();
    assert!(client.is_closed());
    common::wait_event(&events, WAIT, "Closed", |e| matches!(e, Event::Closed));
    let closed = |what: &str, r: Result<(), Error>| assert!(matches!(r, Err(Error::Closed)), "{what}: {r:?}");
    closed("subscribe_with", client.subscribe_with("closed.z", |_| {}).map(drop));
    closed("queue_subscribe_with", client.queue_subscribe_with("closed.z", "q", |_| {}).map(drop));
}
