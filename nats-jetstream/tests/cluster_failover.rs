//! A 3-node JetStream cluster with an R3 stream: its leader is killed while 100,000 publishes with `Nats-Msg-Id`
//! go out through the publish window, on both clients. A publish whose ack failed (timed out, no responders
//! during the election, refused while reconnecting) is sent again with the same id until it is acknowledged.
//! The stream must end with exactly 100,000 messages, every acknowledged sequence in it, and the sampled
//! messages must carry the id and payload that were acknowledged at their sequence.

// Tests read the clock and sleep; the crate's clippy.toml forbids both in the sans-IO core only.
#![allow(clippy::disallowed_methods)]

use std::collections::{HashSet, VecDeque};
use std::thread;
use std::time::{Duration, Instant};

use nats_jetstream::asynch::AsyncContext;
use nats_jetstream::blocking::Context;
use nats_jetstream::call::PublishOptions;
use nats_jetstream::model::{StorageType, StreamConfig};
use nats_jetstream::AckResult;
use nats_server_harness::Cluster;

const STREAM: &str = "FAILOVER";
const TOTAL: usize = 100_000;
const WINDOW: usize = 256;
/// The leader dies once this many publishes were sent.
const KILL_AT: usize = 30_000;
/// Longer than any failover should take, short enough to fail a hung test.
const LIMIT: Duration = Duration::from_secs(300);
/// Ack timeout: a publish lost with the leader is sent again after this.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after a failed publish or ack, so an election is not hammered.
const BACKOFF: Duration = Duration::from_millis(20);

fn subject(i: usize) -> String {
    format!("failover.{}", i % 16)
}

fn msg_id(i: usize) -> String {
    format!("m-{i}")
}

fn payload(i: usize) -> String {
    format!("payload {i:08}")
}

/// A 3-node JetStream cluster with the R3 file stream created (retried while the meta leader is elected).
fn start() -> (Cluster, Context<nats_blocking::Client>) {
    let cluster = Cluster::builder(3).jetstream(true).start().expect("start a 3-node JetStream cluster");
    let client = nats_blocking::connect(&cluster.urls().join(",")).expect("connect to the cluster");
    let js = Context::new(client);
    let config = StreamConfig {
        subjects: vec!["failover.>".into()],
        storage: StorageType::File,
        num_replicas: 3,
        ..StreamConfig::new(STREAM)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = js.create_stream(&config) {
        assert!(Instant::now() < deadline, "the R3 stream was never created: {e}\n{}", cluster.logs());
        thread::sleep(Duration::from_millis(250));
    }
    (cluster, js)
}

/// Kills the stream's leader; returns its index.
fn kill_leader(cluster: &mut Cluster, js: &Context<nats_blocking::Client>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let leader = js.stream_info(STREAM).ok().and_then(|i| i.cluster).map(|c| c.leader).unwrap_or_default();
        // The harness names members `<cluster>-s<i>`.
        if let Some(i) = leader.rsplit("-s").next().and_then(|i| i.parse().ok()) {
            cluster.kill(i);
            return i;
        }
        assert!(Instant::now() < deadline, "the stream has no leader");
        thread::sleep(Duration::from_millis(100));
    }
}

/// Which publishes are acknowledged (and at which sequence), in flight, or still to (re)send.
struct Ledger {
    acks: Vec<Option<u64>>,
    todo: VecDeque<usize>,
    in_flight: VecDeque<usize>,
    sent: usize,
    retries: usize,
    duplicates: usize,
}

impl Ledger {
    fn new() -> Self {
        Self {
            acks: vec![None; TOTAL],
            todo: (0..TOTAL).collect(),
            in_flight: VecDeque::new(),
            sent: 0,
            retries: 0,
            duplicates: 0,
        }
    }

    fn sent(&mut self, i: usize) {
        self.in_flight.push_back(i);
        self.sent += 1;
    }

    fn not_sent(&mut self, i: usize) {
        self.todo.push_front(i);
        self.retries += 1;
    }

    /// The oldest publish's ack; true when it failed (and the publish goes back on the list).
    fn settle(&mut self, ack: AckResult) -> bool {
        let i = self.in_flight.pop_front().expect("an ack only for a publish in flight");
        match ack {
            Ok(ack) => {
                assert_eq!(ack.stream, STREAM);
                self.duplicates += usize::from(ack.duplicate);
                match self.acks[i] {
                    None => self.acks[i] = Some(ack.seq),
                    Some(seq) => assert_eq!(seq, ack.seq, "message {i} acknowledged at two sequences"),
                }
                false
            }
            Err(_) => {
                self.todo.push_back(i);
                self.retries += 1;
                true
            }
        }
    }

    fn done(&self) -> bool {
        self.todo.is_empty() && self.in_flight.is_empty()
    }

    /// The stream holds exactly one message per publish, each at the sequence its ack gave.
    fn verify(&self, js: &Context<nats_blocking::Client>, killed: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let state = loop {
            match js.stream_info(STREAM) {
                Ok(info) if info.state.messages == TOTAL as u64 => break info.state,
                Ok(info) => assert!(
                    Instant::now() < deadline,
                    "the stream holds {} messages, not {TOTAL} (node {killed} killed; {} retries, {} duplicates)",
                    info.state.messages,
                    self.retries,
                    self.duplicates
                ),
                Err(e) => assert!(Instant::now() < deadline, "stream info: {e}"),
            }
            thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(state.last_seq - state.first_seq + 1, TOTAL as u64, "no gaps: {state:?}");
        let seqs: HashSet<u64> = self.acks.iter().map(|a| a.expect("every publish acknowledged")).collect();
        assert_eq!(seqs.len(), TOTAL, "one sequence per publish");
        assert!(seqs.iter().all(|s| (state.first_seq..=state.last_seq).contains(s)), "every ack in the stream");
        for i in (0..TOTAL).step_by(TOTAL / 250) {
            let seq = self.acks[i].expect("acknowledged");
            let stored = js.get_message(STREAM, seq).unwrap_or_else(|e| panic!("get {seq}: {e}"));
            let id = stored.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id").map(str::to_owned));
            assert_eq!(id, Some(msg_id(i)), "the id acknowledged at {seq}");
            assert_eq!(stored.data, payload(i).as_bytes(), "the payload acknowledged at {seq}");
        }
        println!(
            "node {killed} (the leader) killed after {KILL_AT} publishes: {TOTAL} stored exactly once; {} sends, {} \
             retries, {} acknowledged as duplicates",
            self.sent, self.retries, self.duplicates
        );
    }
}

#[test]
fn blocking_publishes_survive_the_stream_leader_dying() {
    let (mut cluster, js) = start();
    let publisher = Context::new(nats_blocking::connect(&cluster.urls().join(",")).expect("connect"));
    let publisher = publisher.timeout(ACK_TIMEOUT);
    let mut window = publisher.publish_window(WINDOW);
    let mut ledger = Ledger::new();
    let mut killed = None;
    let started = Instant::now();
    while !ledger.done() {
        assert!(started.elapsed() < LIMIT, "not done in {LIMIT:?}: {} left", ledger.todo.len());
        if killed.is_none() && ledger.sent >= KILL_AT {
            killed = Some(kill_leader(&mut cluster, &js));
        }
        let Some(i) = ledger.todo.pop_front() else {
            for ack in window.wait_all() {
                ledger.settle(ack);
            }
            continue;
        };
        match window.publish_with(&subject(i), payload(i), &PublishOptions::new().msg_id(msg_id(i))) {
            Ok(oldest) => {
                ledger.sent(i);
                if oldest.is_some_and(|ack| ledger.settle(ack)) {
                    thread::sleep(BACKOFF);
                }
            }
            Err(_) => {
                ledger.not_sent(i);
                thread::sleep(BACKOFF);
            }
        }
    }
    ledger.verify(&js, killed.expect("the leader was killed"));
}

#[test]
fn async_publishes_survive_the_stream_leader_dying() {
    let (mut cluster, js) = start();
    let urls = cluster.urls().join(",");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (ledger, killed) = runtime.block_on(async {
        let client = nats_tokio::connect(&urls).await.expect("connect");
        let publisher = AsyncContext::new(client).timeout(ACK_TIMEOUT);
        let mut window = publisher.publish_window(WINDOW);
        let mut ledger = Ledger::new();
        let mut killed = None;
        let started = Instant::now();
        while !ledger.done() {
            assert!(started.elapsed() < LIMIT, "not done in {LIMIT:?}: {} left", ledger.todo.len());
            if killed.is_none() && ledger.sent >= KILL_AT {
                killed = Some(kill_leader(&mut cluster, &js));
            }
            let Some(i) = ledger.todo.pop_front() else {
                for ack in window.wait_all().await {
                    ledger.settle(ack);
                }
                continue;
            };
            match window.publish_with(&subject(i), payload(i), &PublishOptions::new().msg_id(msg_id(i))).await {
                Ok(oldest) => {
                    ledger.sent(i);
                    if oldest.is_some_and(|ack| ledger.settle(ack)) {
                        tokio::time::sleep(BACKOFF).await;
                    }
                }
                Err(_) => {
                    ledger.not_sent(i);
                    tokio::time::sleep(BACKOFF).await;
                }
            }
        }
        (ledger, killed)
    });
    ledger.verify(&js, killed.expect("the leader was killed"));
}
