//! Direct-get batches (ADR-31) against a real `nats-server -js`: pages of a stream from a sequence, on one
//! subject, the last message of several subjects now and as of an earlier sequence, an empty range, a stream
//! without direct get; on 2.9, which has no batches, a clear answer instead of a hang.

// Tests read the clock; the crate's clippy.toml forbids that in the sans-IO core only.
#![allow(clippy::disallowed_methods)]

use nats_jetstream::error::JetStreamError;
use nats_jetstream::model::{MsgGetRequest, StorageType, StreamConfig};
use nats_server_harness::{NatsServer, ServerVersion};

fn js_server(version: ServerVersion) -> NatsServer {
    NatsServer::builder().version(version).jetstream(true).start().expect("start nats-server with JetStream")
}

fn stream(name: &str, subject: &str, allow_direct: bool) -> StreamConfig {
    StreamConfig {
        subjects: vec![subject.into()],
        storage: StorageType::Memory,
        allow_direct,
        ..StreamConfig::new(name)
    }
}

fn payloads(batch: &nats_jetstream::direct::DirectBatch) -> Vec<String> {
    batch.messages.iter().map(|m| String::from_utf8(m.payload.to_vec()).expect("utf-8")).collect()
}

mod blocking {
    use super::*;
    use nats_jetstream::blocking::Context;

    fn filled(server: &NatsServer) -> Context<nats_blocking::Client> {
        let js = Context::new(nats_blocking::connect(&server.url()).expect("connect"));
        js.create_stream(&stream("D", "d.>", true)).expect("stream");
        // Sequences 1..=12 over three subjects: d.a 1,4,7,10; d.b 2,5,8,11; d.c 3,6,9,12.
        for i in 1..=12 {
            let subject = ["d.c", "d.a", "d.b"][i % 3];
            js.publish(subject, format!("{i}")).expect("publish");
        }
        js
    }

    #[test]
    fn pages_of_a_stream_and_of_one_subject() {
        let server = js_server(ServerVersion::Current);
        let js = filled(&server);
        let first = js.direct_get_batch("D", &MsgGetRequest::batch(1, 5)).expect("batch");
        assert_eq!(payloads(&first), ["1", "2", "3", "4", "5"]);
        assert!(first.has_more());
        assert_eq!(first.num_pending, Some(7));
        assert_eq!(first.messages[4].seq, 5);
        assert_eq!(first.messages[1].subject, "d.b");
        // Page on from the last sequence seen.
        let mut all = payloads(&first);
        let mut next = first.last_sequence.expect("a last sequence") + 1;
        loop {
            let page = js.direct_get_batch("D", &MsgGetRequest::batch(next, 5)).expect("page");
            all.extend(payloads(&page));
            if !page.has_more() {
                break;
            }
            next = page.last_sequence.expect("a last sequence") + 1;
        }
        assert_eq!(all, (1..=12).map(|i| i.to_string()).collect::<Vec<_>>());

        let on_b = js.direct_get_batch("D", &MsgGetRequest::batch(1, 10).on_subject("d.b")).expect("on d.b");
        assert_eq!(payloads(&on_b), ["2", "5", "8", "11"]);
        assert!(!on_b.has_more());
        let past_the_end = js.direct_get_batch("D", &MsgGetRequest::batch(100, 5)).expect("empty range");
        assert!(past_the_end.messages.is_empty() && !past_the_end.has_more());
    }

    #[test]
    fn the_last_of_several_subjects_now_and_as_of_a_sequence() {
        let server = js_server(ServerVersion::Current);
        let js = filled(&server);
        let now = js.direct_get_batch("D", &MsgGetRequest::multi_last(["d.a", "d.b", "d.c"])).expect("multi");
        let mut last: Vec<(String, String)> =
            now.messages.iter().map(|m| (m.subject.clone(), String::from_utf8_lossy(&m.payload).into())).collect();
        last.sort();
        assert_eq!(last, [("d.a".into(), "10".into()), ("d.b".into(), "11".into()), ("d.c".into(), "12".into())]);
        assert_eq!(now.up_to_sequence, Some(12));
        let wildcard = js.direct_get_batch("D", &MsgGetRequest::multi_last(["d.*"])).expect("wildcard");
        assert_eq!(wildcard.messages.len(), 3);
        let then = js.direct_get_batch("D", &MsgGetRequest::multi_last(["d.a", "d.b"]).up_to(5)).expect("as of 5");
        let mut then = payloads(&then);
        then.sort();
        assert_eq!(then, ["4", "5"]);
    }

    #[test]
    fn a_stream_without_direct_get_and_bad_requests_are_errors() {
        let server = js_server(ServerVersion::Current);
        let js = Context::new(nats_blocking::connect(&server.url()).expect("connect"));
        js.create_stream(&stream("ND", "nd.>", false)).expect("stream");
        js.publish("nd.x", "1").expect("publish");
        let error = js.direct_get_batch("ND", &MsgGetRequest::batch(1, 5)).expect_err("no direct get");
        assert_eq!(error.jetstream(), Some(&JetStreamError::NoResponders), "{error:?}");
        let error = js.direct_get_batch("ND", &MsgGetRequest::seq(1)).expect_err("not a batch");
        assert!(matches!(error.jetstream(), Some(JetStreamError::InvalidConfig { .. })), "{error:?}");
    }

    #[test]
    fn a_server_without_batches_answers_and_does_not_hang() {
        let server = js_server(ServerVersion::Old);
        let js = filled(&server);
        match js.direct_get_batch("D", &MsgGetRequest::batch(1, 5)) {
            // 2.9 ignores the batch and answers with the one message at the sequence.
            Ok(batch) => {
                assert_eq!(payloads(&batch), ["1"]);
                assert_eq!(batch.num_pending, None, "not a batching server");
            }
            // Or refuses what it does not know; either way at once, typed.
            Err(e) => assert!(e.jetstream().is_some_and(|j| !matches!(j, JetStreamError::Timeout)), "{e:?}"),
        }
    }
}

mod asynch {
    use super::*;
    use nats_jetstream::asynch::AsyncContext;

    #[tokio::test]
    async fn a_batch_and_a_multi_last_on_the_async_binding() {
        let server = js_server(ServerVersion::Current);
        let js = AsyncContext::new(nats_tokio::connect(&server.url()).await.expect("connect"));
        js.create_stream(&stream("AD", "ad.>", true)).await.expect("stream");
        for i in 1..=6 {
            js.publish(if i % 2 == 0 { "ad.even" } else { "ad.odd" }, format!("{i}")).await.expect("publish");
        }
        let batch = js.direct_get_batch("AD", &MsgGetRequest::batch(2, 3)).await.expect("batch");
        assert_eq!(payloads(&batch), ["2", "3", "4"]);
        assert_eq!(batch.num_pending, Some(2));
        let last = js.direct_get_batch("AD", &MsgGetRequest::multi_last(["ad.>"])).await.expect("multi");
        let mut last = payloads(&last);
        last.sort();
        assert_eq!(last, ["5", "6"]);
    }
}
