//! Trace context in async code, against a real server: a `TraceContext::scope`d task carries its context in
//! everything it sends, poll after poll, whichever worker thread resumes it, while a task beside it carries
//! none; a handler continues a message's trace; and the same under smol. What each send carries is checked by
//! `conformance` (tests/trace), once for both clients.

use std::collections::HashSet;
use std::time::Duration;

use nats_server_harness::NatsServer;
use nats_tokio::trace::TraceContext;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_task_carries_its_context_across_awaits_and_threads() {
    let server = NatsServer::start();
    let client = nats_tokio::connect(&server.url()).await.unwrap();
    let mut sub = client.subscribe("traced.>").await.unwrap();
    let _echo = client.subscribe_with("echo", |msg| drop(msg.respond("ok"))).await.unwrap();
    client.flush().await.unwrap();
    let ctx = TraceContext::new_root();

    let traced = tokio::spawn(ctx.clone().scope({
        let client = client.clone();
        async move {
            let mut threads = HashSet::new();
            for i in 0..20 {
                threads.insert(std::thread::current().id());
                client.publish(&format!("traced.in.{i}"), "").await.unwrap();
                // Suspends until the reply: the task may go on on the other worker.
                let reply = client.request_with_timeout("echo", "", WAIT).await.unwrap();
                assert!(reply.trace_context().is_none(), "the echo handler's task has no context of its own");
                tokio::task::yield_now().await;
            }
            threads.len()
        }
    }));
    let plain = tokio::spawn({
        let client = client.clone();
        async move {
            for i in 0..20 {
                client.publish(&format!("traced.out.{i}"), "").await.unwrap();
                tokio::task::yield_now().await;
            }
        }
    });
    let threads = traced.await.unwrap();
    plain.await.unwrap();
    assert!(TraceContext::current().is_none(), "the context stayed with its task");

    let (mut inside, mut outside) = (0, 0);
    while inside + outside < 40 {
        let msg = tokio::time::timeout(WAIT, sub.next()).await.unwrap().unwrap();
        let subject = msg.subject().as_str().unwrap().to_owned();
        if subject.starts_with("traced.in.") {
            assert_eq!(msg.trace_context().as_ref(), Some(&ctx), "{subject}");
            inside += 1;
        } else {
            assert!(msg.headers().is_none(), "{subject} was sent outside any context: {msg:?}");
            outside += 1;
        }
    }
    assert_eq!((inside, outside), (20, 20));
    // Not a condition of the test (the scheduler decides), but worth seeing when it fails.
    eprintln!("the traced task ran on {threads} thread(s)");
}

#[tokio::test]
async fn an_async_handler_continues_the_trace_it_received() {
    let server = NatsServer::start();
    let client = nats_tokio::connect(&server.url()).await.unwrap();
    let mut downstream = client.subscribe("downstream").await.unwrap();
    let forwarder = client.clone();
    let _handler = client
        .subscribe_with_async("upstream", move |msg| {
            let client = forwarder.clone();
            let continued = msg.trace_context().map(|incoming| incoming.child());
            nats_tokio::trace::Scoped::new(continued, async move {
                client.publish("downstream", msg.payload_bytes()).await.unwrap();
            })
        })
        .await
        .unwrap();
    client.flush().await.unwrap();
    let root = TraceContext::new_root();
    root.clone().scope(client.publish("upstream", "traced")).await.unwrap();
    client.publish("upstream", "plain").await.unwrap();

    let traced = tokio::time::timeout(WAIT, downstream.next()).await.unwrap().unwrap();
    let continued = traced.trace_context().unwrap();
    assert_eq!(continued.trace_id(), root.trace_id());
    assert_ne!(continued.span_id(), root.span_id());
    let plain = tokio::time::timeout(WAIT, downstream.next()).await.unwrap().unwrap();
    assert_eq!((plain.payload(), plain.trace_context()), (&b"plain"[..], None));
}

#[test]
fn a_scoped_future_carries_its_context_under_smol() {
    let server = NatsServer::start();
    smol::block_on(async {
        let options = nats_tokio::ConnectOptions::new().server(&server.url());
        let client = nats_tokio::connect_smol(options).await.unwrap();
        let mut sub = client.subscribe("smol.traced").await.unwrap();
        client.flush().await.unwrap();
        let ctx = TraceContext::new_root();
        let task = smol::spawn(ctx.clone().scope({
            let client = client.clone();
            async move {
                smol::Timer::after(Duration::from_millis(5)).await;
                client.publish("smol.traced", "").await.unwrap();
            }
        }));
        task.await;
        client.publish("smol.traced", "").await.unwrap();
        let first = smol::future::or(sub.next(), async {
            smol::Timer::after(WAIT).await;
            None
        })
        .await
        .unwrap();
        assert_eq!(first.trace_context(), Some(ctx));
        let second = sub.next().await.unwrap();
        assert_eq!(second.trace_context(), None);
    });
}
