//! Paged listings (`STREAM.NAMES`, `STREAM.LIST`, `CONSUMER.NAMES`, `CONSUMER.LIST`) and [`Pager`], which walks
//! them.
//!
//! A page reply carries `total`, `offset` and `limit`. The next request asks for `offset` = items seen so far;
//! the walk ends when a page comes back empty or `offset + items ≥ total`. Items can appear or vanish between
//! pages, so the same name may come twice: the pager drops repeats.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{is_default, null_default, ConsumerInfo, StreamInfo};

/// The body of a names or list request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PageRequest {
    /// Skip this many items.
    #[serde(skip_serializing_if = "is_default")]
    pub offset: u64,
    /// Streams only: those that store this subject (wildcards allowed), how "stream by subject" is done.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subject: String,
}

/// The reply to `STREAM.NAMES`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamNamesResponse {
    /// Items in the whole listing.
    pub total: u64,
    /// Offset of this page.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
    /// Stream names.
    #[serde(deserialize_with = "null_default")]
    pub streams: Vec<String>,
}

/// The reply to `STREAM.LIST`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamListResponse {
    /// Items in the whole listing.
    pub total: u64,
    /// Offset of this page.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
    /// Stream infos.
    #[serde(deserialize_with = "null_default")]
    pub streams: Vec<StreamInfo>,
    /// Streams whose info did not arrive in time (clustered).
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub missing: Vec<String>,
    /// Offline streams and why.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_default")]
    pub offline: BTreeMap<String, String>,
}

/// The reply to `CONSUMER.NAMES`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerNamesResponse {
    /// Items in the whole listing.
    pub total: u64,
    /// Offset of this page.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
    /// Consumer names.
    #[serde(deserialize_with = "null_default")]
    pub consumers: Vec<String>,
}

/// The reply to `CONSUMER.LIST`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerListResponse {
    /// Items in the whole listing.
    pub total: u64,
    /// Offset of this page.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
    /// Consumer infos.
    #[serde(deserialize_with = "null_default")]
    pub consumers: Vec<ConsumerInfo>,
    /// Consumers whose info did not arrive in time (clustered).
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub missing: Vec<String>,
    /// Offline consumers and why.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_default")]
    pub offline: BTreeMap<String, String>,
}

/// A page of a listing, for [`Pager`].
pub trait Paged {
    /// What the page lists.
    type Item;
    /// Items in the whole listing.
    fn total(&self) -> u64;
    /// The items of this page.
    fn into_items(self) -> Vec<Self::Item>;
    /// The name that identifies an item (for de-duplication).
    fn key(item: &Self::Item) -> &str;
}

impl Paged for StreamNamesResponse {
    type Item = String;
    fn total(&self) -> u64 {
        self.total
    }
    fn into_items(self) -> Vec<String> {
        self.streams
    }
    fn key(item: &String) -> &str {
        item
    }
}

impl Paged for StreamListResponse {
    type Item = StreamInfo;
    fn total(&self) -> u64 {
        self.total
    }
    fn into_items(self) -> Vec<StreamInfo> {
        self.streams
    }
    fn key(item: &StreamInfo) -> &str {
        &item.config.name
    }
}

impl Paged for ConsumerNamesResponse {
    type Item = String;
    fn total(&self) -> u64 {
        self.total
    }
    fn into_items(self) -> Vec<String> {
        self.consumers
    }
    fn key(item: &String) -> &str {
        item
    }
}

impl Paged for ConsumerListResponse {
    type Item = ConsumerInfo;
    fn total(&self) -> u64 {
        self.total
    }
    fn into_items(self) -> Vec<ConsumerInfo> {
        self.consumers
    }
    fn key(item: &ConsumerInfo) -> &str {
        &item.name
    }
}

/// Walks a paged listing: tells the offset of the next request and when to stop, and drops repeats.
///
/// ```
/// use nats_jetstream::model::{Pager, StreamNamesResponse};
///
/// let mut pager = Pager::new();
/// let mut names = Vec::new();
/// let pages = [(3, vec!["a", "b"]), (3, vec!["b", "c"])]; // "b" moved between pages
/// for (total, page) in pages {
///     let offset = pager.next_offset().expect("not done yet");
///     let streams = page.into_iter().map(String::from).collect();
///     names.extend(pager.accept(StreamNamesResponse { total, offset, limit: 2, streams }));
/// }
/// assert_eq!(names, ["a", "b", "c"]);
/// assert_eq!(pager.next_offset(), None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Pager {
    offset: u64,
    done: bool,
    seen: HashSet<String>,
}

impl Pager {
    /// A pager at the first page.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `offset` for the next request, or `None` when the listing is complete.
    pub fn next_offset(&self) -> Option<u64> {
        (!self.done).then_some(self.offset)
    }

    /// True when the listing is complete.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Takes in the reply to the request made at [`Pager::next_offset`]; returns the items not seen before.
    pub fn accept<P: Paged>(&mut self, page: P) -> Vec<P::Item> {
        let total = page.total();
        let items = page.into_items();
        self.offset += items.len() as u64;
        if items.is_empty() || self.offset >= total {
            self.done = true;
        }
        items.into_iter().filter(|item| self.seen.insert(P::key(item).to_owned())).collect()
    }
}
