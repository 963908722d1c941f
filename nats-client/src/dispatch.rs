//! Routing the core's events (other than subscription messages, which the router delivers as they are
//! decoded) to whoever waits for them: request slots, flush slots, subscription queues that end, event
//! receivers.

use std::sync::Arc;

use nats_proto::{CloseReason, Event as CoreEvent, FlushError, Msg, RequestError, RequestId, SubscriptionEnd};

use crate::event::Event;
use crate::router::Wakeups;
use crate::shared::{Driver, Locked, Shared, Waiting};

impl<T: Driver> Locked<T> {
    /// Sends `event` to every receiver still alive; a full one loses it rather than stall the connection.
    pub fn emit(&mut self, event: Event) {
        self.event_channels.retain(|channel| match channel.upgrade() {
            Some(channel) => {
                channel.send(event.clone());
                true
            }
            None => false,
        });
    }

    /// Once connected, what the core queued on the new connection (subscriptions replayed, publishes and
    /// requests buffered while it was down) goes out at once: a driver letting a flow of publishes gather must
    /// not hold it back, since the event is reported before it is written and a user acting on the event
    /// expects the subscriptions back in place.
    fn replay_now(&mut self) {
        if self.conn.transmit_len() > 0 {
            self.set_urgent();
        }
    }

    /// Routes one event of the core to whoever waits for it. Driver instructions are ignored here. A request's
    /// or a flush's outcome is left in `wake`, to be set once the lock is released.
    pub fn dispatch(&mut self, shared: &Shared<T>, event: CoreEvent, wake: &mut Wakeups) {
        match event {
            // Only `handle_input` makes these; drivers read through `ingest`, which routes messages itself.
            CoreEvent::Message(msg) => {
                if let Some(queue) = self.routes.get(&msg.sid()) {
                    queue.push(shared.message(msg));
                }
            }
            CoreEvent::SubscriptionEnded { sid, reason } => {
                if let Some(queue) = self.routes.remove(&sid) {
                    queue.end(reason);
                }
            }
            CoreEvent::Response { id, result, done } => self.respond(shared, id, result, done, wake),
            CoreEvent::Flushed { id, result } => {
                if let Some(slot) = self.flushes.remove(&id) {
                    wake.flushed(slot, result);
                }
            }
            CoreEvent::Connected(addr) => {
                self.replay_now();
                shared.first_connect().set(Ok(()));
                self.emit(Event::Connected(addr.to_string()));
            }
            CoreEvent::Reconnected(addr) => {
                self.replay_now();
                self.emit(Event::Reconnected(addr.to_string()));
            }
            CoreEvent::Disconnected(e) => self.emit(Event::Disconnected(e)),
            CoreEvent::ConnectFailed { server, error } => {
                self.emit(Event::ConnectFailed { server: server.to_string(), error })
            }
            CoreEvent::LameDuck => self.emit(Event::LameDuck),
            CoreEvent::DiscoveredServers => self.emit(Event::DiscoveredServers),
            CoreEvent::ServerError(e) => self.emit(Event::ServerError(e)),
            CoreEvent::BadMessage(e) => self.emit(Event::BadMessage(e)),
            CoreEvent::Closed(reason) => self.on_closed(shared, reason, wake),
            _ => {}
        }
    }

    fn respond(
        &mut self,
        shared: &Shared<T>,
        id: RequestId,
        result: Result<Msg, RequestError>,
        done: bool,
        wake: &mut Wakeups,
    ) {
        match self.requests.get(&id) {
            Some(Waiting::One(_)) => {
                if let Some(Waiting::One(slot)) = self.requests.remove(&id) {
                    wake.reply(slot, result);
                }
            }
            Some(Waiting::Many(queue)) => {
                let queue: Arc<_> = queue.clone();
                match result {
                    Ok(msg) => {
                        queue.push(shared.message(msg));
                    }
                    Err(RequestError::NoResponders) => queue.end(SubscriptionEnd::Unsubscribed),
                    Err(RequestError::PermissionDenied(e)) => queue.end(SubscriptionEnd::PermissionDenied(e)),
                    Err(_) => queue.end(SubscriptionEnd::Closed),
                }
                if done {
                    queue.end(SubscriptionEnd::Unsubscribed);
                    self.requests.remove(&id);
                }
            }
            None => {}
        }
    }

    fn on_closed(&mut self, shared: &Shared<T>, reason: CloseReason, wake: &mut Wakeups) {
        // Outcomes that came before the close are set before it is announced (a drain returns only after the
        // replies that preceded it).
        wake.wake_all();
        for (_, queue) in self.routes.drain() {
            queue.end(SubscriptionEnd::Closed);
        }
        for (_, waiting) in self.requests.drain() {
            match waiting {
                Waiting::One(slot) => slot.set(Err(RequestError::Closed)),
                Waiting::Many(queue) => queue.end(SubscriptionEnd::Closed),
            }
        }
        for (_, slot) in self.flushes.drain() {
            slot.set(Err(FlushError::Closed));
        }
        shared.first_connect().set(Err(reason.clone()));
        self.closed = Some(reason.clone());
        self.emit(Event::Closed);
        // Nothing more will be said: let receivers (and a callback thread) see the end.
        for channel in self.event_channels.drain(..).filter_map(|c| c.upgrade()) {
            channel.end();
        }
        shared.closed().set(reason);
    }
}
