//! What a publish, a request and a reply carry, with and without a current trace context.

use std::time::Duration;

use conformance::TestClient;
use nats_client::trace::{TraceContext, TRACEPARENT, TRACESTATE};
use nats_client::Message;
use nats_proto::Headers;
use nats_server_harness::NatsServer;

use crate::common::{connect, recv, serve, text, WAIT};

/// The `traceparent` values a message carries.
fn traceparents(msg: &Message) -> Vec<String> {
    msg.headers().map(|h| h.get_all(TRACEPARENT).map(str::to_owned).collect()).unwrap_or_default()
}

pub(crate) fn a_publish_carries_the_current_context_and_only_it<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("traced", None).unwrap();
    client.flush().unwrap();
    let ctx = TraceContext::new_root().with_trace_state("vendor=abc,other=1").unwrap();

    client.publish("traced", None, None, "before".into()).unwrap();
    ctx.in_scope(|| client.publish("traced", None, None, "inside".into())).unwrap();
    let headers: Headers = [("app", "x")].into_iter().collect();
    ctx.in_scope(|| client.publish("traced", None, Some(&headers), "with headers".into())).unwrap();
    client.publish("traced", None, None, "after".into()).unwrap();

    let before = recv(&mut sub, "the publish before the scope");
    assert_eq!((text(&before).as_str(), before.headers().is_none()), ("before", true), "{before:?}");
    let inside = recv(&mut sub, "the publish inside the scope");
    assert_eq!(traceparents(&inside), [ctx.to_string()]);
    assert_eq!(inside.headers().unwrap().get(TRACESTATE), Some("vendor=abc,other=1"));
    assert_eq!(inside.trace_context(), Some(ctx.clone()), "read back as it was sent");
    let with_headers = recv(&mut sub, "the publish with headers of its own");
    assert_eq!(with_headers.headers().unwrap().get("app"), Some("x"), "the caller's headers stay");
    assert_eq!(with_headers.trace_context(), Some(ctx));
    let after = recv(&mut sub, "the publish after the scope");
    assert!(after.headers().is_none() && after.trace_context().is_none(), "{after:?}");
}

pub(crate) fn a_traceparent_the_caller_set_is_not_overwritten<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("traced", None).unwrap();
    client.flush().unwrap();
    let own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let headers: Headers = [(TRACEPARENT, own), (TRACESTATE, "mine=1")].into_iter().collect();
    let current = TraceContext::new_root().with_trace_state("current=2").unwrap();
    current.in_scope(|| client.publish("traced", None, Some(&headers), "own".into())).unwrap();
    let msg = recv(&mut sub, "the publish with its own traceparent");
    assert_eq!(traceparents(&msg), [own]);
    assert_eq!(msg.headers().unwrap().get_all(TRACESTATE).collect::<Vec<_>>(), ["mine=1"]);
    assert_ne!(msg.trace_context().unwrap().trace_id(), current.trace_id());
}

pub(crate) fn a_request_and_its_reply_carry_one_trace<C: TestClient>() {
    let server = NatsServer::start();
    let service: C = connect(&server);
    let client: C = connect(&server);
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let sub = service.subscribe("svc.traced", None).unwrap();
    // The responder continues the request's trace (if any) in a span of its own, and answers inside it.
    let _svc = serve(sub, move |msg| {
        let continued = msg.trace_context().map(|incoming| incoming.child());
        let _ = seen_tx.send((msg.trace_context(), continued.clone()));
        nats_client::trace::with_context(continued, || msg.respond(text(&msg))).unwrap();
    });
    service.flush().unwrap();
    let root = TraceContext::new_root();

    let reply = root.in_scope(|| client.request("svc.traced", None, "traced".into(), WAIT)).unwrap();
    let (incoming, continued) = seen.recv_timeout(WAIT).unwrap();
    assert_eq!(incoming.as_ref(), Some(&root), "the request carries the requester's context");
    let continued = continued.unwrap();
    let back = reply.trace_context().expect("the reply carries the responder's context");
    assert_eq!((back.trace_id(), back.span_id()), (root.trace_id(), continued.span_id()));
    assert_ne!(back.span_id(), root.span_id(), "the responder's span is its own");

    let plain = client.request("svc.traced", None, "plain".into(), WAIT).unwrap();
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), (None, None), "no context: the request carries none");
    assert!(plain.headers().is_none(), "{plain:?}");

    // Discovery-style requests too.
    let many = root.in_scope(|| client.request_many("svc.traced", "many".into(), WAIT, None, Some(1))).unwrap();
    assert_eq!(many.map(|m| m.trace_context().unwrap().trace_id()).collect::<Vec<_>>(), [root.trace_id()]);
    assert_eq!(seen.recv_timeout(Duration::from_secs(1)).unwrap().0, Some(root));
}

pub(crate) fn a_publish_that_fits_only_without_the_context_goes_without_it<C: TestClient>() {
    let server = NatsServer::builder().config("max_payload: 1024\n").start().expect("start nats-server");
    let client: C = connect(&server);
    let mut sub = client.subscribe("traced", None).unwrap();
    client.flush().unwrap();
    let ctx = TraceContext::new_root();
    // 1,000 bytes fit the server's 1,024; with the trace headers (about 70 bytes) they would not.
    let near_the_limit = vec![b'x'; 1000];
    ctx.in_scope(|| client.publish("traced", None, None, near_the_limit.as_slice().into())).unwrap();
    let msg = recv(&mut sub, "the publish near the limit");
    assert_eq!((msg.payload().len(), msg.trace_context()), (1000, None), "sent, without the context");
    // A small one in the same scope still carries it.
    ctx.in_scope(|| client.publish("traced", None, None, "small".into())).unwrap();
    assert_eq!(recv(&mut sub, "the small publish").trace_context(), Some(ctx));
}
