//! What the blocking and async bindings share beyond the sans-IO core: the glue that reads a message, an
//! event or a reply the same way whichever client delivered it. Nothing here does I/O or reads the clock.

// With one binding only, some of the shared pieces go unused.
#![cfg_attr(not(all(feature = "blocking", feature = "async")), allow(dead_code))]

use std::time::Duration;

use nats_client::Message;

use crate::ack::{AckMetadata, OwnedAckMetadata};
use crate::error::Error;
use crate::error::{ErrorCode, JetStreamError};
use crate::kv::{self, Entry};
use crate::model::{DirectGetMessage, StreamInfo};
use crate::ordered::{Delivery, OrderedConfig, OrderedConsumer, ResetReason};
use crate::pull::{FetchEnd, PullEvent};

/// A binding's context type and its builder methods (the same on both bindings): a client, an API prefix (or
/// domain) and a timeout.
macro_rules! context {
    ($(#[$doc:meta])* $name:ident, $bound:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name<T> {
            client: T,
            api: Api,
            timeout: Duration,
        }

        impl<T: $bound> $name<T> {
            fn with_api(client: T, api: Api) -> Self {
                Self { client, api, timeout: DEFAULT_TIMEOUT }
            }

            /// The default context: API prefix `$JS.API`, 5 s timeout.
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

            /// The client underneath.
            pub fn client(&self) -> &T {
                &self.client
            }

            /// The API calls this context makes.
            pub fn api(&self) -> &Api {
                &self.api
            }
        }
    };
}
pub(crate) use context;

/// What both bindings' context modules use, imported once: the two are the same calls on two kinds of client.
pub(crate) mod binding {
    pub(crate) use std::time::{Duration, Instant};

    pub(crate) use bytes::Bytes;
    pub(crate) use nats_client::Message;

    pub(crate) use super::{
        ack_metadata, ack_subject, check_kv_stream, context, is_stream_name_in_use, kv_bucket_names, ordered_base,
        KV_STREAMS_SUBJECT, PUBLISH_RETRIES, PUBLISH_RETRY_WAIT,
    };
    pub(crate) use crate::ack::{AckKind, AckState, OwnedAckMetadata};
    pub(crate) use crate::api::ApiPrefix;
    pub(crate) use crate::call::{Api, Call, PublishOptions};
    pub(crate) use crate::direct::{DirectBatch, DirectBatchReader};
    pub(crate) use crate::error::{Error, JetStreamError};
    pub(crate) use std::time::SystemTime;

    pub(crate) use crate::model::{
        AccountInfo, ConsumerConfig, ConsumerInfo, ConsumerPauseResponse, CreateAction, DirectGetMessage, KvConfig,
        MsgGetRequest, Paged, Pager, PubAck, PurgeRequest, PurgeResponse, StoredMessage, StreamConfig, StreamInfo,
    };
    pub(crate) use crate::ordered::{OrderedConfig, OrderedConsumer};
    pub(crate) use crate::pull::ConsumeConfig;
}

/// A pull consumer handle's pin (priority policy `pinned_client`), carried from one fetch to the next.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedPin(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl SharedPin {
    pub(crate) fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub(crate) fn set(&self, pin: Option<&str>) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = pin.map(str::to_owned);
    }
}

/// The default timeout of a JetStream API call, as other clients use.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries of a publish answered by "no responders" (a stream leader being elected), 250 ms apart (ADR-22).
pub(crate) const PUBLISH_RETRIES: u32 = 2;
pub(crate) const PUBLISH_RETRY_WAIT: Duration = Duration::from_millis(250);
/// The subjects every Key/Value stream stores under: what lists the buckets.
pub(crate) const KV_STREAMS_SUBJECT: &str = "$KV.*.>";

/// What a watch yields: of a Key/Value bucket ([`Entry`]), or of an object store
/// ([`ObjectInfo`](crate::model::ObjectInfo), delete markers included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched<T = Entry> {
    /// An entry (a put, or a delete or purge marker), or an object's latest info.
    Entry(T),
    /// Every entry that existed when the watch started has been yielded; what follows is new.
    InitialDone,
}

/// What a connection event means to a pull consumer: `Some(false)` the link went down, `Some(true)` it came
/// back, `None` nothing for it.
pub(crate) fn link_change(event: &nats_client::Event) -> Option<bool> {
    match event {
        nats_client::Event::Disconnected(_) => Some(false),
        nats_client::Event::Reconnected(_) => Some(true),
        _ => None,
    }
}

/// Feeds a link change to a pull machine.
pub(crate) fn apply_link(machine: &mut crate::pull::PullConsumer<Message>, up: bool, now: std::time::Instant) {
    if up {
        machine.handle_reconnected(now);
    } else {
        machine.handle_disconnected(now);
    }
}

/// True when a stream create failed because one of that name exists with another config.
pub(crate) fn is_stream_name_in_use(e: &Error) -> bool {
    e.jetstream().and_then(JetStreamError::error_code) == Some(ErrorCode::StreamNameInUse)
}

/// Refuses a stream that is not a Key/Value bucket's.
pub(crate) fn check_kv_stream(bucket: &str, info: &StreamInfo) -> Result<(), Error> {
    if info.config.max_msgs_per_subject < 1 {
        return Err(JetStreamError::InvalidConfig { reason: format!("{bucket} is not a Key/Value bucket") }.into());
    }
    Ok(())
}

/// The bucket names among stream names.
pub(crate) fn kv_bucket_names(streams: Vec<String>) -> Vec<String> {
    streams.into_iter().filter_map(|n| n.strip_prefix("KV_").map(str::to_owned)).collect()
}

/// An ordered consumer chain's random name: the unique token of its inbox.
pub(crate) fn ordered_base(inbox: &str) -> String {
    inbox.rsplit('.').next().unwrap_or("ordered").to_owned()
}

/// A delivered message's metadata, from its ack subject.
pub(crate) fn ack_metadata(message: &Message) -> Result<OwnedAckMetadata, JetStreamError> {
    let reply = message.reply().and_then(|r| r.as_str()).unwrap_or("");
    OwnedAckMetadata::parse(reply).map_err(|e| JetStreamError::InvalidReply { reason: format!("ack subject: {e}") })
}

/// A delivered message's ack subject.
pub(crate) fn ack_subject(message: &Message) -> Result<&str, Error> {
    message.reply().and_then(|r| r.as_str()).ok_or_else(|| {
        Error::JetStream(JetStreamError::InvalidReply { reason: "the message has no ack subject".into() })
    })
}

/// A fetch's result: what arrived, or the error that ended it when nothing did.
pub(crate) fn finish<M>(out: Vec<M>, reason: FetchEnd) -> Result<Vec<M>, Error> {
    if !out.is_empty() || !reason.is_error() {
        return Ok(out);
    }
    Err(match reason {
        FetchEnd::Status(control) => control_error(&control),
        _ => JetStreamError::Timeout,
    }
    .into())
}

/// The typed error of a status that ended a pull: 503 no responders, else the status and its text.
pub(crate) fn control_error(control: &crate::status::Control) -> JetStreamError {
    match control.code() {
        503 => JetStreamError::NoResponders,
        code => JetStreamError::Status { code, description: control.description().to_owned() },
    }
}

/// A refusal of an ordered consumer's create that retrying cannot fix (no stream, a bad config): it ends the
/// consumer. Timeouts, no responders and the retryable API errors are retried with backoff.
pub(crate) fn is_fatal_create_error(e: &Error) -> bool {
    e.jetstream().and_then(JetStreamError::api_error).is_some_and(|a| !a.is_retryable())
}

/// The name of an ordered chain's consumer of `serial`.
pub(crate) fn ordered_consumer_name(machine: &OrderedConsumer, serial: u64) -> String {
    format!("{}_{}", machine.name().rsplit_once('_').map_or("", |(b, _)| b), serial)
}

/// What an ordered consumer does with one event of its current pull.
pub(crate) enum OrderedStep {
    /// Hand the message to the user.
    Deliver(Message),
    /// The chain moved to a new consumer: drop the current pull.
    Reset,
    /// Nothing to do (a stale or unreadable message, a warning).
    Skip,
}

/// Reads one pull event of an ordered consumer into its machine.
pub(crate) fn ordered_event(machine: &mut OrderedConsumer, event: PullEvent<Message>) -> OrderedStep {
    match event {
        PullEvent::Message(message) => {
            let reply = message.reply().and_then(|r| r.as_str()).unwrap_or("");
            let Ok(meta) = OwnedAckMetadata::parse(reply) else { return OrderedStep::Skip };
            let Some(from) = machine.serial_of(&meta.consumer) else { return OrderedStep::Skip };
            match machine.handle_message(meta.consumer_sequence, meta.stream_sequence, from) {
                Delivery::Deliver => OrderedStep::Deliver(message),
                Delivery::Reset => OrderedStep::Reset,
                Delivery::DropStale => OrderedStep::Skip,
            }
        }
        PullEvent::MissingHeartbeat => {
            machine.reset(ResetReason::MissedHeartbeat);
            OrderedStep::Reset
        }
        PullEvent::Terminated { .. } => {
            machine.reset(ResetReason::ConsumerDeleted);
            OrderedStep::Reset
        }
        PullEvent::Error(control) if control.code() == 503 => {
            machine.reset(ResetReason::NoResponders);
            OrderedStep::Reset
        }
        _ => OrderedStep::Skip,
    }
}

/// A Key/Value direct get's reply as an entry: a 404 status is "none".
pub(crate) fn direct_entry(bucket: &str, reply: Result<DirectGetMessage, Error>) -> Result<Option<Entry>, Error> {
    match reply {
        Ok(m) => Ok(Entry::from_direct_get(bucket, &m.subject, m.seq, m.time, Some(m.headers.view()), m.payload)),
        Err(Error::JetStream(JetStreamError::Status { code: 404, .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The keys with a value among the latest entries of every key, sorted.
pub(crate) fn live_keys(latest: Vec<Entry>) -> Vec<String> {
    let mut keys: Vec<String> = latest.into_iter().filter(|e| !e.operation.is_marker()).map(|e| e.key).collect();
    keys.sort();
    keys
}

/// The keys whose latest entry is a delete or purge marker, with how many messages of each to keep.
pub(crate) fn deleted_keys(
    latest: Vec<Entry>,
    older_than: Option<Duration>,
    now: std::time::SystemTime,
) -> Vec<(String, u64)> {
    let older_than = older_than.unwrap_or(kv::PURGE_DELETES_OLDER_THAN);
    latest
        .into_iter()
        .filter(|e| e.operation.is_marker())
        .map(|e| (e.key, kv::purge_deletes_keep(e.created, now, older_than)))
        .collect()
}

/// A watched message as an entry (`None` when it is not one of the bucket's).
pub(crate) fn watch_entry(bucket: &str, m: Message) -> Option<Entry> {
    let reply = m.reply().and_then(|r| r.as_str())?;
    let meta = AckMetadata::parse(reply).ok()?;
    let subject = m.subject().as_str().unwrap_or("");
    Entry::from_message(bucket, subject, m.headers(), m.payload_bytes(), &meta)
}

/// A watch's bookkeeping on top of its ordered consumer: when the initial data is done, and the marker
/// saying so. `T` is what each message is read as, with the count of messages pending after it.
#[derive(Debug)]
pub(crate) struct WatchState<T = Entry> {
    bucket: String,
    tracker: Option<kv::WatchTracker>,
    queued: Option<Watched<T>>,
    decode: fn(&str, Message) -> Option<(T, u64)>,
}

impl WatchState<Entry> {
    /// A Key/Value watch of `bucket`.
    pub(crate) fn new(bucket: String) -> Self {
        Self::with(bucket, |bucket, m| {
            let entry = watch_entry(bucket, m)?;
            let delta = entry.delta;
            Some((entry, delta))
        })
    }
}

impl WatchState<crate::model::ObjectInfo> {
    /// An object store watch: each meta message read as its object's info (a broken one is skipped).
    pub(crate) fn objects(bucket: String) -> Self {
        Self::with(bucket, |_, m| {
            let meta = m.reply().and_then(|r| r.as_str()).and_then(|r| AckMetadata::parse(r).ok())?;
            let info = crate::object::info_from_meta(m.payload(), Some(meta.timestamp)).ok()?;
            Some((info, meta.pending))
        })
    }
}

impl<T> WatchState<T> {
    fn with(bucket: String, decode: fn(&str, Message) -> Option<(T, u64)>) -> Self {
        Self { bucket, tracker: None, queued: None, decode }
    }

    /// What is owed before the next step (the marker after the last initial entry).
    pub(crate) fn take_queued(&mut self) -> Option<Watched<T>> {
        self.queued.take()
    }

    /// Reads one step of the ordered consumer (a delivered message, nothing yet, or an error), knowing what
    /// the first consumer had pending when created: what to yield, or `None` to step again.
    pub(crate) fn on_step(
        &mut self,
        initial_pending: Option<u64>,
        step: Result<Option<Message>, Error>,
    ) -> Option<Result<Watched<T>, Error>> {
        // The first consumer's create reply tells how much initial data there is.
        if self.tracker.is_none() {
            if let Some(pending) = initial_pending {
                let mut tracker = kv::WatchTracker::new(pending);
                let now = tracker.start();
                self.tracker = Some(tracker);
                if now {
                    // Keep what this step produced for after the marker.
                    match step {
                        Ok(Some(m)) => self.queued = (self.decode)(&self.bucket, m).map(|(e, _)| Watched::Entry(e)),
                        Err(e) => return Some(Err(e)),
                        Ok(None) => {}
                    }
                    return Some(Ok(Watched::InitialDone));
                }
            }
        }
        match step {
            Ok(Some(message)) => {
                let (entry, delta) = (self.decode)(&self.bucket, message)?;
                if let Some(tracker) = self.tracker.as_mut() {
                    if tracker.on_entry(delta) {
                        self.queued = Some(Watched::InitialDone);
                    }
                }
                Some(Ok(Watched::Entry(entry)))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Reads a publish's reply as its ack.
pub(crate) fn ack_of(reply: Result<Message, nats_client::Error>) -> crate::error::AckResult {
    let reply = reply?;
    Ok(crate::call::pub_ack(reply.headers(), reply.payload_bytes())?)
}

/// Where a history walk goes on after `entry`, found from `seq`: a revision before `seq` (a server that
/// ignores `next_by_subj`) or at the end of the sequence space would walk for ever, so it is an error.
pub(crate) fn next_history_seq(seq: u64, entry: &Entry) -> Result<u64, Error> {
    match entry.revision.checked_add(1) {
        Some(next) if entry.revision >= seq => Ok(next),
        _ => Err(JetStreamError::InvalidReply {
            reason: format!("history: revision {} answered a request from {seq}", entry.revision),
        }
        .into()),
    }
}

// ---- the object store's glue, the same on both bindings ----

/// Acks of chunk publishes outstanding during an object put.
pub(crate) const OBJECT_PUT_WINDOW: usize = 8;
/// Bytes an object reader lets its consumer pull ahead.
pub(crate) const OBJECT_READ_AHEAD: u64 = 4 * 1024 * 1024;

/// A fresh NUID for an object version: the random last token of a new inbox.
pub(crate) fn nuid_of(inbox: &str) -> &str {
    inbox.rsplit('.').next().unwrap_or(inbox)
}

/// Room to reserve for an object of `size` bytes read whole: never more than the read-ahead up front (a meta
/// message may claim any size; the content still has to come).
pub(crate) fn reserve_for(size: u64) -> usize {
    usize::try_from(size.min(OBJECT_READ_AHEAD)).unwrap_or(0)
}

/// The purge of one object version's chunks.
pub(crate) fn chunks_purge(bucket: &str, nuid: &str) -> crate::model::PurgeRequest {
    crate::model::PurgeRequest { filter: crate::object::chunk_subject(bucket, nuid), ..Default::default() }
}

/// The purge of an object name's meta message (after a rename).
pub(crate) fn meta_purge(bucket: &str, name: &str) -> crate::model::PurgeRequest {
    crate::model::PurgeRequest { filter: crate::object::meta_subject(bucket, name), ..Default::default() }
}

/// A publish carrying `headers` (an object's meta, with its rollup).
pub(crate) fn with_headers(headers: nats_proto::Headers) -> crate::call::PublishOptions {
    crate::call::PublishOptions { headers: Some(headers), ..crate::call::PublishOptions::new() }
}

/// An object's meta from a direct get of its meta subject; none stored is `ObjectNotFound`.
pub(crate) fn object_meta(
    name: &str,
    reply: Result<crate::model::DirectGetMessage, Error>,
) -> Result<crate::model::ObjectInfo, Error> {
    match reply {
        Ok(msg) => Ok(crate::object::info_from_meta(&msg.payload, Some(msg.time))?),
        Err(e) if e.jetstream().is_some_and(JetStreamError::is_no_message) => {
            Err(JetStreamError::ObjectNotFound { name: name.to_owned() }.into())
        }
        Err(e) => Err(e),
    }
}

/// A meta that is a delete marker reads as no object.
pub(crate) fn live_object(info: crate::model::ObjectInfo) -> Result<crate::model::ObjectInfo, Error> {
    if info.deleted {
        return Err(JetStreamError::ObjectNotFound { name: info.meta.name }.into());
    }
    Ok(info)
}

/// The ordered consumer of one object version's chunks, and its read-ahead.
pub(crate) fn chunks_consumer(bucket: &str, nuid: &str) -> (OrderedConfig, crate::pull::ConsumeConfig) {
    let config =
        OrderedConfig { filter_subjects: vec![crate::object::chunk_subject(bucket, nuid)], ..Default::default() };
    let consume = crate::pull::ConsumeConfig { max_bytes: Some(OBJECT_READ_AHEAD), ..Default::default() };
    (config, consume)
}

/// The message get that tells whether an object version still has a chunk stored after `after` (a reader
/// that waited a whole timeout for its next chunk asks; a 404 means the rest is gone).
pub(crate) fn next_chunk_request(bucket: &str, nuid: &str, after: u64) -> crate::model::MsgGetRequest {
    crate::model::MsgGetRequest::next_by_subject(after.saturating_add(1), crate::object::chunk_subject(bucket, nuid))
}

/// The ordered consumer listing a store: the last meta message of each name.
pub(crate) fn objects_consumer(bucket: &str) -> OrderedConfig {
    OrderedConfig {
        filter_subjects: vec![crate::object::meta_filter(bucket)],
        deliver_policy: crate::model::DeliverPolicy::LastPerSubject,
        ..Default::default()
    }
}

/// A push consumer's config as created, and the queue group its subscription joins.
pub(crate) struct PushSetup {
    pub(crate) config: crate::model::ConsumerConfig,
    pub(crate) queue: Option<String>,
}

/// Completes a push consumer's config: a deliver subject from `inbox` when it has none, and a name from it
/// for an ephemeral consumer (the API needs one).
pub(crate) fn push_setup(mut config: crate::model::ConsumerConfig, mut inbox: impl FnMut() -> String) -> PushSetup {
    if config.deliver_subject.is_empty() {
        config.deliver_subject = inbox();
    }
    if config.name.is_empty() && config.durable_name.is_empty() {
        config.name = format!("push_{}", nuid_of(&inbox()));
    }
    let queue = (!config.deliver_group.is_empty()).then(|| config.deliver_group.clone());
    PushSetup { config, queue }
}
