//! Every JetStream API call as data: where it goes, what it carries, and how its reply is read.
//!
//! A client binding sends [`Call::subject`] with [`Call::payload`] (and [`Call::headers`]) as a request, then
//! hands the reply's header block and body to [`Call::decode`]. Nothing here does I/O, so the blocking and async
//! bindings share every request they make and every rule for reading a reply.
//!
//! ```
//! use nats_jetstream::call::Api;
//! use nats_jetstream::model::StreamConfig;
//!
//! let api = Api::default();
//! let call = api.create_stream(&StreamConfig { subjects: vec!["orders.>".into()], ..StreamConfig::new("ORDERS") })?;
//! assert_eq!(call.subject(), "$JS.API.STREAM.CREATE.ORDERS");
//! let reply = br#"{"type":"io.nats.jetstream.api.v1.stream_create_response","error":{"code":400,"err_code":10058,"description":"stream name already in use with a different configuration"}}"#;
//! let err = call.decode(None, &reply[..]).unwrap_err();
//! assert_eq!(err.api_error().map(|e| e.err_code), Some(Some(10058)));
//! # Ok::<(), nats_jetstream::error::JetStreamError>(())
//! ```

use std::fmt;

use bytes::Bytes;
use nats_proto::{HeaderView, Headers};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::ApiPrefix;
use crate::error::{decode_message_reply, decode_pub_ack, JetStreamError};
use crate::model::{
    AccountInfo, ConsumerConfig, ConsumerInfo, ConsumerListResponse, ConsumerNamesResponse, ConsumerPauseRequest,
    ConsumerPauseResponse, ConsumerUnpinRequest, CreateAction, CreateConsumerRequest, DirectGetMessage, KvSubjects,
    MsgDeleteRequest, MsgGetRequest, MsgGetResponse, PageRequest, PubAck, PullRequest, PurgeRequest, PurgeResponse,
    StoredMessage, StreamConfig, StreamInfo, StreamInfoRequest, StreamListResponse, StreamNamesResponse,
    SuccessResponse,
};

type Decoder<T> = fn(Option<HeaderView<'_>>, Bytes) -> Result<T, JetStreamError>;

/// One request and the way to read its reply.
pub struct Call<T> {
    subject: String,
    payload: Bytes,
    headers: Option<Headers>,
    decode: Decoder<T>,
}

impl<T> fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call").field("subject", &self.subject).field("payload", &self.payload).finish()
    }
}

impl<T> Call<T> {
    fn new(subject: String, payload: Bytes, decode: Decoder<T>) -> Self {
        Self { subject, payload, headers: None, decode }
    }

    /// Where the request goes.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The request body.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Headers to send with it, if any.
    pub fn headers(&self) -> Option<&Headers> {
        self.headers.as_ref()
    }

    /// Reads the reply: its header block (for status replies) and body.
    pub fn decode(&self, headers: Option<HeaderView<'_>>, payload: impl Into<Bytes>) -> Result<T, JetStreamError> {
        (self.decode)(headers, payload.into())
    }
}

fn json<T: DeserializeOwned>(headers: Option<HeaderView<'_>>, payload: Bytes) -> Result<T, JetStreamError> {
    decode_message_reply(headers, &payload)
}

fn unit(headers: Option<HeaderView<'_>>, payload: Bytes) -> Result<(), JetStreamError> {
    json::<serde::de::IgnoredAny>(headers, payload).map(drop)
}

fn success(headers: Option<HeaderView<'_>>, payload: Bytes) -> Result<bool, JetStreamError> {
    json::<SuccessResponse>(headers, payload).map(|r| r.success)
}

fn stored(headers: Option<HeaderView<'_>>, payload: Bytes) -> Result<StoredMessage, JetStreamError> {
    json::<MsgGetResponse>(headers, payload).map(|r| r.message)
}

pub(crate) fn pub_ack(headers: Option<HeaderView<'_>>, payload: Bytes) -> Result<PubAck, JetStreamError> {
    if let Some(status) = headers.and_then(HeaderView::status) {
        if payload.is_empty() {
            let description = headers.map(HeaderView::description).unwrap_or_default();
            return Err(crate::error::status_error(status, description));
        }
    }
    decode_pub_ack(&payload)
}

fn body(value: &impl Serialize) -> Bytes {
    // Our request models are plain structs of strings, numbers and maps: serializing them cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// Expectations and de-duplication for a JetStream publish, sent as headers. A failed expectation is an API
/// error and nothing is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishOptions {
    /// `Nats-Msg-Id`: a repeat within the stream's duplicate window is acknowledged with the original
    /// sequence and `duplicate: true`, and not stored again.
    pub msg_id: Option<String>,
    /// `Nats-Expected-Stream`: the subject must be stored by this stream (else 10060).
    pub expected_stream: Option<String>,
    /// `Nats-Expected-Last-Sequence`: the stream's last sequence must be this (else 10071).
    pub expected_last_sequence: Option<u64>,
    /// `Nats-Expected-Last-Subject-Sequence`: the last sequence on this subject must be this; 0 means the
    /// subject holds nothing (else 10071 or 10164).
    pub expected_last_subject_sequence: Option<u64>,
    /// `Nats-Expected-Last-Msg-Id`: the stream's last message id must be this (else 10070).
    pub expected_last_msg_id: Option<String>,
    /// Headers of the message itself.
    pub headers: Option<Headers>,
    /// `Nats-TTL`: the stream removes the message after this long (server 2.11+, a stream with
    /// `allow_msg_ttl`).
    pub ttl: Option<std::time::Duration>,
}

impl PublishOptions {
    /// No expectations.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `Nats-Msg-Id`.
    pub fn msg_id(mut self, id: impl Into<String>) -> Self {
        self.msg_id = Some(id.into());
        self
    }

    /// Sets `Nats-Expected-Stream`.
    pub fn expected_stream(mut self, stream: impl Into<String>) -> Self {
        self.expected_stream = Some(stream.into());
        self
    }

    /// Sets `Nats-Expected-Last-Sequence`.
    pub fn expected_last_sequence(mut self, seq: u64) -> Self {
        self.expected_last_sequence = Some(seq);
        self
    }

    /// Sets `Nats-Expected-Last-Subject-Sequence`.
    pub fn expected_last_subject_sequence(mut self, seq: u64) -> Self {
        self.expected_last_subject_sequence = Some(seq);
        self
    }

    /// Sets `Nats-Expected-Last-Msg-Id`.
    pub fn expected_last_msg_id(mut self, id: impl Into<String>) -> Self {
        self.expected_last_msg_id = Some(id.into());
        self
    }

    /// `Nats-TTL`: the stream removes the message after `ttl` (server 2.11+).
    pub fn ttl(mut self, ttl: std::time::Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The message's own headers, sent along with the expectations.
    pub fn headers(mut self, headers: Headers) -> Self {
        self.headers = Some(headers);
        self
    }

    fn to_headers(&self) -> Result<Option<Headers>, JetStreamError> {
        let mut h = self.headers.clone().unwrap_or_default();
        let invalid = |e: nats_proto::HeaderError| JetStreamError::InvalidConfig { reason: format!("header: {e}") };
        let mut set = |name: &str, value: String| h.insert(name, &value).map_err(invalid);
        if let Some(id) = &self.msg_id {
            set("Nats-Msg-Id", id.clone())?;
        }
        if let Some(s) = &self.expected_stream {
            set("Nats-Expected-Stream", s.clone())?;
        }
        if let Some(seq) = self.expected_last_sequence {
            set("Nats-Expected-Last-Sequence", seq.to_string())?;
        }
        if let Some(seq) = self.expected_last_subject_sequence {
            set("Nats-Expected-Last-Subject-Sequence", seq.to_string())?;
        }
        if let Some(id) = &self.expected_last_msg_id {
            set("Nats-Expected-Last-Msg-Id", id.clone())?;
        }
        if let Some(ttl) = self.ttl {
            set(crate::kv::TTL, crate::kv::format_ttl(ttl))?;
        }
        Ok((!h.is_empty()).then_some(h))
    }
}

/// The API calls of one JetStream context (one API prefix or domain).
#[derive(Debug, Clone, Default)]
pub struct Api {
    prefix: ApiPrefix,
}

impl Api {
    /// Calls under `prefix`.
    pub fn new(prefix: ApiPrefix) -> Self {
        Self { prefix }
    }

    /// The prefix the calls go under.
    pub fn prefix(&self) -> &ApiPrefix {
        &self.prefix
    }

    /// Account information: usage, limits, domain and API level.
    pub fn account_info(&self) -> Call<AccountInfo> {
        Call::new(self.prefix.account_info(), Bytes::new(), json)
    }

    /// Creates a stream (idempotent when the config matches; 10058 when it differs).
    pub fn create_stream(&self, config: &StreamConfig) -> Result<Call<StreamInfo>, JetStreamError> {
        Ok(Call::new(self.prefix.stream_create(&config.name)?, body(config), json))
    }

    /// Updates a stream's config.
    pub fn update_stream(&self, config: &StreamConfig) -> Result<Call<StreamInfo>, JetStreamError> {
        Ok(Call::new(self.prefix.stream_update(&config.name)?, body(config), json))
    }

    /// A stream's config and state.
    pub fn stream_info(&self, stream: &str) -> Result<Call<StreamInfo>, JetStreamError> {
        Ok(Call::new(self.prefix.stream_info(stream)?, Bytes::new(), json))
    }

    /// A stream's config and state, with the extra detail `request` asks for (subjects and their counts,
    /// deleted sequences).
    pub fn stream_info_with(
        &self,
        stream: &str,
        request: &StreamInfoRequest,
    ) -> Result<Call<StreamInfo>, JetStreamError> {
        Ok(Call::new(self.prefix.stream_info(stream)?, body(request), json))
    }

    /// Deletes a stream and its messages.
    pub fn delete_stream(&self, stream: &str) -> Result<Call<bool>, JetStreamError> {
        Ok(Call::new(self.prefix.stream_delete(stream)?, Bytes::new(), success))
    }

    /// Purges a stream: everything, or by subject filter, keeping the newest N, or below a sequence.
    pub fn purge_stream(&self, stream: &str, request: &PurgeRequest) -> Result<Call<PurgeResponse>, JetStreamError> {
        request.check()?;
        Ok(Call::new(self.prefix.stream_purge(stream)?, body(request), json))
    }

    /// One page of stream names, from `offset`, of streams storing `subject` if given.
    pub fn stream_names(&self, offset: u64, subject: Option<&str>) -> Call<StreamNamesResponse> {
        let request = PageRequest { offset, subject: subject.unwrap_or_default().to_owned() };
        Call::new(self.prefix.stream_names(), body(&request), json)
    }

    /// One page of stream infos, from `offset`.
    pub fn stream_list(&self, offset: u64, subject: Option<&str>) -> Call<StreamListResponse> {
        let request = PageRequest { offset, subject: subject.unwrap_or_default().to_owned() };
        Call::new(self.prefix.stream_list(), body(&request), json)
    }

    /// A stored message through the stream leader (read-after-write holds). Missing is 10037.
    pub fn get_message(&self, stream: &str, request: &MsgGetRequest) -> Result<Call<StoredMessage>, JetStreamError> {
        Ok(Call::new(self.prefix.stream_msg_get(stream)?, body(request), stored))
    }

    /// Deletes one message; `erase` overwrites its data on disk.
    pub fn delete_message(&self, stream: &str, seq: u64, erase: bool) -> Result<Call<bool>, JetStreamError> {
        let request = MsgDeleteRequest { seq, no_erase: !erase };
        Ok(Call::new(self.prefix.stream_msg_delete(stream)?, body(&request), success))
    }

    /// A stored message through any replica, for streams with `allow_direct`. Missing is status 404.
    pub fn direct_get(&self, stream: &str, request: &MsgGetRequest) -> Result<Call<DirectGetMessage>, JetStreamError> {
        Ok(Call::new(self.prefix.direct_get(stream)?, body(request), DirectGetMessage::from_reply))
    }

    /// The last message on `subject` through any replica (the Key/Value get path).
    pub fn direct_get_last(&self, stream: &str, subject: &str) -> Result<Call<DirectGetMessage>, JetStreamError> {
        Ok(Call::new(self.prefix.direct_get_last(stream, subject)?, Bytes::new(), DirectGetMessage::from_reply))
    }

    /// Creates, updates or upserts a named consumer (`config.name` or `config.durable_name`). With a single
    /// filter subject it goes in the subject too, so permissions can be written per filter.
    pub fn create_consumer(
        &self,
        stream: &str,
        config: &ConsumerConfig,
        action: CreateAction,
    ) -> Result<Call<ConsumerInfo>, JetStreamError> {
        let name = if config.name.is_empty() { &config.durable_name } else { &config.name };
        if name.is_empty() {
            return Err(JetStreamError::InvalidConfig { reason: "a consumer needs a name or durable name".into() });
        }
        if !config.name.is_empty() && !config.durable_name.is_empty() && config.name != config.durable_name {
            return Err(JetStreamError::InvalidConfig { reason: "name and durable_name differ".into() });
        }
        // A literal filter goes in the subject too (for per-filter permissions); a wildcard one cannot, since
        // a subject to publish to must be literal.
        let literal = config.single_filter().filter(|f| f.split('.').all(|t| t != "*" && t != ">"));
        let subject = self.prefix.consumer_create(stream, name, literal)?;
        let request =
            CreateConsumerRequest { stream_name: stream.to_owned(), config: config.clone(), action, pedantic: false };
        Ok(Call::new(subject, body(&request), json))
    }

    /// A consumer's config and state. A missing stream is 10059, a missing consumer 10014.
    pub fn consumer_info(&self, stream: &str, consumer: &str) -> Result<Call<ConsumerInfo>, JetStreamError> {
        Ok(Call::new(self.prefix.consumer_info(stream, consumer)?, Bytes::new(), json))
    }

    /// Pauses a consumer until `until` (it delivers nothing meanwhile), or resumes it with `None` (server
    /// 2.11+).
    pub fn pause_consumer(
        &self,
        stream: &str,
        consumer: &str,
        until: Option<std::time::SystemTime>,
    ) -> Result<Call<ConsumerPauseResponse>, JetStreamError> {
        let request = ConsumerPauseRequest { pause_until: until };
        Ok(Call::new(self.prefix.consumer_pause(stream, consumer)?, body(&request), json))
    }

    /// Unpins the client pinned in a consumer's priority `group`: the next pull of the group gets a new pin
    /// (server 2.11+, policy `pinned_client`).
    pub fn unpin_consumer(&self, stream: &str, consumer: &str, group: &str) -> Result<Call<()>, JetStreamError> {
        if let Some(reason) = crate::pull::PriorityGroup::new(group).problem() {
            return Err(JetStreamError::InvalidConfig { reason: reason.into() });
        }
        let request = ConsumerUnpinRequest { group: group.to_owned() };
        Ok(Call::new(self.prefix.consumer_unpin(stream, consumer)?, body(&request), unit))
    }

    /// Deletes a consumer.
    pub fn delete_consumer(&self, stream: &str, consumer: &str) -> Result<Call<bool>, JetStreamError> {
        Ok(Call::new(self.prefix.consumer_delete(stream, consumer)?, Bytes::new(), success))
    }

    /// One page of a stream's consumer names.
    pub fn consumer_names(&self, stream: &str, offset: u64) -> Result<Call<ConsumerNamesResponse>, JetStreamError> {
        let request = PageRequest { offset, ..PageRequest::default() };
        Ok(Call::new(self.prefix.consumer_names(stream)?, body(&request), json))
    }

    /// One page of a stream's consumer infos.
    pub fn consumer_list(&self, stream: &str, offset: u64) -> Result<Call<ConsumerListResponse>, JetStreamError> {
        let request = PageRequest { offset, ..PageRequest::default() };
        Ok(Call::new(self.prefix.consumer_list(stream)?, body(&request), json))
    }

    /// Where a pull request for `consumer` goes, and its body. Its replies are messages on the request's own
    /// reply subject (a subscription of its own), not one reply: so this is not a [`Call`].
    pub fn pull(&self, stream: &str, consumer: &str, request: &PullRequest) -> Result<(String, Bytes), JetStreamError> {
        Ok((self.prefix.consumer_msg_next(stream, consumer)?, body(request)))
    }

    /// A publish to a stream's subject (not under the API prefix), answered by a [`PubAck`].
    pub fn publish(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
        options: &PublishOptions,
    ) -> Result<Call<PubAck>, JetStreamError> {
        nats_proto::subject::validate_publish_subject(subject.as_bytes())
            .map_err(|error| JetStreamError::InvalidSubject { subject: subject.to_owned(), error })?;
        let mut call = Call::new(subject.to_owned(), payload.into(), pub_ack);
        call.headers = options.to_headers()?;
        Ok(call)
    }

    /// A Key/Value write (put, delete or purge marker) of `key` in `bucket`, with `headers`. Under a domain or
    /// custom prefix the write goes through the prefix (the leaf maps it back).
    pub fn kv_write(
        &self,
        bucket: &str,
        key: &str,
        headers: Option<Headers>,
        payload: impl Into<Bytes>,
    ) -> Result<Call<PubAck>, JetStreamError> {
        crate::kv::validate_bucket(bucket)?;
        crate::kv::validate_key(key)?;
        let mut call = Call::new(self.prefix.kv_put_subject(bucket, key), payload.into(), pub_ack);
        call.headers = headers.filter(|h| !h.is_empty());
        Ok(call)
    }

    /// [`Self::kv_write`] to a bucket's [`KvSubjects`]: a mirror's writes go to its origin, through the
    /// origin's API prefix when it is in another domain.
    pub fn kv_write_to(
        &self,
        subjects: &KvSubjects,
        key: &str,
        headers: Option<Headers>,
        payload: impl Into<Bytes>,
    ) -> Result<Call<PubAck>, JetStreamError> {
        let mut call = self.kv_write(&subjects.bucket, key, headers, payload)?;
        if let Some(api) = &subjects.external_api {
            call.subject = format!("{api}.{}", crate::api::kv_subject(&subjects.bucket, key));
        }
        Ok(call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn subjects_follow_the_prefix() {
        let api = Api::new(ApiPrefix::with_domain("HUB").unwrap());
        assert_eq!(api.account_info().subject(), "$JS.HUB.API.INFO");
        assert_eq!(api.stream_info("S").unwrap().subject(), "$JS.HUB.API.STREAM.INFO.S");
        assert_eq!(api.stream_names(0, None).subject(), "$JS.HUB.API.STREAM.NAMES");
        assert_eq!(api.kv_write("b", "k", None, "v").unwrap().subject(), "$JS.HUB.API.$KV.b.k");
        let api = Api::default();
        assert_eq!(api.kv_write("b", "a.b", None, "v").unwrap().subject(), "$KV.b.a.b");
        assert_eq!(api.publish("orders.new", "x", &PublishOptions::new()).unwrap().subject(), "orders.new");
    }

    #[test]
    fn bodies_are_minimal() {
        let api = Api::default();
        assert_eq!(&api.stream_names(0, None).payload()[..], b"{}");
        assert_eq!(&api.stream_names(5, Some("a.>")).payload()[..], br#"{"offset":5,"subject":"a.>"}"#);
        assert_eq!(&api.delete_message("S", 7, false).unwrap().payload()[..], br#"{"seq":7,"no_erase":true}"#);
        assert_eq!(&api.delete_message("S", 7, true).unwrap().payload()[..], br#"{"seq":7}"#);
    }

    #[test]
    fn consumer_create_puts_a_single_filter_in_the_subject_and_checks_names() {
        let api = Api::default();
        let mut config = ConsumerConfig::named("C");
        config.filter_subject = "orders.*".into();
        let call = api.create_consumer("S", &config, CreateAction::Create).unwrap();
        assert_eq!(call.subject(), "$JS.API.CONSUMER.CREATE.S.C");
        config.filter_subject = "orders.new".into();
        let call = api.create_consumer("S", &config, CreateAction::Create).unwrap();
        assert_eq!(call.subject(), "$JS.API.CONSUMER.CREATE.S.C.orders.new");
        let sent: serde_json::Value = serde_json::from_slice(call.payload()).unwrap();
        assert_eq!(sent["stream_name"], "S");
        assert_eq!(sent["action"], "create");
        config.filter_subject = "orders.>".into();
        let call = api.create_consumer("S", &config, CreateAction::Create).unwrap();
        assert_eq!(call.subject(), "$JS.API.CONSUMER.CREATE.S.C", "a wildcard filter stays in the body only");
        assert!(api.create_consumer("S", &ConsumerConfig::default(), CreateAction::Create).is_err());
        let mut both = ConsumerConfig::named("A");
        both.durable_name = "B".into();
        assert!(api.create_consumer("S", &both, CreateAction::Create).is_err());
        assert!(api.consumer_info("bad.name", "C").is_err());
    }

    #[test]
    fn publish_options_become_headers() {
        let options = PublishOptions::new()
            .msg_id("m1")
            .expected_stream("S")
            .expected_last_sequence(4)
            .expected_last_subject_sequence(0)
            .expected_last_msg_id("m0");
        let call = Api::default().publish("a", "x", &options).unwrap();
        let h = call.headers().unwrap();
        assert_eq!(h.get("Nats-Msg-Id"), Some("m1"));
        assert_eq!(h.get("Nats-Expected-Stream"), Some("S"));
        assert_eq!(h.get("Nats-Expected-Last-Sequence"), Some("4"));
        assert_eq!(h.get("Nats-Expected-Last-Subject-Sequence"), Some("0"));
        assert_eq!(h.get("Nats-Expected-Last-Msg-Id"), Some("m0"));
        assert!(Api::default().publish("a", "x", &PublishOptions::new()).unwrap().headers().is_none());
        assert!(Api::default().publish("a.*", "x", &PublishOptions::new()).is_err(), "wildcards are not publishable");
    }

    #[test]
    fn replies_decode_to_values_or_typed_errors() {
        let api = Api::default();
        let ack = api.publish("a", "x", &PublishOptions::new()).unwrap();
        let got = ack.decode(None, &br#"{"stream":"S","seq":3,"duplicate":true}"#[..]).unwrap();
        assert_eq!((got.stream.as_str(), got.seq, got.duplicate), ("S", 3, true));
        let e = ack
            .decode(None, &br#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 2"}}"#[..])
            .unwrap_err();
        assert_eq!(e.api_error().map(|e| e.kind()), Some(ErrorCode::WrongLastSequence));
        let status = nats_proto::HeaderBlock::parse(bytes::Bytes::from_static(b"NATS/1.0 503\r\n\r\n")).unwrap();
        assert_eq!(ack.decode(Some(status.view()), Bytes::new()).unwrap_err(), JetStreamError::NoResponders);
        assert!(matches!(ack.decode(None, &b"-ERR 'nope'"[..]), Err(JetStreamError::InvalidReply { .. })));
        let del = api.delete_stream("S").unwrap();
        assert!(del.decode(None, &br#"{"success":true}"#[..]).unwrap());
    }

    #[test]
    fn a_mirror_writes_to_its_origin_through_the_origin_domain() {
        use crate::model::{ExternalStream, KvConfig, StreamSource};
        let mirror = StreamSource {
            name: "origin".into(),
            external: Some(ExternalStream { api: "$JS.hub.API".into(), ..Default::default() }),
            ..Default::default()
        };
        let config = KvConfig { mirror: Some(mirror), ..KvConfig::new("copy") }.to_stream_config().unwrap();
        assert_eq!(config.mirror.as_ref().map(|m| m.name.as_str()), Some("KV_origin"));
        assert!(config.mirror_direct && config.subjects.is_empty());
        let subjects = KvSubjects::of("copy", &config);
        assert!(subjects.is_mirror_of_another("copy"));
        let local = Api::new(ApiPrefix::default());
        assert_eq!(local.kv_write_to(&subjects, "k", None, "v").unwrap().subject(), "$JS.hub.API.$KV.origin.k");
        let plain = KvSubjects::of("copy", &KvConfig::new("copy").to_stream_config().unwrap());
        assert_eq!(local.kv_write_to(&plain, "k", None, "v").unwrap().subject(), "$KV.copy.k");
        let leaf = Api::new(ApiPrefix::with_domain("leaf").unwrap());
        assert_eq!(leaf.kv_write_to(&plain, "k", None, "v").unwrap().subject(), "$JS.leaf.API.$KV.copy.k");
    }
}
