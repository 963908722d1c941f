//! Pull consumers on the blocking client: [`PullHandle`] (fetch, next) with its continuous consume
//! [`Messages`], and the ordered consumer [`Ordered`]; each drives its sans-IO machine on a subscription of
//! its own.

use std::time::{Duration, Instant};

use super::{Context, JsMessage};
use crate::ack::AckState;
use crate::common::{
    apply_link, control_error, finish, is_fatal_create_error, link_change, ordered_consumer_name, ordered_event,
    OrderedStep,
};
use crate::error::Error;
use crate::model::ConsumerInfo;
use crate::ordered::{OrderedConsumer, ResetReason};
use crate::pull::{ConsumeConfig, FetchConfig, PullConsumer, PullEvent, Termination};
use nats_client::seam::{Client, Subscription};
use nats_client::{EventReceiver, Message};

/// A pull consumer of one stream.
#[derive(Debug, Clone)]
pub struct PullHandle<T> {
    pub(super) js: Context<T>,
    pub(super) stream: String,
    pub(super) consumer: String,
    /// The pin of a pinned client, kept from one fetch to the next.
    pub(super) pin: crate::common::SharedPin,
}

impl<T: Client> PullHandle<T> {
    /// The pin this handle holds (priority policy `pinned_client`): from its last fetch, or from a consume of it
    /// that ended holding one. Its next fetches and consumes send it; `None` when it holds none.
    pub fn pin_id(&self) -> Option<String> {
        self.pin.get()
    }

    /// The consumer's info.
    pub fn info(&self) -> Result<ConsumerInfo, Error> {
        self.js.consumer_info(&self.stream, &self.consumer)
    }

    /// One pull: up to `config`'s batch or bytes, waiting up to its expiry. Returns what arrived; an error
    /// status (or a missing heartbeat) is an error only when nothing arrived.
    pub fn fetch(&self, config: FetchConfig) -> Result<Vec<JsMessage<T>>, Error> {
        let client = &self.js.client;
        let inbox = client.new_inbox();
        let mut sub = client.subscribe(&inbox, None)?;
        let mut machine = PullConsumer::<Message>::fetch(config, Instant::now())?;
        machine.set_pin_id(self.pin.get());
        let mut out = Vec::new();
        loop {
            while let Some(pull) = machine.poll_pull() {
                let (subject, body) = self.js.api.pull(&self.stream, &self.consumer, &pull)?;
                client.publish(&subject, Some(&inbox), None, body.into())?;
            }
            while let Some(event) = machine.poll_event() {
                match event {
                    PullEvent::Message(message) => {
                        out.push(JsMessage { message, client: client.clone(), acked: AckState::new() })
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
            let wait = machine.poll_timeout().map_or(self.js.timeout, |t| t.saturating_duration_since(now));
            match sub.next_timeout(wait.max(Duration::from_millis(1))) {
                Ok(msg) => machine.handle_message(Instant::now(), msg),
                Err(nats_client::Error::Timeout) => machine.handle_timeout(Instant::now()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Messages for ever: pulls ahead (half of `config`'s maximum in flight, re-pulled as they arrive), keeps
    /// going across missed heartbeats and reconnects, and ends only when the consumer is deleted. Errors
    /// the server reports about a pull are yielded and consuming goes on.
    pub fn messages(&self, config: ConsumeConfig) -> Result<Messages<T>, Error> {
        let inbox = self.js.client.new_inbox();
        let sub = self.js.client.subscribe(&inbox, None)?;
        let mut machine = PullConsumer::consume(config, Instant::now())?;
        machine.set_pin_id(self.pin.get());
        let events = self.js.client.events();
        Ok(Messages { handle: self.clone(), inbox, sub, machine, events, ended: None, missed_heartbeats: 0 })
    }

    /// The next message, waiting up to `expires`; `None` when there is none.
    pub fn next(&self, expires: Duration) -> Result<Option<JsMessage<T>>, Error> {
        Ok(self.fetch(FetchConfig::next().with_expires(expires))?.into_iter().next())
    }
}

/// A continuous consume of a pull consumer: an iterator of messages (see [`PullHandle::messages`]).
#[derive(Debug)]
pub struct Messages<T: Client> {
    handle: PullHandle<T>,
    inbox: String,
    sub: T::Subscription,
    machine: PullConsumer<Message>,
    events: EventReceiver,
    ended: Option<Termination>,
    missed_heartbeats: u64,
}

/// The pin a consume held stays with its handle, for the handle's next fetch or consume.
impl<T: Client> Drop for Messages<T> {
    fn drop(&mut self) {
        if let Some(pin) = self.machine.pin_id() {
            self.handle.pin.set(Some(pin));
        }
    }
}

impl<T: Client> Messages<T> {
    /// The pin this consume holds (priority policy `pinned_client`): `None` until the server pinned it, and
    /// again after a `423` said another client holds the pin.
    pub fn pin_id(&self) -> Option<&str> {
        self.machine.pin_id()
    }

    /// Times the server went silent for 2 × the heartbeat (each time the consume pulled afresh).
    pub fn missed_heartbeats(&self) -> u64 {
        self.missed_heartbeats
    }

    /// Stops: no more pulls; the iterator ends.
    pub fn stop(&mut self) {
        self.machine.stop();
    }

    /// Why the consume ended, once it has.
    pub fn ended(&self) -> Option<&Termination> {
        self.ended.as_ref()
    }
}

impl<T: Client> Iterator for Messages<T> {
    type Item = Result<JsMessage<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let js = &self.handle.js;
        loop {
            while let Some(up) = self.events.try_recv().ok().map(|e| link_change(&e)) {
                if let Some(up) = up {
                    apply_link(&mut self.machine, up, Instant::now());
                }
            }
            while let Some(pull) = self.machine.poll_pull() {
                let sent =
                    js.api.pull(&self.handle.stream, &self.handle.consumer, &pull).map_err(Error::from).and_then(
                        |(subject, body)| Ok(js.client.publish(&subject, Some(&self.inbox), None, body.into())?),
                    );
                if let Err(e) = sent {
                    return Some(Err(e));
                }
            }
            while let Some(event) = self.machine.poll_event() {
                match event {
                    PullEvent::Message(message) => {
                        return Some(Ok(JsMessage { message, client: js.client.clone(), acked: AckState::new() }))
                    }
                    PullEvent::Error(control) => return Some(Err(control_error(&control).into())),
                    PullEvent::Terminated { reason } => {
                        self.ended = Some(reason);
                        return None;
                    }
                    PullEvent::MissingHeartbeat => self.missed_heartbeats += 1,
                    PullEvent::Warning(_) | PullEvent::FetchDone { .. } => {}
                }
            }
            if self.ended.is_some() || self.machine.is_finished() {
                return None;
            }
            if let Err(e) = wait(&mut self.sub, &mut self.machine, None) {
                return Some(Err(e));
            }
        }
    }
}

/// Waits for the next message of `sub` (or the machine's timer, or `other` deadline) and feeds the machine.
fn wait<S: Subscription>(
    sub: &mut S,
    machine: &mut PullConsumer<Message>,
    other: Option<Instant>,
) -> Result<Option<Message>, Error> {
    let now = Instant::now();
    let deadline = match (machine.poll_timeout(), other) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    // At most a second, so that connection events (read between waits) are noticed.
    let wait =
        deadline.map_or(Duration::from_secs(1), |d| d.saturating_duration_since(now)).min(Duration::from_secs(1));
    match sub.next_timeout(wait.max(Duration::from_millis(1))) {
        Ok(msg) => {
            machine.handle_message(Instant::now(), msg);
            Ok(None)
        }
        Err(nats_client::Error::Timeout) => {
            machine.handle_timeout(Instant::now());
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// An ordered consumer: see [`Context::ordered`]. Yields messages in stream order, each once.
#[derive(Debug)]
pub struct Ordered<T: Client> {
    pub(super) js: Context<T>,
    pub(super) stream: String,
    pub(super) inbox: String,
    pub(super) sub: T::Subscription,
    pub(super) machine: OrderedConsumer,
    /// The serial of the consumer being pulled, and its pull machine.
    pub(super) pull: Option<(u64, PullConsumer<Message>)>,
    pub(super) consume: ConsumeConfig,
    /// The reply to the last successful create.
    pub(super) created: Option<ConsumerInfo>,
    pub(super) events: EventReceiver,
}

impl<T: Client> Ordered<T> {
    /// Messages the current consumer had pending when it was created (a watch's initial data).
    pub(super) fn initial_pending(&self) -> Option<u64> {
        self.created.as_ref().map(|c| c.num_pending)
    }

    /// Times the chain moved to a new consumer.
    pub fn resets(&self) -> u64 {
        self.machine.resets().0
    }

    pub(super) fn step(&mut self) -> Result<Option<JsMessage<T>>, Error> {
        let now = Instant::now();
        while let Ok(event) = self.events.try_recv() {
            match link_change(&event) {
                // The chain's consumer may be gone with the server: start a new one after the last delivered.
                Some(true) => {
                    self.machine.reset(ResetReason::Reconnected);
                    self.pull = None;
                }
                Some(false) => {
                    if let Some((_, pull)) = self.pull.as_mut() {
                        pull.handle_disconnected(now);
                    }
                }
                None => {}
            }
        }
        while let Some(name) = self.machine.poll_delete() {
            // Best effort: an ephemeral consumer also goes away on its own.
            let _ = self.js.delete_consumer(&self.stream, &name);
        }
        if let Some(config) = self.machine.poll_create(now) {
            let serial = self.machine.serial();
            match self.js.create_consumer(&self.stream, &config) {
                Ok(info) => {
                    self.machine.create_succeeded(serial);
                    self.created = Some(info);
                    self.pull = Some((serial, PullConsumer::consume(self.consume.clone(), now)?));
                }
                Err(e) => {
                    self.machine.create_failed(serial, now);
                    // A refusal that retrying cannot fix (no stream, a bad config) ends the consumer; timeouts,
                    // no responders and the retryable API errors are retried with backoff.
                    if is_fatal_create_error(&e) {
                        return Err(e);
                    }
                }
            }
        }
        let Some((serial, pull)) = self.pull.as_mut() else {
            // Waiting for a create's backoff: sleep on the subscription (stale messages are dropped).
            let wait =
                self.machine.poll_timeout().map_or(Duration::from_millis(50), |d| d.saturating_duration_since(now));
            match self.sub.next_timeout(wait.max(Duration::from_millis(1))) {
                Ok(_) | Err(nats_client::Error::Timeout) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        };
        let name = ordered_consumer_name(&self.machine, *serial);
        while let Some(request) = pull.poll_pull() {
            let (subject, body) = self.js.api.pull(&self.stream, &name, &request)?;
            self.js.client.publish(&subject, Some(&self.inbox), None, body.into())?;
        }
        while let Some(event) = pull.poll_event() {
            match ordered_event(&mut self.machine, event) {
                OrderedStep::Deliver(message) => {
                    let client = self.js.client.clone();
                    return Ok(Some(JsMessage { message, client, acked: AckState::no_ack() }));
                }
                OrderedStep::Reset => {
                    self.pull = None;
                    return Ok(None);
                }
                OrderedStep::Skip => {}
            }
        }
        wait(&mut self.sub, pull, self.machine.poll_timeout())?;
        Ok(None)
    }
}

impl<T: Client> Iterator for Ordered<T> {
    type Item = Result<JsMessage<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.step() {
                Ok(Some(message)) => return Some(Ok(message)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
