//! `nats_tokio::Client` as a [`TestClient`]: every async call is `block_on` on one shared multi-thread tokio
//! runtime. The client connects inside that runtime, so its driver task runs there too, on the runtime's
//! worker threads, while the test body blocks on its own thread.
//!
//! The calls go through the client's side of the seam ([`nats_client::seam::AsyncClient`]) where the seam
//! has them, so the suite exercises what `micro` and JetStream build on.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use nats_client::seam;
use nats_client::{ConnectOptions, Error, EventReceiver, Message, PendingLimits};
use nats_proto::{Headers, Payload, ServerInfo, Statistics};
use nats_tokio::{PendingReply, Responses, Subscriber};

use crate::{TestClient, TestSubscription};

/// The runtime every [`TokioClient`] of the process runs on (two worker threads), built on first use.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("conformance-tokio")
            .enable_all()
            .build()
            .expect("build the tokio runtime")
    })
}

/// Runs `future` to completion on the shared runtime, blocking this (non-runtime) thread.
fn block_on<F: Future>(future: F) -> F::Output {
    runtime().handle().block_on(future)
}

/// A `nats_tokio::Client` driven from blocking code (see the module documentation).
#[derive(Clone, Debug)]
pub struct TokioClient {
    client: nats_tokio::Client,
}

impl TokioClient {
    /// The async client inside.
    pub fn inner(&self) -> &nats_tokio::Client {
        &self.client
    }
}

/// A `nats_tokio::Subscriber` read from blocking code.
#[derive(Debug)]
pub struct TokioSubscription {
    sub: Subscriber,
}

impl TokioSubscription {
    /// The next message, or the reason the subscription ended (`Error::Closed` when it has none).
    fn ended(&self, next: Option<Message>) -> Result<Message, Error> {
        next.ok_or_else(|| self.sub.end_reason().unwrap_or(Error::Closed))
    }
}

/// A request of a [`TokioClient`] in flight; [`wait`](seam::PendingReply::wait) blocks on its reply.
#[derive(Debug)]
pub struct TokioPendingReply {
    reply: PendingReply,
}

/// The replies of [`TokioClient`]'s `request_many`, as a blocking iterator.
pub struct TokioReplies {
    replies: Responses,
}

impl Iterator for TokioReplies {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        block_on(self.replies.next())
    }
}

impl seam::PendingReply for TokioPendingReply {
    fn wait(self) -> Result<Message, Error> {
        block_on(self.reply)
    }
}

impl seam::Client for TokioClient {
    type Subscription = TokioSubscription;
    type PendingReply = TokioPendingReply;
    type Replies = TokioReplies;

    fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&Headers>,
        payload: Payload<'_>,
    ) -> Result<(), Error> {
        block_on(seam::AsyncClient::publish(&self.client, subject, reply, headers, payload))
    }

    fn request(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<Message, Error> {
        block_on(seam::AsyncClient::request(&self.client, subject, headers, payload, timeout))
    }

    fn request_later(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<TokioPendingReply, Error> {
        let reply = seam::AsyncClient::request_later(&self.client, subject, headers, payload, timeout)?;
        Ok(TokioPendingReply { reply })
    }

    fn request_many(
        &self,
        subject: &str,
        payload: Payload<'_>,
        timeout: Duration,
        stall: Option<Duration>,
        max: Option<usize>,
    ) -> Result<TokioReplies, Error> {
        let replies = block_on(seam::AsyncClient::request_many(&self.client, subject, payload, timeout, stall, max))?;
        Ok(TokioReplies { replies })
    }

    fn subscribe(&self, subject: &str, queue: Option<&str>) -> Result<TokioSubscription, Error> {
        let sub = block_on(seam::AsyncClient::subscribe(&self.client, subject, queue))?;
        Ok(TokioSubscription { sub })
    }

    fn drain_subscription(&self, sid: u64) -> Result<(), Error> {
        seam::AsyncClient::drain_subscription(&self.client, sid)
    }

    fn flush(&self) -> Result<(), Error> {
        block_on(seam::AsyncClient::flush(&self.client))
    }

    fn new_inbox(&self) -> String {
        seam::AsyncClient::new_inbox(&self.client)
    }

    fn events(&self) -> EventReceiver {
        seam::AsyncClient::events(&self.client)
    }
}

impl seam::Subscription for TokioSubscription {
    fn sid(&self) -> u64 {
        self.sub.sid()
    }

    fn next_message(&mut self) -> Option<Message> {
        block_on(self.sub.next())
    }

    fn next_timeout(&mut self, timeout: Duration) -> Result<Message, Error> {
        match block_on(async { tokio::time::timeout(timeout, self.sub.next()).await }) {
            Ok(next) => self.ended(next),
            Err(_elapsed) => Err(Error::Timeout),
        }
    }

    fn dropped(&self) -> u64 {
        self.sub.dropped()
    }

    fn pending(&self) -> usize {
        self.sub.pending().0
    }
}

impl TestClient for TokioClient {
    const NAME: &'static str = "nats-tokio";

    fn connect(options: ConnectOptions) -> Result<Self, Error> {
        // Inside the runtime: the driver task is spawned on it.
        let client = block_on(nats_tokio::Client::connect(options))?;
        Ok(TokioClient { client })
    }

    fn flush_timeout(&self, timeout: Duration) -> Result<(), Error> {
        block_on(self.client.flush_timeout(timeout))
    }

    fn drain(&self) -> Result<(), Error> {
        block_on(self.client.drain())
    }

    fn close(&self) {
        block_on(self.client.close());
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    fn statistics(&self) -> Statistics {
        self.client.statistics()
    }

    fn server_info(&self) -> Option<ServerInfo> {
        self.client.server_info()
    }

    fn max_payload(&self) -> usize {
        self.client.max_payload()
    }

    fn request_default(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
    ) -> Result<Message, Error> {
        match headers {
            Some(headers) => block_on(self.client.request_with_headers(subject, headers, payload)),
            None => block_on(self.client.request(subject, payload)),
        }
    }
}

impl TestSubscription for TokioSubscription {
    fn try_next(&mut self) -> Option<Message> {
        self.sub.try_next()
    }

    fn unsubscribe(&mut self) -> Result<(), Error> {
        block_on(self.sub.unsubscribe())
    }

    fn unsubscribe_after(&mut self, max: u64) -> Result<(), Error> {
        block_on(self.sub.unsubscribe_after(max))
    }

    fn pending_messages_and_bytes(&self) -> (usize, usize) {
        self.sub.pending()
    }

    fn set_pending_limits(&mut self, limits: PendingLimits) {
        self.sub.set_pending_limits(limits);
    }
}
