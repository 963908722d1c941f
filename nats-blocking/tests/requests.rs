//! Request/reply against a real nats-server: the case that is this client's alone.
//!
//! Everything both clients do alike (replies, timeouts, no responders, headers, `request_many`, concurrent
//! requests, a responder making requests) is in the conformance suite (`conformance/tests/requests/`),
//! written once and run against both clients.

mod common;

use common::{connect, text, WAIT};
use nats_server_harness::NatsServer;

// Not in the suite: callback subscriptions (`subscribe_with`) are this client's alone.
#[test]
fn a_handler_can_make_requests_of_its_own() {
    let server = NatsServer::start();
    let client = connect(&server);
    let _inner = client
        .subscribe_with("svc.inner", |msg| {
            let _ = msg.respond(format!("inner:{}", text(&msg)));
        })
        .unwrap();
    let c = client.clone();
    // The outer service asks the inner one before answering: handlers do not block the reader.
    let _outer = client
        .subscribe_with("svc.outer", move |msg| {
            let inner = c.request_with_timeout("svc.inner", msg.payload_bytes(), WAIT).map(|m| text(&m));
            let _ = msg.respond(format!("outer:{}", inner.unwrap_or_else(|e| format!("{e:?}"))));
        })
        .unwrap();
    client.flush().unwrap();
    for i in 0..5 {
        assert_eq!(text(&client.request("svc.outer", i.to_string()).unwrap()), format!("outer:inner:{i}"));
    }
}
