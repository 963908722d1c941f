//! The async binding (`nats_jetstream::asynch`, feature `async`) on `nats-tokio` against a real
//! `nats-server -js`: account info, streams, publishing with de-duplication and expectations, fetch and acks,
//! a continuous consume, the ordered consumer's recovery, Key/Value and its watch; on tokio (both timers) and
//! on smol.
//!
//! Most tests run on both server builds the harness knows, as `<test>::current` and `<test>::v2_9`. Each test
//! starts a server of its own. Where the two servers differ, the assertion branches on the minor version.

// Tests read the clock and sleep; the crate's clippy.toml forbids both in the sans-IO core only.
#![allow(clippy::disallowed_methods)]

use std::future::Future;
use std::time::{Duration, Instant};

use nats_jetstream::asynch::{AsyncContext, AsyncJsMessage, Watched};
use nats_jetstream::call::PublishOptions;
use nats_jetstream::error::{ErrorCode, JetStreamError};
use nats_jetstream::kv::Operation;
use nats_jetstream::model::{ConsumerConfig, KvConfig, PurgeRequest, StorageType, StreamConfig};
use nats_jetstream::ordered::OrderedConfig;
use nats_jetstream::pull::{ConsumeConfig, FetchConfig, Termination};
use nats_jetstream::Error;
use nats_server_harness::{parse_major_minor, NatsServer, ServerVersion};
use nats_tokio::{Client, ConnectOptions, Headers};

// ---------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------

/// A JetStream server of one version, a client connected to it, and a context on that client.
struct Env {
    // Kept alive for the test's duration; dropping it kills the server.
    _server: NatsServer,
    js: AsyncContext<Client>,
    minor: u32,
}

impl Env {
    async fn start(version: ServerVersion) -> Env {
        let server = js_server(version);
        let (major, minor) = parse_major_minor(&server.version()).expect("server version");
        assert_eq!(major, 2, "these tests know 2.x servers");
        let client = nats_tokio::connect(&server.url()).await.expect("connect");
        Env { _server: server, js: AsyncContext::new(client), minor }
    }

    /// A memory stream over `subjects`.
    fn memory_stream(&self, name: &str, subjects: &[&str]) -> StreamConfig {
        StreamConfig {
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            storage: StorageType::Memory,
            ..StreamConfig::new(name)
        }
    }

    async fn create(&self, config: &StreamConfig) {
        self.js.create_stream(config).await.unwrap_or_else(|e| panic!("create stream {}: {e}", config.name));
    }

    async fn publish(&self, subject: &str, payload: &str) -> u64 {
        self.js.publish(subject, payload.to_owned()).await.unwrap_or_else(|e| panic!("publish to {subject}: {e}")).seq
    }

    /// A pull consumer named `name` on `stream` with explicit acks and the given ack wait (zero: the default).
    async fn pull_consumer(&self, stream: &str, name: &str, ack_wait: Duration) {
        let config = ConsumerConfig { durable_name: name.into(), ack_wait, ..ConsumerConfig::named(name) };
        self.js.create_consumer(stream, &config).await.unwrap_or_else(|e| panic!("create consumer {name}: {e}"));
    }
}

fn js_server(version: ServerVersion) -> NatsServer {
    NatsServer::builder().version(version).jetstream(true).start().expect("start nats-server with JetStream")
}

/// Runs each named async test function on the current server (`<name>::current`) and on 2.9
/// (`<name>::v2_9`).
macro_rules! on_both_servers {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn current() {
                    let env = super::Env::start(nats_server_harness::ServerVersion::Current).await;
                    super::$name(&env).await;
                }

                #[tokio::test]
                async fn v2_9() {
                    let env = super::Env::start(nats_server_harness::ServerVersion::Old).await;
                    super::$name(&env).await;
                }
            }
        )*
    };
}

on_both_servers!(
    account_info,
    publish_window_accounts_for_every_ack_in_order,
    stream_create_update_info_delete_purge,
    publish_acks_dedup_and_expectations,
    publish_without_stream_is_no_responders,
    stored_messages,
    fetch_batches_metadata_and_expiry,
    fetch_from_missing_consumer,
    ack_and_double_ack,
    nak_with_delay_redelivers,
    term_is_never_redelivered,
    messages_stream_consumes_100_in_order,
    ordered_consumer_recovers_when_its_consumer_is_deleted,
    kv_put_get_create_update_delete_purge,
    kv_history_keys_status_and_buckets,
    kv_watch_sees_initial_data_then_changes_in_order,
);

/// The server's `err_code` of a call that must fail with an API error.
#[track_caller]
fn api_err<T: std::fmt::Debug>(result: Result<T, Error>) -> u16 {
    match result {
        Ok(v) => panic!("expected an API error, got Ok({v:?})"),
        Err(e) => e.err_code().unwrap_or_else(|| panic!("expected an API error with an err_code, got {e:?}")),
    }
}

/// The JetStream error of a call that must fail with one.
#[track_caller]
fn js_err<T: std::fmt::Debug>(result: Result<T, Error>) -> JetStreamError {
    match result {
        Ok(v) => panic!("expected a JetStream error, got Ok({v:?})"),
        Err(Error::JetStream(e)) => e,
        Err(e) => panic!("expected a JetStream error, got {e:?}"),
    }
}

fn payloads<T>(messages: &[AsyncJsMessage<T>]) -> Vec<String> {
    messages.iter().map(|m| String::from_utf8_lossy(m.message.payload()).into_owned()).collect()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Polls `check` until it holds, failing after 5 s.
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "still not true after 5 s: {what}");
        tokio::time::sleep(ms(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Account and streams
// ---------------------------------------------------------------------------------------------------------

async fn account_info(env: &Env) {
    let before = env.js.account_info().await.expect("account info");
    assert_eq!((before.usage.streams, before.usage.consumers), (0, 0));
    assert!(before.usage.limits.max_memory != 0, "limits are reported: {:?}", before.usage.limits);
    if env.minor >= 11 {
        assert!(before.api.level >= 1, "API level on 2.{}: {}", env.minor, before.api.level);
    } else {
        assert_eq!(before.api.level, 0, "2.9 reports no API level");
    }
    env.create(&env.memory_stream("ACCT", &["acct.>"])).await;
    env.publish("acct.x", "hello").await;
    let after = env.js.account_info().await.expect("account info");
    assert_eq!(after.usage.streams, 1);
    assert!(after.usage.memory > 0, "the stored message uses memory");
    assert!(after.api.total > before.api.total, "API calls are counted");
}

async fn stream_create_update_info_delete_purge(env: &Env) {
    let js = &env.js;
    let config = env.memory_stream("CRUD", &["crud.>"]);
    let created = js.create_stream(&config).await.expect("create");
    assert_eq!(created.config.name, "CRUD");
    assert_eq!(created.state.messages, 0);
    let again = js.create_stream(&config).await.expect("idempotent create");
    assert_eq!(again.created, created.created);

    let err = js.create_stream(&env.memory_stream("CRUD", &["other.>"])).await.unwrap_err();
    assert_eq!(err.err_code(), Some(10058), "{err:?}");
    assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::StreamNameInUse));

    let updated = StreamConfig { description: "updated".into(), max_msgs: 100, ..config.clone() };
    assert_eq!(js.update_stream(&updated).await.expect("update").config.max_msgs, 100);
    for i in 0..3 {
        env.publish(&format!("crud.{i}"), "x").await;
    }
    let info = js.stream_info("CRUD").await.expect("info");
    assert_eq!(info.config.description, "updated");
    assert_eq!((info.state.messages, info.state.last_seq), (3, 3));

    let upsert = StreamConfig { subjects: vec!["crud.>".into(), "crud2.>".into()], ..updated };
    assert_eq!(js.create_or_update_stream(&upsert).await.expect("upsert existing").config.subjects.len(), 2);
    js.create_or_update_stream(&env.memory_stream("CRUD_NEW", &["crudnew.>"])).await.expect("upsert new");

    let mut names = js.stream_names(None).await.expect("names");
    names.sort();
    assert_eq!(names, ["CRUD", "CRUD_NEW"]);
    assert_eq!(js.stream_names(Some("crud2.x")).await.expect("names by subject"), ["CRUD"]);
    assert_eq!(js.streams().await.expect("list").len(), 2);

    let by_subject = PurgeRequest { filter: "crud.0".into(), ..PurgeRequest::default() };
    assert_eq!(js.purge_stream("CRUD", &by_subject).await.expect("purge by subject").purged, 1);
    assert_eq!(js.purge_stream("CRUD", &PurgeRequest::default()).await.expect("purge").purged, 2);
    assert_eq!(js.stream_info("CRUD").await.expect("info").state.messages, 0);

    assert!(js.delete_stream("CRUD").await.expect("delete"));
    assert_eq!(api_err(js.stream_info("CRUD").await), 10059);
    assert_eq!(api_err(js.delete_stream("CRUD").await), 10059);
    assert_eq!(js.stream_names(None).await.expect("names"), ["CRUD_NEW"]);
    assert!(matches!(js_err(js.stream_info("a.b").await), JetStreamError::InvalidName { .. }));
}

// ---------------------------------------------------------------------------------------------------------
// Publishing and stored messages
// ---------------------------------------------------------------------------------------------------------

async fn publish_window_accounts_for_every_ack_in_order(env: &Env) {
    let js = &env.js;
    env.create(&env.memory_stream("WINDOW", &["window.>"])).await;
    let mut window = js.publish_window(32);
    let mut acks = Vec::new();
    for i in 0..2_000 {
        acks.extend(window.publish("window.x", format!("{i}")).await.expect("publish"));
        assert!(window.in_flight() <= 32, "the window bounds what is outstanding");
    }
    assert_eq!(acks.len(), 2_000 - 32, "an ack for every publish that left the window");
    acks.extend(window.wait_all().await);
    let seqs: Vec<u64> = acks.into_iter().map(|a| a.expect("stored").seq).collect();
    assert_eq!(seqs, (1..=2_000).collect::<Vec<u64>>(), "one ack per publish, in order");
    window.publish("nowhere.x", "lost").await.expect("sent");
    window.publish("window.y", "kept").await.expect("sent");
    let acks = window.wait_all().await;
    assert!(acks[0].is_err(), "{acks:?}");
    assert_eq!(acks[1].as_ref().expect("stored").seq, 2_001);
}

async fn publish_acks_dedup_and_expectations(env: &Env) {
    let js = &env.js;
    env.create(&env.memory_stream("PUB", &["pub.>"])).await;
    for i in 1..=3 {
        let ack = js.publish("pub.x", format!("m{i}")).await.expect("publish");
        assert_eq!((ack.stream.as_str(), ack.seq, ack.duplicate), ("PUB", i, false));
    }

    // De-duplication by Nats-Msg-Id.
    let with_id = PublishOptions::new().msg_id("order-1");
    let first = js.publish_with("pub.y", "first", &with_id).await.expect("publish with id");
    assert_eq!((first.seq, first.duplicate), (4, false));
    let repeat = js.publish_with("pub.y", "second", &with_id).await.expect("publish the same id");
    assert!(repeat.duplicate, "the same Nats-Msg-Id within the window is a duplicate");
    assert_eq!(repeat.seq, first.seq, "acknowledged with the original sequence");
    assert_eq!(js.stream_info("PUB").await.expect("info").state.messages, 4, "the duplicate was not stored");

    // Headers go along with the options.
    let mut headers = Headers::new();
    headers.insert("X-Trace", "abc").expect("header");
    let ack = js.publish_with("pub.h", "h", &PublishOptions::new().msg_id("h-1").headers(headers)).await.expect("pub");
    let stored = js.get_message("PUB", ack.seq).await.expect("get").headers.expect("stored headers");
    assert_eq!((stored.get("X-Trace"), stored.get("Nats-Msg-Id")), (Some("abc"), Some("h-1")));

    // Failed expectations are API errors with their err_code, and store nothing.
    let err = js.publish_with("pub.x", "x", &PublishOptions::new().expected_stream("OTHER")).await.unwrap_err();
    assert_eq!(err.err_code(), Some(10060), "{err:?}");
    assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::StreamMismatch));
    let err = js.publish_with("pub.x", "x", &PublishOptions::new().expected_last_sequence(1)).await.unwrap_err();
    assert_eq!(err.err_code(), Some(10071), "{err:?}");
    assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::WrongLastSequence));
    let ok = js.publish_with("pub.x", "x", &PublishOptions::new().expected_last_sequence(5)).await.expect("right seq");
    assert_eq!(ok.seq, 6);
    let wrong_id = PublishOptions::new().expected_last_msg_id("nope");
    assert_eq!(api_err(js.publish_with("pub.x", "x", &wrong_id).await), 10070);
    assert_eq!(
        api_err(js.publish_with("pub.z", "x", &PublishOptions::new().expected_last_subject_sequence(3)).await),
        10071
    );
    assert_eq!(js.stream_info("PUB").await.expect("info").state.messages, 6, "no failed expectation stored");

    // A subject that is not publishable never leaves the client.
    assert!(matches!(js_err(js.publish("pub.*", "x").await), JetStreamError::InvalidSubject { .. }));
}

async fn publish_without_stream_is_no_responders(env: &Env) {
    let start = Instant::now();
    let err = env.js.publish("nobody.stores.this", "x").await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(err, Error::JetStream(JetStreamError::NoResponders)), "{err:?}");
    // Two retries 250 ms apart (on the binding's timer) happen first, well within the 5 s timeout.
    assert!(elapsed >= ms(500), "retried twice: {elapsed:?}");
    assert!(elapsed < secs(5), "bounded: {elapsed:?}");
    let short = AsyncContext::new(env.js.client().clone()).timeout(ms(300));
    let start = Instant::now();
    assert!(matches!(
        short.publish("nobody.stores.this", "x").await,
        Err(Error::JetStream(JetStreamError::NoResponders))
    ));
    assert!(start.elapsed() < secs(2), "bounded by the timeout: {:?}", start.elapsed());
}

async fn stored_messages(env: &Env) {
    let js = &env.js;
    let config = StreamConfig { allow_direct: true, ..env.memory_stream("STORED", &["st.>"]) };
    env.create(&config).await;
    env.publish("st.a", "a1").await;
    env.publish("st.b", "b1").await;
    env.publish("st.a", "a2").await;
    assert_eq!(&js.get_message("STORED", 2).await.expect("get").data[..], b"b1");
    assert_eq!(&js.get_last_message("STORED", "st.a").await.expect("last").data[..], b"a2");
    assert_eq!(api_err(js.get_message("STORED", 99).await), 10037);
    let direct = js.direct_get("STORED", &nats_jetstream::model::MsgGetRequest::seq(1)).await.expect("direct get");
    assert_eq!((direct.seq, &direct.payload[..]), (1, &b"a1"[..]));
    assert!(js.delete_message("STORED", 1, false).await.expect("delete"));
    assert_eq!(api_err(js.get_message("STORED", 1).await), 10037);
}

// ---------------------------------------------------------------------------------------------------------
// Fetch and acks
// ---------------------------------------------------------------------------------------------------------

async fn fetch_batches_metadata_and_expiry(env: &Env) {
    env.create(&env.memory_stream("FETCH", &["f.>"])).await;
    for i in 1..=10 {
        env.publish("f.x", &format!("m{i}")).await;
    }
    env.pull_consumer("FETCH", "FC", Duration::ZERO).await;
    let consumer = env.js.pull_consumer("FETCH", "FC");

    let start = Instant::now();
    let mut batch = consumer.fetch(FetchConfig::batch(4).with_expires(secs(10))).await.expect("fetch");
    assert!(start.elapsed() < secs(5), "a full batch ends at once: {:?}", start.elapsed());
    assert_eq!(payloads(&batch), ["m1", "m2", "m3", "m4"]);
    for (i, message) in batch.iter().enumerate() {
        let n = i as u64 + 1;
        let meta = message.metadata().expect("metadata");
        assert_eq!((meta.stream.as_str(), meta.consumer.as_str()), ("FETCH", "FC"));
        assert_eq!((meta.stream_sequence, meta.consumer_sequence, meta.delivered), (n, n, 1));
        assert_eq!(meta.pending, 10 - n);
    }
    for message in &mut batch {
        message.ack().await.expect("ack");
    }

    // Fewer than the batch: what there is, once the request expires (the binding's timer at work).
    let start = Instant::now();
    let rest = consumer.fetch(FetchConfig::batch(10).with_expires(secs(1))).await.expect("fetch the rest");
    let elapsed = start.elapsed();
    assert_eq!(rest.len(), 6);
    assert_eq!(rest[0].metadata().expect("metadata").stream_sequence, 5);
    assert!(elapsed >= ms(900) && elapsed < secs(5), "waited for the expiry: {elapsed:?}");

    // Nothing at all, with idle heartbeats: empty, not an error; no_wait at once; next() is None.
    let start = Instant::now();
    let with_heartbeats = FetchConfig { idle_heartbeat: Some(ms(250)), ..FetchConfig::batch(5).with_expires(secs(1)) };
    assert!(consumer.fetch(with_heartbeats).await.expect("fetch with heartbeats").is_empty());
    assert!(start.elapsed() >= ms(900) && start.elapsed() < secs(5), "{:?}", start.elapsed());
    assert!(consumer.next(ms(300)).await.expect("next").is_none());
    let bad = FetchConfig { idle_heartbeat: Some(ms(600)), ..FetchConfig::batch(5).with_expires(secs(1)) };
    assert!(matches!(js_err(consumer.fetch(bad).await), JetStreamError::InvalidConfig { .. }));
    assert_eq!(consumer.info().await.expect("info").num_pending, 0);
}

async fn fetch_from_missing_consumer(env: &Env) {
    env.create(&env.memory_stream("FMISS", &["fm.>"])).await;
    let start = Instant::now();
    let result = env.js.pull_consumer("FMISS", "MISSING").fetch(FetchConfig::batch(1).with_expires(ms(500))).await;
    if env.minor >= 10 {
        assert_eq!(js_err(result), JetStreamError::NoResponders, "a pull to a missing consumer");
    } else {
        // 2.9 stays silent: the fetch ends at its own deadline with nothing.
        assert!(result.expect("2.9: no answer, no error").is_empty());
    }
    assert!(start.elapsed() < secs(5));
}

async fn ack_and_double_ack(env: &Env) {
    env.create(&env.memory_stream("ACK", &["ack.>"])).await;
    for i in 0..3 {
        env.publish("ack.x", &format!("{i}")).await;
    }
    env.pull_consumer("ACK", "AC", secs(30)).await;
    let consumer = env.js.pull_consumer("ACK", "AC");
    let mut batch = consumer.fetch(FetchConfig::batch(3).with_expires(secs(5))).await.expect("fetch");
    assert_eq!(batch.len(), 3);
    assert_eq!(consumer.info().await.expect("info").num_ack_pending, 3);
    batch[0].ack().await.expect("ack");
    batch[1].double_ack(secs(5)).await.expect("the server confirms the ack");
    batch[1].double_ack(secs(5)).await.expect("already acked: nothing sent");
    batch[2].in_progress().await.expect("in progress");
    batch[2].ack().await.expect("ack after progress");
    eventually("acked", || async { consumer.info().await.expect("info").num_ack_pending == 0 }).await;
    let info = consumer.info().await.expect("info");
    assert_eq!((info.ack_floor.stream_seq, info.num_redelivered), (3, 0));
}

async fn nak_with_delay_redelivers(env: &Env) {
    env.create(&env.memory_stream("NAK", &["nk.>"])).await;
    env.publish("nk.x", "again").await;
    env.pull_consumer("NAK", "NK", secs(30)).await;
    let consumer = env.js.pull_consumer("NAK", "NK");
    let mut m = consumer.next(secs(5)).await.expect("next").expect("a message");
    assert_eq!(m.metadata().expect("metadata").delivered, 1);
    m.nak(None).await.expect("nak");
    let mut m = consumer.next(secs(5)).await.expect("next").expect("redelivered at once");
    assert_eq!(m.metadata().expect("metadata").delivered, 2);
    let nak_at = Instant::now();
    m.nak(Some(secs(1))).await.expect("nak with delay");
    env.js.client().flush().await.expect("flush");
    let early = consumer.fetch(FetchConfig::no_wait(1)).await.expect("no_wait fetch");
    assert!(early.is_empty() || nak_at.elapsed() >= ms(900), "redelivered before the delay");
    let again = consumer.next(secs(5)).await.expect("next").expect("redelivered");
    let elapsed = nak_at.elapsed();
    let meta = again.metadata().expect("metadata");
    assert_eq!((again.payload(), meta.stream_sequence, meta.delivered), (&b"again"[..], 1, 3));
    assert!(elapsed >= ms(800) && elapsed < secs(5), "after roughly the delay: {elapsed:?}");
}

async fn term_is_never_redelivered(env: &Env) {
    env.create(&env.memory_stream("TERM", &["t.>"])).await;
    env.publish("t.x", "bad").await;
    env.pull_consumer("TERM", "TM", secs(1)).await;
    let consumer = env.js.pull_consumer("TERM", "TM");
    let mut m = consumer.next(secs(5)).await.expect("next").expect("a message");
    m.term().await.expect("term");
    m.nak(None).await.expect("a nak after term is a no-op");
    env.js.client().flush().await.expect("flush");
    // Well past the 1 s ack wait: nothing comes back.
    let got = consumer.fetch(FetchConfig::batch(1).with_expires(ms(2000))).await.expect("fetch");
    assert!(got.is_empty(), "a terminated message was redelivered");
    let info = consumer.info().await.expect("info");
    assert_eq!((info.num_ack_pending, info.num_redelivered), (0, 0));
}

// ---------------------------------------------------------------------------------------------------------
// Continuous consumers
// ---------------------------------------------------------------------------------------------------------

async fn messages_stream_consumes_100_in_order(env: &Env) {
    env.create(&env.memory_stream("CONSUME", &["c.>"])).await;
    env.pull_consumer("CONSUME", "worker", secs(30)).await;
    // Half before the consume starts, half while it runs.
    for i in 1..=50 {
        env.publish("c.x", &format!("{i}")).await;
    }
    let consume = ConsumeConfig { max_messages: Some(20), expires: secs(2), ..ConsumeConfig::default() };
    let mut messages = env.js.pull_consumer("CONSUME", "worker").messages(consume).await.expect("consume");
    let mut seqs = Vec::new();
    let started = Instant::now();
    while seqs.len() < 100 {
        assert!(started.elapsed() < secs(30), "stuck at {} messages", seqs.len());
        let mut msg = messages.next().await.expect("the consume goes on").expect("a message");
        let meta = msg.metadata().expect("metadata");
        assert_eq!(msg.payload(), meta.stream_sequence.to_string().as_bytes());
        seqs.push(meta.stream_sequence);
        msg.ack().await.expect("ack");
        if seqs.len() == 50 {
            for i in 51..=100 {
                env.publish("c.x", &format!("{i}")).await;
            }
        }
    }
    assert_eq!(seqs, (1..=100).collect::<Vec<u64>>(), "every message once, in order");
    let consumer = env.js.pull_consumer("CONSUME", "worker");
    eventually("all acked", || async { consumer.info().await.expect("info").num_ack_pending == 0 }).await;
    messages.stop();
    assert!(messages.next().await.is_none(), "a stopped consume ends");
    assert_eq!(messages.ended(), Some(&Termination::Stopped));
}

async fn ordered_consumer_recovers_when_its_consumer_is_deleted(env: &Env) {
    let js = &env.js;
    env.create(&env.memory_stream("ORDER", &["order.>"])).await;
    for i in 1..=30 {
        env.publish("order.x", &format!("{i}")).await;
    }
    let mut ordered = js.ordered("ORDER", OrderedConfig::default()).await.expect("ordered");
    let mut got = Vec::new();
    let started = Instant::now();
    while got.len() < 40 {
        assert!(started.elapsed() < secs(30), "{got:?}");
        let msg = ordered.next().await.expect("never ends").expect("a message");
        got.push(String::from_utf8(msg.payload().to_vec()).unwrap().parse::<u32>().unwrap());
        if got.len() == 10 {
            // Pull the rug: delete every consumer of the stream, then publish more.
            for name in js.consumer_names("ORDER").await.expect("names") {
                js.delete_consumer("ORDER", &name).await.expect("delete");
            }
            for i in 31..=40 {
                env.publish("order.x", &format!("{i}")).await;
            }
        }
    }
    assert_eq!(got, (1..=40).collect::<Vec<u32>>(), "no gap, no duplicate");
    assert!(ordered.resets() >= 1, "the chain moved to a new consumer");
}

// ---------------------------------------------------------------------------------------------------------
// Key/Value
// ---------------------------------------------------------------------------------------------------------

async fn kv_put_get_create_update_delete_purge(env: &Env) {
    let config = KvConfig { history: 5, storage: StorageType::Memory, ..KvConfig::new("kv_basic") };
    let kv = env.js.create_key_value(&config).await.expect("create bucket");
    assert_eq!(kv.bucket(), "kv_basic");

    let r1 = kv.put("color", "blue").await.expect("put");
    let r2 = kv.put("size", "L").await.expect("put");
    let r3 = kv.put("color", "green").await.expect("put");
    assert_eq!((r1, r2, r3), (1, 2, 3), "revisions are stream sequences");
    let e = kv.get("color").await.expect("get").expect("color has a value");
    assert_eq!((e.key.as_str(), &e.value[..], e.revision, e.operation), ("color", &b"green"[..], 3, Operation::Put));
    assert!(kv.get("nothing").await.expect("get of a missing key").is_none());
    assert_eq!(&kv.entry_at("color", r1).await.expect("entry_at").expect("revision 1").value[..], b"blue");
    assert!(kv.entry_at("color", r2).await.expect("entry_at").is_none(), "revision 2 is another key's");

    // create and update.
    let c1 = kv.create("k", "v1").await.expect("create on a new key");
    assert_eq!(api_err(kv.create("k", "v2").await), 10071, "create on an existing key");
    let c2 = kv.update("k", "v2", c1).await.expect("update at the latest revision");
    assert_eq!(api_err(kv.update("k", "stale", c1).await), 10071, "update with a stale revision");
    assert_eq!(&kv.get("k").await.expect("get").expect("value").value[..], b"v2");

    // delete keeps the history; create works again after it.
    let marker = kv.delete("k").await.expect("delete");
    assert!(marker > c2);
    assert!(kv.get("k").await.expect("get").is_none(), "a deleted key has no value");
    let entry = kv.entry("k").await.expect("entry").expect("the delete marker");
    assert_eq!((entry.operation, entry.revision), (Operation::Delete, marker));
    let c3 = kv.create("k", "v3").await.expect("create on a deleted key");
    assert!(c3 > marker);
    assert_eq!(kv.history("k").await.expect("history").len(), 4, "v1, v2, the marker, v3");

    // purge drops it.
    let purged = kv.purge("k").await.expect("purge");
    assert!(kv.get("k").await.expect("get").is_none());
    let history = kv.history("k").await.expect("history");
    assert_eq!(history.len(), 1, "a purge drops the history: {history:?}");
    assert_eq!((history[0].operation, history[0].revision), (Operation::Purge, purged));
    assert!(kv.create("k", "v4").await.expect("create on a purged key") > purged);
}

async fn kv_history_keys_status_and_buckets(env: &Env) {
    let js = &env.js;
    let kv = js.create_key_value(&KvConfig { history: 5, ..KvConfig::new("kv_hist") }).await.expect("create bucket");
    assert!(kv.keys().await.expect("keys of an empty bucket").is_empty());
    assert!(kv.history("nothing").await.expect("history of a missing key").is_empty());
    for i in 1..=8 {
        kv.put("h", format!("v{i}")).await.expect("put");
    }
    let history = kv.history("h").await.expect("history");
    let values: Vec<_> = history.iter().map(|e| String::from_utf8_lossy(&e.value).into_owned()).collect();
    assert_eq!(values, ["v4", "v5", "v6", "v7", "v8"], "capped at history 5, oldest first");
    kv.put("a", "1").await.expect("put");
    kv.put("b", "1").await.expect("put");
    kv.delete("b").await.expect("delete");
    kv.put("d", "1").await.expect("put");
    kv.purge("d").await.expect("purge");
    assert_eq!(kv.keys().await.expect("keys"), ["a", "h"], "deleted and purged keys left out");
    let status = kv.status().await.expect("status");
    assert_eq!((status.bucket.as_str(), status.history, status.values), ("kv_hist", 5, 9));

    // Binding, listing and deleting buckets.
    let bound = js.key_value("kv_hist").await.expect("bind");
    assert_eq!(&bound.get("a").await.expect("get").expect("value").value[..], b"1");
    assert_eq!(api_err(js.key_value("missing").await), 10059);
    env.create(&env.memory_stream("PLAIN", &["plain.>"])).await;
    assert_eq!(js.key_value_names().await.expect("bucket names"), ["kv_hist"]);
    assert!(js.delete_key_value("kv_hist").await.expect("delete bucket"));
    assert!(js.key_value_names().await.expect("bucket names").is_empty());
}

async fn kv_watch_sees_initial_data_then_changes_in_order(env: &Env) {
    let js = &env.js;
    // An empty bucket: the marker comes first.
    let empty = js.create_key_value(&KvConfig::new("empty")).await.expect("bucket");
    let mut watch = empty.watch(">").await.expect("watch");
    let first = tokio::time::timeout(secs(5), watch.next()).await.expect("the marker comes at once");
    assert_eq!(first.expect("never ends").expect("marker"), Watched::InitialDone);
    empty.put("a", "1").await.expect("put");
    match watch.next().await.expect("never ends").expect("entry") {
        Watched::Entry(e) => assert_eq!((e.key.as_str(), &e.value[..], e.operation), ("a", &b"1"[..], Operation::Put)),
        other => panic!("{other:?}"),
    }

    // A filled bucket: the latest value of each key, then the marker, then changes in order.
    let kv = js.create_key_value(&KvConfig { history: 5, ..KvConfig::new("filled") }).await.expect("bucket");
    kv.put("k1", "old").await.expect("put");
    kv.put("k1", "new").await.expect("put");
    kv.put("k2", "v2").await.expect("put");
    let mut watch = kv.watch(">").await.expect("watch");
    let mut initial = Vec::new();
    while let Watched::Entry(e) = watch.next().await.expect("never ends").expect("item") {
        initial.push((e.key, String::from_utf8(e.value.to_vec()).unwrap()));
    }
    assert_eq!(initial, [("k1".to_owned(), "new".to_owned()), ("k2".to_owned(), "v2".to_owned())]);
    kv.put("k3", "v3").await.expect("put");
    kv.delete("k1").await.expect("delete");
    kv.purge("k2").await.expect("purge");
    let mut changes = Vec::new();
    while changes.len() < 3 {
        if let Watched::Entry(e) = watch.next().await.expect("never ends").expect("item") {
            changes.push((e.key, e.operation));
        }
    }
    assert_eq!(
        changes,
        [("k3".to_owned(), Operation::Put), ("k1".to_owned(), Operation::Delete), ("k2".to_owned(), Operation::Purge)]
    );

    // A filter on one key sees that key only.
    let mut one = kv.watch("k3").await.expect("watch one key");
    match one.next().await.expect("never ends").expect("item") {
        Watched::Entry(e) => assert_eq!(e.key, "k3"),
        other => panic!("{other:?}"),
    }
    assert_eq!(one.next().await.expect("never ends").expect("marker"), Watched::InitialDone);
}

// ---------------------------------------------------------------------------------------------------------
// Runtimes, timers, Send and cancellation
// ---------------------------------------------------------------------------------------------------------

/// Expiry and heartbeats run on the client's own timer (tokio's here): no timer of the binding's own.
#[tokio::test]
async fn consumers_wait_on_the_clients_runtime_timer() {
    let server = js_server(ServerVersion::Current);
    let client = nats_tokio::connect(&server.url()).await.expect("connect");
    let js = AsyncContext::new(client);
    js.create_stream(&StreamConfig { subjects: vec!["tt.>".into()], ..StreamConfig::new("TT") }).await.expect("stream");
    js.publish("tt.x", "1").await.expect("publish");
    js.create_consumer("TT", &ConsumerConfig::named("c")).await.expect("consumer");
    let consumer = js.pull_consumer("TT", "c");
    let start = Instant::now();
    let got = consumer.fetch(FetchConfig::batch(5).with_expires(secs(1))).await.expect("fetch");
    assert_eq!(got.len(), 1);
    assert!(start.elapsed() >= ms(900) && start.elapsed() < secs(5), "expiry on tokio's timer: {:?}", start.elapsed());
    // Heartbeats on tokio's timer keep a consume alive through idle time.
    let consume = ConsumeConfig { expires: secs(1), idle_heartbeat: Some(ms(200)), ..ConsumeConfig::default() };
    let mut messages = consumer.messages(consume).await.expect("consume");
    let publisher = js.clone();
    tokio::spawn(async move {
        tokio::time::sleep(ms(1500)).await;
        publisher.publish("tt.x", "2").await.expect("publish");
    });
    let msg = messages.next().await.expect("goes on").expect("message");
    assert_eq!(msg.payload(), b"2");
    assert_eq!(messages.missed_heartbeats(), 0, "heartbeats came while idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_are_send_and_streams_are_cancel_safe() {
    let server = js_server(ServerVersion::Current);
    let client = nats_tokio::connect(&server.url()).await.expect("connect");
    let js = AsyncContext::new(client);
    js.create_stream(&StreamConfig { subjects: vec!["cs.>".into()], ..StreamConfig::new("CS") }).await.expect("stream");
    js.create_consumer("CS", &ConsumerConfig::named("c")).await.expect("consumer");

    // Every kind of future runs on a spawned task (so it is Send).
    let task = {
        let js = js.clone();
        tokio::spawn(async move {
            js.publish("cs.x", "spawned").await.expect("publish");
            let mut got = js.pull_consumer("CS", "c").fetch(FetchConfig::batch(1)).await.expect("fetch");
            got[0].double_ack(secs(5)).await.expect("double ack");
            let kv = js.create_key_value(&KvConfig::new("spawned")).await.expect("bucket");
            kv.put("k", "v").await.expect("put");
            let mut watch = kv.watch(">").await.expect("watch");
            assert!(matches!(watch.next().await, Some(Ok(Watched::Entry(_)))));
            let mut ordered = js.ordered("CS", OrderedConfig::default()).await.expect("ordered");
            assert_eq!(ordered.next().await.expect("message").expect("ok").payload(), b"spawned");
        })
    };
    task.await.expect("the spawned task");

    // A `next()` dropped mid-wait loses nothing: the pull in flight stays with the stream.
    let mut messages = js.pull_consumer("CS", "c").messages(ConsumeConfig::default()).await.expect("consume");
    assert!(tokio::time::timeout(ms(300), messages.next()).await.is_err(), "nothing yet");
    js.publish("cs.x", "after").await.expect("publish");
    let msg = tokio::time::timeout(secs(5), messages.next()).await.expect("in time").expect("goes on").expect("ok");
    assert_eq!(msg.payload(), b"after");

    let mut ordered = js.ordered("CS", OrderedConfig::default()).await.expect("ordered");
    let mut got = Vec::new();
    for _ in 0..20 {
        // Cancelled over and over while its consumer is being created and pulled (what comes in time counts).
        if let Ok(next) = tokio::time::timeout(Duration::from_micros(200), ordered.next()).await {
            got.push(String::from_utf8(next.expect("goes on").expect("ok").payload().to_vec()).unwrap());
        }
    }
    while got.len() < 2 {
        let msg = tokio::time::timeout(secs(5), ordered.next()).await.expect("in time").expect("goes on").expect("ok");
        got.push(String::from_utf8(msg.payload().to_vec()).unwrap());
    }
    assert_eq!(got, ["spawned", "after"], "in order, none lost to cancellation");
}

/// The same binding on smol: no tokio runtime anywhere; the timer is smol's, through the client.
#[test]
fn on_smol_publish_fetch_and_kv() {
    for version in [ServerVersion::Current, ServerVersion::Old] {
        let server = js_server(version);
        smol::block_on(async {
            let client = nats_tokio::connect_smol(ConnectOptions::new().server(&server.url())).await.expect("connect");
            let js = AsyncContext::new(client);
            let config = StreamConfig { subjects: vec!["smol.>".into()], ..StreamConfig::new("SMOL") };
            js.create_stream(&config).await.expect("stream");
            for i in 1..=3 {
                assert_eq!(js.publish("smol.x", format!("{i}")).await.expect("publish").seq, i);
            }
            js.create_consumer("SMOL", &ConsumerConfig::named("c")).await.expect("consumer");
            let consumer = js.pull_consumer("SMOL", "c");
            let start = Instant::now();
            let mut got = consumer.fetch(FetchConfig::batch(5).with_expires(secs(1))).await.expect("fetch");
            assert_eq!(payloads(&got), ["1", "2", "3"], "{version:?}");
            assert!(start.elapsed() >= ms(900), "{version:?}: the expiry timer works on smol");
            for m in &mut got {
                m.ack().await.expect("ack");
            }
            let kv = js.create_key_value(&KvConfig::new("smol")).await.expect("bucket");
            let revision = kv.put("k", "v").await.expect("put");
            let entry = kv.get("k").await.expect("get").expect("a value");
            assert_eq!((&entry.value[..], entry.revision), (&b"v"[..], revision), "{version:?}");
            let mut watch = kv.watch(">").await.expect("watch");
            assert!(matches!(watch.next().await, Some(Ok(Watched::Entry(_)))), "{version:?}");
            assert_eq!(watch.next().await.expect("never ends").expect("marker"), Watched::InitialDone);
        });
    }
}
