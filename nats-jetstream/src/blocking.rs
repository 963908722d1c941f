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

use crate::common::binding::*;
use nats_client::seam::{Client, Subscription};

mod kv;
mod object;
mod ordered_push;
mod publish;
mod pull;
mod push;

pub use kv::{Store, Watch};
pub use object::{ObjectReader, ObjectStore, ObjectWatch};
pub use ordered_push::OrderedPush;
pub use publish::PublishWindow;
pub use pull::{Messages, Ordered, PullHandle};
pub use push::PushMessages;

pub use crate::common::{Watched, DEFAULT_TIMEOUT};

context!(
    /// A JetStream context: a client, an API prefix (or domain) and a timeout.
    Context,
    Client
);

impl<T: Client> Context<T> {
    /// Sends one call and reads its reply.
    pub fn call<R>(&self, call: &Call<R>) -> Result<R, Error> {
        let reply = self.client.request(call.subject(), call.headers(), call.payload().into(), self.timeout)?;
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

    /// A batch of stored messages through any replica (server 2.11+, streams with `allow_direct`): `batch`
    /// messages from a sequence, or the last message of each `multi_last` subject (see [`crate::direct`]).
    /// Waits up to the context's timeout for the whole batch.
    pub fn direct_get_batch(&self, stream: &str, request: &MsgGetRequest) -> Result<DirectBatch, Error> {
        let mut reader = DirectBatchReader::new(request)?;
        let call = self.api.direct_get(stream, request)?;
        let inbox = self.client.new_inbox();
        let mut sub = self.client.subscribe(&inbox, None)?;
        self.client.publish(call.subject(), Some(&inbox), call.headers(), call.payload().into())?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let reply = match sub.next_timeout(wait.max(Duration::from_millis(1))) {
                Err(nats_client::Error::Timeout) => return Err(JetStreamError::Timeout.into()),
                other => other?,
            };
            if reader.handle(reply.headers(), reply.payload_bytes())? {
                return Ok(reader.finish());
            }
        }
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

    /// Pauses a consumer until `until`: it delivers nothing meanwhile (server 2.11+).
    pub fn pause_consumer(
        &self,
        stream: &str,
        consumer: &str,
        until: SystemTime,
    ) -> Result<ConsumerPauseResponse, Error> {
        self.call(&self.api.pause_consumer(stream, consumer, Some(until))?)
    }

    /// Unpins the client pinned in a consumer's priority `group` (policy `pinned_client`, server 2.11+): the
    /// next pull of the group gets the pin.
    pub fn unpin_consumer(&self, stream: &str, consumer: &str, group: &str) -> Result<(), Error> {
        self.call(&self.api.unpin_consumer(stream, consumer, group)?)
    }

    /// Resumes a paused consumer.
    pub fn resume_consumer(&self, stream: &str, consumer: &str) -> Result<ConsumerPauseResponse, Error> {
        self.call(&self.api.pause_consumer(stream, consumer, None)?)
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
        let idle_heartbeat = config.idle_heartbeat.filter(|d| !d.is_zero());
        let consume = ConsumeConfig { idle_heartbeat, ..ConsumeConfig::default() };
        // A heartbeat the pulls cannot use is refused now, not once the first consumer exists.
        crate::pull::PullConsumer::<Message>::consume(consume.clone(), Instant::now())?;
        let sub = self.client.subscribe(&inbox, None)?;
        let machine = OrderedConsumer::new(&base, config, Instant::now())?;
        Ok(Ordered {
            js: self.clone(),
            stream: stream.to_owned(),
            inbox,
            sub,
            machine,
            pull: None,
            consume,
            created: None,
            events: self.client.events(),
        })
    }

    /// A handle on a pull consumer (nothing is sent).
    pub fn pull_consumer(&self, stream: &str, consumer: &str) -> PullHandle<T> {
        PullHandle {
            js: self.clone(),
            stream: stream.to_owned(),
            consumer: consumer.to_owned(),
            pin: Default::default(),
        }
    }

    // ---- Key/Value ----

    /// Creates a Key/Value bucket (a stream `KV_<bucket>`).
    pub fn create_key_value(&self, config: &KvConfig) -> Result<Store<T>, Error> {
        let info = self.create_stream(&config.to_stream_config()?)?;
        Ok(Store::new(self.clone(), &config.bucket, info))
    }

    /// Changes a bucket's settings (history, TTL, limits, description...).
    pub fn update_key_value(&self, config: &KvConfig) -> Result<Store<T>, Error> {
        let info = self.update_stream(&config.to_stream_config()?)?;
        Ok(Store::new(self.clone(), &config.bucket, info))
    }

    /// Binds to an existing bucket; fails with 10059 ("stream not found") when there is none.
    pub fn key_value(&self, bucket: &str) -> Result<Store<T>, Error> {
        crate::kv::validate_bucket(bucket)?;
        let info = self.stream_info(&crate::kv::stream_name(bucket))?;
        check_kv_stream(bucket, &info)?;
        Ok(Store::new(self.clone(), bucket, info))
    }

    /// Deletes a bucket and everything in it.
    pub fn delete_key_value(&self, bucket: &str) -> Result<bool, Error> {
        crate::kv::validate_bucket(bucket)?;
        self.delete_stream(&crate::kv::stream_name(bucket))
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

impl<T: Client> JsMessage<T> {
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
        self.client.publish(self.reply()?, None, None, kind.payload().into())?;
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
        self.client.request(self.reply()?, None, kind.payload().into(), timeout)?;
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
