//! Object store configuration, status and object descriptions (ADR-20): a store is the stream `OBJ_<bucket>`
//! over `$O.<bucket>.C.>` (chunks) and `$O.<bucket>.M.>` (one meta message per object name).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{is_default, Compression, DiscardPolicy, Placement, StorageType, StreamConfig, StreamInfo};
use crate::api::validate_bucket;
use crate::error::JetStreamError;
use crate::object::{chunks_filter, meta_filter, stream_name, STREAM_PREFIX};

/// An object store's configuration; [`ObjectStoreConfig::to_stream_config`] makes the stream behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectStoreConfig {
    /// Bucket name (`[A-Za-z0-9_-]+`).
    pub bucket: String,
    /// Description.
    pub description: String,
    /// How long an object lives (zero = forever).
    pub ttl: Duration,
    /// Most bytes in the store (0 or -1 = unlimited).
    pub max_bytes: i64,
    /// File or memory.
    pub storage: StorageType,
    /// Replicas (0 means 1).
    pub replicas: usize,
    /// S2-compress file storage.
    pub compression: bool,
    /// Where replicas go.
    pub placement: Option<Placement>,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
}

impl ObjectStoreConfig {
    /// A config for `bucket` with every other setting at its default.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self { bucket: bucket.into(), ..Self::default() }
    }

    /// The config of the stream `OBJ_<bucket>`, as nats.go and async-nats make it: both subject spaces,
    /// `discard: new`, rollups and direct gets allowed, `max_age` = ttl.
    pub fn to_stream_config(&self) -> Result<StreamConfig, JetStreamError> {
        validate_bucket(&self.bucket)?;
        Ok(StreamConfig {
            name: stream_name(&self.bucket),
            description: self.description.clone(),
            subjects: vec![chunks_filter(&self.bucket), meta_filter(&self.bucket)],
            max_age: self.ttl,
            max_bytes: if self.max_bytes == 0 { -1 } else { self.max_bytes },
            storage: self.storage.clone(),
            num_replicas: self.replicas.max(1),
            compression: if self.compression { Compression::S2 } else { Compression::None },
            discard: DiscardPolicy::New,
            allow_rollup_hdrs: true,
            allow_direct: true,
            placement: self.placement.clone(),
            metadata: self.metadata.clone(),
            ..StreamConfig::default()
        })
    }
}

/// A store's status, read from its stream's info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStoreStatus {
    /// Bucket name.
    pub bucket: String,
    /// Description.
    pub description: String,
    /// Object lifetime (zero = forever).
    pub ttl: Duration,
    /// File or memory.
    pub storage: StorageType,
    /// Replicas.
    pub replicas: usize,
    /// Sealed: no more changes.
    pub sealed: bool,
    /// Bytes stored (chunks and meta messages).
    pub size: u64,
    /// S2-compressed.
    pub is_compressed: bool,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
    /// The stream's full info.
    pub info: StreamInfo,
}

impl ObjectStoreStatus {
    /// Reads the status from the info of stream `OBJ_<bucket>`; a stream that is not a store is
    /// [`JetStreamError::InvalidConfig`].
    pub fn from_stream_info(info: StreamInfo) -> Result<Self, JetStreamError> {
        let Some(bucket) = info.config.name.strip_prefix(STREAM_PREFIX) else {
            return Err(JetStreamError::InvalidConfig {
                reason: format!("stream {:?} is not an object store", info.config.name),
            });
        };
        Ok(Self {
            bucket: bucket.to_owned(),
            description: info.config.description.clone(),
            ttl: info.config.max_age,
            storage: info.config.storage.clone(),
            replicas: info.config.num_replicas,
            sealed: info.config.sealed,
            size: info.state.bytes,
            is_compressed: info.config.compression == Compression::S2,
            metadata: info.config.metadata.clone(),
            info,
        })
    }
}

/// A link to another object, or to a whole store (`name` empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectLink {
    /// The store linked to.
    pub bucket: String,
    /// The object linked to; empty for a link to the store.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// Options of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectOptions {
    /// The object is a link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<ObjectLink>,
    /// The chunk size it was written with (0 = the default, 128 KiB).
    #[serde(skip_serializing_if = "is_default")]
    pub max_chunk_size: u32,
}

/// What a writer says about an object: its name and descriptive fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectMeta {
    /// The object's name (any non-empty string).
    pub name: String,
    /// Description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Headers, as NATS headers are: a name to its values.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "super::null_default")]
    pub headers: BTreeMap<String, Vec<String>>,
    /// User metadata.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "super::null_default")]
    pub metadata: BTreeMap<String, String>,
    /// Options (links, chunk size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<ObjectOptions>,
}

impl ObjectMeta {
    /// Meta for an object named `name`, nothing else set.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }
}

/// Everything stored about an object: its meta, where its chunks are and what they must add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectInfo {
    /// Name, description, headers, metadata, options.
    #[serde(flatten)]
    pub meta: ObjectMeta,
    /// The store it is in.
    pub bucket: String,
    /// The unique id of this version's chunks (`$O.<bucket>.C.<nuid>`).
    pub nuid: String,
    /// Size in bytes.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u32,
    /// `SHA-256=<base64url>` of the content.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// A delete marker: the object was deleted.
    #[serde(skip_serializing_if = "is_default")]
    pub deleted: bool,
    /// When this version was written: the time of its meta message (never stored in the JSON).
    #[serde(skip)]
    pub modified: Option<SystemTime>,
}

impl ObjectInfo {
    /// The object's name.
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// The link, when this object is one.
    pub fn link(&self) -> Option<&ObjectLink> {
        self.meta.options.as_ref().and_then(|o| o.link.as_ref())
    }
}
