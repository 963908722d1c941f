//! The runtime-independent half of a NATS client, shared by `nats-blocking` and `nats-tokio`.
//!
//! Both clients have the same options, errors, events and messages because they are these types; they
//! differ only in how they do I/O and how a caller waits. Here are:
//! - [`ConnectOptions`], [`Error`], [`Event`], [`Message`], [`PendingLimits`];
//! - [`shared::Shared`]: the `nats_proto::Connection` behind one lock, with the routing of its events to
//!   subscription queues and waiting requests;
//! - [`queue`]: a bounded message queue and a one-shot slot that a thread can block on and a task can poll.
//!
//! Users normally reach these through a client crate. The queue works on its own:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use nats_client::queue::{Empty, MessageQueue};
//! use nats_client::PendingLimits;
//!
//! let queue = MessageQueue::new(PendingLimits { messages: 10, bytes: 1 << 20 });
//! assert_eq!(queue.pop(Some(Instant::now() + Duration::from_millis(5))).unwrap_err(), Empty::TimedOut);
//! queue.end(nats_proto::SubscriptionEnd::Unsubscribed);
//! assert!(matches!(queue.pop(None), Err(Empty::Ended(_))));
//! ```

#[cfg(feature = "nkeys")]
pub mod auth;
mod error;
mod event;
mod message;
mod options;
pub mod queue;
pub mod shared;
#[cfg(feature = "tls")]
pub mod tls;

pub use error::Error;
pub use event::{Event, EventChannel, EventReceiver, EVENT_CAPACITY};
pub use message::{Message, Publish};
pub use nats_proto::Credentials;
pub use options::{ConnectOptions, EventCallback, PendingLimits};
#[cfg(feature = "tls")]
pub use rustls;
