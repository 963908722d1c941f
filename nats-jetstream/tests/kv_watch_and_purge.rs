//! The rest of Key/Value (ADR-8) against a real `nats-server -js`: watch options (several keys, updates only,
//! the whole history, without deletes, without values), `keys()` from one ordered consumer, `purge_deletes`,
//! and per-key TTLs (2.11+ servers only); on both bindings.

// Tests read the clock and sleep; the crate's clippy.toml forbids both in the sans-IO core only.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use nats_jetstream::kv::{Operation, WatchOptions};
use nats_jetstream::model::{KvConfig, StorageType};
use nats_server_harness::{NatsServer, ServerVersion};

fn js_server(version: ServerVersion) -> NatsServer {
    NatsServer::builder().version(version).jetstream(true).start().expect("start nats-server with JetStream")
}

fn bucket(name: &str, history: i64) -> KvConfig {
    KvConfig { history, storage: StorageType::Memory, ..KvConfig::new(name) }
}

mod blocking {
    use super::*;
    use nats_jetstream::blocking::{Context, Watched};

    fn connect(server: &NatsServer) -> Context<nats_blocking::Client> {
        Context::new(nats_blocking::connect(&server.url()).expect("connect"))
    }

    /// Entries up to the initial-data marker, as (key, operation, value).
    fn initial(watch: &mut nats_jetstream::blocking::Watch<nats_blocking::Client>) -> Vec<(String, Operation, String)> {
        let mut out = Vec::new();
        while let Watched::Entry(e) = watch.next().expect("never ends").expect("item") {
            out.push((e.key, e.operation, String::from_utf8_lossy(&e.value).into_owned()));
        }
        out
    }

    fn watch_options_keys_and_purge_deletes(version: ServerVersion) {
        let server = js_server(version);
        let js = connect(&server);
        let kv = js.create_key_value(&bucket("opts", 5)).expect("bucket");
        kv.put("a", "1").expect("put");
        kv.put("a", "2").expect("put");
        kv.put("b", "1").expect("put");
        kv.put("c.x", "1").expect("put");
        kv.delete("b").expect("delete");

        // Several keys; the latest of each (several filters need server 2.10).
        if version == ServerVersion::Current {
            let mut w = kv.watch_with(&WatchOptions::keys(["a", "c.*"])).expect("watch");
            let got = initial(&mut w);
            assert_eq!(got, [("a".into(), Operation::Put, "2".into()), ("c.x".into(), Operation::Put, "1".into())]);
        }
        // The whole history, without deletes.
        let options = WatchOptions { include_history: true, ignore_deletes: true, ..WatchOptions::default() };
        let mut w = kv.watch_with(&options).expect("watch");
        let ops: Vec<_> = initial(&mut w).into_iter().map(|(k, _, v)| format!("{k}={v}")).collect();
        assert_eq!(ops, ["a=1", "a=2", "b=1", "c.x=1"]);
        // Values left out.
        let mut w = kv.watch_with(&WatchOptions { meta_only: true, ..WatchOptions::default() }).expect("watch");
        let got = initial(&mut w);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got.iter().all(|(_, _, v)| v.is_empty()), "{got:?}");
        // Updates only: the marker at once, then only what changes.
        let mut w = kv.watch_with(&WatchOptions { updates_only: true, ..WatchOptions::default() }).expect("watch");
        assert!(initial(&mut w).is_empty());
        kv.put("d", "new").expect("put");
        assert!(matches!(w.next(), Some(Ok(Watched::Entry(e))) if e.key == "d"));
        let both = WatchOptions { updates_only: true, include_history: true, ..WatchOptions::default() };
        assert!(kv.watch_with(&both).is_err(), "updates only has no history");

        // keys(): the live ones, sorted.
        assert_eq!(kv.keys().expect("keys"), ["a", "c.x", "d"]);
        let many = js.create_key_value(&bucket("many", 1)).expect("bucket");
        for i in 0..300 {
            many.put(&format!("k{i:03}"), "v").expect("put");
        }
        assert_eq!(many.keys().expect("keys").len(), 300);

        // purge_deletes: a young marker is kept alone, an old one (threshold zero) goes with its key.
        let before = kv.status().expect("status").values;
        assert_eq!(kv.purge_deletes(None).expect("purge deletes"), 1);
        let after = kv.status().expect("status").values;
        assert_eq!(after, before - 1, "b's value went, its marker stayed");
        assert_eq!(kv.entry("b").expect("entry").map(|e| e.operation), Some(Operation::Delete));
        assert_eq!(kv.purge_deletes(Some(Duration::ZERO)).expect("purge deletes"), 1);
        assert_eq!(kv.entry("b").expect("entry"), None, "nothing left of b");
        assert_eq!(kv.status().expect("status").values, after - 1);
    }

    #[test]
    fn current_watch_options_keys_and_purge_deletes() {
        watch_options_keys_and_purge_deletes(ServerVersion::Current);
    }

    #[test]
    fn old_watch_options_keys_and_purge_deletes() {
        watch_options_keys_and_purge_deletes(ServerVersion::Old);
    }

    /// Per-key TTLs need server 2.11 (`allow_msg_ttl`), so only the current server.
    #[test]
    fn a_value_created_with_a_ttl_goes_away_on_its_own() {
        let server = js_server(ServerVersion::Current);
        let js = connect(&server);
        let config = KvConfig { limit_marker_ttl: Duration::from_secs(1), ..bucket("ttl", 1) };
        let kv = js.create_key_value(&config).expect("bucket");
        kv.create_with_ttl("session", "token", Duration::from_secs(1)).expect("create with ttl");
        kv.put("kept", "x").expect("put");
        assert!(kv.get("session").expect("get").is_some());
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while kv.get("session").expect("get").is_some() {
            assert!(std::time::Instant::now() < deadline, "the value outlived its TTL");
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(kv.get("kept").expect("get").is_some());
        kv.purge_with_ttl("kept", Duration::from_secs(1)).expect("purge with ttl");
        assert_eq!(kv.get("kept").expect("get"), None);
    }
}

mod asynch {
    use super::*;
    use nats_jetstream::asynch::{AsyncContext, Watched};

    async fn the_same_on_the_async_binding(version: ServerVersion) {
        let server = js_server(version);
        let js = AsyncContext::new(nats_tokio::connect(&server.url()).await.expect("connect"));
        let kv = js.create_key_value(&bucket("aopts", 3)).await.expect("bucket");
        kv.put("x", "1").await.expect("put");
        kv.put("y", "1").await.expect("put");
        kv.delete("y").await.expect("delete");
        assert_eq!(kv.keys().await.expect("keys"), ["x"]);
        let options = WatchOptions { ignore_deletes: true, include_history: true, ..WatchOptions::default() };
        let mut w = kv.watch_with(&options).await.expect("watch");
        let mut keys = Vec::new();
        while let Watched::Entry(e) = w.next().await.expect("never ends").expect("item") {
            keys.push(e.key);
        }
        assert_eq!(keys, ["x", "y"], "y's value, not its marker");
        assert_eq!(kv.purge_deletes(Some(Duration::ZERO)).await.expect("purge deletes"), 1);
        assert_eq!(kv.entry("y").await.expect("entry"), None);
    }

    #[tokio::test]
    async fn current_the_same_on_the_async_binding() {
        the_same_on_the_async_binding(ServerVersion::Current).await;
    }

    #[tokio::test]
    async fn old_the_same_on_the_async_binding() {
        the_same_on_the_async_binding(ServerVersion::Old).await;
    }
}
