//! Priority groups in pulls (ADR-42) against a real `nats-server -js` 2.15 (2.9 has none): the pinned client
//! keeps the messages until it is unpinned, a pull with a stale pin gets `423` and competes afresh, overflow
//! pulls are served only past their thresholds, and what the server would refuse is refused before sending.

// Tests read the clock and sleep; the crate's clippy.toml forbids both in the sans-IO core only.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use nats_jetstream::error::JetStreamError;
use nats_jetstream::model::{ConsumerConfig, PriorityPolicy, StorageType, StreamConfig};
use nats_jetstream::pull::{ConsumeConfig, FetchConfig, PriorityGroup};
use nats_server_harness::{NatsServer, ServerVersion};

fn js_server() -> NatsServer {
    NatsServer::builder().version(ServerVersion::Current).jetstream(true).start().expect("start nats-server -js")
}

fn stream(name: &str, subject: &str) -> StreamConfig {
    StreamConfig { subjects: vec![subject.into()], storage: StorageType::Memory, ..StreamConfig::new(name) }
}

fn grouped(name: &str, policy: PriorityPolicy) -> ConsumerConfig {
    ConsumerConfig {
        priority_groups: vec!["jobs".into()],
        priority_policy: policy,
        priority_timeout: Duration::from_secs(30),
        ..ConsumerConfig::named(name)
    }
}

fn fetch(batch: u64, group: PriorityGroup) -> FetchConfig {
    FetchConfig::batch(batch).with_expires(Duration::from_millis(500)).with_priority_group(group)
}

mod blocking {
    use super::*;
    use nats_jetstream::blocking::Context;

    fn connect(server: &NatsServer) -> Context<nats_blocking::Client> {
        Context::new(nats_blocking::connect(&server.url()).expect("connect"))
    }

    fn payloads(messages: Vec<nats_jetstream::blocking::JsMessage<nats_blocking::Client>>) -> Vec<String> {
        messages
            .into_iter()
            .map(|mut m| {
                m.ack().expect("ack");
                String::from_utf8(m.payload().to_vec()).expect("utf-8")
            })
            .collect()
    }

    #[test]
    fn the_pinned_client_keeps_the_messages_until_it_is_unpinned() {
        let server = js_server();
        let js = connect(&server);
        js.create_stream(&stream("PIN", "pin.>")).expect("stream");
        js.create_consumer("PIN", &grouped("worker", PriorityPolicy::PinnedClient)).expect("consumer");
        for i in 0..30 {
            js.publish("pin.x", format!("{i}")).expect("publish");
        }
        let a = js.pull_consumer("PIN", "worker");
        let b = js.pull_consumer("PIN", "worker");
        let first = payloads(a.fetch(fetch(10, PriorityGroup::new("jobs"))).expect("a is pinned"));
        assert_eq!(first, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
        let pin = a.pin_id().expect("the server pinned a");
        let info = a.info().expect("info");
        assert_eq!(info.priority_groups.first().map(|g| g.pinned_client_id.as_str()), Some(pin.as_str()));

        // b holds no pin: the server keeps the messages for a.
        let other = b.fetch(fetch(10, PriorityGroup::new("jobs")));
        assert!(other.as_ref().map_or(true, Vec::is_empty), "b got {:?}", other.map(payloads));
        assert_eq!(b.pin_id(), None);
        let second = payloads(a.fetch(fetch(10, PriorityGroup::new("jobs"))).expect("still a's"));
        assert_eq!(second.first().map(String::as_str), Some("10"));
        assert_eq!(a.pin_id().as_deref(), Some(pin.as_str()), "the same pin");

        // Unpinned: the next pull of the group takes the pin, and a's old pin is refused with 423.
        js.unpin_consumer("PIN", "worker", "jobs").expect("unpin");
        let third = payloads(b.fetch(fetch(5, PriorityGroup::new("jobs"))).expect("b is pinned now"));
        assert_eq!(third.first().map(String::as_str), Some("20"));
        let b_pin = b.pin_id().expect("b holds a pin");
        assert_ne!(b_pin, pin);
        let refused = a.fetch(fetch(5, PriorityGroup::new("jobs"))).expect_err("a's pin is stale");
        assert!(matches!(refused.jetstream(), Some(JetStreamError::Status { code: 423, .. })), "{refused:?}");
        assert_eq!(a.pin_id(), None, "a stale pin is forgotten");
    }

    #[test]
    fn a_consume_takes_the_pin_and_the_stream_flows_to_it() {
        let server = js_server();
        let js = connect(&server);
        js.create_stream(&stream("PC", "pc.>")).expect("stream");
        js.create_consumer("PC", &grouped("c", PriorityPolicy::PinnedClient)).expect("consumer");
        for i in 0..20 {
            js.publish("pc.x", format!("{i}")).expect("publish");
        }
        let config = ConsumeConfig {
            max_messages: Some(8),
            priority_group: Some(PriorityGroup::new("jobs")),
            ..ConsumeConfig::default()
        };
        let handle = js.pull_consumer("PC", "c");
        let mut messages = handle.messages(config).expect("consume");
        for i in 0..20 {
            let mut msg = messages.next().expect("goes on").expect("message");
            assert_eq!(msg.payload(), i.to_string().as_bytes());
            msg.ack().expect("ack");
        }
        let pin = messages.pin_id().map(str::to_owned);
        assert!(pin.is_some(), "pinned");
        drop(messages);
        assert_eq!(handle.pin_id(), pin, "the handle keeps the consume's pin for its next fetch");
        let next = handle.fetch(fetch(1, PriorityGroup::new("jobs"))).expect("still pinned");
        assert!(next.is_empty(), "nothing left, and no 423");
    }

    #[test]
    fn overflow_pulls_are_served_only_past_their_threshold() {
        let server = js_server();
        let js = connect(&server);
        js.create_stream(&stream("OV", "ov.>")).expect("stream");
        js.create_consumer("OV", &grouped("o", PriorityPolicy::Overflow)).expect("consumer");
        for i in 0..10 {
            js.publish("ov.x", format!("{i}")).expect("publish");
        }
        let handle = js.pull_consumer("OV", "o");
        let held = handle.fetch(fetch(5, PriorityGroup::new("jobs").min_pending(100)));
        assert!(held.as_ref().map_or(true, Vec::is_empty), "10 pending is under 100: {:?}", held.map(payloads));
        let served = payloads(handle.fetch(fetch(5, PriorityGroup::new("jobs").min_pending(5))).expect("served"));
        assert_eq!(served, ["0", "1", "2", "3", "4"]);
        let plain = payloads(handle.fetch(fetch(5, PriorityGroup::new("jobs"))).expect("no threshold"));
        assert_eq!(plain.len(), 5);
    }

    #[test]
    fn what_the_server_would_refuse_is_refused() {
        let server = js_server();
        let js = connect(&server);
        js.create_stream(&stream("RF", "rf.>")).expect("stream");
        js.create_consumer("RF", &grouped("r", PriorityPolicy::Overflow)).expect("consumer");
        js.publish("rf.x", "1").expect("publish");
        let handle = js.pull_consumer("RF", "r");
        // A pull without the group: the server's 400.
        let no_group = handle.fetch(FetchConfig::batch(1).with_expires(Duration::from_millis(500)));
        let error = no_group.expect_err("the consumer wants its group");
        assert!(matches!(error.jetstream(), Some(JetStreamError::Status { code: 400, .. })), "{error:?}");
        // Refused before anything is sent.
        for bad in [PriorityGroup::new(""), PriorityGroup::new("has space"), PriorityGroup::new("x".repeat(17))] {
            let error = handle.fetch(fetch(1, bad.clone())).expect_err("a bad group");
            assert!(matches!(error.jetstream(), Some(JetStreamError::InvalidConfig { .. })), "{bad:?}: {error:?}");
        }
        let error = handle.fetch(fetch(1, PriorityGroup::new("jobs").priority(10))).expect_err("priority 10");
        assert!(matches!(error.jetstream(), Some(JetStreamError::InvalidConfig { .. })), "{error:?}");
        let error = js.unpin_consumer("RF", "r", "a.b").expect_err("a bad group");
        assert!(matches!(error.jetstream(), Some(JetStreamError::InvalidConfig { .. })), "{error:?}");
        // The message is still there for a proper pull.
        assert_eq!(handle.fetch(fetch(1, PriorityGroup::new("jobs"))).expect("fetch").len(), 1);
    }
}

mod asynch {
    use super::*;
    use nats_jetstream::asynch::AsyncContext;

    #[tokio::test]
    async fn pinning_and_unpinning_on_the_async_binding() {
        let server = js_server();
        let js = AsyncContext::new(nats_tokio::connect(&server.url()).await.expect("connect"));
        js.create_stream(&stream("APIN", "apin.>")).await.expect("stream");
        js.create_consumer("APIN", &grouped("w", PriorityPolicy::PinnedClient)).await.expect("consumer");
        for i in 0..20 {
            js.publish("apin.x", format!("{i}")).await.expect("publish");
        }
        let a = js.pull_consumer("APIN", "w");
        let b = js.pull_consumer("APIN", "w");
        assert_eq!(a.fetch(fetch(5, PriorityGroup::new("jobs"))).await.expect("a pinned").len(), 5);
        let pin = a.pin_id().expect("a holds the pin");
        assert!(b.fetch(fetch(5, PriorityGroup::new("jobs"))).await.map_or(true, |m| m.is_empty()));
        js.unpin_consumer("APIN", "w", "jobs").await.expect("unpin");
        let got = b.fetch(fetch(5, PriorityGroup::new("jobs"))).await.expect("b pinned");
        assert_eq!(got.first().map(|m| m.payload().to_vec()), Some(b"5".to_vec()), "the next five");
        assert_ne!(b.pin_id().expect("b holds a pin"), pin);
        let error = a.fetch(fetch(5, PriorityGroup::new("jobs"))).await.expect_err("stale pin");
        assert!(matches!(error.jetstream(), Some(JetStreamError::Status { code: 423, .. })), "{error:?}");
        assert_eq!(a.pin_id(), None);
    }
}
