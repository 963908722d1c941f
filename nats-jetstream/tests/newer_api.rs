//! The newer JetStream API sent to a real server (the current one, 2.15: these need 2.10 or 2.11): stream
//! sources and mirrors with subject transforms, per-message TTL (`Nats-TTL`), and pausing and resuming a
//! consumer; on both bindings.

// Tests read the clock and sleep; the crate's clippy.toml forbids both in the sans-IO core only.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant, SystemTime};

use nats_jetstream::call::PublishOptions;
use nats_jetstream::model::{ConsumerConfig, StorageType, StreamConfig, StreamSource, SubjectTransform};
use nats_jetstream::pull::FetchConfig;
use nats_server_harness::NatsServer;

fn js_server() -> NatsServer {
    NatsServer::builder().jetstream(true).start().expect("start nats-server with JetStream")
}

fn memory(name: &str, subjects: &[&str]) -> StreamConfig {
    StreamConfig {
        subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
        storage: StorageType::Memory,
        ..StreamConfig::new(name)
    }
}

fn transformed(stream: &str) -> StreamSource {
    StreamSource {
        name: stream.into(),
        subject_transforms: vec![SubjectTransform { src: "orders.>".into(), dest: "copied.>".into() }],
        ..StreamSource::default()
    }
}

/// Waits (bounded) until `check` holds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(100));
    }
}

mod blocking {
    use super::*;
    use nats_jetstream::blocking::Context;

    #[test]
    fn sources_and_mirrors_transform_subjects() {
        let server = js_server();
        let js = Context::new(nats_blocking::connect(&server.url()).expect("connect"));
        js.create_stream(&memory("ORDERS", &["orders.>"])).expect("origin");
        let sourced = StreamConfig { sources: vec![transformed("ORDERS")], ..memory("SOURCED", &[]) };
        js.create_stream(&sourced).expect("sourced stream");
        let mirror = StreamConfig { mirror: Some(transformed("ORDERS")), ..memory("MIRROR", &[]) };
        js.create_stream(&mirror).expect("mirror");
        js.publish("orders.new", "42").expect("publish");
        for stream in ["SOURCED", "MIRROR"] {
            eventually(stream, || js.stream_info(stream).is_ok_and(|i| i.state.messages == 1));
            let msg = js.get_message(stream, 1).expect("the copied message");
            assert_eq!((msg.subject.as_str(), &msg.data[..]), ("copied.new", &b"42"[..]), "{stream}");
        }
    }

    #[test]
    fn a_message_with_a_ttl_goes_away_on_its_own() {
        let server = js_server();
        let js = Context::new(nats_blocking::connect(&server.url()).expect("connect"));
        let config = StreamConfig { allow_msg_ttl: true, ..memory("TTL", &["ttl.>"]) };
        js.create_stream(&config).expect("stream");
        let short = js.publish_with("ttl.a", "brief", &PublishOptions::new().ttl(Duration::from_secs(1))).expect("ttl");
        let kept = js.publish("ttl.b", "kept").expect("publish");
        eventually("the expiry", || js.get_message("TTL", short.seq).is_err());
        assert_eq!(&js.get_message("TTL", kept.seq).expect("still there").data[..], b"kept");
        // A stream without `allow_msg_ttl` refuses such a message.
        js.create_stream(&memory("NOTTL", &["nottl.>"])).expect("stream");
        let refused = js.publish_with("nottl.a", "x", &PublishOptions::new().ttl(Duration::from_secs(1)));
        assert!(refused.is_err(), "{refused:?}");
    }

    #[test]
    fn a_paused_consumer_delivers_nothing_until_resumed() {
        let server = js_server();
        let js = Context::new(nats_blocking::connect(&server.url()).expect("connect"));
        js.create_stream(&memory("PAUSE", &["pause.>"])).expect("stream");
        js.create_consumer("PAUSE", &ConsumerConfig { durable_name: "c".into(), ..ConsumerConfig::named("c") })
            .expect("consumer");
        for i in 0..3 {
            js.publish("pause.x", format!("{i}")).expect("publish");
        }
        let until = SystemTime::now() + Duration::from_secs(120);
        let paused = js.pause_consumer("PAUSE", "c", until).expect("pause");
        assert!(paused.paused && paused.pause_until.is_some(), "{paused:?}");
        assert!(js.consumer_info("PAUSE", "c").expect("info").paused);
        let consumer = js.pull_consumer("PAUSE", "c");
        let fetch = || consumer.fetch(FetchConfig::batch(3).with_expires(Duration::from_millis(1500)));
        assert!(fetch().expect("fetch while paused").is_empty(), "nothing while paused");
        let resumed = js.resume_consumer("PAUSE", "c").expect("resume");
        assert!(!resumed.paused);
        assert_eq!(fetch().expect("fetch after resume").len(), 3);
    }
}

mod asynch {
    use super::*;
    use nats_jetstream::asynch::AsyncContext;

    #[tokio::test]
    async fn pause_resume_and_ttl_on_the_async_binding() {
        let server = js_server();
        let js = AsyncContext::new(nats_tokio::connect(&server.url()).await.expect("connect"));
        let config = StreamConfig { allow_msg_ttl: true, ..memory("APAUSE", &["apause.>"]) };
        js.create_stream(&config).await.expect("stream");
        js.create_consumer("APAUSE", &ConsumerConfig { durable_name: "c".into(), ..ConsumerConfig::named("c") })
            .await
            .expect("consumer");
        let until = SystemTime::now() + Duration::from_secs(120);
        assert!(js.pause_consumer("APAUSE", "c", until).await.expect("pause").paused);
        assert!(js.consumer_info("APAUSE", "c").await.expect("info").paused);
        assert!(!js.resume_consumer("APAUSE", "c").await.expect("resume").paused);
        let options = PublishOptions::new().ttl(Duration::from_secs(1));
        let ack = js.publish_with("apause.x", "brief", &options).await.expect("publish with ttl");
        let deadline = Instant::now() + Duration::from_secs(15);
        while js.get_message("APAUSE", ack.seq).await.is_ok() {
            assert!(Instant::now() < deadline, "the message outlived its TTL");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
