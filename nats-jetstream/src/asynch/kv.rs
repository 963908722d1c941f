//! Key/Value on the async client: a bucket ([`AsyncStore`]) and a watch of it ([`AsyncWatch`]), made of Key/Value
//! writes, direct gets and an ordered consumer.

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;

use super::{AsyncContext, AsyncOrdered};
use crate::call::Call;
use crate::common::{deleted_keys, direct_entry, live_keys, next_history_seq, WatchState, Watched};
use crate::error::Error;
use crate::kv::{self, CreateRetry, Entry, WatchOptions};
use crate::model::{DirectGetMessage, KvStatus, KvSubjects, MsgGetRequest, PurgeRequest, StreamInfo};
use nats_client::seam::AsyncClient;

/// A Key/Value watch, as a `Stream`: see [`AsyncStore::watch`]. It never ends by itself.
pub struct AsyncWatch<T: AsyncClient> {
    ordered: AsyncOrdered<T>,
    state: WatchState,
    ignore_deletes: bool,
}

impl<T: AsyncClient + fmt::Debug> fmt::Debug for AsyncWatch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncWatch").field("ordered", &self.ordered).field("state", &self.state).finish()
    }
}

impl<T: AsyncClient> AsyncWatch<T> {
    /// The next entry or marker. It never ends by itself: `None` is not returned.
    pub async fn next(&mut self) -> Option<Result<Watched, Error>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<T: AsyncClient> Stream for AsyncWatch<T> {
    type Item = Result<Watched, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(queued) = this.state.take_queued() {
            return Poll::Ready(Some(Ok(queued)));
        }
        loop {
            let step = ready!(this.ordered.poll_step(cx)).map(|m| m.map(|m| m.message));
            match this.state.on_step(this.ordered.initial_pending(), step) {
                // Left out; the initial-data marker it may have completed comes now.
                Some(Ok(Watched::Entry(e))) if this.ignore_deletes && e.operation.is_marker() => {
                    if let Some(queued) = this.state.take_queued() {
                        return Poll::Ready(Some(Ok(queued)));
                    }
                }
                Some(out) => return Poll::Ready(Some(out)),
                None => {}
            }
        }
    }
}

/// A Key/Value bucket.
#[derive(Debug, Clone)]
pub struct AsyncStore<T> {
    pub(super) js: AsyncContext<T>,
    pub(super) bucket: String,
    pub(super) stream: String,
    /// Where its entries are stored and its writes go (a mirror's are its origin's).
    pub(super) subjects: KvSubjects,
}

impl<T: AsyncClient> AsyncStore<T> {
    pub(super) fn new(js: AsyncContext<T>, bucket: &str, info: StreamInfo) -> Self {
        let subjects = KvSubjects::of(bucket, &info.config);
        Self { js, bucket: bucket.to_owned(), stream: info.config.name, subjects }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn write(&self, key: &str, headers: Option<nats_proto::Headers>, value: Bytes) -> Result<u64, Error> {
        let call = self.js.api.kv_write_to(&self.subjects, key, headers, value)?;
        Ok(self.js.call(&call).await?.seq)
    }

    /// Sets `key` to `value`; returns the new revision.
    pub async fn put(&self, key: &str, value: impl Into<Bytes>) -> Result<u64, Error> {
        kv::validate_put_key(key)?;
        self.write(key, None, value.into()).await
    }

    /// The latest entry of `key`; `None` when it never had a value or was deleted or purged.
    pub async fn get(&self, key: &str) -> Result<Option<Entry>, Error> {
        Ok(self.entry(key).await?.filter(|e| !e.operation.is_marker()))
    }

    /// The latest entry of `key`, delete and purge markers included.
    pub async fn entry(&self, key: &str) -> Result<Option<Entry>, Error> {
        kv::validate_key(key)?;
        let call = self.js.api.direct_get_last(&self.stream, &crate::api::kv_subject(&self.subjects.bucket, key))?;
        self.direct(call).await
    }

    /// The entry at `revision` if it belongs to `key`.
    pub async fn entry_at(&self, key: &str, revision: u64) -> Result<Option<Entry>, Error> {
        kv::validate_key(key)?;
        let entry = self.direct(self.js.api.direct_get(&self.stream, &MsgGetRequest::seq(revision))?).await?;
        Ok(entry.filter(|e| e.key == key))
    }

    async fn direct(&self, call: Call<DirectGetMessage>) -> Result<Option<Entry>, Error> {
        direct_entry(&self.subjects.bucket, self.js.call(&call).await)
    }

    /// Sets `key` only if its latest revision is `revision`; a mismatch is the API error 10071 (or 10164).
    pub async fn update(&self, key: &str, value: impl Into<Bytes>, revision: u64) -> Result<u64, Error> {
        kv::validate_put_key(key)?;
        self.write(key, Some(kv::update_headers(revision)), value.into()).await
    }

    /// Sets `key` only if it has no value (never set, deleted or purged); else the API error 10071.
    pub async fn create(&self, key: &str, value: impl Into<Bytes>) -> Result<u64, Error> {
        kv::validate_put_key(key)?;
        let value = value.into();
        let error = match self.write(key, Some(kv::create_headers(None)), value.clone()).await {
            Err(Error::JetStream(e)) => e,
            other => return other,
        };
        let latest = self.entry(key).await?.map(|e| (e.operation, e.revision));
        match kv::after_create_failed(&error, latest) {
            CreateRetry::Update { revision } => self.update(key, value, revision).await,
            CreateRetry::KeyExists | CreateRetry::Fail => Err(error.into()),
        }
    }

    /// Marks `key` deleted (its history is kept).
    pub async fn delete(&self, key: &str) -> Result<u64, Error> {
        kv::validate_key(key)?;
        self.write(key, Some(kv::delete_headers(None)), Bytes::new()).await
    }

    /// Marks `key` purged and drops its history.
    pub async fn purge(&self, key: &str) -> Result<u64, Error> {
        kv::validate_key(key)?;
        self.write(key, Some(kv::purge_headers(None, None)), Bytes::new()).await
    }

    /// The bucket's status: values, history, TTL, bytes.
    pub async fn status(&self) -> Result<KvStatus, Error> {
        Ok(KvStatus::from_stream_info(self.js.stream_info(&self.stream).await?)?)
    }

    /// Every revision of `key` still stored, oldest first, markers included; empty when none.
    pub async fn history(&self, key: &str) -> Result<Vec<Entry>, Error> {
        kv::validate_key(key)?;
        let subject = crate::api::kv_subject(&self.subjects.bucket, key);
        let mut out = Vec::new();
        let mut seq = 1;
        loop {
            let call = self.js.api.direct_get(&self.stream, &MsgGetRequest::next_by_subject(seq, &subject))?;
            match self.direct(call).await? {
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
    pub async fn watch(&self, filter: &str) -> Result<AsyncWatch<T>, Error> {
        self.watch_with(&WatchOptions::keys([filter])).await
    }

    /// A watch with options (see [`crate::blocking::Store::watch_with`]).
    pub async fn watch_with(&self, options: &WatchOptions) -> Result<AsyncWatch<T>, Error> {
        let ordered = self.js.ordered(&self.stream, options.to_ordered_config(&self.subjects.bucket)?).await?;
        Ok(AsyncWatch {
            ordered,
            state: WatchState::new(self.subjects.bucket.clone()),
            ignore_deletes: options.ignore_deletes,
        })
    }

    /// The latest entry of every key, markers included, without values.
    async fn latest_entries(&self) -> Result<Vec<Entry>, Error> {
        let mut watch = self.watch_with(&WatchOptions { meta_only: true, ..WatchOptions::default() }).await?;
        let mut out = Vec::new();
        while let Some(item) = watch.next().await {
            match item? {
                Watched::Entry(entry) => out.push(entry),
                Watched::InitialDone => break,
            }
        }
        Ok(out)
    }

    /// Every key with a value (deleted and purged keys left out), sorted.
    pub async fn keys(&self) -> Result<Vec<String>, Error> {
        Ok(live_keys(self.latest_entries().await?))
    }

    /// Drops the history of deleted and purged keys (see [`crate::blocking::Store::purge_deletes`]).
    pub async fn purge_deletes(&self, older_than: Option<Duration>) -> Result<usize, Error> {
        let markers = deleted_keys(self.latest_entries().await?, older_than, std::time::SystemTime::now());
        for (key, keep) in &markers {
            let request = PurgeRequest {
                filter: crate::api::kv_subject(&self.subjects.bucket, key),
                keep: *keep,
                ..Default::default()
            };
            self.js.purge_stream(&self.stream, &request).await?;
        }
        Ok(markers.len())
    }

    /// [`create`](Self::create) of a value the server removes after `ttl` (server 2.11+).
    pub async fn create_with_ttl(&self, key: &str, value: impl Into<Bytes>, ttl: Duration) -> Result<u64, Error> {
        kv::validate_put_key(key)?;
        self.write(key, Some(kv::create_headers(Some(ttl))), value.into()).await
    }

    /// [`purge`](Self::purge), the marker itself removed after `ttl` (server 2.11+).
    pub async fn purge_with_ttl(&self, key: &str, ttl: Duration) -> Result<u64, Error> {
        kv::validate_key(key)?;
        self.write(key, Some(kv::purge_headers(None, Some(ttl))), Bytes::new()).await
    }
}
