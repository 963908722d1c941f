//! The object store on an async client (ADR-20): the same as [`crate::blocking`]'s, with `.await`. A put takes
//! a `Stream` of byte blocks (any sizes; they are cut into chunks), a get is a `Stream` of verified blocks.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;

use super::{AsyncContext, AsyncOrdered};
use crate::common::{
    chunks_consumer, chunks_purge, live_object, meta_purge, next_chunk_request, object_meta, objects_consumer,
    reserve_for, with_headers, WatchState, Watched, OBJECT_PUT_WINDOW,
};
use crate::error::{Error, JetStreamError};
use crate::model::{ObjectInfo, ObjectMeta, ObjectStoreConfig, ObjectStoreStatus};
use crate::object::{self, ObjectVerifier, ObjectWriter};
use nats_client::seam::{deadline_after, AsyncClient, Timer};

impl<T: AsyncClient> AsyncContext<T> {
    /// Creates an object store (a stream `OBJ_<bucket>`).
    pub async fn create_object_store(&self, config: &ObjectStoreConfig) -> Result<AsyncObjectStore<T>, Error> {
        let info = self.create_stream(&config.to_stream_config()?).await?;
        Ok(AsyncObjectStore { js: self.clone(), bucket: config.bucket.clone(), stream: info.config.name })
    }

    /// Binds to an existing store; fails with 10059 ("stream not found") when there is none.
    pub async fn object_store(&self, bucket: &str) -> Result<AsyncObjectStore<T>, Error> {
        crate::api::validate_bucket(bucket)?;
        let stream = object::stream_name(bucket);
        ObjectStoreStatus::from_stream_info(self.stream_info(&stream).await?)?;
        Ok(AsyncObjectStore { js: self.clone(), bucket: bucket.to_owned(), stream })
    }

    /// Deletes a store and every object in it.
    pub async fn delete_object_store(&self, bucket: &str) -> Result<bool, Error> {
        crate::api::validate_bucket(bucket)?;
        self.delete_stream(&object::stream_name(bucket)).await
    }
}

/// An object store on an async client.
#[derive(Debug, Clone)]
pub struct AsyncObjectStore<T> {
    js: AsyncContext<T>,
    bucket: String,
    stream: String,
}

impl<T: AsyncClient> AsyncObjectStore<T> {
    /// The store's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Stores what `data` yields under `meta.name` (see [`crate::blocking::ObjectStore::put`]); an `Err` item
    /// ends the put, leaving the previous version.
    pub async fn put<S>(&self, meta: ObjectMeta, mut data: S) -> Result<ObjectInfo, Error>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin,
    {
        let inbox = self.js.client.new_inbox();
        let mut writer = ObjectWriter::new(&self.bucket, meta, crate::common::nuid_of(&inbox))?;
        let previous = self.meta(writer.name()).await.ok();
        if let Err(e) = self.put_chunks(&mut writer, &mut data).await {
            self.purge_chunks(writer.nuid()).await;
            return Err(e);
        }
        let put = writer.finish();
        if let Err(e) = self.js.publish_with(&put.subject, put.payload, &with_headers(put.headers)).await {
            // The meta may be stored with its ack lost: then the put happened, and its chunks must stay.
            if !self.meta(&put.info.meta.name).await.is_ok_and(|stored| stored.nuid == put.info.nuid) {
                self.purge_chunks(&put.info.nuid).await;
                return Err(e);
            }
        }
        if let Some(old) = previous.filter(|old| old.nuid != put.info.nuid) {
            self.purge_chunks(&old.nuid).await;
        }
        Ok(put.info)
    }

    /// [`put`](Self::put) of bytes in memory, under `name`.
    pub async fn put_bytes(&self, name: &str, data: impl Into<Bytes>) -> Result<ObjectInfo, Error> {
        let data = data.into();
        let mut once = Some(Ok(data));
        let blocks = futures_stream(move || once.take());
        self.put(ObjectMeta::new(name), blocks).await
    }

    async fn put_chunks<S>(&self, writer: &mut ObjectWriter, data: &mut S) -> Result<(), Error>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin,
    {
        let mut window = self.js.publish_window(OBJECT_PUT_WINDOW);
        let sent = send_chunks(&mut window, writer, data).await;
        // Every chunk sent is stored (or refused) before this returns, even after a failure: a purge of the
        // chunks must not run ahead of one still in flight.
        let acks = window.wait_all().await;
        sent.and_then(|()| acks.into_iter().try_for_each(|ack| ack.map(drop)))
    }

    async fn purge_chunks(&self, nuid: &str) {
        // Best effort: chunks left behind only take space.
        let _ = self.js.purge_stream(&self.stream, &chunks_purge(&self.bucket, nuid)).await;
    }

    /// The latest meta of `name`, a delete marker included.
    async fn meta(&self, name: &str) -> Result<ObjectInfo, Error> {
        object::validate_name(name)?;
        let call = self.js.api.direct_get_last(&self.stream, &object::meta_subject(&self.bucket, name))?;
        object_meta(name, self.js.call(&call).await)
    }

    /// The info of `name`; [`JetStreamError::ObjectNotFound`] when there is none or it was deleted.
    pub async fn info(&self, name: &str) -> Result<ObjectInfo, Error> {
        live_object(self.meta(name).await?)
    }

    /// Reads `name`: a `Stream` of its content in blocks, verified (see [`AsyncObjectReader`]).
    pub async fn get(&self, name: &str) -> Result<AsyncObjectReader<T>, Error> {
        let info = self.info(name).await?;
        match info.link().cloned() {
            // A link is read as its object: one hop, never a link again.
            Some(link) => {
                let store = self.js.object_store(&link.bucket).await?;
                let target = store.info(object::link_target(&info, &link)?).await?;
                store.read(object::followed(&info, &link, target)?).await
            }
            None => self.read(info).await,
        }
    }

    async fn read(&self, info: ObjectInfo) -> Result<AsyncObjectReader<T>, Error> {
        let chunks = if info.chunks == 0 {
            None
        } else {
            let (config, consume) = chunks_consumer(&self.bucket, &info.nuid);
            let mut ordered = self.js.ordered(&self.stream, config).await?;
            ordered.consume = consume;
            Some(ordered)
        };
        Ok(AsyncObjectReader { verifier: Some(ObjectVerifier::new(info)), chunks, waiting: None })
    }

    /// The whole content of `name`, verified.
    pub async fn get_bytes(&self, name: &str) -> Result<Vec<u8>, Error> {
        let mut reader = self.get(name).await?;
        let mut out = Vec::with_capacity(reserve_for(reader.info().map_or(0, |i| i.size)));
        while let Some(block) = reader.next().await {
            out.extend_from_slice(&block?);
        }
        Ok(out)
    }

    /// Deletes `name`: a delete marker replaces its meta, then its chunks are purged.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        let info = self.info(name).await?;
        let marker = object::deleted(&info);
        self.js.publish_with(&marker.subject, marker.payload, &with_headers(marker.headers)).await?;
        self.purge_chunks(&info.nuid).await;
        Ok(())
    }

    /// Every object in the store (deleted ones left out), in the order they were last written.
    pub async fn list(&self) -> Result<Vec<ObjectInfo>, Error> {
        let mut watch = self.watch().await?;
        let mut out = Vec::new();
        while let Some(item) = watch.next().await {
            match item? {
                Watched::Entry(info) if !info.deleted => out.push(info),
                Watched::Entry(_) => {}
                Watched::InitialDone => break,
            }
        }
        Ok(out)
    }

    /// The store's status.
    pub async fn status(&self) -> Result<ObjectStoreStatus, Error> {
        Ok(ObjectStoreStatus::from_stream_info(self.js.stream_info(&self.stream).await?)?)
    }

    /// Seals the store: no more puts, deletes or purges, for good.
    pub async fn seal(&self) -> Result<ObjectStoreStatus, Error> {
        let mut config = self.js.stream_info(&self.stream).await?.config;
        config.sealed = true;
        Ok(ObjectStoreStatus::from_stream_info(self.js.update_stream(&config).await?)?)
    }

    /// Replaces the name, description, headers and metadata of `name` (see
    /// [`crate::blocking::ObjectStore::update_meta`]).
    pub async fn update_meta(&self, name: &str, meta: ObjectMeta) -> Result<ObjectInfo, Error> {
        let current = self.info(name).await?;
        let renamed = meta.name != name;
        if renamed && self.info(&meta.name).await.is_ok() {
            return Err(object::name_taken(&meta.name).into());
        }
        let update = object::updated(&current, meta)?;
        self.js.publish_with(&update.subject, update.payload, &with_headers(update.headers)).await?;
        if renamed {
            self.js.purge_stream(&self.stream, &meta_purge(&self.bucket, name)).await?;
        }
        Ok(update.info)
    }

    /// Adds `name` as a link to the object `target`; reading it reads the target.
    pub async fn add_link(&self, name: &str, target: &ObjectInfo) -> Result<ObjectInfo, Error> {
        self.link_to(name, target).await
    }

    /// Adds `name` as a link to the whole store `target`.
    pub async fn add_bucket_link(&self, name: &str, target: &AsyncObjectStore<T>) -> Result<ObjectInfo, Error> {
        self.link_to(name, &object::store_as_target(&target.bucket)).await
    }

    async fn link_to(&self, name: &str, target: &ObjectInfo) -> Result<ObjectInfo, Error> {
        if self.info(name).await.is_ok_and(|existing| existing.link().is_none()) {
            return Err(object::name_taken(name).into());
        }
        let inbox = self.js.client.new_inbox();
        let link = object::link(&self.bucket, name, crate::common::nuid_of(&inbox), target)?;
        self.js.publish_with(&link.subject, link.payload, &with_headers(link.headers)).await?;
        Ok(link.info)
    }

    /// Watches the store (see [`crate::blocking::ObjectStore::watch`]), as a `Stream`.
    pub async fn watch(&self) -> Result<AsyncObjectWatch<T>, Error> {
        let ordered = self.js.ordered(&self.stream, objects_consumer(&self.bucket)).await?;
        Ok(AsyncObjectWatch { ordered, state: WatchState::objects(self.bucket.clone()) })
    }
}

/// A watch of an object store, as a `Stream`: see [`AsyncObjectStore::watch`]. It never ends by itself.
#[derive(Debug)]
pub struct AsyncObjectWatch<T: AsyncClient> {
    ordered: AsyncOrdered<T>,
    state: WatchState<ObjectInfo>,
}

impl<T: AsyncClient> AsyncObjectWatch<T> {
    /// The next change (or the initial-data marker).
    pub async fn next(&mut self) -> Option<Result<Watched<ObjectInfo>, Error>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<T: AsyncClient> Stream for AsyncObjectWatch<T> {
    type Item = Result<Watched<ObjectInfo>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(queued) = this.state.take_queued() {
            return Poll::Ready(Some(Ok(queued)));
        }
        loop {
            let step = match this.ordered.poll_step(cx) {
                Poll::Ready(step) => step.map(|m| m.map(|m| m.message)),
                Poll::Pending => return Poll::Pending,
            };
            if let Some(out) = this.state.on_step(this.ordered.initial_pending(), step) {
                return Poll::Ready(Some(out));
            }
        }
    }
}

/// An object being read: a `Stream` of its content in blocks (one per stored chunk), ending after the last
/// one once size, chunk count and digest are checked; a mismatch is a final
/// [`JetStreamError::ObjectCorrupt`] item.
#[derive(Debug)]
pub struct AsyncObjectReader<T: AsyncClient> {
    /// `None` once the content was checked.
    verifier: Option<ObjectVerifier>,
    /// The chunks' ordered consumer; `None` for an empty object.
    chunks: Option<AsyncOrdered<T>>,
    /// Waiting for the next chunk: a timer of one API timeout, then a probe of whether the rest is stored.
    waiting: Option<Waiting>,
}

/// See [`AsyncObjectReader::waiting`].
struct Waiting {
    timer: Box<dyn Timer>,
    /// True when a chunk after the last one read is still stored.
    probe: Option<Pin<Box<dyn Future<Output = bool> + Send>>>,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting").field("probing", &self.probe.is_some()).finish_non_exhaustive()
    }
}

impl<T: AsyncClient> AsyncObjectReader<T> {
    /// The object's info, until the content has been read and checked.
    pub fn info(&self) -> Option<&ObjectInfo> {
        self.verifier.as_ref().map(ObjectVerifier::info)
    }

    /// The next block of content; `None` after the last (and its check).
    pub async fn next(&mut self) -> Option<Result<Bytes, Error>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<T: AsyncClient> Stream for AsyncObjectReader<T> {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(verifier) = this.verifier.as_mut() else { return Poll::Ready(None) };
        if verifier.is_complete() {
            this.chunks = None;
            let checked = this.verifier.take().map(ObjectVerifier::finish);
            return Poll::Ready(checked.and_then(Result::err).map(|e| Err(e.into())));
        }
        let Some(ordered) = this.chunks.as_mut() else { return Poll::Ready(None) };
        loop {
            if ordered.resets() == 0 {
                if let Some(Err(e)) = ordered.initial_pending().map(|stored| verifier.check_stored(stored)) {
                    this.verifier = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
            match ordered.poll_step(cx) {
                Poll::Ready(Ok(Some(msg))) => {
                    this.waiting = None;
                    let data = msg.message.payload_bytes();
                    if let Err(e) = verifier.add_chunk(&data) {
                        this.verifier = None;
                        return Poll::Ready(Some(Err(e.into())));
                    }
                    return Poll::Ready(Some(Ok(data)));
                }
                Poll::Ready(Ok(None)) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Pending => {}
            }
            // A whole timeout without a chunk: are the rest still stored?
            let waiting = this.waiting.get_or_insert_with(|| Waiting {
                timer: ordered.js.client.timer(deadline_after(Instant::now(), ordered.js.timeout)),
                probe: None,
            });
            if let Some(probe) = waiting.probe.as_mut() {
                if ready!(probe.as_mut().poll(cx)) {
                    this.waiting = None;
                    continue;
                }
                let gone = verifier.chunks_gone();
                this.verifier = None;
                return Poll::Ready(Some(Err(gone.into())));
            }
            ready!(waiting.timer.poll_fired(cx));
            let (js, stream) = (ordered.js.clone(), ordered.stream.clone());
            let info = verifier.info();
            let request = next_chunk_request(&info.bucket, &info.nuid, ordered.machine.last_stream_sequence());
            // Asked of the leader (a direct get may be served by a replica that lags).
            waiting.probe = Some(Box::pin(async move {
                let next = match js.api.get_message(&stream, &request) {
                    Ok(call) => js.call(&call).await.map(drop),
                    Err(e) => Err(e.into()),
                };
                !matches!(next, Err(e) if e.jetstream().is_some_and(JetStreamError::is_no_message))
            }));
        }
    }
}

/// Cuts what `data` yields into chunks and publishes them through `window`.
async fn send_chunks<T: AsyncClient, S>(
    window: &mut super::AsyncPublishWindow<T>,
    writer: &mut ObjectWriter,
    data: &mut S,
) -> Result<(), Error>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    let size = writer.chunk_size();
    let mut pending = BytesMut::new();
    let mut ended = false;
    while !ended || !pending.is_empty() {
        while !ended && pending.len() < size {
            match poll_fn(|cx| Pin::new(&mut *data).poll_next(cx)).await {
                Some(Ok(block)) => pending.extend_from_slice(&block),
                Some(Err(e)) => return Err(object::source_failed(writer.name(), e).into()),
                None => ended = true,
            }
        }
        if pending.is_empty() {
            break;
        }
        let chunk = pending.split_to(pending.len().min(size)).freeze();
        writer.add_chunk(&chunk);
        if let Some(ack) = window.publish(writer.chunk_subject(), chunk).await? {
            ack?;
        }
    }
    Ok(())
}

/// A `Stream` of what `next` gives, never pending.
fn futures_stream<I>(next: impl FnMut() -> Option<I> + Unpin) -> impl Stream<Item = I> + Unpin {
    struct FromFn<F>(F);
    impl<I, F: FnMut() -> Option<I> + Unpin> Stream for FromFn<F> {
        type Item = I;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Option<I>> {
            Poll::Ready((self.0)())
        }
    }
    FromFn(next)
}
