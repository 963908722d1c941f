//! Push consumers on an async client: the same as [`crate::blocking`]'s, as a `Stream`.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;

use super::{AsyncContext, AsyncJsMessage};
use crate::ack::AckState;
use crate::common::{link_change, push_setup, PushSetup};
use crate::error::{Error, JetStreamError};
use crate::model::ConsumerConfig;
use crate::push::{PushConsumer, PushEvent};
use nats_client::seam::{AsyncClient, AsyncSubscription, Timer};
use nats_client::{EventReceiver, Message};

/// The longest a push subscription waits without looking at its heartbeat timer.
const MAX_WAIT: Duration = Duration::from_secs(1);

type Publishing = Pin<Box<dyn Future<Output = Result<(), nats_client::Error>> + Send>>;

impl<T: AsyncClient> AsyncContext<T> {
    /// A push consumer of `stream` (see [`crate::blocking::Context::push_consumer`]).
    pub async fn push_consumer(&self, stream: &str, config: ConsumerConfig) -> Result<AsyncPushMessages<T>, Error> {
        let PushSetup { config, queue } = push_setup(config, || self.client.new_inbox());
        let sub = self.client.subscribe(&config.deliver_subject, queue.as_deref()).await?;
        let info = self.create_consumer(stream, &config).await?;
        let now = Instant::now();
        Ok(AsyncPushMessages {
            js: self.clone(),
            consumer: info.name,
            sub,
            machine: PushConsumer::new(Some(info.config.idle_heartbeat), now),
            events: self.client.events(),
            timer: self.client.timer(now + MAX_WAIT),
            answering: None,
            ended: false,
        })
    }
}

/// The messages of a push consumer, as a `Stream`: see [`AsyncContext::push_consumer`].
pub struct AsyncPushMessages<T: AsyncClient> {
    js: AsyncContext<T>,
    consumer: String,
    sub: T::Subscription,
    machine: PushConsumer<Message>,
    events: EventReceiver,
    timer: Box<dyn Timer>,
    /// A flow-control answer being published.
    answering: Option<Publishing>,
    ended: bool,
}

impl<T: AsyncClient> std::fmt::Debug for AsyncPushMessages<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncPushMessages").field("consumer", &self.consumer).finish_non_exhaustive()
    }
}

// Nothing is pinned in place: the future in flight is boxed.
impl<T: AsyncClient> Unpin for AsyncPushMessages<T> {}

impl<T: AsyncClient> AsyncPushMessages<T> {
    /// The consumer's name.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Times two heartbeat intervals passed with nothing from the server.
    pub fn missed_heartbeats(&self) -> u64 {
        self.machine.missed_heartbeats()
    }

    /// Flow-control requests (and stalls) answered so far.
    pub fn flow_control_answered(&self) -> u64 {
        self.machine.flow_control_answered()
    }

    /// The next message; `None` once the subscription ended (or after the consumer's deletion was reported).
    pub async fn next(&mut self) -> Option<Result<AsyncJsMessage<T>, Error>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<T: AsyncClient> Stream for AsyncPushMessages<T> {
    type Item = Result<AsyncJsMessage<T>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        loop {
            while let Poll::Ready(Some(event)) = this.events.poll_recv(cx) {
                if link_change(&event) == Some(true) {
                    this.machine.handle_reconnected(Instant::now());
                }
            }
            // Flow-control answers go out one at a time, in order, kept across polls.
            loop {
                if let Some(answering) = this.answering.as_mut() {
                    match answering.as_mut().poll(cx) {
                        Poll::Ready(Ok(())) => this.answering = None,
                        Poll::Ready(Err(e)) => {
                            this.answering = None;
                            return Poll::Ready(Some(Err(e.into())));
                        }
                        Poll::Pending => break,
                    }
                }
                let Some(subject) = this.machine.poll_reply() else { break };
                let client = this.js.client.clone();
                let subject = String::from_utf8_lossy(&subject).into_owned();
                this.answering = Some(Box::pin(async move { client.publish(&subject, None, None, "".into()).await }));
            }
            match this.machine.poll_event() {
                Some(PushEvent::Message(message)) => {
                    let client = this.js.client.clone();
                    return Poll::Ready(Some(Ok(AsyncJsMessage { message, client, acked: AckState::new() })));
                }
                Some(PushEvent::MissedHeartbeats) => {
                    return Poll::Ready(Some(Err(JetStreamError::MissedHeartbeats.into())))
                }
                Some(PushEvent::ConsumerDeleted) => {
                    this.ended = true;
                    let status = JetStreamError::Status { code: 409, description: "Consumer Deleted".into() };
                    return Poll::Ready(Some(Err(status.into())));
                }
                None => {}
            }
            match this.sub.poll_message(cx) {
                Poll::Ready(Ok(msg)) => {
                    this.machine.handle_message(Instant::now(), msg);
                    continue;
                }
                Poll::Ready(Err(e)) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Pending => {}
            }
            let now = Instant::now();
            this.timer.reset(this.machine.poll_timeout().unwrap_or(now + MAX_WAIT).min(now + MAX_WAIT));
            match this.timer.poll_fired(cx) {
                Poll::Ready(()) => this.machine.handle_timeout(Instant::now()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
