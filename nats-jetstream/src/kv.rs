//! Key/Value rules (ADR-8): names, keys and filters, operations and entries, the headers of delete, purge and
//! compare-and-set puts, the end-of-initial-data marker of a watch, and the create-after-delete decision.
//!
//! A bucket is the stream `KV_<bucket>` over `$KV.<bucket>.>`; the value of a key is the last message on
//! `$KV.<bucket>.<key>`. Nothing here sends anything: drivers build subjects with [`crate::api`] and feed
//! received messages and replies into these functions.
//!
//! ```
//! use nats_jetstream::kv::{validate_key, validate_put_key, Operation, WatchTracker};
//!
//! assert!(validate_key("sensors.kitchen/temp=1").is_ok());
//! assert!(validate_key("a..b").is_err());
//! assert!(validate_put_key("_kv.internal").is_err());
//! assert_eq!(Operation::from_headers(None), Operation::Put);
//!
//! let mut watch = WatchTracker::new(2);
//! assert!(!watch.start());
//! assert!(!watch.on_entry(1));
//! assert!(watch.on_entry(0)); // the marker follows this entry
//! assert!(!watch.on_entry(0)); // and is never repeated
//! ```

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use nats_proto::{HeaderView, Headers};

use crate::ack::AckMetadata;
use crate::error::{ErrorCode, JetStreamError};
use crate::model::DeliverPolicy;
use crate::ordered::OrderedConfig;

/// Header naming a KV operation on a marker message (`DEL` or `PURGE`).
pub const KV_OPERATION: &str = "KV-Operation";
/// Header the server puts on the markers it writes itself (`MaxAge`, `Purge`, `Remove`).
pub const MARKER_REASON: &str = "Nats-Marker-Reason";
/// Header asking for a rollup (`sub` drops the subject's history).
pub const ROLLUP: &str = "Nats-Rollup";
/// Header of an optimistic-concurrency put: the last sequence on the subject must be this.
pub const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";
/// Header of a per-message time to live.
pub const TTL: &str = "Nats-TTL";

/// The prefix of every KV subject.
pub const SUBJECT_PREFIX: &str = "$KV.";
/// The prefix of every KV stream name.
pub const STREAM_PREFIX: &str = "KV_";

/// Checks a bucket name against `^[A-Za-z0-9_-]+$`.
pub fn validate_bucket(bucket: &str) -> Result<(), JetStreamError> {
    let fail = |reason| Err(JetStreamError::InvalidBucket { bucket: bucket.to_owned(), reason });
    if bucket.is_empty() {
        return fail("empty");
    }
    if !bucket.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return fail("only A-Z, a-z, 0-9, '_' and '-' are allowed");
    }
    Ok(())
}

fn key_error(key: &str, reason: &'static str) -> JetStreamError {
    JetStreamError::InvalidKey { key: key.to_owned(), reason }
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=' | b'.')
}

/// Shape rules shared by keys and filters: not empty, no leading or trailing `.`, no `..`.
fn check_dots(key: &str) -> Result<(), JetStreamError> {
    if key.is_empty() {
        return Err(key_error(key, "empty"));
    }
    if key.starts_with('.') || key.ends_with('.') {
        return Err(key_error(key, "must not start or end with '.'"));
    }
    if key.contains("..") {
        return Err(key_error(key, "must not contain an empty token ('..')"));
    }
    Ok(())
}

/// Checks a key for reading (get, history, delete): `^[-/_=.A-Za-z0-9]+$`, no leading or trailing `.`, no `..`.
pub fn validate_key(key: &str) -> Result<(), JetStreamError> {
    check_dots(key)?;
    if !key.bytes().all(is_key_byte) {
        return Err(key_error(key, "only A-Z, a-z, 0-9 and '-', '/', '_', '=', '.' are allowed"));
    }
    Ok(())
}

/// Checks a key for writing (put, create, update): [`validate_key`], and keys starting `_kv` are reserved.
pub fn validate_put_key(key: &str) -> Result<(), JetStreamError> {
    validate_key(key)?;
    if key.starts_with("_kv") {
        return Err(key_error(key, "keys starting with '_kv' are reserved"));
    }
    Ok(())
}

/// Checks a watch or keys filter: like a key, but a token may also be `*`, and the last token may be `>`.
pub fn validate_filter(filter: &str) -> Result<(), JetStreamError> {
    check_dots(filter)?;
    let mut tokens = filter.split('.').peekable();
    while let Some(token) = tokens.next() {
        let last = tokens.peek().is_none();
        match token {
            "*" => {}
            ">" if last => {}
            ">" => return Err(key_error(filter, "'>' may only be the last token")),
            t if t.bytes().all(is_key_byte) => {}
            _ => return Err(key_error(filter, "wildcards must be whole tokens; other characters as for keys")),
        }
    }
    Ok(())
}

/// The stream backing `bucket`: `KV_<bucket>`.
pub fn stream_name(bucket: &str) -> String {
    format!("{STREAM_PREFIX}{bucket}")
}

/// The key of a message delivered on `$KV.<bucket>.<key>`, or `None` when `subject` is not in the bucket.
pub fn key_from_subject<'a>(bucket: &str, subject: &'a str) -> Option<&'a str> {
    let key = subject.strip_prefix(SUBJECT_PREFIX)?.strip_prefix(bucket)?.strip_prefix('.')?;
    (!key.is_empty()).then_some(key)
}

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A value was put.
    Put,
    /// The key was deleted; its history is kept (`KV-Operation: DEL`, or a server `Remove` marker).
    Delete,
    /// The key was purged; its history is gone (`KV-Operation: PURGE`, or a server `MaxAge`/`Purge` marker).
    Purge,
}

impl Operation {
    /// The operation a message's headers record: `KV-Operation` first, then `Nats-Marker-Reason`, else put.
    pub fn from_headers(headers: Option<HeaderView<'_>>) -> Self {
        let Some(headers) = headers else { return Operation::Put };
        if let Some(op) = headers.get(KV_OPERATION) {
            match op.trim() {
                "DEL" => return Operation::Delete,
                "PURGE" => return Operation::Purge,
                _ => {}
            }
        }
        match headers.get(MARKER_REASON).map(str::trim) {
            Some("MaxAge" | "Purge") => Operation::Purge,
            Some("Remove") => Operation::Delete,
            _ => Operation::Put,
        }
    }

    /// The `KV-Operation` header value (`PUT`, `DEL`, `PURGE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Put => "PUT",
            Operation::Delete => "DEL",
            Operation::Purge => "PURGE",
        }
    }

    /// True for delete and purge markers: a get of such an entry answers "not found".
    pub fn is_marker(self) -> bool {
        self != Operation::Put
    }
}

/// One revision of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The bucket its subject names (for a mirror bucket, the origin it mirrors).
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The value (empty for markers).
    pub value: Bytes,
    /// The revision: the message's stream sequence.
    pub revision: u64,
    /// When the revision was stored.
    pub created: SystemTime,
    /// How many newer entries the watch that delivered this one had still to deliver (0 from a get).
    pub delta: u64,
    /// What the entry records.
    pub operation: Operation,
}

impl Entry {
    /// An entry from a message delivered by a watch (an ordered consumer on the bucket): the key comes from the
    /// subject, revision, time and delta from the message's ack metadata. `None` when the subject is not
    /// `$KV.<bucket>.<key>`.
    pub fn from_message(
        bucket: &str,
        subject: &str,
        headers: Option<HeaderView<'_>>,
        payload: Bytes,
        meta: &AckMetadata<'_>,
    ) -> Option<Self> {
        let key = key_from_subject(bucket, subject)?;
        Some(Entry {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            value: payload,
            revision: meta.stream_sequence,
            created: meta.timestamp,
            delta: meta.pending,
            operation: Operation::from_headers(headers),
        })
    }

    /// An entry from a direct-get reply, given its already parsed `Nats-Subject`, `Nats-Sequence` and
    /// `Nats-Time-Stamp` headers. `None` when the subject is not `$KV.<bucket>.<key>` (a `get(revision)` that
    /// landed on another key: "not found").
    pub fn from_direct_get(
        bucket: &str,
        subject: &str,
        sequence: u64,
        time: SystemTime,
        headers: Option<HeaderView<'_>>,
        payload: Bytes,
    ) -> Option<Self> {
        let key = key_from_subject(bucket, subject)?;
        Some(Entry {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            value: payload,
            revision: sequence,
            created: time,
            delta: 0,
            operation: Operation::from_headers(headers),
        })
    }
}

/// Formats a TTL the way the server reads `Nats-TTL` (a Go duration: `90s`, `1500ms`).
pub fn format_ttl(ttl: Duration) -> String {
    if ttl.subsec_nanos() == 0 {
        format!("{}s", ttl.as_secs())
    } else if ttl.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", ttl.as_millis())
    } else {
        format!("{}ns", ttl.as_nanos())
    }
}

fn insert(headers: &mut Headers, name: &str, value: &str) {
    // Names are constants and values digits or fixed words: nothing a header block can refuse.
    let inserted = headers.insert(name, value);
    debug_assert!(inserted.is_ok());
}

/// How long a delete or purge marker is kept by [`purge_deletes`](crate::blocking::Store::purge_deletes) by
/// default: older markers go with their key's whole history, younger ones are kept (alone).
pub const PURGE_DELETES_OLDER_THAN: Duration = Duration::from_secs(30 * 60);

/// How many messages of a marker's key to keep when deletes are purged: none once the marker is older
/// than `older_than`, else the marker itself.
pub fn purge_deletes_keep(created: SystemTime, now: SystemTime, older_than: Duration) -> u64 {
    let age = now.duration_since(created).unwrap_or_default();
    u64::from(age < older_than)
}

/// What a watch starts with and yields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchOptions {
    /// Keys or filters (`*`, `>`) to watch; empty: every key.
    pub keys: Vec<String>,
    /// Only changes from now on: no initial entries (the initial-data marker comes at once).
    pub updates_only: bool,
    /// Every revision still stored first, not only the latest of each key.
    pub include_history: bool,
    /// Leave delete and purge markers out.
    pub ignore_deletes: bool,
    /// Entries without their values: keys, revisions and operations only.
    pub meta_only: bool,
}

impl WatchOptions {
    /// Watches these keys or filters.
    pub fn keys<S: Into<String>>(keys: impl IntoIterator<Item = S>) -> Self {
        Self { keys: keys.into_iter().map(Into::into).collect(), ..Self::default() }
    }

    /// The ordered consumer of the watch over `bucket`.
    pub fn to_ordered_config(&self, bucket: &str) -> Result<OrderedConfig, JetStreamError> {
        validate_bucket(bucket)?;
        if self.updates_only && self.include_history {
            return Err(JetStreamError::InvalidConfig { reason: "a watch of updates only has no history".into() });
        }
        let all = [">".to_owned()];
        let keys = if self.keys.is_empty() { &all[..] } else { &self.keys[..] };
        let mut filter_subjects = Vec::with_capacity(keys.len());
        for key in keys {
            validate_filter(key)?;
            filter_subjects.push(crate::api::kv_subject(bucket, key));
        }
        let deliver_policy = match (self.updates_only, self.include_history) {
            (true, _) => DeliverPolicy::New,
            (_, true) => DeliverPolicy::All,
            _ => DeliverPolicy::LastPerSubject,
        };
        Ok(OrderedConfig { filter_subjects, deliver_policy, headers_only: self.meta_only, ..OrderedConfig::default() })
    }
}

/// Headers of an update (compare-and-set put): the key's last revision must be `revision` (0: the key has
/// no value yet, which is how create is done).
pub fn update_headers(revision: u64) -> Headers {
    let mut h = Headers::new();
    insert(&mut h, EXPECTED_LAST_SUBJECT_SEQUENCE, &revision.to_string());
    h
}

/// Headers of a create: [`update_headers`] at revision 0, plus `Nats-TTL` when a TTL is asked for.
pub fn create_headers(ttl: Option<Duration>) -> Headers {
    let mut h = update_headers(0);
    if let Some(ttl) = ttl {
        insert(&mut h, TTL, &format_ttl(ttl));
    }
    h
}

/// Headers of a delete marker (`KV-Operation: DEL`; history is kept), optionally only if the key's last
/// revision is `expected`.
pub fn delete_headers(expected: Option<u64>) -> Headers {
    let mut h = Headers::new();
    insert(&mut h, KV_OPERATION, Operation::Delete.as_str());
    if let Some(rev) = expected {
        insert(&mut h, EXPECTED_LAST_SUBJECT_SEQUENCE, &rev.to_string());
    }
    h
}

/// Headers of a purge marker (`KV-Operation: PURGE` and `Nats-Rollup: sub`; history is dropped), optionally
/// only if the key's last revision is `expected`, optionally with a TTL for the marker itself.
pub fn purge_headers(expected: Option<u64>, ttl: Option<Duration>) -> Headers {
    let mut h = Headers::new();
    insert(&mut h, KV_OPERATION, Operation::Purge.as_str());
    insert(&mut h, ROLLUP, "sub");
    if let Some(rev) = expected {
        insert(&mut h, EXPECTED_LAST_SUBJECT_SEQUENCE, &rev.to_string());
    }
    if let Some(ttl) = ttl {
        insert(&mut h, TTL, &format_ttl(ttl));
    }
    h
}

/// Tracks when a watch has delivered its initial data, so that the end-of-initial-data marker is sent
/// exactly once: at once when the consumer had nothing pending when created, else after the entry that
/// brings the received count up to the initial pending, or after the first entry with `delta == 0`.
///
/// Feed every entry the consumer delivers, including those the watch filters out (`ignore_deletes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchTracker {
    initial_pending: u64,
    received: u64,
    done: bool,
}

impl WatchTracker {
    /// A tracker for a watch whose consumer reported `initial_pending` messages (`num_pending` of the create
    /// reply).
    pub fn new(initial_pending: u64) -> Self {
        WatchTracker { initial_pending, received: 0, done: false }
    }

    /// Call once, right after the consumer is created: true when the marker is due at once (nothing pending).
    pub fn start(&mut self) -> bool {
        if self.done || self.initial_pending > 0 {
            return false;
        }
        self.done = true;
        true
    }

    /// Call for each delivered entry with its `delta`: true when the marker is due right after this entry.
    pub fn on_entry(&mut self, delta: u64) -> bool {
        if self.done {
            return false;
        }
        self.received += 1;
        if self.received >= self.initial_pending || delta == 0 {
            self.done = true;
            return true;
        }
        false
    }

    /// True once the marker has been due.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Entries seen before the marker.
    pub fn received(&self) -> u64 {
        self.received
    }
}

/// What to do after a create (an update at revision 0) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateRetry {
    /// The key's latest entry is a delete or purge marker: update at that revision instead.
    Update {
        /// The marker's revision.
        revision: u64,
    },
    /// The key has a live value: report "key exists".
    KeyExists,
    /// The failure was not a revision mismatch: report it as is.
    Fail,
}

/// Decides what follows a failed create, from its error and the key's latest entry (operation and revision,
/// `None` when there is none). Only a revision mismatch (10071 or 10164) can mean "the key was deleted": then
/// a delete or purge marker turns the create into an update at the marker's revision, and a live value (or no
/// entry at all, a race with a concurrent purge) is "key exists".
pub fn after_create_failed(error: &JetStreamError, latest: Option<(Operation, u64)>) -> CreateRetry {
    if error.error_code() != Some(ErrorCode::WrongLastSequence) {
        return CreateRetry::Fail;
    }
    match latest {
        Some((op, revision)) if op.is_marker() => CreateRetry::Update { revision },
        _ => CreateRetry::KeyExists,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;

    fn block(text: &str) -> nats_proto::HeaderBlock {
        nats_proto::HeaderBlock::parse(Bytes::copy_from_slice(text.as_bytes())).expect("valid block")
    }

    #[test]
    fn bucket_names() {
        for ok in ["a", "A-b_9", "KV", "-", "_"] {
            assert!(validate_bucket(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a.b", "a b", "a*", "a>", "ä", "a/b", "a=b"] {
            assert!(
                matches!(validate_bucket(bad), Err(JetStreamError::InvalidBucket { ref bucket, .. }) if bucket == bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys() {
        for ok in ["a", "a.b", "a-b/c_d=e", "A.9", "x._kv", "0"] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".a", "a.", "a..b", "a b", "a*", "a.>", "ä", "a:b", "a\tb"] {
            assert!(matches!(validate_key(bad), Err(JetStreamError::InvalidKey { .. })), "{bad}");
        }
        assert!(validate_key("_kv.x").is_ok());
        assert!(validate_put_key("_kv.x").is_err());
        assert!(validate_put_key("_kvx").is_err());
        assert!(validate_put_key("x_kv").is_ok());
        assert!(validate_put_key("a..b").is_err());
    }

    #[test]
    fn filters() {
        for ok in ["a", "*", ">", "a.*", "a.>", "*.b.>", "a/b.*.c"] {
            assert!(validate_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["", ">.a", "a.>.b", "a*", "a.b>", ".a", "a.", "a..b", "a b"] {
            assert!(validate_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subjects() {
        assert_eq!(stream_name("b"), "KV_b");
        assert_eq!(key_from_subject("b", "$KV.b.k.x"), Some("k.x"));
        assert_eq!(key_from_subject("b", "$KV.bb.k"), None);
        assert_eq!(key_from_subject("b", "$KV.b."), None);
        assert_eq!(key_from_subject("b", "$KV.b"), None);
        assert_eq!(key_from_subject("b", "KV.b.k"), None);
    }

    #[test]
    fn operations() {
        let table = [
            ("NATS/1.0\r\n\r\n", Operation::Put),
            ("NATS/1.0\r\nKV-Operation: DEL\r\n\r\n", Operation::Delete),
            ("NATS/1.0\r\nKV-Operation: PURGE\r\nNats-Rollup: sub\r\n\r\n", Operation::Purge),
            ("NATS/1.0\r\nKV-Operation: PUT\r\n\r\n", Operation::Put),
            ("NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\n\r\n", Operation::Purge),
            ("NATS/1.0\r\nNats-Marker-Reason: Purge\r\n\r\n", Operation::Purge),
            ("NATS/1.0\r\nNats-Marker-Reason: Remove\r\n\r\n", Operation::Delete),
            ("NATS/1.0\r\nNats-Marker-Reason: Other\r\n\r\n", Operation::Put),
        ];
        for (text, want) in table {
            assert_eq!(Operation::from_headers(Some(block(text).view())), want, "{text:?}");
        }
        assert_eq!(Operation::from_headers(None), Operation::Put);
        assert!(Operation::Delete.is_marker() && Operation::Purge.is_marker() && !Operation::Put.is_marker());
    }

    #[test]
    fn marker_headers() {
        let d = delete_headers(None);
        assert_eq!(d.get(KV_OPERATION), Some("DEL"));
        assert_eq!(d.len(), 1);
        assert_eq!(delete_headers(Some(4)).get(EXPECTED_LAST_SUBJECT_SEQUENCE), Some("4"));
        let p = purge_headers(Some(9), Some(Duration::from_secs(60)));
        assert_eq!(p.get(KV_OPERATION), Some("PURGE"));
        assert_eq!(p.get(ROLLUP), Some("sub"));
        assert_eq!(p.get(EXPECTED_LAST_SUBJECT_SEQUENCE), Some("9"));
        assert_eq!(p.get(TTL), Some("60s"));
        assert_eq!(purge_headers(None, None).len(), 2);
        assert_eq!(update_headers(12).get(EXPECTED_LAST_SUBJECT_SEQUENCE), Some("12"));
        let c = create_headers(Some(Duration::from_millis(1500)));
        assert_eq!(c.get(EXPECTED_LAST_SUBJECT_SEQUENCE), Some("0"));
        assert_eq!(c.get(TTL), Some("1500ms"));
        assert_eq!(format_ttl(Duration::from_nanos(1_000_000_001)), "1000000001ns");
    }

    #[test]
    fn entries() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        let e = Entry::from_direct_get(
            "b",
            "$KV.b.k",
            7,
            t,
            Some(block("NATS/1.0\r\nKV-Operation: DEL\r\n\r\n").view()),
            Bytes::new(),
        )
        .unwrap();
        assert_eq!((e.key.as_str(), e.revision, e.created, e.delta, e.operation), ("k", 7, t, 0, Operation::Delete));
        assert!(Entry::from_direct_get("b", "$KV.c.k", 7, t, None, Bytes::new()).is_none());

        let meta = AckMetadata::parse("$JS.ACK.KV_b.c.1.42.3.1000000000.5").unwrap();
        let e = Entry::from_message("b", "$KV.b.x.y", None, Bytes::from_static(b"v"), &meta).unwrap();
        assert_eq!(e.bucket, "b");
        assert_eq!(e.key, "x.y");
        assert_eq!(&e.value[..], b"v");
        assert_eq!(e.revision, 42);
        assert_eq!(e.delta, 5);
        assert_eq!(e.created, SystemTime::UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(e.operation, Operation::Put);
        assert!(Entry::from_message("b", "other", None, Bytes::new(), &meta).is_none());
    }

    #[test]
    fn watch_marker() {
        // Empty bucket: at once, then never again.
        let mut w = WatchTracker::new(0);
        assert!(w.start());
        assert!(!w.start());
        assert!(!w.on_entry(0));
        assert!(w.is_done());

        // Filled bucket: after the count is reached.
        let mut w = WatchTracker::new(3);
        assert!(!w.start());
        assert!(!w.on_entry(5));
        assert!(!w.on_entry(4));
        assert!(w.on_entry(3));
        assert_eq!(w.received(), 3);
        assert!(!w.on_entry(0));

        // Or at the first entry with delta 0 (keys were purged meanwhile, or last-per-subject).
        let mut w = WatchTracker::new(10);
        assert!(!w.start());
        assert!(!w.on_entry(1));
        assert!(w.on_entry(0));
        assert!(!w.on_entry(0));
    }

    #[test]
    fn create_after_delete() {
        let wrong =
            |code| JetStreamError::Api(ApiError { code: 400, err_code: Some(code), description: "wrong".into() });
        assert_eq!(
            after_create_failed(&wrong(10071), Some((Operation::Delete, 5))),
            CreateRetry::Update { revision: 5 }
        );
        assert_eq!(
            after_create_failed(&wrong(10164), Some((Operation::Purge, 8))),
            CreateRetry::Update { revision: 8 }
        );
        assert_eq!(after_create_failed(&wrong(10071), Some((Operation::Put, 5))), CreateRetry::KeyExists);
        assert_eq!(after_create_failed(&wrong(10071), None), CreateRetry::KeyExists);
        assert_eq!(after_create_failed(&wrong(10059), Some((Operation::Delete, 5))), CreateRetry::Fail);
        assert_eq!(after_create_failed(&JetStreamError::NoResponders, None), CreateRetry::Fail);
    }
}
