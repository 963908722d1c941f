//! The pull-consumer state machine behind `consume` (continuous), `fetch` and `next` (ADR-37), sans-IO.
//!
//! A driver owns one subscription on a private inbox per [`PullConsumer`] and:
//! - publishes every [`PullConsumer::poll_pull`] body to `CONSUMER.MSG.NEXT.<stream>.<consumer>` with that inbox
//!   as the reply subject;
//! - feeds every message of the subscription to [`PullConsumer::handle_message`];
//! - calls [`PullConsumer::handle_timeout`] at [`PullConsumer::poll_timeout`], and the connection hooks
//!   [`PullConsumer::handle_disconnected`] / [`PullConsumer::handle_reconnected`];
//! - hands [`PullConsumer::poll_event`] to the user.
//!
//! Time is an argument; nothing here reads a clock.
//!
//! **Consume** keeps `pending` messages and bytes: each pull adds its batch and bytes, each delivered message
//! takes off 1 and its size (subject + reply + headers + payload, the server's count), and the 408/409/423
//! statuses take off what their `Nats-Pending-*` headers say the request left unserved. When pending falls
//! below the threshold (half the maximum, rounded up) it pulls the difference. Heartbeats are always on: 2 ×
//! the heartbeat without any traffic gives a [`PullEvent::MissingHeartbeat`] warning and a fresh pull. A
//! disconnect pauses all that; a reconnect starts afresh. Only `409 Consumer Deleted`, `409 Consumer is push
//! based` and [`PullConsumer::stop`] end it.
//!
//! **Fetch** sends one pull and ends with [`PullEvent::FetchDone`] when the batch or bytes are filled, on the
//! status that ends the request (404, 408, 409, ...), at the client deadline (expires + a margin), on a
//! missed heartbeat, on a disconnect, or on stop.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use nats_jetstream::pull::{ConsumeConfig, PullConsumer, PullEvent};
//! use nats_proto::Msg;
//!
//! let start = Instant::now();
//! let mut consume = PullConsumer::<Msg>::consume(ConsumeConfig { max_messages: Some(10), ..Default::default() }, start)?;
//! let pull = consume.poll_pull().expect("the first pull");
//! assert_eq!(pull.batch, 10);
//! assert_eq!(pull.expires, Duration::from_secs(30));
//! assert_eq!(pull.idle_heartbeat, Duration::from_secs(15));
//! assert!(consume.poll_pull().is_none());
//! assert_eq!(consume.poll_timeout(), Some(start + Duration::from_secs(30)));
//!
//! // Nothing at all for 2 × 15 s: a warning, and a fresh pull.
//! consume.handle_timeout(start + Duration::from_secs(30));
//! assert!(matches!(consume.poll_event(), Some(PullEvent::MissingHeartbeat)));
//! assert_eq!(consume.poll_pull().map(|p| p.batch), Some(10));
//! # Ok::<(), nats_jetstream::error::JetStreamError>(())
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::JetStreamError;
use crate::model::PullRequest;
use crate::status::{Control, Incoming, Kind};

mod config;
pub use config::{ConsumeConfig, FetchConfig, PriorityGroup};

/// `consume`'s default `max_messages` when neither messages nor bytes are given.
pub const DEFAULT_MAX_MESSAGES: u64 = 500;
/// The batch of a bytes-only `consume` (or fetch): bytes are the limit.
pub const BYTES_ONLY_BATCH: u64 = 1_000_000;
/// Default expiry of a pull request.
pub const DEFAULT_EXPIRES: Duration = Duration::from_secs(30);
/// Shortest expiry `consume` accepts.
pub const MIN_EXPIRES: Duration = Duration::from_secs(1);
/// Shortest default heartbeat.
pub const MIN_HEARTBEAT: Duration = Duration::from_millis(500);
/// Longest default heartbeat.
pub const MAX_HEARTBEAT: Duration = Duration::from_secs(30);
/// Default for how much longer than `expires` a fetch waits before it gives up on the server.
pub const DEFAULT_FETCH_MARGIN: Duration = Duration::from_secs(1);
/// How long a `no_wait` fetch without `expires` waits for the server's answer.
pub const NO_WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest wait scheduled; longer durations are cut so that adding them to an `Instant` cannot overflow.
const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(LONGEST)).unwrap_or(now)
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `ceil(n / 2)`.
fn half_up(n: u64) -> u64 {
    n / 2 + n % 2
}

/// `expires / 2`, clamped to [0.5 s, 30 s].
pub fn default_heartbeat(expires: Duration) -> Duration {
    (expires / 2).clamp(MIN_HEARTBEAT, MAX_HEARTBEAT)
}

fn invalid(reason: impl Into<String>) -> JetStreamError {
    JetStreamError::InvalidConfig { reason: reason.into() }
}

/// Why a continuous consume ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Termination {
    /// `409 Consumer Deleted`.
    ConsumerDeleted,
    /// `409 Consumer is push based`.
    ConsumerIsPushBased,
    /// [`PullConsumer::stop`] was called.
    Stopped,
}

/// Why a fetch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchEnd {
    /// The batch was delivered in full.
    BatchFilled,
    /// The bytes were delivered in full.
    BytesFilled,
    /// The server ended the request with this status (404 no messages, 408 expired, 409 ..., or an error).
    Status(Control),
    /// The client deadline (expires + margin) passed without the server ending the request.
    Deadline,
    /// Heartbeats were asked for and 2 × the heartbeat passed without any traffic.
    MissingHeartbeat,
    /// The connection was lost: the request is gone with it.
    Disconnected,
    /// [`PullConsumer::stop`] was called.
    Stopped,
}

impl FetchEnd {
    /// True when the end is a failure to report, not a normal end of a fetch: an error status, a terminal or
    /// limit 409, a `423` refusing the fetch's pin, or a missed heartbeat.
    pub fn is_error(&self) -> bool {
        match self {
            FetchEnd::Status(c) => {
                c.is_error() || c.is_terminal() || c.is_warning() || matches!(c, Control::PinIdMismatch { .. })
            }
            FetchEnd::MissingHeartbeat => true,
            _ => false,
        }
    }
}

/// What a [`PullConsumer`] tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent<M> {
    /// A message for the user.
    Message(M),
    /// No traffic for 2 × the heartbeat (consume): a warning; the consumer pulls afresh and goes on.
    MissingHeartbeat,
    /// A limit of the consumer refused a pull (`409 Exceeded ...`; consume): a warning.
    Warning(Control),
    /// An error status (400, 412, 503, unknown; consume): reported; the consumer goes on.
    Error(Control),
    /// The consume ended; nothing follows.
    Terminated {
        /// Why.
        reason: Termination,
    },
    /// The fetch ended; nothing follows.
    FetchDone {
        /// Why.
        reason: FetchEnd,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConsumeLimits {
    max_messages: u64,
    max_bytes: Option<u64>,
    threshold_messages: u64,
    threshold_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Consume(ConsumeLimits),
    Fetch { batch: u64, max_bytes: Option<u64>, no_wait: bool, sent: bool },
}

/// The pull-consumer state machine for one subscription: a continuous consume or one fetch.
///
/// `M` is the driver's message type; the machine reads it through [`Incoming`] and hands it back unchanged in
/// [`PullEvent::Message`].
#[derive(Debug)]
pub struct PullConsumer<M> {
    mode: Mode,
    expires: Option<Duration>,
    heartbeat: Option<Duration>,
    pending_messages: u64,
    pending_bytes: u64,
    connected: bool,
    finished: bool,
    heartbeat_deadline: Option<Instant>,
    fetch_deadline: Option<Instant>,
    events: VecDeque<PullEvent<M>>,
    priority: Option<PriorityGroup>,
    pin_id: Option<String>,
}

/// The header of a message for a pinned client: its pin, to send in later pulls.
pub const PIN_ID: &str = "Nats-Pin-Id";

impl<M: Incoming> PullConsumer<M> {
    fn new(
        mode: Mode,
        expires: Option<Duration>,
        heartbeat: Option<Duration>,
        priority: Option<PriorityGroup>,
        now: Instant,
    ) -> Result<Self, JetStreamError> {
        if let Some(problem) = priority.as_ref().and_then(PriorityGroup::problem) {
            return Err(invalid(problem));
        }
        let mut this = PullConsumer {
            mode,
            expires,
            heartbeat,
            pending_messages: 0,
            pending_bytes: 0,
            connected: true,
            finished: false,
            heartbeat_deadline: None,
            fetch_deadline: None,
            events: VecDeque::new(),
            priority,
            pin_id: None,
        };
        this.arm_heartbeat(now);
        Ok(this)
    }

    /// A continuous consume, starting at `now` (connected). Fails on a config the server would reject or
    /// that contradicts itself.
    pub fn consume(config: ConsumeConfig, now: Instant) -> Result<Self, JetStreamError> {
        let (max_messages, max_bytes) = match (config.max_messages, config.max_bytes) {
            (Some(_), Some(_)) => return Err(invalid("max_messages and max_bytes exclude each other")),
            (Some(0), None) => return Err(invalid("max_messages must be at least 1")),
            (None, Some(0)) => return Err(invalid("max_bytes must be at least 1")),
            (Some(m), None) => (m, None),
            (None, Some(b)) => (BYTES_ONLY_BATCH, Some(b)),
            (None, None) => (DEFAULT_MAX_MESSAGES, None),
        };
        if config.expires < MIN_EXPIRES {
            return Err(invalid("expires must be at least 1s"));
        }
        let heartbeat = config.idle_heartbeat.unwrap_or_else(|| default_heartbeat(config.expires));
        if heartbeat.is_zero() {
            return Err(invalid("idle_heartbeat must not be zero"));
        }
        if heartbeat.saturating_mul(2) > config.expires {
            return Err(invalid("idle_heartbeat must be at most half of expires"));
        }
        let threshold_messages = config.threshold_messages.unwrap_or_else(|| half_up(max_messages));
        if threshold_messages > max_messages {
            return Err(invalid("threshold_messages must not exceed max_messages"));
        }
        let threshold_bytes = match (max_bytes, config.threshold_bytes) {
            (Some(b), Some(t)) if t > b => return Err(invalid("threshold_bytes must not exceed max_bytes")),
            (Some(_), Some(t)) => t,
            (Some(b), None) => half_up(b),
            (None, Some(_)) => return Err(invalid("threshold_bytes needs max_bytes")),
            (None, None) => 0,
        };
        let limits = ConsumeLimits { max_messages, max_bytes, threshold_messages, threshold_bytes };
        Self::new(Mode::Consume(limits), Some(config.expires), Some(heartbeat), config.priority_group, now)
    }

    /// One fetch, starting at `now` (connected): its client deadline is `now` + expires + margin.
    pub fn fetch(config: FetchConfig, now: Instant) -> Result<Self, JetStreamError> {
        if config.batch == 0 {
            return Err(invalid("batch must be at least 1"));
        }
        if config.max_bytes == Some(0) {
            return Err(invalid("max_bytes must be at least 1"));
        }
        if config.expires.is_some_and(|e| e.is_zero()) {
            return Err(invalid("expires must not be zero"));
        }
        if !config.no_wait && config.expires.is_none() {
            return Err(invalid("a waiting fetch needs expires"));
        }
        let heartbeat = match (config.idle_heartbeat, config.expires) {
            (Some(hb), _) if hb.is_zero() => None,
            (Some(hb), expires) => {
                if expires.is_none_or(|e| hb.saturating_mul(2) > e) {
                    return Err(invalid("idle_heartbeat must be at most half of expires"));
                }
                Some(hb)
            }
            (None, Some(e)) if e > MAX_HEARTBEAT => Some(default_heartbeat(e)),
            (None, _) => None,
        };
        let mode =
            Mode::Fetch { batch: config.batch, max_bytes: config.max_bytes, no_wait: config.no_wait, sent: false };
        let mut this = Self::new(mode, config.expires, heartbeat, config.priority_group, now)?;
        let wait = config.expires.map_or(NO_WAIT_TIMEOUT, |e| e.saturating_add(config.deadline_margin));
        this.fetch_deadline = Some(after(now, wait));
        Ok(this)
    }

    /// The pin of a pinned client (from the last `Nats-Pin-Id` received; cleared by a `423`).
    pub fn pin_id(&self) -> Option<&str> {
        self.pin_id.as_deref()
    }

    /// Starts with a pin received earlier (a fetch after a fetch): later pulls send it.
    pub fn set_pin_id(&mut self, pin_id: Option<String>) {
        self.pin_id = pin_id;
    }

    /// Messages pulled and not yet delivered or released by a status (always 0 for a consume limited by bytes,
    /// whose pulls count bytes only).
    pub fn pending_messages(&self) -> u64 {
        self.pending_messages
    }

    /// Bytes pulled and not yet delivered or released by a status (0 unless bytes are limited).
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes
    }

    /// The heartbeat asked of the server, if any.
    pub fn idle_heartbeat(&self) -> Option<Duration> {
        self.heartbeat
    }

    /// True once the consume or fetch has ended (its last event may still be queued).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// True for a fetch or next, false for a consume.
    pub fn is_fetch(&self) -> bool {
        matches!(self.mode, Mode::Fetch { .. })
    }

    fn arm_heartbeat(&mut self, now: Instant) {
        self.heartbeat_deadline = match self.heartbeat {
            Some(hb) if self.connected && !self.finished => Some(after(now, hb.saturating_mul(2))),
            _ => None,
        };
    }

    fn finish(&mut self, event: PullEvent<M>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.heartbeat_deadline = None;
        self.fetch_deadline = None;
        self.events.push_back(event);
    }

    fn end_fetch(&mut self, reason: FetchEnd) {
        self.finish(PullEvent::FetchDone { reason });
    }

    fn release(&mut self, control: &Control) {
        let pending = control.pending();
        self.pending_messages = self.pending_messages.saturating_sub(pending.messages);
        self.pending_bytes = self.pending_bytes.saturating_sub(pending.bytes);
    }

    /// A message of the subscription arrived at `now`.
    pub fn handle_message(&mut self, now: Instant, msg: M) {
        if self.finished {
            // Late arrivals after the end belong to nobody; the server redelivers them after ack_wait.
            return;
        }
        self.arm_heartbeat(now);
        let kind = msg.classify();
        match kind {
            Kind::User => {
                if self.priority.is_some() {
                    if let Some(pin) = msg.headers().and_then(|h| h.get(PIN_ID).map(str::to_owned)) {
                        self.pin_id = Some(pin);
                    }
                }
                self.pending_messages = self.pending_messages.saturating_sub(1);
                self.pending_bytes = self.pending_bytes.saturating_sub(msg.wire_size());
                self.events.push_back(PullEvent::Message(msg));
                if let Mode::Fetch { sent: true, max_bytes, .. } = self.mode {
                    if self.pending_messages == 0 {
                        self.end_fetch(FetchEnd::BatchFilled);
                    } else if max_bytes.is_some() && self.pending_bytes == 0 {
                        self.end_fetch(FetchEnd::BytesFilled);
                    }
                }
            }
            Kind::Control(control) => {
                if matches!(control, Control::PinIdMismatch { .. }) {
                    // Another client holds the pin, or ours expired: compete for it afresh.
                    self.pin_id = None;
                }
                match self.mode {
                    Mode::Fetch { .. } => self.fetch_control(control),
                    Mode::Consume(_) => self.consume_control(control),
                }
            }
        }
    }

    fn fetch_control(&mut self, control: Control) {
        if control.ends_request() {
            self.release(&control);
            self.end_fetch(FetchEnd::Status(control));
        }
    }

    fn consume_control(&mut self, control: Control) {
        match control {
            Control::IdleHeartbeat | Control::FlowControl { .. } | Control::NoMessages => {}
            Control::RequestTimeout { .. }
            | Control::InterestExpired { .. }
            | Control::RequestsPending { .. }
            | Control::MessageSizeExceedsMaxBytes { .. }
            | Control::BatchCompleted { .. } => self.release(&control),
            Control::LeadershipChange { pending }
            | Control::ServerShutdown { pending }
            | Control::PinIdMismatch { pending }
                if pending.is_empty() =>
            {
                // The pulls were cancelled without saying how much: start over.
                self.pending_messages = 0;
                self.pending_bytes = 0;
            }
            Control::LeadershipChange { .. } | Control::ServerShutdown { .. } | Control::PinIdMismatch { .. } => {
                self.release(&control)
            }
            Control::ConsumerDeleted => self.finish(PullEvent::Terminated { reason: Termination::ConsumerDeleted }),
            Control::ConsumerIsPushBased => {
                self.finish(PullEvent::Terminated { reason: Termination::ConsumerIsPushBased })
            }
            Control::LimitExceeded { .. } => self.events.push_back(PullEvent::Warning(control)),
            other => self.events.push_back(PullEvent::Error(other)),
        }
    }

    /// Timers due at or before `now` fire: a fetch's deadline ends it; a missed heartbeat ends a fetch and
    /// warns a consume (which then pulls afresh).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        if self.fetch_deadline.is_some_and(|d| d <= now) {
            self.end_fetch(FetchEnd::Deadline);
            return;
        }
        if self.heartbeat_deadline.is_some_and(|d| d <= now) {
            match self.mode {
                Mode::Fetch { .. } => self.end_fetch(FetchEnd::MissingHeartbeat),
                Mode::Consume(_) => {
                    self.events.push_back(PullEvent::MissingHeartbeat);
                    // Whatever was pending is presumed lost with the silence.
                    self.pending_messages = 0;
                    self.pending_bytes = 0;
                    self.arm_heartbeat(now);
                }
            }
        }
    }

    /// The connection was lost at `now`: the heartbeat timer pauses and nothing is pulled. A fetch ends.
    pub fn handle_disconnected(&mut self, now: Instant) {
        let _ = now;
        if self.finished || !self.connected {
            return;
        }
        self.connected = false;
        self.heartbeat_deadline = None;
        if self.is_fetch() {
            self.end_fetch(FetchEnd::Disconnected);
        }
    }

    /// The connection is back at `now`: a consume forgets what was pending, pulls afresh and restarts the
    /// heartbeat timer. It never ends here.
    pub fn handle_reconnected(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        self.connected = true;
        self.pending_messages = 0;
        self.pending_bytes = 0;
        self.arm_heartbeat(now);
    }

    /// Ends the consume or fetch: no more pulls, timers or messages; its last event says so.
    pub fn stop(&mut self) {
        match self.mode {
            Mode::Fetch { .. } => self.end_fetch(FetchEnd::Stopped),
            Mode::Consume(_) => self.finish(PullEvent::Terminated { reason: Termination::Stopped }),
        }
    }

    /// The next pull request to publish, if one is due now. Its batch and bytes count as pending from here.
    pub fn poll_pull(&mut self) -> Option<PullRequest> {
        if self.finished || !self.connected {
            return None;
        }
        let (batch, max_bytes, no_wait) = match &mut self.mode {
            Mode::Fetch { sent: true, .. } => return None,
            Mode::Fetch { sent, batch, max_bytes, no_wait, .. } => {
                *sent = true;
                (*batch, *max_bytes, *no_wait)
            }
            Mode::Consume(limits) => match limits.max_bytes {
                // Limited by bytes alone: every pull asks the full batch, and messages are not counted. A
                // request whose bytes are used up ends without a status and its batch unserved; counted, that
                // batch would shrink every later pull until none was sent, and a pull then filled by its batch
                // would leave bytes counted that never come (both found by the simulator).
                Some(max_bytes) => {
                    let bytes = max_bytes.saturating_sub(self.pending_bytes);
                    if self.pending_bytes >= limits.threshold_bytes || bytes == 0 {
                        return None;
                    }
                    (limits.max_messages, Some(bytes), false)
                }
                None => {
                    let batch = limits.max_messages.saturating_sub(self.pending_messages);
                    if self.pending_messages >= limits.threshold_messages || batch == 0 {
                        return None;
                    }
                    (batch, None, false)
                }
            },
        };
        let bytes_only = matches!(self.mode, Mode::Consume(ConsumeLimits { max_bytes: Some(_), .. }));
        if !bytes_only {
            self.pending_messages = self.pending_messages.saturating_add(batch);
        }
        self.pending_bytes = self.pending_bytes.saturating_add(max_bytes.unwrap_or(0));
        Some(PullRequest {
            batch: usize::try_from(batch).unwrap_or(usize::MAX),
            max_bytes: max_bytes.map_or(0, |b| usize::try_from(b).unwrap_or(usize::MAX)),
            expires: self.expires.unwrap_or_default(),
            no_wait,
            idle_heartbeat: self.heartbeat.unwrap_or_default(),
            group: self.priority.as_ref().map(|p| p.group.clone()).unwrap_or_default(),
            min_pending: self.priority.as_ref().and_then(|p| p.min_pending).map_or(0, saturating_i64),
            min_ack_pending: self.priority.as_ref().and_then(|p| p.min_ack_pending).map_or(0, saturating_i64),
            priority: self.priority.as_ref().map_or(0, |p| p.priority),
            id: self.pin_id.clone().unwrap_or_default(),
        })
    }

    /// The next event for the user.
    pub fn poll_event(&mut self) -> Option<PullEvent<M>> {
        self.events.pop_front()
    }

    /// When [`PullConsumer::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.heartbeat_deadline, self.fetch_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests;
