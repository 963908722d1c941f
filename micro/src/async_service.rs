//! A service on an async client, on any runtime: [`AsyncService::run`] is one future that answers the
//! discovery verbs and drives every handler; spawn it wherever you like (tokio, smol, ...).
//!
//! Each subscription and each handler future is polled with a waker of its own (see `wake`), so a wake-up of
//! `run` polls what was woken: the subscription a message arrived on and the handlers whose futures can go on,
//! not the 9 discovery subscriptions and every handler in flight. Handlers are called and polled without the
//! runner's lock, as a handler may call the service.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

use crate::config::{EndpointConfig, Group, ServiceConfig};
use crate::core::{new_id, EndpointId, ServiceCore, Subscription as Needed, SystemClock, Target, Verb};
use crate::handler_scope::{without_context, HandlerScope};
use crate::request::{
    typed_answer, typed_answer_with_headers, Request, Response, ServiceError, ServiceState, Serving, DROPPED_BY_PANIC,
};
use crate::wake::{split, Slots, Wakeups, HANDLER, SUB};
use crate::wire::{EndpointInfo, InfoResponse, StatsResponse};
use crate::{EndpointHandle, ServiceFailure, StopReason};
use nats_client::seam::{deadline_after, AsyncClient, AsyncSubscription};

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

enum Role {
    Verb(Verb),
    Endpoint { id: EndpointId, handler: AsyncHandler, serving: Serving },
}

struct Sub<S> {
    role: Role,
    sub: S,
}

impl<S> Sub<S> {
    fn serves(&self, endpoint: EndpointId) -> bool {
        matches!(self.role, Role::Endpoint { id, .. } if id == endpoint)
    }
}

/// A handler's work taken out by `poll_run` to be done without the runner's lock, in the handler's slot.
struct Polling {
    slot: usize,
    work: Work,
    waker: Waker,
}

enum Work {
    /// A request for the handler: calling the handler makes the future (and, for a typed endpoint, answers).
    Start(AsyncHandler, Request),
    Poll(HandlerFuture),
    Done,
}

impl Work {
    /// Starts or polls; panics are caught (the request is answered with a 500 and counted).
    fn advance(&mut self, cx: &mut Context<'_>) {
        let mut fut = match std::mem::replace(self, Work::Done) {
            Work::Start(handler, req) => {
                let scope = HandlerScope::of(&req);
                match catch_unwind(AssertUnwindSafe(|| scope.run(|| handler(req)))) {
                    Ok(fut) => scope.wrap(fut),
                    // The request was dropped while unwinding, which answered it.
                    Err(_) => return,
                }
            }
            Work::Poll(fut) => fut,
            Work::Done => return,
        };
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => *self = Work::Poll(fut),
            Ok(Poll::Ready(())) => {}
            Err(_) => {
                // The future holds its Request: dropping it now answers the panic with a 500.
                DROPPED_BY_PANIC.with(|flag| flag.set(true));
                drop(fut);
                DROPPED_BY_PANIC.with(|flag| flag.set(false));
            }
        }
    }
}

struct Runner<S> {
    /// Polled under the runner's lock, only when woken (or new).
    subs: Slots<Sub<S>>,
    /// Polled without the runner's lock (a handler may call the service), only when woken (or new).
    handlers: Slots<HandlerFuture>,
    /// Keys a poll did not get to (its message budget ran out): the next poll takes them first.
    again: Vec<usize>,
    /// Buffers reused from poll to poll.
    keys: Vec<usize>,
    batch: Vec<Polling>,
    stopping: bool,
    stopped: Option<StopReason>,
    stop_wakers: Vec<Waker>,
}

struct Inner<T: AsyncClient> {
    client: T,
    state: Arc<ServiceState>,
    wakeups: Arc<Wakeups>,
    runner: Mutex<Runner<T::Subscription>>,
}

impl<T: AsyncClient> Inner<T> {
    fn runner(&self) -> MutexGuard<'_, Runner<T::Subscription>> {
        self.runner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A service on an async client. Cheap to clone. Nothing is answered until [`run`](Self::run) is polled.
pub struct AsyncService<T: AsyncClient> {
    inner: Arc<Inner<T>>,
}

impl<T: AsyncClient> Clone for AsyncService<T> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<T: AsyncClient> std::fmt::Debug for AsyncService<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let core = self.inner.state.core();
        f.debug_struct("AsyncService").field("name", &core.name()).field("id", &core.id()).finish()
    }
}

impl<T: AsyncClient> AsyncService<T> {
    /// Starts a service: validates `config` and subscribes to the discovery subjects.
    pub async fn start(client: T, config: ServiceConfig) -> Result<Self, ServiceFailure> {
        Self::with_core(client, ServiceCore::new(config, new_id(), Arc::new(SystemClock))?).await
    }

    /// Starts a service around a core built by the caller (an injected clock or id).
    pub async fn with_core(client: T, core: ServiceCore) -> Result<Self, ServiceFailure> {
        let verbs = core.verb_subscriptions();
        let wakeups = Arc::new(Wakeups::default());
        let runner = Runner {
            subs: Slots::new(SUB, wakeups.clone()),
            handlers: Slots::new(HANDLER, wakeups.clone()),
            again: vec![],
            keys: vec![],
            batch: vec![],
            stopping: false,
            stopped: None,
            stop_wakers: vec![],
        };
        let state = ServiceState::new(core);
        let service = Self { inner: Arc::new(Inner { client, state, wakeups, runner: Mutex::new(runner) }) };
        for needed in verbs {
            let Target::Verb(verb) = needed.target else { unreachable!("verb_subscriptions returns verbs") };
            service.add(&needed, Role::Verb(verb)).await?;
        }
        // Discoverable once this returns: the server has the subscriptions.
        service.inner.client.flush().await?;
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

    async fn add(&self, needed: &Needed, role: Role) -> Result<(), ServiceFailure> {
        let sub = self.inner.client.subscribe(&needed.subject, needed.queue.as_deref()).await?;
        let mut runner = self.inner.runner();
        let slot = runner.subs.insert(Sub { role, sub });
        // Polled once by `run`, which registers the subscription's waker with it.
        self.inner.wakeups.wake(runner.subs.key(slot));
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
        let (needed, id, meter) = self.inner.state.core().add_metered_endpoint(group, config)?;
        let handler: AsyncHandler = Arc::new(move |req| Box::pin(handler(req)));
        if let Err(e) = self.add(&needed, Role::Endpoint { id, handler, serving: Serving::new(meter) }).await {
            self.inner.state.core().remove_endpoint(id);
            return Err(e);
        }
        // Reachable once this returns: the server has the subscription.
        self.inner.client.flush().await?;
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
        O: Serialize + 'static,
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
        O: Serialize + 'static,
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
        let sid = runner.subs.iter().find(|s| s.serves(endpoint.id())).map(|s| s.sub.sid());
        drop(runner);
        if let Some(sid) = sid {
            self.inner.client.drain_subscription(sid)?;
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
        // No trace context of the poller's leaks into the service: each handler runs in its request's.
        std::future::poll_fn(move |cx| without_context(|| poll_run(&inner, cx)))
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
        let drained = sids.iter().all(|&sid| self.inner.client.drain_subscription(sid).is_ok());
        // The client's own timer: its runtime's, whichever that is.
        let mut timer = self.inner.client.timer(deadline_after(Instant::now(), timeout));
        let inner = self.inner.clone();
        std::future::poll_fn(move |cx| {
            let mut runner = inner.runner();
            if let Some(reason) = runner.stopped.clone() {
                return Poll::Ready(reason);
            }
            if timer.poll_fired(cx).is_ready() {
                let reason = if drained { StopReason::Timeout } else { StopReason::ConnectionClosed };
                runner.stopped = Some(reason.clone());
                // Handlers out being polled are dropped by that poll, when it sees the stop.
                let abandoned = runner.handlers.drain();
                finish_stop(&mut runner, &inner.wakeups);
                drop(runner);
                // Dropped unanswered: each request is counted, without an error.
                drop(abandoned);
                return Poll::Ready(reason);
            }
            register(&mut runner.stop_wakers, cx.waker());
            inner.wakeups.wake_task();
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

fn finish_stop<S>(runner: &mut Runner<S>, wakeups: &Wakeups) {
    for w in runner.stop_wakers.drain(..) {
        w.wake();
    }
    // `run` too: it must see the stop and resolve, even with no message or handler left to wake it.
    wakeups.wake_task();
}

/// One poll of the service: take the messages waiting on the subscriptions that were woken, start their
/// handlers, drive the handlers that were woken (or are new). Nothing else is looked at.
fn poll_run<T: AsyncClient>(inner: &Arc<Inner<T>>, cx: &mut Context<'_>) -> Poll<StopReason> {
    let mut guard = inner.runner();
    let runner = &mut *guard;
    if let Some(reason) = runner.stopped.clone() {
        return Poll::Ready(reason);
    }
    let mut keys = std::mem::take(&mut runner.keys);
    keys.append(&mut runner.again);
    inner.wakeups.take(cx.waker(), &mut keys);
    let mut batch = std::mem::take(&mut runner.batch);
    // A bounded number of messages per poll, so that handlers run and other tasks get the thread.
    let mut budget = MESSAGES_PER_POLL;
    for &key in &keys {
        let (kind, slot) = split(key);
        if kind == HANDLER {
            if let Some(fut) = runner.handlers.take_out(slot) {
                batch.push(Polling { slot, work: Work::Poll(fut), waker: runner.handlers.waker(slot).clone() });
            }
            continue;
        }
        loop {
            if budget == 0 {
                runner.again.push(key);
                break;
            }
            let Some((sub, waker)) = runner.subs.get_mut(slot) else { break };
            let msg = match sub.sub.poll_message(&mut Context::from_waker(waker)) {
                Poll::Ready(Ok(msg)) => msg,
                Poll::Ready(Err(_)) => {
                    if let Some(Sub { role: Role::Endpoint { id, .. }, .. }) = runner.subs.remove(slot) {
                        // Drained (removed or stopping) or ended with the connection: it leaves INFO and STATS.
                        if !runner.stopping {
                            inner.state.core().remove_endpoint(id);
                        }
                    }
                    break;
                }
                Poll::Pending => break,
            };
            budget -= 1;
            match &mut sub.role {
                Role::Verb(verb) => inner.state.answer_verb(*verb, &msg),
                Role::Endpoint { handler, serving, .. } => {
                    let sub = &sub.sub;
                    if let Some(req) = serving.receive(msg, || sub.dropped()) {
                        let (slot, work) = (runner.handlers.reserve(), Work::Start(handler.clone(), req));
                        batch.push(Polling { slot, work, waker: runner.handlers.waker(slot).clone() });
                    }
                }
            }
            // Look at the same subscription again: it may hold more.
        }
    }
    if !runner.again.is_empty() {
        cx.waker().wake_by_ref();
    }
    keys.clear();
    runner.keys = keys;
    drop(guard);

    // Without the lock: a handler may call the service (add or remove an endpoint, stop). The replies made
    // while a run of them is polled leave together, in one write, when the run is done.
    let advance = |batch: &mut Vec<Polling>| {
        for polling in batch {
            polling.work.advance(&mut Context::from_waker(&polling.waker));
        }
    };
    if batch.len() > 1 {
        nats_client::batch_replies(|| advance(&mut batch));
    } else {
        advance(&mut batch);
    }

    let mut guard = inner.runner();
    let runner = &mut *guard;
    let mut abandoned = vec![];
    for Polling { slot, work, .. } in batch.drain(..) {
        match work {
            Work::Poll(fut) if runner.stopped.is_none() => {
                if runner.handlers.put_back(slot, fut) {
                    // Woken while out here: poll it again.
                    runner.again.push(runner.handlers.key(slot));
                    cx.waker().wake_by_ref();
                }
            }
            Work::Poll(fut) => {
                // `stop` timed out meanwhile and dropped the others.
                runner.handlers.remove(slot);
                abandoned.push(fut);
            }
            Work::Start(..) | Work::Done => {
                runner.handlers.remove(slot);
            }
        }
    }
    runner.batch = batch;
    let result = if let Some(reason) = runner.stopped.clone() {
        Poll::Ready(reason)
    } else if runner.subs.live() == 0 && runner.handlers.live() == 0 {
        // Every subscription ended: drained by `stop`, or with the connection.
        let reason = if runner.stopping { StopReason::Stopped } else { StopReason::ConnectionClosed };
        runner.stopped = Some(reason.clone());
        finish_stop(runner, &inner.wakeups);
        Poll::Ready(reason)
    } else {
        Poll::Pending
    };
    drop(guard);
    drop(abandoned);
    result
}
