//! Pull consumers on the async client: [`AsyncPullHandle`] (fetch, next) with its continuous consume
//! [`AsyncMessages`], and the ordered consumer [`AsyncOrdered`]; each drives its sans-IO machine on a
//! subscription of its own.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;

use super::{AsyncContext, AsyncJsMessage};
use crate::ack::AckState;
use crate::common::{
    apply_link, control_error, finish, is_fatal_create_error, link_change, ordered_consumer_name, ordered_event,
    OrderedStep,
};
use crate::error::Error;
use crate::model::ConsumerInfo;
use crate::ordered::{OrderedConsumer, ResetReason};
use crate::pull::{ConsumeConfig, FetchConfig, PullConsumer, PullEvent, Termination};
use nats_client::seam::{deadline_after, AsyncClient, AsyncSubscription, Timer};
use nats_client::{EventReceiver, Message};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

// ---- pull consumers ----

/// A pull consumer of one stream.
#[derive(Debug, Clone)]
pub struct AsyncPullHandle<T> {
    pub(super) js: AsyncContext<T>,
    pub(super) stream: String,
    pub(super) consumer: String,
    /// The pin of a pinned client, kept from one fetch to the next.
    pub(super) pin: crate::common::SharedPin,
}

impl<T: AsyncClient> AsyncPullHandle<T> {
    /// The pin this handle holds (priority policy `pinned_client`): from its last fetch, or from a consume of it
    /// that ended holding one. Its next fetches and consumes send it; `None` when it holds none.
    pub fn pin_id(&self) -> Option<String> {
        self.pin.get()
    }

    /// The consumer's info.
    pub async fn info(&self) -> Result<ConsumerInfo, Error> {
        self.js.consumer_info(&self.stream, &self.consumer).await
    }

    /// One pull: up to `config`'s batch or bytes, waiting up to its expiry. Returns what arrived; an error
    /// status (or a missing heartbeat) is an error only when nothing arrived.
    pub async fn fetch(&self, config: FetchConfig) -> Result<Vec<AsyncJsMessage<T>>, Error> {
        let client = &self.js.client;
        let inbox = client.new_inbox();
        let mut sub = client.subscribe(&inbox, None).await?;
        let now = Instant::now();
        let mut machine = PullConsumer::<Message>::fetch(config, now)?;
        machine.set_pin_id(self.pin.get());
        let mut timer = self.js.client.timer(now);
        let mut out = Vec::new();
        loop {
            while let Some(pull) = machine.poll_pull() {
                let (subject, body) = self.js.api.pull(&self.stream, &self.consumer, &pull)?;
                client.publish(&subject, Some(&inbox), None, body.into()).await?;
            }
            while let Some(event) = machine.poll_event() {
                match event {
                    PullEvent::Message(message) => {
                        out.push(AsyncJsMessage { message, client: client.clone(), acked: AckState::new() })
                    }
                    PullEvent::FetchDone { reason } => {
                        self.pin.set(machine.pin_id());
                        return finish(out, reason);
                    }
                    // A fetch only ends with FetchDone; the others are consume's.
                    _ => {}
                }
            }
            let now = Instant::now();
            let deadline = machine.poll_timeout().unwrap_or_else(|| deadline_after(now, self.js.timeout));
            match sub.next_until(&mut *timer, deadline).await {
                Ok(msg) => machine.handle_message(Instant::now(), msg),
                Err(nats_client::Error::Timeout) => machine.handle_timeout(Instant::now()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Messages for ever, as a `Stream`: pulls ahead (half of `config`'s maximum in flight, re-pulled as they
    /// arrive), keeps going across missed heartbeats and reconnects, and ends only when the consumer is
    /// deleted. Errors the server reports about a pull are yielded and consuming goes on.
    pub async fn messages(&self, config: ConsumeConfig) -> Result<AsyncMessages<T>, Error> {
        let inbox = self.js.client.new_inbox();
        let sub = self.js.client.subscribe(&inbox, None).await?;
        let now = Instant::now();
        let mut machine = PullConsumer::consume(config, now)?;
        machine.set_pin_id(self.pin.get());
        Ok(AsyncMessages {
            handle: self.clone(),
            inbox,
            sub,
            machine,
            timer: self.js.client.timer(now),
            sending: None,
            events: self.js.client.events(),
            ended: None,
            missed_heartbeats: 0,
        })
    }

    /// The next message, waiting up to `expires`; `None` when there is none.
    pub async fn next(&self, expires: Duration) -> Result<Option<AsyncJsMessage<T>>, Error> {
        Ok(self.fetch(FetchConfig::next().with_expires(expires)).await?.into_iter().next())
    }
}

/// A continuous consume of a pull consumer: a `Stream` of messages (see [`AsyncPullHandle::messages`]).
pub struct AsyncMessages<T: AsyncClient> {
    handle: AsyncPullHandle<T>,
    inbox: String,
    sub: T::Subscription,
    machine: PullConsumer<Message>,
    timer: Box<dyn Timer>,
    /// A pull request being published.
    sending: Option<BoxFuture<Result<(), Error>>>,
    events: EventReceiver,
    ended: Option<Termination>,
    missed_heartbeats: u64,
}

impl<T: AsyncClient + fmt::Debug> fmt::Debug for AsyncMessages<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncMessages")
            .field("handle", &self.handle)
            .field("inbox", &self.inbox)
            .field("machine", &self.machine)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

// Nothing is pinned in place: the futures in flight are boxed.
impl<T: AsyncClient> Unpin for AsyncMessages<T> {}

/// The pin a consume held stays with its handle, for the handle's next fetch or consume.
impl<T: AsyncClient> Drop for AsyncMessages<T> {
    fn drop(&mut self) {
        if let Some(pin) = self.machine.pin_id() {
            self.handle.pin.set(Some(pin));
        }
    }
}

impl<T: AsyncClient> AsyncMessages<T> {
    /// The pin this consume holds (priority policy `pinned_client`): `None` until the server pinned it, and
    /// again after a `423` said another client holds the pin.
    pub fn pin_id(&self) -> Option<&str> {
        self.machine.pin_id()
    }

    /// Times the server went silent for 2 × the heartbeat (each time the consume pulled afresh).
    pub fn missed_heartbeats(&self) -> u64 {
        self.missed_heartbeats
    }

    /// Stops: no more pulls; the stream ends.
    pub fn stop(&mut self) {
        self.machine.stop();
    }

    /// Why the consume ended, once it has.
    pub fn ended(&self) -> Option<&Termination> {
        self.ended.as_ref()
    }

    /// The next message; `None` once the consume has ended.
    pub async fn next(&mut self) -> Option<Result<AsyncJsMessage<T>, Error>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<T: AsyncClient> Stream for AsyncMessages<T> {
    type Item = Result<AsyncJsMessage<T>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let js = &this.handle.js;
        loop {
            // Registers the task for the next event too: a reconnect wakes the stream to pull afresh.
            while let Poll::Ready(Some(event)) = this.events.poll_recv(cx) {
                if let Some(up) = link_change(&event) {
                    apply_link(&mut this.machine, up, Instant::now());
                }
            }
            if let Some(sending) = this.sending.as_mut() {
                let sent = ready!(sending.as_mut().poll(cx));
                this.sending = None;
                if let Err(e) = sent {
                    return Poll::Ready(Some(Err(e)));
                }
            }
            if let Some(pull) = this.machine.poll_pull() {
                let (subject, body) = match js.api.pull(&this.handle.stream, &this.handle.consumer, &pull) {
                    Ok(request) => request,
                    Err(e) => return Poll::Ready(Some(Err(e.into()))),
                };
                this.sending = Some(publish_pull(js.client.clone(), subject, this.inbox.clone(), body));
                continue;
            }
            while let Some(event) = this.machine.poll_event() {
                match event {
                    PullEvent::Message(message) => {
                        let client = js.client.clone();
                        return Poll::Ready(Some(Ok(AsyncJsMessage { message, client, acked: AckState::new() })));
                    }
                    PullEvent::Error(control) => return Poll::Ready(Some(Err(control_error(&control).into()))),
                    PullEvent::Terminated { reason } => {
                        this.ended = Some(reason);
                        return Poll::Ready(None);
                    }
                    PullEvent::MissingHeartbeat => this.missed_heartbeats += 1,
                    PullEvent::Warning(_) | PullEvent::FetchDone { .. } => {}
                }
            }
            if this.ended.is_some() || this.machine.is_finished() {
                return Poll::Ready(None);
            }
            if let Err(e) = ready!(poll_wait(&mut this.sub, &mut *this.timer, &mut this.machine, None, cx)) {
                return Poll::Ready(Some(Err(e)));
            }
        }
    }
}

/// Publishes a pull request whose messages come to `inbox`.
fn publish_pull<T: AsyncClient>(
    client: T,
    subject: String,
    inbox: String,
    body: Bytes,
) -> BoxFuture<Result<(), Error>> {
    Box::pin(async move { Ok(client.publish(&subject, Some(&inbox), None, body.into()).await?) })
}

/// Waits for the next message of `sub` (or the machine's timer, or the `other` deadline) and feeds the
/// machine. `Ready` once it has been fed.
fn poll_wait<S: AsyncSubscription>(
    sub: &mut S,
    timer: &mut dyn Timer,
    machine: &mut PullConsumer<Message>,
    other: Option<Instant>,
    cx: &mut TaskContext<'_>,
) -> Poll<Result<(), Error>> {
    match sub.poll_message(cx) {
        Poll::Ready(Ok(msg)) => {
            machine.handle_message(Instant::now(), msg);
            return Poll::Ready(Ok(()));
        }
        Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
        Poll::Pending => {}
    }
    let deadline = match (machine.poll_timeout(), other) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    // Without a timer only a message can move the machine, and the subscription wakes us for that.
    let Some(deadline) = deadline else { return Poll::Pending };
    timer.reset(deadline);
    ready!(timer.poll_fired(cx));
    machine.handle_timeout(Instant::now());
    Poll::Ready(Ok(()))
}

// ---- ordered consumers ----

/// What an ordered consumer has in flight besides waiting.
pub(super) enum Op {
    /// Deleting an old consumer of the chain (best effort).
    Delete(BoxFuture<()>),
    /// Creating the consumer of a serial.
    Create(u64, BoxFuture<Result<ConsumerInfo, Error>>),
    /// Publishing a pull request.
    Pull(BoxFuture<Result<(), Error>>),
}

/// An ordered consumer, as a `Stream`: see [`AsyncContext::ordered`]. Yields messages in stream order, each
/// once; it never ends by itself.
pub struct AsyncOrdered<T: AsyncClient> {
    pub(super) js: AsyncContext<T>,
    pub(super) stream: String,
    pub(super) inbox: String,
    pub(super) sub: T::Subscription,
    pub(super) machine: OrderedConsumer,
    /// The serial of the consumer being pulled, and its pull machine.
    pub(super) pull: Option<(u64, PullConsumer<Message>)>,
    pub(super) consume: ConsumeConfig,
    /// The reply to the last successful create.
    pub(super) created: Option<ConsumerInfo>,
    pub(super) timer: Box<dyn Timer>,
    pub(super) op: Option<Op>,
    pub(super) events: EventReceiver,
}

impl<T: AsyncClient + fmt::Debug> fmt::Debug for AsyncOrdered<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncOrdered")
            .field("js", &self.js)
            .field("stream", &self.stream)
            .field("inbox", &self.inbox)
            .field("machine", &self.machine)
            .finish_non_exhaustive()
    }
}

// Nothing is pinned in place: the futures in flight are boxed.
impl<T: AsyncClient> Unpin for AsyncOrdered<T> {}

impl<T: AsyncClient> AsyncOrdered<T> {
    /// Messages the current consumer had pending when it was created (a watch's initial data).
    pub(super) fn initial_pending(&self) -> Option<u64> {
        self.created.as_ref().map(|c| c.num_pending)
    }

    /// Times the chain moved to a new consumer.
    pub fn resets(&self) -> u64 {
        self.machine.resets().0
    }

    /// The next message. It never ends by itself: `None` is not returned.
    pub async fn next(&mut self) -> Option<Result<AsyncJsMessage<T>, Error>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// One step: a message, `Ok(None)` after any other progress (an old consumer deleted, a consumer created,
    /// a pull sent, a message or timeout fed to the machines), or `Pending` with nothing to do.
    pub(super) fn poll_step(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<Option<AsyncJsMessage<T>>, Error>> {
        while let Poll::Ready(Some(event)) = self.events.poll_recv(cx) {
            match link_change(&event) {
                // The chain's consumer may be gone with the server: start a new one after the last delivered.
                Some(true) => {
                    self.machine.reset(ResetReason::Reconnected);
                    self.pull = None;
                }
                Some(false) => {
                    if let Some((_, pull)) = self.pull.as_mut() {
                        pull.handle_disconnected(Instant::now());
                    }
                }
                None => {}
            }
        }
        loop {
            match self.op.as_mut() {
                None => {}
                Some(Op::Delete(deleting)) => {
                    ready!(deleting.as_mut().poll(cx));
                    self.op = None;
                    continue;
                }
                Some(Op::Pull(sending)) => {
                    let sent = ready!(sending.as_mut().poll(cx));
                    self.op = None;
                    sent?;
                    continue;
                }
                Some(Op::Create(serial, creating)) => {
                    let serial = *serial;
                    let created = ready!(creating.as_mut().poll(cx));
                    self.op = None;
                    let now = Instant::now();
                    match created {
                        Ok(info) => {
                            self.machine.create_succeeded(serial);
                            self.created = Some(info);
                            self.pull = Some((serial, PullConsumer::consume(self.consume.clone(), now)?));
                        }
                        Err(e) => {
                            self.machine.create_failed(serial, now);
                            if is_fatal_create_error(&e) {
                                return Poll::Ready(Err(e));
                            }
                        }
                    }
                    return Poll::Ready(Ok(None));
                }
            }
            let now = Instant::now();
            if let Some(name) = self.machine.poll_delete() {
                let (js, stream) = (self.js.clone(), self.stream.clone());
                // Best effort: an ephemeral consumer also goes away on its own.
                self.op = Some(Op::Delete(Box::pin(async move {
                    let _ = js.delete_consumer(&stream, &name).await;
                })));
                continue;
            }
            if let Some(config) = self.machine.poll_create(now) {
                let serial = self.machine.serial();
                let (js, stream) = (self.js.clone(), self.stream.clone());
                self.op = Some(Op::Create(serial, Box::pin(async move { js.create_consumer(&stream, &config).await })));
                continue;
            }
            let Some((serial, pull)) = self.pull.as_mut() else {
                // Waiting for a create's backoff: wait on the subscription too (stale messages are dropped).
                return match self.sub.poll_message(cx) {
                    Poll::Ready(Ok(_)) => Poll::Ready(Ok(None)),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
                    Poll::Pending => {
                        let due = self.machine.poll_timeout().unwrap_or_else(|| now + Duration::from_millis(50));
                        self.timer.reset(due);
                        ready!(self.timer.poll_fired(cx));
                        Poll::Ready(Ok(None))
                    }
                };
            };
            if let Some(request) = pull.poll_pull() {
                let name = ordered_consumer_name(&self.machine, *serial);
                let (subject, body) = self.js.api.pull(&self.stream, &name, &request)?;
                self.op = Some(Op::Pull(publish_pull(self.js.client.clone(), subject, self.inbox.clone(), body)));
                continue;
            }
            while let Some(event) = pull.poll_event() {
                match ordered_event(&mut self.machine, event) {
                    OrderedStep::Deliver(message) => {
                        let client = self.js.client.clone();
                        return Poll::Ready(Ok(Some(AsyncJsMessage { message, client, acked: AckState::no_ack() })));
                    }
                    OrderedStep::Reset => {
                        self.pull = None;
                        return Poll::Ready(Ok(None));
                    }
                    OrderedStep::Skip => {}
                }
            }
            ready!(poll_wait(&mut self.sub, &mut *self.timer, pull, self.machine.poll_timeout(), cx))?;
            return Poll::Ready(Ok(None));
        }
    }
}

impl<T: AsyncClient> Stream for AsyncOrdered<T> {
    type Item = Result<AsyncJsMessage<T>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match ready!(this.poll_step(cx)) {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}
