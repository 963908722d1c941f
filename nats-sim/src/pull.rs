//! A continuous `consume` ([`nats_jetstream::pull::PullConsumer`]) against a model consumer: pull requests
//! with batch, bytes, expiry and heartbeats; `408 Request Timeout` and `409 Message Size Exceeds MaxBytes` with
//! the unserved rest in `Nats-Pending-*`; lost deliveries redelivered after the ack wait. The network stalls
//! (heartbeats go missing) and drops (disconnects lose what is on the wire, pull requests included).
//!
//! Promises: what the consumer believes pending never exceeds its maximum nor what the server still owes
//! (no leak that would stop it pulling), only user messages reach the user, and once the network settles
//! every stored message is delivered.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nats_jetstream::model::PullRequest;
use nats_jetstream::pull::{ConsumeConfig, PullConsumer, PullEvent};
use nats_jetstream::status::Incoming;
use nats_proto::{HeaderBlock, Msg};

use crate::rng::SimRng;
use crate::world::Check;
use crate::{Counts, Failure, Outcome, Trace};

/// How long a lost delivery waits before the server sends it again.
const ACK_WAIT: Duration = Duration::from_secs(2);

/// An open pull request at the server.
#[derive(Debug, Clone)]
struct Request {
    messages: u64,
    /// Bytes left; `None` when the request set no byte limit.
    bytes: Option<u64>,
    expires_at: Duration,
    heartbeat: Duration,
    last_sent: Duration,
}

struct Sim {
    rng: SimRng,
    /// Steps in the chaotic phase.
    steps: u64,
    base: Instant,
    now: Duration,
    consumer: PullConsumer<Msg>,
    max_messages: Option<u64>,
    max_bytes: Option<u64>,
    /// Messages 1..=stored are in the stream.
    stored: u64,
    /// The next never-delivered sequence.
    next_new: u64,
    /// Sequences to send again, and when.
    redeliver: VecDeque<(Duration, u64)>,
    requests: VecDeque<Request>,
    /// Pull requests on their way to the server.
    to_server: VecDeque<PullRequest>,
    /// Deliveries and statuses on their way to the client, with the sequence of a delivery.
    to_client: VecDeque<(Msg, Option<u64>)>,
    stalled_until: Duration,
    connected: bool,
    received: BTreeSet<u64>,
    settling: bool,
    counts: Counts,
    trace: Trace,
}

/// Runs one seed of the pull-consumer simulation.
pub fn run(seed: u64) -> Result<Outcome, Failure> {
    let mut rng = SimRng::new(seed ^ 0x0070_11CC);
    let (max_messages, max_bytes) = match rng.below(3) {
        0 => (Some(*rng.pick(&[1, 2, 5, 50])), None),
        1 => (None, Some(rng.range(40, 2000))),
        _ => (None, None),
    };
    let expires = Duration::from_millis(rng.range(1000, 5000));
    let config = ConsumeConfig { max_messages, max_bytes, expires, ..ConsumeConfig::default() };
    let base = Instant::now();
    let fail = |what: String| Failure { seed, step: 0, at: Duration::ZERO, what, trace: vec![] };
    let consumer = PullConsumer::consume(config, base).map_err(|e| fail(format!("consume refused: {e}")))?;
    let mut sim = Sim {
        rng,
        steps: 0,
        base,
        now: Duration::ZERO,
        consumer,
        max_messages,
        max_bytes,
        stored: 0,
        next_new: 1,
        redeliver: VecDeque::new(),
        requests: VecDeque::new(),
        to_server: VecDeque::new(),
        to_client: VecDeque::new(),
        stalled_until: Duration::ZERO,
        connected: true,
        received: BTreeSet::new(),
        settling: false,
        counts: Counts::default(),
        trace: Trace::from_env(),
    };
    sim.steps = sim.rng.range(50, 600);
    crate::drive(seed, sim)
}

/// A status message as the server sends it to a pull's inbox.
fn status(code: u16, text: &str, pending: Option<(u64, u64)>) -> Msg {
    let mut block = format!("NATS/1.0 {code} {text}\r\n");
    if let Some((messages, bytes)) = pending {
        block.push_str(&format!("Nats-Pending-Messages: {messages}\r\nNats-Pending-Bytes: {bytes}\r\n"));
    }
    block.push_str("\r\n");
    let headers = HeaderBlock::parse(Bytes::from(block)).expect("a valid status block");
    Msg::new("_INBOX.sim", 1, None, Some(&headers), b"")
}

impl Sim {
    fn note(&mut self, line: String) {
        let line = format!("{:?}: {line}", self.now);
        self.trace.push(line);
    }

    fn step(&mut self) -> Check {
        self.now += Duration::from_millis(self.rng.range(0, 200));
        let faults = if self.settling { 0 } else { 3 };
        let publish = if self.settling { 0 } else { 10 };
        match self.rng.weighted(&[publish, 20, 30, faults]) {
            0 => self.stored += self.rng.range(1, 4),
            1 => self.serve(),
            2 => self.deliver()?,
            _ => self.fault(),
        }
        self.expire();
        if self.trace.verbose() {
            let owed: Vec<(u64, Option<u64>)> = self.requests.iter().map(|r| (r.messages, r.bytes)).collect();
            let line = format!("  server owes {owed:?}, wire {} / {}", self.to_server.len(), self.to_client.len());
            self.note(line);
        }
        let now = self.base + self.now;
        if self.consumer.poll_timeout().is_some_and(|t| t <= now) {
            self.consumer.handle_timeout(now);
        }
        self.events()?;
        while let Some(pull) = self.consumer.poll_pull() {
            let (b, m) = (pull.batch, pull.max_bytes);
            self.note(format!("pull batch {b} bytes {m}; pending now {} B", self.consumer.pending_bytes()));
            self.to_server.push_back(pull);
        }
        self.check()
    }

    /// The server takes the pulls that reached it and sends what it can.
    fn serve(&mut self) {
        if self.connected {
            while let Some(p) = self.to_server.pop_front() {
                let bytes = (p.max_bytes > 0).then_some(p.max_bytes as u64);
                self.note(format!("server takes pull {} msgs {} B", p.batch, p.max_bytes));
                self.requests.push_back(Request {
                    messages: p.batch as u64,
                    bytes,
                    expires_at: self.now + p.expires,
                    heartbeat: p.idle_heartbeat,
                    last_sent: self.now,
                });
            }
        }
        while let Some(req) = self.requests.front_mut() {
            let seq = match self.redeliver.front() {
                Some(&(at, seq)) if at <= self.now => Some(seq),
                _ => (self.next_new <= self.stored).then_some(self.next_new),
            };
            let Some(seq) = seq else { break };
            let msg = Msg::new(
                format!("s.{seq}"),
                1,
                Some(format!("$JS.ACK.S.C.1.{seq}.{seq}.0.0").as_bytes()),
                None,
                seq.to_string(),
            );
            let size = msg.wire_size();
            if req.bytes.is_some_and(|b| size > b) {
                let (m, b) = (req.messages, req.bytes.unwrap_or(0));
                self.to_client.push_back((status(409, "Message Size Exceeds MaxBytes", Some((m, b))), None));
                self.requests.pop_front();
                continue;
            }
            if self.redeliver.front().is_some_and(|&(_, s)| s == seq) {
                self.redeliver.pop_front();
            } else {
                self.next_new += 1;
            }
            req.messages -= 1;
            if let Some(b) = &mut req.bytes {
                *b -= size;
            }
            req.last_sent = self.now;
            self.to_client.push_back((msg, Some(seq)));
            if req.messages == 0 || req.bytes == Some(0) {
                self.requests.pop_front();
            }
        }
    }

    /// Requests expire with a 408 saying what was left; idle ones send heartbeats.
    fn expire(&mut self) {
        let now = self.now;
        let mut i = 0;
        while i < self.requests.len() {
            let r = &mut self.requests[i];
            if r.expires_at <= now {
                let left = (r.messages, r.bytes.unwrap_or(0));
                self.requests.remove(i);
                self.to_client.push_back((status(408, "Request Timeout", Some(left)), None));
                continue;
            }
            if !r.heartbeat.is_zero() && now >= r.last_sent + r.heartbeat {
                r.last_sent = now;
                self.to_client.push_back((status(100, "Idle Heartbeat", None), None));
            }
            i += 1;
        }
    }

    fn deliver(&mut self) -> Check {
        if self.stalled_until > self.now || !self.connected {
            return Ok(());
        }
        let Some((msg, seq)) = self.to_client.pop_front() else { return Ok(()) };
        let size = msg.wire_size();
        let hdr = msg.header_bytes().map(|h| String::from_utf8_lossy(h).replace("\r\n", " "));
        self.consumer.handle_message(self.base + self.now, msg);
        let left = self.consumer.pending_bytes();
        match seq {
            Some(seq) => self.note(format!("delivered {seq} ({size} B); pending {left} B")),
            None => self.note(format!("status {hdr:?}; pending {left} B")),
        }
        Ok(())
    }

    fn events(&mut self) -> Check {
        while let Some(event) = self.consumer.poll_event() {
            match event {
                PullEvent::Message(msg) => {
                    let seq: u64 = std::str::from_utf8(msg.payload())
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| format!("a non-user message reached the user: {msg:?}"))?;
                    self.received.insert(seq);
                    self.counts.bump("messages delivered");
                }
                PullEvent::MissingHeartbeat => self.counts.bump("missed heartbeats"),
                other => return Err(format!("unexpected event: {other:?}")),
            }
        }
        Ok(())
    }

    fn fault(&mut self) {
        if self.rng.chance(500) {
            self.stalled_until = self.now + Duration::from_millis(self.rng.range(100, 8000));
            self.note("the network stalls".into());
            return;
        }
        // A disconnect: everything on the wire is lost; deliveries come again after the ack wait.
        self.counts.bump("reconnects");
        self.note("disconnect".into());
        self.connected = false;
        self.consumer.handle_disconnected(self.base + self.now);
        self.to_server.clear();
        for (_, seq) in self.to_client.drain(..) {
            if let Some(seq) = seq {
                self.redeliver.push_back((self.now + ACK_WAIT, seq));
            }
        }
        self.now += Duration::from_millis(self.rng.range(10, 2000));
        self.connected = true;
        self.consumer.handle_reconnected(self.base + self.now);
    }

    fn check(&self) -> Check {
        let pending = self.consumer.pending_messages();
        if let Some(max) = self.max_messages.or(self.max_bytes.map(|_| nats_jetstream::pull::BYTES_ONLY_BATCH)) {
            if pending > max {
                return Err(format!("{pending} messages pending, more than the maximum {max}"));
            }
        }
        if self.max_bytes.is_some_and(|max| self.consumer.pending_bytes() > max) {
            return Err(format!("{} bytes pending, more than the maximum", self.consumer.pending_bytes()));
        }
        // The consumer may not count on more than the server owes plus what is on its way.
        let mut owed = (0u64, 0u64);
        for r in &self.requests {
            owed.0 += r.messages;
            owed.1 += r.bytes.unwrap_or(0);
        }
        for p in &self.to_server {
            owed.0 += p.batch as u64;
            owed.1 += p.max_bytes as u64;
        }
        for (msg, seq) in &self.to_client {
            match seq {
                Some(_) => {
                    owed.0 += 1;
                    owed.1 += msg.wire_size();
                }
                None => {
                    let pending = nats_jetstream::status::Pending::from_headers(msg.headers());
                    owed.0 += pending.messages;
                    owed.1 += pending.bytes;
                }
            }
        }
        if pending > owed.0 || self.consumer.pending_bytes() > owed.1 {
            return Err(format!(
                "{pending} messages and {} bytes pending; the server owes {} and {} with what is on the wire: a leak",
                self.consumer.pending_bytes(),
                owed.0,
                owed.1
            ));
        }
        Ok(())
    }

    /// No more faults or stored messages: everything stored must arrive.
    fn settle(&mut self) -> Check {
        self.settling = true;
        self.stalled_until = Duration::ZERO;
        for _ in 0..200_000 {
            self.step()?;
            if self.received.len() as u64 == self.stored
                && self.received.iter().next_back().is_none_or(|&s| s == self.stored)
            {
                return Ok(());
            }
        }
        Err(format!(
            "not settled: {} of {} delivered; pending {} ({} B), {} open requests",
            self.received.len(),
            self.stored,
            self.consumer.pending_messages(),
            self.consumer.pending_bytes(),
            self.requests.len()
        ))
    }
}

impl crate::Schedule for Sim {
    fn steps(&self) -> u64 {
        self.steps
    }

    fn next_step(&mut self) -> Check {
        self.step()
    }

    fn wind_down(&mut self) -> Check {
        self.settle()
    }

    fn elapsed(&self) -> Duration {
        self.now
    }

    fn report(&self) -> (Counts, Vec<String>) {
        (self.counts.clone(), self.trace.lines())
    }
}
