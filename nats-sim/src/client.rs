//! A simulated user of a [`Connection`]: the driver around it (dials, reads, writes, timers), the workload
//! drawn from the seed, and the user's record of what it was promised, checked at every event.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use nats_proto::subject::matches;
use nats_proto::{
    Action, CloseReason, Config, Connection, ConnectionError, Credentials, Event, FlushError, FlushId, Instant, Msg,
    ReconnectPolicy, RequestError, RequestId, ServerAddr, State, SubscriptionEnd, WriteBuffer,
};

use crate::rng::SimRng;
use crate::server::{read_stamp, BASE_PORT, DENIED, REQUEST, TRACKED, USER};
use crate::world::{Check, Profile, World};

/// The drain timeout every simulated client uses.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// A subscription as its user knows it.
#[derive(Debug, Clone)]
pub(crate) struct UserSub {
    pub(crate) pattern: String,
    pub(crate) queue: Option<String>,
    pub(crate) max: Option<u64>,
    pub(crate) delivered: u64,
    /// The user has not ended it.
    pub(crate) live: bool,
    /// Its end was reported.
    pub(crate) ended: bool,
    /// Answers requests instead of counting messages.
    pub(crate) responder: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct FlushRecord {
    /// Connection epoch it was made in: it covers that epoch's earlier publishes.
    pub(crate) epoch: u64,
    /// Publishes with a lower sequence came before it.
    pub(crate) seq_end: u64,
    pub(crate) deadline: Instant,
}

#[derive(Debug, Clone)]
pub(crate) struct RequestRecord {
    pub(crate) payload: Bytes,
    pub(crate) deadline: Instant,
    pub(crate) many: bool,
    pub(crate) done: bool,
}

/// One simulated client.
pub(crate) struct SimClient {
    pub(crate) idx: usize,
    pub(crate) conn: Connection,
    /// Bytes taken from the core, not yet written.
    pub(crate) wire: WriteBuffer,
    /// The read buffer of the no-copy path.
    pub(crate) read_buf: BytesMut,
    /// Reads go through `handle_read` (straight to a sink) rather than `handle_input`.
    pub(crate) use_sink: bool,
    pub(crate) link: Option<u64>,
    /// A dial under way: when it completes, and the port.
    pub(crate) dial: Option<(Duration, u16)>,
    /// Credentials asked for and not yet answered: when each answer comes, the ask's number, and the nonce.
    pub(crate) creds: Vec<(Duration, u64, Option<String>)>,
    /// Disconnections seen: publishes and flushes of one epoch share one connection (or its buffer).
    pub(crate) epoch: u64,
    pub(crate) closed: bool,
    pub(crate) ever_connected: bool,
    pub(crate) close_requested: bool,
    pub(crate) drain_deadline: Option<Duration>,
    pub(crate) subs: BTreeMap<u64, UserSub>,
    /// (sid, origin, sequence) delivered.
    pub(crate) seen: HashSet<(u64, usize, u64)>,
    pub(crate) next_seq: u64,
    /// Accepted tracked publishes not yet proven by a flush: (sequence, epoch).
    pub(crate) pubs: Vec<(u64, u64)>,
    pub(crate) flushes: BTreeMap<FlushId, FlushRecord>,
    pub(crate) flush_calls: u64,
    pub(crate) requests: BTreeMap<RequestId, RequestRecord>,
    pub(crate) next_req: u64,
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
            // A third of the clients (by their seed, so that no other draw moves) make their credentials with a
            // callback: the core asks for them (`Action::Credentials`) and the answer comes later, sometimes
            // after the attempt has timed out.
            if config.seed % 3 == 0 {
                config.auth.callback = Some(Arc::new(move |_: Option<&str>| {
                    let mut c = Credentials::default();
                    c.user = Some(USER.0.into());
                    c.pass = Some(pass.into());
                    Ok(c)
                }));
            } else {
                config.auth.user_password = Some((USER.0.into(), pass.into()));
            }
        }
        Self {
            idx,
            conn: Connection::new(config, base),
            wire: WriteBuffer::new(),
            read_buf: BytesMut::new(),
            use_sink: rng.chance(500),
            link: None,
            dial: None,
            creds: Vec::new(),
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
                && self.creds.is_empty()
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
            while let Some(action) = self.clients[ci].conn.poll_action() {
                busy = true;
                self.on_action(ci, action)?;
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

    fn on_action(&mut self, ci: usize, action: Action) -> Check {
        match action {
            Action::Dial(addr) => {
                let c = &mut self.clients[ci];
                if c.link.is_some() || c.dial.is_some() {
                    return Err(format!("client {ci}: asked to dial {addr} with a transport open"));
                }
                let at = self.now + Duration::from_micros(self.rng.below(30_000));
                self.clients[ci].dial = Some((at, addr.port()));
            }
            Action::StartTls(addr) => return Err(format!("client {ci}: asked for TLS to {addr}, offered by none")),
            Action::CloseTransport => self.close_transport(ci),
            Action::Credentials { nonce, ask } => {
                // Mostly at once; sometimes slow; now and then past the connect timeout (1 s).
                let delay = match self.rng.weighted(&[90, 9, 1]) {
                    0 => self.rng.below(5_000),
                    1 => self.rng.range(5_000, 500_000),
                    _ => self.rng.range(1_000_000, 3_000_000),
                };
                let at = self.now + Duration::from_micros(delay);
                self.clients[ci].creds.push((at, ask, nonce));
            }
            other => return Err(format!("client {ci}: an action the simulator does not know: {other:?}")),
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
        if self.verbose() {
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
}
