//! Serde models of JetStream requests and replies (`io.nats.jetstream.api.v1`).
//!
//! **Lenient in.** Replies gain fields and enum values with every server release, so every struct reads with
//! `#[serde(default)]` and ignores unknown fields; `null` reads as empty where Go may write one; every enum has
//! an `Unknown(String)` variant that keeps a value this version does not know (and writes it back unchanged).
//!
//! **Minimal out.** Since API level 1 the server rejects unknown request fields, so a request carries only
//! what was set: a field at its default is not written, and each default is what the server assumes for an
//! absent field (0 limits become -1, a zero duration is "server default", an empty string is "unset"). The one
//! exception is [`ConsumerConfig::ack_policy`], always written, because our default (`explicit`, like nats.go
//! and async-nats) differs from the server's (`none`).
//!
//! Durations are [`std::time::Duration`] written as integer nanoseconds; times are [`std::time::SystemTime`]
//! written as RFC 3339 (UTC); stored message bodies are decoded from base64 into [`bytes::Bytes`].
//!
//! ```
//! use nats_jetstream::model::{StreamConfig, StorageType};
//!
//! let config =
//!     StreamConfig { subjects: vec!["orders.>".into()], storage: StorageType::Memory, ..StreamConfig::new("ORDERS") };
//! assert_eq!(serde_json::to_string(&config)?, r#"{"name":"ORDERS","subjects":["orders.>"],"storage":"memory"}"#);
//! # Ok::<(), serde_json::Error>(())
//! ```

mod account;
mod base64;
mod consumer;
mod kv;
mod message;
pub(crate) mod nanos;
mod object;
mod paging;
mod publish;
mod stream;
pub(crate) mod time;

pub use account::{AccountInfo, AccountLimits, ApiStats, TierInfo};
pub use consumer::{
    AckPolicy, ConsumerConfig, ConsumerInfo, ConsumerPauseRequest, ConsumerPauseResponse, ConsumerUnpinRequest,
    CreateAction, CreateConsumerRequest, DeliverPolicy, PriorityGroupState, PriorityPolicy, PullRequest, ReplayPolicy,
    SequenceInfo,
};
pub use kv::{KvConfig, KvStatus, KvSubjects, KV_MAX_HISTORY};
pub use message::{DirectGetMessage, MsgDeleteRequest, MsgGetRequest, MsgGetResponse, StoredMessage};
pub use object::{ObjectInfo, ObjectLink, ObjectMeta, ObjectOptions, ObjectStoreConfig, ObjectStoreStatus};
pub use paging::{
    ConsumerListResponse, ConsumerNamesResponse, PageRequest, Paged, Pager, StreamListResponse, StreamNamesResponse,
};
pub use publish::PubAck;
pub use stream::{
    ClusterInfo, Compression, ConsumerLimits, DiscardPolicy, ExternalStream, LostStreamData, PeerInfo, PersistMode,
    Placement, PurgeRequest, PurgeResponse, Republish, RetentionPolicy, SourceInfo, StorageType, StreamAlternate,
    StreamConfig, StreamCreateResponse, StreamInfo, StreamInfoRequest, StreamSource, StreamState, SubjectTransform,
    SuccessResponse,
};

pub(crate) use base64::encode_url;

use serde::{Deserialize, Deserializer};

/// True when `v` is its type's default: such a field is left out of a request.
pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Reads `null` as the default (Go writes a nil slice or map as `null`).
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Defines a string enum of the wire with an `Unknown(String)` catch-all, its default (what the server assumes
/// when the field is absent, also what `null` reads as), `as_str`, `Display` and serde.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident, default = $default:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[non_exhaustive]
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept as received so it is written back unchanged.
            Unknown(String),
        }

        impl $name {
            /// The value as written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Unknown(text) => text,
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::$default
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <Option<String> as serde::Deserialize>::deserialize(d)?;
                Ok(text.map(|t| Self::from(t.as_str())).unwrap_or_default())
            }
        }
    };
}
pub(crate) use wire_enum;
