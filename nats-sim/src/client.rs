//! A simulated user of a [`Connection`]: the driver around it (dials, reads, writes, timers), the workload
//! drawn from the seed, and the user's record of what it was promised, checked at every event.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use nats_proto::subject::matches;
use nats_proto::{
    CloseReason, CommandError, Config, Connection, ConnectionError, Event, FlushError, FlushId, Headers, Msg,
    ReconnectPolicy, RequestError, RequestId, ServerAddr, State, SubscriptionEnd, WriteBuffer,
};

use crate::rng::SimRng;
use crate::server::{read_stamp, stamp, BASE_PORT, DENIED, REQUEST, TRACKED, USER};
use crate::world::{Check, Profile, World};

/// Subjects tracked messages are published on.
const SUBJECTS: [&str; 5] = ["t.a", "t.b", "t.a.x", "t.b.y", "t.c"];
/// Patterns subscribers use.
const PATTERNS: [&str; 7] = ["t.a", "t.*", "t.>", "t.a.*", "t.b.y", "t.*.x", ">"];
/// Subjects requests go to; the last has no responder ever.
const SERVICES: [&str; 4] = ["svc.0", "svc.1", "svc.2", "svc.none"];
/// Patterns responders use.
const RESPONDERS: [&str; 3] = ["svc.0", "svc.1", "svc.*"];
/// The drain timeout every simulated client uses.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// A subscription as its user knows it.
#[derive(Debug, Clone)]
struct UserSub {
    pattern: String,
    queue: Option<String>,
    max: Option<u64>,
    delivered: u64,
    /// The user has not ended it.
    live: bool,
    /// Its end was reported.
    ended: bool,
    /// Answers requests instead of counting messages.
    responder: bool,
}

#[derive(Debug, Clone, Copy)]
struct FlushRecord {
    /// Connection epoch it was made in: it covers that epoch's earlier publishes.
    epoch: u64,
    /// Publishes with a lower sequence came before it.
    seq_end: u64,
    deadline: Instant,
}

#[derive(Debug, Clone)]
struct RequestRecord {
    payload: Bytes,
    deadline: Instant,
    many: bool,
    done: bool,
}

/// One simulated client.
pub(crate) struct SimClient {
    idx: usize,
    pub(crate) conn: Connection,
    /// Bytes taken from the core, not yet written.
    wire: WriteBuffer,
    /// The read buffer of the no-copy path.
    pub(crate) read_buf: BytesMut,
    /// Reads go through `handle_read` (straight to a sink) rather than `handle_input`.
    use_sink: bool,
    pub(crate) link: Option<u64>,
    /// A dial under way: when it completes, and the port.
    pub(crate) dial: Option<(Duration, u16)>,
    /// Disconnections seen: publishes and flushes of one epoch share one connection (or its buffer).
    epoch: u64,
    pub(crate) closed: bool,
    ever_connected: bool,
    close_requested: bool,
    drain_deadline: Option<Duration>,
    subs: BTreeMap<u64, UserSub>,
    /// (sid, origin, sequence) delivered.
    seen: HashSet<(u64, usize, u64)>,
    next_seq: u64,
    /// Accepted tracked publishes not yet proven by a flush: (sequence, epoch).
    pubs: Vec<(u64, u64)>,
    flushes: BTreeMap<FlushId, FlushRecord>,
    flush_calls: u64,
    requests: BTreeMap<RequestId, RequestRecord>,
    next_req: u64,
    pub(crate) wrong_password: bool,
}

impl SimClient {
    pub(crate) fn new(idx: usize, profile: &Profile, base: Instant, rng: &mut SimRng) -> Self {
        let count = if profile.all_servers { profile.nodes } else { 1 };
        let servers = (0..count)
            .map(|i| ServerAddr::parse(&format!("nats://127.0.0.1:{}", BASE_PORT + i as u16)).expect("valid URL"))
            .collect();
        let mut config = Config::new(servers);
        config.name = Some(format!("sim-{idx}"));
        config.retry_on_initial_connect = true;
        config.connect_timeout = Duration::from_secs(1);
        config.ping_interval = profile.ping_interval;
        config.max_pings_out = 2;
        config.reconnect = ReconnectPolicy {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(500),
            jitter: Duration::from_millis(20),
            ..ReconnectPolicy::default()
        };
        config.reconnect_buffer_size = profile.reconnect_buffer;
        config.drain_timeout = DRAIN_TIMEOUT;
        config.seed = rng.next_u64();
        let wrong_password = profile.wrong_password && idx == 0;
        if profile.auth {
            let pass = if wrong_password { "wrong" } else { USER.1 };
            config.auth.user_password = Some((USER.0.into(), pass.into()));
        }
        Self {
            idx,
            conn: Connection::new(config, base),
            wire: WriteBuffer::new(),
            read_buf: BytesMut::new(),
            use_sink: rng.chance(500),
            link: None,
            dial: None,
            epoch: 0,
            closed: false,
            ever_connected: false,
            close_requested: false,
            drain_deadline: None,
            subs: BTreeMap::new(),
            seen: HashSet::new(),
            next_seq: 0,
            pubs: Vec::new(),
            flushes: BTreeMap::new(),
            flush_calls: 0,
            requests: BTreeMap::new(),
            next_req: 0,
            wrong_password,
        }
    }

    pub(crate) fn can_write(&self) -> bool {
        self.link.is_some() && !self.wire.is_empty()
    }

    /// Connected and idle (or closed, or never able to connect).
    pub(crate) fn settled(&self) -> bool {
        self.closed
            || self.wrong_password
            || (self.conn.state() == State::Connected
                && self.link.is_some()
                && self.wire.is_empty()
                && self.dial.is_none()
                && self.conn.transmit_len() == 0)
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "client {} {:?} link {:?} dial {:?} wire {} B{}",
            self.idx,
            self.conn.state(),
            self.link,
            self.dial,
            self.wire.len(),
            if self.wrong_password { " (wrong password)" } else { "" }
        )
    }
}

impl World {
    /// Runs a client's core until it is idle: due timers, events, bytes to write.
    pub(crate) fn pump(&mut self, ci: usize) -> Check {
        for _ in 0..10_000 {
            let now = self.instant();
            let c = &mut self.clients[ci];
            let mut busy = false;
            if c.conn.poll_timeout().is_some_and(|t| t <= now) {
                c.conn.handle_timeout(now);
                busy = true;
            }
            while let Some(event) = self.clients[ci].conn.poll_event() {
                busy = true;
                self.on_event(ci, event)?;
            }
            let c = &mut self.clients[ci];
            if c.conn.poll_transmit(&mut c.wire) > 0 {
                busy = true;
            }
            if c.link.is_none() && !c.wire.is_empty() {
                return Err(format!("client {ci}: bytes to write with no transport: {} B", c.wire.len()));
            }
            if !busy {
                return Ok(());
            }
        }
        Err(format!("client {ci}: never idle (a timer that stays due, or events without end)"))
    }

    /// The client's socket takes some of what it has to write.
    pub(crate) fn client_write(&mut self, ci: usize) {
        let c = &mut self.clients[ci];
        let Some(id) = c.link else { return };
        let waiting = c.wire.remaining();
        let n = if self.rng.chance(self.profile.partial) {
            self.counts.bump("partial reads/writes");
            self.rng.range(1, waiting as u64) as usize
        } else {
            waiting
        };
        let mut bytes = Vec::with_capacity(n);
        while bytes.len() < n {
            let chunk = c.wire.chunk();
            let take = chunk.len().min(n - bytes.len());
            bytes.extend_from_slice(&chunk[..take]);
            c.wire.advance(take);
        }
        if let Some(li) = self.link_index(id) {
            let link = &mut self.links[li];
            if !link.black_hole && !link.server_gone && !link.reset {
                link.c2s.write(&bytes);
            }
        }
    }

    /// The client reads `bytes` from its connection `id`.
    pub(crate) fn client_read(&mut self, ci: usize, id: u64, bytes: &[u8]) -> Check {
        if self.clients[ci].link != Some(id) {
            return Ok(());
        }
        let now = self.instant();
        let c = &mut self.clients[ci];
        if c.use_sink {
            c.read_buf.extend_from_slice(bytes);
            let mut delivered: Vec<Msg> = Vec::new();
            c.conn.handle_read(now, &mut c.read_buf, &mut delivered);
            for msg in delivered {
                self.on_message(ci, msg)?;
            }
        } else {
            c.conn.handle_input(now, bytes);
        }
        self.pump(ci)?;
        self.check_routed(ci, id)
    }

    /// Every tracked message the client has read in full was delivered, unless its subscription had ended.
    fn check_routed(&mut self, ci: usize, id: u64) -> Check {
        let Some(li) = self.link_index(id) else { return Ok(()) };
        if self.clients[ci].link != Some(id) {
            self.links[li].routed.clear();
            return Ok(());
        }
        let read = self.links[li].s2c.read;
        while let Some(r) = self.links[li].routed.front().copied() {
            if r.end > read {
                break;
            }
            self.links[li].routed.pop_front();
            let c = &self.clients[ci];
            if !c.seen.contains(&(r.sid, r.origin, r.seq)) && c.subs.get(&r.sid).is_some_and(|s| s.live) {
                return Err(format!(
                    "client {ci}: message {}:{} for live sid {} was read in full but never delivered",
                    r.origin, r.seq, r.sid
                ));
            }
        }
        Ok(())
    }

    /// The client's transport ended.
    pub(crate) fn client_eof(&mut self, ci: usize) -> Check {
        let now = self.instant();
        let c = &mut self.clients[ci];
        c.link = None;
        c.wire.clear();
        c.read_buf.clear();
        c.conn.handle_eof(now);
        self.pump(ci)
    }

    fn on_event(&mut self, ci: usize, event: Event) -> Check {
        let now = self.instant();
        match event {
            Event::Dial(addr) => {
                let c = &mut self.clients[ci];
                if c.link.is_some() || c.dial.is_some() {
                    return Err(format!("client {ci}: asked to dial {addr} with a transport open"));
                }
                let at = self.now + Duration::from_micros(self.rng.below(30_000));
                self.clients[ci].dial = Some((at, addr.port()));
            }
            Event::StartTls(addr) => return Err(format!("client {ci}: asked for TLS to {addr}, offered by none")),
            Event::CloseTransport => self.close_transport(ci),
            Event::Connected(_) => {
                let c = &mut self.clients[ci];
                if c.ever_connected {
                    return Err(format!("client {ci}: Connected twice"));
                }
                c.ever_connected = true;
            }
            Event::Reconnected(_) => {
                if !self.clients[ci].ever_connected {
                    return Err(format!("client {ci}: Reconnected before Connected"));
                }
                self.counts.bump("reconnects");
            }
            Event::Disconnected(e) => {
                self.clients[ci].epoch += 1;
                if matches!(e, ConnectionError::Parse(_)) {
                    return Err(format!("client {ci}: lost its connection to a parse error: {e}"));
                }
                self.note(|| format!("client {ci}: disconnected ({e})"));
            }
            Event::ConnectFailed { error, .. } => {
                if matches!(error, ConnectionError::Parse(_)) {
                    return Err(format!("client {ci}: connect failed on a parse error: {error}"));
                }
            }
            Event::Message(msg) => self.on_message(ci, msg)?,
            Event::SubscriptionEnded { sid, reason } => self.on_sub_end(ci, sid, reason)?,
            Event::Response { id, result, done } => self.on_response(ci, id, result, done, now)?,
            Event::Flushed { id, result } => self.on_flushed(ci, id, result, now)?,
            Event::BadMessage(e) => return Err(format!("client {ci}: a bad message from a correct server: {e}")),
            Event::Closed(reason) => self.on_closed(ci, reason)?,
            // LameDuck, DiscoveredServers, ServerError: nothing to check beyond what follows from them.
            _ => {}
        }
        Ok(())
    }

    /// The core is done with the transport: write what is left, then close our end.
    fn close_transport(&mut self, ci: usize) {
        let c = &mut self.clients[ci];
        c.dial = None;
        c.conn.poll_transmit(&mut c.wire);
        let rest = c.wire.copy_to_bytes(c.wire.remaining());
        c.read_buf.clear();
        let Some(id) = c.link.take() else { return };
        if let Some(li) = self.link_index(id) {
            let link = &mut self.links[li];
            if !link.black_hole && !link.server_gone && !link.reset {
                link.c2s.write(&rest);
            }
            link.client_gone = true;
            link.s2c.data.clear();
            link.routed.clear();
        }
    }

    fn on_message(&mut self, ci: usize, msg: Msg) -> Check {
        let sid = msg.sid();
        let c = &mut self.clients[ci];
        let Some(sub) = c.subs.get_mut(&sid) else {
            return Err(format!("client {ci}: message for sid {sid}, which it never had"));
        };
        if !sub.live {
            return Err(format!("client {ci}: message for sid {sid} after its user ended it"));
        }
        if !matches(sub.pattern.as_bytes(), msg.subject().as_bytes()) {
            return Err(format!("client {ci}: message on {:?} for sid {sid} ({})", msg.subject(), sub.pattern));
        }
        if sub.responder {
            sub.delivered += 1;
            if sub.max.is_some_and(|m| sub.delivered > m) {
                return Err(format!("client {ci}: sid {sid} delivered {} messages, max {:?}", sub.delivered, sub.max));
            }
            if let Some(reply) = msg.reply_bytes() {
                if self.rng.chance(900) {
                    // A reply that cannot go (closed, buffer full) is the requester's timeout.
                    let _ = c.conn.publish(&reply[..], None, None, msg.payload());
                }
            }
            return Ok(());
        }
        let (origin, seq) = match read_stamp(msg.payload()) {
            Some((TRACKED, origin, seq)) => (origin, seq),
            // A wide pattern (`>`) also sees requests and their replies: counted, not tracked.
            Some((REQUEST, ..)) => {
                sub.delivered += 1;
                if sub.max.is_some_and(|m| sub.delivered > m) {
                    return Err(format!(
                        "client {ci}: sid {sid} delivered {} messages, max {:?}",
                        sub.delivered, sub.max
                    ));
                }
                return Ok(());
            }
            _ => return Err(format!("client {ci}: damaged payload for sid {sid}: {:?}", msg.payload())),
        };
        let header = msg.headers().and_then(|h| h.get("Sim-Seq").map(str::to_owned));
        if header != (seq % 3 == 0).then(|| seq.to_string()) {
            return Err(format!("client {ci}: message {origin}:{seq} arrived with header {header:?}"));
        }
        if !c.seen.insert((sid, origin, seq)) {
            return Err(format!("client {ci}: message {origin}:{seq} delivered twice to sid {sid}"));
        }
        sub.delivered += 1;
        self.counts.bump("messages delivered");
        let (delivered, max) = (sub.delivered, sub.max);
        if self.verbose {
            self.note(|| format!("client {ci}: sid {sid} got {origin}:{seq} ({delivered} delivered)"));
        }
        if max.is_some_and(|m| delivered > m) {
            return Err(format!("client {ci}: sid {sid} delivered {delivered} messages, max {max:?}"));
        }
        Ok(())
    }

    fn on_sub_end(&mut self, ci: usize, sid: u64, reason: SubscriptionEnd) -> Check {
        let c = &mut self.clients[ci];
        let Some(sub) = c.subs.get_mut(&sid) else {
            return Err(format!("client {ci}: end of sid {sid}, which it never had"));
        };
        if sub.ended {
            return Err(format!("client {ci}: sid {sid} ended twice ({reason:?})"));
        }
        sub.ended = true;
        sub.live = false;
        let fits = match &reason {
            SubscriptionEnd::MaxReached => sub.max.is_some_and(|m| sub.delivered >= m),
            SubscriptionEnd::Drained => c.drain_deadline.is_some(),
            SubscriptionEnd::PermissionDenied(_) => sub.pattern.starts_with(DENIED),
            SubscriptionEnd::Closed => c.conn.state() == State::Closed,
            _ => true,
        };
        if fits {
            Ok(())
        } else {
            Err(format!("client {ci}: sid {sid} ({}) ended as {reason:?}: {sub:?}", sub.pattern))
        }
    }

    fn on_response(
        &mut self,
        ci: usize,
        id: RequestId,
        result: Result<Msg, RequestError>,
        done: bool,
        now: Instant,
    ) -> Check {
        let c = &mut self.clients[ci];
        let closed = c.conn.state() == State::Closed;
        let Some(r) = c.requests.get_mut(&id) else {
            return Err(format!("client {ci}: response for {id:?}, never made"));
        };
        if r.done {
            return Err(format!("client {ci}: {id:?} answered again after it ended: {result:?}"));
        }
        match &result {
            Ok(msg) if msg.payload() != &r.payload[..] => {
                return Err(format!("client {ci}: {id:?} got another request's reply"));
            }
            Ok(_) if !r.many && !done => return Err(format!("client {ci}: single {id:?} not done by its reply")),
            Ok(_) => self.counts.bump("requests answered"),
            Err(RequestError::Timeout) if now < r.deadline => {
                return Err(format!("client {ci}: {id:?} timed out before its deadline"));
            }
            Err(RequestError::Timeout) => self.counts.bump("requests timed out"),
            Err(RequestError::NoResponders) => self.counts.bump("no responders"),
            Err(RequestError::Closed) if closed => {}
            Err(e) => return Err(format!("client {ci}: {id:?} failed unexpectedly: {e:?}")),
        }
        if result.is_err() && !done {
            return Err(format!("client {ci}: {id:?} failed but is not done"));
        }
        r.done |= done;
        Ok(())
    }

    fn on_flushed(&mut self, ci: usize, id: FlushId, result: Result<(), FlushError>, now: Instant) -> Check {
        let c = &mut self.clients[ci];
        let Some(f) = c.flushes.remove(&id) else {
            return Err(format!("client {ci}: {id:?} completed twice, or never made"));
        };
        match result {
            Ok(()) => {
                self.counts.bump("flushes completed");
                let covered = |&(seq, epoch): &(u64, u64)| epoch == f.epoch && seq < f.seq_end;
                if let Some(&(seq, _)) =
                    c.pubs.iter().filter(|p| covered(p)).find(|(seq, _)| !self.processed.contains(&(ci, *seq)))
                {
                    return Err(format!(
                        "client {ci}: publish {seq} (epoch {}) never reached the server, yet {id:?} covering it \
                         completed",
                        f.epoch
                    ));
                }
                c.pubs.retain(|p| !covered(p));
            }
            Err(FlushError::Timeout) if now < f.deadline => {
                return Err(format!("client {ci}: {id:?} timed out before its deadline"));
            }
            Err(_) => {}
        }
        Ok(())
    }

    fn on_closed(&mut self, ci: usize, reason: CloseReason) -> Check {
        let c = &mut self.clients[ci];
        if c.closed {
            return Err(format!("client {ci}: closed twice ({reason:?})"));
        }
        c.closed = true;
        let expected = match reason {
            CloseReason::Requested => c.close_requested,
            CloseReason::Drained | CloseReason::DrainTimedOut => c.drain_deadline.is_some(),
            _ => false,
        };
        if expected {
            if c.drain_deadline.is_some() {
                self.counts.bump("drains ended");
            }
            Ok(())
        } else {
            Err(format!("client {ci}: closed unexpectedly: {reason:?}"))
        }
    }

    /// One action of a client's user, drawn from the seed.
    pub(crate) fn workload(&mut self) -> Check {
        if self.settling {
            return Ok(());
        }
        let ci = self.rng.index(self.clients.len());
        if self.clients[ci].closed {
            return Ok(());
        }
        let now = self.instant();
        match self.rng.weighted(&[30, 6, 3, 4, 4, 3, 8, 2, 6, 2, 1, 1]) {
            0 => self.publish(ci),
            1 | 2 => {
                let pattern = *self.rng.pick(&PATTERNS);
                let queue = self.rng.chance(300).then(|| *self.rng.pick(&["g1", "g2"]));
                self.subscribe(ci, pattern, queue, false)
            }
            3 => {
                let pattern = *self.rng.pick(&RESPONDERS);
                let queue = self.rng.chance(500).then_some("workers");
                self.subscribe(ci, pattern, queue, true)
            }
            4 | 5 => {
                let c = &self.clients[ci];
                let live: Vec<u64> = c.subs.iter().filter(|(_, s)| s.live).map(|(&sid, _)| sid).collect();
                if live.is_empty() {
                    return Ok(());
                }
                let sid = *self.rng.pick(&live);
                let delivered = c.subs[&sid].delivered;
                let max = self.rng.chance(500).then(|| delivered + self.rng.below(4));
                self.note(|| format!("client {ci}: unsubscribe sid {sid} max {max:?}"));
                let c = &mut self.clients[ci];
                match c.conn.unsubscribe(sid, max) {
                    Ok(()) => {
                        let sub = c.subs.get_mut(&sid).expect("picked from the map");
                        match max {
                            Some(m) => sub.max = Some(m),
                            None => sub.live = false,
                        }
                        Ok(())
                    }
                    Err(e) => Err(format!("client {ci}: unsubscribe of live sid {sid} refused: {e}")),
                }
            }
            6 | 7 => self.request(ci, now),
            8 => {
                let timeout = Duration::from_millis(self.rng.range(50, 5000));
                let c = &mut self.clients[ci];
                let id = c.conn.flush(now, Some(timeout)).map_err(|e| format!("client {ci}: flush refused: {e}"))?;
                c.flush_calls += 1;
                let record = FlushRecord { epoch: c.epoch, seq_end: c.next_seq, deadline: now + timeout };
                if c.flushes.insert(id, record).is_some() {
                    return Err(format!("client {ci}: {id:?} given twice"));
                }
                self.note(|| format!("client {ci}: flush {id:?}"));
                Ok(())
            }
            9 => {
                if self.rng.chance(500) {
                    self.subscribe(ci, "deny.x", None, false)
                } else {
                    let _ = self.clients[ci].conn.publish("deny.x", None, None, &b"no"[..]);
                    Ok(())
                }
            }
            10 if self.rng.chance(60) => {
                self.note(|| format!("client {ci}: drain"));
                let c = &mut self.clients[ci];
                if c.drain_deadline.is_none() {
                    c.drain_deadline = Some(self.now + DRAIN_TIMEOUT);
                }
                c.conn.drain(now).map_err(|e| format!("client {ci}: drain refused: {e}"))
            }
            11 if self.rng.chance(30) => {
                self.note(|| format!("client {ci}: close"));
                let c = &mut self.clients[ci];
                c.close_requested = true;
                c.conn.close();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn payload_len(&mut self) -> usize {
        match self.rng.weighted(&[60, 30, 8, 2]) {
            0 => self.rng.range(10, 40) as usize,
            1 => self.rng.range(40, 300) as usize,
            2 => self.rng.range(300, 3000) as usize,
            _ => self.profile.max_payload + self.rng.range(1, 100) as usize,
        }
    }

    fn publish(&mut self, ci: usize) -> Check {
        let subject = *self.rng.pick(&SUBJECTS);
        let len = self.payload_len();
        let c = &mut self.clients[ci];
        let seq = c.next_seq;
        c.next_seq += 1;
        let payload = stamp(TRACKED, ci, seq, len);
        let mut headers = Headers::new();
        headers.insert("Sim-Seq", &seq.to_string()).map_err(|e| e.to_string())?;
        let headers = (seq % 3 == 0).then_some(&headers);
        let buffered_before = c.conn.reconnect_buffer_len();
        match c.conn.publish(subject, None, headers, &payload[..]) {
            Ok(()) => {
                c.pubs.push((seq, c.epoch));
                Ok(())
            }
            Err(CommandError::ReconnectBufferFull { needed, available }) => {
                self.counts.bump("reconnect buffer full");
                let bound = self.profile.reconnect_buffer;
                if c.conn.is_connected() || needed <= available || available != bound.saturating_sub(buffered_before) {
                    return Err(format!(
                        "client {ci}: buffer full with needed {needed}, available {available}, buffered \
                         {buffered_before}, bound {bound}, connected {}",
                        c.conn.is_connected()
                    ));
                }
                Ok(())
            }
            Err(CommandError::MaxPayloadExceeded { size, max_payload }) if size > max_payload => Ok(()),
            Err(CommandError::Closed) if c.conn.state() == State::Closed => Ok(()),
            Err(e) => Err(format!("client {ci}: publish of {len} B refused: {e}")),
        }
    }

    fn subscribe(&mut self, ci: usize, pattern: &str, queue: Option<&str>, responder: bool) -> Check {
        let c = &mut self.clients[ci];
        match c.conn.subscribe(pattern, queue.map(str::as_bytes)) {
            Ok(sid) => {
                let sub = UserSub {
                    pattern: pattern.to_owned(),
                    queue: queue.map(str::to_owned),
                    max: None,
                    delivered: 0,
                    live: true,
                    ended: false,
                    responder,
                };
                if c.subs.insert(sid, sub).is_some() {
                    return Err(format!("client {ci}: sid {sid} given twice"));
                }
                self.note(|| format!("client {ci}: subscribe {pattern} {queue:?} as sid {sid}"));
                Ok(())
            }
            Err(CommandError::Draining) if c.drain_deadline.is_some() => Ok(()),
            Err(e) => Err(format!("client {ci}: subscribe to {pattern} refused: {e}")),
        }
    }

    fn request(&mut self, ci: usize, now: Instant) -> Check {
        let subject = *self.rng.pick(&SERVICES);
        let len = self.payload_len();
        let many = self.rng.chance(200);
        let timeout = Duration::from_millis(self.rng.range(20, 3000));
        let c = &mut self.clients[ci];
        let seq = c.next_req;
        c.next_req += 1;
        let payload = Bytes::from(stamp(REQUEST, ci, seq, len));
        let made = if many {
            c.conn.request_many(now, subject, None, &payload[..], Some(timeout))
        } else {
            c.conn.request(now, subject, None, &payload[..], Some(timeout))
        };
        match made {
            Ok(id) => {
                let record = RequestRecord { payload, deadline: now + timeout, many, done: false };
                if c.requests.insert(id, record).is_some() {
                    return Err(format!("client {ci}: {id:?} given twice"));
                }
                Ok(())
            }
            Err(CommandError::ReconnectBufferFull { .. }) if !c.conn.is_connected() => {
                self.counts.bump("reconnect buffer full");
                Ok(())
            }
            Err(CommandError::MaxPayloadExceeded { size, max_payload }) if size > max_payload => Ok(()),
            Err(CommandError::Draining) if c.drain_deadline.is_some() => Ok(()),
            Err(e) => Err(format!("client {ci}: request refused: {e}")),
        }
    }

    /// Promises that hold at every step.
    pub(crate) fn check_all(&mut self) -> Check {
        let now = self.instant();
        for (ci, c) in self.clients.iter().enumerate() {
            if let Some((id, _)) = c.requests.iter().find(|(_, r)| !r.done && r.deadline < now) {
                return Err(format!("client {ci}: {id:?} still open past its deadline"));
            }
            if let Some((id, _)) = c.flushes.iter().find(|(_, f)| f.deadline < now) {
                return Err(format!("client {ci}: {id:?} still open past its deadline"));
            }
            if c.drain_deadline.is_some_and(|d| d < self.now) && !c.closed {
                return Err(format!("client {ci}: drain still going past its timeout"));
            }
            let bound = self.profile.reconnect_buffer as u64 + 6 * c.flush_calls;
            if c.conn.reconnect_buffer_len() as u64 > bound {
                return Err(format!(
                    "client {ci}: reconnect buffer {} B over its bound",
                    c.conn.reconnect_buffer_len()
                ));
            }
            let open_subs = c.subs.values().filter(|s| !s.ended).count();
            let open_requests = c.requests.values().filter(|r| !r.done).count();
            if c.conn.subscription_count() != open_subs || c.conn.requests_in_flight() != open_requests {
                return Err(format!(
                    "client {ci}: the core holds {} subscriptions and {} requests; the user has {open_subs} and \
                     {open_requests}",
                    c.conn.subscription_count(),
                    c.conn.requests_in_flight()
                ));
            }
            if c.closed && (c.conn.reconnect_buffer_len() > 0 || !c.flushes.is_empty() || open_subs > 0) {
                return Err(format!("client {ci}: closed but still holds work"));
            }
        }
        Ok(())
    }

    /// Once settled: the server holds exactly the client's live subscriptions.
    pub(crate) fn check_agreement(&self, ci: usize) -> Check {
        let c = &self.clients[ci];
        if c.closed || c.wrong_password {
            return Ok(());
        }
        let li = c.link.and_then(|id| self.link_index(id)).ok_or_else(|| format!("client {ci}: no connection"))?;
        let server: Vec<(u64, String, Option<String>, Option<u64>)> = self.links[li]
            .subs
            .iter()
            .filter(|(_, s)| !s.subject.starts_with("_INBOX."))
            .map(|(&sid, s)| (sid, s.subject.clone(), s.queue.clone(), s.max.map(|m| m - s.delivered)))
            .collect();
        let client: Vec<(u64, String, Option<String>, Option<u64>)> = c
            .subs
            .iter()
            .filter(|(_, s)| !s.ended)
            .map(|(&sid, s)| (sid, s.pattern.clone(), s.queue.clone(), s.max.map(|m| m - s.delivered)))
            .collect();
        // Same subscriptions and groups; the server may allow more than is left (a revived subscription counts
        // from zero) but never fewer: the client's own count ends it.
        let agree = server.len() == client.len()
            && server.iter().zip(&client).all(|(s, c)| {
                s.0 == c.0
                    && s.1 == c.1
                    && s.2 == c.2
                    && match (s.3, c.3) {
                        (None, None) => true,
                        (Some(server_left), Some(client_left)) => server_left >= client_left,
                        _ => false,
                    }
            });
        if !agree {
            return Err(format!("client {ci}: the server holds {server:?}, the client {client:?}"));
        }
        Ok(())
    }

    /// Closes every client; nothing may be left open.
    pub(crate) fn finish(&mut self) -> Check {
        for ci in 0..self.clients.len() {
            if !self.clients[ci].closed {
                self.clients[ci].close_requested = true;
                self.clients[ci].conn.close();
                self.pump(ci)?;
            }
            let c = &self.clients[ci];
            if !c.closed || c.requests.values().any(|r| !r.done) {
                return Err(format!("client {ci}: close left requests open or no Closed event"));
            }
        }
        self.check_all()
    }
}
