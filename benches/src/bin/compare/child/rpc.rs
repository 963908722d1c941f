//! Request/reply workloads: `reqrep` (one requester, a responder in the same process; p50/p99) and `micro` (a
//! service echo endpoint loaded by requester threads of one blocking client of ours).

use std::time::{Duration, Instant};

use futures::StreamExt;

use super::{echo, nats_sync, percentiles, runtime, Window};
use crate::spec::{ChildSpec, Client, RunResult};

/// The subject the reqrep responder listens on.
const RR_SUBJECT: &str = "bench.rr";
/// Requester threads of the micro row.
const MICRO_THREADS: usize = 4;
/// nats-sync's requests take milliseconds each (it waits for a flush interval): a few hundred samples give the
/// percentiles without making its row take minutes.
const NATS_SYNC_MAX_REQUESTS: usize = 500;

/// `spec.messages` sequential requests with default options, timing each round trip.
pub(super) fn reqrep(spec: &ChildSpec, client: Client) -> RunResult {
    let n = spec.messages;
    match client {
        Client::OursBlocking => {
            let c = nats_blocking::connect(&spec.url).expect("connect ours-blocking");
            let _responder = c.subscribe_with(RR_SUBJECT, |m| echo(&m)).expect("subscribe");
            c.flush().expect("flush");
            timed(spec, n, || {
                c.request(RR_SUBJECT, "ping").expect("request");
            })
        }
        Client::NatsSync => {
            let c = nats_sync(&spec.url);
            let _responder = c.subscribe(RR_SUBJECT).expect("subscribe").with_handler(|m| m.respond(&m.data));
            c.flush().expect("flush");
            timed(spec, n.min(NATS_SYNC_MAX_REQUESTS), || {
                c.request(RR_SUBJECT, "ping").expect("request");
            })
        }
        Client::OursTokio => runtime().block_on(reqrep_ours_tokio(spec)),
        Client::AsyncNats => runtime().block_on(reqrep_async_nats(spec)),
        Client::Raw => unreachable!("no raw reqrep"),
    }
}

/// [`reqrep`] for ours-tokio: the responder is a task on the same runtime.
async fn reqrep_ours_tokio(spec: &ChildSpec) -> RunResult {
    let c = nats_tokio::connect(&spec.url).await.expect("connect ours-tokio");
    let mut svc = c.subscribe(RR_SUBJECT).await.expect("subscribe");
    let responder = tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            echo(&m);
        }
    });
    c.flush().await.expect("flush");
    let w = Window::open(spec);
    let mut samples = Vec::with_capacity(spec.messages);
    for _ in 0..spec.messages {
        let t = Instant::now();
        c.request(RR_SUBJECT, "ping").await.expect("request");
        samples.push(t.elapsed());
    }
    let result = latency_result(w, samples);
    responder.abort();
    result
}

/// [`reqrep`] for async-nats: the responder is a task on the same runtime, answering with a clone of the client.
async fn reqrep_async_nats(spec: &ChildSpec) -> RunResult {
    let c = async_nats::connect(&spec.url).await.expect("connect async-nats");
    let mut svc = c.subscribe(RR_SUBJECT).await.expect("subscribe");
    let publisher = c.clone();
    let responder = tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            if let Some(reply) = m.reply {
                let _ = publisher.publish(reply, m.payload.clone()).await;
            }
        }
    });
    c.flush().await.expect("flush");
    let w = Window::open(spec);
    let mut samples = Vec::with_capacity(spec.messages);
    for _ in 0..spec.messages {
        let t = Instant::now();
        c.request(RR_SUBJECT, "ping".into()).await.expect("request");
        samples.push(t.elapsed());
    }
    let result = latency_result(w, samples);
    responder.abort();
    result
}

/// Times `n` calls of a blocking `request` in a window.
fn timed(spec: &ChildSpec, n: usize, mut request: impl FnMut()) -> RunResult {
    let w = Window::open(spec);
    let samples = (0..n)
        .map(|_| {
            let t = Instant::now();
            request();
            t.elapsed()
        })
        .collect();
    latency_result(w, samples)
}

/// Closes the window over the samples and adds their percentiles.
fn latency_result(w: Window, samples: Vec<Duration>) -> RunResult {
    let measured = w.close(samples.len(), Duration::ZERO);
    let (p50_us, p99_us) = percentiles(samples);
    RunResult { p50_us, p99_us, ..measured.result(0) }
}

/// A service echo endpoint of `client` in this process, and [`MICRO_THREADS`] requester threads on one blocking
/// client of ours sending `spec.messages` requests in all: requests per second, and the CPU of both sides.
/// `inline`: our blocking service's endpoint is `inline` (see `micro::EndpointConfig::inline`).
pub(super) fn micro(spec: &ChildSpec, client: Client, inline: bool) -> RunResult {
    let subject = format!("bench.svc.{}", client.name());
    let rt = client.is_async().then(runtime);
    // Keeps the service running until the end of the run.
    let _service: Box<dyn std::any::Any> = match (client, &rt) {
        (Client::OursBlocking, _) => Box::new(micro_ours_blocking(&spec.url, &subject, inline)),
        (Client::OursTokio, Some(rt)) => Box::new(micro_ours_tokio(rt, &spec.url, &subject)),
        (Client::AsyncNats, Some(rt)) => Box::new(micro_async_nats(rt, &spec.url, &subject)),
        (Client::Raw, _) => Box::new(super::raw::echo(&spec.url, &subject)),
        _ => unreachable!("no micro service for {}", client.name()),
    };
    let requester = nats_blocking::connect(&spec.url).expect("connect requester");
    let per_thread = spec.messages / MICRO_THREADS;
    let mut w = Window::open(spec);
    let workers: Vec<_> = (0..MICRO_THREADS)
        .map(|_| {
            let (c, subject) = (requester.clone(), subject.clone());
            w.spawn(move || {
                for _ in 0..per_thread {
                    c.request(&subject, "ping").expect("request");
                }
            })
        })
        .collect();
    workers.into_iter().for_each(super::Worker::wait);
    w.close(per_thread * MICRO_THREADS, Duration::ZERO).result(0)
}

/// Our `micro::Service` on the blocking client, echoing on `subject`, on the client's reader if `inline`.
fn micro_ours_blocking(url: &str, subject: &str, inline: bool) -> micro::Service<nats_blocking::Client> {
    let c = nats_blocking::connect(url).expect("connect ours-blocking");
    let service = micro::Service::start(c, micro::ServiceConfig::new("bench", "1.0.0")).expect("start service");
    let config = micro::EndpointConfig::new("echo").subject(subject);
    let config = if inline { config.inline() } else { config };
    service
        .endpoint(&service.root(), config, |mut req| {
            let body = req.payload_bytes();
            let _ = req.respond(body);
        })
        .expect("add endpoint");
    service
}

/// Our `micro::AsyncService` on the tokio client, echoing on `subject`; aborted when dropped.
fn micro_ours_tokio(rt: &tokio::runtime::Runtime, url: &str, subject: &str) -> AbortOnDrop {
    let service = rt.block_on(async {
        let c = nats_tokio::connect(url).await.expect("connect ours-tokio");
        let service =
            micro::AsyncService::start(c, micro::ServiceConfig::new("bench", "1.0.0")).await.expect("start service");
        let config = micro::EndpointConfig::new("echo").subject(subject);
        service
            .endpoint(&service.root(), config, |mut req| async move {
                let body = req.payload_bytes();
                let _ = req.respond(body);
            })
            .await
            .expect("add endpoint");
        service
    });
    // `run` holds the service itself: the handle can go.
    let run = service.run();
    AbortOnDrop(rt.spawn(async move {
        run.await;
    }))
}

/// async-nats's service, echoing on `subject`; aborted when dropped.
fn micro_async_nats(rt: &tokio::runtime::Runtime, url: &str, subject: &str) -> AbortOnDrop {
    use async_nats::service::ServiceExt;
    let (service, mut endpoint) = rt.block_on(async {
        let c = async_nats::connect(url).await.expect("connect async-nats");
        let service = c.service_builder().start("bench", "1.0.0").await.expect("start service");
        let endpoint = service.endpoint(subject).await.expect("add endpoint");
        c.flush().await.expect("flush");
        (service, endpoint)
    });
    AbortOnDrop(rt.spawn(async move {
        let _keep = service;
        while let Some(req) = endpoint.next().await {
            let body = req.message.payload.clone();
            let _ = req.respond(Ok(body)).await;
        }
    }))
}

/// Ends a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
