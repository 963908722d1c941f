//! Publishing workloads: `publish` / `publish-rss` (publishes then a flush) and `pubsub` / `pubsub-rss` (publish
//! and subscribe to one subject in one process).

use std::time::Duration;

use bytes::Bytes;

use super::{
    async_nats_client, nats_sync, ours_blocking, ours_tokio, receive, received, runtime, Window, PUBSUB_SUBJECT,
    SILENCE,
};
use crate::spec::{ChildSpec, Client, RunResult};

/// The subject of the publish rows (nobody subscribes).
const PUB_SUBJECT: &str = "bench.pub";

/// `spec.messages` publishes of `spec.size` bytes then a flush, with the client's default options.
pub(super) fn publish(spec: &ChildSpec, client: Client) -> RunResult {
    let payload = Bytes::from(vec![b'x'; spec.size]);
    let n = spec.messages;
    match client {
        Client::OursBlocking => {
            let c = ours_blocking(&spec.url, None);
            let w = Window::open(spec);
            for _ in 0..n {
                c.publish(PUB_SUBJECT, &payload).expect("publish");
            }
            c.flush().expect("flush");
            w.close(n, Duration::ZERO).result(0)
        }
        Client::NatsSync => {
            let c = nats_sync(&spec.url);
            let w = Window::open(spec);
            for _ in 0..n {
                c.publish(PUB_SUBJECT, &payload).expect("publish");
            }
            c.flush().expect("flush");
            w.close(n, Duration::ZERO).result(0)
        }
        Client::OursTokio => runtime().block_on(async {
            let c = ours_tokio(&spec.url, None).await;
            let w = Window::open(spec);
            for _ in 0..n {
                c.publish(PUB_SUBJECT, &payload).await.expect("publish");
            }
            c.flush().await.expect("flush");
            w.close(n, Duration::ZERO).result(0)
        }),
        Client::AsyncNats => runtime().block_on(async {
            let c = async_nats_client(&spec.url, None).await;
            let w = Window::open(spec);
            for _ in 0..n {
                c.publish(PUB_SUBJECT, payload.clone()).await.expect("publish");
            }
            c.flush().await.expect("flush");
            w.close(n, Duration::ZERO).result(0)
        }),
        Client::Raw => unreachable!("raw publishing is raw::publish"),
    }
}

/// `spec.messages` publishes of 16 B to a subject this process subscribes to; a reader (thread or task) counts
/// them. `pending` is the subscription's limit in messages (`None`: the client's default).
pub(super) fn pubsub(spec: &ChildSpec, client: Client, pending: Option<usize>) -> RunResult {
    let payload = Bytes::from(vec![b'x'; spec.size]);
    match client {
        Client::OursBlocking => pubsub_ours_blocking(spec, payload, pending),
        Client::NatsSync => pubsub_nats_sync(spec, payload),
        Client::OursTokio => runtime().block_on(pubsub_ours_tokio(spec, payload, pending)),
        Client::AsyncNats => runtime().block_on(pubsub_async_nats(spec, payload, pending)),
        Client::Raw => unreachable!("no raw pubsub"),
    }
}

/// Counts up to `n` messages from `next` (a blocking receive with a timeout), giving up after [`SILENCE`].
fn count_blocking<E>(n: usize, mut next: impl FnMut(Duration) -> Result<(), E>) -> (usize, bool) {
    let mut got = 0;
    while got < n {
        if next(SILENCE).is_err() {
            return (got, true);
        }
        got += 1;
    }
    (got, false)
}

/// [`pubsub`] for ours-blocking: a reader thread and the publishing thread.
fn pubsub_ours_blocking(spec: &ChildSpec, payload: Bytes, pending: Option<usize>) -> RunResult {
    let n = spec.messages;
    let c = ours_blocking(&spec.url, pending);
    let mut sub = c.subscribe(PUBSUB_SUBJECT).expect("subscribe");
    c.flush().expect("flush");
    let mut w = Window::open(spec);
    let reader = w.spawn(move || count_blocking(n, |t| sub.next_timeout(t).map(drop)));
    for _ in 0..n {
        c.publish(PUBSUB_SUBJECT, &payload).expect("publish");
    }
    c.flush().expect("flush");
    let counted = reader.wait();
    received(w, n, counted)
}

/// [`pubsub`] for nats-sync: a reader thread and the publishing thread.
fn pubsub_nats_sync(spec: &ChildSpec, payload: Bytes) -> RunResult {
    let n = spec.messages;
    let c = nats_sync(&spec.url);
    let sub = c.subscribe(PUBSUB_SUBJECT).expect("subscribe");
    c.flush().expect("flush");
    let mut w = Window::open(spec);
    let reader = w.spawn(move || count_blocking(n, |t| sub.next_timeout(t).map(drop)));
    for _ in 0..n {
        c.publish(PUBSUB_SUBJECT, &payload).expect("publish");
    }
    c.flush().expect("flush");
    let counted = reader.wait();
    received(w, n, counted)
}

/// [`pubsub`] for ours-tokio: a reader task and the publishing task.
async fn pubsub_ours_tokio(spec: &ChildSpec, payload: Bytes, pending: Option<usize>) -> RunResult {
    let n = spec.messages;
    let c = ours_tokio(&spec.url, pending).await;
    let sub = c.subscribe(PUBSUB_SUBJECT).await.expect("subscribe");
    c.flush().await.expect("flush");
    let w = Window::open(spec);
    let reader = tokio::spawn(receive(sub, n));
    for _ in 0..n {
        c.publish(PUBSUB_SUBJECT, &payload).await.expect("publish");
    }
    c.flush().await.expect("flush");
    let counted = reader.await.expect("reader task");
    received(w, n, counted)
}

/// [`pubsub`] for async-nats: a reader task and the publishing task.
async fn pubsub_async_nats(spec: &ChildSpec, payload: Bytes, pending: Option<usize>) -> RunResult {
    let n = spec.messages;
    let c = async_nats_client(&spec.url, pending).await;
    let sub = c.subscribe(PUBSUB_SUBJECT).await.expect("subscribe");
    c.flush().await.expect("flush");
    let w = Window::open(spec);
    let reader = tokio::spawn(receive(sub, n));
    for _ in 0..n {
        c.publish(PUBSUB_SUBJECT, payload.clone()).await.expect("publish");
    }
    c.flush().await.expect("flush");
    let counted = reader.await.expect("reader task");
    received(w, n, counted)
}
