//! Services and the discovery client against a real `nats-server`: every discovery subject form (default and
//! custom API prefix, with natscli's HPUB, without a reply subject), several instances of one service (fan-out
//! of the verbs, queue groups on the endpoints), the client-compatibility configuration, typed endpoints and
//! `Discovery::request`, graceful stop with requests in flight (blocking and tokio), endpoint removal,
//! in-flight limits, statistics and reset, and an endpoint falling behind its pending limits.
//!
//! Every wait is bounded: replies are awaited for at most a few seconds, and a missing one fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use micro::discovery::{Collect, Discovery, DiscoveryError};
use micro::wire::{EndpointInfo, INFO_TYPE, PING_TYPE, STATS_TYPE};
use micro::{
    AsyncService, EndpointConfig, Metadata, QueueGroup, Service, ServiceConfig, ServiceError, StopReason, BUSY_CODE,
    BUSY_DESCRIPTION, ERROR_CODE_HEADER, ERROR_HEADER,
};
use nats_blocking::{Client, ConnectOptions, Error, Headers, Message, PendingLimits};
use nats_server_harness::NatsServer;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------------------------
// Test support
// ---------------------------------------------------------------------------------------------------------------

/// The longest any single wait for a reply may take.
const WAIT: Duration = Duration::from_secs(5);
/// How long to keep listening after the last reply of a fan-out.
const STALL: Duration = Duration::from_millis(500);

/// A blocking client whose requests and flushes give up after a few seconds.
fn connect(url: &str) -> Client {
    let options =
        ConnectOptions::new().server(url).request_timeout(Duration::from_secs(3)).flush_timeout(Duration::from_secs(3));
    Client::connect(options).expect("connects")
}

/// Discovery that waits for every instance (stall after the last reply), never longer than `WAIT`.
fn discovery(client: &Client) -> Discovery<Client> {
    Discovery::new(client.clone()).collect(Collect { timeout: WAIT, stall: Some(STALL), max: None })
}

/// The service error a reply carries.
fn service_error(msg: &Message) -> Option<ServiceError> {
    msg.headers().and_then(ServiceError::from_headers)
}

fn payload(msg: &Message) -> &str {
    std::str::from_utf8(msg.payload()).expect("UTF-8 payload")
}

/// Sends one request (with `headers`, if any) to `subject` on a fresh inbox and collects the replies: at most
/// `max`, stopping `STALL` after the last one, `WAIT` at most. A no-responders status ends it with no replies.
fn gather(client: &Client, subject: &str, headers: Option<&Headers>, body: &str, max: Option<usize>) -> Vec<Message> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(&inbox).unwrap();
    let body = body.to_owned();
    match headers {
        Some(h) => client.publish_with_reply_and_headers(subject, &inbox, h, body),
        None => client.publish_with_reply(subject, &inbox, body),
    }
    .unwrap();
    client.flush().unwrap();
    collect_replies(&mut sub, max)
}

/// Sends `n` requests (payloads "0".."n-1") to `subject`, all answered to one inbox, and collects every reply.
fn fan(client: &Client, subject: &str, n: usize) -> Vec<Message> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(&inbox).unwrap();
    for i in 0..n {
        client.publish_with_reply(subject, &inbox, i.to_string()).unwrap();
    }
    client.flush().unwrap();
    collect_replies(&mut sub, None)
}

fn collect_replies(sub: &mut nats_blocking::Subscriber, max: Option<usize>) -> Vec<Message> {
    let deadline = Instant::now() + WAIT;
    let mut wait = WAIT;
    let mut replies = vec![];
    while max.is_none_or(|m| replies.len() < m) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match sub.next_timeout(wait.min(deadline - now)) {
            Ok(msg) if msg.status().is_some() => break, // no responders
            Ok(msg) => {
                replies.push(msg);
                wait = STALL;
            }
            Err(_) => break,
        }
    }
    replies
}

/// Sends `n` requests from `n` threads, each answered to its own inbox, and returns once the server has every
/// one of them (each thread flushed), the threads still waiting (at most 10 s) for their replies.
fn requests_in_flight(client: &Client, subject: &str, n: usize) -> Vec<JoinHandle<Option<Message>>> {
    let (sent_tx, sent_rx) = mpsc::channel();
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (client, subject, sent) = (client.clone(), subject.to_owned(), sent_tx.clone());
            thread::spawn(move || {
                let inbox = client.new_inbox();
                let mut sub = client.subscribe(&inbox).unwrap();
                client.publish_with_reply(&subject, &inbox, i.to_string()).unwrap();
                client.flush().unwrap();
                sent.send(()).unwrap();
                sub.next_timeout(Duration::from_secs(10)).ok()
            })
        })
        .collect();
    for _ in 0..n {
        sent_rx.recv_timeout(WAIT).expect("every request reaches the server");
    }
    threads
}

/// Joins the threads of `requests_in_flight`: each got its own payload echoed back, without error headers.
fn assert_all_answered(threads: Vec<JoinHandle<Option<Message>>>) {
    let mut lost = vec![];
    for (i, t) in threads.into_iter().enumerate() {
        match t.join().expect("requester thread") {
            Some(reply) if reply.status().is_none() && service_error(&reply).is_none() => {
                assert_eq!(payload(&reply), i.to_string(), "reply to request {i}");
            }
            other => lost.push((i, other.map(|m| (m.status(), m.header_block())))),
        }
    }
    assert!(lost.is_empty(), "requests without a proper reply: {lost:?}");
}

/// Joins the threads of `requests_in_flight`: each got `body`, without error headers.
fn assert_all_answered_with(threads: Vec<JoinHandle<Option<Message>>>, body: &str) {
    for (i, t) in threads.into_iter().enumerate() {
        let reply = t.join().expect("requester thread").unwrap_or_else(|| panic!("request {i} lost"));
        assert!(reply.status().is_none() && service_error(&reply).is_none(), "request {i}: {reply:?}");
        assert_eq!(payload(&reply), body, "request {i}");
    }
}

fn echo(mut req: micro::Request) {
    let body = req.payload_bytes();
    req.respond(body).unwrap();
}

fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// `started` as (seconds part, nanoseconds) so two of them compare in time order.
fn started_key(started: &str) -> (String, u32) {
    let body = started.strip_suffix('Z').expect("UTC");
    let (secs, fraction) = body.split_once('.').unwrap_or((body, ""));
    let nanos = if fraction.is_empty() { 0 } else { format!("{fraction:0<9}").parse().unwrap() };
    (secs.to_owned(), nanos)
}

/// Polls `check` until it returns true, for at most `WAIT`.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// `fut`, failing the test if it takes longer than twice `WAIT` (under smol).
async fn smol_within<T>(fut: impl std::future::Future<Output = T>) -> T {
    let late = async {
        smol::Timer::after(WAIT * 2).await;
        panic!("not done within {:?}", WAIT * 2)
    };
    smol::future::or(fut, late).await
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

// ---------------------------------------------------------------------------------------------------------------
// Discovery subjects
// ---------------------------------------------------------------------------------------------------------------

/// Every form of every verb under `prefix` answers with the right type, name and id: a plain request with an
/// arbitrary payload, and natscli's HPUB (`Accept-Encoding: snappy`, body `{}`).
fn check_every_form(client: &Client, prefix: &str, name: &str, id: &str) {
    let mut snappy = Headers::new();
    snappy.insert("Accept-Encoding", "snappy").unwrap();
    for (verb, kind) in [("PING", PING_TYPE), ("INFO", INFO_TYPE), ("STATS", STATS_TYPE)] {
        for subject in
            [format!("{prefix}.{verb}"), format!("{prefix}.{verb}.{name}"), format!("{prefix}.{verb}.{name}.{id}")]
        {
            for (headers, body) in [(None, "not json at all"), (None, ""), (Some(&snappy), "{}")] {
                let replies = gather(client, &subject, headers, body, Some(1));
                assert_eq!(replies.len(), 1, "{subject} with headers {:?} and body {body:?}", headers.is_some());
                let v: Value = serde_json::from_slice(replies[0].payload()).unwrap();
                assert_eq!(
                    (v["type"].as_str(), v["name"].as_str(), v["id"].as_str()),
                    (Some(kind), Some(name), Some(id))
                );
            }
        }
    }
}

/// Publishes every verb form without a reply subject (with and without headers).
fn publish_without_reply(client: &Client, prefix: &str, name: &str, id: &str) {
    let mut snappy = Headers::new();
    snappy.insert("Accept-Encoding", "snappy").unwrap();
    for verb in ["PING", "INFO", "STATS"] {
        for subject in
            [format!("{prefix}.{verb}"), format!("{prefix}.{verb}.{name}"), format!("{prefix}.{verb}.{name}.{id}")]
        {
            client.publish(&subject, "{}").unwrap();
            client.publish_with_headers(&subject, &snappy, "{}").unwrap();
        }
    }
    client.flush().unwrap();
}

#[test]
fn every_discovery_form_answers_with_default_and_custom_prefix() {
    let server = NatsServer::start();
    let plain = Service::start(connect(&server.url()), ServiceConfig::new("plain", "1.0.0")).unwrap();
    plain.endpoint(&plain.root(), EndpointConfig::new("echo"), echo).unwrap();
    let alt_config = ServiceConfig::new("alt", "2.0.0").api_prefix("ALT");
    let alt = Service::start(connect(&server.url()), alt_config).unwrap();
    alt.endpoint(&alt.root(), EndpointConfig::new("alt-echo"), echo).unwrap();
    let client = connect(&server.url());

    check_every_form(&client, "$SRV", "plain", &plain.id());
    check_every_form(&client, "ALT", "alt", &alt.id());

    // Each prefix reaches only its own service.
    let names = |replies: Vec<Message>| -> Vec<String> {
        replies.iter().map(|m| serde_json::from_slice::<Value>(m.payload()).unwrap()["name"].to_string()).collect()
    };
    assert_eq!(names(gather(&client, "$SRV.PING", None, "", None)), [r#""plain""#]);
    assert_eq!(names(gather(&client, "ALT.PING", None, "", None)), [r#""alt""#]);
    assert!(matches!(client.request("$SRV.PING.alt", ""), Err(Error::NoResponders)));
    assert!(matches!(client.request("ALT.INFO.plain", ""), Err(Error::NoResponders)));

    // The discovery client, all three forms of all three verbs, with either prefix.
    for (d, name, id) in
        [(discovery(&client), "plain", plain.id()), (discovery(&client).prefix("ALT"), "alt", alt.id())]
    {
        for (n, i) in [(None, None), (Some(name), None), (Some(name), Some(id.as_str()))] {
            let pings = d.ping(n, i).unwrap();
            assert_eq!(pings.len(), 1, "PING {n:?} {i:?}");
            assert_eq!((pings[0].value.name.as_str(), pings[0].value.id.as_str()), (name, id.as_str()));
            assert_eq!(pings[0].value.kind, PING_TYPE);
            let infos = d.info(n, i).unwrap();
            assert_eq!(infos.len(), 1, "INFO {n:?} {i:?}");
            assert_eq!(infos[0].value.id, id);
            assert_eq!(infos[0].value.endpoints.len(), 1);
            let stats = d.stats(n, i).unwrap();
            assert_eq!(stats.len(), 1, "STATS {n:?} {i:?}");
            assert_eq!(stats[0].value.id, id);
        }
    }
    let alt_endpoint = discovery(&client).prefix("ALT").request("alt", "alt-echo", "via ALT").unwrap();
    assert_eq!(payload(&alt_endpoint), "via ALT");

    // Verbs without a reply subject are ignored; the services go on answering every form.
    publish_without_reply(&client, "$SRV", "plain", &plain.id());
    publish_without_reply(&client, "ALT", "alt", &alt.id());
    check_every_form(&client, "$SRV", "plain", &plain.id());
    check_every_form(&client, "ALT", "alt", &alt.id());
    assert_eq!(payload(&client.request("echo", "still here").unwrap()), "still here");

    assert_eq!(plain.stop(WAIT), StopReason::Stopped);
    assert_eq!(alt.stop(WAIT), StopReason::Stopped);
}

#[test]
fn every_discovery_form_answers_on_the_async_service_under_smol() {
    let server = NatsServer::start();
    let url = server.url();
    smol::block_on(async {
        let options = nats_tokio::ConnectOptions::new().server(&url);
        let client = nats_tokio::connect_smol(options).await.unwrap();
        let config = ServiceConfig::new("smolsvc", "0.0.1").api_prefix("ALT");
        let service = AsyncService::start(client, config).await.unwrap();
        let run = smol::spawn(service.run());
        service.endpoint(&service.root(), EndpointConfig::new("echo"), |req| async move { echo(req) }).await.unwrap();
        let id = service.id();
        smol::unblock(move || {
            let client = connect(&url);
            check_every_form(&client, "ALT", "smolsvc", &id);
            assert!(matches!(client.request("$SRV.PING", ""), Err(Error::NoResponders)));
            publish_without_reply(&client, "ALT", "smolsvc", &id);
            check_every_form(&client, "ALT", "smolsvc", &id);
            let d = discovery(&client).prefix("ALT");
            assert_eq!(d.info(None, None).unwrap().len(), 1);
            assert_eq!(payload(&d.request("smolsvc", "echo", "hi").unwrap()), "hi");
        })
        .await;
        assert_eq!(smol_within(service.stop(WAIT)).await, StopReason::Stopped);
        assert_eq!(smol_within(run).await, StopReason::Stopped);
    });
}

// ---------------------------------------------------------------------------------------------------------------
// Several instances
// ---------------------------------------------------------------------------------------------------------------

/// Starts one `twin` instance whose endpoints answer with the instance's id: `work` in the default queue group,
/// `all` with queueing disabled.
fn twin(client: Client) -> Service<Client> {
    let service = Service::start(client, ServiceConfig::new("twin", "1.0.0")).unwrap();
    let id = service.id();
    let root = service.root();
    let answer = move |mut req: micro::Request| {
        let body = format!("{}:{}", id, payload(req.message()));
        req.respond(body).unwrap();
    };
    service.endpoint(&root, EndpointConfig::new("work"), answer.clone()).unwrap();
    let all = EndpointConfig::new("all").queue_group(QueueGroup::Disabled);
    service.endpoint(&root, all, answer).unwrap();
    service
}

/// (instance id, request index) of each reply.
fn answered_by(replies: &[Message]) -> Vec<(String, usize)> {
    replies
        .iter()
        .map(|m| {
            let (id, i) = payload(m).split_once(':').expect("id:index");
            (id.to_owned(), i.parse().unwrap())
        })
        .collect()
}

fn check_two_instances(a: &Service<Client>, b: &Service<Client>, client: &Client) {
    let ids: BTreeSet<String> = [a.id(), b.id()].into();
    assert_eq!(ids.len(), 2, "instances have distinct ids");
    let d = discovery(client);

    // Every verb fans out to both instances, in every form but the one naming an instance.
    for name in [None, Some("twin")] {
        let pinged: BTreeSet<String> = d.ping(name, None).unwrap().into_iter().map(|r| r.value.id).collect();
        assert_eq!(pinged, ids, "PING {name:?}");
        let infos: BTreeSet<String> = d.info(name, None).unwrap().into_iter().map(|r| r.value.id).collect();
        assert_eq!(infos, ids, "INFO {name:?}");
        let stats: BTreeSet<String> = d.stats(name, None).unwrap().into_iter().map(|r| r.value.id).collect();
        assert_eq!(stats, ids, "STATS {name:?}");
    }
    for id in &ids {
        let one = d.ping(Some("twin"), Some(id)).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(&one[0].value.id, id);
    }
    assert_eq!(gather(client, "$SRV.PING.twin", None, "", None).len(), 2);

    // Default queue group: every request answered by exactly one instance.
    let n = 40;
    let replies = answered_by(&fan(client, "work", n));
    let mut per_request = BTreeMap::<usize, usize>::new();
    for (_, i) in &replies {
        *per_request.entry(*i).or_default() += 1;
    }
    assert_eq!(per_request, (0..n).map(|i| (i, 1)).collect(), "each request exactly one reply");
    let answering: BTreeSet<String> = replies.iter().map(|(id, _)| id.clone()).collect();
    // The server picks a queue member at random: both answer some of 40 (fails with probability 2^-39).
    assert_eq!(answering, ids, "both instances share the queued work");
    let counted: u64 = d
        .stats(Some("twin"), None)
        .unwrap()
        .iter()
        .flat_map(|r| r.value.endpoints.iter().filter(|e| e.name == "work").map(|e| e.num_requests))
        .sum();
    assert_eq!(counted, n as u64, "the instances' STATS add up to the requests sent");

    // Queueing disabled: every instance answers every request.
    let n = 10;
    let replies = answered_by(&fan(client, "all", n));
    assert_eq!(replies.len(), 2 * n, "{replies:?}");
    for i in 0..n {
        let by: BTreeSet<String> = replies.iter().filter(|(_, j)| *j == i).map(|(id, _)| id.clone()).collect();
        assert_eq!(by, ids, "request {i} answered by both");
    }
    let many = client.request_many("all", "x", WAIT, Some(STALL), None).unwrap().count();
    assert_eq!(many, 2, "request_many collects both replies");
}

#[test]
fn two_instances_on_two_clients() {
    let server = NatsServer::start();
    let a = twin(connect(&server.url()));
    let b = twin(connect(&server.url()));
    check_two_instances(&a, &b, &connect(&server.url()));
    assert_eq!((a.stop(WAIT), b.stop(WAIT)), (StopReason::Stopped, StopReason::Stopped));
}

#[test]
fn two_instances_on_one_client() {
    let server = NatsServer::start();
    let shared = connect(&server.url());
    let a = twin(shared.clone());
    let b = twin(shared.clone());
    check_two_instances(&a, &b, &connect(&server.url()));
    // Stopping one leaves the other answering on the same connection.
    assert_eq!(a.stop(WAIT), StopReason::Stopped);
    let client = connect(&server.url());
    let pinged: Vec<String> = discovery(&client).ping(None, None).unwrap().into_iter().map(|r| r.value.id).collect();
    assert_eq!(pinged, [b.id()]);
    let replies = answered_by(&fan(&client, "all", 3));
    assert_eq!(replies.iter().map(|(id, _)| id.clone()).collect::<BTreeSet<_>>(), [b.id()].into());
    assert_eq!(replies.len(), 3);
    assert_eq!(b.stop(WAIT), StopReason::Stopped);
}

// ---------------------------------------------------------------------------------------------------------------
// The client-compatibility configuration (spec §4)
// ---------------------------------------------------------------------------------------------------------------

struct CompatEndpoint {
    name: &'static str,
    group: Option<&'static str>,
    subject: &'static str,
    queue: Option<&'static str>,
    metadata: &'static [(&'static str, &'static str)],
    /// Subject and queue group INFO must report.
    expected: (&'static str, &'static str),
}

const COMPAT: [CompatEndpoint; 7] = [
    CompatEndpoint {
        name: "demo-default-queue",
        group: None,
        subject: "demo.default",
        queue: None,
        metadata: &[("key", "value")],
        expected: ("demo.default", "q"),
    },
    CompatEndpoint {
        name: "demo-custom-queue",
        group: None,
        subject: "demo.default",
        queue: Some("endpoint-group"),
        metadata: &[],
        expected: ("demo.default", "endpoint-group"),
    },
    CompatEndpoint {
        name: "g1-parent-queue",
        group: Some("g1"),
        subject: "parent.queue",
        queue: None,
        metadata: &[],
        expected: ("g1.parent.queue", "q"),
    },
    CompatEndpoint {
        name: "g1-custom-queue",
        group: Some("g1"),
        subject: "custom.queue",
        queue: Some("endpoint-group"),
        metadata: &[],
        expected: ("g1.custom.queue", "endpoint-group"),
    },
    CompatEndpoint {
        name: "g2-parent-queue",
        group: Some("g2"),
        subject: "parent.queue",
        queue: None,
        metadata: &[],
        expected: ("g2.parent.queue", "group-queue"),
    },
    CompatEndpoint {
        name: "g2-custom-queue",
        group: Some("g2"),
        subject: "custom.queue",
        queue: Some("endpoint-group"),
        metadata: &[],
        expected: ("g2.custom.queue", "endpoint-group"),
    },
    CompatEndpoint {
        name: "faulty",
        group: None,
        subject: "faulty",
        queue: None,
        metadata: &[],
        expected: ("faulty", "q"),
    },
];

fn compat_config() -> ServiceConfig {
    ServiceConfig::new("demo", "1.0.0").description("demo service").metadata("workload", "cpu")
}

fn compat_groups(root: &micro::Group) -> BTreeMap<&'static str, micro::Group> {
    let g1 = root.group("g1", QueueGroup::Inherit).unwrap();
    let g2 = root.group("g2", QueueGroup::Named("group-queue".into())).unwrap();
    [("g1", g1), ("g2", g2)].into()
}

fn compat_endpoint(e: &CompatEndpoint) -> EndpointConfig {
    let mut config = EndpointConfig::new(e.name).subject(e.subject);
    if let Some(q) = e.queue {
        config = config.queue_group(QueueGroup::Named(q.into()));
    }
    for (k, v) in e.metadata {
        config = config.metadata(k, v);
    }
    config
}

fn compat_stats(e: &EndpointInfo) -> Value {
    json!({ "endpoint": e.name })
}

/// The compatibility handler: echo, except `faulty`, which always answers 500 "handler error".
fn compat_answer(name: &str, mut req: micro::Request) {
    if name == "faulty" {
        req.respond_error(500, "handler error").unwrap();
    } else {
        echo(req);
    }
}

/// Builds the configuration on a running blocking service.
fn compat_blocking(client: Client) -> Service<Client> {
    let service = Service::start(client, compat_config()).unwrap();
    service.set_stats_handler(compat_stats);
    let root = service.root();
    let groups = compat_groups(&root);
    for e in &COMPAT {
        let group = e.group.map_or(&root, |g| &groups[g]);
        let name = e.name;
        service.endpoint(group, compat_endpoint(e), move |req| compat_answer(name, req)).unwrap();
    }
    service
}

/// Checks a running compatibility service through discovery and its endpoints.
fn check_compat(client: &Client, id: &str) {
    let d = discovery(client);
    let pings = d.ping(Some("demo"), Some(id)).unwrap();
    assert_eq!(pings.len(), 1);
    assert_eq!(
        (pings[0].value.version.as_str(), &pings[0].value.metadata),
        ("1.0.0", &metadata(&[("workload", "cpu")]))
    );

    let info = d.info(Some("demo"), Some(id)).unwrap().remove(0).value;
    assert_eq!((info.name.as_str(), info.id.as_str(), info.version.as_str()), ("demo", id, "1.0.0"));
    assert_eq!(info.description, "demo service");
    assert_eq!(info.metadata, metadata(&[("workload", "cpu")]));
    let got: Vec<_> = info
        .endpoints
        .iter()
        .map(|e| (e.name.as_str(), e.subject.as_str(), e.queue_group.as_str(), e.metadata.clone()))
        .collect();
    let want: Vec<_> = COMPAT.iter().map(|e| (e.name, e.expected.0, e.expected.1, metadata(e.metadata))).collect();
    assert_eq!(got, want);

    // Endpoints as §4 says: echoes; the shared subject answered once per queue group; faulty fails.
    for subject in ["g1.parent.queue", "g1.custom.queue", "g2.parent.queue", "g2.custom.queue"] {
        let reply = client.request(subject, format!("hello {subject}")).unwrap();
        assert_eq!(payload(&reply), format!("hello {subject}"));
        assert!(service_error(&reply).is_none(), "{subject}");
    }
    let shared = gather(client, "demo.default", None, "both groups", None);
    assert_eq!(shared.len(), 2, "one reply per queue group on demo.default");
    assert!(shared.iter().all(|m| payload(m) == "both groups"));
    let faulty = client.request("faulty", "anything").unwrap();
    let headers = faulty.headers().expect("error headers");
    assert_eq!(headers.get(ERROR_HEADER), Some("handler error"));
    assert_eq!(headers.get(ERROR_CODE_HEADER), Some("500"));
    assert_eq!(service_error(&faulty), Some(ServiceError::new(500, "handler error")));
    assert!(faulty.payload().is_empty());

    // STATS: per endpoint (not per subject), with the stats handler's data.
    let stats = d.stats(Some("demo"), Some(id)).unwrap().remove(0).value;
    assert_eq!((stats.name.as_str(), stats.id.as_str(), &stats.metadata), ("demo", id, &info.metadata));
    assert_eq!(stats.endpoints.len(), 7);
    for (s, e) in stats.endpoints.iter().zip(&COMPAT) {
        assert_eq!((s.name.as_str(), s.subject.as_str(), s.queue_group.as_str()), (e.name, e.expected.0, e.expected.1));
        assert_eq!(s.data, Some(json!({ "endpoint": e.name })), "{}", e.name);
        assert_eq!(s.num_requests, 1, "{}", e.name);
        if e.name == "faulty" {
            assert_eq!((s.num_errors, s.last_error.as_str()), (1, "500:handler error"));
        } else {
            assert_eq!((s.num_errors, s.last_error.as_str()), (0, ""), "{}", e.name);
        }
    }
    // As sent: durations are integers, data is the handler's object.
    let raw = client.request(&format!("$SRV.STATS.demo.{id}"), "").unwrap();
    let raw: Value = serde_json::from_slice(raw.payload()).unwrap();
    for e in raw["endpoints"].as_array().unwrap() {
        assert!(e["processing_time"].is_u64() && e["average_processing_time"].is_u64(), "{e}");
        assert_eq!(e["data"]["endpoint"], e["name"]);
    }
}

#[test]
fn compatibility_configuration_on_the_blocking_service() {
    let server = NatsServer::start();
    let service = compat_blocking(connect(&server.url()));
    check_compat(&connect(&server.url()), &service.id());
    assert_eq!(service.stop(WAIT), StopReason::Stopped);
}

#[test]
fn compatibility_configuration_on_the_async_service() {
    let server = NatsServer::start();
    let rt = tokio_runtime();
    let (service, run) = rt.block_on(async {
        let client = nats_tokio::connect(&server.url()).await.unwrap();
        let service = AsyncService::start(client, compat_config()).await.unwrap();
        // Started (and running) before anything is added.
        let run = tokio::spawn(service.run());
        service.set_stats_handler(compat_stats);
        let root = service.root();
        let groups = compat_groups(&root);
        for e in &COMPAT {
            let group = e.group.map_or(&root, |g| &groups[g]);
            let name = e.name;
            let handler = move |req| async move { compat_answer(name, req) };
            service.endpoint(group, compat_endpoint(e), handler).await.unwrap();
        }
        (service, run)
    });
    // Every SUB went out before any reply of the service, so once INFO answers, the endpoints are subscribed.
    check_compat(&connect(&server.url()), &service.id());
    rt.block_on(async {
        let reason = tokio::time::timeout(WAIT * 2, service.stop(WAIT)).await.expect("stop returns");
        assert_eq!(reason, StopReason::Stopped);
        assert_eq!(tokio::time::timeout(WAIT, run).await.expect("run ends").unwrap(), StopReason::Stopped);
    });
}

// ---------------------------------------------------------------------------------------------------------------
// Typed endpoints and Discovery::request
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize)]
struct Division {
    dividend: i64,
    divisor: i64,
}

fn divide(d: Division) -> Result<i64, ServiceError> {
    if d.divisor == 0 {
        return Err(ServiceError::new(422, "division by zero"));
    }
    Ok(d.dividend / d.divisor)
}

#[test]
fn typed_endpoint_and_discovery_request() {
    let server = NatsServer::start();
    let service = Service::start(connect(&server.url()), ServiceConfig::new("math", "0.1.0")).unwrap();
    let group = service.root().group("math", QueueGroup::Inherit).unwrap();
    service.typed_endpoint(&group, EndpointConfig::new("div"), divide).unwrap();
    let client = connect(&server.url());

    let ok = client.request("math.div", r#"{"dividend": 42, "divisor": 5}"#).unwrap();
    assert_eq!(payload(&ok), "8");
    assert!(ok.headers().is_none() || service_error(&ok).is_none());

    // Undecodable input: 400 with both headers.
    for bad in ["", "not json", r#"{"dividend": "x", "divisor": 1}"#, r#"{"dividend": 1}"#] {
        let reply = client.request("math.div", bad).unwrap();
        let headers = reply.headers().unwrap_or_else(|| panic!("{bad:?}: no headers"));
        assert_eq!(headers.get(ERROR_CODE_HEADER), Some("400"), "{bad:?}");
        assert!(headers.get(ERROR_HEADER).is_some_and(|d| !d.is_empty()), "{bad:?}");
        assert_eq!(service_error(&reply).unwrap().code, 400);
    }
    // The handler's error: its code and description.
    let reply = client.request("math.div", r#"{"dividend": 1, "divisor": 0}"#).unwrap();
    assert_eq!(service_error(&reply), Some(ServiceError::new(422, "division by zero")));
    assert_eq!(reply.headers().unwrap().get(ERROR_CODE_HEADER), Some("422"));

    // Discovery::request finds the endpoint by name.
    let d = discovery(&client);
    let reply = d.request("math", "div", r#"{"dividend": 9, "divisor": 3}"#).unwrap();
    assert_eq!(payload(&reply), "3");
    match d.request("math", "div", r#"{"dividend": 9, "divisor": 0}"#) {
        Err(DiscoveryError::Service(e)) => assert_eq!(e, ServiceError::new(422, "division by zero")),
        other => panic!("expected a service error, got {other:?}"),
    }
    match d.request("math", "div", "garbage") {
        Err(DiscoveryError::Service(e)) => assert_eq!(e.code, 400),
        other => panic!("expected a 400 service error, got {other:?}"),
    }
    match d.request("math", "nope", "{}") {
        Err(DiscoveryError::NoSuchEndpoint(name)) => assert_eq!(name, "nope"),
        other => panic!("expected NoSuchEndpoint, got {other:?}"),
    }
    // Counted: 1 + 4 + 1 + 3 requests, 4 + 1 + 2 errors; the last error is the 400.
    let stats = service.stats();
    let e = &stats.endpoints[0];
    assert_eq!((e.num_requests, e.num_errors), (9, 7));
    assert!(e.last_error.starts_with("400:"), "{}", e.last_error);
    assert_eq!(service.stop(WAIT), StopReason::Stopped);
}

// ---------------------------------------------------------------------------------------------------------------
// Graceful stop
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn blocking_stop_answers_every_request_in_flight() {
    let server = NatsServer::start();
    let service = Service::start(connect(&server.url()), ServiceConfig::new("slow", "1.0.0")).unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let slow = move |mut req: micro::Request| {
        let _ = started_tx.send(());
        thread::sleep(Duration::from_millis(100));
        let body = req.payload_bytes();
        req.respond(body).unwrap();
    };
    service.endpoint(&service.root(), EndpointConfig::new("slow"), slow).unwrap();
    let requester = connect(&server.url());

    let threads = requests_in_flight(&requester, "slow", 20);
    started_rx.recv_timeout(WAIT).expect("the handler is busy with the first request");
    let begun = Instant::now();
    assert_eq!(service.stop(WAIT), StopReason::Stopped);
    assert!(begun.elapsed() < WAIT, "stop took {:?}", begun.elapsed());
    assert_all_answered(threads);
    let stats = service.stats();
    assert_eq!((stats.endpoints[0].num_requests, stats.endpoints[0].num_errors), (20, 0));

    // Stopped: nobody listens any more, neither the endpoint nor the discovery subjects.
    assert!(matches!(requester.request("slow", "late"), Err(Error::NoResponders)));
    assert!(matches!(requester.request("$SRV.PING", ""), Err(Error::NoResponders)));
    assert_eq!(service.stop(WAIT), StopReason::Stopped, "idempotent");
    let late = service.endpoint(&service.root(), EndpointConfig::new("late"), echo);
    assert!(matches!(late, Err(micro::ServiceFailure::Stopped)), "{late:?}");
}

#[test]
fn async_stop_on_tokio_answers_every_request_in_flight() {
    let server = NatsServer::start();
    let rt = tokio_runtime();
    let started = Arc::new(AtomicUsize::new(0));
    let (service, run) = rt.block_on(async {
        let client = nats_tokio::connect(&server.url()).await.unwrap();
        let service = AsyncService::start(client, ServiceConfig::new("slow", "1.0.0")).await.unwrap();
        let started = started.clone();
        let slow = move |mut req: micro::Request| {
            started.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let body = req.payload_bytes();
                req.respond(body).unwrap();
            }
        };
        service.endpoint(&service.root(), EndpointConfig::new("slow"), slow).await.unwrap();
        let run = tokio::spawn(service.run());
        (service, run)
    });
    let requester = connect(&server.url());
    eventually("the endpoint is subscribed", || requester.request("slow", "probe").is_ok());
    started.store(0, Ordering::SeqCst);

    let threads = requests_in_flight(&requester, "slow", 20);
    eventually("a handler is in flight", || started.load(Ordering::SeqCst) > 0);
    let reason = rt.block_on(async { tokio::time::timeout(WAIT * 2, service.stop(WAIT)).await });
    assert_eq!(reason.expect("stop returns"), StopReason::Stopped);
    assert_all_answered(threads);
    let ended = rt.block_on(async { tokio::time::timeout(WAIT, run).await });
    assert_eq!(ended.expect("run ends").unwrap(), StopReason::Stopped);
    let stats = service.stats();
    assert_eq!((stats.endpoints[0].num_requests, stats.endpoints[0].num_errors), (21, 0));
    assert!(matches!(requester.request("slow", "late"), Err(Error::NoResponders)));
    assert!(matches!(requester.request("$SRV.PING", ""), Err(Error::NoResponders)));
    let late =
        rt.block_on(service.endpoint(&service.root(), EndpointConfig::new("late"), |req| async move { echo(req) }));
    assert!(matches!(late, Err(micro::ServiceFailure::Stopped)), "{late:?}");
}

#[test]
fn blocking_stop_times_out_on_a_stuck_handler() {
    let server = NatsServer::start();
    let service = Service::start(connect(&server.url()), ServiceConfig::new("stuck", "1.0.0")).unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let stuck = move |mut req: micro::Request| {
        let _ = started_tx.send(());
        thread::sleep(Duration::from_secs(2));
        let _ = req.respond("late");
    };
    service.endpoint(&service.root(), EndpointConfig::new("stuck"), stuck).unwrap();
    let requester = connect(&server.url());
    let threads = requests_in_flight(&requester, "stuck", 1);
    started_rx.recv_timeout(WAIT).expect("the handler started");
    let begun = Instant::now();
    assert_eq!(service.stop(Duration::from_millis(200)), StopReason::Timeout);
    assert!(begun.elapsed() < Duration::from_millis(1500), "stop overran its timeout: {:?}", begun.elapsed());
    assert_eq!(service.done(), StopReason::Timeout);
    assert_eq!(service.stop(WAIT), StopReason::Timeout, "idempotent");
    // The handler still finishes its request.
    assert_all_answered_with(threads, "late");
}

#[test]
fn async_stop_times_out_on_a_stuck_handler_and_run_ends() {
    let server = NatsServer::start();
    let rt = tokio_runtime();
    let started = Arc::new(AtomicUsize::new(0));
    let (service, run) = rt.block_on(async {
        let client = nats_tokio::connect(&server.url()).await.unwrap();
        let service = AsyncService::start(client, ServiceConfig::new("stuck", "1.0.0")).await.unwrap();
        let started = started.clone();
        let stuck = move |mut req: micro::Request| {
            started.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let _ = req.respond("late");
            }
        };
        service.endpoint(&service.root(), EndpointConfig::new("stuck"), stuck).await.unwrap();
        let run = tokio::spawn(service.run());
        (service, run)
    });
    let requester = connect(&server.url());
    // Subscribed once INFO (sent after the SUB on the same connection) lists the endpoint.
    assert_eq!(endpoint_names(&discovery(&requester), "stuck").0, ["stuck"]);
    let _threads = requests_in_flight(&requester, "stuck", 1);
    eventually("the handler is in flight", || started.load(Ordering::SeqCst) > 0);
    let begun = Instant::now();
    let reason = rt.block_on(async { tokio::time::timeout(WAIT, service.stop(Duration::from_millis(200))).await });
    assert_eq!(reason.expect("stop returns"), StopReason::Timeout);
    assert!(begun.elapsed() < Duration::from_millis(1500), "stop overran its timeout: {:?}", begun.elapsed());
    let done = rt.block_on(async { tokio::time::timeout(WAIT, service.done()).await });
    assert_eq!(done.expect("done resolves"), StopReason::Timeout);
    // `run` must end too, with the same reason, well before the stuck handler would have finished.
    let ended = rt.block_on(async { tokio::time::timeout(Duration::from_secs(2), run).await });
    assert_eq!(ended.expect("run ends once stop has timed out").unwrap(), StopReason::Timeout);
}

// ---------------------------------------------------------------------------------------------------------------
// Endpoint removal
// ---------------------------------------------------------------------------------------------------------------

fn endpoint_names(d: &Discovery<Client>, name: &str) -> (Vec<String>, Vec<String>) {
    let info = d.info(Some(name), None).unwrap();
    assert_eq!(info.len(), 1);
    let stats = d.stats(Some(name), None).unwrap();
    assert_eq!(stats.len(), 1);
    (
        info[0].value.endpoints.iter().map(|e| e.name.clone()).collect(),
        stats[0].value.endpoints.iter().map(|e| e.name.clone()).collect(),
    )
}

#[test]
fn blocking_endpoint_removal() {
    let server = NatsServer::start();
    let service = Service::start(connect(&server.url()), ServiceConfig::new("shrink", "1.0.0")).unwrap();
    let root = service.root();
    service.endpoint(&root, EndpointConfig::new("keep"), echo).unwrap();
    let gone = service.endpoint(&root, EndpointConfig::new("gone"), echo).unwrap();
    service.endpoint(&root, EndpointConfig::new("last"), echo).unwrap();
    let client = connect(&server.url());
    let d = discovery(&client);
    assert_eq!(payload(&client.request("gone", "before").unwrap()), "before");
    assert_eq!(endpoint_names(&d, "shrink").0, ["keep", "gone", "last"]);

    service.remove_endpoint(gone, WAIT).unwrap();
    assert_eq!(endpoint_names(&d, "shrink"), (vec!["keep".into(), "last".into()], vec!["keep".into(), "last".into()]));
    assert!(matches!(client.request("gone", "after"), Err(Error::NoResponders)));
    assert_eq!(payload(&client.request("keep", "k").unwrap()), "k");
    assert_eq!(payload(&client.request("last", "l").unwrap()), "l");
    assert_eq!(d.request("shrink", "keep", "by name").map(|m| payload(&m).to_owned()).unwrap(), "by name");
    assert!(matches!(d.request("shrink", "gone", "x"), Err(DiscoveryError::NoSuchEndpoint(_))));
    // Removing it again is harmless; the rest stops cleanly.
    service.remove_endpoint(gone, WAIT).unwrap();
    assert_eq!(service.stop(WAIT), StopReason::Stopped);
}

#[test]
fn async_endpoint_removal() {
    let server = NatsServer::start();
    let rt = tokio_runtime();
    let (service, gone, run) = rt.block_on(async {
        let client = nats_tokio::connect(&server.url()).await.unwrap();
        let service = AsyncService::start(client, ServiceConfig::new("shrink", "1.0.0")).await.unwrap();
        let root = service.root();
        let echo_async = |req| async move { echo(req) };
        service.endpoint(&root, EndpointConfig::new("keep"), echo_async).await.unwrap();
        let gone = service.endpoint(&root, EndpointConfig::new("gone"), echo_async).await.unwrap();
        let run = tokio::spawn(service.run());
        (service, gone, run)
    });
    let client = connect(&server.url());
    eventually("gone is subscribed", || client.request("gone", "before").is_ok());
    let d = discovery(&client);
    service.remove_endpoint(gone).unwrap();
    eventually("gone leaves INFO", || endpoint_names(&d, "shrink") == (vec!["keep".into()], vec!["keep".into()]));
    assert!(matches!(client.request("gone", "after"), Err(Error::NoResponders)));
    assert_eq!(payload(&client.request("keep", "k").unwrap()), "k");
    rt.block_on(async {
        let reason = tokio::time::timeout(WAIT * 2, service.stop(WAIT)).await.expect("stop returns");
        assert_eq!(reason, StopReason::Stopped);
        assert_eq!(tokio::time::timeout(WAIT, run).await.expect("run ends").unwrap(), StopReason::Stopped);
    });
}

// ---------------------------------------------------------------------------------------------------------------
// In-flight limit
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn max_in_flight_answers_503_at_once() {
    let server = NatsServer::start();
    let service = Service::start(connect(&server.url()), ServiceConfig::new("limited", "1.0.0")).unwrap();
    let (received_tx, received_rx) = mpsc::channel();
    let handoff = move |mut req: micro::Request| {
        let _ = received_tx.send(payload(req.message()).to_owned());
        // Answered later, by another thread: the request stays in flight after the handler returns.
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            req.respond("done").unwrap();
        });
    };
    service.endpoint(&service.root(), EndpointConfig::new("one").max_in_flight(1), handoff).unwrap();
    let client = connect(&server.url());

    let inbox = client.new_inbox();
    let mut first = client.subscribe(&inbox).unwrap();
    client.publish_with_reply("one", &inbox, "first").unwrap();
    client.flush().unwrap();
    assert_eq!(received_rx.recv_timeout(WAIT).unwrap(), "first");

    let second = client.request_with_timeout("one", "second", WAIT).unwrap();
    assert_eq!(service_error(&second), Some(ServiceError::new(BUSY_CODE, BUSY_DESCRIPTION)));
    assert_eq!(second.headers().unwrap().get(ERROR_CODE_HEADER), Some("503"));
    // At once: the first request is still unanswered when the 503 comes.
    assert!(first.try_next().is_none(), "the 503 came only after the first request was answered");
    assert!(received_rx.try_recv().is_err(), "the busy request never reaches the handler");

    let answer = first.next_timeout(WAIT).unwrap();
    assert_eq!(payload(&answer), "done");
    let stats = discovery(&client).stats(Some("limited"), None).unwrap().remove(0).value;
    let e = &stats.endpoints[0];
    assert_eq!((e.num_requests, e.num_errors), (2, 1));
    assert_eq!(e.last_error, format!("{BUSY_CODE}:{BUSY_DESCRIPTION}"));

    // The slot is free again.
    assert_eq!(payload(&client.request_with_timeout("one", "third", WAIT).unwrap()), "done");
    assert_eq!(received_rx.recv_timeout(WAIT).unwrap(), "third");
    assert_eq!(service.stats().endpoints[0].num_requests, 3);
    assert_eq!(service.stop(WAIT), StopReason::Stopped);
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn stats_count_time_errors_and_reset() {
    let server = NatsServer::start();
    let service = Service::start(connect(&server.url()), ServiceConfig::new("counted", "1.0.0")).unwrap();
    let root = service.root();
    let work = |mut req: micro::Request| {
        thread::sleep(Duration::from_millis(5));
        req.respond("ok").unwrap();
    };
    service.endpoint(&root, EndpointConfig::new("work"), work).unwrap();
    service.endpoint(&root, EndpointConfig::new("drop"), |_req| {}).unwrap();
    let client = connect(&server.url());
    let d = discovery(&client);
    let id = service.id();

    let fresh = d.stats(Some("counted"), Some(&id)).unwrap().remove(0).value;
    for e in &fresh.endpoints {
        assert_eq!((e.num_requests, e.num_errors, e.processing_time, e.last_error.as_str()), (0, 0, 0, ""));
    }
    for _ in 0..3 {
        assert_eq!(payload(&client.request("work", "").unwrap()), "ok");
    }
    let dropped = client.request_with_timeout("drop", "", Duration::from_millis(300));
    assert!(matches!(dropped, Err(Error::Timeout)), "{dropped:?}");

    let stats = d.stats(Some("counted"), Some(&id)).unwrap().remove(0).value;
    let (work, drop) = (&stats.endpoints[0], &stats.endpoints[1]);
    assert_eq!((work.num_requests, work.num_errors, work.last_error.as_str()), (3, 0, ""));
    assert!(work.processing_time >= 15_000_000, "3 x 5 ms, got {} ns", work.processing_time);
    assert_eq!(work.average_processing_time, work.processing_time / 3);
    // Not answering is no error (ADR-32, as nats.go counts it).
    assert_eq!((drop.num_requests, drop.num_errors, drop.last_error.as_str()), (1, 0, ""));

    // As sent: integer nanoseconds, no `data` without a stats handler, `last_error` always present.
    let raw = client.request(&format!("$SRV.STATS.counted.{id}"), "").unwrap();
    let raw: Value = serde_json::from_slice(raw.payload()).unwrap();
    for e in raw["endpoints"].as_array().unwrap() {
        assert!(e["processing_time"].is_u64(), "{e}");
        assert!(e["average_processing_time"].is_u64(), "{e}");
        assert!(e["num_requests"].is_u64() && e["num_errors"].is_u64(), "{e}");
        assert!(e["last_error"].is_string(), "{e}");
        assert!(e.get("data").is_none(), "{e}");
    }
    assert_eq!(raw["endpoints"][0]["processing_time"].as_u64(), Some(work.processing_time));

    thread::sleep(Duration::from_millis(20));
    service.reset();
    let reset = d.stats(Some("counted"), Some(&id)).unwrap().remove(0).value;
    for e in &reset.endpoints {
        let counters = (e.num_requests, e.num_errors, e.processing_time, e.average_processing_time);
        assert_eq!((counters, e.last_error.as_str()), ((0, 0, 0, 0), ""), "{}", e.name);
    }
    assert!(started_key(&reset.started) > started_key(&stats.started), "{} -> {}", stats.started, reset.started);
    // Counting goes on after the reset.
    client.request("work", "").unwrap();
    assert_eq!(service.stats().endpoints[0].num_requests, 1);
    assert_eq!(service.stop(WAIT), StopReason::Stopped);
}

// ---------------------------------------------------------------------------------------------------------------
// Slow consumer
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn a_slow_consumer_endpoint_does_not_stop_the_service() {
    let server = NatsServer::start();
    let limits = PendingLimits { messages: 2, bytes: 1 << 20 };
    let options = ConnectOptions::new().server(&server.url()).pending_limits(limits);
    let service = Service::start(Client::connect(options).unwrap(), ServiceConfig::new("sluggish", "1.0.0")).unwrap();
    let root = service.root();
    let slow = |mut req: micro::Request| {
        thread::sleep(Duration::from_millis(20));
        req.respond("slow").unwrap();
    };
    service.endpoint(&root, EndpointConfig::new("slow"), slow).unwrap();
    service.endpoint(&root, EndpointConfig::new("fast"), echo).unwrap();
    let client = connect(&server.url());

    let n = 200;
    let answered = fan(&client, "slow", n).len();
    assert!(answered >= 1, "the slow endpoint answered nothing");
    assert!(answered < n, "all {n} requests answered: no slow consumer was provoked");

    // The service goes on: discovery, the other endpoint, the slow endpoint itself.
    let pings = discovery(&client).ping(Some("sluggish"), None).unwrap();
    assert_eq!(pings.len(), 1);
    assert_eq!(payload(&client.request("fast", "quick").unwrap()), "quick");
    assert_eq!(payload(&client.request("slow", "again").unwrap()), "slow");
    let stats = discovery(&client).stats(Some("sluggish"), None).unwrap().remove(0).value;
    let slow = &stats.endpoints[0];
    assert!(slow.num_errors >= 1, "{slow:?}");
    assert!(slow.last_error.starts_with("503:slow consumer"), "{slow:?}");
    assert_eq!(slow.num_requests, answered as u64 + 1);
    assert_eq!(stats.endpoints[1].num_errors, 0);
    assert_eq!(service.stop(WAIT), StopReason::Stopped);
}
