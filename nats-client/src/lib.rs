//! The runtime-independent half of a NATS client, shared by `nats-blocking` and `nats-tokio`.
//!
//! Both clients have the same options, errors, events and messages because they are these types; they
//! differ only in how they do I/O and how a caller waits. Here are:
//! - [`ConnectOptions`], [`Error`], [`Event`], [`Message`], [`PendingLimits`];
//! - [`shared::Shared`]: the `nats_proto::Connection` behind one lock, the commands, and the write policy a
//!   driver plugs in ([`shared::Driver`]);
//! - [`router`]: the sink that hands each run of decoded messages to its subscription's queue in one step;
//! - [`seam`]: the one interface the layers above (`micro`, JetStream) use, blocking and async, which each
//!   client implements;
//! - [`queue`]: a bounded message queue with its [`queue::Receiver`], and a one-shot slot, each of which a
//!   thread can block on and a task can poll;
//! - `tls` (feature `tls`) and `ws` (feature `websocket`): rustls's session and the WebSocket codec, sans-IO,
//!   which each driver puts between its socket and the core;
//! - `trace` (feature `trace-context`): W3C trace context, carried in the headers of what is sent while one is
//!   current.
//!
//! Features: `tls` (rustls), `nkeys` (nkey and JWT authentication), `websocket` (the `ws` codec),
//! `trace-context` (the `trace` module; off by default, and off it costs nothing).
//!
//! Users normally reach these through a client crate. The queue works on its own:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use std::sync::Arc;
//! use nats_client::queue::{Batch, Empty, MessageQueue, Receiver};
//! use nats_client::{Message, PendingLimits};
//!
//! let queue = Arc::new(MessageQueue::new(PendingLimits { messages: 2, bytes: 1 << 20 }));
//! let mut rx = Receiver::new(queue.clone());
//! assert_eq!(rx.next(Some(Instant::now() + Duration::from_millis(5))).unwrap_err(), Empty::TimedOut);
//!
//! // A driver gathers a run of messages and appends it in one step; past the limits they are dropped and
//! // counted.
//! let msg = |p: &str| Message::new(nats_proto::Msg::new("s", 1, None, None, p), None);
//! let mut batch = Batch::default();
//! ["a", "b", "c"].into_iter().for_each(|p| batch.push(msg(p)));
//! let pushed = queue.append(&mut batch);
//! assert!(batch.is_empty());
//! queue.wake();
//! assert_eq!((pushed.queued, pushed.dropped, pushed.episode), (2, 1, true));
//! queue.end(nats_proto::SubscriptionEnd::Unsubscribed);
//! assert_eq!(rx.next(None).unwrap().payload(), b"a");
//! assert_eq!(rx.next(None).unwrap().payload(), b"b");
//! assert!(matches!(rx.next(None), Err(Empty::Ended(_))));
//! ```

#[cfg(feature = "nkeys")]
pub mod auth;
pub mod clock;
mod dispatch;
mod error;
mod event;
pub mod inflight;
mod message;
mod options;
pub mod queue;
pub mod router;
pub mod seam;
pub mod shared;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "trace-context")]
pub mod trace;
#[cfg(feature = "websocket")]
pub mod ws;

use std::time::{Duration, Instant};

pub use clock::StdInstant;
pub use error::Error;
pub use event::{Event, EventChannel, EventReceiver, EVENT_CAPACITY};
pub use message::{batch_replies, send_held_replies, Message, Publish, CORRELATION_ID};
pub use nats_proto::Credentials;
pub use options::{ConnectOptions, EventCallback, PendingLimits, Settings};
#[cfg(feature = "tls")]
pub use rustls;

/// The instant `timeout` from now; `None` ("no deadline") when it is too far to represent.
pub fn deadline_in(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// The read-only accessors both clients have, written once: `is_closed`, `server_info`, `statistics`,
/// `max_payload`, `new_inbox`. Expands inside a client's `impl` block that has a `shared()` method returning
/// its [`shared::Shared`].
#[doc(hidden)]
#[macro_export]
macro_rules! connection_accessors {
    () => {
        /// True once closed.
        pub fn is_closed(&self) -> bool {
            self.shared().lock().is_closed()
        }

        /// The last INFO from the server.
        pub fn server_info(&self) -> Option<nats_proto::ServerInfo> {
            self.shared().lock().conn().server_info().cloned()
        }

        /// Counters: bytes and messages in and out, connects and reconnects.
        pub fn statistics(&self) -> nats_proto::Statistics {
            self.shared().lock().conn().statistics()
        }

        /// The largest message the server accepts.
        pub fn max_payload(&self) -> usize {
            self.shared().lock().conn().max_payload()
        }

        /// A new unique inbox subject.
        pub fn new_inbox(&self) -> String {
            self.shared().lock().conn_mut().new_inbox()
        }
    };
}
