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
//! Waiting for a deadline (a fetch's expiry, missed heartbeats, a publish retry) uses the client's own timer
//! ([`nats_client::seam::AsyncClient::timer`]), that of the runtime it runs on: nothing here picks a runtime.
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

mod kv;
mod object;
mod ordered_push;
mod publish;
mod pull;
mod push;

use crate::common::binding::*;
use nats_client::seam::{deadline_after, sleep_until, AsyncClient, AsyncSubscription, Timer};

pub use kv::{AsyncStore, AsyncWatch};
pub use object::{AsyncObjectReader, AsyncObjectStore, AsyncObjectWatch};
pub use ordered_push::AsyncOrderedPush;
pub use publish::AsyncPublishWindow;
pub use pull::{AsyncMessages, AsyncOrdered, AsyncPullHandle};
pub use push::AsyncPushMessages;

pub use crate::common::{Watched, DEFAULT_TIMEOUT};

context!(
    /// A JetStream context on an async client: a client, an API prefix (or domain) and a timeout.
    AsyncContext,
    AsyncClient
);

impl<T: AsyncClient> AsyncContext<T> {
    /// Sends one call and reads its reply.
    pub async fn call<R>(&self, call: &Call<R>) -> Result<R, Error> {
        let reply = self.client.request(call.subject(), call.headers(), call.payload().into(), self.timeout).await?;
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

    /// A batch of stored messages through any replica (see [`crate::blocking::Context::direct_get_batch`]).
    pub async fn direct_get_batch(&self, stream: &str, request: &MsgGetRequest) -> Result<DirectBatch, Error> {
        let mut reader = DirectBatchReader::new(request)?;
        let call = self.api.direct_get(stream, request)?;
        let inbox = self.client.new_inbox();
        let mut sub = self.client.subscribe(&inbox, None).await?;
        self.client.publish(call.subject(), Some(&inbox), call.headers(), call.payload().into()).await?;
        let deadline = deadline_after(Instant::now(), self.timeout);
        let mut timer = self.client.timer(deadline);
        loop {
            let reply = match sub.next_until(&mut *timer, deadline).await {
                Err(nats_client::Error::Timeout) => return Err(JetStreamError::Timeout.into()),
                other => other?,
            };
            if reader.handle(reply.headers(), reply.payload_bytes())? {
                return Ok(reader.finish());
            }
        }
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
                    let timer = timer.get_or_insert_with(|| self.client.timer(at));
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

    /// Pauses a consumer until `until`: it delivers nothing meanwhile (server 2.11+).
    pub async fn pause_consumer(
        &self,
        stream: &str,
        consumer: &str,
        until: SystemTime,
    ) -> Result<ConsumerPauseResponse, Error> {
        self.call(&self.api.pause_consumer(stream, consumer, Some(until))?).await
    }

    /// Unpins the client pinned in a consumer's priority `group` (policy `pinned_client`, server 2.11+): the
    /// next pull of the group gets the pin.
    pub async fn unpin_consumer(&self, stream: &str, consumer: &str, group: &str) -> Result<(), Error> {
        self.call(&self.api.unpin_consumer(stream, consumer, group)?).await
    }

    /// Resumes a paused consumer.
    pub async fn resume_consumer(&self, stream: &str, consumer: &str) -> Result<ConsumerPauseResponse, Error> {
        self.call(&self.api.pause_consumer(stream, consumer, None)?).await
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
        let idle_heartbeat = config.idle_heartbeat.filter(|d| !d.is_zero());
        let consume = ConsumeConfig { idle_heartbeat, ..ConsumeConfig::default() };
        // A heartbeat the pulls cannot use is refused now, not once the first consumer exists.
        crate::pull::PullConsumer::<Message>::consume(consume.clone(), Instant::now())?;
        let sub = self.client.subscribe(&inbox, None).await?;
        let now = Instant::now();
        let machine = OrderedConsumer::new(&base, config, now)?;
        Ok(AsyncOrdered {
            js: self.clone(),
            stream: stream.to_owned(),
            inbox,
            sub,
            machine,
            pull: None,
            consume,
            created: None,
            timer: self.client.timer(now),
            op: None,
            events: self.client.events(),
        })
    }

    /// A handle on a pull consumer (nothing is sent).
    pub fn pull_consumer(&self, stream: &str, consumer: &str) -> AsyncPullHandle<T> {
        AsyncPullHandle {
            js: self.clone(),
            stream: stream.to_owned(),
            consumer: consumer.to_owned(),
            pin: Default::default(),
        }
    }

    // ---- Key/Value ----

    /// Creates a Key/Value bucket (a stream `KV_<bucket>`).
    pub async fn create_key_value(&self, config: &KvConfig) -> Result<AsyncStore<T>, Error> {
        let info = self.create_stream(&config.to_stream_config()?).await?;
        Ok(AsyncStore::new(self.clone(), &config.bucket, info))
    }

    /// Changes a bucket's settings (history, TTL, limits, description...).
    pub async fn update_key_value(&self, config: &KvConfig) -> Result<AsyncStore<T>, Error> {
        let info = self.update_stream(&config.to_stream_config()?).await?;
        Ok(AsyncStore::new(self.clone(), &config.bucket, info))
    }

    /// Binds to an existing bucket; fails with 10059 ("stream not found") when there is none.
    pub async fn key_value(&self, bucket: &str) -> Result<AsyncStore<T>, Error> {
        crate::kv::validate_bucket(bucket)?;
        let info = self.stream_info(&crate::kv::stream_name(bucket)).await?;
        check_kv_stream(bucket, &info)?;
        Ok(AsyncStore::new(self.clone(), bucket, info))
    }

    /// Deletes a bucket and everything in it.
    pub async fn delete_key_value(&self, bucket: &str) -> Result<bool, Error> {
        crate::kv::validate_bucket(bucket)?;
        self.delete_stream(&crate::kv::stream_name(bucket)).await
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

impl<T: AsyncClient> AsyncJsMessage<T> {
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
        self.client.publish(ack_subject(&self.message)?, None, None, kind.payload().into()).await?;
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
        self.client.request(ack_subject(&self.message)?, None, kind.payload().into(), timeout).await?;
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
