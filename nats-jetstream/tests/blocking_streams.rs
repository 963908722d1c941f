//! The long-running parts of the blocking binding against a real `nats-server -js`: a continuous consume
//! across a server restart, the ordered consumer's recovery, and Key/Value watch.

// Tests drive the real clock: the binding under test does.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nats_jetstream::blocking::{Context, Watched};
use nats_jetstream::kv::Operation;
use nats_jetstream::model::{ConsumerConfig, KvConfig, ObjectMeta, ObjectStoreConfig, StorageType, StreamConfig};
use nats_jetstream::ordered::OrderedConfig;
use nats_jetstream::pull::ConsumeConfig;
use nats_server_harness::{NatsServer, ServerVersion};

const BOTH: [ServerVersion; 2] = [ServerVersion::Current, ServerVersion::Old];

fn js_server(version: ServerVersion) -> NatsServer {
    NatsServer::builder().version(version).jetstream(true).start().expect("nats-server -js starts")
}

fn context(server: &NatsServer) -> Context<nats_blocking::Client> {
    let options = nats_blocking::ConnectOptions::new()
        .server(&server.url())
        .reconnect_policy(nats_blocking::ReconnectPolicy::default());
    Context::new(nats_blocking::Client::connect(options).expect("connect")).timeout(Duration::from_secs(5))
}

fn stream(js: &Context<nats_blocking::Client>, name: &str, subjects: &str, storage: StorageType) {
    let config = StreamConfig { subjects: vec![subjects.into()], storage, ..StreamConfig::new(name) };
    js.create_stream(&config).expect("create stream");
}

#[test]
fn consume_keeps_going_across_a_server_restart_and_acks_each_message_once() {
    for version in BOTH {
        let mut server = js_server(version);
        let js = context(&server);
        stream(&js, "RESTART", "restart.>", StorageType::File);
        let mut config = ConsumerConfig::named("worker");
        config.ack_wait = Duration::from_secs(30);
        js.create_consumer("RESTART", &config).expect("consumer");
        for i in 0..50 {
            js.publish(&format!("restart.{i}"), format!("{i}")).unwrap();
        }
        let consume = ConsumeConfig {
            max_messages: Some(20),
            expires: Duration::from_secs(2),
            idle_heartbeat: Some(Duration::from_millis(500)),
            ..ConsumeConfig::default()
        };
        let mut messages = js.pull_consumer("RESTART", "worker").messages(consume).unwrap();
        let mut seen = BTreeSet::new();
        let started = Instant::now();
        let mut restarted = false;
        let mut redelivered = 0;
        while seen.len() < 100 {
            assert!(started.elapsed() < Duration::from_secs(60), "{version:?}: stuck at {} messages", seen.len());
            let Some(next) = messages.next() else { panic!("{version:?}: consume ended") };
            let Ok(mut msg) = next else { continue };
            let seq = msg.metadata().unwrap().stream_sequence;
            // Each delivery is acked once from our side. A SIGKILLed server may forget acks it had not yet
            // written, so a message acked before the restart may come again after it: at least once, never
            // lost. Before the restart, nothing repeats.
            if !seen.insert(seq) {
                assert!(restarted && seq <= 50, "{version:?}: seq {seq} repeated without a restart to explain it");
                redelivered += 1;
            }
            msg.double_ack(Duration::from_secs(5)).expect("the ack is confirmed");
            if seen.len() == 50 && !restarted {
                restarted = true;
                server.restart();
                // Publishing goes on once the server is back (the client reconnects on its own).
                let wait = Instant::now();
                let mut i = 50;
                while i < 100 {
                    assert!(wait.elapsed() < Duration::from_secs(30), "{version:?}: publishing after restart");
                    if js.publish(&format!("restart.{i}"), format!("{i}")).is_ok() {
                        i += 1;
                    } else {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        }
        assert_eq!(seen.len(), 100, "{version:?}");
        assert!(redelivered <= 50, "{version:?}: {redelivered} redeliveries");
        assert_eq!(seen.iter().copied().collect::<Vec<_>>(), (1..=100).collect::<Vec<u64>>(), "{version:?}: none lost");
        messages.stop();
    }
}

#[test]
fn ordered_consumer_recovers_when_its_consumer_is_deleted() {
    for version in BOTH {
        let server = js_server(version);
        let js = context(&server);
        stream(&js, "ORDER", "order.>", StorageType::Memory);
        for i in 1..=30 {
            js.publish("order.x", format!("{i}")).unwrap();
        }
        let mut ordered = js.ordered("ORDER", OrderedConfig::default()).unwrap();
        let mut got = Vec::new();
        let started = Instant::now();
        while got.len() < 30 {
            assert!(started.elapsed() < Duration::from_secs(30), "{version:?}: {got:?}");
            let msg = ordered.next().unwrap().unwrap();
            got.push(String::from_utf8(msg.payload().to_vec()).unwrap().parse::<u32>().unwrap());
            if got.len() == 10 {
                // Pull the rug: delete every consumer of the stream.
                for name in js.consumer_names("ORDER").unwrap() {
                    js.delete_consumer("ORDER", &name).unwrap();
                }
                for i in 31..=40 {
                    js.publish("order.x", format!("{i}")).unwrap();
                }
            }
        }
        while got.len() < 40 {
            assert!(started.elapsed() < Duration::from_secs(30), "{version:?}: {got:?}");
            let msg = ordered.next().unwrap().unwrap();
            got.push(String::from_utf8(msg.payload().to_vec()).unwrap().parse::<u32>().unwrap());
        }
        assert_eq!(got, (1..=40).collect::<Vec<u32>>(), "{version:?}: no gap, no duplicate");
        assert!(ordered.resets() >= 1, "{version:?}: the chain moved to a new consumer");
    }
}

#[test]
fn kv_watch_sees_initial_data_then_puts_deletes_and_purges_in_order() {
    for version in BOTH {
        let server = js_server(version);
        let js = context(&server);
        // An empty bucket: the marker comes first.
        let empty = js.create_key_value(&KvConfig::new("empty")).unwrap();
        let mut watch = empty.watch(">").unwrap();
        assert_eq!(watch.next().unwrap().unwrap(), Watched::InitialDone, "{version:?}");
        empty.put("a", "1").unwrap();
        match watch.next().unwrap().unwrap() {
            Watched::Entry(e) => {
                assert_eq!((e.key.as_str(), &e.value[..], e.operation), ("a", &b"1"[..], Operation::Put))
            }
            other => panic!("{version:?}: {other:?}"),
        }

        // A filled bucket: the latest value of each key, then the marker, then changes in order.
        let mut config = KvConfig::new("filled");
        config.history = 5;
        let kv = js.create_key_value(&config).unwrap();
        kv.put("k1", "old").unwrap();
        kv.put("k1", "new").unwrap();
        kv.put("k2", "v2").unwrap();
        let mut watch = kv.watch(">").unwrap();
        let mut initial = Vec::new();
        while let Watched::Entry(e) = watch.next().unwrap().unwrap() {
            initial.push((e.key, String::from_utf8(e.value.to_vec()).unwrap()));
        }
        assert_eq!(initial, [("k1".to_owned(), "new".to_owned()), ("k2".to_owned(), "v2".to_owned())], "{version:?}");
        kv.put("k3", "v3").unwrap();
        kv.delete("k1").unwrap();
        kv.purge("k2").unwrap();
        let mut changes = Vec::new();
        while changes.len() < 3 {
            if let Watched::Entry(e) = watch.next().unwrap().unwrap() {
                changes.push((e.key, e.operation));
            }
        }
        assert_eq!(
            changes,
            [
                ("k3".to_owned(), Operation::Put),
                ("k1".to_owned(), Operation::Delete),
                ("k2".to_owned(), Operation::Purge)
            ],
            "{version:?}"
        );
    }
}

#[test]
fn publish_window_accounts_for_every_ack_in_order() {
    let server = js_server(ServerVersion::Current);
    let js = context(&server);
    stream(&js, "WINDOW", "window.>", StorageType::Memory);
    let mut window = js.publish_window(64);
    let mut acks = Vec::new();
    for i in 0..10_000 {
        // Once the window is full, each publish hands back the oldest ack.
        acks.extend(window.publish("window.x", format!("{i}")).unwrap());
        assert!(window.in_flight() <= 64, "the window bounds what is outstanding");
    }
    assert_eq!(acks.len(), 10_000 - 64, "an ack for every publish that left the window");
    acks.extend(window.wait_all());
    assert_eq!(acks.len(), 10_000, "one ack per publish");
    assert_eq!(window.in_flight(), 0);
    let seqs: Vec<u64> = acks.into_iter().map(|a| a.expect("stored").seq).collect();
    assert_eq!(seqs, (1..=10_000).collect::<Vec<u64>>(), "acks in publish order");
    assert_eq!(js.stream_info("WINDOW").unwrap().state.messages, 10_000);
    // A publish no stream stores gets its own error, and the others are unaffected.
    assert!(window.publish("nowhere.x", "lost").unwrap().is_none());
    assert!(window.publish("window.y", "kept").unwrap().is_none());
    let acks = window.wait_all();
    assert!(acks[0].is_err(), "{acks:?}");
    assert_eq!(acks[1].as_ref().unwrap().seq, 10_001);
}

#[test]
fn publish_window_hands_back_the_ack_taken_for_a_publish_that_could_not_be_sent() {
    let mut server = js_server(ServerVersion::Current);
    // No reconnect buffer: a publish while disconnected fails at once.
    let options = nats_blocking::ConnectOptions::new().server(&server.url()).reconnect_buffer_size(0);
    let client = nats_blocking::Client::connect(options).expect("connect");
    let js = Context::new(client.clone()).timeout(Duration::from_millis(500));
    stream(&js, "HANDBACK", "handback.>", StorageType::Memory);
    let mut window = js.publish_window(1);
    assert!(window.publish("handback.a", "first").unwrap().is_none());
    let events = client.events();
    server.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(nats_blocking::Event::Disconnected(_)) => break,
            Ok(_) => {}
            Err(e) => panic!("the client never saw the server go: {e}"),
        }
    }
    // The window is full: the first publish's ack is taken to make room, then the second cannot be sent.
    assert!(window.publish("handback.b", "second").is_err());
    assert_eq!(window.in_flight(), 1, "the first publish's ack is still owed");
    let acks = window.wait_all();
    assert_eq!(acks.len(), 1, "the ack taken for the failed publish comes back: {acks:?}");
    assert_eq!(window.in_flight(), 0);
}

#[test]
fn consume_detects_missing_heartbeats_and_recovers() {
    let server = js_server(ServerVersion::Current);
    let js = context(&server);
    stream(&js, "HB", "hb.>", StorageType::Memory);
    js.create_consumer("HB", &ConsumerConfig::named("c")).unwrap();
    let consume = ConsumeConfig {
        max_messages: Some(10),
        expires: Duration::from_secs(2),
        idle_heartbeat: Some(Duration::from_millis(500)),
        ..ConsumeConfig::default()
    };
    let mut messages = js.pull_consumer("HB", "c").messages(consume).unwrap();
    let pid = server.pid().expect("server pid").to_string();
    let publisher = context(&server);
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // Freeze the server: no heartbeats (and no TCP reset) for a while.
        assert!(std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
        std::thread::sleep(Duration::from_millis(2500));
        assert!(std::process::Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
        std::thread::sleep(Duration::from_millis(200));
        publisher.publish("hb.x", "after").unwrap();
    });
    let msg = messages.next().expect("consume goes on").expect("a message");
    assert_eq!(msg.payload(), b"after");
    stopper.join().unwrap();
    assert!(messages.missed_heartbeats() >= 1, "2 × 500 ms of silence is noticed");
}

/// A hub with JetStream domain `hub` and a leaf (domain `leaf`) connected to it, and a context on a client of
/// the leaf that reaches the hub's JetStream through the domain, once the leaf has connected.
fn hub_and_leaf(version: ServerVersion) -> (NatsServer, NatsServer, Context<nats_blocking::Client>) {
    let leaf_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hub = NatsServer::builder()
        .version(version)
        .jetstream_domain("hub")
        .config(&format!("leafnodes {{\n  listen: \"127.0.0.1:{leaf_port}\"\n}}\n"))
        .start()
        .expect("hub starts");
    let leaf = NatsServer::builder()
        .version(version)
        .jetstream_domain("leaf")
        .config(&format!("leafnodes {{\n  remotes: [ {{ url: \"nats-leaf://127.0.0.1:{leaf_port}\" }} ]\n}}\n"))
        .start()
        .expect("leaf starts");
    let client = nats_blocking::connect(&leaf.url()).unwrap();
    let in_hub = Context::with_domain(client, "hub").unwrap().timeout(Duration::from_secs(2));
    // The leaf connects to the hub in the background.
    let started = Instant::now();
    let info = loop {
        match in_hub.account_info() {
            Ok(info) => break info,
            Err(e) if started.elapsed() < Duration::from_secs(15) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("{version:?}: the hub's JetStream is not reachable from the leaf: {e}"),
        }
    };
    assert_eq!(info.domain, "hub", "{version:?}");
    (hub, leaf, in_hub)
}

#[test]
fn kv_works_in_a_hub_domain_from_a_leaf_node() {
    for version in BOTH {
        let (hub, _leaf, in_hub) = hub_and_leaf(version);
        let local = Context::new(in_hub.client().clone());
        assert_eq!(local.account_info().unwrap().domain, "leaf", "{version:?}: no domain is the leaf's");

        // A bucket in the hub, written and read from the leaf: writes go through $JS.hub.API.$KV....
        let kv = in_hub.create_key_value(&KvConfig::new("shared")).unwrap();
        let rev = kv.put("greeting", "hello from the leaf").unwrap();
        let entry = kv.get("greeting").unwrap().expect("the value");
        assert_eq!((&entry.value[..], entry.revision), (&b"hello from the leaf"[..], rev), "{version:?}");
        kv.update("greeting", "updated", rev).unwrap();
        assert!(kv.update("greeting", "stale", rev).is_err(), "{version:?}: CAS holds over a domain");
        // The hub sees the same bucket, and the leaf has none of its own.
        let hub_js = Context::new(nats_blocking::connect(&hub.url()).unwrap());
        let seen = hub_js.key_value("shared").unwrap().get("greeting").unwrap().expect("in the hub");
        assert_eq!(&seen.value[..], b"updated", "{version:?}");
        assert_eq!(local.key_value("shared").unwrap_err().err_code(), Some(10059), "{version:?}");
    }
}

#[test]
fn an_object_store_works_in_a_hub_domain_from_a_leaf_node() {
    let (hub, _leaf, in_hub) = hub_and_leaf(ServerVersion::Current);
    // Chunks and meta are published through $JS.hub.API.$O....; reads go through the hub's API.
    let store = in_hub.create_object_store(&ObjectStoreConfig::new("remote")).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let info = store.put_bytes("report.bin", &data).unwrap();
    assert_eq!(info.chunks, 3);
    assert_eq!(store.get_bytes("report.bin").unwrap(), data);
    let renamed = ObjectMeta { name: "renamed.bin".into(), ..ObjectMeta::default() };
    store.update_meta("report.bin", renamed).unwrap();
    store.delete("renamed.bin").unwrap();
    store.put_bytes("kept.txt", b"kept").unwrap();
    let hub_js = Context::new(nats_blocking::connect(&hub.url()).unwrap());
    let names: Vec<String> =
        hub_js.object_store("remote").unwrap().list().unwrap().into_iter().map(|i| i.meta.name).collect();
    assert_eq!(names, ["kept.txt"], "the hub holds what the leaf wrote");
}

#[test]
fn ordered_consumer_and_watch_recover_after_a_server_restart() {
    let mut server = js_server(ServerVersion::Current);
    let js = context(&server);
    stream(&js, "DURABLE", "durable.>", StorageType::File);
    for i in 1..=20 {
        js.publish("durable.x", format!("{i}")).unwrap();
    }
    let kv = js.create_key_value(&KvConfig::new("survivor")).unwrap();
    kv.put("k", "before").unwrap();
    let mut watch = kv.watch("k").unwrap();
    assert!(matches!(watch.next().unwrap().unwrap(), Watched::Entry(e) if &e.value[..] == b"before"));
    assert_eq!(watch.next().unwrap().unwrap(), Watched::InitialDone);

    let mut ordered = js.ordered("DURABLE", OrderedConfig::default()).unwrap();
    let mut got = Vec::new();
    let number = |m: nats_jetstream::blocking::JsMessage<nats_blocking::Client>| {
        String::from_utf8(m.payload().to_vec()).unwrap().parse::<u32>().unwrap()
    };
    while got.len() < 10 {
        got.push(number(ordered.next().unwrap().unwrap()));
    }
    // The ephemeral consumers live in memory: a restart loses them, and the chain must start over where it was.
    server.restart();
    let started = Instant::now();
    let mut i = 21;
    while i <= 30 {
        assert!(started.elapsed() < Duration::from_secs(30), "publishing after the restart");
        if js.publish("durable.x", format!("{i}")).is_ok() {
            i += 1;
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    while got.len() < 30 {
        assert!(started.elapsed() < Duration::from_secs(60), "ordered consumer stuck at {got:?}");
        got.push(number(ordered.next().unwrap().unwrap()));
    }
    assert_eq!(got, (1..=30).collect::<Vec<u32>>(), "no gap, no duplicate across the restart");

    kv.put("k", "after").unwrap();
    loop {
        assert!(started.elapsed() < Duration::from_secs(60), "watch stuck after the restart");
        if let Watched::Entry(e) = watch.next().unwrap().unwrap() {
            if &e.value[..] == b"after" {
                break;
            }
        }
    }
}

#[test]
fn consumer_infos_and_bucket_updates() {
    for version in BOTH {
        let server = js_server(version);
        let js = context(&server);
        stream(&js, "LIST", "list.>", StorageType::Memory);
        for name in ["a", "b", "c"] {
            js.create_consumer("LIST", &ConsumerConfig::named(name)).unwrap();
        }
        let mut names: Vec<String> = js.consumers("LIST").unwrap().into_iter().map(|c| c.name).collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c"], "{version:?}");

        let kv = js.create_key_value(&KvConfig::new("grow")).unwrap();
        assert_eq!(kv.status().unwrap().history, 1, "{version:?}");
        let mut config = KvConfig::new("grow");
        config.history = 5;
        let kv = js.update_key_value(&config).unwrap();
        assert_eq!(kv.status().unwrap().history, 5, "{version:?}");
    }
}

#[test]
fn consume_pulls_afresh_on_reconnect_without_waiting_for_heartbeats() {
    let mut server = js_server(ServerVersion::Current);
    let js = context(&server);
    stream(&js, "PROMPT", "prompt.>", StorageType::File);
    js.create_consumer("PROMPT", &ConsumerConfig::named("c")).unwrap();
    js.publish("prompt.x", "before").unwrap();
    // Defaults: 30 s pulls with 15 s heartbeats, so heartbeats alone would notice the loss after 30 s.
    let mut messages = js.pull_consumer("PROMPT", "c").messages(ConsumeConfig::default()).unwrap();
    messages.next().unwrap().unwrap().double_ack(Duration::from_secs(5)).unwrap();
    server.restart();
    let restarted = Instant::now();
    while js.publish("prompt.x", "after").is_err() {
        assert!(restarted.elapsed() < Duration::from_secs(20), "publishing after the restart");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A server killed before it wrote the ack down sends "before" again (at least once); skip it.
    let mut msg = messages.next().unwrap().unwrap();
    if msg.payload() == b"before" {
        msg = messages.next().unwrap().unwrap();
    }
    assert_eq!(msg.payload(), b"after");
    assert!(
        restarted.elapsed() < Duration::from_secs(15),
        "took {:?}: the reconnect did not re-pull",
        restarted.elapsed()
    );
}
