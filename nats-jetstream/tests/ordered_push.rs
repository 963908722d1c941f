//! The ordered consumer's push form against a real `nats-server -js`, on both bindings and both servers (2.15
//! and 2.9): every message once and in order across a deleted consumer and a server restart, a large backlog
//! kept flowing by answered flow control, and a filter.

// Tests read the clock and sleep; the crate's clippy.toml forbids both in the sans-IO core only.
#![allow(clippy::disallowed_methods)]

#[macro_use]
mod versions;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nats_jetstream::error::JetStreamError;
use nats_jetstream::model::{StorageType, StreamConfig};
use nats_jetstream::ordered::OrderedConfig;
use nats_server_harness::{NatsServer, ServerVersion};

const BOUND: Duration = Duration::from_secs(30);

fn js_server(version: ServerVersion) -> NatsServer {
    NatsServer::builder().version(version).jetstream(true).start().expect("start nats-server with JetStream")
}

fn stream(name: &str, subject: &str, storage: StorageType) -> StreamConfig {
    StreamConfig { subjects: vec![subject.into()], storage, ..StreamConfig::new(name) }
}

/// Quick heartbeats, so that a silent chain resets within a test's patience.
fn quick() -> OrderedConfig {
    OrderedConfig { idle_heartbeat: Some(Duration::from_millis(250)), ..OrderedConfig::default() }
}

fn number(payload: &[u8]) -> u32 {
    std::str::from_utf8(payload).expect("utf-8").parse().expect("a number")
}

mod blocking {
    use super::*;
    use nats_jetstream::blocking::Context;

    fn connect(server: &NatsServer) -> Context<nats_blocking::Client> {
        Context::new(nats_blocking::connect(&server.url()).expect("connect"))
    }

    fn survives_its_consumer_being_deleted(version: ServerVersion) {
        let server = js_server(version);
        let js = connect(&server);
        js.create_stream(&stream("OP", "op.>", StorageType::Memory)).expect("stream");
        for i in 1..=30 {
            js.publish(if i % 3 == 0 { "op.other" } else { "op.x" }, format!("{i}")).expect("publish");
        }
        // A heartbeat the pull form cannot use (over half its pulls' expiry) is refused at once there.
        let slow = OrderedConfig { idle_heartbeat: Some(Duration::from_secs(60)), ..OrderedConfig::default() };
        let refused = js.ordered("OP", slow.clone()).expect_err("the pull form refuses it");
        assert!(matches!(refused.jetstream(), Some(JetStreamError::InvalidConfig { .. })), "{refused:?}");
        assert!(js.ordered_push("OP", slow).is_ok(), "the push form takes it");
        let config = OrderedConfig { filter_subjects: vec!["op.x".into()], ..quick() };
        let mut ordered = js.ordered_push("OP", config).expect("ordered push");
        let wanted: Vec<u32> = (1..=45).filter(|i| i % 3 != 0).collect();
        let mut got = Vec::new();
        let started = Instant::now();
        while got.len() < wanted.len() {
            assert!(started.elapsed() < BOUND, "{version:?}: stuck at {got:?}");
            let msg = ordered.next().expect("never ends").expect("message");
            assert!(msg.metadata().is_ok(), "a stream message with its metadata");
            got.push(number(msg.payload()));
            if got.len() == 5 {
                // Pull the rug: delete every consumer of the stream, then publish more.
                for name in js.consumer_names("OP").expect("names") {
                    js.delete_consumer("OP", &name).expect("delete");
                }
                for i in 31..=45 {
                    js.publish(if i % 3 == 0 { "op.other" } else { "op.x" }, format!("{i}")).expect("publish");
                }
            }
        }
        assert_eq!(got, wanted, "{version:?}: no gap, no duplicate, only the filter's subject");
        assert!(ordered.state().resets() >= 1, "{version:?}: the chain moved to a new consumer");
        assert_eq!(ordered.state().tracker().last_stream_sequence(), 44);
        // The old consumer is gone; at most the current one remains.
        assert!(js.consumer_names("OP").expect("names").len() <= 1);
    }

    fn flow_control_keeps_a_large_backlog_flowing(version: ServerVersion) {
        let server = js_server(version);
        let js = connect(&server);
        js.create_stream(&stream("OF", "of.>", StorageType::Memory)).expect("stream");
        let mut window = js.publish_window(256);
        for i in 0..4000u32 {
            let mut payload = vec![b'x'; 4096];
            payload[..4].copy_from_slice(&i.to_be_bytes());
            if let Some(ack) = window.publish("of.x", payload).expect("publish") {
                ack.expect("stored");
            }
        }
        window.wait_all().into_iter().for_each(|ack| drop(ack.expect("stored")));
        let mut ordered = js.ordered_push("OF", OrderedConfig::default()).expect("ordered push");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut next = 0u32;
            while next < 4000 {
                let Some(Ok(msg)) = ordered.next() else { break };
                let seq = u32::from_be_bytes(msg.payload()[..4].try_into().expect("4 bytes"));
                if seq != next {
                    break;
                }
                next += 1;
            }
            let _ = tx.send((next, ordered.state().flow_control_answered()));
        });
        // Unanswered flow control stalls the consumer far short of 16 MB.
        let (count, answered) = rx.recv_timeout(BOUND).expect("the backlog flowed");
        assert_eq!(count, 4000, "{version:?}: every message, in order");
        assert!(answered > 0, "{version:?}: the server asked for flow control, and was answered");
    }

    fn starts_over_where_it_was_after_a_server_restart(version: ServerVersion) {
        let mut server = js_server(version);
        let js = connect(&server);
        js.create_stream(&stream("OR", "or.>", StorageType::File)).expect("stream");
        for i in 1..=20 {
            js.publish("or.x", format!("{i}")).expect("publish");
        }
        let mut ordered = js.ordered_push("OR", quick()).expect("ordered push");
        let mut got = Vec::new();
        while got.len() < 10 {
            got.push(number(ordered.next().expect("never ends").expect("message").payload()));
        }
        // The chain's consumers live in memory: a restart loses them.
        server.restart();
        let started = Instant::now();
        let mut i = 21;
        while i <= 30 {
            assert!(started.elapsed() < BOUND, "{version:?}: publishing after the restart");
            if js.publish("or.x", format!("{i}")).is_ok() {
                i += 1;
            } else {
                thread::sleep(Duration::from_millis(100));
            }
        }
        while got.len() < 30 {
            assert!(started.elapsed() < BOUND * 2, "{version:?}: stuck at {got:?}");
            match ordered.next().expect("never ends") {
                Ok(msg) => got.push(number(msg.payload())),
                // The connection's own errors while it is down are the user's to see; the chain goes on.
                Err(e) => assert!(e.jetstream().is_none(), "{version:?}: {e}"),
            }
        }
        assert_eq!(got, (1..=30).collect::<Vec<u32>>(), "{version:?}: no gap, no duplicate across the restart");
        assert!(ordered.state().resets() >= 1);
    }

    on_both_servers!(
        survives_its_consumer_being_deleted,
        flow_control_keeps_a_large_backlog_flowing,
        starts_over_where_it_was_after_a_server_restart
    );
}

mod asynch {
    use super::*;
    use nats_jetstream::asynch::AsyncContext;

    async fn in_order_across_a_deletion_with_a_backlog(version: ServerVersion) {
        let server = js_server(version);
        let js = AsyncContext::new(nats_tokio::connect(&server.url()).await.expect("connect"));
        js.create_stream(&stream("AO", "ao.>", StorageType::Memory)).await.expect("stream");
        let payload = |i: u32| {
            let mut p = vec![b'y'; 4096];
            p[..4].copy_from_slice(&i.to_be_bytes());
            p
        };
        for i in 0..3000 {
            js.publish("ao.x", payload(i)).await.expect("publish");
        }
        let mut ordered = js.ordered_push("AO", quick()).expect("ordered push");
        let all = async {
            let mut next = 0u32;
            while next < 3500 {
                let msg = ordered.next().await.expect("never ends").expect("message");
                assert_eq!(u32::from_be_bytes(msg.payload()[..4].try_into().unwrap()), next, "in order, once");
                next += 1;
                if next == 1000 {
                    for name in js.consumer_names("AO").await.expect("names") {
                        js.delete_consumer("AO", &name).await.expect("delete");
                    }
                    for i in 3000..3500 {
                        js.publish("ao.x", payload(i)).await.expect("publish");
                    }
                }
            }
        };
        tokio::time::timeout(BOUND, all).await.expect("every message came (flow control answered)");
        assert!(ordered.state().resets() >= 1, "{version:?}: the chain moved to a new consumer");
        assert!(ordered.state().flow_control_answered() > 0, "{version:?}");
        assert_eq!(ordered.state().tracker().last_stream_sequence(), 3500);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn current_in_order_across_a_deletion_with_a_backlog() {
        in_order_across_a_deletion_with_a_backlog(ServerVersion::Current).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn old_in_order_across_a_deletion_with_a_backlog() {
        in_order_across_a_deletion_with_a_backlog(ServerVersion::Old).await;
    }
}
