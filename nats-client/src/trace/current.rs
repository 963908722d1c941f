//! The current trace context: one per thread, set for the length of a closure ([`with_context`],
//! [`TraceContext::in_scope`]) or of each poll of a future ([`Scoped`]), and read by the clients when they send.
//!
//! A thread-local serves both kinds of code. Blocking code runs on its thread from start to end. A future can
//! move between threads from one poll to the next, so [`Scoped`] sets its context around each poll and takes
//! it back after: whatever the future sends during a poll is sent from that thread, inside that poll. Nothing
//! here knows a runtime.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use nats_proto::Headers;

use super::context::TraceContext;
use super::{TRACEPARENT, TRACESTATE};

thread_local! {
    /// Whether a context is current on this thread: what the send path reads. A `Cell<bool>` needs no
    /// destructor, so reading it is one load, with no lazy registration to check.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// The context current on this thread, if any.
    static CURRENT: RefCell<Option<TraceContext>> = const { RefCell::new(None) };
}

/// Makes `ctx` current; returns the context it replaces.
fn replace_current(ctx: Option<TraceContext>) -> Option<TraceContext> {
    let active = ctx.is_some();
    match CURRENT.try_with(|c| c.replace(ctx)) {
        Ok(previous) => {
            ACTIVE.with(|a| a.set(active));
            previous
        }
        // The thread is being torn down and the slot is gone: nothing is current any more.
        Err(_) => {
            ACTIVE.with(|a| a.set(false));
            None
        }
    }
}

impl TraceContext {
    /// The context current on this thread (inside [`in_scope`](Self::in_scope), [`with_context`], or a poll of
    /// a [`Scoped`] future), if any.
    pub fn current() -> Option<TraceContext> {
        if !ACTIVE.with(Cell::get) {
            return None;
        }
        CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
    }

    /// Runs `f` with this context current on this thread: what it publishes, requests or answers carries it.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        with_context(Some(self.clone()), f)
    }

    /// `future`, with this context current while it is polled (on whichever thread polls it), and while it is
    /// dropped.
    pub fn scope<F: Future>(self, future: F) -> Scoped<F> {
        Scoped::new(Some(self), future)
    }
}

/// Runs `f` with `ctx` current on this thread (`None`: with no context current), then puts back what was
/// current before, also when `f` unwinds.
pub fn with_context<R>(ctx: Option<TraceContext>, f: impl FnOnce() -> R) -> R {
    /// Puts the previous context back when `f` returns or unwinds.
    struct Restore(Option<TraceContext>);
    impl Drop for Restore {
        fn drop(&mut self) {
            replace_current(self.0.take());
        }
    }
    let _restore = Restore(replace_current(ctx));
    f()
}

pin_project_lite::pin_project! {
    /// A future with a trace context of its own, current on the polling thread during each of its polls and
    /// while it is dropped: see [`TraceContext::scope`]. With `None` it runs with no context current, whatever
    /// its poller's is.
    #[must_use = "futures do nothing unless polled"]
    pub struct Scoped<F> {
        ctx: Option<TraceContext>,
        // `None` only while it is dropped.
        #[pin]
        future: Option<F>,
    }

    impl<F> PinnedDrop for Scoped<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let mut future = this.future;
            // Dropped inside its context: what its drop sends (a request's last answer) carries it too.
            with_context(this.ctx.take(), || future.set(None));
        }
    }
}

impl<F> Scoped<F> {
    /// `future` with `ctx` current during each of its polls (`None`: no context current).
    pub fn new(ctx: Option<TraceContext>, future: F) -> Self {
        Self { ctx, future: Some(future) }
    }

    /// The context it runs in.
    pub fn context(&self) -> Option<&TraceContext> {
        self.ctx.as_ref()
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scoped").field("ctx", &self.ctx).field("future", &self.future).finish()
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        /// Takes the context back from the thread after the poll (also when it unwinds), and puts back the
        /// thread's own: lent, not cloned.
        struct Lent<'a> {
            slot: &'a mut Option<TraceContext>,
            previous: Option<TraceContext>,
        }
        impl Drop for Lent<'_> {
            fn drop(&mut self) {
                *self.slot = replace_current(self.previous.take());
            }
        }
        let previous = replace_current(this.ctx.take());
        let _lent = Lent { slot: this.ctx, previous };
        match this.future.as_pin_mut() {
            Some(future) => future.poll(cx),
            // Only a drop in progress empties it, and nothing polls a future being dropped.
            None => Poll::Pending,
        }
    }
}

/// Whether a context is current on this thread: one thread-local load. What the send path checks first.
#[inline(always)]
pub(crate) fn is_current() -> bool {
    ACTIVE.with(Cell::get)
}

/// The headers to send in place of `headers` when a context is current on this thread and they carry no
/// `traceparent` of their own: theirs plus the context's. `None`: send them as they are.
pub(crate) fn outgoing(headers: Option<&Headers>) -> Option<Headers> {
    if headers.is_some_and(|h| h.get_ignore_case(TRACEPARENT).is_some()) {
        // The caller's own: never overwritten (nor is its tracestate, if any, joined by ours).
        return None;
    }
    CURRENT
        .try_with(|c| {
            let current = c.borrow();
            let ctx = current.as_ref()?;
            let mut out = headers.cloned().unwrap_or_default();
            if out.get_ignore_case(TRACESTATE).is_some() {
                // A tracestate the caller set stays as it is.
                ctx.write_traceparent(&mut out);
            } else {
                ctx.write_headers(&mut out);
            }
            Some(out)
        })
        .ok()
        .flatten()
}
