//! The connection state machine.
//!
//! [`Connection`] never touches a socket or a clock. A driver feeds it bytes, end-of-stream and the current
//! time, and carries out what it asks: dial a server, start TLS, close the transport, write bytes. See the
//! crate docs for the drive loop.

mod config;
mod event;
mod mux;
mod pool;
pub mod read_buffer;
mod sid_map;
mod state;
mod subs;
mod timers;

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::encode::WriteBuffer;
use crate::error::CommandError;
use crate::headers::Headers;
use crate::info::ServerInfo;
use crate::parse::ServerDecoder;
use crate::payload::Payload;
use crate::subject::{validate_publish_subject, validate_queue, validate_subscribe_subject, Subject};
use crate::time::Instant;

pub use config::{Auth, Config, Credentials, CredentialsCallback};
pub(crate) use event::NoSink;
pub use event::{Action, CloseReason, Deliver, Event, FlushError, FlushId, State, Statistics, SubscriptionEnd};
pub use mux::{RequestError, RequestId};
pub use pool::{backoff, InvalidUrl, ReconnectPolicy, Rng, Scheme, ServerAddr, ServerPool};
pub use sid_map::IdHasher;
#[cfg(feature = "std")]
pub use sid_map::IdMap;

use mux::Mux;
use sid_map::Ids;
use subs::Subscriptions;
use timers::{after, Deadlines, Due, Timer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PingPurpose {
    KeepAlive,
    Fence(u64),
    Drain,
    /// The fence after one subscription's UNSUB: when it returns, nothing more can come for it.
    DrainSubscription(u64),
}

/// Bytes a PUB or HPUB of these parts takes on the wire (`hdr_len` given for HPUB).
fn publish_wire_len(subject: &[u8], reply: Option<&[u8]>, hdr_len: Option<usize>, payload: usize) -> usize {
    let digits = |n: usize| n.checked_ilog10().unwrap_or(0) as usize + 1;
    let total = hdr_len.unwrap_or(0) + payload;
    // "PUB " or "HPUB ", subject, " reply", " ", ["hdr "], "total", CRLF, then the body and CRLF.
    let line = 4 + subject.len() + reply.map_or(0, |r| r.len() + 1) + 1 + digits(total) + 2;
    line + hdr_len.map_or(0, |h| 1 + digits(h) + 1) + total + 2
}

/// A NATS client connection as a sans-IO state machine.
///
/// Methods come in four kinds:
/// - getters (`&self`): [`state`](Self::state), [`server_info`](Self::server_info),
///   [`statistics`](Self::statistics), [`max_payload`](Self::max_payload) ...
/// - inputs: [`handle_connected`](Self::handle_connected), [`handle_tls_ready`](Self::handle_tls_ready),
///   [`handle_input`](Self::handle_input) (or, with no copy and messages straight to a [`Deliver`] sink,
///   [`handle_read`](Self::handle_read)), [`handle_eof`](Self::handle_eof),
///   [`handle_timeout`](Self::handle_timeout);
/// - commands: [`publish`](Self::publish), [`subscribe`](Self::subscribe),
///   [`unsubscribe`](Self::unsubscribe), [`request`](Self::request), [`flush`](Self::flush),
///   [`drain`](Self::drain), [`close`](Self::close);
/// - outputs: [`poll_transmit`](Self::poll_transmit), [`poll_action`](Self::poll_action) (for the driver),
///   [`poll_event`](Self::poll_event) (for users), [`poll_timeout`](Self::poll_timeout).
///
/// Outputs stay queued until polled; nothing depends on polling between two commands.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    state: State,
    rng: Rng,
    pool: ServerPool,
    decoder: ServerDecoder,
    input: BytesMut,
    /// Length of the input buffer after the last processing, to count the new bytes of the next.
    input_seen: usize,
    out: WriteBuffer,
    /// Publishes (and flush PINGs) made while not connected.
    pending: WriteBuffer,
    events: VecDeque<Event>,
    /// Instructions for the driver, apart from the users' events.
    actions: VecDeque<Action>,
    /// Every deadline: the connection's timers, open flushes, open requests.
    timers: Deadlines,
    subs: Subscriptions,
    mux: Mux,
    inbox: String,
    info: Option<ServerInfo>,
    /// Sent PINGs waiting for their PONG, in order.
    pings: VecDeque<PingPurpose>,
    keepalive_out: u32,
    /// Open flushes and their deadlines.
    flushes: Ids<Option<Instant>>,
    /// Flush PINGs sitting in `pending`.
    unsent_fences: Vec<u64>,
    last_flush: u64,
    drain_fenced: bool,
    /// `drain` was called while not connected: drain as soon as a connection is ready.
    drain_requested: bool,
    tls_active: bool,
    /// The current attempt has had its INFO.
    attempt_info: bool,
    /// Credentials asked of the driver so far: each ask has its number, and only the latest answer counts.
    credentials_asked: u64,
    ever_connected: bool,
    /// Consecutive failed attempts, for backoff.
    failures: u32,
    initial_attempts: usize,
    stats: Statistics,
}

impl Connection {
    /// A connection that starts by asking the driver to dial the first server (see [`Action::Dial`]).
    pub fn new(mut config: Config, now: Instant) -> Self {
        let mut rng = Rng::new(config.seed);
        if config.servers.is_empty() {
            config.servers.push(ServerAddr::parse("nats://127.0.0.1:4222").expect("valid default URL"));
        }
        let pool = ServerPool::new(config.servers.clone(), config.randomize_servers, &mut rng);
        let inbox = format!("{}.{}", config.inbox_prefix, rng.base62(22));
        let mut conn = Self {
            decoder: ServerDecoder::new(config.limits),
            config,
            state: State::Disconnected,
            rng,
            pool,
            input: BytesMut::with_capacity(64 * 1024),
            input_seen: 0,
            out: WriteBuffer::new(),
            pending: WriteBuffer::new(),
            events: VecDeque::new(),
            actions: VecDeque::new(),
            timers: Deadlines::default(),
            subs: Subscriptions::default(),
            mux: Mux::default(),
            inbox,
            info: None,
            pings: VecDeque::new(),
            keepalive_out: 0,
            flushes: Ids::default(),
            unsent_fences: Vec::new(),
            last_flush: 0,
            drain_fenced: false,
            drain_requested: false,
            tls_active: false,
            attempt_info: false,
            credentials_asked: 0,
            ever_connected: false,
            failures: 0,
            initial_attempts: 0,
            stats: Statistics::default(),
        };
        conn.dial_next(now);
        conn
    }

    // ---- getters ----

    /// Where the connection is.
    pub fn state(&self) -> State {
        self.state
    }

    /// True when commands go straight to the server (connected or draining).
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected | State::Draining)
    }

    /// The last INFO received.
    pub fn server_info(&self) -> Option<&ServerInfo> {
        self.info.as_ref()
    }

    /// The server in use or being tried.
    pub fn current_server(&self) -> Option<&ServerAddr> {
        self.pool.current()
    }

    /// The server pool.
    pub fn servers(&self) -> &ServerPool {
        &self.pool
    }

    /// Counters.
    pub fn statistics(&self) -> Statistics {
        self.stats
    }

    /// The largest header block plus payload the server takes (1 MiB before the first INFO).
    #[inline]
    pub fn max_payload(&self) -> usize {
        self.info.as_ref().map(|i| i.max_payload).filter(|&m| m > 0).unwrap_or(1 << 20)
    }

    /// Whether a publish of `payload_len` bytes with `headers` would pass the server's limits: headers supported
    /// (or no INFO yet) and the header block plus payload within [`max_payload`](Self::max_payload). For a
    /// layer that adds headers of its own and must not turn a send that fits into one that fails.
    pub fn takes_headers(&self, headers: &Headers, payload_len: usize) -> bool {
        let supported = self.info.as_ref().is_none_or(|i| i.headers);
        supported && headers.encoded_len().saturating_add(payload_len) <= self.max_payload()
    }

    /// Live subscriptions, not counting the request mux.
    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// Requests waiting for a reply.
    pub fn requests_in_flight(&self) -> usize {
        self.mux.in_flight()
    }

    /// Bytes waiting for [`poll_transmit`](Self::poll_transmit).
    pub fn transmit_len(&self) -> usize {
        self.out.len()
    }

    /// Bytes of publishes held for the next connection.
    pub fn reconnect_buffer_len(&self) -> usize {
        self.pending.len()
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ---- commands ----

    fn check_open(&self) -> Result<(), CommandError> {
        match self.state {
            State::Closed => Err(CommandError::Closed),
            _ => Ok(()),
        }
    }

    /// A fresh unique inbox subject, `<inbox_prefix>.<random>`.
    pub fn new_inbox(&mut self) -> String {
        format!("{}.{}", self.config.inbox_prefix, self.rng.base62(22))
    }

    /// Checks a publish and returns the size of its header block.
    #[inline(always)]
    fn check_publish(&self, subject: &[u8], headers: Option<&Headers>, payload: &[u8]) -> Result<usize, CommandError> {
        self.check_open()?;
        validate_publish_subject(subject)?;
        if headers.is_some() && self.info.as_ref().is_some_and(|i| !i.headers) {
            return Err(CommandError::HeadersNotSupported);
        }
        let hdr_len = headers.map_or(0, Headers::encoded_len);
        let size = hdr_len + payload.len();
        let max_payload = self.max_payload();
        if size > max_payload {
            return Err(CommandError::MaxPayloadExceeded { size, max_payload });
        }
        Ok(hdr_len)
    }

    #[inline(always)]
    fn push_publish(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&Headers>,
        hdr_len: usize,
        payload: Payload<'_>,
    ) -> Result<(), CommandError> {
        let out = match self.state {
            State::Connected | State::Draining => &mut self.out,
            State::Closed => return Err(CommandError::Closed),
            _ => {
                // Only the reconnect buffer is bounded here (a driver bounds the wire buffer by waiting for it
                // to drain), so only here is the size worked out before encoding.
                let needed = publish_wire_len(subject, reply, headers.map(|_| hdr_len), payload.len());
                let available = self.config.reconnect_buffer_size.saturating_sub(self.pending.len());
                if needed > available {
                    return Err(CommandError::ReconnectBufferFull { needed, available });
                }
                &mut self.pending
            }
        };
        let wire = match headers {
            Some(h) => out.push_hpub(subject, reply, h, payload),
            None => out.push_pub(subject, reply, None, payload),
        };
        self.stats.out_msgs += 1;
        self.stats.out_bytes += wire as u64;
        Ok(())
    }

    /// Publishes a message. While disconnected it waits in the reconnect buffer (bounded in bytes). A borrowed
    /// payload is copied once and not held; see [`Payload`].
    #[inline(always)]
    pub fn publish<'p>(
        &mut self,
        subject: impl AsRef<[u8]>,
        reply: Option<&[u8]>,
        headers: Option<&Headers>,
        payload: impl Into<Payload<'p>>,
    ) -> Result<(), CommandError> {
        let (subject, payload) = (subject.as_ref(), payload.into());
        let hdr_len = self.check_publish(subject, headers, payload.as_slice())?;
        if let Some(reply) = reply {
            validate_publish_subject(reply)?;
        }
        self.push_publish(subject, reply, headers, hdr_len, payload)
    }

    /// Subscribes; returns the subscription id that its messages carry.
    pub fn subscribe(&mut self, subject: impl AsRef<[u8]>, queue: Option<&[u8]>) -> Result<u64, CommandError> {
        self.check_open()?;
        if self.state == State::Draining || self.drain_requested {
            return Err(CommandError::Draining);
        }
        let subject = subject.as_ref();
        validate_subscribe_subject(subject)?;
        if let Some(q) = queue {
            validate_queue(q).map_err(CommandError::InvalidQueue)?;
        }
        let sid = self.subs.next_sid();
        let (subject, queue) = (
            Subject::from_bytes(Bytes::copy_from_slice(subject)),
            queue.map(|q| Subject::from_bytes(Bytes::copy_from_slice(q))),
        );
        if self.is_connected() {
            self.out.push_sub(subject.as_bytes(), queue.as_ref().map(Subject::as_bytes), sid);
        }
        self.subs.insert(sid, subject, queue);
        Ok(sid)
    }

    /// Ends a subscription now (`max: None`), or once it has delivered `max` messages in total.
    pub fn unsubscribe(&mut self, sid: u64, max: Option<u64>) -> Result<(), CommandError> {
        self.check_open()?;
        let connected = self.is_connected();
        let sub = self.subs.get_mut(sid).ok_or(CommandError::UnknownSubscription(sid))?;
        if let Some(max) = max.filter(|&m| m > sub.delivered) {
            let raised = sub.max.is_some_and(|old| max > old);
            sub.max = Some(max);
            if connected {
                // The server counts from this connection's SUB; we count across connections.
                let server_max = max - sub.delivered + sub.delivered_on_conn;
                self.out.push_unsub(sid, Some(server_max));
                if raised {
                    // The server may have ended it at the old max before this UNSUB arrives (messages in flight
                    // crossing a lower max). The same SUB again brings it back (a server ignores it where the
                    // subscription lives, and its UNSUB above already raised the max), and the max is sent once
                    // more for a revived one. That counts from zero, so it may allow more than is left: our
                    // own count decides. Found by the simulator (seeds 236 and 1011138).
                    self.out.push_sub(sub.subject.as_bytes(), sub.queue.as_ref().map(Subject::as_bytes), sid);
                    self.out.push_unsub(sid, Some(server_max));
                }
            }
            return Ok(());
        }
        self.subs.remove(sid);
        if connected {
            self.out.push_unsub(sid, None);
        }
        let reason = if max.is_some() { SubscriptionEnd::MaxReached } else { SubscriptionEnd::Unsubscribed };
        self.events.push_back(Event::SubscriptionEnded { sid, reason });
        Ok(())
    }

    /// Drains one subscription: UNSUB now, then a PING fence; messages the server sent before it processed the
    /// UNSUB are still delivered, and [`Event::SubscriptionEnded`] with [`SubscriptionEnd::Drained`] follows
    /// the fence's PONG. Without a connection nothing can be in flight, so it ends at once.
    pub fn drain_subscription(&mut self, sid: u64) -> Result<(), CommandError> {
        self.check_open()?;
        if self.subs.get_mut(sid).is_none() {
            return Err(CommandError::UnknownSubscription(sid));
        }
        if self.is_connected() {
            self.out.push_unsub(sid, None);
            self.out.push_ping();
            self.pings.push_back(PingPurpose::DrainSubscription(sid));
        } else {
            self.subs.remove(sid);
            self.events.push_back(Event::SubscriptionEnded { sid, reason: SubscriptionEnd::Drained });
        }
        Ok(())
    }

    /// Sends a request; its reply arrives as [`Event::Response`]. `timeout: None` waits for ever.
    pub fn request<'p>(
        &mut self,
        now: Instant,
        subject: impl AsRef<[u8]>,
        headers: Option<&Headers>,
        payload: impl Into<Payload<'p>>,
        timeout: Option<Duration>,
    ) -> Result<RequestId, CommandError> {
        self.start_request(now, subject.as_ref(), headers, payload.into(), timeout, false)
    }

    /// Like [`request`](Self::request), but every reply is delivered until the timeout, a 503, or
    /// [`cancel_request`](Self::cancel_request).
    pub fn request_many<'p>(
        &mut self,
        now: Instant,
        subject: impl AsRef<[u8]>,
        headers: Option<&Headers>,
        payload: impl Into<Payload<'p>>,
        timeout: Option<Duration>,
    ) -> Result<RequestId, CommandError> {
        self.start_request(now, subject.as_ref(), headers, payload.into(), timeout, true)
    }

    fn start_request(
        &mut self,
        now: Instant,
        subject: &[u8],
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Option<Duration>,
        many: bool,
    ) -> Result<RequestId, CommandError> {
        if self.state == State::Draining || self.drain_requested {
            return Err(CommandError::Draining);
        }
        let hdr_len = self.check_publish(subject, headers, payload.as_slice())?;
        let subs = &mut self.subs;
        if let Some((sid, wildcard)) = self.mux.ensure_sub(|| subs.next_sid(), &self.inbox) {
            if self.is_connected() {
                self.out.push_sub(wildcard.as_bytes(), None, sid);
            }
        }
        let (id, reply) = self.mux.start(timeout.map(|t| after(now, t)), many, &mut self.timers);
        if let Err(e) = self.push_publish(subject, Some(reply.as_bytes()), headers, hdr_len, payload) {
            self.mux.cancel(id, &mut self.timers);
            return Err(e);
        }
        Ok(id)
    }

    /// Ends an open flush (its deadline leaves the table). True if it was open.
    fn end_flush(&mut self, id: u64) -> bool {
        match self.flushes.remove(&id) {
            Some(deadline) => {
                if let Some(at) = deadline {
                    self.timers.remove(at, Due::Flush(id));
                }
                true
            }
            None => false,
        }
    }

    /// Forgets a request; later replies to it are dropped. True if it was still waiting.
    pub fn cancel_request(&mut self, id: RequestId) -> bool {
        let was = self.mux.cancel(id, &mut self.timers);
        self.maybe_finish_drain();
        was
    }

    /// Sends a PING fence: [`Event::Flushed`] reports when the server has processed everything sent before it.
    /// Made while disconnected, it is sent after the reconnect buffer.
    pub fn flush(&mut self, now: Instant, timeout: Option<Duration>) -> Result<FlushId, CommandError> {
        self.check_open()?;
        self.last_flush += 1;
        let id = self.last_flush;
        let deadline = timeout.map(|t| after(now, t));
        self.flushes.insert(id, deadline);
        if let Some(at) = deadline {
            self.timers.insert(at, Due::Flush(id));
        }
        if self.is_connected() {
            self.out.push_ping();
            self.pings.push_back(PingPurpose::Fence(id));
        } else {
            self.pending.push_ping();
            self.unsent_fences.push(id);
        }
        Ok(FlushId(id))
    }

    /// Unsubscribes everything, delivers what is in flight, waits for open requests, then closes. While
    /// disconnected it first waits (up to the drain timeout) for the next connection, so that buffered
    /// publishes are delivered too.
    pub fn drain(&mut self, now: Instant) -> Result<(), CommandError> {
        match self.state {
            State::Closed => Err(CommandError::Closed),
            State::Draining => Ok(()),
            _ if self.drain_requested => Ok(()),
            State::Connected => {
                self.timers.set(Timer::Drain, after(now, self.config.drain_timeout));
                self.start_drain();
                Ok(())
            }
            _ => {
                self.drain_requested = true;
                self.timers.set(Timer::Drain, after(now, self.config.drain_timeout));
                Ok(())
            }
        }
    }

    pub(crate) fn start_drain(&mut self) {
        for sid in self.subs.sids() {
            self.out.push_unsub(sid, None);
        }
        self.out.push_ping();
        self.pings.push_back(PingPurpose::Drain);
        self.state = State::Draining;
    }

    /// Closes at once: open requests and flushes fail, subscriptions end.
    pub fn close(&mut self) {
        if self.state != State::Closed {
            self.finish_close(CloseReason::Requested);
        }
    }

    // ---- outputs ----

    /// Moves the bytes waiting to be written into `dst` (swapping buffers when `dst` is empty, so nothing is
    /// copied). Returns how many bytes were moved.
    pub fn poll_transmit(&mut self, dst: &mut WriteBuffer) -> usize {
        let n = self.out.len();
        if n > 0 {
            if dst.is_empty() {
                core::mem::swap(dst, &mut self.out);
            } else {
                dst.append(&mut self.out);
            }
        }
        n
    }

    /// The next event for users, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next instruction for the driver, if any: dial, start TLS, close the transport. A driver routes the
    /// events that are waiting before it carries out an action that blocks (a dial), so that they do not wait
    /// behind it.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// True when an instruction waits for the driver.
    pub fn has_action(&self) -> bool {
        !self.actions.is_empty()
    }

    /// When the current connect attempt (dial, TLS, handshake) runs out, if one is under way. A driver that
    /// runs a TLS handshake itself gives it this deadline.
    pub fn connect_deadline(&self) -> Option<Instant> {
        self.timers.get(timers::Timer::Connect)
    }

    /// The earliest time at which [`handle_timeout`](Self::handle_timeout) has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }
}
