//! The NATS Service API (ADR-32).
//!
//! [`ServiceCore`] is the Service API without I/O: configuration rules, the subscriptions a service needs,
//! the PING/INFO/STATS replies (schema-exact: `{}` for empty metadata, `""` for an unset description and
//! before the first error, integer nanoseconds, registration order with duplicates kept), and statistics
//! counted on receipt and timed until the reply is published. The clock and instance id are injected.
//!
//! ```
//! use std::sync::Arc;
//! use micro::{EndpointConfig, Outcome, QueueGroup, ServiceConfig, ServiceCore, SystemClock, Target, Verb};
//!
//! let config = ServiceConfig::new("calc", "1.0.0").description("arithmetic");
//! let mut core = ServiceCore::new(config, "ID1".into(), Arc::new(SystemClock))?;
//! assert_eq!(core.verb_subscriptions().len(), 9); // PING/INFO/STATS x 3 forms, never queued
//!
//! let math = core.root().group("math", QueueGroup::Inherit)?;
//! let add = core.add_endpoint(&math, EndpointConfig::new("add"))?;
//! assert_eq!((add.subject.as_str(), add.queue.as_deref()), ("math.add", Some("q")));
//!
//! let Target::Endpoint(id) = add.target else { unreachable!() };
//! let ticket = core.begin(id).expect("no in-flight limit");
//! core.finish(ticket, Outcome::Error { code: 400, description: "bad input".into() });
//! let stats = core.stats();
//! assert_eq!((stats.endpoints[0].num_requests, stats.endpoints[0].last_error.as_str()), (1, "400:bad input"));
//!
//! let info = String::from_utf8(core.verb_reply(Verb::Info).to_vec()).unwrap();
//! assert!(info.starts_with(r#"{"type":"io.nats.micro.v1.info_response","name":"calc","id":"ID1""#));
//! # Ok::<(), micro::ConfigError>(())
//! ```
//!
//! Features: `blocking` (default: `Service` on nats-blocking), `async` (`AsyncService` on nats-tokio, any
//! runtime), `host` (hosting blocking services until a signal), `compatibility_tests`, `trace-context` (handlers
//! continue the W3C trace of their request: `Request::trace_context`) and `tracing` (a `micro.request`
//! span per handled request, with its trace and span ids).
// Without a runtime (only the sans-IO core, as the simulator uses it) the code the runtimes share is unused.
#![cfg_attr(not(any(feature = "blocking", feature = "async")), allow(dead_code, unused_imports))]

#[cfg(feature = "async")]
mod async_service;
#[cfg(feature = "compatibility_tests")]
pub mod compat;
mod config;
mod core;
pub mod discovery;
mod handler_scope;
#[cfg(all(feature = "host", unix))]
pub mod host;
mod meter;
mod request;
#[cfg(feature = "blocking")]
mod service;
mod validate;
#[cfg(feature = "async")]
mod wake;
pub mod wire;

#[cfg(feature = "async")]
pub use crate::async_service::AsyncService;
pub use crate::request::{Request, Response, ServiceError, ERROR_CODE_HEADER, ERROR_HEADER};
#[cfg(feature = "blocking")]
pub use crate::service::Service;
/// W3C trace context (feature `trace-context`): the type of [`Request::trace_context`], and how to make a
/// context current for what a handler hands on. See [`nats_client::trace`].
#[cfg(feature = "trace-context")]
pub use nats_client::trace;
/// The client's message and error types, shared by both clients.
pub use nats_client::{Error as ClientError, Message};

pub use crate::config::{
    EndpointConfig, Group, Metadata, QueueGroup, ServiceConfig, DEFAULT_API_PREFIX, DEFAULT_QUEUE_GROUP,
};
pub use crate::core::{
    new_id, Busy, Clock, EndpointId, Outcome, ServiceCore, StatsHandler, Subscription, SystemClock, Target, Ticket,
    Verb, BUSY_CODE, BUSY_DESCRIPTION,
};
pub use crate::validate::{is_valid_name, is_valid_semver, ConfigError};

/// An endpoint of a running service, for `remove_endpoint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointHandle {
    id: EndpointId,
}

impl EndpointHandle {
    pub(crate) fn new(id: EndpointId) -> Self {
        Self { id }
    }

    /// The endpoint's id in the service core.
    pub fn id(&self) -> EndpointId {
        self.id
    }
}

/// Why a service could not do what was asked.
#[non_exhaustive]
#[derive(Debug)]
pub enum ServiceFailure {
    /// The configuration breaks a rule of the Service API.
    Config(ConfigError),
    /// The client failed (closed, invalid subject, ...).
    Client(nats_client::Error),
    /// The service is stopped.
    Stopped,
    /// A wait did not finish in time.
    Timeout,
}

impl std::fmt::Display for ServiceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(e) => e.fmt(f),
            Self::Client(e) => e.fmt(f),
            Self::Stopped => f.write_str("the service is stopped"),
            Self::Timeout => f.write_str("timed out"),
        }
    }
}

impl std::error::Error for ServiceFailure {}

impl From<ConfigError> for ServiceFailure {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl From<nats_client::Error> for ServiceFailure {
    fn from(e: nats_client::Error) -> Self {
        Self::Client(e)
    }
}

/// How a service stopped.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Drained and every request in flight answered.
    Stopped,
    /// The stop timeout passed with requests still in flight.
    Timeout,
    /// The connection was closed, so nothing could be drained.
    ConnectionClosed,
}
