//! W3C Trace Context propagation (feature `trace-context`): a publish, request or reply sent while a
//! [`TraceContext`] is current carries it in the `traceparent` and `tracestate` headers, and a receiver reads
//! it back with [`Message::trace_context`](crate::Message::trace_context) and continues the trace with a
//! [`child`](TraceContext::child).
//!
//! - [`TraceContext`]: a trace id, a span id, the `sampled` flag and the vendors' `tracestate`; read from
//!   headers ([`TraceContext::from_headers`], [`TraceContext::parse`]), written to them
//!   ([`TraceContext::write_headers`]), made ([`TraceContext::new_root`], [`TraceContext::child`]).
//! - The current context is per thread: [`TraceContext::in_scope`] (or [`with_context`]) sets it for a
//!   closure, [`TraceContext::scope`] for a future (around each poll, on whichever thread, on any runtime).
//!   [`TraceContext::current`] reads it.
//! - Both clients' publishes, requests and replies add `traceparent` (and `tracestate`, if any) when a
//!   context is current and the headers given have no `traceparent` of their own; a caller's is never
//!   overwritten. With no context current nothing is added, and checking costs one thread-local load.
//!
//! No OpenTelemetry here: the context is this small type, so it works on its own, and a program that has an
//! OpenTelemetry span can build one from its ids ([`TraceContext::new`]).
//!
//! ```
//! use nats_client::trace::TraceContext;
//! use nats_proto::Headers;
//!
//! let root = TraceContext::new_root();
//! let sent = root.in_scope(|| {
//!     // What a client does when it sends inside the scope:
//!     let mut headers = Headers::new();
//!     TraceContext::current().expect("current here").write_headers(&mut headers);
//!     headers
//! });
//! assert!(TraceContext::current().is_none(), "only inside the scope");
//!
//! // The receiver continues the same trace in a span of its own.
//! let received = TraceContext::from_headers(sent.to_block().view()).expect("a valid traceparent");
//! let next = received.child();
//! assert_eq!((next.trace_id(), received.span_id()), (root.trace_id(), root.span_id()));
//! assert_ne!(next.span_id(), root.span_id());
//! ```

mod context;
mod current;
mod format;
mod ids;

pub use context::TraceContext;
pub(crate) use current::{is_current, outgoing};
pub use current::{with_context, Scoped};
pub use format::{TraceContextError, MAX_TRACE_STATE_LEN, MAX_TRACE_STATE_MEMBERS};
pub use ids::{SpanId, TraceId};

/// The header carrying the trace and parent span ids and the flags.
pub const TRACEPARENT: &str = "traceparent";
/// The header carrying the vendors' trace state, a list of `key=value` members.
pub const TRACESTATE: &str = "tracestate";

#[cfg(test)]
mod tests;
