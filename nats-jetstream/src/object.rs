//! Object store rules (ADR-20): subjects, the writer that cuts content into chunks and hashes it, and the
//! verifier that checks what a reader got against the object's size, chunk count and SHA-256 digest.
//!
//! A put publishes the chunks to `$O.<bucket>.C.<nuid>` (a fresh NUID per version), then the object's
//! [`ObjectInfo`] as JSON to `$O.<bucket>.M.<base64url(name)>` with `Nats-Rollup: sub`, so each name keeps one
//! meta message; the previous version's chunks are purged after. Nothing here sends anything: the bindings
//! drive these pieces.
//!
//! Unlike Key/Value writes, these subjects are published as they are under a JetStream domain too: a
//! leafnode maps a domain's `$KV.` writes but has no mapping for `$O.`, and the interest of the domain's
//! store in its subjects reaches the leaf like any other (tested from a leaf into a hub's domain).
//!
//! ```
//! use nats_jetstream::model::ObjectMeta;
//! use nats_jetstream::object::{meta_subject, ObjectVerifier, ObjectWriter};
//!
//! assert_eq!(meta_subject("photos", "cat.jpg"), "$O.photos.M.Y2F0LmpwZw==");
//! let mut writer = ObjectWriter::new("photos", ObjectMeta::new("cat.jpg"), "NUID1")?;
//! assert_eq!(writer.chunk_subject(), "$O.photos.C.NUID1");
//! writer.add_chunk(b"hello ");
//! writer.add_chunk(b"world");
//! let put = writer.finish();
//! assert_eq!((put.info.size, put.info.chunks), (11, 2));
//! assert_eq!(put.info.digest, "SHA-256=uU0nuZNNPgilLlLX2n2r-sSE7-N6U4DukIj3rOLvzek=");
//!
//! // A reader that gets other bytes is told so, with a typed error.
//! let mut verifier = ObjectVerifier::new(put.info.clone());
//! verifier.add_chunk(b"hello ")?;
//! verifier.add_chunk(b"World")?;
//! assert!(verifier.finish().is_err());
//! # Ok::<(), nats_jetstream::error::JetStreamError>(())
//! ```

use bytes::Bytes;
use nats_proto::Headers;
use sha2::{Digest, Sha256};

use crate::error::JetStreamError;
use crate::kv::ROLLUP;
use crate::model::{ObjectInfo, ObjectLink, ObjectMeta, ObjectOptions};

/// The prefix of every object store's stream name.
pub const STREAM_PREFIX: &str = "OBJ_";
/// The chunk size of a put unless its meta asks for another.
pub const DEFAULT_CHUNK_SIZE: usize = 128 * 1024;

/// The stream behind a store: `OBJ_<bucket>`.
pub fn stream_name(bucket: &str) -> String {
    format!("{STREAM_PREFIX}{bucket}")
}

/// The subject of one version's chunks: `$O.<bucket>.C.<nuid>`.
pub fn chunk_subject(bucket: &str, nuid: &str) -> String {
    format!("$O.{bucket}.C.{nuid}")
}

/// Every chunk of a store: `$O.<bucket>.C.>`.
pub fn chunks_filter(bucket: &str) -> String {
    format!("$O.{bucket}.C.>")
}

/// The subject of an object's meta message: `$O.<bucket>.M.<base64url(name)>` (padded, as Go encodes it).
pub fn meta_subject(bucket: &str, name: &str) -> String {
    format!("$O.{bucket}.M.{}", crate::model::encode_url(name.as_bytes()))
}

/// Every meta message of a store: `$O.<bucket>.M.>`.
pub fn meta_filter(bucket: &str) -> String {
    format!("$O.{bucket}.M.>")
}

/// Checks an object name: any non-empty string.
pub fn validate_name(name: &str) -> Result<(), JetStreamError> {
    if name.is_empty() {
        return Err(JetStreamError::InvalidObjectName { name: name.to_owned(), reason: "empty" });
    }
    Ok(())
}

/// `Nats-Rollup: sub`: a name keeps only its latest meta message.
fn rollup() -> Headers {
    let mut headers = Headers::new();
    // A constant, valid name and value: this cannot fail.
    let _ = headers.insert(ROLLUP, "sub");
    headers
}

/// The digest as an object's info carries it: `SHA-256=<base64url>`.
fn digest_text(hasher: Sha256) -> String {
    format!("SHA-256={}", crate::model::encode_url(&hasher.finalize()))
}

/// A put in progress: hashes and counts the chunks a binding publishes, then makes the meta message.
#[derive(Debug, Clone)]
pub struct ObjectWriter {
    info: ObjectInfo,
    subject: String,
    chunk_size: usize,
    hasher: Sha256,
}

/// What a finished put publishes last: the meta message, and the info it describes.
#[derive(Debug, Clone)]
pub struct FinishedPut {
    /// `$O.<bucket>.M.<base64url(name)>`.
    pub subject: String,
    /// `Nats-Rollup: sub`: the name keeps only this meta message.
    pub headers: Headers,
    /// The info as JSON.
    pub payload: Bytes,
    /// The info (without `modified`, which the stored message's time gives).
    pub info: ObjectInfo,
}

impl ObjectWriter {
    /// A writer of `meta` into `bucket`, its chunks under `nuid` (a fresh unique token per put).
    pub fn new(bucket: &str, meta: ObjectMeta, nuid: &str) -> Result<Self, JetStreamError> {
        crate::api::validate_bucket(bucket)?;
        validate_name(&meta.name)?;
        let chunk_size = match meta.options.as_ref().map_or(0, |o| o.max_chunk_size) {
            0 => DEFAULT_CHUNK_SIZE,
            n => n as usize,
        };
        let info = ObjectInfo { meta, bucket: bucket.to_owned(), nuid: nuid.to_owned(), ..ObjectInfo::default() };
        Ok(Self { subject: chunk_subject(bucket, nuid), info, chunk_size, hasher: Sha256::new() })
    }

    /// The size of each chunk but the last.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Where the chunks go.
    pub fn chunk_subject(&self) -> &str {
        &self.subject
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.info.meta.name
    }

    /// The nuid of this version.
    pub fn nuid(&self) -> &str {
        &self.info.nuid
    }

    /// Counts and hashes one chunk the binding publishes.
    pub fn add_chunk(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.info.size += data.len() as u64;
        self.info.chunks += 1;
    }

    /// The meta message that completes the put.
    pub fn finish(mut self) -> FinishedPut {
        self.info.digest = digest_text(self.hasher);
        let payload = Bytes::from(serde_json::to_vec(&self.info).unwrap_or_default());
        let headers = rollup();
        FinishedPut {
            subject: meta_subject(&self.info.bucket, &self.info.meta.name),
            headers,
            payload,
            info: self.info,
        }
    }
}

/// The meta message of a delete: the info marked deleted, with no content.
pub fn deleted(info: &ObjectInfo) -> FinishedPut {
    let mut marker = info.clone();
    marker.deleted = true;
    marker.size = 0;
    marker.chunks = 0;
    marker.digest.clear();
    meta_message(marker)
}

/// The meta message of `current` with its descriptive fields replaced by `meta` (name, description, headers,
/// metadata), its content and options kept: a rename when the name differs.
pub fn updated(current: &ObjectInfo, meta: ObjectMeta) -> Result<FinishedPut, JetStreamError> {
    validate_name(&meta.name)?;
    let mut info = current.clone();
    let options = info.meta.options.take();
    info.meta = ObjectMeta { options, ..meta };
    Ok(meta_message(info))
}

/// The meta message of a link named `name` in `bucket` to the object `target` (which must be neither deleted
/// nor a link itself), or to the whole store `target.bucket` when `target.meta.name` is empty.
pub fn link(bucket: &str, name: &str, nuid: &str, target: &ObjectInfo) -> Result<FinishedPut, JetStreamError> {
    crate::api::validate_bucket(bucket)?;
    validate_name(name)?;
    if target.deleted {
        return Err(JetStreamError::ObjectNotFound { name: target.meta.name.clone() });
    }
    if target.link().is_some() {
        return Err(JetStreamError::InvalidObjectName {
            name: name.to_owned(),
            reason: "a link cannot point to a link",
        });
    }
    let link = ObjectLink { bucket: target.bucket.clone(), name: target.meta.name.clone() };
    let meta = ObjectMeta {
        options: Some(ObjectOptions { link: Some(link), ..ObjectOptions::default() }),
        ..ObjectMeta::new(name)
    };
    Ok(meta_message(ObjectInfo { meta, bucket: bucket.to_owned(), nuid: nuid.to_owned(), ..ObjectInfo::default() }))
}

/// The object a link names; a link to a whole store cannot be read as an object.
pub fn link_target<'a>(info: &ObjectInfo, link: &'a ObjectLink) -> Result<&'a str, JetStreamError> {
    if link.name.is_empty() {
        return Err(JetStreamError::InvalidObjectName {
            name: info.meta.name.clone(),
            reason: "a link to a whole store has no content to read",
        });
    }
    Ok(&link.name)
}

/// The object a link leads to, checked: a live object, not a link itself (links are followed one hop only,
/// so a cycle written by other clients is an error, not a loop).
pub fn followed(info: &ObjectInfo, link: &ObjectLink, target: ObjectInfo) -> Result<ObjectInfo, JetStreamError> {
    if target.link().is_some() {
        return Err(JetStreamError::InvalidObjectName {
            name: info.meta.name.clone(),
            reason: "a link that leads to another link is not followed",
        });
    }
    if target.deleted {
        return Err(JetStreamError::ObjectNotFound { name: link.name.clone() });
    }
    Ok(target)
}

/// A store as the target of a link (see [`link`]).
pub fn store_as_target(bucket: &str) -> ObjectInfo {
    ObjectInfo { bucket: bucket.to_owned(), ..ObjectInfo::default() }
}

/// The error of a put whose content could not be read.
pub fn source_failed(name: &str, reason: impl std::fmt::Display) -> JetStreamError {
    JetStreamError::ObjectSource { name: name.to_owned(), reason: reason.to_string() }
}

/// The error of a name that is taken (by an object that is not a link, for a link or a rename).
pub fn name_taken(name: &str) -> JetStreamError {
    JetStreamError::InvalidObjectName { name: name.to_owned(), reason: "an object of that name exists" }
}

/// An info as its meta message (with the rollup that keeps one per name).
fn meta_message(info: ObjectInfo) -> FinishedPut {
    let payload = Bytes::from(serde_json::to_vec(&info).unwrap_or_default());
    FinishedPut { subject: meta_subject(&info.bucket, &info.meta.name), headers: rollup(), payload, info }
}

/// Reads an object's info from its meta message (its time is the object's modification time).
pub fn info_from_meta(payload: &[u8], time: Option<std::time::SystemTime>) -> Result<ObjectInfo, JetStreamError> {
    let mut info: ObjectInfo = serde_json::from_slice(payload)
        .map_err(|e| JetStreamError::InvalidReply { reason: format!("object meta: {e}") })?;
    info.modified = time;
    Ok(info)
}

/// Checks what a reader gets against the object's info: never more bytes than its size, then exactly its
/// size, chunk count and digest. Any mismatch is [`JetStreamError::ObjectCorrupt`].
#[derive(Debug, Clone)]
pub struct ObjectVerifier {
    info: ObjectInfo,
    hasher: Sha256,
    size: u64,
    chunks: u32,
}

impl ObjectVerifier {
    /// A verifier of the object `info` describes.
    pub fn new(info: ObjectInfo) -> Self {
        Self { info, hasher: Sha256::new(), size: 0, chunks: 0 }
    }

    fn corrupt(&self, reason: String) -> JetStreamError {
        JetStreamError::ObjectCorrupt { name: self.info.meta.name.clone(), reason }
    }

    /// Counts and hashes one chunk; more bytes or chunks than the info says is an error at once.
    pub fn add_chunk(&mut self, data: &[u8]) -> Result<(), JetStreamError> {
        self.size += data.len() as u64;
        self.chunks += 1;
        if self.size > self.info.size || self.chunks > self.info.chunks {
            return Err(
                self.corrupt(format!("more than its {} bytes in {} chunks came", self.info.size, self.info.chunks))
            );
        }
        self.hasher.update(data);
        Ok(())
    }

    /// All of the object came: checks size, chunk count and digest.
    pub fn finish(self) -> Result<ObjectInfo, JetStreamError> {
        if self.size != self.info.size || self.chunks != self.info.chunks {
            let (size, chunks) = (self.size, self.chunks);
            return Err(self
                .corrupt(format!("{size} bytes in {chunks} chunks, not {} in {}", self.info.size, self.info.chunks)));
        }
        let got = digest_text(self.hasher.clone());
        if !self.info.digest.is_empty() && got != self.info.digest {
            return Err(self.corrupt(format!("digest {got}, not {}", self.info.digest)));
        }
        Ok(self.info)
    }

    /// The store holds `stored` chunk messages of this version: fewer than its chunk count is an error
    /// (a reader would wait for ever for the rest).
    pub fn check_stored(&self, stored: u64) -> Result<(), JetStreamError> {
        if stored < u64::from(self.info.chunks) {
            return Err(self.corrupt(format!("only {stored} of its {} chunks are stored", self.info.chunks)));
        }
        Ok(())
    }

    /// The error when the next chunk is no longer stored: the version was replaced or deleted (or purged)
    /// while being read, and the rest will never come.
    pub fn chunks_gone(&self) -> JetStreamError {
        let (next, all) = (self.chunks.saturating_add(1), self.info.chunks);
        self.corrupt(format!("chunk {next} of {all} is no longer stored (replaced or deleted while being read)"))
    }

    /// Whether every chunk has come.
    pub fn is_complete(&self) -> bool {
        self.chunks >= self.info.chunks
    }

    /// The info being verified.
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_json_is_what_other_clients_write_and_read() {
        let mut w = ObjectWriter::new("b", ObjectMeta::new("a/b c"), "N1").unwrap();
        w.add_chunk(&[1; 10]);
        let put = w.finish();
        let text = String::from_utf8(put.payload.to_vec()).unwrap();
        assert!(text.starts_with(r#"{"name":"a/b c","bucket":"b","nuid":"N1","size":10,"chunks":1,"digest":"SHA-256="#));
        assert!(!text.contains("deleted") && !text.contains("mtime"), "{text}");
        assert_eq!(put.headers.get(ROLLUP), Some("sub"));
        // Read back, with the fields nats.go adds (mtime, options) and ones we do not know.
        let go = r#"{"name":"x","options":{"max_chunk_size":131072},"bucket":"b","nuid":"N","size":3,
            "mtime":"0001-01-01T00:00:00Z","chunks":1,"digest":"SHA-256=abc","headers":{"K":["v"]},"new":1}"#;
        let info = info_from_meta(go.as_bytes(), None).unwrap();
        assert_eq!((info.name(), info.size, info.chunks), ("x", 3, 1));
        assert_eq!(info.meta.headers["K"], ["v"]);
        assert_eq!(info.meta.options.unwrap().max_chunk_size, 131072);
        assert!(info_from_meta(b"not json", None).is_err());
    }

    #[test]
    fn a_delete_marker_keeps_the_name_and_drops_the_content() {
        let mut w = ObjectWriter::new("b", ObjectMeta::new("gone"), "N1").unwrap();
        w.add_chunk(b"data");
        let marker = deleted(&w.finish().info);
        assert!(marker.info.deleted && marker.info.size == 0 && marker.info.digest.is_empty());
        assert_eq!(marker.subject, meta_subject("b", "gone"));
        assert!(String::from_utf8(marker.payload.to_vec()).unwrap().contains(r#""deleted":true"#));
    }

    #[test]
    fn links_and_updates_keep_what_they_must() {
        let mut w = ObjectWriter::new("b", ObjectMeta::new("target"), "N1").unwrap();
        w.add_chunk(b"data");
        let target = w.finish().info;
        let l = link("b2", "alias", "N2", &target).unwrap();
        assert_eq!(l.info.link(), Some(&ObjectLink { bucket: "b".into(), name: "target".into() }));
        assert_eq!((l.info.size, l.info.chunks, l.subject.as_str()), (0, 0, "$O.b2.M.YWxpYXM="));
        assert!(link("b2", "again", "N3", &l.info).is_err(), "no link to a link");
        assert!(link("b2", "x", "N3", &deleted(&target).info).is_err(), "no link to a deleted object");
        let renamed = updated(&target, ObjectMeta { description: "d".into(), ..ObjectMeta::new("new") }).unwrap();
        assert_eq!((renamed.info.name(), renamed.info.size, renamed.info.nuid.as_str()), ("new", 4, "N1"));
        assert_eq!(renamed.info.digest, target.digest);
        assert_eq!(renamed.subject, meta_subject("b", "new"));
        assert!(updated(&target, ObjectMeta::new("")).is_err());
    }

    #[test]
    fn the_verifier_refuses_short_long_and_altered_content() {
        let mut w = ObjectWriter::new("b", ObjectMeta::new("o"), "N").unwrap();
        w.add_chunk(b"abc");
        w.add_chunk(b"def");
        let info = w.finish().info;
        let ok = |chunks: &[&[u8]]| {
            let mut v = ObjectVerifier::new(info.clone());
            chunks.iter().try_for_each(|c| v.add_chunk(c))?;
            v.finish()
        };
        assert!(ok(&[b"abc", b"def"]).is_ok());
        assert!(matches!(ok(&[b"abc"]), Err(JetStreamError::ObjectCorrupt { .. })), "short");
        assert!(matches!(ok(&[b"abc", b"defg"]), Err(JetStreamError::ObjectCorrupt { .. })), "long");
        assert!(matches!(ok(&[b"abc", b"deF"]), Err(JetStreamError::ObjectCorrupt { .. })), "altered");
        assert!(ok(&[b"ab", b"cdef"]).is_ok(), "chunk boundaries do not matter to the digest");
        assert!(ObjectWriter::new("b", ObjectMeta::new(""), "N").is_err());
        assert!(ObjectWriter::new("b.c", ObjectMeta::new("o"), "N").is_err());
    }
}
