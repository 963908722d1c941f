//! This client's side of the one seam ([`nats_client::seam`]): what `micro` and JetStream build on. The timer
//! it gives is the runtime's the client was connected on (tokio's or smol's).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use nats_client::seam::{self, Timer};
use nats_client::{EventReceiver, Message};
use nats_proto::{Headers, Payload};

use crate::{Client, Error, PendingReply, Responses, Subscriber};

impl seam::AsyncClient for Client {
    type Subscription = Subscriber;
    type PendingReply = PendingReply;
    type Replies = Responses;

    async fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&Headers>,
        payload: Payload<'_>,
    ) -> Result<(), Error> {
        self.publish_inner(subject, reply, headers, payload).await
    }

    async fn request(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<Message, Error> {
        self.send_request(subject, headers, payload, timeout).await
    }

    fn request_later(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<PendingReply, Error> {
        self.send_request_later(subject, headers, payload, timeout)
    }

    async fn request_many(
        &self,
        subject: &str,
        payload: Payload<'_>,
        timeout: Duration,
        stall: Option<Duration>,
        max: Option<usize>,
    ) -> Result<Responses, Error> {
        Client::request_many(self, subject, payload, timeout, stall, max).await
    }

    async fn subscribe(&self, subject: &str, queue: Option<&str>) -> Result<Subscriber, Error> {
        self.subscribe_inner(subject, queue)
    }

    fn drain_subscription(&self, sid: u64) -> Result<(), Error> {
        self.shared().drain_subscription(sid)
    }

    async fn flush(&self) -> Result<(), Error> {
        Client::flush(self).await
    }

    fn new_inbox(&self) -> String {
        Client::new_inbox(self)
    }

    fn events(&self) -> EventReceiver {
        self.shared().events()
    }

    fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        self.new_timer(deadline)
    }
}

impl seam::AsyncSubscription for Subscriber {
    fn sid(&self) -> u64 {
        Subscriber::sid(self)
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, Error>> {
        Pin::new(&mut *self).poll_next(cx).map(|next| next.ok_or_else(|| self.end_reason().unwrap_or(Error::Closed)))
    }

    fn dropped(&self) -> u64 {
        Subscriber::dropped(self)
    }
}

impl seam::AsyncReplies for Responses {
    fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        Pin::new(self).poll_next(cx)
    }
}
