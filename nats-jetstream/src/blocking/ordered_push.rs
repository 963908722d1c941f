//! The ordered consumer's push form on the blocking client ([`crate::ordered_push::OrderedPushConsumer`]).

use std::time::{Duration, Instant};

use super::{Context, JsMessage};
use crate::ack::AckState;
use crate::common::{is_fatal_create_error, link_change, ordered_base};
use crate::error::Error;
use crate::ordered::OrderedConfig;
use crate::ordered_push::OrderedPushConsumer;
use nats_client::seam::{Client, Subscription};
use nats_client::{EventReceiver, Message};

/// The longest a wait goes without looking at connection events and timers.
const MAX_WAIT: Duration = Duration::from_secs(1);

impl<T: Client> Context<T> {
    /// An ordered consumer of `stream` in its push form: every message (of the filter subjects) exactly once
    /// and in order, pushed by the server to a subject of this client, with flow control answered and
    /// heartbeats watched; a gap, a silence, a deletion or a reconnect moves the chain to a new consumer
    /// starting after the last message delivered. Messages need no ack. Nothing is sent until the first
    /// [`Iterator::next`].
    pub fn ordered_push(&self, stream: &str, config: OrderedConfig) -> Result<OrderedPush<T>, Error> {
        crate::api::validate_stream_name(stream)?;
        let prefix = self.client.new_inbox();
        let machine = OrderedPushConsumer::new(&prefix, &ordered_base(&prefix), config, Instant::now())?;
        Ok(OrderedPush {
            js: self.clone(),
            stream: stream.to_owned(),
            sub: None,
            machine,
            events: self.client.events(),
        })
    }
}

/// An ordered push consumer: see [`Context::ordered_push`]. An iterator that never ends by itself; an `Err`
/// is a failure that retrying cannot mend (the stream is gone, the config is refused) or of the connection.
#[derive(Debug)]
pub struct OrderedPush<T: Client> {
    js: Context<T>,
    stream: String,
    /// The subscription to the current consumer's deliver subject.
    sub: Option<T::Subscription>,
    machine: OrderedPushConsumer<Message>,
    events: EventReceiver,
}

impl<T: Client> OrderedPush<T> {
    /// The chain's state: resets, missed heartbeats, flow control answered, and (through
    /// [`OrderedPushConsumer::tracker`]) the last sequences delivered.
    pub fn state(&self) -> &OrderedPushConsumer<Message> {
        &self.machine
    }

    fn step(&mut self) -> Result<Option<Message>, Error> {
        while let Ok(event) = self.events.try_recv() {
            if link_change(&event) == Some(true) {
                self.machine.handle_reconnected();
            }
        }
        while let Some(name) = self.machine.poll_delete() {
            // Best effort: an ephemeral consumer without interest also goes away on its own.
            let _ = self.js.delete_consumer(&self.stream, &name);
        }
        let now = Instant::now();
        if let Some(config) = self.machine.poll_create(now) {
            let serial = self.machine.tracker().serial();
            // The old subscription goes first: nothing of an old consumer reaches the user.
            self.sub = None;
            self.sub = Some(self.js.client.subscribe(&config.deliver_subject, None)?);
            match self.js.create_consumer(&self.stream, &config) {
                Ok(_) => self.machine.create_succeeded(serial, Instant::now()),
                Err(e) => {
                    self.machine.create_failed(serial, Instant::now());
                    if is_fatal_create_error(&e) {
                        return Err(e);
                    }
                }
            }
        }
        while let Some(subject) = self.machine.poll_reply() {
            self.js.client.publish(&String::from_utf8_lossy(&subject), None, None, "".into())?;
        }
        if let Some(message) = self.machine.poll_message() {
            return Ok(Some(message));
        }
        let now = Instant::now();
        let wait = self.machine.poll_timeout().map_or(MAX_WAIT, |d| d.saturating_duration_since(now));
        let wait = wait.clamp(Duration::from_millis(1), MAX_WAIT);
        let Some(sub) = self.sub.as_mut() else {
            std::thread::sleep(wait);
            return Ok(None);
        };
        match sub.next_timeout(wait) {
            Ok(msg) => self.machine.handle_message(Instant::now(), msg),
            Err(nats_client::Error::Timeout) => self.machine.handle_timeout(Instant::now()),
            Err(e) => return Err(e.into()),
        }
        Ok(None)
    }
}

impl<T: Client> Iterator for OrderedPush<T> {
    type Item = Result<JsMessage<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.step() {
                Ok(Some(message)) => {
                    let client = self.js.client.clone();
                    return Some(Ok(JsMessage { message, client, acked: AckState::no_ack() }));
                }
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
