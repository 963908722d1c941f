//! `ingest`: receiving a stream of MSG frames from the fake server (in its own process, started by the parent),
//! which writes them as fast as the socket takes them after the client's SUB.

use super::{async_nats_client, ours_blocking, ours_tokio, receive, received, runtime, Window, SILENCE};
use crate::spec::{ChildSpec, Client, RunResult};

/// The subject the fake server streams on.
const SUBJECT: &str = "ingest";

/// Receives `spec.messages` frames with `client`, whose subscription holds them all (no drops while it catches
/// up).
pub(super) fn ingest(spec: &ChildSpec, client: Client) -> RunResult {
    let n = spec.messages;
    // Each arm closes its window while its client is still connected, so that the fake server has not left yet
    // when the others' CPU is read.
    match client {
        Client::OursBlocking => {
            let c = ours_blocking(&spec.url, Some(n));
            let mut sub = c.subscribe(SUBJECT).expect("subscribe");
            let w = Window::open(spec);
            let mut got = 0;
            while got < n && sub.next_timeout(SILENCE).is_ok() {
                got += 1;
            }
            received(w, n, (got, got < n))
        }
        Client::OursTokio => runtime().block_on(async {
            let c = ours_tokio(&spec.url, Some(n)).await;
            let sub = c.subscribe(SUBJECT).await.expect("subscribe");
            let w = Window::open(spec);
            let counted = receive(sub, n).await;
            received(w, n, counted)
        }),
        Client::AsyncNats => runtime().block_on(async {
            let c = async_nats_client(&spec.url, Some(n)).await;
            let sub = c.subscribe(SUBJECT).await.expect("subscribe");
            let w = Window::open(spec);
            let counted = receive(sub, n).await;
            received(w, n, counted)
        }),
        _ => unreachable!("no {} ingest here", client.name()),
    }
}
