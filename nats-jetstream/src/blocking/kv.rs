//! Key/Value on the blocking client: a bucket ([`Store`]) and a watch of it ([`Watch`]), made of Key/Value
//! writes, direct gets and an ordered consumer.

use std::time::Duration;

use bytes::Bytes;

use super::{Context, Ordered};
use crate::call::Call;
use crate::common::{deleted_keys, direct_entry, live_keys, next_history_seq, WatchState, Watched};
use crate::error::Error;
use crate::kv::{self, CreateRetry, Entry, WatchOptions};
use crate::model::{DirectGetMessage, KvStatus, KvSubjects, MsgGetRequest, PurgeRequest, StreamInfo};
use nats_client::seam::Client;

/// A Key/Value watch: see [`Store::watch`].
#[derive(Debug)]
pub struct Watch<T: Client> {
    ordered: Ordered<T>,
    state: WatchState,
    ignore_deletes: bool,
}

impl<T: Client> Iterator for Watch<T> {
    type Item = Result<Watched, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(queued) = self.state.take_queued() {
            return Some(Ok(queued));
        }
        loop {
            let step = self.ordered.step().map(|m| m.map(|m| m.message));
            match self.state.on_step(self.ordered.initial_pending(), step) {
                // Left out; the initial-data marker it may have completed comes now.
                Some(Ok(Watched::Entry(e))) if self.ignore_deletes && e.operation.is_marker() => {
                    if let Some(queued) = self.state.take_queued() {
                        return Some(Ok(queued));
                    }
                }
                Some(out) => return Some(out),
                None => {}
            }
        }
    }
}

/// A Key/Value bucket.
#[derive(Debug, Clone)]
pub struct Store<T> {
    pub(super) js: Context<T>,
    pub(super) bucket: String,
    pub(super) stream: String,
    /// Where its entries are stored and its writes go (a mirror's are its origin's).
    pub(super) subjects: KvSubjects,
}

impl<T: Client> Store<T> {
    pub(super) fn new(js: Context<T>, bucket: &str, info: StreamInfo) -> Self {
        let subjects = KvSubjects::of(bucket, &info.config);
        Self { js, bucket: bucket.to_owned(), stream: info.config.name, subjects }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn write(&self, key: &str, headers: Option<nats_proto::Headers>, value: Bytes) -> Result<u64, Error> {
        let call = self.js.api.kv_write_to(&self.subjects, key, headers, value)?;
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
        let call = self.js.api.direct_get_last(&self.stream, &crate::api::kv_subject(&self.subjects.bucket, key))?;
        self.direct(call)
    }

    /// The entry at `revision` if it belongs to `key`.
    pub fn entry_at(&self, key: &str, revision: u64) -> Result<Option<Entry>, Error> {
        kv::validate_key(key)?;
        let entry = self.direct(self.js.api.direct_get(&self.stream, &MsgGetRequest::seq(revision))?)?;
        Ok(entry.filter(|e| e.key == key))
    }

    fn direct(&self, call: Call<DirectGetMessage>) -> Result<Option<Entry>, Error> {
        direct_entry(&self.subjects.bucket, self.js.call(&call))
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
        let subject = crate::api::kv_subject(&self.subjects.bucket, key);
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
        self.watch_with(&WatchOptions::keys([filter]))
    }

    /// A watch with options: several keys, updates only, the whole history, without deletes, without values.
    pub fn watch_with(&self, options: &WatchOptions) -> Result<Watch<T>, Error> {
        let ordered = self.js.ordered(&self.stream, options.to_ordered_config(&self.subjects.bucket)?)?;
        Ok(Watch {
            ordered,
            state: WatchState::new(self.subjects.bucket.clone()),
            ignore_deletes: options.ignore_deletes,
        })
    }

    /// The latest entry of every key, markers included, without values: one ordered consumer, no request
    /// per key.
    fn latest_entries(&self) -> Result<Vec<Entry>, Error> {
        let mut out = Vec::new();
        for item in self.watch_with(&WatchOptions { meta_only: true, ..WatchOptions::default() })? {
            match item? {
                Watched::Entry(entry) => out.push(entry),
                Watched::InitialDone => return Ok(out),
            }
        }
        Ok(out)
    }

    /// Every key with a value (deleted and purged keys left out), sorted.
    pub fn keys(&self) -> Result<Vec<String>, Error> {
        Ok(live_keys(self.latest_entries()?))
    }

    /// Drops the history of deleted and purged keys: a marker older than `older_than` (default 30 minutes)
    /// goes with everything stored under its key; a younger one is kept, alone. Returns the keys purged.
    pub fn purge_deletes(&self, older_than: Option<Duration>) -> Result<usize, Error> {
        let markers = deleted_keys(self.latest_entries()?, older_than, std::time::SystemTime::now());
        for (key, keep) in &markers {
            let request = PurgeRequest {
                filter: crate::api::kv_subject(&self.subjects.bucket, key),
                keep: *keep,
                ..Default::default()
            };
            self.js.purge_stream(&self.stream, &request)?;
        }
        Ok(markers.len())
    }

    /// [`create`](Self::create) of a value that the server removes after `ttl` (server 2.11+, a bucket with a
    /// limit-marker TTL).
    pub fn create_with_ttl(&self, key: &str, value: impl Into<Bytes>, ttl: Duration) -> Result<u64, Error> {
        kv::validate_put_key(key)?;
        self.write(key, Some(kv::create_headers(Some(ttl))), value.into())
    }

    /// [`purge`](Self::purge), the marker itself removed after `ttl` (server 2.11+).
    pub fn purge_with_ttl(&self, key: &str, ttl: Duration) -> Result<u64, Error> {
        kv::validate_key(key)?;
        self.write(key, Some(kv::purge_headers(None, Some(ttl))), Bytes::new())
    }
}
