//! `ServiceCore` without a server: configuration rules, discovery subscriptions, queue-group resolution, the
//! PING/INFO/STATS replies checked field by field against the natscli schemas, and the statistics driven by a
//! hand-advanced clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use micro::wire::{EndpointInfo, EndpointStats, InfoResponse, PingResponse, StatsResponse};
use micro::{
    is_valid_name, is_valid_semver, new_id, Clock, ConfigError, EndpointConfig, EndpointId, Group, Outcome, QueueGroup,
    ServiceConfig, ServiceCore, Subscription, Target, Verb, BUSY_CODE, BUSY_DESCRIPTION, DEFAULT_API_PREFIX,
    DEFAULT_QUEUE_GROUP,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------------------------
// Test support
// ---------------------------------------------------------------------------------------------------------------

/// The wall time the fake clock starts at: 2024-03-23T12:38:54.03603544Z (the example of Go's RFC3339Nano).
const BASE_WALL_SECS: u64 = 1_711_197_534;
const BASE_WALL_NANOS: u32 = 36_035_440;
const BASE_STARTED: &str = "2024-03-23T12:38:54.03603544Z";

/// A clock that only moves when told to.
struct FakeClock {
    now: Mutex<(Instant, SystemTime)>,
}

impl FakeClock {
    fn new() -> Arc<Self> {
        let wall = UNIX_EPOCH + Duration::new(BASE_WALL_SECS, BASE_WALL_NANOS);
        Arc::new(Self { now: Mutex::new((Instant::now(), wall)) })
    }

    fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap();
        now.0 += by;
        now.1 += by;
    }

    fn advance_us(&self, us: u64) {
        self.advance(Duration::from_micros(us));
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.now.lock().unwrap().0
    }

    fn wall(&self) -> SystemTime {
        self.now.lock().unwrap().1
    }
}

fn core_with(config: ServiceConfig) -> (ServiceCore, Arc<FakeClock>) {
    let clock = FakeClock::new();
    let core = ServiceCore::new(config, "ID1".to_owned(), clock.clone()).expect("valid config");
    (core, clock)
}

fn core() -> (ServiceCore, Arc<FakeClock>) {
    core_with(ServiceConfig::new("svc", "1.0.0"))
}

fn new_core(config: ServiceConfig) -> Result<ServiceCore, ConfigError> {
    ServiceCore::new(config, "ID1".to_owned(), FakeClock::new())
}

fn id_of(sub: &Subscription) -> EndpointId {
    match sub.target {
        Target::Endpoint(id) => id,
        Target::Verb(v) => panic!("expected an endpoint subscription, got verb {v:?}"),
    }
}

fn add(core: &mut ServiceCore, group: &Group, config: EndpointConfig) -> EndpointId {
    let sub = core.add_endpoint(group, config).expect("valid endpoint");
    assert!(nats_proto::subject::validate_subscribe_subject(sub.subject.as_bytes()).is_ok(), "{}", sub.subject);
    if let Some(q) = &sub.queue {
        assert!(nats_proto::subject::validate_queue(q.as_bytes()).is_ok(), "{q}");
    }
    id_of(&sub)
}

fn add_root(core: &mut ServiceCore, name: &str) -> EndpointId {
    let root = core.root();
    add(core, &root, EndpointConfig::new(name))
}

fn parse(bytes: Bytes) -> Value {
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {bytes:?}"))
}

fn info_json(core: &mut ServiceCore) -> Value {
    let v = parse(core.verb_reply(Verb::Info));
    check_info_shape(&v);
    v
}

fn stats_json(core: &mut ServiceCore) -> Value {
    let v = parse(core.verb_reply(Verb::Stats));
    check_stats_shape(&v);
    v
}

fn ping_json(core: &mut ServiceCore) -> Value {
    let v = parse(core.verb_reply(Verb::Ping));
    check_ping_shape(&v);
    v
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().map(String::as_str).collect()
}

fn set<'a>(items: &[&'a str]) -> BTreeSet<&'a str> {
    items.iter().copied().collect()
}

fn is_basic_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `oneOf: [object of strings, null]`, but we promise `{}`: never null.
fn check_metadata_shape(v: &Value, what: &str) {
    let map = v.as_object().unwrap_or_else(|| panic!("{what}: metadata must be an object (never null), got {v}"));
    for (k, val) in map {
        assert!(val.is_string(), "{what}: metadata[{k}] must be a string, got {val}");
    }
}

/// What all three replies share.
fn check_common(v: &Value, kind: &str) {
    assert!(v.is_object(), "reply must be an object: {v}");
    assert_eq!(v["type"], json!(kind), "type const");
    let name = v["name"].as_str().unwrap_or_else(|| panic!("name must be a string: {v}"));
    assert!(is_basic_name(name), "name {name:?} must match ^[a-zA-Z0-9_-]+$");
    let id = v["id"].as_str().unwrap_or_else(|| panic!("id must be a string: {v}"));
    assert!(!id.is_empty(), "id minLength 1");
    let version = v["version"].as_str().unwrap_or_else(|| panic!("version must be a string: {v}"));
    assert!(version.len() >= 5, "version minLength 5");
    check_metadata_shape(&v["metadata"], kind);
}

fn check_ping_shape(v: &Value) {
    check_common(v, "io.nats.micro.v1.ping_response");
    assert_eq!(keys(v), set(&["type", "name", "id", "version", "metadata"]), "PING carries exactly these: {v}");
}

fn check_info_shape(v: &Value) {
    check_common(v, "io.nats.micro.v1.info_response");
    assert_eq!(
        keys(v),
        set(&["type", "name", "id", "version", "metadata", "description", "endpoints"]),
        "INFO fields (no legacy `subjects`): {v}"
    );
    assert!(v["description"].is_string(), "description is required and a string (never null): {v}");
    let endpoints = v["endpoints"].as_array().unwrap_or_else(|| panic!("endpoints must be an array: {v}"));
    for e in endpoints {
        assert_eq!(keys(e), set(&["name", "subject", "queue_group", "metadata"]), "INFO endpoint fields: {e}");
        let name = e["name"].as_str().expect("endpoint name is a string");
        assert!(is_basic_name(name), "endpoint name {name:?} must be a basic_name");
        let subject = e["subject"].as_str().expect("endpoint subject is a string");
        assert!(!subject.is_empty(), "endpoint subject minLength 1");
        assert!(e["queue_group"].is_string(), "queue_group is a string: {e}");
        check_metadata_shape(&e["metadata"], "INFO endpoint");
    }
}

/// An int64 in JSON: an integer (not a float), non-negative for our counters, at most i64::MAX.
fn check_int(v: &Value, what: &str) -> u64 {
    let n = v.as_u64().unwrap_or_else(|| panic!("{what} must be a JSON unsigned integer, got {v}"));
    assert!(v.is_u64() && !v.is_f64(), "{what} must be an integer, got {v}");
    assert!(n <= i64::MAX as u64, "{what} must fit an int64, got {n}");
    n
}

fn check_stats_shape(v: &Value) {
    check_common(v, "io.nats.micro.v1.stats_response");
    assert_eq!(
        keys(v),
        set(&["type", "name", "id", "version", "metadata", "started", "endpoints"]),
        "STATS fields: {v}"
    );
    let started = v["started"].as_str().unwrap_or_else(|| panic!("started must be a string: {v}"));
    assert!(is_rfc3339_utc(started), "started {started:?} must be RFC3339 in UTC ending in Z");
    let endpoints = v["endpoints"].as_array().unwrap_or_else(|| panic!("endpoints must be an array: {v}"));
    for e in endpoints {
        let k = keys(e);
        let base = [
            "name",
            "subject",
            "queue_group",
            "num_requests",
            "num_errors",
            "last_error",
            "processing_time",
            "average_processing_time",
        ];
        let mut expected = set(&base);
        if k.contains("data") {
            expected.insert("data");
        }
        assert_eq!(k, expected, "STATS endpoint fields: {e}");
        let name = e["name"].as_str().expect("endpoint name is a string");
        assert!(is_basic_name(name), "endpoint name {name:?} must be a basic_name");
        assert!(!e["subject"].as_str().expect("subject is a string").is_empty(), "subject minLength 1");
        assert!(e["queue_group"].is_string(), "queue_group is a string: {e}");
        assert!(e["last_error"].is_string(), "last_error is required and a string: {e}");
        for field in ["num_requests", "num_errors", "processing_time", "average_processing_time"] {
            check_int(&e[field], field);
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, fields in range.
fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || *b.last().unwrap() != b'Z' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r.clone()].iter().all(u8::is_ascii_digit);
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(u32::MAX);
    let layout = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !layout {
        return false;
    }
    let ranges = (1..=12).contains(&num(5..7))
        && (1..=31).contains(&num(8..10))
        && num(11..13) < 24
        && num(14..16) < 60
        && num(17..19) < 61;
    let rest = &s[19..s.len() - 1];
    let fraction_ok = rest.is_empty()
        || (rest.starts_with('.') && (2..=10).contains(&rest.len()) && rest[1..].bytes().all(|c| c.is_ascii_digit()));
    ranges && fraction_ok
}

/// The STATS entry of the endpoint at `index`.
fn ep(stats: &Value, index: usize) -> &Value {
    &stats["endpoints"][index]
}

fn counters(e: &Value) -> (u64, u64, u64, u64, String) {
    (
        check_int(&e["num_requests"], "num_requests"),
        check_int(&e["num_errors"], "num_errors"),
        check_int(&e["processing_time"], "processing_time"),
        check_int(&e["average_processing_time"], "average_processing_time"),
        e["last_error"].as_str().expect("last_error string").to_owned(),
    )
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn service_names_are_basic_names() {
    for ok in ["svc", "my-service_2", "A", "0", "a-b_C9", "UPPER", "-", "_"] {
        assert!(is_valid_name(ok), "{ok:?}");
        assert!(new_core(ServiceConfig::new(ok, "1.0.0")).is_ok(), "{ok:?} should be accepted");
    }
    for bad in ["", "a.b", "a b", "a*", "a>", "ünï", "a/b", "a:b", "tab\t", "new\nline", "$SRV", "a.*"] {
        assert!(!is_valid_name(bad), "{bad:?}");
        assert_eq!(
            new_core(ServiceConfig::new(bad, "1.0.0")).unwrap_err(),
            ConfigError::InvalidName(bad.to_owned()),
            "{bad:?}"
        );
    }
}

/// The test cases published with the official semver.org regular expression.
#[test]
fn semver_accepts_the_official_valid_cases() {
    for ok in [
        "0.0.4",
        "1.2.3",
        "10.20.30",
        "1.1.2-prerelease+meta",
        "1.1.2+meta",
        "1.1.2+meta-valid",
        "1.0.0-alpha",
        "1.0.0-beta",
        "1.0.0-alpha.beta",
        "1.0.0-alpha.beta.1",
        "1.0.0-alpha.1",
        "1.0.0-alpha0.valid",
        "1.0.0-alpha.0valid",
        "1.0.0-alpha-a.b-c-somethinglong+build.1-aef.1-its-okay",
        "1.0.0-rc.1+build.1",
        "2.0.0-rc.1+build.123",
        "1.2.3-beta",
        "10.2.3-DEV-SNAPSHOT",
        "1.2.3-SNAPSHOT-123",
        "1.0.0",
        "2.0.0",
        "1.1.7",
        "2.0.0+build.1848",
        "2.0.1-alpha.1227",
        "1.0.0-alpha+beta",
        "1.2.3----RC-SNAPSHOT.12.9.1--.12+788",
        "1.2.3----R-S.12.9.1--.12+meta",
        "1.2.3----RC-SNAPSHOT.12.9.1--.12",
        "1.0.0+0.build.1-rc.10000aaa-kk-0.1",
        "99999999999999999999999.999999999999999999.99999999999999999",
        "1.0.0-0A.is.legal",
        "0.0.0",
        "1.0.0--",
        "1.0.0-0",
        "1.0.0-00a",
        "1.0.0+001",
    ] {
        assert!(is_valid_semver(ok), "{ok:?} should be valid");
        assert!(new_core(ServiceConfig::new("svc", ok)).is_ok(), "{ok:?} should be accepted by ServiceCore");
    }
}

#[test]
fn semver_rejects_the_official_invalid_cases() {
    for bad in [
        "1",
        "1.2",
        "1.2.3-0123",
        "1.2.3-0123.0123",
        "1.1.2+.123",
        "+invalid",
        "-invalid",
        "-invalid+invalid",
        "-invalid.01",
        "alpha",
        "alpha.beta",
        "alpha.beta.1",
        "alpha.1",
        "alpha+beta",
        "alpha_beta",
        "alpha.",
        "alpha..",
        "beta",
        "1.0.0-alpha_beta",
        "-alpha.",
        "1.0.0-alpha..",
        "1.0.0-alpha..1",
        "1.0.0-alpha...1",
        "1.0.0-alpha....1",
        "1.0.0-alpha.....1",
        "1.0.0-alpha......1",
        "1.0.0-alpha.......1",
        "01.1.1",
        "1.01.1",
        "1.1.01",
        "1.2.3.DEV",
        "1.2-SNAPSHOT",
        "1.2.31.2.3----RC-SNAPSHOT.12.09.1--..12+788",
        "1.2-RC-SNAPSHOT",
        "-1.0.3-gamma+b7718",
        "+justmeta",
        "9.8.7+meta+meta",
        "9.8.7-whatever+meta+meta",
        "99999999999999999999999.999999999999999999.99999999999999999----RC-SNAPSHOT.12.09.1--------------------------------..12",
        // The ADR's own caveats: a leading `v`, and four components (used in async-nats docs).
        "v1.0.0",
        "V1.0.0",
        "1.0.0.1",
        // Odd inputs.
        "",
        "1.0.0-",
        "1.0.0+",
        "1.0.0 ",
        " 1.0.0",
        "1.0.0\n",
        "1..0",
        "1.0.0-a b",
        "\u{661}.0.0",
        "1.0.0-é",
    ] {
        assert!(!is_valid_semver(bad), "{bad:?} should be invalid");
        assert_eq!(
            new_core(ServiceConfig::new("svc", bad)).unwrap_err(),
            ConfigError::InvalidVersion(bad.to_owned()),
            "{bad:?}"
        );
    }
}

#[test]
fn endpoint_names_are_basic_names_and_may_repeat() {
    let (mut core, _) = core();
    let root = core.root();
    for ok in ["add", "a-b_C9", "0"] {
        assert!(core.add_endpoint(&root, EndpointConfig::new(ok)).is_ok(), "{ok:?}");
    }
    // Dots are rejected by the schema's basic_name, so natscli would reject the whole reply.
    for bad in ["", "a.b", "math.add", "a b", "a*", ">", "ünï", "a\tb"] {
        let err = core.add_endpoint(&root, EndpointConfig::new(bad).subject("ok.subject")).unwrap_err();
        assert_eq!(err, ConfigError::InvalidName(bad.to_owned()), "{bad:?}");
    }
    // A dotted name is rejected even when a subject is given.
    assert!(core.add_endpoint(&root, EndpointConfig::new("x.y").subject("x")).is_err());
    // Names may repeat.
    let a = core.add_endpoint(&root, EndpointConfig::new("dup").subject("one")).unwrap();
    let b = core.add_endpoint(&root, EndpointConfig::new("dup").subject("two")).unwrap();
    assert_ne!(id_of(&a), id_of(&b), "repeated names are distinct endpoints");
    // Rejected endpoints left no trace.
    let names: Vec<String> = core.info().endpoints.into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["add", "a-b_C9", "0", "dup", "dup"]);
}

#[test]
fn endpoint_subjects_follow_the_rules() {
    let (mut core, _) = core();
    let root = core.root();
    for ok in ["a", "a.b", "a.*", "a.>", "*", ">", "a.*.c", "*.*", "srv.PING", "SRV.INFO", "$SRVX.a", "$srv.PING"] {
        let sub = core.add_endpoint(&root, EndpointConfig::new("e").subject(ok));
        assert_eq!(sub.map(|s| s.subject), Ok(ok.to_owned()), "{ok:?} should be accepted");
    }
    for bad in [
        "a b",
        " a",
        "a ",
        "a\tb",
        "a\r\nb",
        "a.>.b",
        ">.a",
        "a..b",
        ".a",
        "a.",
        "",
        "$SRV",
        "$SRV.PING",
        "$SRV.INFO.svc",
        "$SRV.STATS.svc.ID1",
        "$SRV.anything",
        "$SRV.>",
        "$SRV.*",
    ] {
        let err = core.add_endpoint(&root, EndpointConfig::new("e").subject(bad)).unwrap_err();
        assert_eq!(err, ConfigError::InvalidSubject(bad.to_owned()), "{bad:?}");
    }
    // The default subject is the name.
    let sub = core.add_endpoint(&root, EndpointConfig::new("by-name")).unwrap();
    assert_eq!(sub.subject, "by-name");
}

#[test]
fn endpoint_subjects_may_not_hide_under_the_api_prefix_through_a_group() {
    let (mut core, _) = core();
    let srv = core.root().group("$SRV", QueueGroup::Inherit).expect("a group name alone is just a prefix");
    for name in ["PING", "INFO", "STATS", "other"] {
        let err = core.add_endpoint(&srv, EndpointConfig::new(name)).unwrap_err();
        assert_eq!(err, ConfigError::InvalidSubject(format!("$SRV.{name}")));
    }
    let nested = core.root().group("$SRV.INFO", QueueGroup::Inherit).unwrap();
    assert!(core.add_endpoint(&nested, EndpointConfig::new("svc")).is_err());
    assert!(core.info().endpoints.is_empty());
}

#[test]
fn endpoint_subjects_may_not_use_a_custom_prefix_nor_srv() {
    let (mut core, _) = core_with(ServiceConfig::new("svc", "1.0.0").api_prefix("Custom.Api"));
    let root = core.root();
    for bad in ["Custom.Api", "Custom.Api.PING", "Custom.Api.INFO.svc", "Custom.Api.x", "Custom.Api.>", "$SRV.PING"] {
        let err = core.add_endpoint(&root, EndpointConfig::new("e").subject(bad)).unwrap_err();
        assert_eq!(err, ConfigError::InvalidSubject(bad.to_owned()), "{bad:?}");
    }
    // Only whole tokens of the prefix are reserved, and case matters.
    for ok in ["Custom", "Custom.Apiary", "Custom.Apix.PING", "custom.api.PING", "Custom.x"] {
        assert!(core.add_endpoint(&root, EndpointConfig::new("e").subject(ok)).is_ok(), "{ok:?}");
    }
    let g = core.root().group("Custom", QueueGroup::Inherit).unwrap().group("Api", QueueGroup::Inherit).unwrap();
    assert_eq!(g.prefix(), "Custom.Api");
    assert!(core.add_endpoint(&g, EndpointConfig::new("PING")).is_err());
}

#[test]
fn group_names_are_subject_prefixes_without_full_wildcards() {
    let (core, _) = core();
    let root = core.root();
    for ok in ["g", "g.h", "g.*", "*", "", "G-1_x", "a.b.c.d"] {
        let g = root.group(ok, QueueGroup::Inherit).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        assert_eq!(g.prefix(), ok);
    }
    for bad in ["g.>", ">", "g h", "g..h", ".g", "g.", "g\n", "\t", "a.>.b"] {
        let err = root.group(bad, QueueGroup::Inherit).unwrap_err();
        assert_eq!(err, ConfigError::InvalidSubject(bad.to_owned()), "{bad:?}");
    }
    // Nested groups follow the same rules.
    let g = root.group("g", QueueGroup::Inherit).unwrap();
    assert!(g.group(">", QueueGroup::Inherit).is_err());
    assert!(g.group("x.>", QueueGroup::Inherit).is_err());
    assert!(g.group("x y", QueueGroup::Inherit).is_err());
}

#[test]
fn queue_group_names_may_not_contain_whitespace() {
    for bad in ["a b", " q", "q ", "a\tb", "a\nb", "a\r"] {
        let q = QueueGroup::Named(bad.to_owned());
        let err = new_core(ServiceConfig::new("svc", "1.0.0").queue_group(q.clone())).unwrap_err();
        assert_eq!(err, ConfigError::InvalidQueueGroup(bad.to_owned()), "service {bad:?}");

        let (mut core, _) = core();
        let err = core.root().group("g", q.clone()).unwrap_err();
        assert_eq!(err, ConfigError::InvalidQueueGroup(bad.to_owned()), "group {bad:?}");

        let root = core.root();
        let err = core.add_endpoint(&root, EndpointConfig::new("e").queue_group(q)).unwrap_err();
        assert_eq!(err, ConfigError::InvalidQueueGroup(bad.to_owned()), "endpoint {bad:?}");
        assert!(core.info().endpoints.is_empty(), "a rejected endpoint is not registered");
    }
    // Dots are fine (validated like a subject, as Go and Python do).
    for ok in ["a.b", "q-1", "Q", "workers_2"] {
        let (mut core, _) = core_with(ServiceConfig::new("svc", "1.0.0").queue_group(QueueGroup::Named(ok.into())));
        let root = core.root();
        let sub = core.add_endpoint(&root, EndpointConfig::new("e")).unwrap();
        assert_eq!(sub.queue.as_deref(), Some(ok));
    }
}

#[test]
fn an_empty_named_queue_group_never_subscribes_with_an_empty_queue() {
    let (mut core, _) = core();
    let root = core.root();
    match core.add_endpoint(&root, EndpointConfig::new("e").queue_group(QueueGroup::Named(String::new()))) {
        Err(err) => assert_eq!(err, ConfigError::InvalidQueueGroup(String::new())),
        Ok(sub) => assert_ne!(sub.queue.as_deref(), Some(""), "a queue subscription with an empty queue group"),
    }
    match root.group("g", QueueGroup::Named(String::new())) {
        Err(err) => assert_eq!(err, ConfigError::InvalidQueueGroup(String::new())),
        Ok(g) => assert_ne!(g.queue_group(), Some("")),
    }
}

#[test]
fn metadata_reserves_the_nats_prefix() {
    for bad in ["_nats", "_nats.client.created.library", "_nats.client.created.version", "_natsx"] {
        let err = new_core(ServiceConfig::new("svc", "1.0.0").metadata(bad, "v")).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidMetadata(_)), "service key {bad:?}: {err:?}");

        let (mut core, _) = core();
        let root = core.root();
        let err = core.add_endpoint(&root, EndpointConfig::new("e").metadata(bad, "v")).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidMetadata(_)), "endpoint key {bad:?}: {err:?}");
        assert!(core.info().endpoints.is_empty());
    }
    for ok in ["nats", "x_nats", "_nat", "NATS", "", "_", "k"] {
        assert!(new_core(ServiceConfig::new("svc", "1.0.0").metadata(ok, "v")).is_ok(), "service key {ok:?}");
        let (mut core, _) = core();
        let root = core.root();
        assert!(core.add_endpoint(&root, EndpointConfig::new("e").metadata(ok, "v")).is_ok(), "endpoint key {ok:?}");
    }
}

#[test]
fn metadata_is_capped_at_128_kb_of_keys_and_values() {
    const CAP: usize = 128 * 1024;
    // Exactly at the cap, over two entries: accepted.
    let at_cap = ServiceConfig::new("svc", "1.0.0")
        .metadata("k", &"v".repeat(CAP / 2 - 1))
        .metadata("l", &"w".repeat(CAP / 2 - 1));
    assert!(new_core(at_cap).is_ok(), "exactly 128 KB is allowed");
    // One byte more: rejected.
    let over =
        ServiceConfig::new("svc", "1.0.0").metadata("k", &"v".repeat(CAP / 2)).metadata("l", &"w".repeat(CAP / 2 - 1));
    assert!(matches!(new_core(over), Err(ConfigError::InvalidMetadata(_))));
    // Keys count too.
    let big_key = ServiceConfig::new("svc", "1.0.0").metadata(&"k".repeat(CAP), "v");
    assert!(matches!(new_core(big_key), Err(ConfigError::InvalidMetadata(_))));

    let (mut core, _) = core();
    let root = core.root();
    let ok = EndpointConfig::new("e").metadata("k", &"v".repeat(CAP - 1));
    assert!(core.add_endpoint(&root, ok).is_ok());
    let over = EndpointConfig::new("e").metadata("k", &"v".repeat(CAP));
    assert!(matches!(core.add_endpoint(&root, over), Err(ConfigError::InvalidMetadata(_))));
    assert_eq!(core.info().endpoints.len(), 1);
}

#[test]
fn api_prefix_must_be_a_literal_subject() {
    for ok in ["$SRV", "custom", "Custom.Api", "_X", "$SRV.tenant-a"] {
        assert!(new_core(ServiceConfig::new("svc", "1.0.0").api_prefix(ok)).is_ok(), "{ok:?}");
    }
    for bad in ["", "a b", "a.*", "a.>", "*", ">", ".a", "a.", "a..b", "a\tb"] {
        let err = new_core(ServiceConfig::new("svc", "1.0.0").api_prefix(bad)).unwrap_err();
        assert_eq!(err, ConfigError::InvalidPrefix(bad.to_owned()), "{bad:?}");
    }
    assert_eq!(ServiceConfig::new("svc", "1.0.0").api_prefix, DEFAULT_API_PREFIX);
    assert_eq!(DEFAULT_API_PREFIX, "$SRV");
}

#[test]
fn instance_id_must_be_one_subject_token() {
    let config = || ServiceConfig::new("svc", "1.0.0");
    for ok in ["ID1", "a", "AbCdEf0123456789xyzXYZ", "with-dash_under"] {
        let core = ServiceCore::new(config(), ok.to_owned(), FakeClock::new()).unwrap();
        assert_eq!(core.id(), ok);
    }
    for bad in ["", "a.b", "a b", "a*", "*", "a>", ">", "\t", "a\nb", "."] {
        assert!(ServiceCore::new(config(), bad.to_owned(), FakeClock::new()).is_err(), "{bad:?} should be rejected");
    }
    let (a, b) = (new_id(), new_id());
    for id in [&a, &b] {
        assert_eq!(id.len(), 22, "{id}");
        assert!(id.bytes().all(|c| c.is_ascii_alphanumeric()), "{id}");
        assert!(ServiceCore::new(config(), id.clone(), FakeClock::new()).is_ok());
    }
    assert_ne!(a, b, "two fresh ids differ");
}

/// Whatever id is accepted must give discovery subjects the client can subscribe to (nats-proto's rules:
/// no byte at or below space, no DEL, no empty token, no wildcard).
#[test]
fn an_accepted_instance_id_gives_valid_discovery_subjects() {
    for id in ["ok", "a\u{7f}b", "\u{7f}", "ü", "a\u{1}b"] {
        let Ok(core) = ServiceCore::new(ServiceConfig::new("svc", "1.0.0"), id.to_owned(), FakeClock::new()) else {
            continue;
        };
        for sub in core.verb_subscriptions() {
            assert!(
                nats_proto::subject::validate_publish_subject(sub.subject.as_bytes()).is_ok(),
                "id {id:?} was accepted but gives the invalid subject {:?}",
                sub.subject
            );
        }
    }
}

#[test]
fn config_errors_display_what_was_wrong() {
    let err = new_core(ServiceConfig::new("bad name", "1.0.0")).unwrap_err();
    assert!(err.to_string().contains("bad name"), "{err}");
    let err = new_core(ServiceConfig::new("svc", "v1")).unwrap_err();
    assert!(err.to_string().contains("v1"), "{err}");
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert!(!boxed.to_string().is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// Discovery subscriptions
// ---------------------------------------------------------------------------------------------------------------

fn verb_subjects(core: &ServiceCore) -> BTreeSet<(String, &'static str)> {
    let subs = core.verb_subscriptions();
    assert_eq!(subs.len(), 9, "3 verbs x 3 forms: {subs:?}");
    let mut out = BTreeSet::new();
    for s in subs {
        assert_eq!(s.queue, None, "discovery subscription {} must never be queued", s.subject);
        assert!(nats_proto::subject::validate_publish_subject(s.subject.as_bytes()).is_ok(), "{}", s.subject);
        let Target::Verb(verb) = s.target else { panic!("{} targets an endpoint", s.subject) };
        assert!(s.subject.split('.').any(|t| t == verb.as_str()), "{} does not carry {verb:?}", s.subject);
        assert!(out.insert((s.subject.clone(), verb.as_str())), "duplicate {}", s.subject);
    }
    out
}

fn expected_verbs(prefix: &str, name: &str, id: &str) -> BTreeSet<(String, &'static str)> {
    let mut out = BTreeSet::new();
    for verb in [Verb::Ping, Verb::Info, Verb::Stats] {
        let v = verb.as_str();
        out.insert((format!("{prefix}.{v}"), v));
        out.insert((format!("{prefix}.{v}.{name}"), v));
        out.insert((format!("{prefix}.{v}.{name}.{id}"), v));
    }
    out
}

#[test]
fn nine_plain_discovery_subscriptions_under_srv() {
    let (core, _) = core();
    assert_eq!((Verb::Ping.as_str(), Verb::Info.as_str(), Verb::Stats.as_str()), ("PING", "INFO", "STATS"));
    assert_eq!(verb_subjects(&core), expected_verbs("$SRV", "svc", "ID1"));
    let listed: BTreeSet<String> = core.verb_subscriptions().into_iter().map(|s| s.subject).collect();
    let literal: BTreeSet<String> = [
        "$SRV.PING",
        "$SRV.PING.svc",
        "$SRV.PING.svc.ID1",
        "$SRV.INFO",
        "$SRV.INFO.svc",
        "$SRV.INFO.svc.ID1",
        "$SRV.STATS",
        "$SRV.STATS.svc",
        "$SRV.STATS.svc.ID1",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(listed, literal);
}

#[test]
fn custom_prefix_name_and_id_keep_their_case() {
    let clock = FakeClock::new();
    let config = ServiceConfig::new("My-Svc", "1.0.0").api_prefix("Org.Tools");
    let core = ServiceCore::new(config, "AbC9xYz".to_owned(), clock).unwrap();
    assert_eq!(verb_subjects(&core), expected_verbs("Org.Tools", "My-Svc", "AbC9xYz"));
    assert!(core.verb_subscriptions().iter().all(|s| !s.subject.starts_with("$SRV")));
    assert!(core.verb_subscriptions().iter().any(|s| s.subject == "Org.Tools.STATS.My-Svc.AbC9xYz"));
}

#[test]
fn discovery_subscriptions_ignore_the_service_queue_group() {
    for q in [QueueGroup::Named("workers".into()), QueueGroup::Disabled, QueueGroup::Inherit] {
        let (core, _) = core_with(ServiceConfig::new("svc", "1.0.0").queue_group(q.clone()));
        assert_eq!(verb_subjects(&core), expected_verbs("$SRV", "svc", "ID1"), "{q:?}");
    }
}

#[test]
fn discovery_subscriptions_do_not_change_with_endpoints() {
    let (mut core, _) = core();
    let before = core.verb_subscriptions();
    add_root(&mut core, "a");
    assert_eq!(core.verb_subscriptions(), before);
}

// ---------------------------------------------------------------------------------------------------------------
// Queue groups (spec 1.5)
// ---------------------------------------------------------------------------------------------------------------

fn queue_of(core: &mut ServiceCore, group: &Group, config: EndpointConfig) -> Option<String> {
    core.add_endpoint(group, config).expect("valid endpoint").queue
}

/// The queue group of endpoint `index` as INFO and STATS report it; they must agree.
fn reported_queue(core: &mut ServiceCore, index: usize) -> String {
    let info = info_json(core);
    let stats = stats_json(core);
    let i = info["endpoints"][index]["queue_group"].as_str().unwrap().to_owned();
    let s = stats["endpoints"][index]["queue_group"].as_str().unwrap().to_owned();
    assert_eq!(i, s, "INFO and STATS disagree on the queue group of endpoint {index}");
    i
}

#[test]
fn default_queue_group_is_q() {
    assert_eq!(DEFAULT_QUEUE_GROUP, "q");
    assert_eq!(ServiceConfig::new("svc", "1.0.0").queue_group, QueueGroup::Inherit);
    assert_eq!(EndpointConfig::new("e").queue_group, QueueGroup::Inherit);
    let (mut core, _) = core();
    let root = core.root();
    assert_eq!(root.queue_group(), Some("q"));
    assert_eq!(root.prefix(), "");
    assert_eq!(queue_of(&mut core, &root, EndpointConfig::new("e")).as_deref(), Some("q"));
    let g = root.group("g", QueueGroup::Inherit).unwrap();
    assert_eq!(g.queue_group(), Some("q"));
    assert_eq!(queue_of(&mut core, &g, EndpointConfig::new("f")).as_deref(), Some("q"));
    assert_eq!(reported_queue(&mut core, 0), "q");
    assert_eq!(reported_queue(&mut core, 1), "q");
}

#[test]
fn service_named_queue_group_is_inherited_and_overridable() {
    let config = ServiceConfig::new("svc", "1.0.0").queue_group(QueueGroup::Named("svc-q".into()));
    let (mut core, _) = core_with(config);
    let root = core.root();
    assert_eq!(root.queue_group(), Some("svc-q"));
    assert_eq!(queue_of(&mut core, &root, EndpointConfig::new("inherit")).as_deref(), Some("svc-q"));
    let named = EndpointConfig::new("named").queue_group(QueueGroup::Named("ep-q".into()));
    assert_eq!(queue_of(&mut core, &root, named).as_deref(), Some("ep-q"));
    let disabled = EndpointConfig::new("disabled").queue_group(QueueGroup::Disabled);
    assert_eq!(queue_of(&mut core, &root, disabled), None);
    let g = root.group("g", QueueGroup::Inherit).unwrap();
    assert_eq!(g.queue_group(), Some("svc-q"));
    assert_eq!(queue_of(&mut core, &g, EndpointConfig::new("in-group")).as_deref(), Some("svc-q"));

    assert_eq!(reported_queue(&mut core, 0), "svc-q");
    assert_eq!(reported_queue(&mut core, 1), "ep-q");
    assert_eq!(reported_queue(&mut core, 2), "", "disabled is reported as an empty string");
    assert_eq!(reported_queue(&mut core, 3), "svc-q");
}

#[test]
fn service_disabled_queue_group_gives_plain_subscriptions() {
    let (mut core, _) = core_with(ServiceConfig::new("svc", "1.0.0").queue_group(QueueGroup::Disabled));
    let root = core.root();
    assert_eq!(root.queue_group(), None);
    // 3. parent disabled -> plain subscribe.
    assert_eq!(queue_of(&mut core, &root, EndpointConfig::new("inherit")), None);
    // 2. the endpoint's own queue group wins over a disabled parent.
    let named = EndpointConfig::new("named").queue_group(QueueGroup::Named("ep-q".into()));
    assert_eq!(queue_of(&mut core, &root, named).as_deref(), Some("ep-q"));
    // Groups inherit "disabled" too, unless they name their own.
    let g_inherit = root.group("gi", QueueGroup::Inherit).unwrap();
    assert_eq!(g_inherit.queue_group(), None);
    assert_eq!(queue_of(&mut core, &g_inherit, EndpointConfig::new("in-gi")), None);
    let g_named = root.group("gn", QueueGroup::Named("grp-q".into())).unwrap();
    assert_eq!(g_named.queue_group(), Some("grp-q"));
    assert_eq!(queue_of(&mut core, &g_named, EndpointConfig::new("in-gn")).as_deref(), Some("grp-q"));

    let info = info_json(&mut core);
    let stats = stats_json(&mut core);
    let expected = ["", "ep-q", "", "grp-q"];
    for (i, q) in expected.iter().enumerate() {
        assert_eq!(info["endpoints"][i]["queue_group"], json!(q), "INFO endpoint {i}");
        assert_eq!(stats["endpoints"][i]["queue_group"], json!(q), "STATS endpoint {i}");
    }
}

#[test]
fn group_level_resolution() {
    let (mut core, _) = core();
    let root = core.root();
    // A group that disables queueing.
    let off = root.group("off", QueueGroup::Disabled).unwrap();
    assert_eq!(off.queue_group(), None);
    assert_eq!(queue_of(&mut core, &off, EndpointConfig::new("a")), None);
    let named = EndpointConfig::new("b").queue_group(QueueGroup::Named("ep-q".into()));
    assert_eq!(queue_of(&mut core, &off, named).as_deref(), Some("ep-q"));
    // A group with its own queue group.
    let own = root.group("own", QueueGroup::Named("grp-q".into())).unwrap();
    assert_eq!(queue_of(&mut core, &own, EndpointConfig::new("c")).as_deref(), Some("grp-q"));
    let disabled = EndpointConfig::new("d").queue_group(QueueGroup::Disabled);
    assert_eq!(queue_of(&mut core, &own, disabled), None);
    // 1. endpoint disabled wins over everything.
    let e = EndpointConfig::new("e").queue_group(QueueGroup::Disabled);
    assert_eq!(queue_of(&mut core, &root, e), None);

    let subjects: Vec<String> = core.info().endpoints.into_iter().map(|e| e.subject).collect();
    assert_eq!(subjects, ["off.a", "off.b", "own.c", "own.d", "e"]);
    let queues: Vec<String> = (0..5).map(|i| reported_queue(&mut core, i)).collect();
    assert_eq!(queues, ["", "ep-q", "grp-q", "", ""]);
}

#[test]
fn nested_group_resolution() {
    let config = ServiceConfig::new("svc", "1.0.0").queue_group(QueueGroup::Named("svc-q".into()));
    let (mut core, _) = core_with(config);
    let root = core.root();
    let outer = root.group("outer", QueueGroup::Named("outer-q".into())).unwrap();
    let inherit = outer.group("inherit", QueueGroup::Inherit).unwrap();
    assert_eq!(inherit.queue_group(), Some("outer-q"), "nested groups inherit the parent group, not the service");
    let off = outer.group("off", QueueGroup::Disabled).unwrap();
    assert_eq!(off.queue_group(), None);
    let off_inherit = off.group("deeper", QueueGroup::Inherit).unwrap();
    assert_eq!(off_inherit.queue_group(), None, "disabled propagates down");
    let off_named = off.group("named", QueueGroup::Named("deep-q".into())).unwrap();
    assert_eq!(off_named.queue_group(), Some("deep-q"));

    assert_eq!(queue_of(&mut core, &inherit, EndpointConfig::new("a")).as_deref(), Some("outer-q"));
    assert_eq!(queue_of(&mut core, &off_inherit, EndpointConfig::new("b")), None);
    assert_eq!(queue_of(&mut core, &off_named, EndpointConfig::new("c")).as_deref(), Some("deep-q"));
    let named = EndpointConfig::new("d").queue_group(QueueGroup::Named("ep-q".into()));
    assert_eq!(queue_of(&mut core, &off_inherit, named).as_deref(), Some("ep-q"));

    let info = core.info();
    let got: Vec<(&str, &str)> = info.endpoints.iter().map(|e| (e.subject.as_str(), e.queue_group.as_str())).collect();
    assert_eq!(
        got,
        [
            ("outer.inherit.a", "outer-q"),
            ("outer.off.deeper.b", ""),
            ("outer.off.named.c", "deep-q"),
            ("outer.off.deeper.d", "ep-q")
        ]
    );
}

#[test]
fn nested_groups_join_prefixes_without_stray_dots() {
    let (mut core, _) = core();
    let root = core.root();
    let empty = root.group("", QueueGroup::Inherit).unwrap();
    assert_eq!(empty.prefix(), "");
    let a = root.group("a", QueueGroup::Inherit).unwrap();
    assert_eq!(a.prefix(), "a");
    let abc = a.group("b.c", QueueGroup::Inherit).unwrap();
    assert_eq!(abc.prefix(), "a.b.c");
    let a_empty = a.group("", QueueGroup::Inherit).unwrap();
    assert_eq!(a_empty.prefix(), "a");
    let empty_b = empty.group("b", QueueGroup::Inherit).unwrap();
    assert_eq!(empty_b.prefix(), "b");
    let wild = a.group("*", QueueGroup::Inherit).unwrap();
    assert_eq!(wild.prefix(), "a.*");

    let cases = [
        (&empty, EndpointConfig::new("e1"), "e1"),
        (&a, EndpointConfig::new("e2"), "a.e2"),
        (&abc, EndpointConfig::new("e3").subject("x.>"), "a.b.c.x.>"),
        (&a_empty, EndpointConfig::new("e4"), "a.e4"),
        (&empty_b, EndpointConfig::new("e5").subject("s.*"), "b.s.*"),
        (&wild, EndpointConfig::new("e6"), "a.*.e6"),
    ];
    for (group, config, subject) in cases {
        let sub = core.add_endpoint(group, config).unwrap();
        assert_eq!(sub.subject, subject);
        assert!(!sub.subject.starts_with('.') && !sub.subject.ends_with('.') && !sub.subject.contains(".."));
    }
    // INFO and STATS report the full subject, group prefix included.
    let info = info_json(&mut core);
    let stats = stats_json(&mut core);
    let want = ["e1", "a.e2", "a.b.c.x.>", "a.e4", "b.s.*", "a.*.e6"];
    for (i, s) in want.iter().enumerate() {
        assert_eq!(info["endpoints"][i]["subject"], json!(s));
        assert_eq!(stats["endpoints"][i]["subject"], json!(s));
    }
}

#[test]
fn empty_subject_in_a_group_is_never_a_dangling_dot() {
    let (mut core, _) = core();
    let g = core.root().group("g", QueueGroup::Inherit).unwrap();
    if let Ok(sub) = core.add_endpoint(&g, EndpointConfig::new("e").subject("")) {
        assert_eq!(sub.subject, "g");
    }
    let root = core.root();
    assert!(core.add_endpoint(&root, EndpointConfig::new("e").subject("")).is_err(), "no subject at all");
}

// ---------------------------------------------------------------------------------------------------------------
// Replies: shapes
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn ping_reply_is_exactly_the_standard_fields() {
    let (mut core, _) = core();
    let v = ping_json(&mut core);
    assert_eq!(
        v,
        json!({"type": "io.nats.micro.v1.ping_response", "name": "svc", "id": "ID1", "version": "1.0.0", "metadata": {}})
    );

    let config = ServiceConfig::new("svc", "2.1.0-rc.1+b").description("ignored by PING").metadata("k", "v");
    let (mut core, _) = core_with(config);
    add_root(&mut core, "e");
    let v = ping_json(&mut core);
    assert_eq!(v["version"], json!("2.1.0-rc.1+b"));
    assert_eq!(v["metadata"], json!({"k": "v"}));
    assert!(v.get("description").is_none() && v.get("endpoints").is_none());
}

#[test]
fn ping_reply_is_constant() {
    let (mut core, clock) = core();
    let first = core.verb_reply(Verb::Ping);
    let id = add_root(&mut core, "e");
    clock.advance(Duration::from_secs(5));
    let t = core.begin(id).unwrap();
    core.finish(t, Outcome::Error { code: 500, description: "x".into() });
    core.reset();
    let again = core.verb_reply(Verb::Ping);
    assert_eq!(first, again);
    assert_eq!(first.as_ptr(), again.as_ptr(), "PING is serialised once and shared");
    let parsed: PingResponse = serde_json::from_slice(&first).unwrap();
    assert_eq!(parsed.kind, micro::wire::PING_TYPE);
    assert_eq!((parsed.name.as_str(), parsed.id.as_str(), parsed.version.as_str()), ("svc", "ID1", "1.0.0"));
}

#[test]
fn info_reply_without_description_metadata_or_endpoints() {
    let (mut core, _) = core();
    let v = info_json(&mut core);
    assert_eq!(
        v,
        json!({
            "type": "io.nats.micro.v1.info_response",
            "name": "svc",
            "id": "ID1",
            "version": "1.0.0",
            "metadata": {},
            "description": "",
            "endpoints": []
        })
    );
}

#[test]
fn info_reply_lists_endpoints_in_registration_order_with_duplicates() {
    let config = ServiceConfig::new("calc", "1.2.3").description("arithmetic").metadata("team", "x").metadata("a", "b");
    let (mut core, _) = core_with(config);
    let root = core.root();
    let math = root.group("math", QueueGroup::Inherit).unwrap();
    add(&mut core, &math, EndpointConfig::new("zeta"));
    add(&mut core, &root, EndpointConfig::new("alpha").metadata("schema", "{}"));
    add(&mut core, &math, EndpointConfig::new("zeta").subject("zeta2"));
    add(&mut core, &root, EndpointConfig::new("mid").subject("m.*").queue_group(QueueGroup::Disabled));
    let v = info_json(&mut core);
    assert_eq!(v["description"], json!("arithmetic"));
    assert_eq!(v["metadata"], json!({"team": "x", "a": "b"}));
    assert_eq!(
        v["endpoints"],
        json!([
            {"name": "zeta", "subject": "math.zeta", "queue_group": "q", "metadata": {}},
            {"name": "alpha", "subject": "alpha", "queue_group": "q", "metadata": {"schema": "{}"}},
            {"name": "zeta", "subject": "math.zeta2", "queue_group": "q", "metadata": {}},
            {"name": "mid", "subject": "m.*", "queue_group": "", "metadata": {}}
        ])
    );
    // The value API and the wire agree.
    let parsed: InfoResponse = serde_json::from_value(v).unwrap();
    assert_eq!(parsed, core.info());
}

#[test]
fn stats_reply_without_endpoints() {
    let (mut core, _) = core();
    let v = stats_json(&mut core);
    assert_eq!(
        v,
        json!({
            "type": "io.nats.micro.v1.stats_response",
            "name": "svc",
            "id": "ID1",
            "version": "1.0.0",
            "metadata": {},
            "started": BASE_STARTED,
            "endpoints": []
        })
    );
}

#[test]
fn stats_reply_fresh_endpoints_have_zeroes_and_empty_last_error_and_no_data() {
    let (mut core, _) = core_with(ServiceConfig::new("svc", "1.0.0").metadata("k", "v"));
    let root = core.root();
    let g = root.group("g", QueueGroup::Named("gq".into())).unwrap();
    add(&mut core, &root, EndpointConfig::new("a").metadata("ignored-in-stats", "1"));
    add(&mut core, &g, EndpointConfig::new("b").subject("b.>"));
    let v = stats_json(&mut core);
    assert_eq!(v["metadata"], json!({"k": "v"}), "STATS carries the service metadata");
    assert_eq!(
        v["endpoints"],
        json!([
            {
                "name": "a", "subject": "a", "queue_group": "q",
                "num_requests": 0, "num_errors": 0, "last_error": "",
                "processing_time": 0, "average_processing_time": 0
            },
            {
                "name": "b", "subject": "g.b.>", "queue_group": "gq",
                "num_requests": 0, "num_errors": 0, "last_error": "",
                "processing_time": 0, "average_processing_time": 0
            }
        ])
    );
    for e in v["endpoints"].as_array().unwrap() {
        assert!(e.get("data").is_none(), "no data without a stats handler: {e}");
    }
    let raw = String::from_utf8(core.verb_reply(Verb::Stats).to_vec()).unwrap();
    assert!(!raw.contains("null"), "no nulls anywhere: {raw}");
}

#[test]
fn stats_started_is_rfc3339_utc_and_fixed_until_reset() {
    let (mut core, clock) = core();
    assert_eq!(stats_json(&mut core)["started"], json!(BASE_STARTED));
    clock.advance(Duration::from_millis(1500));
    assert_eq!(core.stats().started, BASE_STARTED, "started does not follow the clock");
    core.reset();
    let started = stats_json(&mut core)["started"].as_str().unwrap().to_owned();
    assert_eq!(started, "2024-03-23T12:38:55.53603544Z");
    clock.advance(Duration::from_nanos(999_999_999 - 536_035_440 + 1)); // to the next whole second
    core.reset();
    assert_eq!(core.stats().started, "2024-03-23T12:38:56Z");
    clock.advance(Duration::from_nanos(1));
    core.reset();
    assert_eq!(core.stats().started, "2024-03-23T12:38:56.000000001Z");
    assert!(is_rfc3339_utc(&core.stats().started));
}

#[test]
fn started_is_taken_from_the_clock_at_creation() {
    let clock = FakeClock::new();
    clock.advance(Duration::from_secs(86_400 * 9 + 3600));
    let mut core = ServiceCore::new(ServiceConfig::new("svc", "1.0.0"), "ID1".into(), clock.clone()).unwrap();
    assert_eq!(core.stats().started, "2024-04-01T13:38:54.03603544Z");
    assert!(is_rfc3339_utc(stats_json(&mut core)["started"].as_str().unwrap()));
}

#[test]
fn stats_handler_fills_data_per_endpoint() {
    let (mut core, _) = core();
    let root = core.root();
    let g = root.group("g", QueueGroup::Disabled).unwrap();
    add(&mut core, &root, EndpointConfig::new("a"));
    add(&mut core, &g, EndpointConfig::new("b").subject("bee"));
    let seen = Arc::new(Mutex::new(Vec::<EndpointInfo>::new()));
    let seen2 = seen.clone();
    let mut calls = 0u64;
    core.set_stats_handler(Box::new(move |e: &EndpointInfo| {
        calls += 1;
        seen2.lock().unwrap().push(e.clone());
        json!({"endpoint": e.name, "call": calls, "nested": {"list": [1, 2.5, null, "s"]}})
    }));
    let v = stats_json(&mut core);
    assert_eq!(v["endpoints"][0]["data"], json!({"endpoint": "a", "call": 1, "nested": {"list": [1, 2.5, null, "s"]}}));
    assert_eq!(v["endpoints"][1]["data"], json!({"endpoint": "b", "call": 2, "nested": {"list": [1, 2.5, null, "s"]}}));
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "called once per endpoint");
        assert_eq!((seen[0].name.as_str(), seen[0].subject.as_str(), seen[0].queue_group.as_str()), ("a", "a", "q"));
        assert_eq!((seen[1].name.as_str(), seen[1].subject.as_str(), seen[1].queue_group.as_str()), ("b", "g.bee", ""));
    }
    // Called anew on every STATS request: data is never a stale copy.
    let v = stats_json(&mut core);
    assert_eq!(v["endpoints"][0]["data"]["call"], json!(3));
    assert_eq!(v["endpoints"][1]["data"]["call"], json!(4));
    // INFO does not call it.
    info_json(&mut core);
    assert_eq!(seen.lock().unwrap().len(), 4);
    // The value API agrees.
    let s = core.stats();
    assert_eq!(s.endpoints[0].data, Some(json!({"endpoint": "a", "call": 5, "nested": {"list": [1, 2.5, null, "s"]}})));
}

#[test]
fn stats_handler_may_return_any_json_value() {
    let (mut core, _) = core();
    add_root(&mut core, "a");
    add_root(&mut core, "b");
    add_root(&mut core, "c");
    core.set_stats_handler(Box::new(|e: &EndpointInfo| match e.name.as_str() {
        "a" => json!(42),
        "b" => json!("text"),
        _ => json!([]),
    }));
    let v = stats_json(&mut core);
    assert_eq!(v["endpoints"][0]["data"], json!(42));
    assert_eq!(v["endpoints"][1]["data"], json!("text"));
    assert_eq!(v["endpoints"][2]["data"], json!([]));
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics with the fake clock
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn a_request_is_counted_on_begin_and_timed_until_finish() {
    let (mut core, clock) = core();
    let id = add_root(&mut core, "e");
    clock.advance_us(100); // time before the request does not count
    let ticket = core.begin(id).unwrap();
    assert_eq!(ticket.endpoint(), id);
    assert_eq!(core.in_flight(id), 1);
    let v = stats_json(&mut core);
    assert_eq!(counters(ep(&v, 0)), (1, 0, 0, 0, String::new()), "counted on receipt, before the reply");
    clock.advance_us(250);
    core.finish(ticket, Outcome::Replied);
    assert_eq!(core.in_flight(id), 0);
    clock.advance_us(1000); // time after the reply does not count
    let v = stats_json(&mut core);
    assert_eq!(counters(ep(&v, 0)), (1, 0, 250_000, 250_000, String::new()));
}

#[test]
fn processing_time_sums_integer_nanoseconds_and_the_average_uses_integer_division() {
    let (mut core, clock) = core();
    let id = add_root(&mut core, "e");
    for us in [1, 2, 4] {
        let t = core.begin(id).unwrap();
        clock.advance_us(us);
        core.finish(t, Outcome::Replied);
    }
    let v = stats_json(&mut core);
    let e = ep(&v, 0);
    assert_eq!(counters(e), (3, 0, 7_000, 2_333, String::new()), "7000 ns / 3 = 2333 (not 2333.33)");
    assert!(e["average_processing_time"].is_u64() && !e["average_processing_time"].is_f64());
    let raw = String::from_utf8(core.verb_reply(Verb::Stats).to_vec()).unwrap();
    assert!(raw.contains(r#""processing_time":7000,"#), "{raw}");
    assert!(raw.contains(r#""average_processing_time":2333"#), "{raw}");

    // Nanosecond resolution.
    let (mut core, clock) = self::core();
    let id = add_root(&mut core, "e");
    for ns in [1, 2, 4] {
        let t = core.begin(id).unwrap();
        clock.advance(Duration::from_nanos(ns));
        core.finish(t, Outcome::Replied);
    }
    let s = core.stats();
    assert_eq!((s.endpoints[0].processing_time, s.endpoints[0].average_processing_time), (7, 2));
}

#[test]
fn overlapping_requests_are_each_timed_from_their_own_receipt() {
    let (mut core, clock) = core();
    let id = add_root(&mut core, "e");
    let a = core.begin(id).unwrap();
    clock.advance_us(3);
    let b = core.begin(id).unwrap();
    assert_eq!(core.in_flight(id), 2);
    clock.advance_us(5);
    core.finish(a, Outcome::Replied); // 8 us
    clock.advance_us(1);
    core.finish(b, Outcome::Replied); // 6 us
    let v = stats_json(&mut core);
    assert_eq!(counters(ep(&v, 0)), (2, 0, 14_000, 7_000, String::new()));
    assert_eq!(core.in_flight(id), 0);
}

#[test]
fn long_durations_stay_integers() {
    let (mut core, clock) = core();
    let id = add_root(&mut core, "e");
    let t = core.begin(id).unwrap();
    clock.advance(Duration::from_secs(3 * 3600) + Duration::from_nanos(7));
    core.finish(t, Outcome::Replied);
    let v = stats_json(&mut core);
    assert_eq!(check_int(&ep(&v, 0)["processing_time"], "processing_time"), 10_800_000_000_007);
}

#[test]
fn an_error_reply_counts_an_error_and_sets_last_error() {
    let (mut core, clock) = core();
    let id = add_root(&mut core, "e");
    let t = core.begin(id).unwrap();
    clock.advance_us(10);
    core.finish(t, Outcome::Error { code: 400, description: "bad input".into() });
    let v = stats_json(&mut core);
    assert_eq!(counters(ep(&v, 0)), (1, 1, 10_000, 10_000, "400:bad input".into()));
    // A success afterwards keeps last_error; the next error replaces it.
    let t = core.begin(id).unwrap();
    core.finish(t, Outcome::Replied);
    let s = core.stats();
    assert_eq!((s.endpoints[0].num_requests, s.endpoints[0].num_errors), (2, 1));
    assert_eq!(s.endpoints[0].last_error, "400:bad input");
    let t = core.begin(id).unwrap();
    core.finish(t, Outcome::Error { code: 500, description: "handler error".into() });
    let v = stats_json(&mut core);
    assert_eq!(counters(ep(&v, 0)), (3, 2, 10_000, 3_333, "500:handler error".into()));
}

#[test]
fn no_response_is_a_request_without_an_error() {
    let (mut core, clock) = core();
    let id = add_root(&mut core, "e");
    let t = core.begin(id).unwrap();
    clock.advance_us(7);
    core.finish(t, Outcome::NoResponse);
    let v = stats_json(&mut core);
    assert_eq!(counters(ep(&v, 0)), (1, 0, 7_000, 7_000, String::new()));
    assert_eq!(core.in_flight(id), 0);
}

#[test]
fn a_failed_publish_counts_an_error() {
    let (mut core, clock) = core();
    let id = add_root(&mut core, "e");
    let t = core.begin(id).unwrap();
    clock.advance_us(2);
    core.finish(t, Outcome::PublishFailed("connection closed".into()));
    let v = stats_json(&mut core);
    let (requests, errors, total, avg, last) = counters(ep(&v, 0));
    assert_eq!((requests, errors, total, avg), (1, 1, 2_000, 2_000));
    let (code, description) = last.split_once(':').expect("code:description");
    assert!(code.parse::<u16>().is_ok(), "numeric code in {last:?}");
    assert!(description.contains("connection closed"), "{last:?}");
    assert_eq!(core.in_flight(id), 0);
}

#[test]
fn max_in_flight_turns_away_requests_with_503() {
    assert_eq!(BUSY_CODE, 503);
    let (mut core, clock) = core();
    let root = core.root();
    let id = add(&mut core, &root, EndpointConfig::new("limited").max_in_flight(2));
    let free = add_root(&mut core, "free");
    let a = core.begin(id).unwrap();
    let b = core.begin(id).unwrap();
    assert_eq!(core.in_flight(id), 2);
    assert_eq!(core.begin(id).unwrap_err(), micro::Busy);
    assert_eq!(core.in_flight(id), 2, "a refused request takes no slot");
    let v = stats_json(&mut core);
    let busy = format!("{BUSY_CODE}:{BUSY_DESCRIPTION}");
    assert!(busy.starts_with("503:"));
    assert_eq!(counters(ep(&v, 0)), (3, 1, 0, 0, busy.clone()), "counted as a request and as an error");
    assert_eq!(counters(ep(&v, 1)), (0, 0, 0, 0, String::new()), "other endpoints are unaffected");
    // Other endpoints have no limit.
    let tickets: Vec<_> = (0..10).map(|_| core.begin(free).unwrap()).collect();
    assert_eq!(core.in_flight(free), 10);
    for t in tickets {
        core.finish(t, Outcome::Replied);
    }
    // Finishing frees a slot.
    clock.advance_us(9);
    core.finish(a, Outcome::Replied);
    assert_eq!(core.in_flight(id), 1);
    let c = core.begin(id).expect("a slot was freed");
    assert_eq!(core.begin(id).unwrap_err(), micro::Busy);
    core.finish(b, Outcome::Replied);
    core.finish(c, Outcome::Replied);
    assert_eq!(core.in_flight(id), 0);
    let v = stats_json(&mut core);
    // 5 requests: a (9 us), b (9 us), refused, c (0 us), refused.
    assert_eq!(counters(ep(&v, 0)), (5, 2, 18_000, 3_600, busy));
}

#[test]
fn max_in_flight_zero_refuses_everything() {
    let (mut core, _) = core();
    let root = core.root();
    let id = add(&mut core, &root, EndpointConfig::new("closed").max_in_flight(0));
    for _ in 0..3 {
        assert!(core.begin(id).is_err());
    }
    let s = core.stats();
    assert_eq!((s.endpoints[0].num_requests, s.endpoints[0].num_errors), (3, 3));
}

#[test]
fn record_error_counts_an_error_without_a_request() {
    let (mut core, _) = core();
    let a = add_root(&mut core, "a");
    let b = add_root(&mut core, "b");
    core.record_error(a, 503, "slow consumer");
    let v = stats_json(&mut core);
    assert_eq!(counters(ep(&v, 0)), (0, 1, 0, 0, "503:slow consumer".into()));
    assert_eq!(counters(ep(&v, 1)), (0, 0, 0, 0, String::new()));
    core.record_error(a, 403, "permissions violation");
    core.record_error(b, 1, "x");
    let v = stats_json(&mut core);
    assert_eq!(counters(ep(&v, 0)), (0, 2, 0, 0, "403:permissions violation".into()));
    assert_eq!(counters(ep(&v, 1)), (0, 1, 0, 0, "1:x".into()));
}

#[test]
fn reset_clears_everything_and_restarts_the_clock() {
    let (mut core, clock) = core();
    let a = add_root(&mut core, "a");
    let root = core.root();
    let b =
        add(&mut core, &root, EndpointConfig::new("b").max_in_flight(1).queue_group(QueueGroup::Named("bq".into())));
    let t = core.begin(a).unwrap();
    clock.advance_us(40);
    core.finish(t, Outcome::Error { code: 418, description: "teapot".into() });
    let held = core.begin(b).unwrap();
    assert!(core.begin(b).is_err());
    core.record_error(a, 500, "x");
    core.set_stats_handler(Box::new(|e: &EndpointInfo| json!({"endpoint": e.name})));
    let before = stats_json(&mut core);
    assert_ne!(counters(ep(&before, 0)), (0, 0, 0, 0, String::new()));

    clock.advance(Duration::from_secs(60));
    core.reset();
    let v = stats_json(&mut core);
    assert_eq!(v["started"], json!("2024-03-23T12:39:54.03607544Z"), "started moves to the clock's wall time now");
    for (i, name) in ["a", "b"].into_iter().enumerate() {
        let e = ep(&v, i);
        assert_eq!(counters(e), (0, 0, 0, 0, String::new()), "endpoint {name} after reset");
        assert_eq!(e["name"], json!(name), "endpoints stay");
        assert_eq!(e["data"], json!({"endpoint": name}), "data is the handler's fresh value, not a stale one");
    }
    // Reset keeps what is configuration, not statistics (Go loses queue_group here).
    assert_eq!(ep(&v, 1)["queue_group"], json!("bq"));
    assert_eq!(ep(&v, 1)["subject"], json!("b"));
    assert_eq!(info_json(&mut core)["endpoints"].as_array().unwrap().len(), 2);
    // The in-flight limit still holds for the request that was in flight before the reset.
    assert_eq!(core.in_flight(b), 1);
    core.finish(held, Outcome::Replied);
    assert_eq!(core.in_flight(b), 0);
    // Received before the reset and finished after: counted in the new window with its time, so STATS never
    // shows processing time (or errors) without a request.
    let s = core.stats();
    assert_eq!(s.endpoints[1].num_requests, 1);
    assert!(s.endpoints[1].processing_time > 0);
    let t = core.begin(b).expect("slot freed");
    core.finish(t, Outcome::Replied);
    let s = core.stats();
    assert_eq!(s.endpoints[1].num_requests, 2);
    assert_eq!(s.endpoints[1].num_errors, 0);
}

#[test]
fn stats_are_kept_per_endpoint_even_on_a_shared_subject() {
    let (mut core, clock) = core();
    let root = core.root();
    let one = add(&mut core, &root, EndpointConfig::new("one").subject("shared"));
    let two =
        add(&mut core, &root, EndpointConfig::new("two").subject("shared").queue_group(QueueGroup::Named("o".into())));
    let t = core.begin(one).unwrap();
    clock.advance_us(5);
    core.finish(t, Outcome::Replied);
    let t = core.begin(two).unwrap();
    clock.advance_us(1);
    core.finish(t, Outcome::NoResponse);
    let t = core.begin(two).unwrap();
    core.finish(t, Outcome::Replied);
    let v = stats_json(&mut core);
    assert_eq!(counters(ep(&v, 0)), (1, 0, 5_000, 5_000, String::new()));
    assert_eq!(counters(ep(&v, 1)), (2, 0, 1_000, 500, String::new()));
}

// ---------------------------------------------------------------------------------------------------------------
// Endpoints added and removed after start
// ---------------------------------------------------------------------------------------------------------------

fn names(v: &Value) -> Vec<String> {
    v["endpoints"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn info_and_stats_reflect_endpoints_added_after_start() {
    let (mut core, _) = core();
    assert_eq!(names(&info_json(&mut core)), Vec::<String>::new());
    assert_eq!(names(&stats_json(&mut core)), Vec::<String>::new());
    add_root(&mut core, "first");
    assert_eq!(names(&info_json(&mut core)), ["first"]);
    assert_eq!(names(&stats_json(&mut core)), ["first"]);
    let g = core.root().group("later", QueueGroup::Inherit).unwrap();
    add(&mut core, &g, EndpointConfig::new("second"));
    assert_eq!(names(&info_json(&mut core)), ["first", "second"]);
    assert_eq!(names(&stats_json(&mut core)), ["first", "second"]);
    assert_eq!(info_json(&mut core)["endpoints"][1]["subject"], json!("later.second"));
}

#[test]
fn remove_endpoint_forgets_it_once() {
    let (mut core, clock) = core();
    let a = add_root(&mut core, "a");
    let b = add_root(&mut core, "b");
    let c = add_root(&mut core, "c");
    let in_flight = core.begin(b).unwrap();
    assert_eq!(core.endpoint(b).map(|e| e.name), Some("b".to_owned()));

    assert!(core.remove_endpoint(b));
    assert!(!core.remove_endpoint(b), "the second removal finds nothing");
    assert_eq!(names(&info_json(&mut core)), ["a", "c"], "the others keep their order");
    assert_eq!(names(&stats_json(&mut core)), ["a", "c"]);
    assert_eq!(core.endpoint(b), None);
    assert_eq!(core.in_flight(b), 0);
    assert!(core.begin(b).is_err(), "no requests for a removed endpoint");
    // Late events for the removed endpoint are harmless and touch nobody else.
    clock.advance_us(3);
    core.finish(in_flight, Outcome::Error { code: 500, description: "late".into() });
    core.record_error(b, 500, "late");
    let v = stats_json(&mut core);
    assert_eq!(counters(ep(&v, 0)), (0, 0, 0, 0, String::new()));
    assert_eq!(counters(ep(&v, 1)), (0, 0, 0, 0, String::new()));

    // Ids are never reused: removing the old id again does not remove a newer endpoint.
    let d = add_root(&mut core, "d");
    assert!(d != a && d != b && d != c);
    assert!(!core.remove_endpoint(b));
    assert_eq!(names(&info_json(&mut core)), ["a", "c", "d"]);
    assert!(core.remove_endpoint(a));
    assert_eq!(names(&info_json(&mut core)), ["c", "d"], "removing the first keeps the order of the rest");
    assert_eq!(names(&stats_json(&mut core)), ["c", "d"]);
    assert!(core.remove_endpoint(c) && core.remove_endpoint(d));
    assert_eq!(info_json(&mut core)["endpoints"], json!([]));
    assert_eq!(stats_json(&mut core)["endpoints"], json!([]), "endpoints stays present when empty");
}

#[test]
fn endpoint_lookup_reports_name_subject_queue_and_metadata() {
    let (mut core, _) = core();
    let g = core.root().group("g", QueueGroup::Named("gq".into())).unwrap();
    let id = add(&mut core, &g, EndpointConfig::new("e").subject("s.*").metadata("k", "v"));
    let info = core.endpoint(id).unwrap();
    assert_eq!(
        info,
        EndpointInfo {
            name: "e".into(),
            subject: "g.s.*".into(),
            queue_group: "gq".into(),
            metadata: meta(&[("k", "v")])
        }
    );
}

#[test]
fn accessors_report_the_configuration() {
    let config = ServiceConfig::new("svc", "1.0.0").description("d").metadata("k", "v");
    let (core, _) = core_with(config.clone());
    assert_eq!(core.name(), "svc");
    assert_eq!(core.id(), "ID1");
    assert_eq!(core.config(), &config);
    let dbg = format!("{core:?}");
    assert!(dbg.contains("svc") && dbg.contains("ID1"), "{dbg}");
}

// ---------------------------------------------------------------------------------------------------------------
// The client-compatibility suite's configuration (spec section 4)
// ---------------------------------------------------------------------------------------------------------------

struct Demo {
    core: ServiceCore,
    clock: Arc<FakeClock>,
    subs: Vec<Subscription>,
}

fn demo() -> Demo {
    let clock = FakeClock::new();
    let config = ServiceConfig::new("demo", "1.0.0").description("demo service").metadata("workload", "cpu");
    let mut core = ServiceCore::new(config, new_id(), clock.clone()).unwrap();
    core.set_stats_handler(Box::new(|e: &EndpointInfo| json!({"endpoint": e.name})));
    let root = core.root();
    let g1 = root.group("g1", QueueGroup::Inherit).unwrap();
    let g2 = root.group("g2", QueueGroup::Named("group-queue".into())).unwrap();
    let eq = || QueueGroup::Named("endpoint-group".into());
    let endpoints = [
        (&root, EndpointConfig::new("demo-default-queue").subject("demo.default").metadata("key", "value")),
        (&root, EndpointConfig::new("demo-custom-queue").subject("demo.default").queue_group(eq())),
        (&g1, EndpointConfig::new("g1-parent-queue").subject("parent.queue")),
        (&g1, EndpointConfig::new("g1-custom-queue").subject("custom.queue").queue_group(eq())),
        (&g2, EndpointConfig::new("g2-parent-queue").subject("parent.queue")),
        (&g2, EndpointConfig::new("g2-custom-queue").subject("custom.queue").queue_group(eq())),
        (&root, EndpointConfig::new("faulty").subject("faulty")),
    ];
    let mut subs = vec![];
    for (group, config) in endpoints {
        subs.push(core.add_endpoint(group, config).unwrap());
    }
    Demo { core, clock, subs }
}

const DEMO_EXPECTED: [(&str, &str, &str); 7] = [
    ("demo-default-queue", "demo.default", "q"),
    ("demo-custom-queue", "demo.default", "endpoint-group"),
    ("g1-parent-queue", "g1.parent.queue", "q"),
    ("g1-custom-queue", "g1.custom.queue", "endpoint-group"),
    ("g2-parent-queue", "g2.parent.queue", "group-queue"),
    ("g2-custom-queue", "g2.custom.queue", "endpoint-group"),
    ("faulty", "faulty", "q"),
];

#[test]
fn compatibility_suite_subscriptions() {
    let d = demo();
    let got: Vec<(&str, Option<&str>)> = d.subs.iter().map(|s| (s.subject.as_str(), s.queue.as_deref())).collect();
    let want: Vec<(&str, Option<&str>)> = DEMO_EXPECTED.iter().map(|(_, s, q)| (*s, Some(*q))).collect();
    assert_eq!(got, want);
    let ids: BTreeSet<EndpointId> = d.subs.iter().map(id_of).collect();
    assert_eq!(ids.len(), 7, "two endpoints on one subject are still two endpoints");
}

#[test]
fn compatibility_suite_info() {
    let mut d = demo();
    let v = info_json(&mut d.core);
    assert_eq!(v["name"], json!("demo"));
    assert_eq!(v["version"], json!("1.0.0"));
    assert_eq!(v["description"], json!("demo service"));
    assert_eq!(v["metadata"], json!({"workload": "cpu"}));
    assert_eq!(v["id"], json!(d.core.id()));
    let endpoints = v["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 7);
    for (e, (name, subject, queue)) in endpoints.iter().zip(DEMO_EXPECTED) {
        assert_eq!(e["name"], json!(name));
        assert_eq!(e["subject"], json!(subject), "{name}");
        assert_eq!(e["queue_group"], json!(queue), "{name}");
        let want_meta = if name == "demo-default-queue" { json!({"key": "value"}) } else { json!({}) };
        assert_eq!(e["metadata"], want_meta, "{name}");
    }
    // PING for the same instance.
    let p = ping_json(&mut d.core);
    assert_eq!(
        (&p["name"], &p["version"], &p["metadata"]),
        (&json!("demo"), &json!("1.0.0"), &json!({"workload": "cpu"}))
    );
    assert_eq!(p["id"], v["id"]);
}

#[test]
fn compatibility_suite_stats() {
    let mut d = demo();
    let ids: Vec<EndpointId> = d.subs.iter().map(id_of).collect();
    // One request to demo.default reaches both endpoints on it (different queue groups): each echoes.
    for &id in &ids[..2] {
        let t = d.core.begin(id).unwrap();
        d.clock.advance_us(2);
        d.core.finish(t, Outcome::Replied);
    }
    // faulty replies with 500 "handler error".
    let t = d.core.begin(ids[6]).unwrap();
    d.clock.advance_us(3);
    d.core.finish(t, Outcome::Error { code: 500, description: "handler error".into() });

    let v = stats_json(&mut d.core);
    assert_eq!(v["name"], json!("demo"));
    assert_eq!(v["metadata"], json!({"workload": "cpu"}));
    let endpoints = v["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 7);
    for (i, (e, (name, subject, queue))) in endpoints.iter().zip(DEMO_EXPECTED).enumerate() {
        assert_eq!((&e["name"], &e["subject"], &e["queue_group"]), (&json!(name), &json!(subject), &json!(queue)));
        assert_eq!(e["data"], json!({"endpoint": name}), "the suite's stats handler");
        let want = match i {
            0 | 1 => (1, 0, 2_000, 2_000, String::new()),
            6 => (1, 1, 3_000, 3_000, "500:handler error".to_owned()),
            _ => (0, 0, 0, 0, String::new()),
        };
        assert_eq!(counters(e), want, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading replies back (wire types)
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn wire_missing_fields_take_defaults() {
    let ping: PingResponse = serde_json::from_str("{}").unwrap();
    assert_eq!(ping, PingResponse::default());
    let ping: PingResponse =
        serde_json::from_str(r#"{"type":"io.nats.micro.v1.ping_response","name":"a","id":"1","version":"1.0.0"}"#)
            .unwrap();
    assert_eq!((ping.name.as_str(), ping.metadata.len()), ("a", 0));

    let stats: StatsResponse =
        serde_json::from_str(r#"{"type":"io.nats.micro.v1.stats_response","name":"a","id":"1","version":"1.0.0"}"#)
            .unwrap();
    assert!(stats.endpoints.is_empty() && stats.started.is_empty() && stats.metadata.is_empty());

    // JS omits last_error until the first error, and endpoint metadata when unset.
    let e: EndpointStats =
        serde_json::from_str(r#"{"name":"e","subject":"e","num_requests":3,"processing_time":10}"#).unwrap();
    assert_eq!((e.num_requests, e.num_errors, e.processing_time, e.average_processing_time), (3, 0, 10, 0));
    assert_eq!((e.last_error.as_str(), e.queue_group.as_str(), e.data.as_ref()), ("", "", None));
    let e: EndpointInfo = serde_json::from_str(r#"{"name":"e","subject":"e"}"#).unwrap();
    assert!(e.metadata.is_empty() && e.queue_group.is_empty());
}

#[test]
fn wire_reads_pre_2023_info_with_subjects() {
    let old = r#"{"type":"io.nats.micro.v1.info_response","name":"old","id":"X","version":"0.1.0",
        "description":"legacy","subjects":["old.a","old.b"]}"#;
    let info: InfoResponse = serde_json::from_str(old).unwrap();
    assert_eq!(info.subjects, ["old.a", "old.b"]);
    assert!(info.endpoints.is_empty());
    assert_eq!(info.description, "legacy");
    // Written back it is the current shape: endpoints, never subjects.
    let written: Value = serde_json::to_value(&info).unwrap();
    assert!(written.get("subjects").is_none(), "{written}");
    assert_eq!(written["endpoints"], json!([]));
    assert_eq!(written["metadata"], json!({}));
}

#[test]
fn wire_ignores_fields_from_older_or_other_revisions() {
    let info = r#"{"type":"io.nats.micro.v1.info_response","name":"a","id":"1","version":"1.0.0","description":"",
        "api_url":"http://x","schema":{"request":"r"},
        "endpoints":[{"name":"e","subject":"e","queue_group":"q","schema":{},"extra":1}]}"#;
    let info: InfoResponse = serde_json::from_str(info).unwrap();
    assert_eq!(info.endpoints.len(), 1);
    let stats = r#"{"type":"io.nats.micro.v1.stats_response","name":"a","id":"1","version":"1.0.0",
        "started":"2024-01-01T00:00:00.123Z",
        "endpoints":[{"name":"e","subject":"e","num_requests":1,"num_errors":0,"last_error":"",
        "processing_time":5,"average_processing_time":5,"total_latency":5,"average_latency":5,"data":{"x":1}}]}"#;
    let stats: StatsResponse = serde_json::from_str(stats).unwrap();
    assert_eq!(stats.endpoints[0].data, Some(json!({"x": 1})));
    assert_eq!(stats.started, "2024-01-01T00:00:00.123Z");
}

/// Go sends `"metadata": null` for endpoints without metadata (spec 1.3), and the schemas allow it: the
/// discovery client must read Go services.
#[test]
fn wire_reads_go_endpoint_metadata_null() {
    let go_info = r#"{"type":"io.nats.micro.v1.info_response","name":"go","id":"1","version":"1.0.0",
        "description":"","metadata":{},
        "endpoints":[{"name":"e","subject":"e","queue_group":"q","metadata":null}]}"#;
    let info: Result<InfoResponse, _> = serde_json::from_str(go_info);
    let info = info.expect("Go's INFO with endpoint metadata null must parse");
    assert!(info.endpoints[0].metadata.is_empty());
}

/// The schemas' `optional_metadata` is an object of strings or null, for the service as well.
#[test]
fn wire_reads_null_service_metadata() {
    for kind in ["ping", "info", "stats"] {
        let json = format!(
            r#"{{"type":"io.nats.micro.v1.{kind}_response","name":"a","id":"1","version":"1.0.0","description":"",
            "started":"2024-01-01T00:00:00Z","endpoints":[],"metadata":null}}"#
        );
        let ok = match kind {
            "ping" => serde_json::from_str::<PingResponse>(&json).map(|r| r.metadata.is_empty()),
            "info" => serde_json::from_str::<InfoResponse>(&json).map(|r| r.metadata.is_empty()),
            _ => serde_json::from_str::<StatsResponse>(&json).map(|r| r.metadata.is_empty()),
        };
        assert!(ok.expect("metadata null is allowed by the schema"), "{kind}");
    }
}

/// nats.py sends `"description": null` when unset and `"data": null` without a stats handler (spec 1.1, 1.6).
#[test]
fn wire_reads_python_nulls() {
    let py_stats = r#"{"name":"e","subject":"e","num_requests":1,"num_errors":0,"last_error":"",
        "processing_time":1,"average_processing_time":1,"data":null}"#;
    let e: EndpointStats = serde_json::from_str(py_stats).unwrap();
    assert_eq!(e.data, None);

    let py_info = r#"{"type":"io.nats.micro.v1.info_response","name":"py","id":"1","version":"1.0.0",
        "description":null,"metadata":{},"endpoints":[]}"#;
    let info: Result<InfoResponse, _> = serde_json::from_str(py_info);
    assert_eq!(info.expect("nats.py's INFO with description null must parse").description, "");
}

#[test]
fn wire_round_trips_what_the_core_writes() {
    let mut d = demo();
    let id = id_of(&d.subs[6]);
    let t = d.core.begin(id).unwrap();
    d.clock.advance_us(1);
    d.core.finish(t, Outcome::Error { code: 500, description: "handler error".into() });
    let info: InfoResponse = serde_json::from_slice(&d.core.verb_reply(Verb::Info)).unwrap();
    assert_eq!(info, d.core.info());
    assert_eq!(info.kind, micro::wire::INFO_TYPE);
    let stats: StatsResponse = serde_json::from_slice(&d.core.verb_reply(Verb::Stats)).unwrap();
    assert_eq!(stats.kind, micro::wire::STATS_TYPE);
    assert_eq!(stats, d.core.stats());
    assert_eq!(stats.endpoints[6].last_error, "500:handler error");
}
