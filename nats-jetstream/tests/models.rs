//! The serde models against hand-written server replies: lenient in (unknown fields and enum values, `null`s),
//! minimal out (requests carry only what was set), and the reply classifier on each kind of reply.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use nats_jetstream::error::{
    decode_message_reply, decode_pub_ack, decode_reply, status_error, ErrorCode, JetStreamError,
};
use nats_jetstream::model::*;
use nats_proto::{HeaderBlock, StatusCode};
use proptest::prelude::*;
use serde_json::{json, Value};

/// 2024-05-01T10:00:00Z.
const T0: u64 = 1_714_557_600;

fn at(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

const STREAM_CREATE_REPLY: &str = r#"{
  "type": "io.nats.jetstream.api.v1.stream_create_response",
  "config": {
    "name": "ORDERS",
    "subjects": ["orders.>"],
    "retention": "limits",
    "max_consumers": -1,
    "max_msgs": -1,
    "max_bytes": 1048576,
    "max_age": 86400000000000,
    "max_msgs_per_subject": -1,
    "max_msg_size": -1,
    "discard": "old",
    "storage": "file",
    "num_replicas": 3,
    "duplicate_window": 120000000000,
    "compression": "s2",
    "allow_direct": true,
    "mirror_direct": false,
    "sealed": false,
    "deny_delete": false,
    "deny_purge": false,
    "allow_rollup_hdrs": false,
    "consumer_limits": {},
    "metadata": {"_nats.ver": "2.15.0-dev", "_nats.level": "5", "owner": "shop"},
    "placement": {"cluster": "east", "tags": null},
    "sources": null,
    "template_owner": "ignored by us",
    "a_field_from_2030": {"nested": [1, 2, 3]}
  },
  "created": "2024-05-01T10:00:00.123456789Z",
  "ts": "2024-05-01T12:00:00+02:00",
  "state": {
    "messages": 0,
    "bytes": 0,
    "first_seq": 0,
    "first_ts": "0001-01-01T00:00:00Z",
    "last_seq": 0,
    "last_ts": "0001-01-01T00:00:00Z",
    "consumer_count": 0,
    "deleted": null
  },
  "cluster": {
    "name": "east",
    "leader": "n1",
    "leader_since": "2024-05-01T10:00:01Z",
    "replicas": [
      {"name": "n2", "current": true, "active": 1500000, "peer": "abc"},
      {"name": "n3", "current": false, "offline": true, "active": 0, "lag": 7}
    ],
    "raft_group": "S-R3F-xyz",
    "system_account": false
  },
  "did_create": true
}"#;

#[test]
fn stream_create_reply_reads_leniently() {
    let reply: StreamCreateResponse = decode_reply(STREAM_CREATE_REPLY.as_bytes()).unwrap();
    assert_eq!(reply.did_create, Some(true));
    let info = reply.info;
    let c = &info.config;
    assert_eq!((c.name.as_str(), c.subjects.as_slice()), ("ORDERS", &["orders.>".to_owned()][..]));
    assert_eq!((c.max_msgs, c.max_bytes, c.max_msg_size, c.num_replicas), (-1, 1_048_576, -1, 3));
    assert_eq!(c.max_age, Duration::from_secs(86_400));
    assert_eq!(c.duplicate_window, Duration::from_secs(120));
    assert_eq!(
        (&c.retention, &c.storage, &c.discard),
        (&RetentionPolicy::Limits, &StorageType::File, &DiscardPolicy::Old)
    );
    assert_eq!(c.compression, Compression::S2);
    assert!(c.allow_direct && !c.deny_delete);
    assert_eq!(c.metadata.get("owner").map(String::as_str), Some("shop"));
    assert_eq!(c.placement, Some(Placement { cluster: "east".into(), ..Placement::default() }));
    assert!(c.sources.is_empty());
    assert_eq!(c.consumer_limits, Some(ConsumerLimits::default()));
    assert_eq!(info.created, Some(at(T0, 123_456_789)));
    assert_eq!(info.timestamp, Some(at(T0, 0)));
    // Go's zero time is "no time".
    assert_eq!((info.state.first_time, info.state.last_time), (None, None));
    assert!(info.state.deleted.is_empty());
    let cluster = info.cluster.unwrap();
    assert_eq!((cluster.leader.as_str(), cluster.leader_since), ("n1", Some(at(T0 + 1, 0))));
    assert_eq!(cluster.replicas[0].active, Duration::from_micros(1500));
    assert!(cluster.replicas[1].offline && cluster.replicas[1].lag == 7);

    // An older server (no did_create) still decodes.
    let mut old: Value = serde_json::from_str(STREAM_CREATE_REPLY).unwrap();
    old.as_object_mut().unwrap().remove("did_create");
    let reply: StreamCreateResponse = decode_reply(old.to_string().as_bytes()).unwrap();
    assert_eq!((reply.did_create, reply.info.config.name.as_str()), (None, "ORDERS"));
}

#[test]
fn echoing_a_config_drops_what_we_do_not_know() {
    let info: StreamInfo = decode_reply(STREAM_CREATE_REPLY.as_bytes()).unwrap();
    let out = to_json(&info.config);
    let keys: Vec<&str> = out.as_object().unwrap().keys().map(String::as_str).collect();
    assert!(!keys.contains(&"template_owner") && !keys.contains(&"a_field_from_2030"), "{keys:?}");
    // Defaults the server echoed (false flags, limits retention, old discard) are not sent back either.
    for absent in ["sealed", "deny_delete", "retention", "discard", "storage", "mirror_direct", "sources"] {
        assert!(!keys.contains(&absent), "{absent} in {keys:?}");
    }
    assert_eq!(out["max_age"], json!(86_400_000_000_000u64));
    assert_eq!(out["compression"], "s2");
    // And it reads back to the same config.
    let back: StreamConfig = serde_json::from_value(out).unwrap();
    assert_eq!(back, info.config);
}

#[test]
fn unknown_enum_values_survive_a_round_trip() {
    let body = br#"{"config":{"name":"S","retention":"timeseries","storage":"nvme","discard":"random",
        "compression":"zstd","persist_mode":"eventual"},"state":{}}"#;
    let info: StreamInfo = decode_reply(body).unwrap();
    assert_eq!(info.config.retention, RetentionPolicy::Unknown("timeseries".into()));
    assert_eq!(info.config.storage, StorageType::Unknown("nvme".into()));
    assert_eq!(info.config.discard.as_str(), "random");
    assert_eq!(info.config.compression.to_string(), "zstd");
    assert_eq!(info.config.persist_mode, Some(PersistMode::Unknown("eventual".into())));
    let out = to_json(&info.config);
    assert_eq!(
        (&out["retention"], &out["storage"], &out["discard"], &out["compression"], &out["persist_mode"]),
        (&json!("timeseries"), &json!("nvme"), &json!("random"), &json!("zstd"), &json!("eventual"))
    );
    // null reads as the default.
    let info: StreamInfo = decode_reply(br#"{"config":{"name":"S","retention":null,"storage":null}}"#).unwrap();
    assert_eq!((info.config.retention, info.config.storage), (RetentionPolicy::Limits, StorageType::File));
}

#[test]
fn stream_config_minimal_out() {
    assert_eq!(to_json(&StreamConfig::new("S")), json!({"name": "S"}));
    assert_eq!(to_json(&StreamConfig::default()), json!({"name": ""}));
    let full = StreamConfig {
        description: "d".into(),
        subjects: vec!["a.>".into()],
        subject_transform: Some(SubjectTransform { src: "a.>".into(), dest: "b.>".into() }),
        retention: RetentionPolicy::WorkQueue,
        max_consumers: 10,
        max_msgs: 100,
        max_msgs_per_subject: 5,
        max_bytes: 1 << 20,
        max_age: Duration::from_secs(3600),
        max_msg_size: 1024,
        storage: StorageType::Memory,
        first_seq: 42,
        num_replicas: 3,
        no_ack: true,
        discard: DiscardPolicy::New,
        discard_new_per_subject: true,
        duplicate_window: Duration::from_secs(30),
        placement: Some(Placement { cluster: "c".into(), tags: vec!["ssd".into()], preferred: String::new() }),
        sources: vec![StreamSource {
            name: "O".into(),
            opt_start_time: Some(at(T0, 500_000_000)),
            external: Some(ExternalStream { api: "$JS.hub.API".into(), deliver: String::new() }),
            ..StreamSource::default()
        }],
        deny_purge: true,
        allow_rollup_hdrs: true,
        republish: Some(Republish { src: String::new(), dest: "re.>".into(), headers_only: true }),
        metadata: [("k".to_owned(), "v".to_owned())].into(),
        consumer_limits: Some(ConsumerLimits { inactive_threshold: Duration::from_secs(5), max_ack_pending: 0 }),
        allow_msg_ttl: true,
        subject_delete_marker_ttl: Duration::from_secs(60),
        ..StreamConfig::new("S")
    };
    assert_eq!(
        to_json(&full),
        json!({
            "name": "S", "description": "d", "subjects": ["a.>"],
            "subject_transform": {"src": "a.>", "dest": "b.>"},
            "retention": "workqueue", "max_consumers": 10, "max_msgs": 100, "max_msgs_per_subject": 5,
            "max_bytes": 1048576, "max_age": 3_600_000_000_000u64, "max_msg_size": 1024, "storage": "memory",
            "first_seq": 42, "num_replicas": 3, "no_ack": true, "discard": "new", "discard_new_per_subject": true,
            "duplicate_window": 30_000_000_000u64,
            "placement": {"cluster": "c", "tags": ["ssd"]},
            "sources": [{"name": "O", "opt_start_time": "2024-05-01T10:00:00.5Z", "external": {"api": "$JS.hub.API"}}],
            "deny_purge": true, "allow_rollup_hdrs": true,
            "republish": {"dest": "re.>", "headers_only": true},
            "metadata": {"k": "v"},
            "consumer_limits": {"inactive_threshold": 5_000_000_000u64},
            "allow_msg_ttl": true, "subject_delete_marker_ttl": 60_000_000_000u64
        })
    );
    let back: StreamConfig = serde_json::from_value(to_json(&full)).unwrap();
    assert_eq!(back, full);
}

#[test]
fn stream_info_with_subjects_and_sources() {
    let body = br#"{"type":"io.nats.jetstream.api.v1.stream_info_response","total":3,"offset":0,"limit":100000,
      "config":{"name":"AGG","sources":[{"name":"A","filter_subject":"a.>","subject_transforms":null}],"storage":"memory"},
      "created":"2024-05-01T10:00:00Z",
      "state":{"messages":5,"bytes":420,"first_seq":3,"first_ts":"2024-05-01T10:00:00.000000001Z","last_seq":9,
        "last_ts":"2024-05-01T10:05:00Z","num_subjects":3,"subjects":{"a.1":2,"a.2":2,"a.3":1},"num_deleted":2,
        "deleted":[4,6],"lost":{"msgs":null,"bytes":0},"consumer_count":1},
      "sources":[{"name":"A","lag":0,"active":-1,"filter_subject":"a.>",
        "error":{"code":503,"description":"source unavailable"}}],
      "alternates":[{"name":"AGG","cluster":"east","domain":"hub"}]}"#;
    let info: StreamInfo = decode_reply(body).unwrap();
    assert_eq!((info.total, info.offset, info.limit), (3, 0, 100_000));
    assert_eq!(info.state.subjects.len(), 3);
    assert_eq!(info.state.subjects["a.1"], 2);
    assert_eq!(info.state.deleted, [4, 6]);
    assert_eq!(info.state.first_time, Some(at(T0, 1)));
    assert_eq!(info.state.last_time, Some(at(T0 + 300, 0)));
    assert_eq!(info.state.lost, Some(LostStreamData::default()));
    assert_eq!(info.config.sources[0].filter_subject, "a.>");
    let source = &info.sources[0];
    assert_eq!(source.active, None); // -1 = never
    let error = source.error.as_ref().unwrap();
    assert_eq!((error.code, error.err_code), (503, None));
    assert_eq!(info.alternates[0].domain, "hub");
    // Round trip of the whole info.
    let back: StreamInfo = serde_json::from_value(to_json(&info)).unwrap();
    assert_eq!(back, info);
}

#[test]
fn stream_requests() {
    assert_eq!(to_json(&StreamInfoRequest::default()), json!({}));
    let req = StreamInfoRequest { subjects_filter: ">".into(), offset: 1000, deleted_details: true };
    assert_eq!(to_json(&req), json!({"deleted_details": true, "subjects_filter": ">", "offset": 1000}));
    assert_eq!(to_json(&PurgeRequest::default()), json!({}));
    let purge = PurgeRequest { filter: "a.*".into(), keep: 5, ..PurgeRequest::default() };
    assert_eq!(to_json(&purge), json!({"filter": "a.*", "keep": 5}));
    assert_eq!(purge.check(), Ok(()));
    assert!(matches!(
        PurgeRequest { seq: 3, keep: 5, ..PurgeRequest::default() }.check(),
        Err(JetStreamError::InvalidConfig { .. })
    ));
    assert_eq!(to_json(&PurgeRequest { seq: 9, ..PurgeRequest::default() }), json!({"seq": 9}));
    let purged: PurgeResponse =
        decode_reply(br#"{"type":"io.nats.jetstream.api.v1.stream_purge_response","success":true,"purged":12}"#)
            .unwrap();
    assert_eq!((purged.success, purged.purged), (true, 12));
    let deleted: SuccessResponse =
        decode_reply(br#"{"type":"io.nats.jetstream.api.v1.stream_delete_response","success":true}"#).unwrap();
    assert!(deleted.success);
    let err = decode_reply::<SuccessResponse>(
        br#"{"type":"io.nats.jetstream.api.v1.stream_delete_response","error":{"code":404,"err_code":10059,"description":"stream not found"}}"#,
    );
    assert_eq!(err.unwrap_err().error_code(), Some(ErrorCode::StreamNotFound));
}

#[test]
fn consumer_config_minimal_out() {
    assert_eq!(to_json(&ConsumerConfig::default()), json!({"ack_policy": "explicit"}));
    let pull = ConsumerConfig {
        durable_name: "worker".into(),
        filter_subject: "orders.new".into(),
        ack_wait: Duration::from_secs(10),
        max_deliver: 5,
        backoff: vec![Duration::from_secs(1), Duration::from_secs(5)],
        max_ack_pending: 100,
        ..ConsumerConfig::named("worker")
    };
    assert_eq!(
        to_json(&pull),
        json!({"name": "worker", "durable_name": "worker", "ack_policy": "explicit", "ack_wait": 10_000_000_000u64,
               "max_deliver": 5, "backoff": [1_000_000_000u64, 5_000_000_000u64], "filter_subject": "orders.new",
               "max_ack_pending": 100})
    );
    assert_eq!(pull.single_filter(), Some("orders.new"));
    let ordered = ConsumerConfig {
        ack_policy: AckPolicy::None,
        deliver_policy: DeliverPolicy::ByStartSequence,
        opt_start_seq: 43,
        mem_storage: true,
        num_replicas: 1,
        inactive_threshold: Duration::from_secs(300),
        filter_subjects: vec!["a".into(), "b".into()],
        headers_only: true,
        ..ConsumerConfig::named("x_1")
    };
    assert_eq!(
        to_json(&ordered),
        json!({"name": "x_1", "deliver_policy": "by_start_sequence", "opt_start_seq": 43, "ack_policy": "none",
               "filter_subjects": ["a", "b"], "headers_only": true, "inactive_threshold": 300_000_000_000u64,
               "num_replicas": 1, "mem_storage": true})
    );
    assert_eq!(ordered.single_filter(), None);
    let by_time = ConsumerConfig {
        deliver_policy: DeliverPolicy::ByStartTime,
        opt_start_time: Some(at(T0, 0)),
        priority_groups: vec!["jobs".into()],
        priority_policy: PriorityPolicy::PinnedClient,
        priority_timeout: Duration::from_secs(120),
        ..ConsumerConfig::default()
    };
    assert_eq!(
        to_json(&by_time),
        json!({"deliver_policy": "by_start_time", "opt_start_time": "2024-05-01T10:00:00Z", "ack_policy": "explicit",
               "priority_groups": ["jobs"], "priority_policy": "pinned_client", "priority_timeout": 120_000_000_000u64})
    );
}

#[test]
fn consumer_create_request_actions() {
    let config = ConsumerConfig::named("c");
    let req =
        |action| CreateConsumerRequest { stream_name: "S".into(), config: config.clone(), action, pedantic: false };
    assert_eq!(
        to_json(&req(CreateAction::CreateOrUpdate)),
        json!({"stream_name": "S", "config": {"name": "c", "ack_policy": "explicit"}})
    );
    assert_eq!(to_json(&req(CreateAction::Create))["action"], "create");
    assert_eq!(to_json(&req(CreateAction::Update))["action"], "update");
    let back: CreateConsumerRequest = serde_json::from_value(to_json(&req(CreateAction::Update))).unwrap();
    assert_eq!(back.action, CreateAction::Update);
    let upsert: CreateConsumerRequest = serde_json::from_str(r#"{"stream_name":"S","config":{},"action":""}"#).unwrap();
    assert_eq!(upsert.action, CreateAction::CreateOrUpdate);
}

const CONSUMER_INFO_REPLY: &str = r#"{
  "type": "io.nats.jetstream.api.v1.consumer_info_response",
  "stream_name": "ORDERS",
  "name": "worker",
  "created": "2024-05-01T10:00:00.5Z",
  "ts": "2024-05-01T10:01:00Z",
  "config": {
    "name": "worker",
    "durable_name": "worker",
    "deliver_policy": "by_magic",
    "ack_policy": "explicit",
    "ack_wait": 30000000000,
    "max_deliver": -1,
    "backoff": null,
    "filter_subject": "orders.new",
    "filter_subjects": null,
    "replay_policy": "instant",
    "max_waiting": 512,
    "max_ack_pending": 1000,
    "inactive_threshold": 0,
    "num_replicas": 0,
    "metadata": null,
    "priority_policy": "none",
    "direct": false,
    "a_new_knob": 7
  },
  "delivered": {"consumer_seq": 10, "stream_seq": 120, "last_active": "2024-05-01T10:00:59.999Z"},
  "ack_floor": {"consumer_seq": 8, "stream_seq": 118},
  "num_ack_pending": 2,
  "num_redelivered": 1,
  "num_waiting": 3,
  "num_pending": 4000,
  "cluster": {"leader": "n1"},
  "paused": true,
  "pause_remaining": 5000000000,
  "priority_groups": [{"group": "jobs", "pinned_client_id": "pin", "pinned_ts": "2024-05-01T10:00:30Z"}]
}"#;

#[test]
fn consumer_info_reads_leniently() {
    let info: ConsumerInfo = decode_reply(CONSUMER_INFO_REPLY.as_bytes()).unwrap();
    assert_eq!((info.stream_name.as_str(), info.name.as_str()), ("ORDERS", "worker"));
    assert_eq!(info.config.deliver_policy, DeliverPolicy::Unknown("by_magic".into()));
    assert_eq!(info.config.ack_policy, AckPolicy::Explicit);
    assert_eq!(info.config.ack_wait, Duration::from_secs(30));
    assert!(
        info.config.backoff.is_empty() && info.config.filter_subjects.is_empty() && info.config.metadata.is_empty()
    );
    assert_eq!(info.delivered.stream_seq, 120);
    assert_eq!(info.delivered.last_active, Some(at(T0 + 59, 999_000_000)));
    assert_eq!((info.ack_floor.consumer_seq, info.ack_floor.last_active), (8, None));
    assert_eq!((info.num_ack_pending, info.num_redelivered, info.num_waiting, info.num_pending), (2, 1, 3, 4000));
    assert_eq!(info.created, Some(at(T0, 500_000_000)));
    assert!(info.paused);
    assert_eq!(info.pause_remaining, Some(Duration::from_secs(5)));
    assert_eq!(info.priority_groups[0].pinned_time, Some(at(T0 + 30, 0)));
    assert_eq!(info.cluster.map(|c| c.leader), Some("n1".to_owned()));
    // The unknown deliver policy is written back as received.
    assert_eq!(to_json(&info.config)["deliver_policy"], "by_magic");
}

#[test]
fn absent_ack_policy_reads_as_the_servers_default() {
    let info: ConsumerInfo = decode_reply(br#"{"stream_name":"S","name":"c","config":{}}"#).unwrap();
    assert_eq!(info.config.ack_policy, AckPolicy::None);
    assert_eq!(ConsumerConfig::default().ack_policy, AckPolicy::Explicit);
}

#[test]
fn consumer_errors_are_typed() {
    let cases = [
        (r#"{"code":404,"err_code":10059,"description":"stream not found"}"#, ErrorCode::StreamNotFound),
        (r#"{"code":404,"err_code":10014,"description":"consumer not found"}"#, ErrorCode::ConsumerNotFound),
        (r#"{"code":400,"err_code":10148,"description":"consumer already exists"}"#, ErrorCode::ConsumerAlreadyExists),
        (r#"{"code":400,"err_code":10149,"description":"consumer does not exist"}"#, ErrorCode::ConsumerDoesNotExist),
    ];
    for (error, kind) in cases {
        let body = format!(r#"{{"type":"io.nats.jetstream.api.v1.consumer_create_response","error":{error}}}"#);
        assert_eq!(decode_reply::<ConsumerInfo>(body.as_bytes()).unwrap_err().error_code(), Some(kind));
    }
}

#[test]
fn pause_and_unpin_bodies() {
    assert_eq!(to_json(&ConsumerPauseRequest::default()), json!({}));
    assert_eq!(
        to_json(&ConsumerPauseRequest { pause_until: Some(at(T0, 0)) }),
        json!({"pause_until": "2024-05-01T10:00:00Z"})
    );
    let paused: ConsumerPauseResponse =
        decode_reply(br#"{"paused":true,"pause_until":"2024-05-01T10:00:00Z","pause_remaining":1000}"#).unwrap();
    assert_eq!(
        (paused.paused, paused.pause_until, paused.pause_remaining),
        (true, Some(at(T0, 0)), Some(Duration::from_micros(1)))
    );
    assert_eq!(to_json(&ConsumerUnpinRequest { group: "g".into() }), json!({"group": "g"}));
}

#[test]
fn pull_request_bodies() {
    let one = PullRequest { batch: 1, ..PullRequest::default() };
    assert_eq!(one.to_json(), br#"{"batch":1}"#);
    let fetch = PullRequest {
        batch: 500,
        expires: Duration::from_secs(30),
        idle_heartbeat: Duration::from_secs(15),
        max_bytes: 1 << 20,
        ..PullRequest::default()
    };
    assert_eq!(
        to_json(&fetch),
        json!({"batch": 500, "expires": 30_000_000_000u64, "max_bytes": 1048576, "idle_heartbeat": 15_000_000_000u64})
    );
    let no_wait = PullRequest { batch: 10, no_wait: true, ..PullRequest::default() };
    assert_eq!(to_json(&no_wait), json!({"batch": 10, "no_wait": true}));
    let grouped = PullRequest {
        batch: 1,
        group: "jobs".into(),
        min_pending: 10,
        id: "pin".into(),
        priority: 2,
        ..PullRequest::default()
    };
    assert_eq!(to_json(&grouped), json!({"batch": 1, "group": "jobs", "min_pending": 10, "id": "pin", "priority": 2}));
    let back: PullRequest = serde_json::from_slice(&fetch.to_json()).unwrap();
    assert_eq!(back, fetch);
}

#[test]
fn account_info() {
    let body = br#"{"type":"io.nats.jetstream.api.v1.account_info_response",
      "memory":1024,"storage":2048,"reserved_memory":0,"reserved_storage":1000000,"streams":2,"consumers":3,
      "limits":{"max_memory":-1,"max_storage":-1,"max_streams":-1,"max_consumers":-1,"max_ack_pending":-1,
        "memory_max_stream_bytes":-1,"storage_max_stream_bytes":-1,"max_bytes_required":false},
      "domain":"hub",
      "api":{"level":4,"total":99,"errors":2,"inflight":0,"unknown_counter":1},
      "tiers":{"R1":{"memory":1024,"storage":2048,"streams":2,"consumers":3,
        "limits":{"max_memory":1000,"max_storage":2000,"max_streams":10,"max_consumers":100}}}}"#;
    let info: AccountInfo = decode_reply(body).unwrap();
    assert_eq!((info.usage.memory, info.usage.storage, info.usage.streams, info.usage.consumers), (1024, 2048, 2, 3));
    assert_eq!(info.usage.reserved_storage, 1_000_000);
    assert_eq!(info.usage.limits.max_streams, -1);
    assert_eq!(info.domain, "hub");
    assert_eq!((info.api.level, info.api.total, info.api.errors), (4, 99, 2));
    assert_eq!(info.tiers["R1"].limits.max_consumers, 100);
    // A pre-2.11 server has no level: 0.
    let old: AccountInfo =
        decode_reply(br#"{"memory":0,"storage":0,"streams":0,"consumers":0,"limits":{},"api":{"total":1,"errors":0}}"#)
            .unwrap();
    assert_eq!(old.api.level, 0);
    assert!(old.tiers.is_empty());
    let back: AccountInfo = serde_json::from_value(to_json(&info)).unwrap();
    assert_eq!(back, info);
    let off = br#"{"type":"io.nats.jetstream.api.v1.account_info_response","error":{"code":503,"err_code":10039,"description":"jetstream not enabled for account"}}"#;
    assert_eq!(decode_reply::<AccountInfo>(off).unwrap_err().error_code(), Some(ErrorCode::NotEnabledForAccount));
}

#[test]
fn pub_acks() {
    let ack = decode_pub_ack(br#"{"stream":"ORDERS","seq":42,"domain":"hub"}"#).unwrap();
    assert_eq!(ack, PubAck { stream: "ORDERS".into(), seq: 42, domain: "hub".into(), ..PubAck::default() });
    let dup = decode_pub_ack(br#"{"stream":"ORDERS","seq":41,"duplicate":true}"#).unwrap();
    assert!(dup.duplicate && dup.seq == 41);
    let counter = decode_pub_ack(br#"{"stream":"C","seq":1,"val":"12","batch":"b1","count":3}"#).unwrap();
    assert_eq!((counter.value.as_str(), counter.batch.as_str(), counter.count), ("12", "b1", 3));
    let cases = [
        (10071, ErrorCode::WrongLastSequence),
        (10164, ErrorCode::WrongLastSequence),
        (10070, ErrorCode::WrongLastMsgId),
        (10060, ErrorCode::StreamMismatch),
        (10077, ErrorCode::StoreFailed),
        (10054, ErrorCode::MessageTooLarge),
        (10158, ErrorCode::DuplicateInProcess),
        (10165, ErrorCode::InvalidTtl),
    ];
    for (code, kind) in cases {
        let body = format!(r#"{{"error":{{"code":400,"err_code":{code},"description":"x"}},"stream":"S","seq":0}}"#);
        let err = decode_pub_ack(body.as_bytes()).unwrap_err();
        assert_eq!(err.error_code(), Some(kind), "{code}");
    }
    // Something that is not a stream answered.
    for bad in [&b"ok"[..], br#"{"seq":1}"#, br#"{"hello":"world"}"#, br#"{"stream":""}"#, b"-ERR 'x'", b"", b"[]"] {
        assert!(matches!(decode_pub_ack(bad), Err(JetStreamError::InvalidReply { .. })), "{bad:?}");
    }
    assert_eq!(to_json(&ack), json!({"stream": "ORDERS", "seq": 42, "domain": "hub"}));
}

#[test]
fn status_only_replies() {
    let code = |c| StatusCode::new(c).unwrap();
    assert_eq!(status_error(code(503), ""), JetStreamError::NoResponders);
    assert_eq!(status_error(code(408), "Request Timeout"), JetStreamError::Timeout);
    assert_eq!(
        status_error(code(404), "No Messages"),
        JetStreamError::Status { code: 404, description: "No Messages".into() }
    );
    let no_responders = block("NATS/1.0 503\r\n\r\n");
    assert_eq!(decode_message_reply::<Value>(Some(no_responders.view()), b""), Err(JetStreamError::NoResponders));
    let plain = block("NATS/1.0\r\nA: b\r\n\r\n");
    assert_eq!(decode_message_reply::<PubAck>(Some(plain.view()), br#"{"stream":"S","seq":1}"#).unwrap().seq, 1);
    assert_eq!(decode_message_reply::<Value>(None, br#"{"a":2}"#).unwrap()["a"], 2);
    // A status with a body is decoded as a body.
    assert_eq!(decode_message_reply::<Value>(Some(no_responders.view()), br#"{"a":3}"#).unwrap()["a"], 3);
}

fn b64(text: &[u8]) -> String {
    // Written out by hand so the test does not depend on the crate's own encoder.
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { char::from(A[(n >> (18 - 6 * i) & 63) as usize]) } else { '=' });
        }
    }
    out
}

#[test]
fn stored_message() {
    let hdrs = b"NATS/1.0\r\nNats-Msg-Id: m1\r\nKV-Operation: DEL\r\n\r\n";
    let body = format!(
        r#"{{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{{"subject":"$KV.b.k","seq":7,
        "hdrs":"{}","data":"{}","time":"2024-05-01T10:00:00.000000007Z","future":1}}}}"#,
        b64(hdrs),
        b64(b"hello\x00\xff")
    );
    let reply: MsgGetResponse = decode_reply(body.as_bytes()).unwrap();
    let m = &reply.message;
    assert_eq!((m.subject.as_str(), m.seq, m.time), ("$KV.b.k", 7, at(T0, 7)));
    assert_eq!(&m.data[..], b"hello\x00\xff");
    let headers = m.headers.as_ref().unwrap();
    assert_eq!((headers.get("Nats-Msg-Id"), headers.get("KV-Operation")), (Some("m1"), Some("DEL")));
    // Round trip through our own encoder.
    let back: MsgGetResponse = serde_json::from_value(to_json(&reply)).unwrap();
    assert_eq!(back, reply);

    // No headers, no data (an empty payload), null data.
    for message in [
        r#"{"subject":"a","seq":1,"time":"2024-05-01T10:00:00Z"}"#,
        r#"{"subject":"a","seq":1,"time":"2024-05-01T10:00:00Z","data":null,"hdrs":null}"#,
        r#"{"subject":"a","seq":1,"time":"2024-05-01T10:00:00Z","data":"","hdrs":""}"#,
    ] {
        let reply: MsgGetResponse = decode_reply(format!(r#"{{"message":{message}}}"#).as_bytes()).unwrap();
        assert!(reply.message.headers.is_none() && reply.message.data.is_empty(), "{message}");
    }
    let minimal = StoredMessage { subject: "a".into(), seq: 1, time: at(T0, 0), headers: None, data: Bytes::new() };
    assert_eq!(to_json(&minimal), json!({"subject": "a", "seq": 1, "time": "2024-05-01T10:00:00Z"}));

    // Broken messages are invalid replies, not panics.
    for message in [
        r#"{"subject":"a","seq":1}"#,
        r#"{"subject":"a","seq":1,"time":"yesterday"}"#,
        r#"{"subject":"a","seq":1,"time":"2024-05-01T10:00:00Z","data":"not base64!"}"#,
        r#"{"subject":"a","seq":1,"time":"2024-05-01T10:00:00Z","hdrs":"aGVsbG8="}"#,
    ] {
        let err = decode_reply::<MsgGetResponse>(format!(r#"{{"message":{message}}}"#).as_bytes()).unwrap_err();
        assert!(matches!(err, JetStreamError::InvalidReply { .. }), "{message}: {err:?}");
    }
    assert!(matches!(decode_reply::<MsgGetResponse>(b"{}"), Err(JetStreamError::InvalidReply { .. })));
    let missing = br#"{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","error":{"code":404,"err_code":10037,"description":"no message found"}}"#;
    assert_eq!(decode_reply::<MsgGetResponse>(missing).unwrap_err().error_code(), Some(ErrorCode::NoMessageFound));
}

#[test]
fn msg_get_and_delete_requests() {
    assert_eq!(to_json(&MsgGetRequest::seq(5)), json!({"seq": 5}));
    assert_eq!(to_json(&MsgGetRequest::last_by_subject("$KV.b.k")), json!({"last_by_subj": "$KV.b.k"}));
    assert_eq!(to_json(&MsgGetRequest::next_by_subject(10, "a.*")), json!({"seq": 10, "next_by_subj": "a.*"}));
    let batch = MsgGetRequest {
        batch: 100,
        max_bytes: 4096,
        multi_last: vec!["a.>".into()],
        up_to_seq: 99,
        start_time: Some(at(T0, 0)),
        ..MsgGetRequest::default()
    };
    assert_eq!(
        to_json(&batch),
        json!({"batch": 100, "max_bytes": 4096, "start_time": "2024-05-01T10:00:00Z", "multi_last": ["a.>"], "up_to_seq": 99})
    );
    assert_eq!(to_json(&MsgDeleteRequest { seq: 3, no_erase: true }), json!({"seq": 3, "no_erase": true}));
    assert_eq!(to_json(&MsgDeleteRequest { seq: 3, no_erase: false }), json!({"seq": 3}));
    let missing = br#"{"error":{"code":400,"err_code":10043,"description":"sequence not found"}}"#;
    assert_eq!(decode_reply::<SuccessResponse>(missing).unwrap_err().error_code(), Some(ErrorCode::SequenceNotFound));
}

fn block(text: &str) -> HeaderBlock {
    HeaderBlock::parse(Bytes::from(text.to_owned())).unwrap()
}

#[test]
fn direct_get_replies() {
    let rfc = block(
        "NATS/1.0\r\nNats-Stream: KV_b\r\nNats-Subject: $KV.b.k\r\nNats-Sequence: 12\r\n\
         Nats-Time-Stamp: 2024-05-01T10:00:00.25Z\r\nKV-Operation: PURGE\r\n\r\n",
    );
    let m = DirectGetMessage::from_reply(Some(rfc.view()), Bytes::from_static(b"v")).unwrap();
    assert_eq!((m.stream.as_str(), m.subject.as_str(), m.seq), ("KV_b", "$KV.b.k", 12));
    assert_eq!(m.time, at(T0, 250_000_000));
    assert_eq!((m.headers.get("KV-Operation"), &m.payload[..]), (Some("PURGE"), &b"v"[..]));

    let go = block(
        "NATS/1.0\r\nNats-Stream: S\r\nNats-Subject: a\r\nNats-Sequence: 1\r\n\
         Nats-Time-Stamp: 2024-05-01 03:00:00.123456789 -0700 MST\r\n\r\n",
    );
    let m = DirectGetMessage::from_reply(Some(go.view()), Bytes::new()).unwrap();
    assert_eq!(m.time, at(T0, 123_456_789));

    let status = |text: &str| DirectGetMessage::from_reply(Some(block(text).view()), Bytes::new()).unwrap_err();
    assert_eq!(status("NATS/1.0 503\r\n\r\n"), JetStreamError::NoResponders);
    assert_eq!(
        status("NATS/1.0 404 Message Not Found\r\n\r\n"),
        JetStreamError::Status { code: 404, description: "Message Not Found".into() }
    );
    assert!(matches!(status("NATS/1.0 408 Bad Request\r\n\r\n"), JetStreamError::Status { code: 408, .. }));
    assert!(matches!(
        status("NATS/1.0 204 EOB\r\nNats-Num-Pending: 0\r\n\r\n"),
        JetStreamError::Status { code: 204, .. }
    ));

    for broken in [
        "NATS/1.0\r\nNats-Subject: a\r\nNats-Sequence: 1\r\nNats-Time-Stamp: 2024-05-01T10:00:00Z\r\n\r\n",
        "NATS/1.0\r\nNats-Stream: S\r\nNats-Sequence: 1\r\nNats-Time-Stamp: 2024-05-01T10:00:00Z\r\n\r\n",
        "NATS/1.0\r\nNats-Stream: S\r\nNats-Subject: a\r\nNats-Time-Stamp: 2024-05-01T10:00:00Z\r\n\r\n",
        "NATS/1.0\r\nNats-Stream: S\r\nNats-Subject: a\r\nNats-Sequence: x\r\nNats-Time-Stamp: 2024-05-01T10:00:00Z\r\n\r\n",
        "NATS/1.0\r\nNats-Stream: S\r\nNats-Subject: a\r\nNats-Sequence: 1\r\n\r\n",
        "NATS/1.0\r\nNats-Stream: S\r\nNats-Subject: a\r\nNats-Sequence: 1\r\nNats-Time-Stamp: soon\r\n\r\n",
    ] {
        let err = DirectGetMessage::from_reply(Some(block(broken).view()), Bytes::new()).unwrap_err();
        assert!(matches!(err, JetStreamError::InvalidReply { .. }), "{broken:?}: {err:?}");
    }
    assert!(matches!(DirectGetMessage::from_reply(None, Bytes::new()), Err(JetStreamError::InvalidReply { .. })));
}

#[test]
fn kv_stream_config() {
    let config = KvConfig::new("cfg").to_stream_config().unwrap();
    assert_eq!(
        to_json(&config),
        json!({"name": "KV_cfg", "subjects": ["$KV.cfg.>"], "max_consumers": -1, "max_msgs": -1,
               "max_msgs_per_subject": 1, "max_bytes": -1, "max_msg_size": -1, "num_replicas": 1,
               "discard": "new", "duplicate_window": 120_000_000_000u64, "deny_delete": true,
               "allow_rollup_hdrs": true, "allow_direct": true})
    );
    let kv = KvConfig {
        description: "settings".into(),
        history: 10,
        ttl: Duration::from_secs(30),
        max_bytes: 1 << 20,
        max_value_size: 1024,
        storage: StorageType::Memory,
        replicas: 3,
        compression: true,
        metadata: [("team".to_owned(), "a".to_owned())].into(),
        limit_marker_ttl: Duration::from_secs(5),
        ..KvConfig::new("cfg")
    };
    let config = kv.to_stream_config().unwrap();
    assert_eq!(config.max_msgs_per_subject, 10);
    assert_eq!((config.max_age, config.duplicate_window), (Duration::from_secs(30), Duration::from_secs(30)));
    assert_eq!((config.max_bytes, config.max_msg_size, config.num_replicas), (1 << 20, 1024, 3));
    assert_eq!((config.storage, config.compression), (StorageType::Memory, Compression::S2));
    assert!(config.allow_msg_ttl && config.subject_delete_marker_ttl == Duration::from_secs(5));
    assert_eq!(config.description, "settings");
    assert_eq!(config.metadata["team"], "a");
    let long_ttl = KvConfig { ttl: Duration::from_secs(3600), ..KvConfig::new("b") }.to_stream_config().unwrap();
    assert_eq!(long_ttl.duplicate_window, Duration::from_secs(120));

    assert_eq!(KvConfig { history: 64, ..KvConfig::new("b") }.to_stream_config().unwrap().max_msgs_per_subject, 64);
    for history in [65, -1] {
        let err = KvConfig { history, ..KvConfig::new("b") }.to_stream_config().unwrap_err();
        assert!(matches!(err, JetStreamError::InvalidConfig { .. }), "{history}");
    }
    let short_marker = KvConfig { limit_marker_ttl: Duration::from_millis(500), ..KvConfig::new("b") };
    assert!(matches!(short_marker.to_stream_config(), Err(JetStreamError::InvalidConfig { .. })));
    assert!(matches!(KvConfig::new("a.b").to_stream_config(), Err(JetStreamError::InvalidBucket { .. })));
    assert!(matches!(KvConfig::new("").to_stream_config(), Err(JetStreamError::InvalidBucket { .. })));
    assert_eq!(KV_MAX_HISTORY, 64);
}

#[test]
fn kv_status() {
    let body = br#"{"config":{"name":"KV_cfg","subjects":["$KV.cfg.>"],"max_msgs_per_subject":5,"max_age":60000000000,
        "compression":"s2","subject_delete_marker_ttl":1000000000,"allow_msg_ttl":true,"metadata":{"a":"b"}},
        "state":{"messages":12,"bytes":3000}}"#;
    let status = KvStatus::from_stream_info(decode_reply(body).unwrap()).unwrap();
    assert_eq!((status.bucket.as_str(), status.values, status.history, status.bytes), ("cfg", 12, 5, 3000));
    assert_eq!((status.ttl, status.limit_marker_ttl), (Duration::from_secs(60), Duration::from_secs(1)));
    assert!(status.is_compressed);
    assert_eq!(status.metadata["a"], "b");
    assert_eq!(status.info.config.name, "KV_cfg");
    assert_eq!(KvStatus::BACKING_STORE, "JetStream");

    let not_kv: StreamInfo = decode_reply(br#"{"config":{"name":"ORDERS","max_msgs_per_subject":1}}"#).unwrap();
    assert!(matches!(KvStatus::from_stream_info(not_kv), Err(JetStreamError::InvalidConfig { .. })));
    let no_history: StreamInfo = decode_reply(br#"{"config":{"name":"KV_x","max_msgs_per_subject":-1}}"#).unwrap();
    assert!(matches!(KvStatus::from_stream_info(no_history), Err(JetStreamError::InvalidConfig { .. })));
}

#[test]
fn paging_names_to_the_end() {
    // Three pages of a listing of 5, with "b" seen twice because a stream was created between pages.
    let pages = [
        br#"{"type":"io.nats.jetstream.api.v1.stream_names_response","total":5,"offset":0,"limit":2,"streams":["a","b"]}"#.as_slice(),
        br#"{"total":5,"offset":2,"limit":2,"streams":["b","c"]}"#,
        br#"{"total":5,"offset":4,"limit":2,"streams":["d"]}"#,
    ];
    let mut pager = Pager::new();
    let mut offsets = Vec::new();
    let mut names = Vec::new();
    for page in pages {
        offsets.push(pager.next_offset().unwrap());
        names.extend(pager.accept(decode_reply::<StreamNamesResponse>(page).unwrap()));
    }
    assert_eq!(offsets, [0, 2, 4]);
    assert_eq!(names, ["a", "b", "c", "d"]);
    assert!(pager.is_done() && pager.next_offset().is_none());
}

#[test]
fn paging_stops_on_an_empty_page() {
    let mut pager = Pager::new();
    let first: ConsumerNamesResponse =
        decode_reply(br#"{"total":10,"offset":0,"limit":2,"consumers":["x","y"]}"#).unwrap();
    assert_eq!(pager.accept(first).len(), 2);
    assert_eq!(pager.next_offset(), Some(2));
    // The listing shrank: an empty page (or a null list) ends the walk even though total said 10.
    let empty: ConsumerNamesResponse = decode_reply(br#"{"total":10,"offset":2,"limit":2,"consumers":null}"#).unwrap();
    assert!(pager.accept(empty).is_empty());
    assert_eq!(pager.next_offset(), None);
}

#[test]
fn paging_infos() {
    let body =
        br#"{"total":2,"offset":0,"limit":256,"streams":[{"config":{"name":"A"},"state":{}},{"config":{"name":"B"}}],
        "missing":["C"],"offline":{"D":"peer lost"}}"#;
    let page: StreamListResponse = decode_reply(body).unwrap();
    assert_eq!((page.missing.as_slice(), page.offline["D"].as_str()), (&["C".to_owned()][..], "peer lost"));
    let mut pager = Pager::new();
    let infos = pager.accept(page);
    assert_eq!(infos.iter().map(|i| i.config.name.as_str()).collect::<Vec<_>>(), ["A", "B"]);
    assert!(pager.is_done());

    let consumers: ConsumerListResponse = decode_reply(
        br#"{"total":3,"offset":0,"limit":256,"consumers":[{"name":"c1","stream_name":"S"},{"name":"c1"}]}"#,
    )
    .unwrap();
    let mut pager = Pager::new();
    assert_eq!(pager.accept(consumers).len(), 1);
    assert_eq!(pager.next_offset(), Some(2));
    assert_eq!(to_json(&PageRequest { offset: 2, subject: String::new() }), json!({"offset": 2}));
    assert_eq!(to_json(&PageRequest { offset: 0, subject: "$KV.*.>".into() }), json!({"subject": "$KV.*.>"}));
    assert_eq!(to_json(&PageRequest::default()), json!({}));
}

#[test]
fn old_servers_that_do_not_page() {
    // No total at all: one page is everything.
    let mut pager = Pager::new();
    let page: StreamNamesResponse = decode_reply(br#"{"streams":["a","b"]}"#).unwrap();
    assert_eq!(pager.accept(page), ["a", "b"]);
    assert!(pager.is_done());
}

fn arb_config() -> impl Strategy<Value = StreamConfig> {
    (
        "[A-Z]{1,8}",
        proptest::collection::vec("[a-z]{1,5}(\\.[a-z]{1,5}){0,2}", 0..3),
        -1i64..1_000_000,
        0u64..u64::from(u32::MAX) * 1000,
        prop_oneof![
            Just(StorageType::File),
            Just(StorageType::Memory),
            "[a-z]{3,6}".prop_map(|s| StorageType::from(s.as_str()))
        ],
        any::<bool>(),
        proptest::option::of((0u64..T0 * 2, 0u32..1_000_000_000)),
    )
        .prop_map(|(name, subjects, max_msgs, age_ns, storage, sealed, start)| StreamConfig {
            subjects,
            max_msgs,
            max_age: Duration::from_nanos(age_ns),
            storage,
            sealed,
            mirror: start.map(|(s, n)| StreamSource {
                name: "M".into(),
                opt_start_time: Some(at(s, n)),
                ..StreamSource::default()
            }),
            ..StreamConfig::new(name)
        })
}

proptest! {
    #[test]
    fn stream_config_round_trips(config in arb_config()) {
        let text = serde_json::to_string(&config).unwrap();
        prop_assert_eq!(serde_json::from_str::<StreamConfig>(&text).unwrap(), config);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        // Any failure is typed, whichever model the bytes are read as.
        let typed = |e: JetStreamError| matches!(e, JetStreamError::Api(_) | JetStreamError::InvalidReply { .. });
        prop_assert!(decode_reply::<StreamInfo>(&bytes).map_or_else(typed, |_| true));
        prop_assert!(decode_reply::<MsgGetResponse>(&bytes).map_or_else(typed, |_| true));
        prop_assert!(decode_reply::<ConsumerInfo>(&bytes).map_or_else(typed, |_| true));
        prop_assert!(decode_pub_ack(&bytes).map_or_else(typed, |a| !a.stream.is_empty()));
    }

    #[test]
    fn message_payloads_round_trip(data in proptest::collection::vec(any::<u8>(), 0..200), seq in any::<u64>()) {
        let m = StoredMessage { subject: "s".into(), seq, time: at(T0, 1), headers: None, data: Bytes::from(data) };
        let wire = serde_json::to_vec(&MsgGetResponse { message: m.clone() }).unwrap();
        prop_assert_eq!(decode_reply::<MsgGetResponse>(&wire).unwrap().message, m);
    }
}
