//! Key/Value mirrors and sources (ADR-8) against a real `nats-server -js`: a mirror bucket reads its own copy
//! and writes to its origin (2.15 and 2.9); a bucket sourcing two others sees their keys as its own (2.15:
//! the renaming needs subject transforms, 2.10+).

// Tests read the clock and sleep; the crate's clippy.toml forbids both in the sans-IO core only.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use nats_jetstream::blocking::Watched;
use nats_jetstream::error::JetStreamError;
use nats_jetstream::model::{KvConfig, StorageType, StreamSource};
use nats_server_harness::{NatsServer, ServerVersion};

const BOUND: Duration = Duration::from_secs(15);

fn js_server(version: ServerVersion) -> NatsServer {
    NatsServer::builder().version(version).jetstream(true).start().expect("start nats-server with JetStream")
}

fn bucket(name: &str) -> KvConfig {
    KvConfig { storage: StorageType::Memory, history: 5, ..KvConfig::new(name) }
}

fn source(name: &str) -> StreamSource {
    StreamSource { name: name.into(), ..StreamSource::default() }
}

/// Waits (the copy is asynchronous) until `check` holds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < BOUND, "{what}: not within {BOUND:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

mod blocking {
    use super::*;
    use nats_jetstream::blocking::{Context, Store};

    type Js = Context<nats_blocking::Client>;

    fn connect(server: &NatsServer) -> Js {
        Context::new(nats_blocking::connect(&server.url()).expect("connect"))
    }

    fn value(store: &Store<nats_blocking::Client>, key: &str) -> Option<Vec<u8>> {
        store.get(key).expect("get").map(|e| e.value.to_vec())
    }

    fn a_mirror_reads_its_copy_and_writes_to_its_origin(version: ServerVersion) {
        let server = js_server(version);
        let js = connect(&server);
        let origin = js.create_key_value(&bucket("origin")).expect("origin");
        origin.put("a", "1").expect("put");
        origin.put("b", "2").expect("put");
        let mirror = KvConfig { mirror: Some(source("origin")), ..bucket("replica") };
        let replica = js.create_key_value(&mirror).expect("mirror bucket");
        let stream = js.stream_info("KV_replica").expect("its stream");
        assert!(stream.config.subjects.is_empty(), "{version:?}: a mirror has no subjects of its own");
        assert_eq!(stream.config.mirror.as_ref().map(|m| m.name.as_str()), Some("KV_origin"));
        eventually("the copy", || value(&replica, "b").as_deref() == Some(b"2"));

        // A write through the mirror lands in the origin, then comes back in the copy.
        let revision = replica.put("c", "3").expect("put through the mirror");
        let in_origin = origin.entry("c").expect("get").expect("in the origin");
        assert_eq!((in_origin.revision, &in_origin.value[..]), (revision, &b"3"[..]));
        eventually("the write mirrored back", || value(&replica, "c").as_deref() == Some(b"3"));
        replica.delete("a").expect("delete through the mirror");
        eventually("the delete mirrored back", || value(&replica, "a").is_none());
        assert_eq!(replica.keys().expect("keys"), ["b", "c"], "{version:?}");
        let history = replica.history("c").expect("history");
        assert_eq!(history.len(), 1);

        // A watch of the mirror: its copy, then what changes.
        let mut watch = replica.watch(">").expect("watch");
        let mut initial = Vec::new();
        while let Watched::Entry(e) = watch.next().expect("goes on").expect("entry") {
            initial.push(e.key);
        }
        assert_eq!(initial, ["b", "c", "a"], "{version:?}: latest entry per key, in stream order");
        origin.put("d", "4").expect("put");
        match watch.next().expect("goes on").expect("entry") {
            Watched::Entry(e) => assert_eq!((e.key.as_str(), &e.value[..]), ("d", &b"4"[..])),
            other => panic!("{version:?}: {other:?}"),
        }
        // Bound again by name, it is still a mirror.
        let bound = js.key_value("replica").expect("bind");
        bound.put("e", "5").expect("put");
        assert!(origin.get("e").expect("get").is_some(), "{version:?}: the bound mirror writes to its origin");
    }

    #[test]
    fn current_a_mirror_reads_its_copy_and_writes_to_its_origin() {
        a_mirror_reads_its_copy_and_writes_to_its_origin(ServerVersion::Current);
    }

    #[test]
    fn old_a_mirror_reads_its_copy_and_writes_to_its_origin() {
        a_mirror_reads_its_copy_and_writes_to_its_origin(ServerVersion::Old);
    }

    #[test]
    fn a_bucket_sourcing_two_others_sees_their_keys_as_its_own() {
        let server = js_server(ServerVersion::Current);
        let js = connect(&server);
        let east = js.create_key_value(&bucket("east")).expect("east");
        let west = js.create_key_value(&bucket("west")).expect("west");
        east.put("x", "from east").expect("put");
        west.put("y", "from west").expect("put");
        let all = KvConfig { sources: vec![source("KV_east"), source("west")], ..bucket("all") };
        let all = js.create_key_value(&all).expect("sourcing bucket");
        eventually("both sources", || value(&all, "x").is_some() && value(&all, "y").is_some());
        assert_eq!(value(&all, "y").as_deref(), Some(&b"from west"[..]));
        let entry = all.entry("x").expect("get").expect("sourced");
        assert_eq!(entry.bucket, "all", "renamed into the bucket");
        // Its own writes stay its own.
        all.put("z", "local").expect("put");
        assert!(east.get("z").expect("get").is_none() && west.get("z").expect("get").is_none());
        west.put("y", "again").expect("put");
        eventually("a later write sourced", || value(&all, "y").as_deref() == Some(b"again"));
        assert_eq!(all.keys().expect("keys"), ["x", "y", "z"]);
    }

    #[test]
    fn mirroring_and_sourcing_at_once_is_refused() {
        let both = KvConfig { mirror: Some(source("a")), sources: vec![source("b")], ..bucket("c") };
        let error = both.to_stream_config().expect_err("both");
        assert!(matches!(error, JetStreamError::InvalidConfig { .. }), "{error:?}");
        let bad = KvConfig { mirror: Some(source("not a bucket")), ..bucket("c") };
        assert!(bad.to_stream_config().is_err());
        // A filtered source from another bucket would land where this one never looks.
        let filtered = StreamSource { filter_subject: "$KV.a.k.>".into(), ..source("a") };
        let error = KvConfig { sources: vec![filtered.clone()], ..bucket("c") }.to_stream_config().unwrap_err();
        assert!(
            matches!(error, JetStreamError::InvalidConfig { ref reason } if reason.contains("filter")),
            "{error:?}"
        );
        let same = KvConfig { sources: vec![filtered], ..bucket("a2") };
        assert!(same.to_stream_config().is_err(), "another bucket's filter, still without transforms");
        let own = StreamSource { filter_subject: "$KV.c.k.>".into(), ..source("c") };
        let kept = KvConfig { sources: vec![own], ..bucket("c") }.to_stream_config().expect("its own name: kept");
        assert!(kept.sources[0].subject_transforms.is_empty());
    }
}

mod asynch {
    use super::*;
    use nats_jetstream::asynch::AsyncContext;

    #[tokio::test]
    async fn a_mirror_on_the_async_binding() {
        let server = js_server(ServerVersion::Current);
        let js = AsyncContext::new(nats_tokio::connect(&server.url()).await.expect("connect"));
        let origin = js.create_key_value(&bucket("aorigin")).await.expect("origin");
        origin.put("k", "v").await.expect("put");
        let replica = js
            .create_key_value(&KvConfig { mirror: Some(source("aorigin")), ..bucket("areplica") })
            .await
            .expect("mirror");
        let start = Instant::now();
        while replica.get("k").await.expect("get").is_none() {
            assert!(start.elapsed() < BOUND, "the copy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        replica.put("w", "through").await.expect("put through the mirror");
        assert_eq!(origin.get("w").await.expect("get").map(|e| e.value.to_vec()), Some(b"through".to_vec()));
    }
}
