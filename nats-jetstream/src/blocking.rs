//! JetStream and Key/Value on a blocking client: every call of [`crate::call::Api`] sent as a request, pull
//! consumers driven by [`crate::pull::PullConsumer`] on a subscription of their own, and Key/Value on top.
//!
//! This module is the driver of the sans-IO parts, so unlike them it reads the clock and sleeps.
//!
//! ```no_run
//! use nats_jetstream::blocking::Context;
//! use nats_jetstream::model::{KvConfig, StreamConfig};
//!
//! let client = nats_blocking::connect("nats://127.0.0.1:4222")?;
//! let js = Context::new(client);
//! js.create_stream(&StreamConfig { subjects: vec!["orders.>".into()], ..StreamConfig::new("ORDERS") })?;
//! let ack = js.publish("orders.new", "42 widgets")?;
//! println!("stored as {} in {}", ack.seq, ack.stream);
//!
//! let kv = js.create_key_value(&KvConfig::new("settings"))?;
//! let revision = kv.put("color", "blue")?;
//! assert_eq!(kv.get("color")?.map(|e| e.revision), Some(revision));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use nats_client::Message;

use crate::ack::{AckKind, AckState, OwnedAckMetadata};
use crate::api::ApiPrefix;
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
use crate::transport::{ConnectionEvents, Error, Received, Subscription, Transport};

mod publish;

pub use publish::PublishWindow;

pub use crate::common::{Watched, DEFAULT_TIMEOUT};

/// A JetStream context: a client, an API prefix (or domain) and a timeout.
#[derive(Debug, Clone)]
pub struct Context<T> {
    client: T,
    api: Api,
    timeout: Duration,
}

impl<T: Transport> Context<T> {
    /// The default context: API prefix `$JS.API`, 5 s timeout.
    pub fn new(client: T) -> Self {
        Self { client, api: Api::default(), timeout: DEFAULT_TIMEOUT }
    }

    /// The context of JetStream domain `domain` (`$JS.<domain>.API`).
    pub fn with_domain(client: T, domain: &str) -> Result<Self, Error> {
        Ok(Self { client, api: Api::new(ApiPrefix::with_domain(domain)?), timeout: DEFAULT_TIMEOUT })
    }

    /// The context of a custom API prefix (an account import).
    pub fn with_prefix(client: T, prefix: &str) -> Result<Self, Error> {
        Ok(Self { client, api: Api::new(ApiPrefix::custom(prefix)?), timeout: DEFAULT_TIMEOUT })
    }

    /// Sets the timeout of every API call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
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
    pub fn call<R>(&self, call: &Call<R>) -> Result<R, Error> {
        let reply = self.client.request(call.subject(), call.headers(), call.payload().clone(), self.timeout)?;
        Ok(call.decode(reply.headers(), reply.payload_bytes())?)
    }

    // ---- account and streams ----

    /// Account usage and limits, domain and API level. Fails with `NoResponders` when JetStream is off.
    pub fn account_info(&self) -> Result<AccountInfo, Error> {
        self.call(&self.api.account_info())
    }

    /// Creates a stream; succeeds without change when an identical one exists (10058 when it differs).
    pub fn create_stream(&self, config: &StreamConfig) -> Result<StreamInfo, Error> {
        self.call(&self.api.create_stream(config)?)
    }

    /// Updates a stream (some fields cannot change).
    pub fn update_stream(&self, config: &StreamConfig) -> Result<StreamInfo, Error> {
        self.call(&self.api.update_stream(config)?)
    }

    /// Creates the stream, or updates it when one of that name exists with another config.
    pub fn create_or_update_stream(&self, config: &StreamConfig) -> Result<StreamInfo, Error> {
        match self.create_stream(config) {
            Err(e) if is_stream_name_in_use(&e) => self.update_stream(config),
            other => other,
        }
    }

    /// A stream's config and state.
    pub fn stream_info(&self, stream: &str) -> Result<StreamInfo, Error> {
        self.call(&self.api.stream_info(stream)?)
    }

    /// Deletes a stream.
    pub fn delete_stream(&self, stream: &str) -> Result<bool, Error> {
        self.call(&self.api.delete_stream(stream)?)
    }

    /// Purges a stream (see [`PurgeRequest`] for filter, keep and sequence).
    pub fn purge_stream(&self, stream: &str, request: &PurgeRequest) -> Result<PurgeResponse, Error> {
        self.call(&self.api.purge_stream(stream, request)?)
    }

    /// Every stream name (all pages), of streams storing `subject` if given.
    pub fn stream_names(&self, subject: Option<&str>) -> Result<Vec<String>, Error> {
        self.all_pages(|offset| Ok(self.api.stream_names(offset, subject)))
    }

    /// Every stream's info (all pages).
    pub fn streams(&self) -> Result<Vec<StreamInfo>, Error> {
        self.all_pages(|offset| Ok(self.api.stream_list(offset, None)))
    }

    fn all_pages<P: Paged>(
        &self,
        page: impl Fn(u64) -> Result<Call<P>, JetStreamError>,
    ) -> Result<Vec<P::Item>, Error> {
        let mut pager = Pager::new();
        let mut items = Vec::new();
        while let Some(offset) = pager.next_offset() {
            items.extend(pager.accept(self.call(&page(offset)?)?));
        }
        Ok(items)
    }

    /// The message at `seq`, through the stream leader. Missing is the API error 10037.
    pub fn get_message(&self, stream: &str, seq: u64) -> Result<StoredMessage, Error> {
        self.call(&self.api.get_message(stream, &MsgGetRequest::seq(seq))?)
    }

    /// The last message stored on `subject`, through the stream leader.
    pub fn get_last_message(&self, stream: &str, subject: &str) -> Result<StoredMessage, Error> {
        self.call(&self.api.get_message(stream, &MsgGetRequest::last_by_subject(subject))?)
    }

    /// A message through any replica, for streams with `allow_direct` (else `NoResponders`).
    pub fn direct_get(&self, stream: &str, request: &MsgGetRequest) -> Result<DirectGetMessage, Error> {
        self.call(&self.api.direct_get(stream, request)?)
    }

    /// Deletes the message at `seq`; `erase` overwrites its data.
    pub fn delete_message(&self, stream: &str, seq: u64, erase: bool) -> Result<bool, Error> {
        self.call(&self.api.delete_message(stream, seq, erase)?)
    }

    // ---- publishing ----

    /// Publishes to a stream's subject and waits for the stream's acknowledgement.
    pub fn publish(&self, subject: &str, payload: impl Into<Bytes>) -> Result<PubAck, Error> {
        self.publish_with(subject, payload, &PublishOptions::new())
    }

    /// Publishes with de-duplication and expectations. A "no responders" answer (no stream, or its leader
    /// being elected) is retried twice, 250 ms apart, within the timeout.
    pub fn publish_with(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
        options: &PublishOptions,
    ) -> Result<PubAck, Error> {
        let call = self.api.publish(subject, payload, options)?;
        let deadline = Instant::now() + self.timeout;
        let mut attempt = 0;
        loop {
            match self.call(&call) {
                Err(Error::JetStream(JetStreamError::NoResponders))
                    if attempt < PUBLISH_RETRIES && Instant::now() + PUBLISH_RETRY_WAIT < deadline =>
                {
                    attempt += 1;
                    std::thread::sleep(PUBLISH_RETRY_WAIT);
                }
                other => return other,
            }
        }
    }

    // ---- consumers ----

    /// Creates a consumer; fails with 10148 if one of that name exists with another config.
    pub fn create_consumer(&self, stream: &str, config: &ConsumerConfig) -> Result<ConsumerInfo, Error> {
        self.call(&self.api.create_consumer(stream, config, CreateAction::Create)?)
    }

    /// Updates an existing consumer; fails with 10149 if there is none.
    pub fn update_consumer(&self, stream: &str, config: &ConsumerConfig) -> Result<ConsumerInfo, Error> {
        self.call(&self.api.create_consumer(stream, config, CreateAction::Update)?)
    }

    /// Creates or updates a consumer.
    pub fn create_or_update_consumer(&self, stream: &str, config: &ConsumerConfig) -> Result<ConsumerInfo, Error> {
        self.call(&self.api.create_consumer(stream, config, CreateAction::CreateOrUpdate)?)
    }

    /// A consumer's config and state.
    pub fn consumer_info(&self, stream: &str, consumer: &str) -> Result<ConsumerInfo, Error> {
        self.call(&self.api.consumer_info(stream, consumer)?)
    }

    /// Deletes a consumer.
    pub fn delete_consumer(&self, stream: &str, consumer: &str) -> Result<bool, Error> {
        self.call(&self.api.delete_consumer(stream, consumer)?)
    }

    /// Every consumer name of a stream (all pages).
    pub fn consumer_names(&self, stream: &str) -> Result<Vec<String>, Error> {
        self.all_pages(|offset| self.api.consumer_names(stream, offset))
    }

    /// Every consumer's info of a stream (all pages).
    pub fn consumers(&self, stream: &str) -> Result<Vec<ConsumerInfo>, Error> {
        self.all_pages(|offset| self.api.consumer_list(stream, offset))
    }

    /// An ordered consumer of `stream`: every message (of the filter subjects) exactly once and in order,
    /// across consumer deletions, missed heartbeats and server restarts, through a chain of ephemeral
    /// consumers made by the client. Messages need no ack.
    pub fn ordered(&self, stream: &str, config: OrderedConfig) -> Result<Ordered<T>, Error> {
        crate::api::validate_stream_name(stream)?;
        let inbox = self.client.new_inbox();
        // The inbox's unique token doubles as the chain's random name.
        let base = ordered_base(&inbox);
        let sub = self.client.subscribe(&inbox)?;
        let machine = OrderedConsumer::new(&base, config, Instant::now())?;
        Ok(Ordered {
            js: self.clone(),
            stream: stream.to_owned(),
            inbox,
            sub,
            machine,
            pull: None,
            consume: ConsumeConfig::default(),
            created: None,
            events: self.client.events(),
        })
    }

    /// A handle on a pull consumer (nothing is sent).
    pub fn pull_consumer(&self, stream: &str, consumer: &str) -> PullHandle<T> {
        PullHandle { js: self.clone(), stream: stream.to_owned(), consumer: consumer.to_owned() }
    }

    // ---- Key/Value ----

    /// Creates a Key/Value bucket (a stream `KV_<bucket>`).
    pub fn create_key_value(&self, config: &KvConfig) -> Result<Store<T>, Error> {
        let info = self.create_stream(&config.to_stream_config()?)?;
        Ok(Store { js: self.clone(), bucket: config.bucket.clone(), stream: info.config.name })
    }

    /// Changes a bucket's settings (history, TTL, limits, description...).
    pub fn update_key_value(&self, config: &KvConfig) -> Result<Store<T>, Error> {
        let info = self.update_stream(&config.to_stream_config()?)?;
        Ok(Store { js: self.clone(), bucket: config.bucket.clone(), stream: info.config.name })
    }

    /// Binds to an existing bucket; fails with 10059 ("stream not found") when there is none.
    pub fn key_value(&self, bucket: &str) -> Result<Store<T>, Error> {
        kv::validate_bucket(bucket)?;
        let info = self.stream_info(&kv::stream_name(bucket))?;
        check_kv_stream(bucket, &info)?;
        Ok(Store { js: self.clone(), bucket: bucket.to_owned(), stream: info.config.name })
    }

    /// Deletes a bucket and everything in it.
    pub fn delete_key_value(&self, bucket: &str) -> Result<bool, Error> {
        kv::validate_bucket(bucket)?;
        self.delete_stream(&kv::stream_name(bucket))
    }

    /// Every bucket name.
    pub fn key_value_names(&self) -> Result<Vec<String>, Error> {
        Ok(kv_bucket_names(self.stream_names(Some(KV_STREAMS_SUBJECT))?))
    }
}

/// A message delivered by a consumer, with its acks.
#[derive(Debug)]
pub struct JsMessage<T> {
    /// The message: its subject is the stream subject it was stored under.
    pub message: Message,
    client: T,
    acked: AckState,
}

impl<T: Transport> JsMessage<T> {
    /// Delivery metadata from the reply subject: stream and consumer sequences, delivery count, pending.
    pub fn metadata(&self) -> Result<OwnedAckMetadata, JetStreamError> {
        ack_metadata(&self.message)
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        self.message.payload()
    }

    fn reply(&self) -> Result<&str, Error> {
        ack_subject(&self.message)
    }

    /// Sends an ack of `kind` without waiting. Nothing is sent after a terminal ack (ADR-15).
    pub fn ack_with(&mut self, kind: AckKind) -> Result<(), Error> {
        if !self.acked.should_send() {
            return Ok(());
        }
        self.client.publish(self.reply()?, None, None, kind.payload())?;
        self.acked.succeeded(&kind);
        Ok(())
    }

    /// Acknowledges: processed, do not redeliver.
    pub fn ack(&mut self) -> Result<(), Error> {
        self.ack_with(AckKind::Ack)
    }

    /// Acknowledges and waits until the server has stored the ack ("double ack").
    pub fn double_ack(&mut self, timeout: Duration) -> Result<(), Error> {
        if !self.acked.should_send() {
            return Ok(());
        }
        let kind = AckKind::Ack;
        self.client.request(self.reply()?, None, kind.payload(), timeout)?;
        self.acked.succeeded(&kind);
        Ok(())
    }

    /// Asks for redelivery, after `delay` if given.
    pub fn nak(&mut self, delay: Option<Duration>) -> Result<(), Error> {
        self.ack_with(AckKind::Nak { delay })
    }

    /// Still working on it: resets the ack wait. May repeat.
    pub fn in_progress(&mut self) -> Result<(), Error> {
        self.ack_with(AckKind::Progress)
    }

    /// Never redeliver.
    pub fn term(&mut self) -> Result<(), Error> {
        self.ack_with(AckKind::Term { reason: None })
    }
}

/// A pull consumer of one stream.
#[derive(Debug, Clone)]
pub struct PullHandle<T> {
    js: Context<T>,
    stream: String,
    consumer: String,
}

impl<T: Transport> PullHandle<T> {
    /// The consumer's info.
    pub fn info(&self) -> Result<ConsumerInfo, Error> {
        self.js.consumer_info(&self.stream, &self.consumer)
    }

    /// One pull: up to `config`'s batch or bytes, waiting up to its expiry. Returns what arrived; an error
    /// status (or a missing heartbeat) is an error only when nothing arrived.
    pub fn fetch(&self, config: FetchConfig) -> Result<Vec<JsMessage<T>>, Error> {
        let client = &self.js.client;
        let inbox = client.new_inbox();
        let mut sub = client.subscribe(&inbox)?;
        let mut machine = PullConsumer::<Received>::fetch(config, Instant::now())?;
        let mut out = Vec::new();
        loop {
            while let Some(pull) = machine.poll_pull() {
                let (subject, body) = self.js.api.pull(&self.stream, &self.consumer, &pull)?;
                client.publish(&subject, Some(&inbox), None, body)?;
            }
            while let Some(event) = machine.poll_event() {
                match event {
                    PullEvent::Message(Received(message)) => {
                        out.push(JsMessage { message, client: client.clone(), acked: AckState::new() })
                    }
                    PullEvent::FetchDone { reason } => return finish(out, reason),
                    // A fetch only ends with FetchDone; the others are consume's.
                    _ => {}
                }
            }
            let now = Instant::now();
            let wait = machine.poll_timeout().map_or(self.js.timeout, |t| t.saturating_duration_since(now));
            match sub.next_timeout(wait.max(Duration::from_millis(1))) {
                Ok(msg) => machine.handle_message(Instant::now(), Received(msg)),
                Err(nats_client::Error::Timeout) => machine.handle_timeout(Instant::now()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Messages for ever: pulls ahead (half of `config`'s maximum in flight, re-pulled as they arrive), keeps
    /// going across missed heartbeats and reconnects, and ends only when the consumer is deleted. Errors
    /// the server reports about a pull are yielded and consuming goes on.
    pub fn messages(&self, config: ConsumeConfig) -> Result<Messages<T>, Error> {
        let inbox = self.js.client.new_inbox();
        let sub = self.js.client.subscribe(&inbox)?;
        let machine = PullConsumer::consume(config, Instant::now())?;
        let events = self.js.client.events();
        Ok(Messages { handle: self.clone(), inbox, sub, machine, events, ended: None, missed_heartbeats: 0 })
    }

    /// The next message, waiting up to `expires`; `None` when there is none.
    pub fn next(&self, expires: Duration) -> Result<Option<JsMessage<T>>, Error> {
        Ok(self.fetch(FetchConfig::next().with_expires(expires))?.into_iter().next())
    }
}

/// A continuous consume of a pull consumer: an iterator of messages (see [`PullHandle::messages`]).
#[derive(Debug)]
pub struct Messages<T: Transport> {
    handle: PullHandle<T>,
    inbox: String,
    sub: T::Subscription,
    machine: PullConsumer<Received>,
    events: T::Events,
    ended: Option<Termination>,
    missed_heartbeats: u64,
}

impl<T: Transport> Messages<T> {
    /// Times the server went silent for 2 × the heartbeat (each time the consume pulled afresh).
    pub fn missed_heartbeats(&self) -> u64 {
        self.missed_heartbeats
    }

    /// Stops: no more pulls; the iterator ends.
    pub fn stop(&mut self) {
        self.machine.stop();
    }

    /// Why the consume ended, once it has.
    pub fn ended(&self) -> Option<&Termination> {
        self.ended.as_ref()
    }
}

impl<T: Transport> Iterator for Messages<T> {
    type Item = Result<JsMessage<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let js = &self.handle.js;
        loop {
            while let Some(up) = self.events.try_next_event().map(|e| link_change(&e)) {
                if let Some(up) = up {
                    apply_link(&mut self.machine, up, Instant::now());
                }
            }
            while let Some(pull) = self.machine.poll_pull() {
                let sent = js
                    .api
                    .pull(&self.handle.stream, &self.handle.consumer, &pull)
                    .map_err(Error::from)
                    .and_then(|(subject, body)| Ok(js.client.publish(&subject, Some(&self.inbox), None, body)?));
                if let Err(e) = sent {
                    return Some(Err(e));
                }
            }
            while let Some(event) = self.machine.poll_event() {
                match event {
                    PullEvent::Message(Received(message)) => {
                        return Some(Ok(JsMessage { message, client: js.client.clone(), acked: AckState::new() }))
                    }
                    PullEvent::Error(control) => return Some(Err(control_error(&control).into())),
                    PullEvent::Terminated { reason } => {
                        self.ended = Some(reason);
                        return None;
                    }
                    PullEvent::MissingHeartbeat => self.missed_heartbeats += 1,
                    PullEvent::Warning(_) | PullEvent::FetchDone { .. } => {}
                }
            }
            if self.ended.is_some() || self.machine.is_finished() {
                return None;
            }
            if let Err(e) = wait(&mut self.sub, &mut self.machine, None) {
                return Some(Err(e));
            }
        }
    }
}

/// Waits for the next message of `sub` (or the machine's timer, or `other` deadline) and feeds the machine.
fn wait<S: Subscription>(
    sub: &mut S,
    machine: &mut PullConsumer<Received>,
    other: Option<Instant>,
) -> Result<Option<Received>, Error> {
    let now = Instant::now();
    let deadline = match (machine.poll_timeout(), other) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    // At most a second, so that connection events (read between waits) are noticed.
    let wait =
        deadline.map_or(Duration::from_secs(1), |d| d.saturating_duration_since(now)).min(Duration::from_secs(1));
    match sub.next_timeout(wait.max(Duration::from_millis(1))) {
        Ok(msg) => {
            machine.handle_message(Instant::now(), Received(msg));
            Ok(None)
        }
        Err(nats_client::Error::Timeout) => {
            machine.handle_timeout(Instant::now());
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// An ordered consumer: see [`Context::ordered`]. Yields messages in stream order, each once.
#[derive(Debug)]
pub struct Ordered<T: Transport> {
    js: Context<T>,
    stream: String,
    inbox: String,
    sub: T::Subscription,
    machine: OrderedConsumer,
    /// The serial of the consumer being pulled, and its pull machine.
    pull: Option<(u64, PullConsumer<Received>)>,
    consume: ConsumeConfig,
    /// The reply to the last successful create.
    created: Option<ConsumerInfo>,
    events: T::Events,
}

impl<T: Transport> Ordered<T> {
    /// Messages the current consumer had pending when it was created (a watch's initial data).
    fn initial_pending(&self) -> Option<u64> {
        self.created.as_ref().map(|c| c.num_pending)
    }

    /// Times the chain moved to a new consumer.
    pub fn resets(&self) -> u64 {
        self.machine.resets().0
    }

    fn step(&mut self) -> Result<Option<JsMessage<T>>, Error> {
        let now = Instant::now();
        while let Some(event) = self.events.try_next_event() {
            match link_change(&event) {
                // The chain's consumer may be gone with the server: start a new one after the last delivered.
                Some(true) => {
                    self.machine.reset(ResetReason::Reconnected);
                    self.pull = None;
                }
                Some(false) => {
                    if let Some((_, pull)) = self.pull.as_mut() {
                        pull.handle_disconnected(now);
                    }
                }
                None => {}
            }
        }
        while let Some(name) = self.machine.poll_delete() {
            // Best effort: an ephemeral consumer also goes away on its own.
            let _ = self.js.delete_consumer(&self.stream, &name);
        }
        if let Some(config) = self.machine.poll_create(now) {
            let serial = self.machine.serial();
            match self.js.create_consumer(&self.stream, &config) {
                Ok(info) => {
                    self.machine.create_succeeded(serial);
                    self.created = Some(info);
                    self.pull = Some((serial, PullConsumer::consume(self.consume.clone(), now)?));
                }
                Err(e) => {
                    self.machine.create_failed(serial, now);
                    // A refusal that retrying cannot fix (no stream, a bad config) ends the consumer; timeouts,
                    // no responders and the retryable API errors are retried with backoff.
                    if is_fatal_create_error(&e) {
                        return Err(e);
                    }
                }
            }
        }
        let Some((serial, pull)) = self.pull.as_mut() else {
            // Waiting for a create's backoff: sleep on the subscription (stale messages are dropped).
            let wait =
                self.machine.poll_timeout().map_or(Duration::from_millis(50), |d| d.saturating_duration_since(now));
            match self.sub.next_timeout(wait.max(Duration::from_millis(1))) {
                Ok(_) | Err(nats_client::Error::Timeout) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        };
        let name = ordered_consumer_name(&self.machine, *serial);
        while let Some(request) = pull.poll_pull() {
            let (subject, body) = self.js.api.pull(&self.stream, &name, &request)?;
            self.js.client.publish(&subject, Some(&self.inbox), None, body)?;
        }
        while let Some(event) = pull.poll_event() {
            match ordered_event(&mut self.machine, event) {
                OrderedStep::Deliver(message) => {
                    let client = self.js.client.clone();
                    return Ok(Some(JsMessage { message, client, acked: AckState::no_ack() }));
                }
                OrderedStep::Reset => {
                    self.pull = None;
                    return Ok(None);
                }
                OrderedStep::Skip => {}
            }
        }
        wait(&mut self.sub, pull, self.machine.poll_timeout())?;
        Ok(None)
    }
}

impl<T: Transport> Iterator for Ordered<T> {
    type Item = Result<JsMessage<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.step() {
                Ok(Some(message)) => return Some(Ok(message)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// A Key/Value watch: see [`Store::watch`].
#[derive(Debug)]
pub struct Watch<T: Transport> {
    ordered: Ordered<T>,
    state: WatchState,
}

impl<T: Transport> Iterator for Watch<T> {
    type Item = Result<Watched, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(queued) = self.state.take_queued() {
            return Some(Ok(queued));
        }
        loop {
            let step = self.ordered.step().map(|m| m.map(|m| m.message));
            if let Some(out) = self.state.on_step(self.ordered.initial_pending(), step) {
                return Some(out);
            }
        }
    }
}

/// A Key/Value bucket.
#[derive(Debug, Clone)]
pub struct Store<T> {
    js: Context<T>,
    bucket: String,
    stream: String,
}

impl<T: Transport> Store<T> {
    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn write(&self, key: &str, headers: Option<nats_proto::Headers>, value: Bytes) -> Result<u64, Error> {
        let call = self.js.api.kv_write(&self.bucket, key, headers, value)?;
        Ok(self.js.call(&call)?.seq)
    }

    /// Sets `key` to `value`; returns the new revision.
    pub fn put(&self, key: &str, value: impl Into<Bytes>) -> Result<u64, Error> {
        kv::validate_put_key(key)?;
        self.write(key, None, value.into())
    }

    /// The latest entry of `key`; `None` when it never had a value or was deleted or purged.
    pub fn get(&self, key: &str) -> Result<Option<Entry>, Error> {
        Ok(self.entry(key)?.filter(|e| !e.operation.is_marker()))
    }

    /// The latest entry of `key`, delete and purge markers included.
    pub fn entry(&self, key: &str) -> Result<Option<Entry>, Error> {
        kv::validate_key(key)?;
        let call = self.js.api.direct_get_last(&self.stream, &crate::api::kv_subject(&self.bucket, key))?;
        self.direct(call)
    }

    /// The entry at `revision` if it belongs to `key`.
    pub fn entry_at(&self, key: &str, revision: u64) -> Result<Option<Entry>, Error> {
        kv::validate_key(key)?;
        let entry = self.direct(self.js.api.direct_get(&self.stream, &MsgGetRequest::seq(revision))?)?;
        Ok(entry.filter(|e| e.key == key))
    }

    fn direct(&self, call: Call<DirectGetMessage>) -> Result<Option<Entry>, Error> {
        direct_entry(&self.bucket, self.js.call(&call))
    }

    /// Sets `key` only if its latest revision is `revision`; a mismatch is the API error 10071 (or 10164).
    pub fn update(&self, key: &str, value: impl Into<Bytes>, revision: u64) -> Result<u64, Error> {
        kv::validate_put_key(key)?;
        self.write(key, Some(kv::update_headers(revision)), value.into())
    }

    /// Sets `key` only if it has no value (never set, deleted or purged); else the API error 10071.
    pub fn create(&self, key: &str, value: impl Into<Bytes>) -> Result<u64, Error> {
        kv::validate_put_key(key)?;
        let value = value.into();
        let error = match self.write(key, Some(kv::create_headers(None)), value.clone()) {
            Err(Error::JetStream(e)) => e,
            other => return other,
        };
        let latest = self.entry(key)?.map(|e| (e.operation, e.revision));
        match kv::after_create_failed(&error, latest) {
            CreateRetry::Update { revision } => self.update(key, value, revision),
            CreateRetry::KeyExists | CreateRetry::Fail => Err(error.into()),
        }
    }

    /// Marks `key` deleted (its history is kept).
    pub fn delete(&self, key: &str) -> Result<u64, Error> {
        kv::validate_key(key)?;
        self.write(key, Some(kv::delete_headers(None)), Bytes::new())
    }

    /// Marks `key` purged and drops its history.
    pub fn purge(&self, key: &str) -> Result<u64, Error> {
        kv::validate_key(key)?;
        self.write(key, Some(kv::purge_headers(None, None)), Bytes::new())
    }

    /// The bucket's status: values, history, TTL, bytes.
    pub fn status(&self) -> Result<KvStatus, Error> {
        Ok(KvStatus::from_stream_info(self.js.stream_info(&self.stream)?)?)
    }

    /// Every revision of `key` still stored, oldest first, markers included; empty when none.
    pub fn history(&self, key: &str) -> Result<Vec<Entry>, Error> {
        kv::validate_key(key)?;
        let subject = crate::api::kv_subject(&self.bucket, key);
        let mut out = Vec::new();
        let mut seq = 1;
        loop {
            let call = self.js.api.direct_get(&self.stream, &MsgGetRequest::next_by_subject(seq, &subject))?;
            match self.direct(call)? {
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
    pub fn watch(&self, filter: &str) -> Result<Watch<T>, Error> {
        let config = watch_config(&self.bucket, filter)?;
        let ordered = self.js.ordered(&self.stream, config)?;
        Ok(Watch { ordered, state: WatchState::new(self.bucket.clone()) })
    }

    /// Every key with a value (deleted and purged keys left out).
    pub fn keys(&self) -> Result<Vec<String>, Error> {
        let info = self.js.call(&self.js.api.stream_info_with(&self.stream, &keys_request(&self.bucket))?)?;
        let mut keys = Vec::new();
        for key in stored_keys(&self.bucket, &info) {
            if self.get(key)?.is_some() {
                keys.push(key.to_owned());
            }
        }
        keys.sort();
        Ok(keys)
    }
}
