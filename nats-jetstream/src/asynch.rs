//! JetStream and Key/Value on an async client (`nats-tokio`, on tokio or smol): the same API as
//! [`crate::blocking`], with `.await`. Every call of [`crate::call::Api`] is sent as a request, pull consumers
//! are driven by [`crate::pull::PullConsumer`] on a subscription of their own, ordered consumers by
//! [`crate::ordered::OrderedConsumer`], and Key/Value sits on top.
//!
//! Continuous consumers ([`AsyncMessages`], [`AsyncOrdered`], [`AsyncWatch`]) are `futures_core::Stream`s
//! with an inherent `next().await`. They are cancel-safe: everything in flight (a pull being published, a
//! consumer being created) is kept in the stream, so dropping a `next()` future loses nothing. Every future
//! is `Send` (given a `Send` payload), so they can be spawned.
//!
//! Waiting for a deadline needs a timer: see [`crate::async_transport`] for why the default,
//! [`ThreadTimer`], needs no runtime, and [`AsyncContext::with_timer`] to use another.
//!
//! This module is the driver of the sans-IO parts, so unlike them it reads the clock.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use nats_jetstream::asynch::AsyncContext;
//! use nats_jetstream::model::{KvConfig, StreamConfig};
//!
//! let client = nats_tokio::connect("nats://127.0.0.1:4222").await?;
//! let js = AsyncContext::new(client);
//! js.create_stream(&StreamConfig { subjects: vec!["orders.>".into()], ..StreamConfig::new("ORDERS") }).await?;
//! let ack = js.publish("orders.new", "42 widgets").await?;
//! println!("stored as {} in {}", ack.seq, ack.stream);
//!
//! let kv = js.create_key_value(&KvConfig::new("settings")).await?;
//! let revision = kv.put("color", "blue").await?;
//! assert_eq!(kv.get("color").await?.map(|e| e.revision), Some(revision));
//! # Ok(())
//! # }
//! ```

#![allow(clippy::disallowed_methods)]

mod publish;

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use nats_client::Message;

use crate::ack::{AckKind, AckState, OwnedAckMetadata};
use crate::api::ApiPrefix;
use crate::async_transport::{
    boxed_timer, deadline_after, sleep_until, AsyncSubscription, AsyncTransport, ThreadTimer, Timer,
};
use crate::call::{Api, Call, PublishOptions};
use crate::common::{
    ack_metadata, ack_subject, apply_link, check_kv_stream, control_error, direct_entry, finish, is_fatal_create_error,
    is_stream_name_in_use, keys_request, kv_bucket_names, link_change, next_history_seq, ordered_base,
    ordered_consumer_name, ordered_event, stored_keys, watch_config, OrderedStep, WatchState, KV_STREAMS_SUBJECT,
    PUBLISH_RETRIES, PUBLISH_RETRY_WAIT,
};
use crate::error::JetStreamError;
use crate::kv::{self, CreateRetry, Entry};
use crate::model::{
    AccountInfo, ConsumerConfig, ConsumerInfo, CreateAction, DirectGetMessage, KvConfig, KvStatus, MsgGetRequest,
    PubAck, PurgeRequest, PurgeResponse, StoredMessage, StreamConfig, StreamInfo,
};
use crate::model::{Paged, Pager};
use crate::ordered::{OrderedConfig, OrderedConsumer, ResetReason};
use crate::pull::{ConsumeConfig, FetchConfig, PullConsumer, PullEvent, Termination};
use crate::transport::{ConnectionEvents, Error, Received};

pub use publish::AsyncPublishWindow;

pub use crate::common::{Watched, DEFAULT_TIMEOUT};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A JetStream context on an async client: a client, an API prefix (or domain), a timeout, and the kind of
/// timer its consumers wait with.
#[derive(Debug, Clone)]
pub struct AsyncContext<T> {
    client: T,
    api: Api,
    timeout: Duration,
    new_timer: fn(Instant) -> Box<dyn Timer>,
}

impl<T: AsyncTransport> AsyncContext<T> {
    fn with_api(client: T, api: Api) -> Self {
        Self { client, api, timeout: DEFAULT_TIMEOUT, new_timer: boxed_timer::<ThreadTimer> }
    }

    /// The default context: API prefix `$JS.API`, 5 s timeout, [`ThreadTimer`]s.
    pub fn new(client: T) -> Self {
        Self::with_api(client, Api::default())
    }

    /// The context of JetStream domain `domain` (`$JS.<domain>.API`).
    pub fn with_domain(client: T, domain: &str) -> Result<Self, Error> {
        Ok(Self::with_api(client, Api::new(ApiPrefix::with_domain(domain)?)))
    }

    /// The context of a custom API prefix (an account import).
    pub fn with_prefix(client: T, prefix: &str) -> Result<Self, Error> {
        Ok(Self::with_api(client, Api::new(ApiPrefix::custom(prefix)?)))
    }

    /// Sets the timeout of every API call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Makes consumers (and publish retries) wait with timers of type `Tm`, say the runtime's own, instead of
    /// the runtime-free [`ThreadTimer`].
    pub fn with_timer<Tm: Timer>(mut self) -> Self {
        self.new_timer = boxed_timer::<Tm>;
        self
    }

    /// The client underneath.
    pub fn client(&self) -> &T {
        &self.client
    }

    /// The API calls this context makes.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// Sends one call and reads its reply.
    pub async fn call<R>(&self, call: &Call<R>) -> Result<R, Error> {
        let reply = self.client.request(call.subject(), call.headers(), call.payload().clone(), self.timeout).await?;
        Ok(call.decode(reply.headers(), reply.payload_bytes())?)
    }

    // ---- account and streams ----

    /// Account usage and limits, domain and API level. Fails with `NoResponders` when JetStream is off.
    pub async fn account_info(&self) -> Result<AccountInfo, Error> {
        self.call(&self.api.account_info()).await
    }

    /// Creates a stream; succeeds without change when an identical one exists (10058 when it differs).
    pub async fn create_stream(&self, config: &StreamConfig) -> Result<StreamInfo, Error> {
        self.call(&self.api.create_stream(config)?).await
    }

    /// Updates a stream (some fields cannot change).
    pub async fn update_stream(&self, config: &StreamConfig) -> Result<StreamInfo, Error> {
        self.call(&self.api.update_stream(config)?).await
    }

    /// Creates the stream, or updates it when one of that name exists with another config.
    pub async fn create_or_update_stream(&self, config: &StreamConfig) -> Result<StreamInfo, Error> {
        match self.create_stream(config).await {
            Err(e) if is_stream_name_in_use(&e) => self.update_stream(config).await,
            other => other,
        }
    }

    /// A stream's config and state.
    pub async fn stream_info(&self, stream: &str) -> Result<StreamInfo, Error> {
        self.call(&self.api.stream_info(stream)?).await
    }

    /// Deletes a stream.
    pub async fn delete_stream(&self, stream: &str) -> Result<bool, Error> {
        self.call(&self.api.delete_stream(stream)?).await
    }

    /// Purges a stream (see [`PurgeRequest`] for filter, keep and sequence).
    pub async fn purge_stream(&self, stream: &str, request: &PurgeRequest) -> Result<PurgeResponse, Error> {
        self.call(&self.api.purge_stream(stream, request)?).await
    }

    /// Every stream name (all pages), of streams storing `subject` if given.
    pub async fn stream_names(&self, subject: Option<&str>) -> Result<Vec<String>, Error> {
        self.all_pages(|offset| Ok(self.api.stream_names(offset, subject))).await
    }

    /// Every stream's info (all pages).
    pub async fn streams(&self) -> Result<Vec<StreamInfo>, Error> {
        self.all_pages(|offset| Ok(self.api.stream_list(offset, None))).await
    }

    async fn all_pages<P: Paged>(
        &self,
        page: impl Fn(u64) -> Result<Call<P>, JetStreamError>,
    ) -> Result<Vec<P::Item>, Error> {
        let mut pager = Pager::new();
        let mut items = Vec::new();
        while let Some(offset) = pager.next_offset() {
            items.extend(pager.accept(self.call(&page(offset)?).await?));
        }
        Ok(items)
    }

    /// The message at `seq`, through the stream leader. Missing is the API error 10037.
    pub async fn get_message(&self, stream: &str, seq: u64) -> Result<StoredMessage, Error> {
        self.call(&self.api.get_message(stream, &MsgGetRequest::seq(seq))?).await
    }

    /// The last message stored on `subject`, through the stream leader.
    pub async fn get_last_message(&self, stream: &str, subject: &str) -> Result<StoredMessage, Error> {
        self.call(&self.api.get_message(stream, &MsgGetRequest::last_by_subject(subject))?).await
    }

    /// A message through any replica, for streams with `allow_direct` (else `NoResponders`).
    pub async fn direct_get(&self, stream: &str, request: &MsgGetRequest) -> Result<DirectGetMessage, Error> {
        self.call(&self.api.direct_get(stream, request)?).await
    }

    /// Deletes the message at `seq`; `erase` overwrites its data.
    pub async fn delete_message(&self, stream: &str, seq: u64, erase: bool) -> Result<bool, Error> {
        self.call(&self.api.delete_message(stream, seq, erase)?).await
    }

    // ---- publishing ----

    /// Publishes to a stream's subject and waits for the stream's acknowledgement.
    pub async fn publish(&self, subject: &str, payload: impl Into<Bytes>) -> Result<PubAck, Error> {
        self.publish_with(subject, payload, &PublishOptions::new()).await
    }

    /// Publishes with de-duplication and expectations. A "no responders" answer (no stream, or its leader
    /// being elected) is retried twice, 250 ms apart, within the timeout.
    pub async fn publish_with(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
        options: &PublishOptions,
    ) -> Result<PubAck, Error> {
        let call = self.api.publish(subject, payload, options)?;
        let deadline = deadline_after(Instant::now(), self.timeout);
        let mut attempt = 0;
        let mut timer: Option<Box<dyn Timer>> = None;
        loop {
            match self.call(&call).await {
                Err(Error::JetStream(JetStreamError::NoResponders))
                    if attempt < PUBLISH_RETRIES && Instant::now() + PUBLISH_RETRY_WAIT < deadline =>
                {
                    attempt += 1;
                    let at = Instant::now() + PUBLISH_RETRY_WAIT;
                    let timer = timer.get_or_insert_with(|| (self.new_timer)(at));
                    sleep_until(&mut **timer, at).await;
                }
                other => return other,
            }
        }
    }

    // ---- consumers ----

    /// Creates a consumer; fails with 10148 if one of that name exists with another config.
    pub async fn create_consumer(&self, stream: &str, config: &ConsumerConfig) -> Result<ConsumerInfo, Error> {
        self.call(&self.api.create_consumer(stream, config, CreateAction::Create)?).await
    }

    /// Updates an existing consumer; fails with 10149 if there is none.
    pub async fn update_consumer(&self, stream: &str, config: &ConsumerConfig) -> Result<ConsumerInfo, Error> {
        self.call(&self.api.create_consumer(stream, config, CreateAction::Update)?).await
    }

    /// Creates or updates a consumer.
    pub async fn create_or_update_consumer(
        &self,
        stream: &str,
        config: &ConsumerConfig,
    ) -> Result<ConsumerInfo, Error> {
        self.call(&self.api.create_consumer(stream, config, CreateAction::CreateOrUpdate)?).await
    }

    /// A consumer's config and state.
    pub async fn consumer_info(&self, stream: &str, consumer: &str) -> Result<ConsumerInfo, Error> {
        self.call(&self.api.consumer_info(stream, consumer)?).await
    }

    /// Deletes a consumer.
    pub async fn delete_consumer(&self, stream: &str, consumer: &str) -> Result<bool, Error> {
        self.call(&self.api.delete_consumer(stream, consumer)?).await
    }

    /// Every consumer name of a stream (all pages).
    pub async fn consumer_names(&self, stream: &str) -> Result<Vec<String>, Error> {
        self.all_pages(|offset| self.api.consumer_names(stream, offset)).await
    }

    /// Every consumer's info of a stream (all pages).
    pub async fn consumers(&self, stream: &str) -> Result<Vec<ConsumerInfo>, Error> {
        self.all_pages(|offset| self.api.consumer_list(stream, offset)).await
    }

    /// An ordered consumer of `stream`: every message (of the filter subjects) exactly once and in order,
    /// across consumer deletions, missed heartbeats and server restarts, through a chain of ephemeral
    /// consumers made by the client. Messages need no ack.
    pub async fn ordered(&self, stream: &str, config: OrderedConfig) -> Result<AsyncOrdered<T>, Error> {
        crate::api::validate_stream_name(stream)?;
        let inbox = self.client.new_inbox();
        // The inbox's unique token doubles as the chain's random name.
        let base = ordered_base(&inbox);
        let sub = self.client.subscribe(&inbox).await?;
        let now = Instant::now();
        let machine = OrderedConsumer::new(&base, config, now)?;
        Ok(AsyncOrdered {
            js: self.clone(),
            stream: stream.to_owned(),
            inbox,
            sub,
            machine,
            pull: None,
            consume: ConsumeConfig::default(),
            created: None,
            timer: (self.new_timer)(now),
            op: None,
            events: self.client.events(),
        })
    }

    /// A handle on a pull consumer (nothing is sent).
    pub fn pull_consumer(&self, stream: &str, consumer: &str) -> AsyncPullHandle<T> {
        AsyncPullHandle { js: self.clone(), stream: stream.to_owned(), consumer: consumer.to_owned() }
    }

    // ---- Key/Value ----

    /// Creates a Key/Value bucket (a stream `KV_<bucket>`).
    pub async fn create_key_value(&self, config: &KvConfig) -> Result<AsyncStore<T>, Error> {
        let info = self.create_stream(&config.to_stream_config()?).await?;
        Ok(AsyncStore { js: self.clone(), bucket: config.bucket.clone(), stream: info.config.name })
    }

    /// Changes a bucket's settings (history, TTL, limits, description...).
    pub async fn update_key_value(&self, config: &KvConfig) -> Result<AsyncStore<T>, Error> {
        let info = self.update_stream(&config.to_stream_config()?).await?;
        Ok(AsyncStore { js: self.clone(), bucket: config.bucket.clone(), stream: info.config.name })
    }

    /// Binds to an existing bucket; fails with 10059 ("stream not found") when there is none.
    pub async fn key_value(&self, bucket: &str) -> Result<AsyncStore<T>, Error> {
        kv::validate_bucket(bucket)?;
        let info = self.stream_info(&kv::stream_name(bucket)).await?;
        check_kv_stream(bucket, &info)?;
        Ok(AsyncStore { js: self.clone(), bucket: bucket.to_owned(), stream: info.config.name })
    }

    /// Deletes a bucket and everything in it.
    pub async fn delete_key_value(&self, bucket: &str) -> Result<bool, Error> {
        kv::validate_bucket(bucket)?;
        self.delete_stream(&kv::stream_name(bucket)).await
    }

    /// Every bucket name.
    pub async fn key_value_names(&self) -> Result<Vec<String>, Error> {
        Ok(kv_bucket_names(self.stream_names(Some(KV_STREAMS_SUBJECT)).await?))
    }
}

// ---- messages and acks ----

/// A message delivered by a consumer, with its acks.
#[derive(Debug)]
pub struct AsyncJsMessage<T> {
    /// The message: its subject is the stream subject it was stored under.
    pub message: Message,
    client: T,
    acked: AckState,
}

impl<T: AsyncTransport> AsyncJsMessage<T> {
    /// Delivery metadata from the reply subject: stream and consumer sequences, delivery count, pending.
    pub fn metadata(&self) -> Result<OwnedAckMetadata, JetStreamError> {
        ack_metadata(&self.message)
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        self.message.payload()
    }

    /// Sends an ack of `kind` without waiting for the server. Nothing is sent after a terminal ack (ADR-15).
    pub async fn ack_with(&mut self, kind: AckKind) -> Result<(), Error> {
        if !self.acked.should_send() {
            return Ok(());
        }
        self.client.publish(ack_subject(&self.message)?, None, None, kind.payload()).await?;
        self.acked.succeeded(&kind);
        Ok(())
    }

    /// Acknowledges: processed, do not redeliver.
    pub async fn ack(&mut self) -> Result<(), Error> {
        self.ack_with(AckKind::Ack).await
    }

    /// Acknowledges and waits until the server has stored the ack ("double ack").
    pub async fn double_ack(&mut self, timeout: Duration) -> Result<(), Error> {
        if !self.acked.should_send() {
            return Ok(());
        }
        let kind = AckKind::Ack;
        self.client.request(ack_subject(&self.message)?, None, kind.payload(), timeout).await?;
        self.acked.succeeded(&kind);
        Ok(())
    }

    /// Asks for redelivery, after `delay` if given.
    pub async fn nak(&mut self, delay: Option<Duration>) -> Result<(), Error> {
        self.ack_with(AckKind::Nak { delay }).await
    }

    /// Still working on it: resets the ack wait. May repeat.
    pub async fn in_progress(&mut self) -> Result<(), Error> {
        self.ack_with(AckKind::Progress).await
    }

    /// Never redeliver.
    pub async fn term(&mut self) -> Result<(), Error> {
        self.ack_with(AckKind::Term { reason: None }).await
    }
}

// ---- pull consumers ----

/// A pull consumer of one stream.
#[derive(Debug, Clone)]
pub struct AsyncPullHandle<T> {
    js: AsyncContext<T>,
    stream: String,
    consumer: String,
}

impl<T: AsyncTransport> AsyncPullHandle<T> {
    /// The consumer's info.
    pub async fn info(&self) -> Result<ConsumerInfo, Error> {
        self.js.consumer_info(&self.stream, &self.consumer).await
    }

    /// One pull: up to `config`'s batch or bytes, waiting up to its expiry. Returns what arrived; an error
    /// status (or a missing heartbeat) is an error only when nothing arrived.
    pub async fn fetch(&self, config: FetchConfig) -> Result<Vec<AsyncJsMessage<T>>, Error> {
        let client = &self.js.client;
        let inbox = client.new_inbox();
        let mut sub = client.subscribe(&inbox).await?;
        let now = Instant::now();
        let mut machine = PullConsumer::<Received>::fetch(config, now)?;
        let mut timer = (self.js.new_timer)(now);
        let mut out = Vec::new();
        loop {
            while let Some(pull) = machine.poll_pull() {
                let (subject, body) = self.js.api.pull(&self.stream, &self.consumer, &pull)?;
                client.publish(&subject, Some(&inbox), None, body).await?;
            }
            while let Some(event) = machine.poll_event() {
                match event {
                    PullEvent::Message(Received(message)) => {
                        out.push(AsyncJsMessage { message, client: client.clone(), acked: AckState::new() })
                    }
                    PullEvent::FetchDone { reason } => return finish(out, reason),
                    // A fetch only ends with FetchDone; the others are consume's.
                    _ => {}
                }
            }
            let now = Instant::now();
            let deadline = machine.poll_timeout().unwrap_or_else(|| deadline_after(now, self.js.timeout));
            match sub.next_until(&mut *timer, deadline).await {
                Ok(msg) => machine.handle_message(Instant::now(), Received(msg)),
                Err(nats_client::Error::Timeout) => machine.handle_timeout(Instant::now()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Messages for ever, as a `Stream`: pulls ahead (half of `config`'s maximum in flight, re-pulled as they
    /// arrive), keeps going across missed heartbeats and reconnects, and ends only when the consumer is
    /// deleted. Errors the server reports about a pull are yielded and consuming goes on.
    pub async fn messages(&self, config: ConsumeConfig) -> Result<AsyncMessages<T>, Error> {
        let inbox = self.js.client.new_inbox();
        let sub = self.js.client.subscribe(&inbox).await?;
        let now = Instant::now();
        let machine = PullConsumer::consume(config, now)?;
        Ok(AsyncMessages {
            handle: self.clone(),
            inbox,
            sub,
            machine,
            timer: (self.js.new_timer)(now),
            sending: None,
            events: self.js.client.events(),
            ended: None,
            missed_heartbeats: 0,
        })
    }

    /// The next message, waiting up to `expires`; `None` when there is none.
    pub async fn next(&self, expires: Duration) -> Result<Option<AsyncJsMessage<T>>, Error> {
        Ok(self.fetch(FetchConfig::next().with_expires(expires)).await?.into_iter().next())
    }
}

/// A continuous consume of a pull consumer: a `Stream` of messages (see [`AsyncPullHandle::messages`]).
pub struct AsyncMessages<T: AsyncTransport> {
    handle: AsyncPullHandle<T>,
    inbox: String,
    sub: T::Subscription,
    machine: PullConsumer<Received>,
    timer: Box<dyn Timer>,
    /// A pull request being published.
    sending: Option<BoxFuture<Result<(), Error>>>,
    events: T::Events,
    ended: Option<Termination>,
    missed_heartbeats: u64,
}

impl<T: AsyncTransport + fmt::Debug> fmt::Debug for AsyncMessages<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncMessages")
            .field("handle", &self.handle)
            .field("inbox", &self.inbox)
            .field("machine", &self.machine)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

// Nothing is pinned in place: the futures in flight are boxed.
impl<T: AsyncTransport> Unpin for AsyncMessages<T> {}

impl<T: AsyncTransport> AsyncMessages<T> {
    /// Times the server went silent for 2 × the heartbeat (each time the consume pulled afresh).
    pub fn missed_heartbeats(&self) -> u64 {
        self.missed_heartbeats
    }

    /// Stops: no more pulls; the stream ends.
    pub fn stop(&mut self) {
        self.machine.stop();
    }

    /// Why the consume ended, once it has.
    pub fn ended(&self) -> Option<&Termination> {
        self.ended.as_ref()
    }

    /// The next message; `None` once the consume has ended.
    pub async fn next(&mut self) -> Option<Result<AsyncJsMessage<T>, Error>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<T: AsyncTransport> Stream for AsyncMessages<T> {
    type Item = Result<AsyncJsMessage<T>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let js = &this.handle.js;
        loop {
            // Registers the task for the next event too: a reconnect wakes the stream to pull afresh.
            while let Poll::Ready(Some(event)) = this.events.poll_next_event(cx) {
                if let Some(up) = link_change(&event) {
                    apply_link(&mut this.machine, up, Instant::now());
                }
            }
            if let Some(sending) = this.sending.as_mut() {
                let sent = ready!(sending.as_mut().poll(cx));
                this.sending = None;
                if let Err(e) = sent {
                    return Poll::Ready(Some(Err(e)));
                }
            }
            if let Some(pull) = this.machine.poll_pull() {
                let (subject, body) = match js.api.pull(&this.handle.stream, &this.handle.consumer, &pull) {
                    Ok(request) => request,
                    Err(e) => return Poll::Ready(Some(Err(e.into()))),
                };
                this.sending = Some(publish_pull(js.client.clone(), subject, this.inbox.clone(), body));
                continue;
            }
            while let Some(event) = this.machine.poll_event() {
                match event {
                    PullEvent::Message(Received(message)) => {
                        let client = js.client.clone();
                        return Poll::Ready(Some(Ok(AsyncJsMessage { message, client, acked: AckState::new() })));
                    }
                    PullEvent::Error(control) => return Poll::Ready(Some(Err(control_error(&control).into()))),
                    PullEvent::Terminated { reason } => {
                        this.ended = Some(reason);
                        return Poll::Ready(None);
                    }
                    PullEvent::MissingHeartbeat => this.missed_heartbeats += 1,
                    PullEvent::Warning(_) | PullEvent::FetchDone { .. } => {}
                }
            }
            if this.ended.is_some() || this.machine.is_finished() {
                return Poll::Ready(None);
            }
            if let Err(e) = ready!(poll_wait(&mut this.sub, &mut *this.timer, &mut this.machine, None, cx)) {
                return Poll::Ready(Some(Err(e)));
            }
        }
    }
}

/// Publishes a pull request whose messages come to `inbox`.
fn publish_pull<T: AsyncTransport>(
    client: T,
    subject: String,
    inbox: String,
    body: Bytes,
) -> BoxFuture<Result<(), Error>> {
    Box::pin(async move { Ok(client.publish(&subject, Some(&inbox), None, body).await?) })
}

/// Waits for the next message of `sub` (or the machine's timer, or the `other` deadline) and feeds the
/// machine. `Ready` once it has been fed.
fn poll_wait<S: AsyncSubscription>(
    sub: &mut S,
    timer: &mut dyn Timer,
    machine: &mut PullConsumer<Received>,
    other: Option<Instant>,
    cx: &mut TaskContext<'_>,
) -> Poll<Result<(), Error>> {
    match sub.poll_message(cx) {
        Poll::Ready(Ok(msg)) => {
            machine.handle_message(Instant::now(), Received(msg));
            return Poll::Ready(Ok(()));
        }
        Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
        Poll::Pending => {}
    }
    let deadline = match (machine.poll_timeout(), other) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    // Without a timer only a message can move the machine, and the subscription wakes us for that.
    let Some(deadline) = deadline else { return Poll::Pending };
    timer.reset(deadline);
    ready!(timer.poll_fired(cx));
    machine.handle_timeout(Instant::now());
    Poll::Ready(Ok(()))
}

// ---- ordered consumers ----

/// What an ordered consumer has in flight besides waiting.
enum Op {
    /// Deleting an old consumer of the chain (best effort).
    Delete(BoxFuture<()>),
    /// Creating the consumer of a serial.
    Create(u64, BoxFuture<Result<ConsumerInfo, Error>>),
    /// Publishing a pull request.
    Pull(BoxFuture<Result<(), Error>>),
}

/// An ordered consumer, as a `Stream`: see [`AsyncContext::ordered`]. Yields messages in stream order, each
/// once; it never ends by itself.
pub struct AsyncOrdered<T: AsyncTransport> {
    js: AsyncContext<T>,
    stream: String,
    inbox: String,
    sub: T::Subscription,
    machine: OrderedConsumer,
    /// The serial of the consumer being pulled, and its pull machine.
    pull: Option<(u64, PullConsumer<Received>)>,
    consume: ConsumeConfig,
    /// The reply to the last successful create.
    created: Option<ConsumerInfo>,
    timer: Box<dyn Timer>,
    op: Option<Op>,
    events: T::Events,
}

impl<T: AsyncTransport + fmt::Debug> fmt::Debug for AsyncOrdered<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncOrdered")
            .field("js", &self.js)
            .field("stream", &self.stream)
            .field("inbox", &self.inbox)
            .field("machine", &self.machine)
            .finish_non_exhaustive()
    }
}

// Nothing is pinned in place: the futures in flight are boxed.
impl<T: AsyncTransport> Unpin for AsyncOrdered<T> {}

impl<T: AsyncTransport> AsyncOrdered<T> {
    /// Messages the current consumer had pending when it was created (a watch's initial data).
    fn initial_pending(&self) -> Option<u64> {
        self.created.as_ref().map(|c| c.num_pending)
    }

    /// Times the chain moved to a new consumer.
    pub fn resets(&self) -> u64 {
        self.machine.resets().0
    }

    /// The next message. It never ends by itself: `None` is not returned.
    pub async fn next(&mut self) -> Option<Result<AsyncJsMessage<T>, Error>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// One step: a message, `Ok(None)` after any other progress (an old consumer deleted, a consumer created,
    /// a pull sent, a message or timeout fed to the machines), or `Pending` with nothing to do.
    fn poll_step(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<Option<AsyncJsMessage<T>>, Error>> {
        while let Poll::Ready(Some(event)) = self.events.poll_next_event(cx) {
            match link_change(&event) {
                // The chain's consumer may be gone with the server: start a new one after the last delivered.
                Some(true) => {
                    self.machine.reset(ResetReason::Reconnected);
                    self.pull = None;
                }
                Some(false) => {
                    if let Some((_, pull)) = self.pull.as_mut() {
                        pull.handle_disconnected(Instant::now());
                    }
                }
                None => {}
            }
        }
        loop {
            match self.op.as_mut() {
                None => {}
                Some(Op::Delete(deleting)) => {
                    ready!(deleting.as_mut().poll(cx));
                    self.op = None;
                    continue;
                }
                Some(Op::Pull(sending)) => {
                    let sent = ready!(sending.as_mut().poll(cx));
                    self.op = None;
                    sent?;
                    continue;
                }
                Some(Op::Create(serial, creating)) => {
                    let serial = *serial;
                    let created = ready!(creating.as_mut().poll(cx));
                    self.op = None;
                    let now = Instant::now();
                    match created {
                        Ok(info) => {
                            self.machine.create_succeeded(serial);
                            self.created = Some(info);
                            self.pull = Some((serial, PullConsumer::consume(self.consume.clone(), now)?));
                        }
                        Err(e) => {
                            self.machine.create_failed(serial, now);
                            if is_fatal_create_error(&e) {
                                return Poll::Ready(Err(e));
                            }
                        }
                    }
                    return Poll::Ready(Ok(None));
                }
            }
            let now = Instant::now();
            if let Some(name) = self.machine.poll_delete() {
                let (js, stream) = (self.js.clone(), self.stream.clone());
                // Best effort: an ephemeral consumer also goes away on its own.
                self.op = Some(Op::Delete(Box::pin(async move {
                    let _ = js.delete_consumer(&stream, &name).await;
                })));
                continue;
            }
            if let Some(config) = self.machine.poll_create(now) {
                let serial = self.machine.serial();
                let (js, stream) = (self.js.clone(), self.stream.clone());
                self.op = Some(Op::Create(serial, Box::pin(async move { js.create_consumer(&stream, &config).await })));
                continue;
            }
            let Some((serial, pull)) = self.pull.as_mut() else {
                // Waiting for a create's backoff: wait on the subscription too (stale messages are dropped).
                return match self.sub.poll_message(cx) {
                    Poll::Ready(Ok(_)) => Poll::Ready(Ok(None)),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
                    Poll::Pending => {
                        let due = self.machine.poll_timeout().unwrap_or_else(|| now + Duration::from_millis(50));
                        self.timer.reset(due);
                        ready!(self.timer.poll_fired(cx));
                        Poll::Ready(Ok(None))
                    }
                };
            };
            if let Some(request) = pull.poll_pull() {
                let name = ordered_consumer_name(&self.machine, *serial);
                let (subject, body) = self.js.api.pull(&self.stream, &name, &request)?;
                self.op = Some(Op::Pull(publish_pull(self.js.client.clone(), subject, self.inbox.clone(), body)));
                continue;
            }
            while let Some(event) = pull.poll_event() {
                match ordered_event(&mut self.machine, event) {
                    OrderedStep::Deliver(message) => {
                        let client = self.js.client.clone();
                        return Poll::Ready(Ok(Some(AsyncJsMessage { message, client, acked: AckState::no_ack() })));
                    }
                    OrderedStep::Reset => {
                        self.pull = None;
                        return Poll::Ready(Ok(None));
                    }
                    OrderedStep::Skip => {}
                }
            }
            ready!(poll_wait(&mut self.sub, &mut *self.timer, pull, self.machine.poll_timeout(), cx))?;
            return Poll::Ready(Ok(None));
        }
    }
}

impl<T: AsyncTransport> Stream for AsyncOrdered<T> {
    type Item = Result<AsyncJsMessage<T>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match ready!(this.poll_step(cx)) {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

// ---- Key/Value ----

/// A Key/Value watch, as a `Stream`: see [`AsyncStore::watch`]. It never ends by itself.
pub struct AsyncWatch<T: AsyncTransport> {
    ordered: AsyncOrdered<T>,
    state: WatchState,
}

impl<T: AsyncTransport + fmt::Debug> fmt::Debug for AsyncWatch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncWatch").field("ordered", &self.ordered).field("state", &self.state).finish()
    }
}

impl<T: AsyncTransport> AsyncWatch<T> {
    /// The next entry or marker. It never ends by itself: `None` is not returned.
    pub async fn next(&mut self) -> Option<Result<Watched, Error>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<T: AsyncTransport> Stream for AsyncWatch<T> {
    type Item = Result<Watched, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(queued) = this.state.take_queued() {
            return Poll::Ready(Some(Ok(queued)));
        }
        loop {
            let step = ready!(this.ordered.poll_step(cx)).map(|m| m.map(|m| m.message));
            if let Some(out) = this.state.on_step(this.ordered.initial_pending(), step) {
                return Poll::Ready(Some(out));
            }
        }
    }
}

/// A Key/Value bucket.
#[derive(Debug, Clone)]
pub struct AsyncStore<T> {
    js: AsyncContext<T>,
    bucket: String,
    stream: String,
}

impl<T: AsyncTransport> AsyncStore<T> {
    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn write(&self, key: &str, headers: Option<nats_proto::Headers>, value: Bytes) -> Result<u64, Error> {
        let call = self.js.api.kv_write(&self.bucket, key, headers, value)?;
        Ok(self.js.call(&call).await?.seq)
    }

    /// Sets `key` to `value`; returns the new revision.
    pub async fn put(&self, key: &str, value: impl Into<Bytes>) -> Result<u64, Error> {
        kv::validate_put_key(key)?;
        self.write(key, None, value.into()).await
    }

    /// The latest entry of `key`; `None` when it never had a value or was deleted or purged.
    pub async fn get(&self, key: &str) -> Result<Option<Entry>, Error> {
        Ok(self.entry(key).await?.filter(|e| !e.operation.is_marker()))
    }

    /// The latest entry of `key`, delete and purge markers included.
    pub async fn entry(&self, key: &str) -> Result<Option<Entry>, Error> {
        kv::validate_key(key)?;
        let call = self.js.api.direct_get_last(&self.stream, &crate::api::kv_subject(&self.bucket, key))?;
        self.direct(call).await
    }

    /// The entry at `revision` if it belongs to `key`.
    pub async fn entry_at(&self, key: &str, revision: u64) -> Result<Option<Entry>, Error> {
        kv::validate_key(key)?;
        let entry = self.direct(self.js.api.direct_get(&self.stream, &MsgGetRequest::seq(revision))?).await?;
        Ok(entry.filter(|e| e.key == key))
    }

    async fn direct(&self, call: Call<DirectGetMessage>) -> Result<Option<Entry>, Error> {
        direct_entry(&self.bucket, self.js.call(&call).await)
    }

    /// Sets `key` only if its latest revision is `revision`; a mismatch is the API error 10071 (or 10164).
    pub async fn update(&self, key: &str, value: impl Into<Bytes>, revision: u64) -> Result<u64, Error> {
        kv::validate_put_key(key)?;
        self.write(key, Some(kv::update_headers(revision)), value.into()).await
    }

    /// Sets `key` only if it has no value (never set, deleted or purged); else the API error 10071.
    pub async fn create(&self, key: &str, value: impl Into<Bytes>) -> Result<u64, Error> {
        kv::validate_put_key(key)?;
        let value = value.into();
        let error = match self.write(key, Some(kv::create_headers(None)), value.clone()).await {
            Err(Error::JetStream(e)) => e,
            other => return other,
        };
        let latest = self.entry(key).await?.map(|e| (e.operation, e.revision));
        match kv::after_create_failed(&error, latest) {
            CreateRetry::Update { revision } => self.update(key, value, revision).await,
            CreateRetry::KeyExists | CreateRetry::Fail => Err(error.into()),
        }
    }

    /// Marks `key` deleted (its history is kept).
    pub async fn delete(&self, key: &str) -> Result<u64, Error> {
        kv::validate_key(key)?;
        self.write(key, Some(kv::delete_headers(None)), Bytes::new()).await
    }

    /// Marks `key` purged and drops its history.
    pub async fn purge(&self, key: &str) -> Result<u64, Error> {
        kv::validate_key(key)?;
        self.write(key, Some(kv::purge_headers(None, None)), Bytes::new()).await
    }

    /// The bucket's status: values, history, TTL, bytes.
    pub async fn status(&self) -> Result<KvStatus, Error> {
        Ok(KvStatus::from_stream_info(self.js.stream_info(&self.stream).await?)?)
    }

    /// Every revision of `key` still stored, oldest first, markers included; empty when none.
    pub async fn history(&self, key: &str) -> Result<Vec<Entry>, Error> {
        kv::validate_key(key)?;
        let subject = crate::api::kv_subject(&self.bucket, key);
        let mut out = Vec::new();
        let mut seq = 1;
        loop {
            let call = self.js.api.direct_get(&self.stream, &MsgGetRequest::next_by_subject(seq, &subject))?;
            match self.direct(call).await? {
                Some(entry) => {
                    seq = next_history_seq(seq, &entry)?;
                    out.push(entry);
                }
                None => return Ok(out),
            }
        }
    }

    /// Watches `filter` (a key, or `*` / `>` patterns; `>` for the whole bucket): first the latest entry of
    /// every matching key, then [`Watched::InitialDone`], then every change as it happens, across server
    /// restarts. Delete and purge markers are entries too (see [`Entry::operation`]).
    pub async fn watch(&self, filter: &str) -> Result<AsyncWatch<T>, Error> {
        let config = watch_config(&self.bucket, filter)?;
        let ordered = self.js.ordered(&self.stream, config).await?;
        Ok(AsyncWatch { ordered, state: WatchState::new(self.bucket.clone()) })
    }

    /// Every key with a value (deleted and purged keys left out).
    pub async fn keys(&self) -> Result<Vec<String>, Error> {
        let call = self.js.api.stream_info_with(&self.stream, &keys_request(&self.bucket))?;
        let info = self.js.call(&call).await?;
        let mut keys = Vec::new();
        for key in stored_keys(&self.bucket, &info) {
            if self.get(key).await?.is_some() {
                keys.push(key.to_owned());
            }
        }
        keys.sort();
        Ok(keys)
    }
}
