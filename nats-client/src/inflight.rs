//! A request in flight as both clients hold it, and what a request's or a flush's outcome means to a caller.

use std::sync::Arc;
use std::time::Instant;

use nats_proto::{FlushError, Headers, Msg, Payload, RequestError, RequestId};
use std::time::Duration;

use crate::shared::{Driver, ReplySlot, Shared};
use crate::{Error, Message};

/// A request in flight, as both clients' request calls hold it: its reply is taken by blocking
/// ([`wait`](Self::wait)) or by polling ([`poll_reply`](Self::poll_reply)); dropped unfinished, the request is
/// cancelled.
pub struct InFlight<T: Driver> {
    shared: Arc<Shared<T>>,
    id: RequestId,
    slot: ReplySlot,
    done: bool,
}

impl<T: Driver> std::fmt::Debug for InFlight<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight").field("id", &self.id).field("ready", &self.is_ready()).finish()
    }
}

impl<T: Driver> InFlight<T> {
    /// Sends the request now.
    pub fn send(
        shared: &Arc<Shared<T>>,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let (id, slot) = shared.request(subject, headers, payload, timeout)?;
        Ok(Self { shared: shared.clone(), id, slot, done: false })
    }

    /// The connection the request went out on.
    pub fn shared(&self) -> &Arc<Shared<T>> {
        &self.shared
    }

    /// True once the reply (or the request's failure) is there.
    pub fn is_ready(&self) -> bool {
        self.slot.is_set()
    }

    /// Blocks for the reply until `deadline` (`None`: the core's own request deadline decides).
    pub fn wait(mut self, deadline: Option<Instant>) -> Result<Message, Error> {
        let outcome = self.slot.wait(deadline);
        self.done = outcome.is_some();
        match outcome {
            Some(result) => request_outcome(result).map(|msg| self.shared.message(msg)),
            None => Err(Error::Timeout),
        }
    }

    /// The reply, or `Pending` with the task registered to be woken for it.
    pub fn poll_reply(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<Message, Error>> {
        let result = std::task::ready!(self.slot.poll_take(cx));
        self.done = true;
        std::task::Poll::Ready(request_outcome(result).map(|msg| self.shared.message(msg)))
    }
}

impl<T: Driver> Drop for InFlight<T> {
    fn drop(&mut self) {
        if !self.done {
            self.shared.cancel_request(self.id);
        }
    }
}

/// What a request's outcome means to a caller.
pub fn request_outcome(result: Result<Msg, RequestError>) -> Result<Msg, Error> {
    match result {
        Ok(msg) => Ok(msg),
        Err(RequestError::NoResponders) => Err(Error::NoResponders),
        Err(RequestError::Closed) => Err(Error::Closed),
        Err(RequestError::PermissionDenied(e)) => Err(Error::Permission(e)),
        Err(_) => Err(Error::Timeout),
    }
}

/// What a flush's outcome means to a caller.
pub fn flush_outcome(result: Result<(), FlushError>) -> Result<(), Error> {
    match result {
        Ok(()) => Ok(()),
        Err(FlushError::Disconnected) => Err(Error::Disconnected),
        Err(FlushError::Closed) => Err(Error::Closed),
        Err(_) => Err(Error::Timeout),
    }
}
