//! Push consumers on the blocking client: the server sends to a deliver subject, this client answers flow
//! control and watches heartbeats ([`crate::push::PushConsumer`]), and the user iterates the messages.

use std::time::{Duration, Instant};

use super::{Context, JsMessage};
use crate::ack::AckState;
use crate::common::{link_change, push_setup, PushSetup};
use crate::error::{Error, JetStreamError};
use crate::model::ConsumerConfig;
use crate::push::{PushConsumer, PushEvent};
use nats_client::seam::{Client, Subscription};
use nats_client::{EventReceiver, Message};

/// The longest a push subscription waits without looking at its heartbeat timer.
const MAX_WAIT: Duration = Duration::from_secs(1);

impl<T: Client> Context<T> {
    /// A push consumer of `stream`: creates the consumer (durable when `config` names one; an identical one
    /// that exists is bound), subscribing first to its deliver subject (a fresh inbox when `config` has
    /// none) in its deliver group (a queue group) if it has one. Messages need acks unless the ack policy is
    /// `none`.
    pub fn push_consumer(&self, stream: &str, config: ConsumerConfig) -> Result<PushMessages<T>, Error> {
        let PushSetup { config, queue } = push_setup(config, || self.client.new_inbox());
        let sub = self.client.subscribe(&config.deliver_subject, queue.as_deref())?;
        let info = self.create_consumer(stream, &config)?;
        let heartbeat = Some(info.config.idle_heartbeat);
        Ok(PushMessages {
            js: self.clone(),
            consumer: info.name,
            sub,
            machine: PushConsumer::new(heartbeat, Instant::now()),
            events: self.client.events(),
            ended: false,
        })
    }
}

/// The messages of a push consumer: see [`Context::push_consumer`]. An iterator that ends only when the
/// consumer is deleted (after an `Err` saying so) or the subscription ends; a silence of two heartbeat
/// intervals is an `Err` ([`JetStreamError::MissedHeartbeats`]) and iteration goes on.
#[derive(Debug)]
pub struct PushMessages<T: Client> {
    js: Context<T>,
    consumer: String,
    sub: T::Subscription,
    machine: PushConsumer<Message>,
    events: EventReceiver,
    ended: bool,
}

impl<T: Client> PushMessages<T> {
    /// The consumer's name.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Times two heartbeat intervals passed with nothing from the server (the consumer, or its server, may be
    /// gone); each was also an `Err` of the iterator.
    pub fn missed_heartbeats(&self) -> u64 {
        self.machine.missed_heartbeats()
    }

    /// Flow-control requests (and stalls) answered so far.
    pub fn flow_control_answered(&self) -> u64 {
        self.machine.flow_control_answered()
    }
}

impl<T: Client> Iterator for PushMessages<T> {
    type Item = Result<JsMessage<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        loop {
            while let Ok(event) = self.events.try_recv() {
                if link_change(&event) == Some(true) {
                    self.machine.handle_reconnected(Instant::now());
                }
            }
            while let Some(subject) = self.machine.poll_reply() {
                let subject = String::from_utf8_lossy(&subject).into_owned();
                if let Err(e) = self.js.client.publish(&subject, None, None, "".into()) {
                    return Some(Err(e.into()));
                }
            }
            match self.machine.poll_event() {
                Some(PushEvent::Message(message)) => {
                    let client = self.js.client.clone();
                    return Some(Ok(JsMessage { message, client, acked: AckState::new() }));
                }
                Some(PushEvent::MissedHeartbeats) => return Some(Err(JetStreamError::MissedHeartbeats.into())),
                Some(PushEvent::ConsumerDeleted) => {
                    self.ended = true;
                    let status = JetStreamError::Status { code: 409, description: "Consumer Deleted".into() };
                    return Some(Err(status.into()));
                }
                None => {}
            }
            let now = Instant::now();
            let wait = self.machine.poll_timeout().map_or(MAX_WAIT, |d| d.saturating_duration_since(now));
            match self.sub.next_timeout(wait.clamp(Duration::from_millis(1), MAX_WAIT)) {
                Ok(msg) => self.machine.handle_message(Instant::now(), msg),
                Err(nats_client::Error::Timeout) => self.machine.handle_timeout(Instant::now()),
                Err(e) => {
                    self.ended = true;
                    return Some(Err(e.into()));
                }
            }
        }
    }
}
