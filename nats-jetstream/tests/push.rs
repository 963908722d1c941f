//! Push consumers against a real `nats-server -js`, on both bindings and both servers (2.15 and 2.9): durable
//! and ephemeral, a deliver group shared by two subscribers, flow control answered under load, and missed
//! heartbeats reported when the consumer is deleted.

// Tests read the clock and sleep; the crate's clippy.toml forbids both in the sans-IO core only.
#![allow(clippy::disallowed_methods)]

#[macro_use]
mod versions;

use std::collections::HashSet;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nats_jetstream::error::JetStreamError;
use nats_jetstream::model::{AckPolicy, ConsumerConfig, StorageType, StreamConfig};
use nats_server_harness::{NatsServer, ServerVersion};

const BOUND: Duration = Duration::from_secs(20);

fn js_server(version: ServerVersion) -> NatsServer {
    NatsServer::builder().version(version).jetstream(true).start().expect("start nats-server with JetStream")
}

fn stream(name: &str, subject: &str) -> StreamConfig {
    StreamConfig { subjects: vec![subject.into()], storage: StorageType::Memory, ..StreamConfig::new(name) }
}

fn push_config(durable: Option<&str>) -> ConsumerConfig {
    let mut config = match durable {
        Some(name) => ConsumerConfig { durable_name: name.into(), ..ConsumerConfig::named(name) },
        None => ConsumerConfig::default(),
    };
    config.idle_heartbeat = Duration::from_millis(250);
    config.flow_control = true;
    config
}

mod blocking {
    use super::*;
    use nats_jetstream::blocking::Context;

    fn connect(server: &NatsServer) -> Context<nats_blocking::Client> {
        Context::new(nats_blocking::connect(&server.url()).expect("connect"))
    }

    fn durable_and_ephemeral_deliver_in_order_with_acks(version: ServerVersion) {
        let server = js_server(version);
        let js = connect(&server);
        js.create_stream(&stream("P", "p.>")).expect("stream");
        for i in 0..20 {
            js.publish("p.x", format!("{i}")).expect("publish");
        }
        let mut messages = js.push_consumer("P", push_config(Some("pusher"))).expect("push consumer");
        assert_eq!(messages.consumer(), "pusher");
        for i in 0..20 {
            let mut msg = messages.next().expect("goes on").expect("message");
            assert_eq!(msg.payload(), format!("{i}").as_bytes());
            msg.ack().expect("ack");
        }
        js.publish("p.x", "later").expect("publish");
        assert_eq!(messages.next().expect("goes on").expect("message").payload(), b"later");
        let info = js.consumer_info("P", "pusher").expect("info");
        assert!(!info.config.deliver_subject.is_empty(), "a push consumer");
        // Ephemeral, with no acks: everything from the start.
        let config = ConsumerConfig { ack_policy: AckPolicy::None, ..push_config(None) };
        let mut ephemeral = js.push_consumer("P", config).expect("ephemeral");
        let got: Vec<_> = (0..21).map(|_| ephemeral.next().expect("goes on").expect("message")).collect();
        assert_eq!(got.last().unwrap().payload(), b"later");
    }

    fn a_deliver_group_shares_the_messages(version: ServerVersion) {
        let server = js_server(version);
        let js = connect(&server);
        js.create_stream(&stream("Q", "q.>")).expect("stream");
        let config = ConsumerConfig {
            deliver_subject: "deliver.workers".into(),
            deliver_group: "workers".into(),
            ..push_config(Some("workers"))
        };
        let (tx, rx) = mpsc::channel();
        let mut workers = Vec::new();
        for w in 0..2 {
            let messages = js.push_consumer("Q", config.clone()).expect("push consumer");
            let tx = tx.clone();
            workers.push(thread::spawn(move || {
                for item in messages {
                    let Ok(mut msg) = item else { continue };
                    msg.ack().expect("ack");
                    if tx.send((w, String::from_utf8_lossy(msg.payload()).into_owned())).is_err() {
                        return;
                    }
                }
            }));
        }
        for i in 0..200 {
            js.publish("q.x", format!("{i}")).expect("publish");
        }
        let mut seen = HashSet::new();
        let mut by = [0, 0];
        while seen.len() < 200 {
            let (w, payload) = rx.recv_timeout(BOUND).expect("every message comes");
            assert!(seen.insert(payload.clone()), "{payload} delivered twice");
            by[w] += 1;
        }
        assert!(by[0] > 0 && by[1] > 0, "both members of the group got messages: {by:?}");
        drop(rx);
    }

    fn flow_control_keeps_a_large_backlog_flowing(version: ServerVersion) {
        let server = js_server(version);
        let js = connect(&server);
        js.create_stream(&stream("F", "f.>")).expect("stream");
        let payload = vec![b'x'; 4096];
        let mut window = js.publish_window(256);
        for _ in 0..4000 {
            if let Some(ack) = window.publish("f.x", payload.clone()).expect("publish") {
                ack.expect("stored");
            }
        }
        window.wait_all().into_iter().for_each(|ack| drop(ack.expect("stored")));
        let config = ConsumerConfig { ack_policy: AckPolicy::None, ..push_config(None) };
        let mut messages = js.push_consumer("F", config).expect("push consumer");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut count = 0;
            while count < 4000 {
                match messages.next() {
                    Some(Ok(_)) => count += 1,
                    Some(Err(_)) => {}
                    None => break,
                }
            }
            let _ = tx.send((count, messages.flow_control_answered()));
        });
        // Unanswered flow control stalls the consumer far short of 16 MB.
        let (count, answered) = rx.recv_timeout(BOUND).expect("the backlog flowed");
        assert_eq!(count, 4000);
        assert!(answered > 0, "the server asked for flow control, and was answered");
    }

    fn a_deleted_consumer_is_reported_as_missed_heartbeats(version: ServerVersion) {
        let server = js_server(version);
        let js = connect(&server);
        js.create_stream(&stream("H", "h.>")).expect("stream");
        let mut messages = js.push_consumer("H", push_config(Some("beating"))).expect("push consumer");
        js.delete_consumer("H", "beating").expect("delete");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let first = messages.next();
            let _ = tx.send((first.map(|r| r.map(drop)), messages.missed_heartbeats()));
        });
        let (first, missed) = rx.recv_timeout(BOUND).expect("the silence is reported");
        assert!(
            matches!(first, Some(Err(ref e)) if e.jetstream() == Some(&JetStreamError::MissedHeartbeats)),
            "{first:?}"
        );
        assert_eq!(missed, 1);
    }

    on_both_servers!(
        durable_and_ephemeral_deliver_in_order_with_acks,
        a_deliver_group_shares_the_messages,
        flow_control_keeps_a_large_backlog_flowing,
        a_deleted_consumer_is_reported_as_missed_heartbeats
    );
}

mod asynch {
    use super::*;
    use nats_jetstream::asynch::AsyncContext;

    async fn delivers_answers_flow_control_and_reports_silence(version: ServerVersion) {
        let server = js_server(version);
        let js = AsyncContext::new(nats_tokio::connect(&server.url()).await.expect("connect"));
        js.create_stream(&stream("AP", "ap.>")).await.expect("stream");
        let payload = vec![b'y'; 4096];
        for _ in 0..3000 {
            js.publish("ap.x", payload.clone()).await.expect("publish");
        }
        let mut messages = js.push_consumer("AP", push_config(Some("apush"))).await.expect("push consumer");
        let all = async {
            for _ in 0..3000 {
                let mut msg = messages.next().await.expect("goes on").expect("message");
                assert_eq!(msg.payload().len(), 4096);
                msg.ack().await.expect("ack");
            }
        };
        tokio::time::timeout(BOUND, all).await.expect("the backlog flowed (flow control answered)");
        assert!(messages.flow_control_answered() > 0);
        js.delete_consumer("AP", "apush").await.expect("delete");
        let first = tokio::time::timeout(BOUND, messages.next()).await.expect("the silence is reported");
        assert!(
            matches!(first, Some(Err(ref e)) if e.jetstream() == Some(&JetStreamError::MissedHeartbeats)),
            "{:?}",
            first.map(|r| r.map(drop))
        );
        assert_eq!(messages.missed_heartbeats(), 1);
    }

    #[tokio::test]
    async fn current_delivers_answers_flow_control_and_reports_silence() {
        delivers_answers_flow_control_and_reports_silence(ServerVersion::Current).await;
    }

    #[tokio::test]
    async fn old_delivers_answers_flow_control_and_reports_silence() {
        delivers_answers_flow_control_and_reports_silence(ServerVersion::Old).await;
    }
}
