//! What a handler runs inside: the request's trace context continued (feature `trace-context`) and a
//! `tracing` span for the request (feature `tracing`). Without either feature it is nothing and costs nothing.
//!
//! The blocking service runs its handler inside [`HandlerScope::run`]; the async service calls its handler
//! there too (a handler may answer before it returns its future), then polls the future [`HandlerScope::wrap`]
//! gives, which sets the context again around each poll and its drop. A request without a `traceparent` (or
//! with a malformed one) runs with no context current: nothing is made up for it.

use crate::request::Request;

/// The scope of one request's handler.
pub(crate) struct HandlerScope {
    /// A child of the request's context, or none.
    #[cfg(feature = "trace-context")]
    ctx: Option<nats_client::trace::TraceContext>,
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl HandlerScope {
    /// The scope `req`'s handler runs in.
    #[cfg_attr(not(feature = "trace-context"), allow(unused_variables))]
    pub(crate) fn of(req: &Request) -> Self {
        Self {
            #[cfg(feature = "trace-context")]
            ctx: req.trace_context().cloned(),
            #[cfg(feature = "tracing")]
            span: request_span(req),
        }
    }

    /// Runs `f` inside the scope.
    #[inline]
    pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        let f = || self.span.in_scope(f);
        #[cfg(feature = "trace-context")]
        if let Some(ctx) = &self.ctx {
            return ctx.in_scope(f);
        }
        f()
    }

    /// `future` inside the scope at each poll and when dropped (`future` itself when there is nothing to set).
    #[cfg(feature = "async")]
    #[inline]
    pub(crate) fn wrap(
        self,
        future: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        #[cfg(feature = "tracing")]
        let future = Box::pin(tracing::Instrument::instrument(future, self.span));
        #[cfg(feature = "trace-context")]
        if let Some(ctx) = self.ctx {
            return Box::pin(ctx.scope(future));
        }
        future
    }
}

/// Runs `f` with no trace context current (feature `trace-context`; without it, just runs `f`).
#[cfg(feature = "async")]
#[inline]
pub(crate) fn without_context<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "trace-context")]
    return nats_client::trace::with_context(None, f);
    #[cfg(not(feature = "trace-context"))]
    f()
}

/// The `micro.request` span of a request: its subject, and the ids of the span it runs in when it is traced.
#[cfg(feature = "tracing")]
fn request_span(req: &Request) -> tracing::Span {
    use tracing::field::{display, Empty};
    let span = tracing::info_span!("micro.request", subject = %req.subject(), trace_id = Empty, span_id = Empty);
    if let Some(ctx) = req.trace_context() {
        span.record("trace_id", display(ctx.trace_id()));
        span.record("span_id", display(ctx.span_id()));
    }
    span
}
