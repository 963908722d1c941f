//! The object store against a real `nats-server -js`, on both bindings and on both servers (2.15 and 2.9):
//! multi-chunk round trips (digest checked), replacing a version (old chunks purged), delete, list, info,
//! status, an empty object, a reader that fails, and a stored chunk altered behind the store's back (a typed
//! error, never silent data).

// Tests read the clock and sleep; the crate's clippy.toml forbids both in the sans-IO core only.
#![allow(clippy::disallowed_methods)]

#[macro_use]
mod versions;

use std::io::Read;

use nats_jetstream::error::JetStreamError;
use nats_jetstream::model::{ObjectMeta, ObjectOptions, ObjectStoreConfig, PurgeRequest, StorageType};
use nats_jetstream::object::{chunk_subject, meta_subject};
use nats_jetstream::Error;
use nats_server_harness::{NatsServer, ServerVersion};

/// Deterministic content of `len` bytes (so a misplaced chunk changes the digest).
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed).collect()
}

fn js_server(version: ServerVersion) -> NatsServer {
    NatsServer::builder().version(version).jetstream(true).start().expect("start nats-server with JetStream")
}

fn memory_store(bucket: &str) -> ObjectStoreConfig {
    ObjectStoreConfig { storage: StorageType::Memory, ..ObjectStoreConfig::new(bucket) }
}

fn is_not_found(e: &Error) -> bool {
    matches!(e.jetstream(), Some(JetStreamError::ObjectNotFound { .. }))
}

mod blocking {
    use super::*;
    use nats_jetstream::blocking::Context;

    fn round_trips_replaces_deletes_and_lists(version: ServerVersion) {
        let server = js_server(version);
        let js = Context::new(nats_blocking::connect(&server.url()).expect("connect"));
        let store = js.create_object_store(&memory_store("files")).expect("create store");

        // Three and a half chunks, and a smaller chunk size for another object.
        let big = content(3 * 128 * 1024 + 1000, 1);
        let info = store.put(ObjectMeta::new("big.bin"), &big[..]).expect("put");
        assert_eq!((info.size, info.chunks), (big.len() as u64, 4));
        assert!(info.digest.starts_with("SHA-256="));
        assert_eq!(store.get_bytes("big.bin").expect("get"), big);
        let small_chunks = ObjectMeta {
            options: Some(ObjectOptions { max_chunk_size: 1000, ..ObjectOptions::default() }),
            ..ObjectMeta::new("small/chunks.txt")
        };
        let text = content(2500, 2);
        assert_eq!(store.put(small_chunks, &text[..]).expect("put").chunks, 3);
        let mut reader = store.get("small/chunks.txt").expect("get");
        let mut got = Vec::new();
        let mut piece = [0u8; 333];
        loop {
            let n = reader.read(&mut piece).expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&piece[..n]);
        }
        assert_eq!(got, text, "read in pieces that cross chunk boundaries");

        // An empty object.
        let empty = store.put_bytes("empty", b"").expect("put empty");
        assert_eq!((empty.size, empty.chunks), (0, 0));
        assert!(store.get_bytes("empty").expect("get empty").is_empty());

        // A new version replaces the old one, whose chunks are purged.
        let before = store.status().expect("status").info.state.messages;
        let replaced = store.put_bytes("big.bin", b"now small").expect("replace");
        assert_ne!(replaced.nuid, info.nuid);
        assert_eq!(store.get_bytes("big.bin").expect("get"), b"now small");
        let after = store.status().expect("status").info.state.messages;
        assert_eq!(after, before - 4 + 1, "the old version's four chunks are gone (meta rolled up)");

        // info, list, delete.
        assert_eq!(store.info("big.bin").expect("info").size, 9);
        assert!(store.info("big.bin").unwrap().modified.is_some(), "the time of its meta message");
        let mut names: Vec<String> = store.list().expect("list").iter().map(|i| i.name().to_owned()).collect();
        names.sort();
        assert_eq!(names, ["big.bin", "empty", "small/chunks.txt"]);
        store.delete("small/chunks.txt").expect("delete");
        assert!(is_not_found(&store.info("small/chunks.txt").unwrap_err()));
        assert!(is_not_found(&store.get("small/chunks.txt").unwrap_err()));
        assert!(is_not_found(&store.delete("small/chunks.txt").unwrap_err()));
        assert!(is_not_found(&store.get("never.put").unwrap_err()));
        assert_eq!(store.list().expect("list").len(), 2, "a deleted object is not listed");
        let status = store.status().expect("status");
        assert_eq!(status.bucket, "files");
        assert!(!status.sealed);

        // Binding, and the stores that are not.
        assert!(js.object_store("files").is_ok());
        assert!(js.object_store("nothing").is_err());
        assert!(matches!(
            store.put_bytes("", b"x").unwrap_err().jetstream(),
            Some(JetStreamError::InvalidObjectName { .. })
        ));
        assert!(js.delete_object_store("files").expect("delete store"));
    }

    fn a_tampered_chunk_is_a_typed_error(version: ServerVersion) {
        let server = js_server(version);
        let client = nats_blocking::connect(&server.url()).expect("connect");
        let js = Context::new(client);
        let store = js.create_object_store(&memory_store("tamper")).expect("create store");
        let data = content(300_000, 3);
        let info = store.put(ObjectMeta::new("o"), &data[..]).expect("put");
        // Replace the stored chunks with others of the same sizes but different bytes.
        let chunks = chunk_subject("tamper", &info.nuid);
        js.purge_stream("OBJ_tamper", &PurgeRequest { filter: chunks.clone(), ..PurgeRequest::default() })
            .expect("purge");
        for piece in content(300_000, 4).chunks(128 * 1024) {
            js.publish(&chunks, piece.to_vec()).expect("publish a forged chunk");
        }
        let e = store.get_bytes("o").unwrap_err();
        assert!(matches!(e.jetstream(), Some(JetStreamError::ObjectCorrupt { .. })), "{e}");
        // Chunks missing (two of three stored): refused at once, not waited for.
        js.purge_stream("OBJ_tamper", &PurgeRequest { filter: chunks.clone(), ..PurgeRequest::default() })
            .expect("purge");
        for piece in data.chunks(128 * 1024).take(2) {
            js.publish(&chunks, piece.to_vec()).expect("publish a genuine chunk");
        }
        let e = store.get_bytes("o").unwrap_err();
        assert!(
            matches!(e.jetstream(), Some(JetStreamError::ObjectCorrupt { reason, .. }) if reason.contains("only 2")),
            "{e}"
        );
        // The genuine content cut at other boundaries is the same object: the digest covers the bytes.
        js.purge_stream("OBJ_tamper", &PurgeRequest { filter: chunks.clone(), ..PurgeRequest::default() })
            .expect("purge");
        for piece in data.chunks(100_000) {
            js.publish(&chunks, piece.to_vec()).expect("publish a genuine chunk");
        }
        assert_eq!(store.get_bytes("o").expect("get"), data);
        // The meta message is where other clients look for it.
        assert_eq!(
            js.get_last_message("OBJ_tamper", &meta_subject("tamper", "o")).expect("meta").subject,
            meta_subject("tamper", "o")
        );
    }

    fn a_failing_source_leaves_the_previous_version(version: ServerVersion) {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(7);
                self.0 -= n;
                Ok(n)
            }
        }
        let server = js_server(version);
        let js = Context::new(nats_blocking::connect(&server.url()).expect("connect"));
        let store = js.create_object_store(&memory_store("failing")).expect("create store");
        store.put_bytes("doc", b"version 1").expect("put");
        let messages = store.status().unwrap().info.state.messages;
        let e = store.put(ObjectMeta::new("doc"), Failing(200_000)).unwrap_err();
        assert!(
            matches!(e.jetstream(), Some(JetStreamError::ObjectSource { reason, .. }) if reason == "disk on fire"),
            "{e}"
        );
        assert_eq!(store.get_bytes("doc").expect("get"), b"version 1");
        assert_eq!(store.status().unwrap().info.state.messages, messages, "the new chunks were purged");
    }

    fn links_renames_watch_and_seal(version: ServerVersion) {
        use nats_jetstream::blocking::Watched;
        let server = js_server(version);
        let js = Context::new(nats_blocking::connect(&server.url()).expect("connect"));
        let docs = js.create_object_store(&memory_store("docs")).expect("create store");
        let other = js.create_object_store(&memory_store("other")).expect("create store");
        let target = other.put_bytes("report.pdf", b"the report").expect("put");
        docs.put_bytes("local", b"here").expect("put");

        // Links: read as their target, in another store too; a store link is not readable as content.
        let link = docs.add_link("latest", &target).expect("link");
        assert_eq!(link.link().map(|l| (l.bucket.as_str(), l.name.as_str())), Some(("other", "report.pdf")));
        assert_eq!(docs.get_bytes("latest").expect("read through the link"), b"the report");
        assert!(docs.add_link("again", &link).is_err(), "no link to a link");
        assert!(docs.add_link("local", &target).is_err(), "an object that is not a link is not replaced");
        docs.add_bucket_link("everything", &other).expect("bucket link");
        assert!(docs.get_bytes("everything").is_err());
        // A cycle written from stale infos (as another client could): refused, not followed round and round.
        let ix = docs.put_bytes("x", b"x").expect("put");
        let iy = docs.put_bytes("y", b"y").expect("put");
        docs.delete("x").expect("delete");
        docs.add_link("x", &iy).expect("x -> y");
        docs.delete("y").expect("delete");
        docs.add_link("y", &ix).expect("y -> the old x");
        let e = docs.get_bytes("x").unwrap_err();
        assert!(matches!(e.jetstream(), Some(JetStreamError::InvalidObjectName { .. })), "{e}");
        docs.delete("x").expect("delete");
        docs.delete("y").expect("delete");

        // Rename: the content stays, the old name is free, a taken name is refused.
        let renamed = docs
            .update_meta("local", ObjectMeta { description: "moved".into(), ..ObjectMeta::new("moved") })
            .expect("rename");
        assert_eq!((renamed.name(), renamed.meta.description.as_str()), ("moved", "moved"));
        assert_eq!(docs.get_bytes("moved").expect("get renamed"), b"here");
        assert!(is_not_found(&docs.info("local").unwrap_err()));
        assert!(docs.update_meta("moved", ObjectMeta::new("latest")).is_err(), "the name is taken");

        // Watch: the latest of every name, the marker, then changes (delete markers included).
        let mut watch = docs.watch().expect("watch");
        let mut initial = Vec::new();
        while let Watched::Entry(info) = watch.next().expect("never ends").expect("item") {
            initial.push(format!("{}{}", info.name(), if info.deleted { " (deleted)" } else { "" }));
        }
        initial.sort();
        assert_eq!(initial, ["everything", "latest", "moved", "x (deleted)", "y (deleted)"]);
        docs.put_bytes("new", b"1").expect("put");
        match watch.next().expect("never ends").expect("item") {
            Watched::Entry(info) => assert_eq!((info.name(), info.size), ("new", 1)),
            other => panic!("{other:?}"),
        }
        docs.delete("new").expect("delete");
        match watch.next().expect("never ends").expect("item") {
            Watched::Entry(info) => assert!(info.deleted && info.name() == "new"),
            other => panic!("{other:?}"),
        }

        // Seal: no more changes.
        assert!(docs.seal().expect("seal").sealed);
        assert!(docs.put_bytes("late", b"x").is_err());
        assert_eq!(docs.get_bytes("moved").expect("still readable"), b"here");
    }

    fn a_version_purged_while_being_read_is_an_error_not_a_hang(version: ServerVersion) {
        let server = js_server(version);
        let client = nats_blocking::connect(&server.url()).expect("connect");
        let js = Context::new(client).timeout(std::time::Duration::from_secs(1));
        let store = js.create_object_store(&memory_store("midway")).expect("create store");
        // Three times the reader's read-ahead, so most chunks are still on the server when they go.
        let info = store.put(ObjectMeta::new("big"), &content(12 << 20, 5)[..]).expect("put");
        let mut reader = store.get("big").expect("get");
        let mut first = vec![0; 1 << 20];
        reader.read_exact(&mut first).expect("the first MiB");
        let chunks = chunk_subject("midway", &info.nuid);
        js.purge_stream("OBJ_midway", &PurgeRequest { filter: chunks, ..PurgeRequest::default() }).expect("purge");
        let started = std::time::Instant::now();
        let e = std::io::copy(&mut reader, &mut std::io::sink()).expect_err("the rest is gone");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{version:?}: {e}");
        assert!(e.to_string().contains("no longer stored"), "{version:?}: {e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{version:?}: noticed within a few timeouts");
    }

    on_both_servers!(
        round_trips_replaces_deletes_and_lists,
        a_tampered_chunk_is_a_typed_error,
        a_failing_source_leaves_the_previous_version,
        links_renames_watch_and_seal,
        a_version_purged_while_being_read_is_an_error_not_a_hang
    );
}

mod asynch {
    use std::pin::Pin;
    use std::task::{Context as TaskContext, Poll};

    use bytes::Bytes;
    use futures_core::Stream;
    use nats_jetstream::asynch::AsyncContext;

    use super::*;

    /// A stream of `data` in blocks of `block` bytes (not the chunk size: the store cuts them).
    struct Blocks(Vec<u8>, usize);

    impl Stream for Blocks {
        type Item = std::io::Result<Bytes>;

        fn poll_next(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
            if self.0.is_empty() {
                return Poll::Ready(None);
            }
            let n = self.1.min(self.0.len());
            let rest = self.0.split_off(n);
            Poll::Ready(Some(Ok(Bytes::from(std::mem::replace(&mut self.0, rest)))))
        }
    }

    async fn round_trips_replaces_deletes_and_lists(version: ServerVersion) {
        let server = js_server(version);
        let client = nats_tokio::connect(&server.url()).await.expect("connect");
        let js = AsyncContext::new(client);
        let store = js.create_object_store(&memory_store("afiles")).await.expect("create store");
        let big = content(2 * 128 * 1024 + 5, 5);
        let info = store.put(ObjectMeta::new("big"), Blocks(big.clone(), 50_000)).await.expect("put");
        assert_eq!((info.size, info.chunks), (big.len() as u64, 3), "blocks of 50,000 cut into 128 KiB chunks");
        let mut reader = store.get("big").await.expect("get");
        let mut got = Vec::new();
        while let Some(block) = reader.next().await {
            got.extend_from_slice(&block.expect("block"));
        }
        assert_eq!(got, big);
        assert_eq!(store.put_bytes("big", "v2").await.expect("replace").size, 2);
        // A source that fails mid-way: a typed error, and the previous version stays.
        struct Failing(u8);
        impl Stream for Failing {
            type Item = std::io::Result<Bytes>;
            fn poll_next(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
                self.0 += 1;
                Poll::Ready(Some(if self.0 < 4 {
                    Ok(Bytes::from(vec![1u8; 100_000]))
                } else {
                    Err(std::io::Error::other("gone"))
                }))
            }
        }
        let e = store.put(ObjectMeta::new("big"), Failing(0)).await.unwrap_err();
        assert!(matches!(e.jetstream(), Some(JetStreamError::ObjectSource { reason, .. }) if reason == "gone"), "{e}");
        assert_eq!(store.get_bytes("big").await.expect("get"), b"v2");
        store.put_bytes("other", Bytes::new()).await.expect("empty");
        assert!(store.get_bytes("other").await.expect("get empty").is_empty());
        assert_eq!(store.list().await.expect("list").len(), 2);
        store.delete("big").await.expect("delete");
        assert!(is_not_found(&store.info("big").await.unwrap_err()));
        assert_eq!(store.list().await.expect("list").len(), 1);
        assert_eq!(store.status().await.expect("status").bucket, "afiles");
        assert!(js.object_store("afiles").await.is_ok());
        assert!(js.delete_object_store("afiles").await.expect("delete store"));
    }

    async fn both_bindings_read_each_others_objects(version: ServerVersion) {
        let server = js_server(version);
        let js = AsyncContext::new(nats_tokio::connect(&server.url()).await.expect("connect"));
        let store = js.create_object_store(&memory_store("shared")).await.expect("create store");
        let data = content(200_000, 6);
        store.put(ObjectMeta::new("from-async"), Blocks(data.clone(), 7_000)).await.expect("put");
        let url = server.url();
        let (back, blocking_info) = tokio::task::spawn_blocking(move || {
            let js = nats_jetstream::blocking::Context::new(nats_blocking::connect(&url).expect("connect"));
            let store = js.object_store("shared").expect("bind");
            let back = store.get_bytes("from-async").expect("blocking get");
            (back, store.put_bytes("from-blocking", b"hello from a thread").expect("blocking put"))
        })
        .await
        .unwrap();
        assert_eq!(back, data);
        let async_info = store.info("from-blocking").await.expect("info");
        assert_eq!((async_info.size, &async_info.digest), (blocking_info.size, &blocking_info.digest));
        assert_eq!(store.get_bytes("from-blocking").await.expect("get"), b"hello from a thread");
    }

    async fn missing_chunks_are_a_typed_error(version: ServerVersion) {
        let server = js_server(version);
        let js = AsyncContext::new(nats_tokio::connect(&server.url()).await.expect("connect"));
        let store = js.create_object_store(&memory_store("amissing")).await.expect("create store");
        let data = content(300_000, 7);
        let info = store.put(ObjectMeta::new("o"), Blocks(data.clone(), 300_000)).await.expect("put");
        let chunks = chunk_subject("amissing", &info.nuid);
        js.purge_stream("OBJ_amissing", &PurgeRequest { filter: chunks.clone(), ..PurgeRequest::default() })
            .await
            .expect("purge");
        js.publish(&chunks, Bytes::copy_from_slice(&data[..128 * 1024])).await.expect("one chunk back");
        let e = store.get_bytes("o").await.unwrap_err();
        assert!(matches!(e.jetstream(), Some(JetStreamError::ObjectCorrupt { .. })), "{e}");
    }

    async fn a_version_purged_while_being_read_ends_in_error(version: ServerVersion) {
        let server = js_server(version);
        let client = nats_tokio::connect(&server.url()).await.expect("connect");
        let js = AsyncContext::new(client).timeout(std::time::Duration::from_secs(1));
        let store = js.create_object_store(&memory_store("amidway")).await.expect("create store");
        let info = store.put(ObjectMeta::new("big"), Blocks(content(12 << 20, 6), 1 << 20)).await.expect("put");
        let mut reader = store.get("big").await.expect("get");
        let first = reader.next().await.expect("a first chunk").expect("data");
        assert!(!first.is_empty());
        let chunks = chunk_subject("amidway", &info.nuid);
        js.purge_stream("OBJ_amidway", &PurgeRequest { filter: chunks, ..PurgeRequest::default() })
            .await
            .expect("purge");
        let rest = async {
            loop {
                match reader.next().await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Some(e),
                    None => return None,
                }
            }
        };
        let e = tokio::time::timeout(std::time::Duration::from_secs(20), rest).await.expect("no hang");
        let e = e.expect("an error, not a clean end");
        assert!(matches!(e.jetstream(), Some(JetStreamError::ObjectCorrupt { .. })), "{version:?}: {e}");
    }

    async fn links_renames_watch_and_seal(version: ServerVersion) {
        use nats_jetstream::asynch::Watched;
        let server = js_server(version);
        let js = AsyncContext::new(nats_tokio::connect(&server.url()).await.expect("connect"));
        let docs = js.create_object_store(&memory_store("adocs")).await.expect("create store");
        let target = docs.put_bytes("target", "content").await.expect("put");
        docs.add_link("alias", &target).await.expect("link");
        assert_eq!(docs.get_bytes("alias").await.expect("through the link"), b"content");
        let renamed = docs.update_meta("target", ObjectMeta::new("renamed")).await.expect("rename");
        assert_eq!(renamed.digest, target.digest);
        assert!(is_not_found(&docs.info("target").await.unwrap_err()));
        let mut watch = docs.watch().await.expect("watch");
        let mut names = Vec::new();
        while let Watched::Entry(info) = watch.next().await.expect("never ends").expect("item") {
            names.push(info.name().to_owned());
        }
        names.sort();
        assert_eq!(names, ["alias", "renamed"]);
        docs.put_bytes("later", "x").await.expect("put");
        assert!(matches!(watch.next().await, Some(Ok(Watched::Entry(info))) if info.name() == "later"));
        assert!(docs.seal().await.expect("seal").sealed);
        assert!(docs.put_bytes("sealed", "x").await.is_err());
    }

    on_both_servers_async!(
        round_trips_replaces_deletes_and_lists,
        both_bindings_read_each_others_objects,
        missing_chunks_are_a_typed_error,
        links_renames_watch_and_seal,
        a_version_purged_while_being_read_ends_in_error
    );

    /// On smol, with no tokio runtime: the store's waits are the client's (smol's).
    #[test]
    fn on_smol_put_and_get() {
        let server = js_server(ServerVersion::Current);
        smol::block_on(async {
            let options = nats_tokio::ConnectOptions::new().server(&server.url());
            let client = nats_tokio::connect_smol(options).await.expect("connect");
            let store = AsyncContext::new(client).create_object_store(&memory_store("smol")).await.expect("store");
            let data = content(140_000, 8);
            store.put(ObjectMeta::new("s"), Blocks(data.clone(), 1 << 20)).await.expect("put");
            assert_eq!(store.get_bytes("s").await.expect("get"), data);
        });
    }
}

/// Objects written by this store read back with another client's object store (nats-py's), and the other
/// way round: the same subjects, meta JSON, chunking and digest.
mod interop {
    use std::path::PathBuf;
    use std::process::Command;

    use nats_jetstream::blocking::Context;

    use super::*;

    /// The Python with nats-py that `scripts/setup` installs (`.tools/venv`), else `python3` if it has nats-py.
    fn python() -> Option<PathBuf> {
        let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/python");
        [venv, PathBuf::from("python3")]
            .into_iter()
            .find(|p| Command::new(p).args(["-c", "import nats"]).output().is_ok_and(|o| o.status.success()))
    }

    const SCRIPT: &str = r#"
import asyncio, hashlib, sys
import nats

async def main(url, bucket, name, data_len):
    nc = await nats.connect(url)
    obs = await nc.jetstream().object_store(bucket)
    got = await obs.get(name)
    print(len(got.data), hashlib.sha256(got.data).hexdigest(), got.info.chunks)
    data = bytes((i * 7919 + 3) % 251 for i in range(int(data_len)))
    await obs.put("from-python", data)
    await nc.close()

asyncio.run(main(*sys.argv[1:]))
"#;

    #[test]
    fn nats_py_reads_our_objects_and_we_read_theirs() {
        let Some(python) = python() else {
            eprintln!("skipped: no Python with nats-py (run scripts/setup, which installs it into .tools/venv)");
            return;
        };
        let server = js_server(ServerVersion::Current);
        let js = Context::new(nats_blocking::connect(&server.url()).expect("connect"));
        let store = js.create_object_store(&ObjectStoreConfig::new("interop")).expect("create store");
        let ours = content(300_000, 9);
        store.put(ObjectMeta::new("from-rust.bin"), &ours[..]).expect("put");
        let theirs_len = 200_000;
        let out = Command::new(&python)
            .args(["-c", SCRIPT, &server.url(), "interop", "from-rust.bin", &theirs_len.to_string()])
            .output()
            .expect("python runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "nats-py failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let fields: Vec<&str> = stdout.split_whitespace().collect();
        let hex: String = {
            use sha2::Digest;
            sha2::Sha256::digest(&ours).iter().map(|b| format!("{b:02x}")).collect()
        };
        assert_eq!(fields, [ours.len().to_string().as_str(), hex.as_str(), "3"], "nats-py read what we wrote");
        let expected: Vec<u8> = (0..theirs_len).map(|i| ((i * 7919 + 3) % 251) as u8).collect();
        let info = store.info("from-python").expect("their object's info");
        assert_eq!(info.size, theirs_len as u64);
        assert_eq!(store.get_bytes("from-python").expect("we read what nats-py wrote, digest checked"), expected);
    }
}
