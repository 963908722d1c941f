//! W3C trace context through services, against a real server: a client inside a trace asks a blocking
//! service A, whose handler asks an async service B (on tokio); every hop sees one trace id, each handler
//! runs in a span of its own whose parent is the hop before, and each reply carries the trace back. Requests
//! without a context (or with a malformed one) run without one; a `tracestate` goes through as it came; a
//! panicking handler's 500 carries the trace; the `tracing` span of a request records its ids.

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::Duration;

use micro::trace::{TraceContext, TRACEPARENT, TRACESTATE};
use micro::{AsyncService, EndpointConfig, Service, ServiceConfig, ServiceError};
use nats_proto::Headers;
use nats_server_harness::NatsServer;

const WAIT: Duration = Duration::from_secs(5);

/// What a handler saw.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    /// The context the request carried.
    incoming: Option<TraceContext>,
    /// `Request::trace_context`.
    handler: Option<TraceContext>,
    /// The context current while the handler ran (B: after an await, in a later poll).
    current: Option<TraceContext>,
    /// A: the context of B's reply. B: the context current before the await.
    other: Option<TraceContext>,
}

/// A server, the blocking service A (`a.work`, `a.boom`), the async service B (`b.work`, `b.boom`) on a tokio
/// runtime, and what each handler saw.
struct Chain {
    server: NatsServer,
    a: Service<nats_blocking::Client>,
    a_seen: Receiver<Seen>,
    b_seen: Receiver<Seen>,
    _runtime: tokio::runtime::Runtime,
}

fn start_chain() -> Chain {
    let server = NatsServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (b_tx, b_seen) = channel();
    runtime.block_on(start_b(&server.url(), b_tx));

    let (a_tx, a_seen) = channel();
    let downstream = nats_blocking::connect(&server.url()).unwrap();
    let a = Service::start(downstream.clone(), ServiceConfig::new("a", "1.0.0")).unwrap();
    let a_tx = Mutex::new(a_tx);
    a.endpoint(&a.root(), EndpointConfig::new("work").subject("a.work"), move |mut req| {
        let current = TraceContext::current();
        let reply = downstream.request_with_timeout("b.work", "from a", WAIT).unwrap();
        let seen = Seen {
            incoming: req.message().trace_context(),
            handler: req.trace_context().cloned(),
            current,
            other: reply.trace_context(),
        };
        a_tx.lock().unwrap().send(seen).unwrap();
        req.respond(format!("a+{}", String::from_utf8_lossy(reply.payload()))).unwrap();
    })
    .unwrap();
    a.endpoint(&a.root(), EndpointConfig::new("boom").subject("a.boom"), |_req| panic!("boom in a")).unwrap();
    Chain { server, a, a_seen, b_seen, _runtime: runtime }
}

async fn start_b(url: &str, seen: Sender<Seen>) {
    let client = nats_tokio::connect(url).await.unwrap();
    let b = AsyncService::start(client, ServiceConfig::new("b", "1.0.0")).await.unwrap();
    b.endpoint(&b.root(), EndpointConfig::new("work").subject("b.work"), move |mut req| {
        let seen = seen.clone();
        async move {
            let before = TraceContext::current();
            // Resumed in a later poll, maybe on the other worker thread.
            tokio::time::sleep(Duration::from_millis(2)).await;
            seen.send(Seen {
                incoming: req.message().trace_context(),
                handler: req.trace_context().cloned(),
                current: TraceContext::current(),
                other: before,
            })
            .unwrap();
            req.respond("b").unwrap();
        }
    })
    .await
    .unwrap();
    b.endpoint(&b.root(), EndpointConfig::new("boom").subject("b.boom"), |req| async move {
        // Held across the await: the future's drop after the panic answers it.
        let _req = req;
        tokio::time::sleep(Duration::from_millis(2)).await;
        panic!("boom in b");
    })
    .await
    .unwrap();
    tokio::spawn(b.run());
}

fn no_trace_headers(msg: &micro::Message) -> bool {
    msg.headers().is_none_or(|h| h.get(TRACEPARENT).is_none() && h.get(TRACESTATE).is_none())
}

#[test]
fn one_trace_id_from_a_client_through_a_blocking_and_an_async_service() {
    let chain = start_chain();
    let client = nats_blocking::connect(&chain.server.url()).unwrap();
    let root = TraceContext::new_root();
    let reply = root.in_scope(|| client.request_with_timeout("a.work", "go", WAIT)).unwrap();
    assert_eq!(reply.payload(), b"a+b");
    let a = chain.a_seen.recv_timeout(WAIT).unwrap();
    let b = chain.b_seen.recv_timeout(WAIT).unwrap();

    // A: the client's context came in; A runs in a child of it.
    assert_eq!(a.incoming.as_ref(), Some(&root));
    let a_span = a.handler.clone().expect("A continues the trace");
    assert_eq!(a.current.as_ref(), Some(&a_span), "current while A's handler runs");
    assert_eq!(a_span.trace_id(), root.trace_id());
    assert_ne!(a_span.span_id(), root.span_id());

    // B: A's request carried A's span; B runs in a child of that, before and after its await.
    let b_incoming = b.incoming.expect("A's request to B carries A's context");
    assert_eq!((b_incoming.trace_id(), b_incoming.span_id()), (root.trace_id(), a_span.span_id()));
    let b_span = b.handler.clone().expect("B continues the trace");
    assert_eq!(b_span.trace_id(), root.trace_id());
    assert!(b_span.span_id() != a_span.span_id() && b_span.span_id() != root.span_id());
    assert_eq!((b.other.as_ref(), b.current.as_ref()), (Some(&b_span), Some(&b_span)), "at every poll");

    // Back: B's reply carries B's span to A, A's reply carries A's span to the client.
    assert_eq!(a.other, Some(b_span));
    assert_eq!(reply.trace_context(), Some(a_span));
    assert_eq!(TraceContext::current(), None, "only inside the scope");
    chain.a.stop(WAIT);
}

#[test]
fn a_request_without_a_context_runs_without_one_all_the_way() {
    let chain = start_chain();
    let client = nats_blocking::connect(&chain.server.url()).unwrap();
    let reply = client.request_with_timeout("a.work", "go", WAIT).unwrap();
    assert_eq!(reply.payload(), b"a+b");
    assert!(no_trace_headers(&reply), "{reply:?}");
    let nothing = Seen { incoming: None, handler: None, current: None, other: None };
    assert_eq!(chain.a_seen.recv_timeout(WAIT).unwrap(), nothing);
    assert_eq!(chain.b_seen.recv_timeout(WAIT).unwrap(), nothing, "A's request to B carried nothing");
}

#[test]
fn a_malformed_traceparent_is_ignored() {
    let chain = start_chain();
    let client = nats_blocking::connect(&chain.server.url()).unwrap();
    let zero_trace = format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32));
    let malformed = [
        "00-xyz",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        &zero_trace,
        "",
    ];
    for value in malformed {
        let headers: Headers = [(TRACEPARENT, value), (TRACESTATE, "vendor=1")].into_iter().collect();
        let reply = client.request_with_headers("a.work", &headers, "go").unwrap();
        assert_eq!(reply.payload(), b"a+b", "{value:?}");
        assert!(no_trace_headers(&reply), "{value:?}: {reply:?}");
        let a = chain.a_seen.recv_timeout(WAIT).unwrap();
        assert_eq!((a.incoming, a.handler, a.current), (None, None, None), "{value:?}");
        assert_eq!(chain.b_seen.recv_timeout(WAIT).unwrap().incoming, None, "{value:?}");
    }
    // Two traceparents are one too many.
    let valid = TraceContext::new_root().to_string();
    let twice: Headers = [(TRACEPARENT, valid.as_str()), (TRACEPARENT, valid.as_str())].into_iter().collect();
    client.request_with_headers("a.work", &twice, "go").unwrap();
    assert_eq!(chain.a_seen.recv_timeout(WAIT).unwrap().handler, None);
    chain.b_seen.recv_timeout(WAIT).unwrap();
    let stats = chain.a.stats();
    assert_eq!((stats.endpoints[0].num_requests, stats.endpoints[0].num_errors), (7, 0));
}

#[test]
fn tracestate_is_carried_through_every_hop() {
    let chain = start_chain();
    let client = nats_blocking::connect(&chain.server.url()).unwrap();
    let state = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    let root = TraceContext::new_root().with_trace_state(state).unwrap();
    let reply = root.in_scope(|| client.request_with_timeout("a.work", "go", WAIT)).unwrap();
    assert_eq!(reply.headers().unwrap().get(TRACESTATE), Some(state));
    let a = chain.a_seen.recv_timeout(WAIT).unwrap();
    assert_eq!(a.handler.unwrap().trace_state(), Some(state));
    assert_eq!(a.other.unwrap().trace_state(), Some(state), "B's reply");
    let b = chain.b_seen.recv_timeout(WAIT).unwrap();
    assert_eq!(b.incoming.unwrap().trace_state(), Some(state), "A's request");
}

#[test]
fn a_panicking_handler_answers_inside_the_trace() {
    let chain = start_chain();
    let client = nats_blocking::connect(&chain.server.url()).unwrap();
    let root = TraceContext::new_root();
    for subject in ["a.boom", "b.boom"] {
        let reply = root.in_scope(|| client.request_with_timeout(subject, "", WAIT)).unwrap();
        let error = ServiceError::from_headers(reply.headers().unwrap()).unwrap();
        assert_eq!(error.code, 500, "{subject}");
        let ctx = reply.trace_context().unwrap_or_else(|| panic!("{subject}: the 500 carries the trace"));
        assert_eq!(ctx.trace_id(), root.trace_id(), "{subject}");
        assert_ne!(ctx.span_id(), root.span_id(), "{subject}: the handler's span");
    }
}

/// Records the fields of every span, for the `tracing` test.
struct Recorder {
    spans: Mutex<Vec<(&'static str, BTreeMap<&'static str, String>)>>,
}

static RECORDER: Recorder = Recorder { spans: Mutex::new(Vec::new()) };

struct Fields<'a>(&'a mut BTreeMap<&'static str, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

impl tracing::Subscriber for &'static Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = BTreeMap::new();
        span.record(&mut Fields(&mut fields));
        let mut spans = self.spans.lock().unwrap();
        spans.push((span.metadata().name(), fields));
        tracing::span::Id::from_u64(spans.len() as u64)
    }

    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut spans = self.spans.lock().unwrap();
        let at = usize::try_from(span.into_u64()).unwrap() - 1;
        values.record(&mut Fields(&mut spans[at].1));
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn the_tracing_span_of_a_request_records_its_trace_and_span_ids() {
    // For the whole test binary: the service's threads and tasks are not this thread.
    tracing::subscriber::set_global_default(&RECORDER).unwrap();
    let chain = start_chain();
    let client = nats_blocking::connect(&chain.server.url()).unwrap();
    let root = TraceContext::new_root();
    root.in_scope(|| client.request_with_timeout("a.work", "traced", WAIT)).unwrap();
    let a = chain.a_seen.recv_timeout(WAIT).unwrap().handler.unwrap();
    let b = chain.b_seen.recv_timeout(WAIT).unwrap().handler.unwrap();
    client.request_with_timeout("a.work", "plain", WAIT).unwrap();
    chain.a_seen.recv_timeout(WAIT).unwrap();
    chain.b_seen.recv_timeout(WAIT).unwrap();

    let spans = RECORDER.spans.lock().unwrap().clone();
    let of = |subject: &str| -> Vec<BTreeMap<&'static str, String>> {
        spans
            .iter()
            .filter(|(name, f)| *name == "micro.request" && f["subject"] == subject)
            .map(|s| s.1.clone())
            .collect()
    };
    let ids = |f: &BTreeMap<&str, String>| (f.get("trace_id").cloned(), f.get("span_id").cloned());
    let traced = |ctx: &TraceContext| (Some(ctx.trace_id().to_string()), Some(ctx.span_id().to_string()));
    assert_eq!(of("a.work").iter().map(ids).collect::<Vec<_>>(), [traced(&a), (None, None)]);
    assert_eq!(of("b.work").iter().map(ids).collect::<Vec<_>>(), [traced(&b), (None, None)]);
}
