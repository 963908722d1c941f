//! A request to an endpoint, shared by the blocking and async services: answer it once (or more), and its
//! statistics follow.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nats_client::{Error, Message, CORRELATION_ID};
use nats_proto::{HeaderView, Headers, Payload, SubjectRef};
use serde::{de::DeserializeOwned, Serialize};

use crate::core::{Outcome, ServiceCore, Ticket, Verb};
use crate::meter::{InFlight, Meter};

/// Header naming a service error's description.
pub const ERROR_HEADER: &str = "Nats-Service-Error";
/// Header naming a service error's numeric code.
pub const ERROR_CODE_HEADER: &str = "Nats-Service-Error-Code";

/// An error a handler answers with: `code` and `description` go into the error headers and `last_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// Numeric code (HTTP-like: 400 bad request, 500 internal error ...).
    pub code: u16,
    /// Description.
    pub description: String,
}

impl ServiceError {
    /// An error with this code and description.
    pub fn new(code: u16, description: impl Into<String>) -> Self {
        Self { code, description: description.into() }
    }

    /// The service error a reply carries, if it carries one (a code that does not parse reads as 500).
    pub fn from_headers(headers: HeaderView<'_>) -> Option<Self> {
        let description = headers.get(ERROR_HEADER)?;
        let code = headers.get(ERROR_CODE_HEADER).and_then(|c| c.trim().parse().ok()).unwrap_or(500);
        Some(Self::new(code, description))
    }
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.code, self.description)
    }
}

impl std::error::Error for ServiceError {}

thread_local! {
    /// Set by the async service while it drops the future of a handler that panicked: the request inside is
    /// answered with a 500, as a blocking handler's is while unwinding.
    pub(crate) static DROPPED_BY_PANIC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What the service's parts share: the core (configuration, INFO, STATS), and the requests in flight.
///
/// The per-request path takes none of its locks: an endpoint's requests are counted on the endpoint's
/// [`Meter`], held by its [`Serving`], and PING is answered from a copy of its fixed reply.
pub(crate) struct ServiceState {
    core: Mutex<ServiceCore>,
    ping: Bytes,
    in_flight: Arc<InFlight>,
}

impl ServiceState {
    pub(crate) fn new(mut core: ServiceCore) -> Arc<Self> {
        let ping = core.verb_reply(Verb::Ping);
        let in_flight = core.service_in_flight();
        Arc::new(Self { core: Mutex::new(core), ping, in_flight })
    }

    pub(crate) fn core(&self) -> MutexGuard<'_, ServiceCore> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers a discovery verb; one without a reply subject is ignored (payload and headers never matter).
    pub(crate) fn answer_verb(&self, verb: Verb, msg: &Message) {
        if msg.reply().is_some() {
            let body = match verb {
                Verb::Ping => self.ping.clone(),
                _ => self.core().verb_reply(verb),
            };
            let _ = msg.respond(body);
        }
    }

    /// Waits until no request is in flight (`deadline` `None`: for ever); true if none is.
    #[cfg_attr(not(feature = "blocking"), allow(dead_code))]
    pub(crate) fn wait_idle(&self, deadline: Option<Instant>) -> bool {
        self.in_flight.wait_idle(deadline)
    }
}

/// The subscription's drop count is read (a lock on its queue) on a message at least this long after the last
/// reading, or after [`DROP_CHECK_MESSAGES`] messages, rather than on every message.
const DROP_CHECK_INTERVAL: Duration = Duration::from_millis(1);
/// See [`DROP_CHECK_INTERVAL`]; also bounds the delay when the clock is frozen (an injected one).
const DROP_CHECK_MESSAGES: u32 = 64;

/// An endpoint as the runtime serving it holds it: its meter, and what it has seen of its subscription's drops.
pub(crate) struct Serving {
    meter: Arc<Meter>,
    dropped: u64,
    checked: Option<Instant>,
    unchecked: u32,
}

impl Serving {
    /// Serving the endpoint that `meter` counts.
    pub(crate) fn new(meter: Arc<Meter>) -> Self {
        Self { meter, dropped: 0, checked: None, unchecked: 0 }
    }

    /// A message arrived on the endpoint's subscription: counts it and starts the request, or answers it with a
    /// 503 at the in-flight limit (`None`). `dropped` reads the subscription's drop count; drops are counted
    /// as an error at the next reading, a message more than a moment after the last one. A drop seen late
    /// changes nothing but when it shows in STATS; a drop with no message after it never did show.
    pub(crate) fn receive(&mut self, msg: Message, dropped: impl FnOnce() -> u64) -> Option<Request> {
        let now = self.meter.now();
        self.unchecked += 1;
        let due = self.unchecked >= DROP_CHECK_MESSAGES
            || self.checked.is_none_or(|t| now.saturating_duration_since(t) >= DROP_CHECK_INTERVAL);
        if due {
            let total = dropped();
            let lost = total.saturating_sub(self.dropped);
            (self.dropped, self.checked, self.unchecked) = (total, Some(now), 0);
            if lost > 0 {
                self.meter.record_error(503, &format!("slow consumer: {lost} requests dropped"));
            }
        }
        match self.meter.begin(now) {
            Ok(ticket) => Some(Request {
                // The request's trace goes on in a span of the handler's own.
                #[cfg(feature = "trace-context")]
                trace: msg.trace_context().map(|incoming| incoming.child()),
                msg,
                ticket: Some(ticket),
                meter: self.meter.clone(),
            }),
            Err(_) => {
                if !self.meter.no_reply() {
                    let _ = respond_error(&msg, crate::BUSY_CODE, crate::BUSY_DESCRIPTION, None);
                }
                None
            }
        }
    }
}

fn respond_error(msg: &Message, code: u16, description: &str, headers: Option<&Headers>) -> Result<(), Error> {
    let mut h = echo(msg, headers).unwrap_or_else(|| headers.cloned().unwrap_or_default());
    // Our two headers win over any the handler set; its others stay.
    let _ = h.insert(ERROR_HEADER, &description.replace(['\r', '\n'], " "));
    let _ = h.insert(ERROR_CODE_HEADER, &code.to_string());
    msg.respond_with_headers(Some(&h), Bytes::new())
}

/// The headers of an answer to `msg` when they must change: `headers` plus the request's correlation id,
/// echoed when the request has one and the answer sets none (as FastStream does). `None`: send as they are.
fn echo(msg: &Message, headers: Option<&Headers>) -> Option<Headers> {
    let id = msg.correlation_id()?;
    if headers.is_some_and(|h| h.get(CORRELATION_ID).is_some()) {
        return None;
    }
    let mut h = headers.cloned().unwrap_or_default();
    h.insert(CORRELATION_ID, id).ok()?;
    Some(h)
}

/// A request to an endpoint. Answer it with [`respond`](Self::respond) or
/// [`respond_error`](Self::respond_error); the first answer stops its clock. An answer carries the request's
/// [`correlation_id`](Self::correlation_id) back unless it sets its own. Dropped unanswered, it is counted as a
/// request without an error (ADR-32: not answering is the handler's choice); dropped by a panicking handler, it
/// is answered with a 500. On an endpoint configured with [`EndpointConfig::no_reply`](crate::EndpointConfig),
/// answers are counted and not sent.
pub struct Request {
    msg: Message,
    ticket: Option<Ticket>,
    /// The endpoint's statistics, counted here without the core's lock.
    meter: Arc<Meter>,
    /// The context the handler runs in: a child of the request's, if it carried a valid one.
    #[cfg(feature = "trace-context")]
    trace: Option<nats_client::trace::TraceContext>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("subject", &self.msg.subject()).finish()
    }
}

impl Request {
    /// The subject it was sent to.
    pub fn subject(&self) -> SubjectRef<'_> {
        self.msg.subject()
    }

    /// Its headers.
    pub fn headers(&self) -> Option<HeaderView<'_>> {
        self.msg.headers()
    }

    /// Its payload.
    pub fn payload(&self) -> &[u8] {
        self.msg.payload()
    }

    /// Its payload as `Bytes` (a reference count, no copy): to send it on, or keep it.
    pub fn payload_bytes(&self) -> Bytes {
        self.msg.payload_bytes()
    }

    /// The whole message.
    pub fn message(&self) -> &Message {
        &self.msg
    }

    /// Decodes the payload as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(self.msg.payload())
    }

    /// The request's RPC correlation id (the `correlation_id` header), if it has one.
    pub fn correlation_id(&self) -> Option<&str> {
        self.msg.correlation_id()
    }

    /// The W3C trace context the handler runs in (feature `trace-context`): a new span in the request's trace,
    /// whose parent is the request's `traceparent`; `None` when the request carried no valid one. It is current
    /// while the handler runs (and, for an async handler, while its future is polled), so what the handler
    /// sends and its answer carry it; pass it on (`in_scope`, `scope`) to work the handler hands elsewhere.
    #[cfg(feature = "trace-context")]
    pub fn trace_context(&self) -> Option<&nats_client::trace::TraceContext> {
        self.trace.as_ref()
    }

    /// Decodes a typed endpoint's input: JSON, or, for a type that reads a string, the payload's text as it
    /// is (so `foobar` reaches a `String` handler without quotes).
    fn input<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        use serde::de::IntoDeserializer;
        let e = match self.json::<T>() {
            Ok(input) => return Ok(input),
            Err(e) => e,
        };
        let Ok(text) = std::str::from_utf8(self.msg.payload()) else { return Err(e) };
        let text: serde::de::value::StrDeserializer<'_, serde_json::Error> = text.into_deserializer();
        // Not a string type either: the JSON error says more.
        T::deserialize(text).map_err(|_| e)
    }

    fn finish(&mut self, outcome: Outcome) {
        if let Some(ticket) = self.ticket.take() {
            self.meter.finish(ticket, outcome);
        }
    }

    /// Records `outcome`, then publishes: the statistics must already say so when the requester, having its
    /// reply, asks for STATS. A failed publish is counted afterwards.
    fn answer(&mut self, outcome: Outcome, publish: impl FnOnce(&Message) -> Result<(), Error>) -> Result<(), Error> {
        let first = self.ticket.is_some();
        let replied = outcome == Outcome::Replied;
        self.finish(outcome);
        if self.meter.no_reply() {
            return Ok(());
        }
        let result = publish(&self.msg);
        if let (Err(e), true, true) = (&result, first, replied) {
            self.meter.record_error(500, &format!("reply not sent: {e}"));
        }
        result
    }

    /// Answers with `payload`. From a handler running in a run of waiting requests, the answer leaves with
    /// the run's other answers (see `Service::endpoint`).
    pub fn respond<'p>(&mut self, payload: impl Into<Payload<'p>>) -> Result<(), Error> {
        let payload = payload.into();
        self.answer(Outcome::Replied, |msg| match echo(msg, None) {
            Some(headers) => msg.respond_with_headers(Some(&headers), payload),
            None => msg.respond(payload),
        })
    }

    /// Answers with headers and `payload`.
    pub fn respond_with_headers<'p>(
        &mut self,
        headers: &Headers,
        payload: impl Into<Payload<'p>>,
    ) -> Result<(), Error> {
        let payload = payload.into();
        self.answer(Outcome::Replied, |msg| {
            let echoed = echo(msg, Some(headers));
            msg.respond_with_headers(Some(echoed.as_ref().unwrap_or(headers)), payload)
        })
    }

    /// Answers with a value as JSON.
    pub fn respond_json<T: Serialize>(&mut self, value: &T) -> Result<(), Error> {
        match serde_json::to_vec(value) {
            Ok(json) => self.respond(json),
            Err(e) => self.respond_error(500, &format!("response not serializable: {e}")),
        }
    }

    /// Answers with an error: the `Nats-Service-Error` and `Nats-Service-Error-Code` headers, no payload.
    pub fn respond_error(&mut self, code: u16, description: &str) -> Result<(), Error> {
        let outcome = Outcome::Error { code, description: description.to_owned() };
        self.answer(outcome, |msg| respond_error(msg, code, description, None))
    }

    /// Answers with an error, keeping `headers` (the two error headers are set over them).
    pub fn respond_error_with_headers(&mut self, code: u16, description: &str, headers: &Headers) -> Result<(), Error> {
        let outcome = Outcome::Error { code, description: description.to_owned() };
        self.answer(outcome, |msg| respond_error(msg, code, description, Some(headers)))
    }

    /// Answers from a typed result: `Ok` as JSON, `Err` as a service error.
    pub fn respond_result<T: Serialize>(&mut self, result: Result<T, ServiceError>) -> Result<(), Error> {
        match result {
            Ok(value) => self.respond_json(&value),
            Err(e) => self.respond_error(e.code, &e.description),
        }
    }

    /// Answers a request whose handler panicked with a 500, and counts it.
    fn fail_panicked(&mut self) {
        if self.ticket.is_some() {
            let _ = self.respond_error(500, "handler panicked");
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if self.ticket.is_none() {
            return;
        }
        if std::thread::panicking() || DROPPED_BY_PANIC.with(std::cell::Cell::get) {
            self.fail_panicked();
        } else {
            self.finish(Outcome::NoResponse);
        }
    }
}

/// A typed answer's body: JSON, except a `String`, a `&'static str` or `Bytes`, sent as they are (no quotes).
fn encode_answer<T: Serialize + 'static>(value: &T) -> Result<Bytes, serde_json::Error> {
    let any = value as &dyn std::any::Any;
    if let Some(text) = any.downcast_ref::<String>() {
        return Ok(Bytes::copy_from_slice(text.as_bytes()));
    }
    if let Some(text) = any.downcast_ref::<&'static str>() {
        return Ok(Bytes::from_static(text.as_bytes()));
    }
    if let Some(raw) = any.downcast_ref::<Bytes>() {
        return Ok(raw.clone());
    }
    serde_json::to_vec(value).map(Bytes::from)
}

/// Wraps a typed function as a handler body: the payload is decoded as `T` (JSON, or the text itself for a
/// string; a decode failure answers 400), the result is encoded as JSON (a string or `Bytes` as they are), a
/// `ServiceError` answers with its code.
pub(crate) fn typed_answer<T, R>(req: &mut Request, f: &impl Fn(T) -> Result<R, ServiceError>)
where
    T: DeserializeOwned,
    R: Serialize + 'static,
{
    typed_answer_with_headers(req, &|input| f(input).map(Response::new));
}

/// A typed handler's answer that carries headers too (the FastStream RPC `Response` idea): a correlation id
/// among them, or the request's, echoed. The body is sent as JSON, a `String` or `Bytes` as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct Response<T> {
    /// Headers sent with the reply.
    pub headers: Headers,
    /// The body, sent as JSON (a `String`, `&'static str` or `Bytes` as they are).
    pub body: T,
}

impl<T> Response<T> {
    /// A response with no headers yet.
    pub fn new(body: T) -> Self {
        Self { headers: Headers::new(), body }
    }

    /// Adds a header (a name or value the protocol cannot carry is a typed error).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, nats_proto::HeaderError> {
        self.headers.append(name, value)?;
        Ok(self)
    }

    /// Sets the correlation id the requester reads back (`Message::correlation_id`), in place of the
    /// request's own.
    pub fn correlation_id(mut self, id: &str) -> Result<Self, nats_proto::HeaderError> {
        self.headers.insert(CORRELATION_ID, id)?;
        Ok(self)
    }
}

/// Like [`typed_answer`], for functions that answer with headers (none: the reply has no header block).
pub(crate) fn typed_answer_with_headers<T, R>(req: &mut Request, f: &impl Fn(T) -> Result<Response<R>, ServiceError>)
where
    T: DeserializeOwned,
    R: Serialize + 'static,
{
    let answer = match req.input::<T>() {
        Ok(input) => f(input),
        Err(e) => Err(ServiceError::new(400, format!("invalid request: {e}"))),
    };
    let _ = match answer {
        Ok(response) => match encode_answer(&response.body) {
            Ok(body) if response.headers.is_empty() => req.respond(body),
            Ok(body) => req.respond_with_headers(&response.headers, body),
            Err(e) => req.respond_error(500, &format!("response not serializable: {e}")),
        },
        Err(e) => req.respond_error(e.code, &e.description),
    };
}
