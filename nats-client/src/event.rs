//! Connection events, as a callback or a receiver.

use nats_proto::{ConnectionError, ParseError, ServerError};

/// Something that happened to the connection.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The first connection is ready (server URL, without credentials).
    Connected(String),
    /// A connection is ready again; subscriptions were replayed and buffered publishes sent.
    Reconnected(String),
    /// The connection was lost; reconnecting.
    Disconnected(ConnectionError),
    /// An attempt to connect failed.
    ConnectFailed {
        /// The server tried.
        server: String,
        /// Why.
        error: ConnectionError,
    },
    /// The server is shutting down and will close this connection soon.
    LameDuck,
    /// The server announced more servers.
    DiscoveredServers,
    /// A subscription's pending limits were reached: messages are being dropped (one event per episode).
    SlowConsumer {
        /// The subscription.
        sid: u64,
    },
    /// The server sent `-ERR`.
    ServerError(ServerError),
    /// A message with a malformed header block was dropped.
    BadMessage(ParseError),
    /// The client is closed.
    Closed,
}

/// Events waiting in a channel before new ones are dropped.
pub const EVENT_CAPACITY: usize = 256;

#[derive(Debug, Default)]
struct ChannelState {
    events: std::collections::VecDeque<Event>,
    ended: bool,
    dropped: u64,
    waker: Option<std::task::Waker>,
}

/// The sending side, kept by the connection. A full channel loses new events rather than stall the
/// connection.
#[derive(Debug, Default)]
pub struct EventChannel {
    state: std::sync::Mutex<ChannelState>,
    ready: std::sync::Condvar,
}

impl EventChannel {
    fn lock(&self) -> std::sync::MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `event` (or drops it when the channel is full).
    pub fn send(&self, event: Event) {
        let mut s = self.lock();
        if s.events.len() >= EVENT_CAPACITY {
            s.dropped += 1;
            return;
        }
        s.events.push_back(event);
        self.notify(&mut s);
    }

    /// No more events will come.
    pub fn end(&self) {
        let mut s = self.lock();
        s.ended = true;
        self.notify(&mut s);
    }

    fn notify(&self, s: &mut ChannelState) {
        self.ready.notify_all();
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

/// Connection events as they happen: iterate it (blocking), or poll it from a task. It ends after
/// [`Event::Closed`]. Up to 256 events wait; more are dropped while the receiver lags (counted by
/// [`dropped`](Self::dropped)).
#[derive(Debug)]
pub struct EventReceiver {
    channel: std::sync::Arc<EventChannel>,
}

impl EventReceiver {
    /// A receiver and the channel behind it.
    pub fn new() -> (Self, std::sync::Arc<EventChannel>) {
        let channel = std::sync::Arc::new(EventChannel::default());
        (Self { channel: channel.clone() }, channel)
    }

    /// A receiver that has already ended.
    pub fn ended() -> Self {
        let (rx, channel) = Self::new();
        channel.end();
        rx
    }

    /// The next event, waiting at most `timeout` (the same contract as `std::sync::mpsc::Receiver`).
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Result<Event, std::sync::mpsc::RecvTimeoutError> {
        use std::sync::mpsc::RecvTimeoutError;
        let deadline = std::time::Instant::now() + timeout;
        let mut s = self.channel.lock();
        loop {
            if let Some(e) = s.events.pop_front() {
                return Ok(e);
            }
            if s.ended {
                return Err(RecvTimeoutError::Disconnected);
            }
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()).filter(|l| !l.is_zero()) else {
                return Err(RecvTimeoutError::Timeout);
            };
            s = self.channel.ready.wait_timeout(s, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// The next event, blocking; an error once the channel ended.
    pub fn recv(&self) -> Result<Event, std::sync::mpsc::RecvError> {
        let mut s = self.channel.lock();
        loop {
            if let Some(e) = s.events.pop_front() {
                return Ok(e);
            }
            if s.ended {
                return Err(std::sync::mpsc::RecvError);
            }
            s = self.channel.ready.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Result<Event, std::sync::mpsc::TryRecvError> {
        use std::sync::mpsc::TryRecvError;
        let mut s = self.channel.lock();
        match s.events.pop_front() {
            Some(e) => Ok(e),
            None if s.ended => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// The events waiting now, without blocking.
    pub fn try_iter(&self) -> impl Iterator<Item = Event> + '_ {
        std::iter::from_fn(|| self.try_recv().ok())
    }

    /// The next event, or registers the task to be woken; `Ready(None)` once the channel ended.
    pub fn poll_recv(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Event>> {
        let mut s = self.channel.lock();
        if let Some(e) = s.events.pop_front() {
            return std::task::Poll::Ready(Some(e));
        }
        if s.ended {
            return std::task::Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        std::task::Poll::Pending
    }

    /// Events lost because the receiver lagged.
    pub fn dropped(&self) -> u64 {
        self.channel.lock().dropped
    }
}

impl Iterator for EventReceiver {
    type Item = Event;

    /// Blocks until the next event; `None` after the connection closed.
    fn next(&mut self) -> Option<Event> {
        self.recv().ok()
    }
}
