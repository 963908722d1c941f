//! The blocking binding (`nats_jetstream::blocking`) against a real `nats-server -js`: account info, streams,
//! publishing with expectations, stored messages and direct get, consumers, fetch and acks, Key/Value, and
//! payloads near `max_payload`.
//!
//! Every test but the paging one runs on both server builds the harness knows: the current one (2.15) and the
//! old one (2.9), as `<test>::current` and `<test>::v2_9`. Each test starts a server of its own (so counts such
//! as "streams in the account" are exact), and gives its streams and buckets names of their own. Where the two
//! servers differ, the assertion branches on the server's minor version with a comment saying why; the gates
//! follow the release that introduced the feature (2.10 create actions, 2.11 API levels), and only 2.9 and
//! 2.15 are exercised here.

// Tests read the clock and sleep; the crate's clippy.toml forbids both in the sans-IO core only.
#![allow(clippy::disallowed_methods)]

use std::thread;
use std::time::{Duration, Instant};

use nats_blocking::{Client, Headers};
use nats_jetstream::blocking::{Context, JsMessage};
use nats_jetstream::call::PublishOptions;
use nats_jetstream::error::{ErrorCode, JetStreamError};
use nats_jetstream::kv::Operation;
use nats_jetstream::model::{
    AckPolicy, ConsumerConfig, DiscardPolicy, KvConfig, MsgGetRequest, PurgeRequest, StorageType, StreamConfig,
};
use nats_jetstream::pull::FetchConfig;
use nats_jetstream::Error;
use nats_server_harness::{parse_major_minor, NatsServer, ServerBuilder, ServerVersion};

// ---------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------

/// A JetStream server of one version, a client connected to it, and a context on that client.
struct Env {
    // Kept alive for the test's duration; dropping it kills the server.
    _server: NatsServer,
    js: Context<Client>,
    minor: u32,
}

impl Env {
    fn start(version: ServerVersion) -> Env {
        Env::start_with(NatsServer::builder().version(version))
    }

    fn start_with(builder: ServerBuilder) -> Env {
        let server = builder.jetstream(true).start().expect("start nats-server with JetStream");
        let (major, minor) = parse_major_minor(&server.version()).expect("server version");
        assert_eq!(major, 2, "these tests know 2.x servers");
        let client = nats_blocking::connect(&server.url()).expect("connect");
        Env { _server: server, js: Context::new(client), minor }
    }

    /// Server 2.10 or later: consumer create actions (10148 / 10149) exist.
    fn has_create_action(&self) -> bool {
        self.minor >= 10
    }

    /// A memory stream over `subjects`.
    fn memory_stream(&self, name: &str, subjects: &[&str]) -> StreamConfig {
        StreamConfig {
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            storage: StorageType::Memory,
            ..StreamConfig::new(name)
        }
    }

    fn create(&self, config: &StreamConfig) {
        self.js.create_stream(config).unwrap_or_else(|e| panic!("create stream {}: {e}", config.name));
    }

    fn publish(&self, subject: &str, payload: &str) -> u64 {
        self.js.publish(subject, payload.to_owned()).unwrap_or_else(|e| panic!("publish to {subject}: {e}")).seq
    }
}

/// Runs each named test function on the current server (`<name>::current`) and on 2.9 (`<name>::v2_9`).
macro_rules! on_both_servers {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn current() {
                    super::$name(&super::Env::start(nats_server_harness::ServerVersion::Current));
                }

                #[test]
                fn v2_9() {
                    super::$name(&super::Env::start(nats_server_harness::ServerVersion::Old));
                }
            }
        )*
    };
}

on_both_servers!(
    account_info,
    stream_create_update_info_delete,
    stream_purge,
    publish_acks_and_dedup,
    publish_expectations,
    publish_without_stream_is_no_responders,
    discard_new_full_stream,
    get_and_delete_messages,
    direct_get,
    consumer_create_update_delete,
    fetch_full_batch_with_metadata,
    fetch_fewer_than_batch_waits_for_expiry,
    fetch_no_wait,
    fetch_from_missing_consumer,
    fetch_ends_when_consumer_deleted,
    fetch_over_consumer_limit,
    fetch_max_bytes,
    next_message,
    ack_removes_from_ack_pending,
    double_ack,
    nak_with_delay_redelivers,
    term_is_never_redelivered,
    in_progress_extends_ack_wait,
    ack_wait_expiry_redelivers,
    kv_put_get_entry_at,
    kv_create_and_update,
    kv_delete_and_purge,
    kv_history_keys_status,
    kv_validation_bind_and_delete,
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

/// Polls `check` until it holds, failing after 5 s.
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "still not true after 5 s: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A pull consumer named `name` on `stream` with explicit acks and the given ack wait (zero: the default).
fn pull_consumer(env: &Env, stream: &str, name: &str, ack_wait: Duration) {
    let config = ConsumerConfig { durable_name: name.into(), ack_wait, ..ConsumerConfig::named(name) };
    env.js.create_consumer(stream, &config).unwrap_or_else(|e| panic!("create consumer {name}: {e}"));
}

fn payloads(messages: &[JsMessage<Client>]) -> Vec<String> {
    messages.iter().map(|m| String::from_utf8_lossy(m.payload()).into_owned()).collect()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------------------------------------
// Account and streams
// ---------------------------------------------------------------------------------------------------------

fn account_info(env: &Env) {
    let before = env.js.account_info().expect("account info");
    assert_eq!(before.usage.streams, 0);
    assert_eq!(before.usage.consumers, 0);
    assert!(before.usage.limits.max_memory != 0, "limits are reported: {:?}", before.usage.limits);
    if env.minor >= 11 {
        // API levels (ADR-44) start with 2.11.
        assert!(before.api.level >= 1, "API level on 2.{}: {}", env.minor, before.api.level);
    } else {
        assert_eq!(before.api.level, 0, "2.9 reports no API level");
    }

    env.create(&env.memory_stream("ACCT", &["acct.>"]));
    env.publish("acct.x", "hello");
    let after = env.js.account_info().expect("account info");
    assert_eq!(after.usage.streams, before.usage.streams + 1);
    assert!(after.usage.memory > 0, "the stored message uses memory");
    assert!(after.api.total > before.api.total, "API calls are counted");
}

fn stream_create_update_info_delete(env: &Env) {
    let config = env.memory_stream("CRUD", &["crud.>"]);
    let created = env.js.create_stream(&config).expect("create");
    assert_eq!(created.config.name, "CRUD");
    assert_eq!(created.config.subjects, vec!["crud.>".to_owned()]);
    assert_eq!(created.config.storage, StorageType::Memory);
    assert_eq!(created.state.messages, 0);

    // Creating again with the same config succeeds and changes nothing.
    let again = env.js.create_stream(&config).expect("idempotent create");
    assert_eq!(again.created, created.created);
    assert_eq!(again.config, created.config);

    // The same name with another config is 10058.
    let other = env.memory_stream("CRUD", &["other.>"]);
    let err = env.js.create_stream(&other).unwrap_err();
    assert_eq!(err.err_code(), Some(10058), "{err:?}");
    assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::StreamNameInUse));

    // Update, then info shows it.
    let updated = StreamConfig { description: "updated".into(), max_msgs: 100, ..config.clone() };
    let info = env.js.update_stream(&updated).expect("update");
    assert_eq!(info.config.description, "updated");
    assert_eq!(info.config.max_msgs, 100);
    env.publish("crud.a", "1");
    let info = env.js.stream_info("CRUD").expect("info");
    assert_eq!(info.config.description, "updated");
    assert_eq!(info.config.max_msgs, 100);
    assert_eq!((info.state.messages, info.state.last_seq), (1, 1));

    // create_or_update: an update when the config differs, a create when there is none.
    let upsert = StreamConfig { subjects: vec!["crud.>".into(), "crud2.>".into()], ..updated };
    let info = env.js.create_or_update_stream(&upsert).expect("create_or_update of an existing stream");
    assert_eq!(info.config.subjects.len(), 2);
    env.js.create_or_update_stream(&env.memory_stream("CRUD_NEW", &["crudnew.>"])).expect("create_or_update (new)");

    // Names and list.
    let mut names = env.js.stream_names(None).expect("names");
    names.sort();
    assert_eq!(names, vec!["CRUD".to_owned(), "CRUD_NEW".to_owned()]);
    assert_eq!(env.js.stream_names(Some("crud2.x")).expect("names by subject"), vec!["CRUD".to_owned()]);
    assert!(env.js.stream_names(Some("nothing.here")).expect("names by subject").is_empty());
    let list = env.js.streams().expect("list");
    assert_eq!(list.len(), 2);
    let crud = list.iter().find(|s| s.config.name == "CRUD").expect("CRUD listed");
    assert_eq!(crud.state.messages, 1);

    // Delete, then everything about it is 10059.
    assert!(env.js.delete_stream("CRUD").expect("delete"));
    assert_eq!(api_err(env.js.stream_info("CRUD")), 10059);
    assert_eq!(api_err(env.js.delete_stream("CRUD")), 10059);
    assert_eq!(api_err(env.js.update_stream(&config)), 10059);
    assert_eq!(api_err(env.js.purge_stream("CRUD", &PurgeRequest::default())), 10059);
    let err = env.js.stream_info("CRUD").unwrap_err();
    assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::StreamNotFound));
    assert_eq!(env.js.stream_names(None).expect("names"), vec!["CRUD_NEW".to_owned()]);

    // A bad name never reaches the server.
    assert!(matches!(js_err(env.js.stream_info("a.b")), JetStreamError::InvalidName { .. }));
}

/// More consumers than one page of names (1024), more streams than one page of names (1024) and of infos
/// (256). Current server only: one server is enough to check the paging, and this keeps the file fast.
#[test]
fn names_and_lists_span_pages() {
    let env = Env::start(ServerVersion::Current);

    // Consumer names page at 1024 too. (This 2.15 server refused a 1001st consumer on a stream without a
    // `max_consumers` of its own once 1100 streams existed, so the stream sets one.)
    const CONSUMERS: usize = 1030;
    env.create(&StreamConfig { max_consumers: 2000, ..env.memory_stream("MANY_CONSUMERS", &["many.>"]) });
    thread::scope(|scope| {
        for part in 0..2 {
            let js = &env.js;
            scope.spawn(move || {
                for i in (part..CONSUMERS).step_by(2) {
                    let name = format!("C_{i:04}");
                    let config =
                        ConsumerConfig { durable_name: name.clone(), mem_storage: true, ..ConsumerConfig::named(name) };
                    js.create_consumer("MANY_CONSUMERS", &config).unwrap_or_else(|e| panic!("create C_{i}: {e}"));
                }
            });
        }
    });
    let mut consumers = env.js.consumer_names("MANY_CONSUMERS").expect("consumer names");
    assert_eq!(consumers.len(), CONSUMERS, "every consumer name, over two pages");
    consumers.sort();
    consumers.dedup();
    assert_eq!(consumers.len(), CONSUMERS, "no name twice");
    assert!(env.js.delete_stream("MANY_CONSUMERS").expect("delete"), "so that the stream counts below are exact");

    const STREAMS: usize = 1100;
    // Two threads on one client: creating tiny memory streams is fast, but 1100 round trips add up.
    thread::scope(|scope| {
        for part in 0..2 {
            let js = &env.js;
            scope.spawn(move || {
                for i in (part..STREAMS).step_by(2) {
                    let config = StreamConfig {
                        subjects: vec![format!("page.{i}")],
                        storage: StorageType::Memory,
                        max_msgs: 1,
                        ..StreamConfig::new(format!("PAGE_{i:04}"))
                    };
                    js.create_stream(&config).unwrap_or_else(|e| panic!("create PAGE_{i}: {e}"));
                }
            });
        }
    });
    let mut names = env.js.stream_names(None).expect("names");
    assert_eq!(names.len(), STREAMS, "every name, over two pages");
    names.sort();
    names.dedup();
    assert_eq!(names.len(), STREAMS, "no name twice");
    assert_eq!(names.first().map(String::as_str), Some("PAGE_0000"));
    assert_eq!(names.last().map(String::as_str), Some("PAGE_1099"));
    let list = env.js.streams().expect("list");
    assert_eq!(list.len(), STREAMS, "every info, over five pages");

    // The server (and its memory streams) go away with `env`; deleting 1100 streams first would only cost time.
}

fn stream_purge(env: &Env) {
    env.create(&env.memory_stream("PURGE", &["p.>"]));
    for i in 0..4 {
        env.publish("p.a", &format!("a{i}"));
        env.publish("p.b", &format!("b{i}"));
    }
    // Sequences 1..=8: p.a at odd, p.b at even ones.
    let r = env.js.purge_stream("PURGE", &PurgeRequest { filter: "p.a".into(), ..Default::default() }).expect("purge");
    assert!(r.success);
    assert_eq!(r.purged, 4);
    let r = env
        .js
        .purge_stream("PURGE", &PurgeRequest { filter: "p.b".into(), keep: 1, ..Default::default() })
        .expect("purge keep by filter");
    assert_eq!(r.purged, 3);
    let info = env.js.stream_info("PURGE").expect("info");
    assert_eq!((info.state.messages, info.state.first_seq, info.state.last_seq), (1, 8, 8));

    for i in 0..4 {
        env.publish("p.c", &format!("c{i}"));
    }
    // 8, 9, 10, 11, 12 stored: purge below 11.
    let r = env.js.purge_stream("PURGE", &PurgeRequest { seq: 11, ..Default::default() }).expect("purge by seq");
    assert_eq!(r.purged, 3);
    let info = env.js.stream_info("PURGE").expect("info");
    assert_eq!((info.state.messages, info.state.first_seq), (2, 11));

    let r = env.js.purge_stream("PURGE", &PurgeRequest { keep: 1, ..Default::default() }).expect("purge keep");
    assert_eq!(r.purged, 1);
    let r = env.js.purge_stream("PURGE", &PurgeRequest::default()).expect("purge all");
    assert_eq!(r.purged, 1);
    let info = env.js.stream_info("PURGE").expect("info");
    assert_eq!(info.state.messages, 0);
    assert_eq!(info.state.last_seq, 12, "a purge keeps the sequence");

    // seq and keep together are refused before sending.
    let bad = PurgeRequest { seq: 3, keep: 1, ..Default::default() };
    assert!(matches!(js_err(env.js.purge_stream("PURGE", &bad)), JetStreamError::InvalidConfig { .. }));
    assert_eq!(api_err(env.js.purge_stream("NO_SUCH", &PurgeRequest::default())), 10059);
}

// ---------------------------------------------------------------------------------------------------------
// Publishing
// ---------------------------------------------------------------------------------------------------------

fn publish_acks_and_dedup(env: &Env) {
    env.create(&env.memory_stream("PUBACK", &["pa.>"]));
    let mut last = 0;
    for i in 0..5 {
        let ack = env.js.publish("pa.x", format!("m{i}")).expect("publish");
        assert_eq!(ack.stream, "PUBACK");
        assert_eq!(ack.seq, last + 1, "sequences increase by one");
        assert!(!ack.duplicate);
        assert!(ack.domain.is_empty(), "no domain configured");
        last = ack.seq;
    }

    let with_id = PublishOptions::new().msg_id("order-1");
    let first = env.js.publish_with("pa.y", "first", &with_id).expect("publish with id");
    assert!(!first.duplicate);
    assert_eq!(first.seq, 6);
    let repeat = env.js.publish_with("pa.y", "second", &with_id).expect("publish the same id");
    assert!(repeat.duplicate, "the same Nats-Msg-Id within the window is a duplicate");
    assert_eq!(repeat.seq, first.seq, "a duplicate is acknowledged with the original sequence");
    assert_eq!(env.js.stream_info("PUBACK").expect("info").state.messages, 6, "the duplicate was not stored");
    assert_eq!(&env.js.get_message("PUBACK", 6).expect("get").data[..], b"first");

    // Message headers go along with the publish options.
    let mut headers = Headers::new();
    headers.insert("X-Trace", "abc").expect("header");
    let ack = env.js.publish_with("pa.h", "h", &PublishOptions::new().msg_id("h-1").headers(headers)).expect("pub");
    let stored = env.js.get_message("PUBACK", ack.seq).expect("get");
    let stored_headers = stored.headers.expect("stored headers");
    assert_eq!(stored_headers.get("X-Trace"), Some("abc"));
    assert_eq!(stored_headers.get("Nats-Msg-Id"), Some("h-1"));

    // A subject that is not publishable never leaves the client.
    assert!(matches!(js_err(env.js.publish("pa.*", "x")), JetStreamError::InvalidSubject { .. }));
}

fn publish_expectations(env: &Env) {
    env.create(&env.memory_stream("EXPECT", &["ex.>"]));
    let expect = |options: PublishOptions| env.js.publish_with("ex.a", "x", &options);

    // Nats-Expected-Stream.
    assert_eq!(expect(PublishOptions::new().expected_stream("EXPECT")).expect("right stream").seq, 1);
    let err = expect(PublishOptions::new().expected_stream("OTHER")).unwrap_err();
    assert_eq!(err.err_code(), Some(10060), "{err:?}");
    assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::StreamMismatch));

    // Nats-Expected-Last-Sequence.
    assert_eq!(expect(PublishOptions::new().expected_last_sequence(1)).expect("right last seq").seq, 2);
    let err = expect(PublishOptions::new().expected_last_sequence(1)).unwrap_err();
    assert_eq!(err.err_code(), Some(10071), "{err:?}");
    assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::WrongLastSequence));

    // Nats-Expected-Last-Subject-Sequence: 0 means "nothing on this subject yet".
    let ack = env
        .js
        .publish_with("ex.b", "x", &PublishOptions::new().expected_last_subject_sequence(0))
        .expect("empty subject");
    assert_eq!(ack.seq, 3);
    assert_eq!(
        api_err(env.js.publish_with("ex.b", "x", &PublishOptions::new().expected_last_subject_sequence(0))),
        10071
    );
    assert_eq!(expect(PublishOptions::new().expected_last_subject_sequence(2)).expect("right subject seq").seq, 4);
    assert_eq!(api_err(expect(PublishOptions::new().expected_last_subject_sequence(2))), 10071);

    // Nats-Expected-Last-Msg-Id.
    let ack = expect(PublishOptions::new().msg_id("id-5")).expect("with id");
    assert_eq!(ack.seq, 5);
    let ack = expect(PublishOptions::new().msg_id("id-6").expected_last_msg_id("id-5")).expect("right last id");
    assert_eq!(ack.seq, 6);
    let err = expect(PublishOptions::new().msg_id("id-7").expected_last_msg_id("id-5")).unwrap_err();
    assert_eq!(err.err_code(), Some(10070), "{err:?}");
    assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::WrongLastMsgId));

    // No failed expectation stored anything.
    let info = env.js.stream_info("EXPECT").expect("info");
    assert_eq!((info.state.messages, info.state.last_seq), (6, 6));
}

fn publish_without_stream_is_no_responders(env: &Env) {
    let start = Instant::now();
    let err = env.js.publish("nobody.stores.this", "x").unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(err, Error::JetStream(JetStreamError::NoResponders)), "{err:?}");
    assert!(err.jetstream().is_some_and(JetStreamError::is_retryable));
    // Two retries 250 ms apart happen first; the whole thing stays well within the 5 s timeout.
    assert!(elapsed >= ms(500), "retried twice: {elapsed:?}");
    assert!(elapsed < secs(5), "bounded: {elapsed:?}");

    // A shorter context timeout leaves room for fewer retries and still ends with no responders.
    let short = Context::new(env.js.client().clone()).timeout(ms(300));
    let start = Instant::now();
    let err = short.publish("nobody.stores.this", "x").unwrap_err();
    assert!(matches!(err, Error::JetStream(JetStreamError::NoResponders)), "{err:?}");
    assert!(start.elapsed() < secs(2), "bounded by the timeout: {:?}", start.elapsed());
}

fn discard_new_full_stream(env: &Env) {
    let config = StreamConfig { max_msgs: 1, discard: DiscardPolicy::New, ..env.memory_stream("FULL", &["full.>"]) };
    let info = env.js.create_stream(&config).expect("create");
    assert_eq!(info.config.discard, DiscardPolicy::New);
    assert_eq!(env.publish("full.a", "1"), 1);
    let err = env.js.publish("full.a", "2").unwrap_err();
    assert_eq!(err.err_code(), Some(10077), "{err:?}");
    assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::StoreFailed));
    assert_eq!(env.js.stream_info("FULL").expect("info").state.messages, 1);
}

// ---------------------------------------------------------------------------------------------------------
// Stored messages
// ---------------------------------------------------------------------------------------------------------

fn get_and_delete_messages(env: &Env) {
    env.create(&env.memory_stream("MSGS", &["m.>"]));
    let mut headers = Headers::new();
    headers.insert("X-Test", "1").expect("header");
    env.js.publish_with("m.a", "one", &PublishOptions::new().headers(headers)).expect("publish");
    env.publish("m.b", "two");
    env.publish("m.a", "three");
    env.publish("m.c", "four");

    let first = env.js.get_message("MSGS", 1).expect("get 1");
    assert_eq!((first.subject.as_str(), first.seq, &first.data[..]), ("m.a", 1, &b"one"[..]));
    assert_eq!(first.headers.as_ref().and_then(|h| h.get("X-Test")), Some("1"));
    let second = env.js.get_message("MSGS", 2).expect("get 2");
    assert!(second.headers.is_none(), "no headers were published");
    assert!(second.time >= first.time);

    let last = env.js.get_last_message("MSGS", "m.a").expect("last of m.a");
    assert_eq!((last.seq, &last.data[..]), (3, &b"three"[..]));

    let err = env.js.get_message("MSGS", 99).unwrap_err();
    assert_eq!(err.err_code(), Some(10037), "{err:?}");
    assert!(err.jetstream().is_some_and(JetStreamError::is_no_message));
    assert_eq!(api_err(env.js.get_last_message("MSGS", "m.none")), 10037);
    assert_eq!(api_err(env.js.get_message("NO_SUCH", 1)), 10059);

    // Delete with erase (the default on the wire) and without.
    assert!(env.js.delete_message("MSGS", 2, true).expect("erase 2"));
    assert_eq!(api_err(env.js.get_message("MSGS", 2)), 10037);
    assert!(env.js.delete_message("MSGS", 1, false).expect("delete 1 (no erase)"));
    assert_eq!(api_err(env.js.get_message("MSGS", 1)), 10037);
    let err = env.js.delete_message("MSGS", 1, false).unwrap_err();
    assert_eq!(err.err_code(), Some(10043), "deleting a deleted message: sequence not found: {err:?}");
    assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::SequenceNotFound));
    let info = env.js.stream_info("MSGS").expect("info");
    assert_eq!((info.state.messages, info.state.first_seq, info.state.last_seq), (2, 3, 4));
    assert_eq!(api_err(env.js.delete_message("NO_SUCH", 1, true)), 10059);
}

fn direct_get(env: &Env) {
    let config = StreamConfig { allow_direct: true, ..env.memory_stream("DIRECT", &["d.>"]) };
    env.create(&config);
    let mut headers = Headers::new();
    headers.insert("X-Own", "yes").expect("header");
    env.publish("d.a", "a1");
    env.js.publish_with("d.a", "a2", &PublishOptions::new().headers(headers)).expect("publish");
    env.publish("d.b", "b1");
    env.publish("d.a", "a3");

    let m = env.js.direct_get("DIRECT", &MsgGetRequest::seq(2)).expect("direct get seq");
    assert_eq!((m.stream.as_str(), m.subject.as_str(), m.seq, &m.payload[..]), ("DIRECT", "d.a", 2, &b"a2"[..]));
    assert_eq!(m.headers.get("X-Own"), Some("yes"), "the message's own headers follow the Nats-* ones");

    let m = env.js.direct_get("DIRECT", &MsgGetRequest::last_by_subject("d.a")).expect("last by subject");
    assert_eq!((m.seq, &m.payload[..]), (4, &b"a3"[..]));
    let m = env.js.direct_get("DIRECT", &MsgGetRequest::next_by_subject(1, "d.b")).expect("next by subject");
    assert_eq!((m.seq, &m.payload[..]), (3, &b"b1"[..]));
    let m = env.js.direct_get("DIRECT", &MsgGetRequest::next_by_subject(2, "d.>")).expect("next, wildcard");
    assert_eq!(m.seq, 2);

    // Missing: a 404 status, not an API error.
    let e = js_err(env.js.direct_get("DIRECT", &MsgGetRequest::seq(99)));
    assert!(matches!(e, JetStreamError::Status { code: 404, .. }), "{e:?}");
    assert!(e.is_no_message());
    let e = js_err(env.js.direct_get("DIRECT", &MsgGetRequest::last_by_subject("d.none")));
    assert!(matches!(e, JetStreamError::Status { code: 404, .. }), "{e:?}");
    let e = js_err(env.js.direct_get("DIRECT", &MsgGetRequest::next_by_subject(4, "d.b")));
    assert!(matches!(e, JetStreamError::Status { code: 404, .. }), "{e:?}");

    // Without allow_direct nobody answers DIRECT.GET.
    env.create(&env.memory_stream("NODIRECT", &["nd.>"]));
    env.publish("nd.a", "x");
    if env.minor >= 10 {
        let e = js_err(env.js.direct_get("NODIRECT", &MsgGetRequest::seq(1)));
        assert_eq!(e, JetStreamError::NoResponders);
    } else {
        // 2.9 answers neither with a message nor with a 503 "no responders": the request times out. A short
        // timeout keeps the test fast.
        let short = Context::new(env.js.client().clone()).timeout(ms(500));
        let err = short.direct_get("NODIRECT", &MsgGetRequest::seq(1)).unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Consumers
// ---------------------------------------------------------------------------------------------------------

fn consumer_create_update_delete(env: &Env) {
    env.create(&env.memory_stream("CONS", &["c.>"]));
    let config = ConsumerConfig { durable_name: "C1".into(), ..ConsumerConfig::named("C1") };
    let info = env.js.create_consumer("CONS", &config).expect("create");
    assert_eq!((info.stream_name.as_str(), info.name.as_str()), ("CONS", "C1"));
    assert_eq!(info.config.ack_policy, AckPolicy::Explicit);
    // The same config again is fine.
    let again = env.js.create_consumer("CONS", &config).expect("create again, same config");
    assert_eq!(again.created, info.created);

    let changed = ConsumerConfig { description: "changed".into(), ..config.clone() };
    let result = env.js.create_consumer("CONS", &changed);
    if env.has_create_action() {
        let err = result.unwrap_err();
        assert_eq!(err.err_code(), Some(10148), "{err:?}");
        assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::ConsumerAlreadyExists));
    } else {
        // 2.9 ignores `action` and upserts: the create updates the existing consumer.
        assert_eq!(result.expect("2.9 upserts").config.description, "changed");
    }
    let updated = env.js.update_consumer("CONS", &changed).expect("update");
    assert_eq!(updated.config.description, "changed");
    assert_eq!(updated.created, info.created, "an update keeps the consumer");

    let missing = ConsumerConfig { durable_name: "C2".into(), ..ConsumerConfig::named("C2") };
    let result = env.js.update_consumer("CONS", &missing);
    if env.has_create_action() {
        let err = result.unwrap_err();
        assert_eq!(err.err_code(), Some(10149), "{err:?}");
        assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::ConsumerDoesNotExist));
        env.js.create_or_update_consumer("CONS", &missing).expect("create_or_update creates");
    } else {
        // 2.9 ignores `action`: the "update" creates it.
        assert_eq!(result.expect("2.9 upserts").name, "C2");
    }
    let upserted = env
        .js
        .create_or_update_consumer("CONS", &ConsumerConfig { description: "up".into(), ..missing.clone() })
        .expect("create_or_update updates");
    assert_eq!(upserted.config.description, "up");

    // A consumer with a single filter subject (which also goes into the create subject).
    let filtered = ConsumerConfig { filter_subject: "c.only".into(), ..ConsumerConfig::named("C3") };
    let info = env.js.create_consumer("CONS", &filtered).expect("filtered");
    assert_eq!(info.config.filter_subject, "c.only");

    let mut names = env.js.consumer_names("CONS").expect("names");
    names.sort();
    assert_eq!(names, vec!["C1".to_owned(), "C2".to_owned(), "C3".to_owned()]);
    assert_eq!(env.js.stream_info("CONS").expect("info").state.consumer_count, 3);

    let info = env.js.consumer_info("CONS", "C1").expect("info");
    assert_eq!(info.config.description, "changed");
    assert_eq!(info.num_pending, 0);

    assert!(env.js.delete_consumer("CONS", "C1").expect("delete"));
    let err = env.js.consumer_info("CONS", "C1").unwrap_err();
    assert_eq!(err.err_code(), Some(10014), "{err:?}");
    assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::ConsumerNotFound));
    assert_eq!(api_err(env.js.delete_consumer("CONS", "C1")), 10014);
    // A missing stream is 10059, not 10014.
    assert_eq!(api_err(env.js.consumer_info("NO_SUCH", "C1")), 10059);
    assert_eq!(api_err(env.js.create_consumer("NO_SUCH", &config)), 10059);
    assert_eq!(api_err(env.js.consumer_names("NO_SUCH")), 10059);
    assert!(env.js.pull_consumer("CONS", "C1").info().is_err());
    assert_eq!(env.js.pull_consumer("CONS", "C2").info().expect("handle info").name, "C2");
    // Neither a name nor a durable name: refused before sending.
    assert!(matches!(
        js_err(env.js.create_consumer("CONS", &ConsumerConfig::default())),
        JetStreamError::InvalidConfig { .. }
    ));
}

// ---------------------------------------------------------------------------------------------------------
// Fetch, next and acks
// ---------------------------------------------------------------------------------------------------------

fn fetch_full_batch_with_metadata(env: &Env) {
    env.create(&env.memory_stream("FETCH", &["f.>"]));
    for i in 1..=10 {
        env.publish("f.x", &format!("m{i}"));
    }
    pull_consumer(env, "FETCH", "FC", Duration::ZERO);
    let consumer = env.js.pull_consumer("FETCH", "FC");

    let start = Instant::now();
    let mut batch = consumer.fetch(FetchConfig::batch(4).with_expires(secs(10))).expect("fetch");
    assert!(start.elapsed() < secs(5), "a full batch ends at once, not at expiry: {:?}", start.elapsed());
    assert_eq!(payloads(&batch), ["m1", "m2", "m3", "m4"]);
    for (i, message) in batch.iter().enumerate() {
        let n = i as u64 + 1;
        let meta = message.metadata().expect("metadata");
        assert_eq!((meta.stream.as_str(), meta.consumer.as_str()), ("FETCH", "FC"));
        assert_eq!((meta.stream_sequence, meta.consumer_sequence), (n, n));
        assert_eq!(meta.delivered, 1);
        assert_eq!(meta.pending, 10 - n, "messages left after this one");
        assert_eq!(message.message.subject().as_str(), Some("f.x"));
        let stored = env.js.get_message("FETCH", n).expect("get");
        assert_eq!(meta.timestamp, stored.time, "the ack subject carries the stored time");
    }
    for message in &mut batch {
        message.ack().expect("ack");
    }
    let rest = consumer.fetch(FetchConfig::batch(6).with_expires(secs(10))).expect("fetch the rest");
    assert_eq!(rest.len(), 6);
    assert_eq!(rest[0].metadata().expect("metadata").stream_sequence, 5);
    assert_eq!(rest[5].metadata().expect("metadata").pending, 0);
}

fn fetch_fewer_than_batch_waits_for_expiry(env: &Env) {
    env.create(&env.memory_stream("FEWER", &["fw.>"]));
    for i in 0..3 {
        env.publish("fw.x", &format!("m{i}"));
    }
    pull_consumer(env, "FEWER", "FW", Duration::ZERO);
    let start = Instant::now();
    let got = env.js.pull_consumer("FEWER", "FW").fetch(FetchConfig::batch(10).with_expires(secs(1))).expect("fetch");
    let elapsed = start.elapsed();
    assert_eq!(payloads(&got), ["m0", "m1", "m2"], "what there is");
    assert!(elapsed >= ms(900), "waited for the request to expire: {elapsed:?}");
    assert!(elapsed < secs(5), "but not much longer: {elapsed:?}");

    // Nothing at all: empty after the expiry, not an error; also with idle heartbeats asked for, which arrive
    // (and are not messages) while the request waits.
    let consumer = env.js.pull_consumer("FEWER", "FW");
    let start = Instant::now();
    let none = consumer.fetch(FetchConfig::batch(5).with_expires(secs(1))).expect("fetch");
    assert!(none.is_empty());
    assert!(start.elapsed() < secs(5));
    let start = Instant::now();
    let with_heartbeats = FetchConfig { idle_heartbeat: Some(ms(250)), ..FetchConfig::batch(5).with_expires(secs(1)) };
    let none = consumer.fetch(with_heartbeats).expect("fetch with heartbeats");
    assert!(none.is_empty(), "heartbeats are not messages");
    assert!(start.elapsed() >= ms(900), "heartbeats kept it alive until expiry: {:?}", start.elapsed());
    assert!(start.elapsed() < secs(5));
    // A heartbeat over half the expiry is refused before anything is sent.
    let bad = FetchConfig { idle_heartbeat: Some(ms(600)), ..FetchConfig::batch(5).with_expires(secs(1)) };
    assert!(matches!(js_err(consumer.fetch(bad)), JetStreamError::InvalidConfig { .. }));
}

/// A pull to a missing consumer or stream is answered by a `503` (no responders): the fetch fails with that,
/// typed, at once.
fn fetch_from_missing_consumer(env: &Env) {
    env.create(&env.memory_stream("FMISS", &["fm.>"]));
    let start = Instant::now();
    let result = env.js.pull_consumer("FMISS", "MISSING").fetch(FetchConfig::batch(1).with_expires(ms(500)));
    if env.minor >= 10 {
        assert_eq!(js_err(result), JetStreamError::NoResponders, "a pull to a missing consumer");
        let result = env.js.pull_consumer("NO_SUCH", "MISSING").fetch(FetchConfig::no_wait(1));
        assert_eq!(js_err(result), JetStreamError::NoResponders, "a pull to a missing stream");
    } else {
        // 2.9 stays silent (no 503 either): the fetch ends at its own deadline (expires + 1 s) with nothing.
        assert!(result.expect("2.9: no answer, no error").is_empty());
    }
    assert!(start.elapsed() < secs(5));
}

/// Deleting the consumer ends a waiting fetch at once with the terminal `409 Consumer Deleted`, typed.
fn fetch_ends_when_consumer_deleted(env: &Env) {
    env.create(&env.memory_stream("FDEL", &["fd.>"]));
    pull_consumer(env, "FDEL", "DOOMED", Duration::ZERO);
    let doomed = env.js.pull_consumer("FDEL", "DOOMED");
    let deleter = {
        let js = env.js.clone();
        thread::spawn(move || {
            thread::sleep(ms(300));
            js.delete_consumer("FDEL", "DOOMED").expect("delete consumer")
        })
    };
    let start = Instant::now();
    let result = doomed.fetch(FetchConfig::batch(5).with_expires(secs(4)));
    assert!(deleter.join().expect("deleter"));
    assert!(start.elapsed() < secs(3), "the delete ends the waiting fetch at once: {:?}", start.elapsed());
    let e = js_err(result);
    assert!(matches!(e, JetStreamError::Status { code: 409, .. }), "409 Consumer Deleted, typed: {e:?}");
}

/// A pull over a limit of the consumer (`max_batch`) is refused with `409 Exceeded MaxRequestBatch of N`: the
/// fetch fails at once with that status, typed.
fn fetch_over_consumer_limit(env: &Env) {
    env.create(&env.memory_stream("FLIMIT", &["fl.>"]));
    env.publish("fl.x", "1");
    let config = ConsumerConfig { durable_name: "LIMITED".into(), max_batch: 2, ..ConsumerConfig::named("LIMITED") };
    env.js.create_consumer("FLIMIT", &config).expect("create");
    let consumer = env.js.pull_consumer("FLIMIT", "LIMITED");
    let start = Instant::now();
    let e = js_err(consumer.fetch(FetchConfig::batch(5).with_expires(secs(4))));
    assert!(start.elapsed() < secs(3), "refused at once: {:?}", start.elapsed());
    assert!(matches!(e, JetStreamError::Status { code: 409, .. }), "409 Exceeded MaxRequestBatch, typed: {e:?}");
    // Within the limit it works.
    assert_eq!(consumer.fetch(FetchConfig::batch(2).with_expires(secs(1))).expect("fetch").len(), 1);
}

fn fetch_no_wait(env: &Env) {
    env.create(&env.memory_stream("NOWAIT", &["nw.>"]));
    pull_consumer(env, "NOWAIT", "NW", Duration::ZERO);
    let consumer = env.js.pull_consumer("NOWAIT", "NW");

    let start = Instant::now();
    let got = consumer.fetch(FetchConfig::no_wait(5)).expect("no_wait on an empty stream");
    assert!(got.is_empty());
    assert!(start.elapsed() < secs(2), "answered at once: {:?}", start.elapsed());

    env.publish("nw.x", "1");
    env.publish("nw.x", "2");
    let start = Instant::now();
    let got = consumer.fetch(FetchConfig::no_wait(5)).expect("no_wait with two available");
    assert_eq!(payloads(&got), ["1", "2"]);
    assert!(start.elapsed() < secs(2), "answered at once: {:?}", start.elapsed());
}

fn fetch_max_bytes(env: &Env) {
    env.create(&env.memory_stream("BYTES", &["b.>"]));
    let payload = "x".repeat(100);
    for _ in 0..10 {
        env.publish("b.x", &payload);
    }
    pull_consumer(env, "BYTES", "BC", Duration::ZERO);
    let consumer = env.js.pull_consumer("BYTES", "BC");
    let start = Instant::now();
    let got = consumer.fetch(FetchConfig::bytes(350).with_expires(secs(10))).expect("fetch by bytes");
    // Each message counts its subject, reply subject, headers and payload: more than 100 bytes, so at most 3.
    assert!(!got.is_empty() && got.len() <= 3, "got {} messages", got.len());
    let counted: usize = got
        .iter()
        .map(|m| {
            m.message.subject().as_bytes().len()
                + m.message.reply().map_or(0, |r| r.as_bytes().len())
                + m.message.headers().map_or(0, |h| h.as_bytes().len())
                + m.payload().len()
        })
        .sum();
    assert!(counted <= 350, "{counted} bytes delivered for max_bytes 350");
    assert!(start.elapsed() < secs(5), "the byte limit ends the fetch before expiry: {:?}", start.elapsed());

    // A byte limit smaller than one message: `409 Message Size Exceeds MaxBytes` ends the fetch quietly and at
    // once, with nothing.
    let start = Instant::now();
    let got = consumer.fetch(FetchConfig::bytes(10).with_expires(secs(10))).expect("fetch of 10 bytes");
    assert!(got.is_empty(), "nothing fits into 10 bytes");
    assert!(start.elapsed() < secs(5), "ended by the 409, not the expiry: {:?}", start.elapsed());
}

fn next_message(env: &Env) {
    env.create(&env.memory_stream("NEXT", &["n.>"]));
    pull_consumer(env, "NEXT", "NX", Duration::ZERO);
    let consumer = env.js.pull_consumer("NEXT", "NX");
    env.publish("n.a", "first");
    let mut m = consumer.next(secs(5)).expect("next").expect("a message");
    assert_eq!(m.payload(), b"first");
    m.ack().expect("ack");

    let start = Instant::now();
    assert!(consumer.next(secs(1)).expect("next with nothing").is_none());
    assert!(start.elapsed() < secs(5));

    // A message published while next waits is delivered to it.
    let publisher = {
        let js = env.js.clone();
        thread::spawn(move || {
            thread::sleep(ms(300));
            js.publish("n.a", "late").expect("publish")
        })
    };
    let m = consumer.next(secs(5)).expect("next").expect("the late message");
    assert_eq!(m.payload(), b"late");
    assert_eq!(m.metadata().expect("metadata").stream_sequence, publisher.join().expect("publisher").seq);
}

fn ack_removes_from_ack_pending(env: &Env) {
    env.create(&env.memory_stream("ACKS", &["a.>"]));
    for i in 0..3 {
        env.publish("a.x", &format!("{i}"));
    }
    pull_consumer(env, "ACKS", "AC", Duration::ZERO);
    let consumer = env.js.pull_consumer("ACKS", "AC");
    let mut got = consumer.fetch(FetchConfig::batch(3).with_expires(secs(5))).expect("fetch");
    assert_eq!(got.len(), 3);
    let info = consumer.info().expect("info");
    assert_eq!((info.num_ack_pending, info.num_pending), (3, 0));

    got[0].ack().expect("ack");
    eventually("one ack pending fewer", || consumer.info().expect("info").num_ack_pending == 2);
    // Acking again sends nothing (and is fine).
    got[0].ack().expect("second ack");
    got[1].ack().expect("ack");
    got[2].ack().expect("ack");
    eventually("nothing ack pending", || consumer.info().expect("info").num_ack_pending == 0);
    let info = consumer.info().expect("info");
    assert_eq!(info.ack_floor.stream_seq, 3);
    assert_eq!(info.delivered.stream_seq, 3);
}

fn double_ack(env: &Env) {
    env.create(&env.memory_stream("DACK", &["da.>"]));
    env.publish("da.x", "1");
    pull_consumer(env, "DACK", "DA", Duration::ZERO);
    let consumer = env.js.pull_consumer("DACK", "DA");
    let mut m = consumer.next(secs(5)).expect("next").expect("a message");
    m.double_ack(secs(5)).expect("the server confirms the ack");
    // Confirmed: the consumer state shows it at once, no polling needed.
    let info = consumer.info().expect("info");
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.ack_floor.stream_seq, 1);
    // Once settled, a second double ack sends nothing.
    m.double_ack(secs(5)).expect("already acked");
}

fn nak_with_delay_redelivers(env: &Env) {
    env.create(&env.memory_stream("NAK", &["nk.>"]));
    env.publish("nk.x", "again");
    pull_consumer(env, "NAK", "NK", secs(30));
    let consumer = env.js.pull_consumer("NAK", "NK");
    let mut m = consumer.next(secs(5)).expect("next").expect("a message");
    assert_eq!(m.metadata().expect("metadata").delivered, 1);
    // Without a delay: redelivered at once.
    m.nak(None).expect("nak");
    let mut m = consumer.next(secs(5)).expect("next").expect("redelivered at once");
    assert_eq!(m.metadata().expect("metadata").delivered, 2);
    let nak_at = Instant::now();
    m.nak(Some(secs(1))).expect("nak with delay");
    env.js.client().flush().expect("flush");

    // Not before the delay.
    let early = consumer.fetch(FetchConfig::no_wait(1)).expect("no_wait fetch");
    assert!(early.is_empty() || nak_at.elapsed() >= ms(900), "redelivered before the delay");

    let again = consumer.next(secs(5)).expect("next").expect("redelivered");
    let elapsed = nak_at.elapsed();
    let meta = again.metadata().expect("metadata");
    assert_eq!(again.payload(), b"again");
    assert_eq!((meta.stream_sequence, meta.delivered), (1, 3));
    assert!(elapsed >= ms(800), "after roughly the delay: {elapsed:?}");
    assert!(elapsed < secs(5), "{elapsed:?}");
    assert_eq!(consumer.info().expect("info").num_redelivered, 1, "one message, redelivered");
}

fn term_is_never_redelivered(env: &Env) {
    env.create(&env.memory_stream("TERM", &["t.>"]));
    env.publish("t.x", "bad");
    pull_consumer(env, "TERM", "TM", secs(1));
    let consumer = env.js.pull_consumer("TERM", "TM");
    let mut m = consumer.next(secs(5)).expect("next").expect("a message");
    m.term().expect("term");
    // A further nak is not sent once terminated.
    m.nak(None).expect("nak after term is a no-op");
    env.js.client().flush().expect("flush");
    // Well past the 1 s ack wait: nothing comes back.
    let got = consumer.fetch(FetchConfig::batch(1).with_expires(ms(2500))).expect("fetch");
    assert!(got.is_empty(), "a terminated message was redelivered");
    let info = consumer.info().expect("info");
    assert_eq!((info.num_ack_pending, info.num_redelivered), (0, 0));
}

fn in_progress_extends_ack_wait(env: &Env) {
    env.create(&env.memory_stream("WPI", &["w.>"]));
    env.publish("w.x", "slow");
    pull_consumer(env, "WPI", "WP", secs(1));
    let consumer = env.js.pull_consumer("WPI", "WP");
    let mut m = consumer.next(secs(5)).expect("next").expect("a message");
    // 5 × 400 ms = 2 s of work under a 1 s ack wait, kept alive by +WPI.
    for _ in 0..5 {
        thread::sleep(ms(400));
        m.in_progress().expect("in progress");
        env.js.client().flush().expect("flush");
    }
    let info = consumer.info().expect("info");
    assert_eq!(info.num_redelivered, 0, "in_progress kept the message from being redelivered");
    assert_eq!(info.num_ack_pending, 1);
    assert!(consumer.fetch(FetchConfig::no_wait(1)).expect("fetch").is_empty(), "nothing redelivered");
    m.ack().expect("ack after progress");
    eventually("acked", || consumer.info().expect("info").num_ack_pending == 0);
    assert_eq!(consumer.info().expect("info").num_redelivered, 0);
}

fn ack_wait_expiry_redelivers(env: &Env) {
    env.create(&env.memory_stream("AWAIT", &["aw.>"]));
    env.publish("aw.x", "forgotten");
    pull_consumer(env, "AWAIT", "AW", secs(1));
    let consumer = env.js.pull_consumer("AWAIT", "AW");
    let first = consumer.next(secs(5)).expect("next").expect("a message");
    let delivered_at = Instant::now();
    drop(first); // never acked
    let mut again = consumer.next(secs(5)).expect("next").expect("redelivered after ack wait");
    assert!(delivered_at.elapsed() >= ms(800), "not before the ack wait: {:?}", delivered_at.elapsed());
    let meta = again.metadata().expect("metadata");
    assert_eq!((meta.stream_sequence, meta.consumer_sequence, meta.delivered), (1, 2, 2));
    again.ack().expect("ack");
    eventually("acked", || consumer.info().expect("info").num_ack_pending == 0);
    assert_eq!(consumer.info().expect("info").num_redelivered, 0, "nothing left redelivered and unacked");
}

// ---------------------------------------------------------------------------------------------------------
// Key/Value
// ---------------------------------------------------------------------------------------------------------

fn kv_put_get_entry_at(env: &Env) {
    let kv = env
        .js
        .create_key_value(&KvConfig { history: 5, storage: StorageType::Memory, ..KvConfig::new("kv_basic") })
        .expect("create bucket");
    assert_eq!(kv.bucket(), "kv_basic");
    let info = env.js.stream_info("KV_kv_basic").expect("the stream behind the bucket");
    assert_eq!(info.config.max_msgs_per_subject, 5);
    assert!(info.config.allow_direct);

    let r1 = kv.put("color", "blue").expect("put");
    let r2 = kv.put("size", "L").expect("put");
    let r3 = kv.put("color", "green").expect("put");
    assert_eq!((r1, r2, r3), (1, 2, 3), "revisions are stream sequences");
    let e = kv.get("color").expect("get").expect("color has a value");
    assert_eq!((e.key.as_str(), &e.value[..], e.revision), ("color", &b"green"[..], 3));
    assert_eq!(e.bucket, "kv_basic");
    assert_eq!(e.operation, Operation::Put);
    assert!(kv.get("nothing").expect("get of a missing key").is_none());
    assert!(kv.entry("nothing").expect("entry of a missing key").is_none());

    let old = kv.entry_at("color", r1).expect("entry_at").expect("revision 1 of color");
    assert_eq!(&old.value[..], b"blue");
    assert!(kv.entry_at("color", r2).expect("entry_at").is_none(), "revision 2 belongs to another key");
    assert!(kv.entry_at("color", 99).expect("entry_at").is_none(), "no such revision");

    // Keys with dots, slashes and equals signs are fine.
    kv.put("a.b/c=d", "x").expect("put a dotted key");
    assert_eq!(&kv.get("a.b/c=d").expect("get").expect("value").value[..], b"x");
    // An empty value is a value, not a marker.
    kv.put("empty", "").expect("put empty");
    let e = kv.get("empty").expect("get").expect("an empty value is still a value");
    assert!(e.value.is_empty());
}

fn kv_create_and_update(env: &Env) {
    let kv = env
        .js
        .create_key_value(&KvConfig { history: 5, storage: StorageType::Memory, ..KvConfig::new("kv_cas") })
        .expect("create bucket");
    let r1 = kv.create("k", "v1").expect("create on a new key");
    let err = kv.create("k", "v2").unwrap_err();
    assert_eq!(err.err_code(), Some(10071), "create on an existing key: {err:?}");
    assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::WrongLastSequence));
    assert_eq!(&kv.get("k").expect("get").expect("value").value[..], b"v1");

    let r2 = kv.update("k", "v2", r1).expect("update at the latest revision");
    assert!(r2 > r1);
    assert_eq!(api_err(kv.update("k", "stale", r1)), 10071, "update with a stale revision");
    assert_eq!(&kv.get("k").expect("get").expect("value").value[..], b"v2");
    assert_eq!(api_err(kv.update("never", "x", 1)), 10071, "update of a key that never existed at that revision");

    // After a delete, create succeeds again: its revision follows the marker.
    let marker = kv.delete("k").expect("delete");
    assert!(marker > r2);
    let r3 = kv.create("k", "v3").expect("create on a deleted key");
    assert!(r3 > marker, "{r3} after the marker {marker}");
    assert_eq!(&kv.get("k").expect("get").expect("value").value[..], b"v3");

    // And after a purge.
    let purged = kv.purge("k").expect("purge");
    let r4 = kv.create("k", "v4").expect("create on a purged key");
    assert!(r4 > purged);
    assert_eq!(kv.get("k").expect("get").expect("value").revision, r4);
}

fn kv_delete_and_purge(env: &Env) {
    let kv = env
        .js
        .create_key_value(&KvConfig { history: 5, storage: StorageType::Memory, ..KvConfig::new("kv_del") })
        .expect("create bucket");
    kv.put("gone", "1").expect("put");
    kv.put("gone", "2").expect("put");
    let marker = kv.delete("gone").expect("delete");
    assert!(kv.get("gone").expect("get").is_none(), "a deleted key has no value");
    let entry = kv.entry("gone").expect("entry").expect("the delete marker");
    assert_eq!((entry.operation, entry.revision), (Operation::Delete, marker));
    assert!(entry.value.is_empty());
    assert_eq!(kv.history("gone").expect("history").len(), 3, "a delete keeps the history");

    kv.put("wiped", "1").expect("put");
    kv.put("wiped", "2").expect("put");
    let marker = kv.purge("wiped").expect("purge");
    assert!(kv.get("wiped").expect("get").is_none(), "a purged key has no value");
    let entry = kv.entry("wiped").expect("entry").expect("the purge marker");
    assert_eq!((entry.operation, entry.revision), (Operation::Purge, marker));
    let history = kv.history("wiped").expect("history");
    assert_eq!(history.len(), 1, "a purge drops the history: {history:?}");
    assert_eq!(history[0].operation, Operation::Purge);

    // Deleting a key that never existed writes a marker all the same.
    kv.delete("never").expect("delete of a missing key");
    assert!(kv.get("never").expect("get").is_none());
}

fn kv_history_keys_status(env: &Env) {
    let kv = env.js.create_key_value(&KvConfig { history: 5, ..KvConfig::new("kv_hist") }).expect("create bucket");
    assert!(kv.keys().expect("keys of an empty bucket").is_empty());
    assert!(kv.history("nothing").expect("history of a missing key").is_empty());

    for i in 1..=8 {
        kv.put("h", format!("v{i}")).expect("put");
    }
    let history = kv.history("h").expect("history");
    let values: Vec<_> = history.iter().map(|e| String::from_utf8_lossy(&e.value).into_owned()).collect();
    assert_eq!(values, ["v4", "v5", "v6", "v7", "v8"], "capped at history 5, oldest first");
    assert!(history.windows(2).all(|w| w[0].revision < w[1].revision));

    kv.put("a", "1").expect("put");
    kv.put("b", "1").expect("put");
    kv.put("c", "1").expect("put");
    kv.delete("b").expect("delete");
    kv.put("d", "1").expect("put");
    kv.purge("d").expect("purge");
    assert_eq!(kv.keys().expect("keys"), ["a", "c", "h"], "deleted and purged keys left out");

    let status = kv.status().expect("status");
    assert_eq!(status.bucket, "kv_hist");
    assert_eq!(status.history, 5);
    // h: 5, a: 1, b: 2 (value + marker), c: 1, d: 1 (the purge marker only).
    assert_eq!(status.values, 10);
    assert!(status.bytes > 0);
    assert!(!status.is_compressed);
    assert_eq!(status.info.config.storage, StorageType::File);
}

fn kv_validation_bind_and_delete(env: &Env) {
    let kv = env
        .js
        .create_key_value(&KvConfig { storage: StorageType::Memory, ..KvConfig::new("kv_valid") })
        .expect("create bucket");
    // Keys.
    for bad in ["", ".a", "a.", "a..b", "a b", "a*", "a>", "ä"] {
        assert!(matches!(js_err(kv.put(bad, "x")), JetStreamError::InvalidKey { .. }), "put {bad:?}");
        assert!(matches!(js_err(kv.get(bad)), JetStreamError::InvalidKey { .. }), "get {bad:?}");
    }
    assert!(matches!(js_err(kv.put("_kv.reserved", "x")), JetStreamError::InvalidKey { .. }));
    assert!(matches!(js_err(kv.create("_kvx", "x")), JetStreamError::InvalidKey { .. }));
    assert!(matches!(js_err(kv.delete("a..b")), JetStreamError::InvalidKey { .. }));
    assert!(matches!(js_err(kv.history("*")), JetStreamError::InvalidKey { .. }));
    assert_eq!(env.js.stream_info("KV_kv_valid").expect("info").state.messages, 0, "nothing was written");

    // Buckets.
    for bad in ["", "a.b", "a b", "a*", "a/b"] {
        assert!(
            matches!(js_err(env.js.create_key_value(&KvConfig::new(bad))), JetStreamError::InvalidBucket { .. }),
            "create {bad:?}"
        );
        assert!(matches!(js_err(env.js.key_value(bad)), JetStreamError::InvalidBucket { .. }), "bind {bad:?}");
    }
    let too_long = KvConfig { history: 65, ..KvConfig::new("kv_hist65") };
    assert!(matches!(js_err(env.js.create_key_value(&too_long)), JetStreamError::InvalidConfig { .. }));

    // Values over the bucket's max_value_size are refused by the server.
    let small = env
        .js
        .create_key_value(&KvConfig { max_value_size: 8, storage: StorageType::Memory, ..KvConfig::new("kv_small") })
        .expect("create bucket");
    small.put("k", "12345678").expect("a value of max_value_size");
    let err = small.put("k", "123456789").unwrap_err();
    assert_eq!(err.err_code(), Some(10054), "{err:?}");
    assert_eq!(err.jetstream().and_then(JetStreamError::error_code), Some(ErrorCode::MessageTooLarge));
    assert!(env.js.delete_key_value("kv_small").expect("delete bucket"));

    // Binding.
    let err = env.js.key_value("kv_missing").unwrap_err();
    assert_eq!(err.err_code(), Some(10059), "{err:?}");
    let bound = env.js.key_value("kv_valid").expect("bind");
    bound.put("k", "v").expect("put through the bound handle");
    assert_eq!(&kv.get("k").expect("get").expect("value").value[..], b"v");
    // A stream named like a bucket that keeps no per-subject history is not a bucket.
    env.create(&env.memory_stream("KV_not_a_bucket", &["plain.>"]));
    assert!(matches!(js_err(env.js.key_value("not_a_bucket")), JetStreamError::InvalidConfig { .. }));

    // Names.
    env.js.create_key_value(&KvConfig { storage: StorageType::Memory, ..KvConfig::new("kv_other") }).expect("create");
    let mut names = env.js.key_value_names().expect("bucket names");
    names.sort();
    assert_eq!(names, ["kv_other", "kv_valid"]);

    // Creating a bucket again with the same config binds to it.
    env.js
        .create_key_value(&KvConfig { storage: StorageType::Memory, ..KvConfig::new("kv_other") })
        .expect("idempotent bucket create");

    // Delete.
    assert!(env.js.delete_key_value("kv_other").expect("delete bucket"));
    assert_eq!(api_err(env.js.key_value("kv_other")), 10059);
    assert_eq!(api_err(env.js.delete_key_value("kv_other")), 10059);
    assert_eq!(env.js.key_value_names().expect("bucket names"), ["kv_valid"]);
    assert!(matches!(js_err(env.js.delete_key_value("a.b")), JetStreamError::InvalidBucket { .. }));
}

// ---------------------------------------------------------------------------------------------------------
// Payloads near max_payload
// ---------------------------------------------------------------------------------------------------------

fn large_payload_round_trip(version: ServerVersion) {
    const MAX_PAYLOAD: u64 = 1024 * 1024;
    let env = Env::start_with(NatsServer::builder().version(version).max_payload(MAX_PAYLOAD));
    assert_eq!(env.js.client().max_payload(), MAX_PAYLOAD as usize);
    env.create(&StreamConfig { allow_direct: true, ..env.memory_stream("BIG", &["big.>"]) });
    let size = (MAX_PAYLOAD - 1024) as usize;
    let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();

    let ack = env.js.publish("big.one", payload.clone()).expect("publish ~1 MiB");
    assert_eq!(ack.seq, 1);
    // STREAM.MSG.GET answers with base64 inside JSON: a reply larger than max_payload.
    let stored = env.js.get_message("BIG", 1).expect("get");
    assert_eq!(stored.data.len(), size);
    assert!(stored.data[..] == payload[..], "the payload round-trips through msg get");
    let direct = env.js.direct_get("BIG", &MsgGetRequest::seq(1)).expect("direct get");
    assert!(direct.payload[..] == payload[..], "the payload round-trips through direct get");

    pull_consumer(&env, "BIG", "BIGC", Duration::ZERO);
    let m = env.js.pull_consumer("BIG", "BIGC").next(secs(5)).expect("next").expect("the big message");
    assert!(m.payload()[..] == payload[..], "the payload round-trips through a pull");

    // Over max_payload: refused by the client, nothing stored.
    let too_big = vec![0u8; MAX_PAYLOAD as usize + 1];
    let err = env.js.publish("big.two", too_big).unwrap_err();
    assert!(matches!(err, Error::Client(_)), "{err:?}");
    assert_eq!(env.js.stream_info("BIG").expect("info").state.messages, 1);
}

#[test]
fn large_payload_round_trip_current() {
    large_payload_round_trip(ServerVersion::Current);
}

#[test]
fn large_payload_round_trip_v2_9() {
    large_payload_round_trip(ServerVersion::Old);
}

// ---------------------------------------------------------------------------------------------------------
// JetStream not enabled
// ---------------------------------------------------------------------------------------------------------

fn jetstream_not_enabled(version: ServerVersion) {
    let server = NatsServer::builder().version(version).start().expect("start nats-server without JetStream");
    let js = Context::new(nats_blocking::connect(&server.url()).expect("connect"));
    let start = Instant::now();
    let e = js_err(js.account_info());
    assert_eq!(e, JetStreamError::NoResponders, "nobody serves the API");
    assert!(start.elapsed() < secs(2), "at once, not after the timeout: {:?}", start.elapsed());
    assert_eq!(js_err(js.stream_info("ANY")), JetStreamError::NoResponders);
    let start = Instant::now();
    assert_eq!(js_err(js.publish("any.subject", "x")), JetStreamError::NoResponders);
    assert!(start.elapsed() < secs(5), "retries are bounded: {:?}", start.elapsed());
    assert_eq!(js_err(js.create_key_value(&KvConfig::new("kv"))), JetStreamError::NoResponders);
}

#[test]
fn jetstream_not_enabled_current() {
    jetstream_not_enabled(ServerVersion::Current);
}

#[test]
fn jetstream_not_enabled_v2_9() {
    jetstream_not_enabled(ServerVersion::Old);
}
