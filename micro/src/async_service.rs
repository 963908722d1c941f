//! A service on an async client, on any runtime: [`AsyncService::run`] is one future that answers the
//! discovery verbs and drives every handler; spawn it wherever you like (tokio, smol, ...).

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use crate::config::{EndpointConfig, Group, ServiceConfig};
use crate::core::{new_id, ServiceCore, Subscription as Needed, SystemClock, Target};
use crate::request::{
    typed_answer, typed_answer_with_headers, Request, Response, ServiceError, ServiceState, DROPPED_BY_PANIC,
};
use crate::transport::{AsyncSubscription, AsyncTransport};
use crate::wire::{EndpointInfo, InfoResponse, StatsResponse};
use crate::{EndpointHandle, ServiceFailure, StopReason};

type HandlerFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Messages `run` takes in one poll before it yields.
const MESSAGES_PER_POLL: usize = 64;

/// Adds `waker` to `wakers` unless one that wakes the same task is there already.
fn register(wakers: &mut Vec<Waker>, waker: &Waker) {
    if !wakers.iter().any(|w| w.will_wake(waker)) {
        wakers.push(waker.clone());
    }
}
type AsyncHandler = Arc<dyn Fn(Request) -> HandlerFuture + Send + Sync>;

struct Sub<S> {
    target: Target,
    sub: S,
    handler: Option<AsyncHandler>,
    dropped: u64,
}

struct Runner<S> {
    subs: Vec<Sub<S>>,
    handlers: Vec<HandlerFuture>,
    waker: Option<Waker>,
    stopping: bool,
    stopped: Option<StopReason>,
    stop_wakers: Vec<Waker>,
}

struct Inner<T: AsyncTransport> {
    transport: T,
    state: Arc<ServiceState>,
    runner: Mutex<Runner<T::Subscription>>,
}

impl<T: AsyncTransport> Inner<T> {
    fn runner(&self) -> MutexGuard<'_, Runner<T::Subscription>> {
        self.runner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A service on an async client. Cheap to clone. Nothing is answered until [`run`](Self::run) is polled.
pub struct AsyncService<T: AsyncTransport> {
    inner: Arc<Inner<T>>,
}

impl<T: AsyncTransport> Clone for AsyncService<T> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<T: AsyncTransport> std::fmt::Debug for AsyncService<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let core = self.inner.state.core();
        f.debug_struct("AsyncService").field("name", &core.name()).field("id", &core.id()).finish()
    }
}

impl<T: AsyncTransport> AsyncService<T> {
    /// Starts a service: validates `config` and subscribes to the discovery subjects.
    pub async fn start(transport: T, config: ServiceConfig) -> Result<Self, ServiceFailure> {
        Self::with_core(transport, ServiceCore::new(config, new_id(), Arc::new(SystemClock))?).await
    }

    /// Starts a service around a core built by the caller (an injected clock or id).
    pub async fn with_core(transport: T, core: ServiceCore) -> Result<Self, ServiceFailure> {
        let verbs = core.verb_subscriptions();
        let runner =
            Runner { subs: vec![], handlers: vec![], waker: None, stopping: false, stopped: None, stop_wakers: vec![] };
        let service =
            Self { inner: Arc::new(Inner { transport, state: ServiceState::new(core), runner: Mutex::new(runner) }) };
        for needed in verbs {
            service.add(needed, None).await?;
        }
        // Discoverable once this returns: the server has the subscriptions.
        service.inner.transport.flush().await?;
        Ok(service)
    }

    /// The service's name.
    pub fn name(&self) -> String {
        self.inner.state.core().name().to_owned()
    }

    /// This instance's id.
    pub fn id(&self) -> String {
        self.inner.state.core().id().to_owned()
    }

    /// The service as a group.
    pub fn root(&self) -> Group {
        self.inner.state.core().root()
    }

    async fn add(&self, needed: Needed, handler: Option<AsyncHandler>) -> Result<(), ServiceFailure> {
        let sub = self.inner.transport.subscribe(&needed.subject, needed.queue.as_deref()).await?;
        let mut runner = self.inner.runner();
        runner.subs.push(Sub { target: needed.target, sub, handler, dropped: 0 });
        if let Some(w) = runner.waker.take() {
            w.wake();
        }
        Ok(())
    }

    /// Adds an endpoint whose requests `handler` answers. Handlers run concurrently inside [`run`](Self::run);
    /// a panic is caught, answered with a 500 and counted.
    pub async fn endpoint<F, Fut>(
        &self,
        group: &Group,
        config: EndpointConfig,
        handler: F,
    ) -> Result<EndpointHandle, ServiceFailure>
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if self.inner.runner().stopping {
            return Err(ServiceFailure::Stopped);
        }
        let needed = self.inner.state.core().add_endpoint(group, config)?;
        let Target::Endpoint(id) = needed.target else { unreachable!("add_endpoint returns an endpoint") };
        let handler: AsyncHandler = Arc::new(move |req| Box::pin(handler(req)));
        if let Err(e) = self.add(needed, Some(handler)).await {
            self.inner.state.core().remove_endpoint(id);
            return Err(e);
        }
        // Reachable once this returns: the server has the subscription.
        self.inner.transport.flush().await?;
        Ok(EndpointHandle::new(id))
    }

    /// Adds an endpoint answered by a typed function (JSON in, JSON out; see
    /// [`Service::typed_endpoint`](crate::Service::typed_endpoint)).
    pub async fn typed_endpoint<I, O>(
        &self,
        group: &Group,
        config: EndpointConfig,
        f: impl Fn(I) -> Result<O, ServiceError> + Send + Sync + 'static,
    ) -> Result<EndpointHandle, ServiceFailure>
    where
        I: DeserializeOwned,
        O: Serialize,
    {
        let f = Arc::new(f);
        self.endpoint(group, config, move |mut req| {
            typed_answer(&mut req, &*f);
            std::future::ready(())
        })
        .await
    }

    /// Like [`typed_endpoint`](Self::typed_endpoint), for functions that answer with headers as well.
    pub async fn typed_endpoint_with_headers<I, O>(
        &self,
        group: &Group,
        config: EndpointConfig,
        f: impl Fn(I) -> Result<Response<O>, ServiceError> + Send + Sync + 'static,
    ) -> Result<EndpointHandle, ServiceFailure>
    where
        I: DeserializeOwned,
        O: Serialize,
    {
        let f = Arc::new(f);
        self.endpoint(group, config, move |mut req| {
            typed_answer_with_headers(&mut req, &*f);
            std::future::ready(())
        })
        .await
    }

    /// Removes one endpoint at runtime: drains its subscription; `run` answers what already arrived, then
    /// drops the endpoint from INFO and STATS.
    pub fn remove_endpoint(&self, endpoint: EndpointHandle) -> Result<(), ServiceFailure> {
        let runner = self.inner.runner();
        let sid = runner.subs.iter().find(|s| s.target == Target::Endpoint(endpoint.id())).map(|s| s.sub.sid());
        drop(runner);
        if let Some(sid) = sid {
            self.inner.transport.drain_subscription(sid)?;
        }
        Ok(())
    }

    /// INFO as it would be sent now.
    pub fn info(&self) -> InfoResponse {
        self.inner.state.core().info()
    }

    /// STATS as they would be sent now.
    pub fn stats(&self) -> StatsResponse {
        self.inner.state.core().stats()
    }

    /// Clears every statistic and restarts `started`.
    pub fn reset(&self) {
        self.inner.state.core().reset();
    }

    /// Sets the function that fills each endpoint's `data` in STATS.
    pub fn set_stats_handler(&self, handler: impl FnMut(&EndpointInfo) -> serde_json::Value + Send + 'static) {
        self.inner.state.core().set_stats_handler(Box::new(handler));
    }

    /// Answers requests until the service stops; resolves with why. Spawn it on any runtime.
    pub fn run(&self) -> impl Future<Output = StopReason> + Send + 'static {
        let inner = self.inner.clone();
        std::future::poll_fn(move |cx| poll_run(&inner, cx))
    }

    /// Stops gracefully: drains every subscription, lets `run` answer what already arrived and finish the
    /// handlers in flight, waiting at most `timeout`. Idempotent.
    pub async fn stop(&self, timeout: Duration) -> StopReason {
        let sids: Vec<u64> = {
            let mut runner = self.inner.runner();
            if let Some(reason) = runner.stopped.clone() {
                return reason;
            }
            runner.stopping = true;
            runner.subs.iter().map(|s| s.sub.sid()).collect()
        };
        let drained = sids.iter().all(|&sid| self.inner.transport.drain_subscription(sid).is_ok());
        // A plain thread is the timer: no runtime is assumed.
        let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let waker_slot: Arc<Mutex<Option<Waker>>> = Arc::default();
        {
            let (flag, slot) = (timed_out.clone(), waker_slot.clone());
            std::thread::spawn(move || {
                std::thread::sleep(timeout);
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                if let Some(w) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    w.wake();
                }
            });
        }
        let inner = self.inner.clone();
        std::future::poll_fn(move |cx| {
            let mut runner = inner.runner();
            if let Some(reason) = runner.stopped.clone() {
                return Poll::Ready(reason);
            }
            if timed_out.load(std::sync::atomic::Ordering::SeqCst) {
                let reason = if drained { StopReason::Timeout } else { StopReason::ConnectionClosed };
                runner.stopped = Some(reason.clone());
                runner.handlers.clear();
                finish_stop(&mut runner);
                return Poll::Ready(reason);
            }
            register(&mut runner.stop_wakers, cx.waker());
            *waker_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            if let Some(w) = runner.waker.take() {
                w.wake();
            }
            Poll::Pending
        })
        .await
    }

    /// Waits until the service has stopped; returns why.
    pub async fn done(&self) -> StopReason {
        let inner = self.inner.clone();
        std::future::poll_fn(move |cx| {
            let mut runner = inner.runner();
            match runner.stopped.clone() {
                Some(reason) => Poll::Ready(reason),
                None => {
                    register(&mut runner.stop_wakers, cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

fn finish_stop<S>(runner: &mut Runner<S>) {
    for w in runner.stop_wakers.drain(..) {
        w.wake();
    }
    // `run` too: it must see the stop and resolve, even with no message or handler left to wake it.
    if let Some(w) = runner.waker.take() {
        w.wake();
    }
}

/// One poll of the service: take every waiting message, start handlers, drive them.
fn poll_run<T: AsyncTransport>(inner: &Arc<Inner<T>>, cx: &mut Context<'_>) -> Poll<StopReason> {
    let mut runner = inner.runner();
    if let Some(reason) = runner.stopped.clone() {
        return Poll::Ready(reason);
    }
    runner.waker = Some(cx.waker().clone());
    let mut i = 0;
    // Take a bounded number of messages per poll, so handlers run and other tasks get the thread.
    let mut budget = MESSAGES_PER_POLL;
    while i < runner.subs.len() {
        if budget == 0 {
            cx.waker().wake_by_ref();
            break;
        }
        budget -= 1;
        let poll = runner.subs[i].sub.poll_message(cx);
        match poll {
            Poll::Ready(Some(msg)) => {
                let sub = &mut runner.subs[i];
                let target = sub.target;
                let now_dropped = sub.sub.dropped();
                let lost = now_dropped - sub.dropped;
                sub.dropped = now_dropped;
                let handler = sub.handler.clone();
                match (target, handler) {
                    (Target::Verb(verb), _) => inner.state.answer_verb(verb, &msg),
                    (Target::Endpoint(id), Some(handler)) => {
                        inner.state.note_dropped(id, lost);
                        if let Some(req) = inner.state.begin(id, msg) {
                            runner.handlers.push(handler(req));
                        }
                    }
                    (Target::Endpoint(_), None) => {}
                }
                // Look at the same subscription again: it may hold more.
            }
            Poll::Ready(None) => {
                let ended = runner.subs.remove(i);
                if let Target::Endpoint(id) = ended.target {
                    // Drained (removed or stopping) or ended with the connection: it leaves INFO and STATS.
                    if !runner.stopping {
                        inner.state.core().remove_endpoint(id);
                    }
                }
            }
            Poll::Pending => i += 1,
        }
    }
    let mut handlers = std::mem::take(&mut runner.handlers);
    drop(runner);
    handlers.retain_mut(|fut| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
        Ok(Poll::Pending) => true,
        Ok(Poll::Ready(())) => false,
        Err(_) => {
            // The future holds its Request: dropping it now answers the panic with a 500.
            DROPPED_BY_PANIC.with(|flag| flag.set(true));
            drop(std::mem::replace(fut, Box::pin(std::future::ready(()))));
            DROPPED_BY_PANIC.with(|flag| flag.set(false));
            false
        }
    });
    let mut runner = inner.runner();
    handlers.append(&mut runner.handlers);
    runner.handlers = handlers;
    if runner.subs.is_empty() && runner.handlers.is_empty() {
        // Every subscription ended: drained by `stop`, or with the connection.
        let reason = if runner.stopping { StopReason::Stopped } else { StopReason::ConnectionClosed };
        runner.stopped = Some(reason.clone());
        finish_stop(&mut runner);
        return Poll::Ready(reason);
    }
    Poll::Pending
}
