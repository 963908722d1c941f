//! [`TraceContext`]: one span's W3C trace context, read from and written to message headers.

use std::fmt;
use std::sync::Arc;

use nats_proto::{HeaderView, Headers};

use super::format::{bound_trace_state, encode_traceparent, parse_traceparent, TraceContextError, TRACEPARENT_LEN};
use super::ids::{SpanId, TraceId};
use super::{TRACEPARENT, TRACESTATE};

/// The W3C trace context of one span: the trace it belongs to, its own id, whether it is sampled, and the
/// vendors' `tracestate`, carried as it came.
///
/// Sent as the `traceparent` header (`00-<trace id>-<span id>-<flags>`) and, when there is one, `tracestate`.
/// A receiver continues the trace with a [`child`](Self::child): the same trace id, a span id of its own.
///
/// ```
/// use nats_client::trace::TraceContext;
///
/// let incoming = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Some("congo=t61rcWkgMzE"))?;
/// let mine = incoming.child();
/// assert_eq!(mine.trace_id(), incoming.trace_id());
/// assert_ne!(mine.span_id(), incoming.span_id());
/// assert_eq!(mine.trace_state(), Some("congo=t61rcWkgMzE"));
/// assert!(mine.to_string().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
/// # Ok::<(), nats_client::trace::TraceContextError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: TraceId,
    span_id: SpanId,
    sampled: bool,
    /// Shared by a context and its children: a child costs no copy of it.
    state: Option<Arc<str>>,
}

impl TraceContext {
    /// A context of these ids, with no `tracestate`.
    pub fn new(trace_id: TraceId, span_id: SpanId, sampled: bool) -> Self {
        Self { trace_id, span_id, sampled, state: None }
    }

    /// The first span of a new trace: random trace and span ids, sampled.
    pub fn new_root() -> Self {
        Self::new(TraceId::random(), SpanId::random(), true)
    }

    /// A new span in the same trace, whose parent is this one: the same trace id, flags and `tracestate`, a
    /// new random span id.
    pub fn child(&self) -> Self {
        let mut span_id = SpanId::random();
        while span_id == self.span_id {
            span_id = SpanId::random();
        }
        Self { span_id, ..self.clone() }
    }

    /// Reads a `traceparent` value (and a `tracestate`, if given). A `tracestate` that cannot be carried (a
    /// character outside printable ASCII) is an error; a long one is cut down to 512 bytes and 32 members.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Result<Self, TraceContextError> {
        let (trace_id, span_id, sampled) = parse_traceparent(traceparent)?;
        let state = match tracestate {
            Some(s) => bound_trace_state(s)?,
            None => None,
        };
        Ok(Self { trace_id, span_id, sampled, state })
    }

    /// The context a message's headers carry, if they carry a valid one: a `traceparent` (the name's case
    /// ignored, as in HTTP) and any `tracestate` values, joined. Anything malformed (including two
    /// `traceparent`s) reads as no context; a malformed `tracestate` alone is dropped, the context kept.
    pub fn from_headers(headers: HeaderView<'_>) -> Option<Self> {
        let mut parents = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(TRACEPARENT.as_bytes()));
        let (_, parent) = parents.next()?;
        if parents.next().is_some() {
            return None;
        }
        let (trace_id, span_id, sampled) = parse_traceparent(std::str::from_utf8(parent).ok()?).ok()?;
        let state = joined_trace_state(headers).and_then(|s| bound_trace_state(&s).ok().flatten());
        Some(Self { trace_id, span_id, sampled, state })
    }

    /// Sets `traceparent` (and `tracestate`, if this context has one) in `headers`, replacing theirs.
    pub fn write_headers(&self, headers: &mut Headers) {
        self.write_traceparent(headers);
        if let Some(state) = &self.state {
            // Cannot fail: a valid name, and a value of printable ASCII (checked when it was read).
            let _ = headers.insert(TRACESTATE, state);
        }
    }

    /// Sets `traceparent` alone in `headers`.
    pub(crate) fn write_traceparent(&self, headers: &mut Headers) {
        let mut parent = [0; TRACEPARENT_LEN];
        encode_traceparent(self.trace_id, self.span_id, self.sampled, &mut parent);
        // Cannot fail: a valid name, and a value of hex digits and dashes.
        let _ = headers.insert(TRACEPARENT, std::str::from_utf8(&parent).unwrap_or_default());
    }

    /// The trace's id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// This span's id (the `parent-id` of what it sends).
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// Whether the trace is sampled (the `sampled` flag).
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// The same context, sampled or not.
    pub fn with_sampled(self, sampled: bool) -> Self {
        Self { sampled, ..self }
    }

    /// The vendors' `tracestate`, as carried.
    pub fn trace_state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// The same context with this `tracestate` (bounded as [`parse`](Self::parse) bounds it); an empty one
    /// removes it.
    pub fn with_trace_state(self, state: &str) -> Result<Self, TraceContextError> {
        Ok(Self { state: bound_trace_state(state)?, ..self })
    }
}

/// Every `tracestate` value in `headers`, joined as one list (W3C: several headers are one list); `None`
/// when there is none, or one is not UTF-8.
fn joined_trace_state(headers: HeaderView<'_>) -> Option<String> {
    let mut values = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(TRACESTATE.as_bytes()));
    let mut state = std::str::from_utf8(values.next()?.1).ok()?.to_owned();
    for (_, value) in values {
        state.push(',');
        state.push_str(std::str::from_utf8(value).ok()?);
    }
    Some(state)
}

/// The `traceparent` value (version `00`).
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parent = [0; TRACEPARENT_LEN];
        encode_traceparent(self.trace_id, self.span_id, self.sampled, &mut parent);
        f.write_str(std::str::from_utf8(&parent).unwrap_or_default())
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("traceparent", &format_args!("{self}"))
            .field("tracestate", &self.state)
            .finish()
    }
}
