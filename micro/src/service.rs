//! A service on a blocking client: PING and INFO answered on the client's reader, STATS and the endpoints on
//! threads of their own (an endpoint on the reader too, when asked).
//!
//! PING and INFO (6 of the 9 discovery subscriptions) are inline (`Client::subscribe_inline` of the seam) where
//! the client has a reader to run them on, as nats-blocking's has: their answers are quick and never wait on
//! the client, so they take no thread at all. STATS keeps a thread per subscription, asleep until a verb
//! arrives: it may run the user's stats handler, which may wait on the client. An endpoint's request goes from
//! the client's reader to the endpoint's thread, which answers it without taking a lock of this crate (see
//! `Serving`); an endpoint configured `inline` is answered on the reader itself, without that hand-off.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nats_client::Message;
use serde::{de::DeserializeOwned, Serialize};

use crate::config::{EndpointConfig, Group, ServiceConfig};
use crate::core::{new_id, ServiceCore, Subscription as Needed, SystemClock, Target, Verb};
use crate::handler_scope::HandlerScope;
use crate::request::{typed_answer, typed_answer_with_headers, Request, Response, ServiceError, ServiceState, Serving};
use crate::wire::{EndpointInfo, InfoResponse, StatsResponse};
use crate::{EndpointHandle, ServiceFailure, StopReason};
use nats_client::seam::{Client, InlineSubscription, Subscription};

/// The step of the waits for worker threads to end (in `stop`, `remove_endpoint` and `done`); the threads
/// answering requests block on their subscription and never wait on this.
const POLL: Duration = Duration::from_millis(10);
/// How long an endpoint keeps a batch of replies open while requests keep waiting (see `serve`).
const REPLY_BATCH: Duration = Duration::from_micros(100);
/// The most requests an endpoint answers in one batch of replies.
const REPLY_BATCH_REQUESTS: usize = 64;

/// What a worker thread does with its subscription's messages.
enum Job {
    Verb(Verb),
    Endpoint(Serving, Handler),
}

struct Worker {
    target: Target,
    sid: u64,
    thread: Option<JoinHandle<()>>,
    /// An inline subscription's handle instead of a thread.
    inline: Option<Box<dyn InlineSubscription>>,
}

impl Worker {
    fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished) && self.inline.as_ref().is_none_or(|s| s.is_ended())
    }
}

struct Inner<T: Client> {
    client: T,
    state: Arc<ServiceState>,
    workers: Mutex<Vec<Worker>>,
    stopped: Mutex<Option<StopReason>>,
    done: std::sync::Condvar,
}

/// A running service on a blocking client. Cheap to clone; `stop` ends it for every clone.
pub struct Service<T: Client> {
    inner: Arc<Inner<T>>,
}

impl<T: Client> Clone for Service<T> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<T: Client> std::fmt::Debug for Service<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("name", &self.name()).field("id", &self.id()).finish()
    }
}

impl<T: Client> Service<T> {
    /// Starts a service: validates `config`, subscribes to the discovery subjects, answers them.
    pub fn start(client: T, config: ServiceConfig) -> Result<Self, ServiceFailure> {
        Self::with_core(client, ServiceCore::new(config, new_id(), Arc::new(SystemClock))?)
    }

    /// Starts a service around a core built by the caller (an injected clock or id).
    pub fn with_core(client: T, core: ServiceCore) -> Result<Self, ServiceFailure> {
        let verbs = core.verb_subscriptions();
        let service = Self {
            inner: Arc::new(Inner {
                client,
                state: ServiceState::new(core),
                workers: Mutex::new(vec![]),
                stopped: Mutex::new(None),
                done: std::sync::Condvar::new(),
            }),
        };
        for needed in verbs {
            let Target::Verb(verb) = needed.target else { unreachable!("verb_subscriptions returns verbs") };
            // STATS may run the user's stats handler, which may wait on the client: a thread of its own.
            service.spawn(needed, Job::Verb(verb), verb != Verb::Stats)?;
        }
        // Discoverable once this returns: the server has the subscriptions.
        service.inner.client.flush()?;
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

    /// The service as a group (no prefix, the service's queue group).
    pub fn root(&self) -> Group {
        self.inner.state.core().root()
    }

    /// Adds an endpoint whose requests `handler` answers on the endpoint's own thread. A panic in the
    /// handler is caught: the request is answered with a 500 and counted, and the endpoint goes on.
    ///
    /// While more requests already wait behind the one in hand, the replies the handler makes on that thread
    /// are written together when the run ends (at most 64 requests or 100 µs, or as soon as the handler waits
    /// on a client): one write for the run instead of one per reply. A handler that answers and then works on
    /// (or sleeps) for long keeps its answer, and those before it in the run, until it returns: answer last,
    /// or hand the slow part to another thread.
    pub fn endpoint(
        &self,
        group: &Group,
        config: EndpointConfig,
        handler: impl Fn(Request) + Send + Sync + 'static,
    ) -> Result<EndpointHandle, ServiceFailure> {
        if self.inner.stopped.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return Err(ServiceFailure::Stopped);
        }
        let inline = config.inline;
        let (needed, id, meter) = self.inner.state.core().add_metered_endpoint(group, config)?;
        if let Err(e) = self.spawn(needed, Job::Endpoint(Serving::new(meter), Box::new(handler)), inline) {
            self.inner.state.core().remove_endpoint(id);
            return Err(e);
        }
        // Reachable once this returns: the server has the subscription (not waited for from an inline handler,
        // which would wait for ever).
        if !self.inner.client.on_reader_thread() {
            self.inner.client.flush()?;
        }
        Ok(EndpointHandle::new(id))
    }

    /// Adds an endpoint answered by a typed function: the payload is decoded from JSON (a failure answers
    /// 400; a `String` input may also come as plain text), the result is sent as JSON (a `String`, `&'static str`
    /// or `Bytes` as they are), and an `Err` answers with its code and description.
    pub fn typed_endpoint<I, O>(
        &self,
        group: &Group,
        config: EndpointConfig,
        f: impl Fn(I) -> Result<O, ServiceError> + Send + Sync + 'static,
    ) -> Result<EndpointHandle, ServiceFailure>
    where
        I: DeserializeOwned,
        O: Serialize + 'static,
    {
        self.endpoint(group, config, move |mut req| typed_answer(&mut req, &f))
    }

    /// Like [`typed_endpoint`](Self::typed_endpoint), for functions that answer with headers as well.
    pub fn typed_endpoint_with_headers<I, O>(
        &self,
        group: &Group,
        config: EndpointConfig,
        f: impl Fn(I) -> Result<Response<O>, ServiceError> + Send + Sync + 'static,
    ) -> Result<EndpointHandle, ServiceFailure>
    where
        I: DeserializeOwned,
        O: Serialize + 'static,
    {
        self.endpoint(group, config, move |mut req| typed_answer_with_headers(&mut req, &f))
    }

    /// Serves `needed` with `job`: on the client's reader if `inline` and the client has one, else on a thread.
    fn spawn(&self, needed: Needed, job: Job, inline: bool) -> Result<(), ServiceFailure> {
        let state = self.inner.state.clone();
        let target = needed.target;
        if inline {
            let (subject, queue) = (&needed.subject, needed.queue.as_deref());
            let handler: Box<dyn FnMut(Message) + Send> = match job {
                Job::Verb(verb) => Box::new(move |msg| state.answer_verb(verb, &msg)),
                // The reader empties the queue after every read: requests are dropped for the pending limits only
                // if one read brings more than they allow, and are not counted here.
                Job::Endpoint(mut serving, handler) => Box::new(move |msg| handle(&mut serving, || 0, &*handler, msg)),
            };
            let sub = self.inner.client.subscribe_inline(subject, queue, handler)?;
            let worker = Worker { target, sid: sub.sid(), thread: None, inline: Some(sub) };
            self.inner.workers.lock().unwrap_or_else(|e| e.into_inner()).push(worker);
            return Ok(());
        }
        let mut sub = self.inner.client.subscribe(&needed.subject, needed.queue.as_deref())?;
        let sid = sub.sid();
        let thread = std::thread::Builder::new()
            .name(format!("micro-{}", needed.subject))
            .spawn(move || match job {
                Job::Verb(verb) => {
                    while let Some(msg) = sub.next_message() {
                        state.answer_verb(verb, &msg);
                    }
                }
                Job::Endpoint(serving, handler) => serve(serving, &mut sub, &*handler),
            })
            .map_err(nats_client::Error::Io)?;
        let worker = Worker { target, sid, thread: Some(thread), inline: None };
        self.inner.workers.lock().unwrap_or_else(|e| e.into_inner()).push(worker);
        Ok(())
    }

    /// Removes one endpoint at runtime: drains its subscription, waits (up to `timeout`) for the requests
    /// already received to be answered, then drops it from INFO and STATS. From an inline handler (on the
    /// client's reader thread), which could not wait, it fails with `Error::WouldDeadlock` and changes nothing.
    pub fn remove_endpoint(&self, endpoint: EndpointHandle, timeout: Duration) -> Result<(), ServiceFailure> {
        if self.inner.client.on_reader_thread() {
            return Err(nats_client::Error::WouldDeadlock.into());
        }
        let worker = {
            let mut workers = self.inner.workers.lock().unwrap_or_else(|e| e.into_inner());
            let at = workers.iter().position(|w| w.target == Target::Endpoint(endpoint.id()));
            at.map(|i| workers.remove(i))
        };
        let Some(mut worker) = worker else { return Ok(()) };
        self.inner.client.drain_subscription(worker.sid)?;
        let finished = join_by(&mut worker, nats_client::deadline_in(timeout));
        self.inner.state.core().remove_endpoint(endpoint.id());
        if finished {
            Ok(())
        } else {
            Err(ServiceFailure::Timeout)
        }
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

    /// Stops gracefully: drains every subscription (nothing new arrives; what the server already sent is still
    /// answered), waits up to `timeout` for requests in flight, then reports done. Idempotent: later calls
    /// return the first outcome.
    ///
    /// From an inline handler (on the client's reader thread) it cannot wait: it drains and returns at once,
    /// `Timeout` unless everything had already ended; the endpoints finish what they received on their own.
    pub fn stop(&self, timeout: Duration) -> StopReason {
        let mut stopped = self.inner.stopped.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(reason) = stopped.clone() {
            return reason;
        }
        let on_reader = self.inner.client.on_reader_thread();
        let deadline = if on_reader { Some(Instant::now()) } else { nats_client::deadline_in(timeout) };
        let mut workers = std::mem::take(&mut *self.inner.workers.lock().unwrap_or_else(|e| e.into_inner()));
        let mut drained = true;
        for w in &workers {
            drained &= self.inner.client.drain_subscription(w.sid).is_ok();
        }
        let mut finished = true;
        for w in &mut workers {
            // Every worker gets its chance to finish, even after one timed out.
            finished &= join_by(w, deadline);
        }
        // Requests a handler handed on to another thread: the last one to finish wakes this wait.
        finished &= self.inner.state.wait_idle(deadline);
        if on_reader {
            // Dropped, an inline subscription's handle would cut its drain short.
            workers.retain(|w| !w.is_finished());
            self.inner.workers.lock().unwrap_or_else(|e| e.into_inner()).append(&mut workers);
        }
        let reason = match (drained, finished) {
            (true, true) => StopReason::Stopped,
            (false, _) => StopReason::ConnectionClosed,
            (true, false) => StopReason::Timeout,
        };
        *stopped = Some(reason.clone());
        self.inner.done.notify_all();
        reason
    }

    /// Waits until the service has stopped, by [`stop`](Self::stop) or because every subscription ended with
    /// the connection; returns why. From an inline handler (on the client's reader thread), which could not
    /// wait, it returns `Timeout` at once unless the service has stopped.
    pub fn done(&self) -> StopReason {
        let mut stopped = self.inner.stopped.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(reason) = stopped.clone() {
                return reason;
            }
            if self.inner.client.on_reader_thread() {
                return StopReason::Timeout;
            }
            let workers = self.inner.workers.lock().unwrap_or_else(|e| e.into_inner());
            let all_ended = workers.iter().all(Worker::is_finished);
            drop(workers);
            if all_ended {
                *stopped = Some(StopReason::ConnectionClosed);
                self.inner.done.notify_all();
                continue;
            }
            stopped = self.inner.done.wait_timeout(stopped, POLL * 10).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

type Handler = Box<dyn Fn(Request) + Send + Sync>;

/// An endpoint's loop: count, guard, call the handler, survive its panics, report slow consumers.
///
/// Requests already waiting behind one are handled in the same batch of replies
/// ([`nats_client::batch_replies`]) while the handlers are quick: their replies leave in one write. A batch
/// ends when no request waits, after [`REPLY_BATCH_REQUESTS`] requests, or once it has lasted
/// [`REPLY_BATCH`] (on the system clock, whatever clock the statistics use); a reply made in it waits at most
/// that long plus the rest of the handler call that made it or overran the batch.
fn serve(mut serving: Serving, sub: &mut impl Subscription, handler: &(dyn Fn(Request) + Send + Sync)) {
    while let Some(first) = sub.next_message() {
        if sub.pending() == 0 {
            handle(&mut serving, || sub.dropped(), handler, first);
            continue;
        }
        nats_client::batch_replies(|| {
            let opened = Instant::now();
            let mut msg = first;
            for _ in 1..REPLY_BATCH_REQUESTS {
                handle(&mut serving, || sub.dropped(), handler, msg);
                if sub.pending() == 0 || opened.elapsed() >= REPLY_BATCH {
                    return;
                }
                match sub.next_message() {
                    Some(next) => msg = next,
                    None => return,
                }
            }
            handle(&mut serving, || sub.dropped(), handler, msg);
        });
    }
}

/// One request: counted, guarded, handed to the handler. `dropped`: the subscription's dropped count.
fn handle(
    serving: &mut Serving,
    dropped: impl FnOnce() -> u64,
    handler: &(dyn Fn(Request) + Send + Sync),
    msg: Message,
) {
    if let Some(req) = serving.receive(msg, dropped) {
        let scope = HandlerScope::of(&req);
        // The request's Drop answers a panic with a 500 while unwinding (inside the scope, so the answer
        // carries the trace too); the endpoint carries on.
        let _ = catch_unwind(AssertUnwindSafe(|| scope.run(|| handler(req))));
    }
}

/// Waits for a worker thread (or an inline subscription's end) until `deadline` (`None`: for ever); true if it
/// finished.
fn join_by(worker: &mut Worker, deadline: Option<Instant>) -> bool {
    if let Some(sub) = &worker.inline {
        return sub.wait_ended(deadline);
    }
    let Some(thread) = worker.thread.take() else { return true };
    while !thread.is_finished() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            worker.thread = Some(thread);
            return false;
        }
        std::thread::sleep(POLL);
    }
    let _ = thread.join();
    true
}
