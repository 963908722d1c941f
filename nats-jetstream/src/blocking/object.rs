//! The object store on the blocking client (ADR-20): [`ObjectStore`] puts from any reader in chunks, with a
//! window of publish acks, and [`ObjectReader`] reads an object back as a `std::io::Read`, verifying its size and
//! SHA-256 digest as it goes. Memory stays bounded whatever the object's size: one chunk being written, a few
//! MiB being read.

use std::io::{self, Read};
use std::time::Instant;

use bytes::Bytes;

use super::{Context, Ordered};
use crate::common::{
    chunks_consumer, chunks_purge, live_object, meta_purge, next_chunk_request, object_meta, objects_consumer,
    reserve_for, with_headers, WatchState, Watched, OBJECT_PUT_WINDOW,
};
use crate::error::{Error, JetStreamError};
use crate::model::{ObjectInfo, ObjectMeta, ObjectStoreConfig, ObjectStoreStatus};
use crate::object::{self, ObjectVerifier, ObjectWriter};
use nats_client::seam::Client;

impl<T: Client> Context<T> {
    /// Creates an object store (a stream `OBJ_<bucket>`).
    pub fn create_object_store(&self, config: &ObjectStoreConfig) -> Result<ObjectStore<T>, Error> {
        let info = self.create_stream(&config.to_stream_config()?)?;
        Ok(ObjectStore { js: self.clone(), bucket: config.bucket.clone(), stream: info.config.name })
    }

    /// Binds to an existing store; fails with 10059 ("stream not found") when there is none.
    pub fn object_store(&self, bucket: &str) -> Result<ObjectStore<T>, Error> {
        crate::api::validate_bucket(bucket)?;
        let info = self.stream_info(&object::stream_name(bucket))?;
        ObjectStoreStatus::from_stream_info(info)?;
        Ok(ObjectStore { js: self.clone(), bucket: bucket.to_owned(), stream: object::stream_name(bucket) })
    }

    /// Deletes a store and every object in it.
    pub fn delete_object_store(&self, bucket: &str) -> Result<bool, Error> {
        crate::api::validate_bucket(bucket)?;
        self.delete_stream(&object::stream_name(bucket))
    }
}

/// An object store.
#[derive(Debug, Clone)]
pub struct ObjectStore<T> {
    js: Context<T>,
    bucket: String,
    stream: String,
}

impl<T: Client> ObjectStore<T> {
    /// The store's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Stores what `data` yields under `meta.name`, replacing a previous version (whose chunks are purged
    /// once the new one is in place). Returns the new version's info. A failed chunk leaves nothing behind:
    /// the new chunks are purged and the previous version stays.
    pub fn put(&self, meta: ObjectMeta, mut data: impl Read) -> Result<ObjectInfo, Error> {
        let inbox = self.js.client.new_inbox();
        let mut writer = ObjectWriter::new(&self.bucket, meta, crate::common::nuid_of(&inbox))?;
        let previous = self.meta(writer.name()).ok();
        let written = self.put_chunks(&mut writer, &mut data);
        if let Err(e) = written {
            self.purge_chunks(writer.nuid());
            return Err(e);
        }
        let put = writer.finish();
        if let Err(e) = self.js.publish_with(&put.subject, put.payload, &with_headers(put.headers)) {
            // The meta may be stored with its ack lost: then the put happened, and its chunks must stay.
            if !self.meta(&put.info.meta.name).is_ok_and(|stored| stored.nuid == put.info.nuid) {
                self.purge_chunks(&put.info.nuid);
                return Err(e);
            }
        }
        if let Some(old) = previous.filter(|old| old.nuid != put.info.nuid) {
            self.purge_chunks(&old.nuid);
        }
        Ok(put.info)
    }

    /// [`put`](Self::put) of bytes in memory, under `name`.
    pub fn put_bytes(&self, name: &str, data: &[u8]) -> Result<ObjectInfo, Error> {
        self.put(ObjectMeta::new(name), data)
    }

    fn put_chunks(&self, writer: &mut ObjectWriter, data: &mut impl Read) -> Result<(), Error> {
        let mut window = self.js.publish_window(OBJECT_PUT_WINDOW);
        let mut buf = vec![0u8; writer.chunk_size()];
        let sent = (|| loop {
            let n = read_full(data, &mut buf).map_err(|e| Error::from(object::source_failed(writer.name(), e)))?;
            if n == 0 {
                return Ok(());
            }
            writer.add_chunk(&buf[..n]);
            if let Some(ack) = window.publish(writer.chunk_subject(), Bytes::copy_from_slice(&buf[..n]))? {
                ack?;
            }
            if n < buf.len() {
                return Ok(());
            }
        })();
        // Every chunk sent is stored (or refused) before this returns, even after a failure: a purge of the
        // chunks must not run ahead of one still in flight.
        let acks = window.wait_all();
        sent.and_then(|()| acks.into_iter().try_for_each(|ack| ack.map(drop)))
    }

    fn purge_chunks(&self, nuid: &str) {
        // Best effort: chunks left behind only take space.
        let _ = self.js.purge_stream(&self.stream, &chunks_purge(&self.bucket, nuid));
    }

    /// The latest meta of `name`, a delete marker included.
    fn meta(&self, name: &str) -> Result<ObjectInfo, Error> {
        object::validate_name(name)?;
        let call = self.js.api.direct_get_last(&self.stream, &object::meta_subject(&self.bucket, name))?;
        object_meta(name, self.js.call(&call))
    }

    /// The info of `name`; [`JetStreamError::ObjectNotFound`] when there is none or it was deleted.
    pub fn info(&self, name: &str) -> Result<ObjectInfo, Error> {
        live_object(self.meta(name)?)
    }

    /// Reads `name`: a reader that yields its content and fails with [`JetStreamError::ObjectCorrupt`] (as an
    /// `io::Error` of kind `InvalidData`) when what came does not match its size or digest.
    pub fn get(&self, name: &str) -> Result<ObjectReader<T>, Error> {
        let info = self.info(name)?;
        match info.link().cloned() {
            // A link to an object is read as that object: one hop, never a link again (a cycle of links
            // written by other clients must not be followed).
            Some(link) => {
                let store = self.js.object_store(&link.bucket)?;
                let target = object::followed(&info, &link, store.info(object::link_target(&info, &link)?)?)?;
                store.read(target)
            }
            None => self.read(info),
        }
    }

    fn read(&self, info: ObjectInfo) -> Result<ObjectReader<T>, Error> {
        let chunks = if info.chunks == 0 {
            None
        } else {
            let (config, consume) = chunks_consumer(&self.bucket, &info.nuid);
            let mut ordered = self.js.ordered(&self.stream, config)?;
            ordered.consume = consume;
            Some(ordered)
        };
        Ok(ObjectReader { verifier: Some(ObjectVerifier::new(info.clone())), info, chunks, current: Bytes::new() })
    }

    /// The whole content of `name`, verified.
    pub fn get_bytes(&self, name: &str) -> Result<Vec<u8>, Error> {
        let mut reader = self.get(name)?;
        let mut out = Vec::with_capacity(reserve_for(reader.info().size));
        reader.read_to_end(&mut out).map_err(|e| from_read_error(name, e))?;
        Ok(out)
    }

    /// Deletes `name`: a delete marker replaces its meta, then its chunks are purged.
    pub fn delete(&self, name: &str) -> Result<(), Error> {
        let info = self.info(name)?;
        let marker = object::deleted(&info);
        self.js.publish_with(&marker.subject, marker.payload, &with_headers(marker.headers))?;
        self.purge_chunks(&info.nuid);
        Ok(())
    }

    /// Every object in the store (deleted ones left out), in the order they were last written.
    pub fn list(&self) -> Result<Vec<ObjectInfo>, Error> {
        let mut out = Vec::new();
        for item in self.watch()? {
            match item? {
                Watched::Entry(info) if !info.deleted => out.push(info),
                Watched::Entry(_) => {}
                Watched::InitialDone => break,
            }
        }
        Ok(out)
    }

    /// The store's status.
    pub fn status(&self) -> Result<ObjectStoreStatus, Error> {
        Ok(ObjectStoreStatus::from_stream_info(self.js.stream_info(&self.stream)?)?)
    }

    /// Seals the store: no more puts, deletes or purges, for good.
    pub fn seal(&self) -> Result<ObjectStoreStatus, Error> {
        let mut config = self.js.stream_info(&self.stream)?.config;
        config.sealed = true;
        Ok(ObjectStoreStatus::from_stream_info(self.js.update_stream(&config)?)?)
    }

    /// Replaces the name, description, headers and metadata of `name` (its content stays). A new name must
    /// be free; the old name then has no object.
    pub fn update_meta(&self, name: &str, meta: ObjectMeta) -> Result<ObjectInfo, Error> {
        let current = self.info(name)?;
        let renamed = meta.name != name;
        if renamed && self.info(&meta.name).is_ok() {
            return Err(object::name_taken(&meta.name).into());
        }
        let update = object::updated(&current, meta)?;
        self.js.publish_with(&update.subject, update.payload, &with_headers(update.headers))?;
        if renamed {
            self.js.purge_stream(&self.stream, &meta_purge(&self.bucket, name))?;
        }
        Ok(update.info)
    }

    /// Adds `name` as a link to the object `target` (of this store or another); reading it reads the target.
    /// An existing object of that name that is not a link is not replaced.
    pub fn add_link(&self, name: &str, target: &ObjectInfo) -> Result<ObjectInfo, Error> {
        self.link_to(name, target)
    }

    /// Adds `name` as a link to the whole store `target`.
    pub fn add_bucket_link(&self, name: &str, target: &ObjectStore<T>) -> Result<ObjectInfo, Error> {
        self.link_to(name, &object::store_as_target(&target.bucket))
    }

    fn link_to(&self, name: &str, target: &ObjectInfo) -> Result<ObjectInfo, Error> {
        if self.info(name).is_ok_and(|existing| existing.link().is_none()) {
            return Err(object::name_taken(name).into());
        }
        let inbox = self.js.client.new_inbox();
        let link = object::link(&self.bucket, name, crate::common::nuid_of(&inbox), target)?;
        self.js.publish_with(&link.subject, link.payload, &with_headers(link.headers))?;
        Ok(link.info)
    }

    /// Watches the store: the latest info of every object (delete markers included), then
    /// [`Watched::InitialDone`], then every change as it happens.
    pub fn watch(&self) -> Result<ObjectWatch<T>, Error> {
        let ordered = self.js.ordered(&self.stream, objects_consumer(&self.bucket))?;
        Ok(ObjectWatch { ordered, state: WatchState::objects(self.bucket.clone()) })
    }
}

/// A watch of an object store: see [`ObjectStore::watch`].
#[derive(Debug)]
pub struct ObjectWatch<T: Client> {
    ordered: Ordered<T>,
    state: WatchState<ObjectInfo>,
}

impl<T: Client> Iterator for ObjectWatch<T> {
    type Item = Result<Watched<ObjectInfo>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(queued) = self.state.take_queued() {
            return Some(Ok(queued));
        }
        loop {
            let step = self.ordered.step().map(|m| m.map(|m| m.message));
            if let Some(out) = self.state.on_step(self.ordered.initial_pending(), step) {
                return Some(out);
            }
        }
    }
}

/// An object being read: see [`ObjectStore::get`].
#[derive(Debug)]
pub struct ObjectReader<T: Client> {
    info: ObjectInfo,
    /// `None` once the content was checked.
    verifier: Option<ObjectVerifier>,
    /// The chunks' ordered consumer; `None` for an empty object.
    chunks: Option<Ordered<T>>,
    /// The chunk being read out.
    current: Bytes,
}

impl<T: Client> ObjectReader<T> {
    /// The object's info.
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }

    fn next_chunk(&mut self) -> io::Result<bool> {
        let Some(verifier) = self.verifier.as_mut() else { return Ok(false) };
        if verifier.is_complete() {
            // Every chunk came: the whole content is checked, once.
            self.chunks = None;
            if let Some(verifier) = self.verifier.take() {
                verifier.finish().map_err(corrupt)?;
            }
            return Ok(false);
        }
        let Some(ordered) = self.chunks.as_mut() else { return Ok(false) };
        let mut waiting_since = Instant::now();
        loop {
            // Fewer chunks stored than the object has (purged by a limit, say) would leave the reader waiting
            // for ever: the first consumer's pending count says so at once.
            if ordered.resets() == 0 {
                if let Some(stored) = ordered.initial_pending() {
                    verifier.check_stored(stored).map_err(corrupt)?;
                }
            }
            match ordered.step() {
                Ok(Some(msg)) => {
                    let data = msg.message.payload_bytes();
                    verifier.add_chunk(&data).map_err(corrupt)?;
                    self.current = data;
                    return Ok(true);
                }
                // A whole timeout without a chunk: are the rest still stored?
                Ok(None) if waiting_since.elapsed() >= ordered.js.timeout => {
                    let info = verifier.info();
                    let after = ordered.machine.last_stream_sequence();
                    let probe = next_chunk_request(&info.bucket, &info.nuid, after);
                    // Asked of the leader (a direct get may be served by a replica that lags).
                    let probe = ordered.js.api.get_message(&ordered.stream, &probe).map_err(io::Error::other)?;
                    match ordered.js.call(&probe) {
                        Err(e) if e.jetstream().is_some_and(JetStreamError::is_no_message) => {
                            return Err(corrupt(verifier.chunks_gone()))
                        }
                        _ => waiting_since = Instant::now(),
                    }
                }
                Ok(None) => {}
                Err(e) => return Err(io::Error::other(e)),
            }
        }
    }
}

impl<T: Client> Read for ObjectReader<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if !self.next_chunk()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A verification failure as a reader's error (kind `InvalidData`), carrying this crate's error.
fn corrupt(e: JetStreamError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Error::from(e))
}

/// Reads until `buf` is full or the reader ends; returns how much came.
fn read_full(data: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match data.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A reader's error back as this crate's: a JetStream error it carries, or a client error.
fn from_read_error(name: &str, e: io::Error) -> Error {
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(e)) => *e,
        Some(Err(other)) => JetStreamError::InvalidReply { reason: format!("reading object {name:?}: {other}") }.into(),
        None => JetStreamError::InvalidReply { reason: format!("reading object {name:?}") }.into(),
    }
}
