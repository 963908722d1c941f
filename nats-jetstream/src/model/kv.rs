//! Key/Value bucket configuration and status (ADR-8): a bucket is the stream `KV_<bucket>`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    Compression, DiscardPolicy, Placement, Republish, StorageType, StreamConfig, StreamInfo, StreamSource,
    SubjectTransform,
};
use crate::api::{kv_stream_name, kv_stream_subjects, validate_bucket};
use crate::error::JetStreamError;

/// The most history (values per key) a bucket may keep.
pub const KV_MAX_HISTORY: i64 = 64;

/// The default and largest duplicate window of a bucket.
const KV_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The shortest limit-marker TTL the server accepts.
const MIN_LIMIT_MARKER_TTL: Duration = Duration::from_secs(1);

/// A Key/Value bucket's configuration; [`KvConfig::to_stream_config`] makes the stream behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvConfig {
    /// Bucket name (`[A-Za-z0-9_-]+`).
    pub bucket: String,
    /// Description.
    pub description: String,
    /// Values kept per key, 1 to 64 (0 means the default, 1).
    pub history: i64,
    /// How long a value lives (zero = forever).
    pub ttl: Duration,
    /// Most bytes in the bucket (0 or -1 = unlimited).
    pub max_bytes: i64,
    /// Largest value (0 or -1 = unlimited).
    pub max_value_size: i32,
    /// File or memory.
    pub storage: StorageType,
    /// Replicas (0 means 1).
    pub replicas: usize,
    /// S2-compress file storage.
    pub compression: bool,
    /// Where replicas go.
    pub placement: Option<Placement>,
    /// Republish writes.
    pub republish: Option<Republish>,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
    /// Leave a marker for this long when a key's last value ages out or is purged (server API level ≥ 1,
    /// at least 1 s; zero = off).
    pub limit_marker_ttl: Duration,
    /// Mirror another bucket (its name, with or without `KV_`; `external` for another domain): the mirror
    /// reads its own copy and writes go to the origin. Excludes `sources`.
    pub mirror: Option<StreamSource>,
    /// Take in the entries of other buckets (names with or without `KV_`): their keys appear in this bucket,
    /// renamed by a subject transform unless the source sets a filter or transforms of its own.
    pub sources: Vec<StreamSource>,
}

/// The bucket a stream or source name names: `origin` for `KV_origin`, the name itself otherwise.
fn bucket_named(name: &str) -> &str {
    name.strip_prefix(crate::kv::STREAM_PREFIX).unwrap_or(name)
}

/// A bucket as a source: the stream `KV_<origin>`, and, into another bucket, its keys renamed into it.
fn kv_source(source: &StreamSource, into: Option<&str>) -> Result<StreamSource, JetStreamError> {
    let origin = bucket_named(&source.name);
    validate_bucket(origin)?;
    let mut source = StreamSource { name: kv_stream_name(origin), ..source.clone() };
    if let Some(into) = into.filter(|&into| into != origin) {
        if source.subject_transforms.is_empty() {
            if !source.filter_subject.is_empty() {
                // Its entries would land under the origin's subjects, where this bucket never looks.
                let reason = format!(
                    "source {origin:?} has a filter but no subject_transforms: give transforms from the filter to \
                     the same keys under $KV.{into}. instead"
                );
                return Err(JetStreamError::InvalidConfig { reason });
            }
            source.subject_transforms =
                vec![SubjectTransform { src: kv_stream_subjects(origin), dest: kv_stream_subjects(into) }];
        }
    }
    Ok(source)
}

/// Where a bucket's entries are stored and where its writes go: a mirror keeps its origin's subjects and
/// writes to its origin (through the origin's API prefix when it is in another domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvSubjects {
    /// The bucket named in the subjects (`$KV.<bucket>.<key>`): the origin's for a mirror, else its own.
    pub bucket: String,
    /// A mirror's origin in another domain: writes go to `<api>.$KV.<bucket>.<key>`.
    pub external_api: Option<String>,
}

impl KvSubjects {
    /// The subjects of bucket `bucket`, whose stream has `config`.
    pub fn of(bucket: &str, config: &StreamConfig) -> Self {
        match &config.mirror {
            Some(mirror) => KvSubjects {
                bucket: bucket_named(&mirror.name).to_owned(),
                external_api: mirror.external.as_ref().map(|e| e.api.clone()).filter(|api| !api.is_empty()),
            },
            None => KvSubjects { bucket: bucket.to_owned(), external_api: None },
        }
    }

    /// True when entries are stored under another bucket's name (a mirror).
    pub fn is_mirror_of_another(&self, bucket: &str) -> bool {
        self.bucket != bucket
    }
}

fn unlimited_if_zero<T: Default + PartialEq + From<i8>>(v: T) -> T {
    if v == T::default() {
        T::from(-1)
    } else {
        v
    }
}

impl KvConfig {
    /// A config for `bucket` with every other setting at its default.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self { bucket: bucket.into(), ..Self::default() }
    }

    /// The config of the stream `KV_<bucket>`, as nats.go and async-nats make it: `max_msgs_per_subject` =
    /// history, `discard: new`, rollups allowed, deletes denied, direct gets allowed, `max_msgs` and
    /// `max_consumers` unlimited, `max_age` = ttl and a duplicate window of 2 minutes or the ttl if shorter.
    ///
    /// Checks the bucket name, the history (1 to 64) and the limit-marker TTL (zero or at least 1 s).
    pub fn to_stream_config(&self) -> Result<StreamConfig, JetStreamError> {
        validate_bucket(&self.bucket)?;
        let history = match self.history {
            0 => 1,
            h @ 1..=KV_MAX_HISTORY => h,
            h => return Err(JetStreamError::InvalidConfig { reason: format!("history {h} is not within 1..=64") }),
        };
        if !self.limit_marker_ttl.is_zero() && self.limit_marker_ttl < MIN_LIMIT_MARKER_TTL {
            return Err(JetStreamError::InvalidConfig { reason: "limit marker TTL must be at least 1 s".into() });
        }
        if self.mirror.is_some() && !self.sources.is_empty() {
            return Err(JetStreamError::InvalidConfig { reason: "a bucket mirrors or sources, not both".into() });
        }
        let mirror = self.mirror.as_ref().map(|m| kv_source(m, None)).transpose()?;
        let sources = self.sources.iter().map(|s| kv_source(s, Some(&self.bucket))).collect::<Result<_, _>>()?;
        let duplicate_window = if self.ttl.is_zero() { KV_DUPLICATE_WINDOW } else { self.ttl.min(KV_DUPLICATE_WINDOW) };
        Ok(StreamConfig {
            name: kv_stream_name(&self.bucket),
            description: self.description.clone(),
            // A mirror takes no subjects of its own: it keeps its origin's.
            subjects: if mirror.is_some() { Vec::new() } else { vec![kv_stream_subjects(&self.bucket)] },
            mirror_direct: mirror.is_some(),
            mirror,
            sources,
            max_msgs_per_subject: history,
            max_bytes: unlimited_if_zero(self.max_bytes),
            max_msg_size: unlimited_if_zero(self.max_value_size),
            max_msgs: -1,
            max_consumers: -1,
            max_age: self.ttl,
            duplicate_window,
            storage: self.storage.clone(),
            num_replicas: self.replicas.max(1),
            compression: if self.compression { Compression::S2 } else { Compression::None },
            discard: DiscardPolicy::New,
            allow_rollup_hdrs: true,
            deny_delete: true,
            allow_direct: true,
            placement: self.placement.clone(),
            republish: self.republish.clone(),
            metadata: self.metadata.clone(),
            allow_msg_ttl: !self.limit_marker_ttl.is_zero(),
            subject_delete_marker_ttl: self.limit_marker_ttl,
            ..StreamConfig::default()
        })
    }
}

/// A bucket's status, read from its stream's info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvStatus {
    /// Bucket name.
    pub bucket: String,
    /// Values stored (all revisions and markers).
    pub values: u64,
    /// History per key.
    pub history: i64,
    /// Value lifetime (zero = forever).
    pub ttl: Duration,
    /// Bytes stored.
    pub bytes: u64,
    /// S2-compressed.
    pub is_compressed: bool,
    /// Limit-marker TTL (zero = off).
    pub limit_marker_ttl: Duration,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
    /// The stream's full info.
    pub info: StreamInfo,
}

impl KvStatus {
    /// What "JetStream" buckets report as their backing store.
    pub const BACKING_STORE: &'static str = "JetStream";

    /// Reads the status from the info of stream `KV_<bucket>`. A stream that is not a bucket (its name lacks
    /// `KV_`, or it keeps less than one value per subject) is [`JetStreamError::InvalidConfig`]: binding to it
    /// would misbehave.
    pub fn from_stream_info(info: StreamInfo) -> Result<Self, JetStreamError> {
        let Some(bucket) = info.config.name.strip_prefix("KV_") else {
            return Err(JetStreamError::InvalidConfig {
                reason: format!("stream {:?} is not a Key/Value bucket", info.config.name),
            });
        };
        if info.config.max_msgs_per_subject < 1 {
            return Err(JetStreamError::InvalidConfig {
                reason: format!("bucket {bucket:?} keeps {} values per key", info.config.max_msgs_per_subject),
            });
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            values: info.state.messages,
            history: info.config.max_msgs_per_subject,
            ttl: info.config.max_age,
            bytes: info.state.bytes,
            is_compressed: info.config.compression == Compression::S2,
            limit_marker_ttl: info.config.subject_delete_marker_ttl,
            metadata: info.config.metadata.clone(),
            info,
        })
    }
}
