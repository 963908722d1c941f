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

mod config;
mod core;
mod validate;
pub mod wire;

pub use crate::config::{
    EndpointConfig, Group, Metadata, QueueGroup, ServiceConfig, DEFAULT_API_PREFIX, DEFAULT_QUEUE_GROUP,
};
pub use crate::core::{
    new_id, Busy, Clock, EndpointId, Outcome, ServiceCore, StatsHandler, Subscription, SystemClock, Target, Ticket,
    Verb, BUSY_CODE, BUSY_DESCRIPTION,
};
pub use crate::validate::{is_valid_name, is_valid_semver, ConfigError};
