//! Asynchronous publishing: many publishes in flight at once, their acks taken later, with a window of
//! outstanding acks for back-pressure.

use std::collections::VecDeque;

use bytes::Bytes;

use super::Context;
use crate::call::{Call, PublishOptions};
use crate::model::PubAck;
use crate::transport::{Error, Pending, Transport};

/// Publishes with at most `window` acks outstanding: when the window is full, a publish first waits for the
/// oldest ack. Acks come back in publish order; every publish gets exactly one, an error included (a closed
/// connection fails them all, none is left waiting).
#[derive(Debug)]
pub struct PublishWindow<T: Transport> {
    js: Context<T>,
    window: usize,
    in_flight: VecDeque<(T::Pending, Call<PubAck>)>,
    done: Vec<Result<PubAck, Error>>,
}

impl<T: Transport> Context<T> {
    /// A publisher keeping up to `window` acks outstanding (at least 1). Small windows are often fastest:
    /// the server acks in order anyway.
    pub fn publish_window(&self, window: usize) -> PublishWindow<T> {
        PublishWindow { js: self.clone(), window: window.max(1), in_flight: VecDeque::new(), done: Vec::new() }
    }
}

impl<T: Transport> PublishWindow<T> {
    /// Publishes without waiting for its ack (unless the window is full, then for the oldest).
    pub fn publish(&mut self, subject: &str, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.publish_with(subject, payload, &PublishOptions::new())
    }

    /// [`publish`](Self::publish) with de-duplication and expectations.
    pub fn publish_with(
        &mut self,
        subject: &str,
        payload: impl Into<Bytes>,
        options: &PublishOptions,
    ) -> Result<(), Error> {
        let call = self.js.api.publish(subject, payload, options)?;
        while self.in_flight.len() >= self.window {
            self.complete_oldest();
        }
        let pending =
            self.js.client.request_later(call.subject(), call.headers(), call.payload().clone(), self.js.timeout)?;
        self.in_flight.push_back((pending, call));
        Ok(())
    }

    fn complete_oldest(&mut self) {
        if let Some((pending, call)) = self.in_flight.pop_front() {
            let ack = pending
                .wait()
                .map_err(Error::from)
                .and_then(|reply| Ok(call.decode(reply.headers.as_ref(), reply.payload)?));
            self.done.push(ack);
        }
    }

    /// Acks outstanding.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The acks that have come back so far (in publish order), without waiting.
    pub fn take_acks(&mut self) -> Vec<Result<PubAck, Error>> {
        std::mem::take(&mut self.done)
    }

    /// Waits for every outstanding ack; returns all acks not taken yet, in publish order.
    pub fn wait_all(&mut self) -> Vec<Result<PubAck, Error>> {
        while !self.in_flight.is_empty() {
            self.complete_oldest();
        }
        self.take_acks()
    }
}
