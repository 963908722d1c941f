//! Asynchronous publishing on the async client: many publishes in flight, their acks awaited later, with a
//! window of outstanding acks for back-pressure.

use std::collections::VecDeque;

use bytes::Bytes;

use super::AsyncContext;
use crate::async_transport::AsyncTransport;
use crate::call::{Call, PublishOptions};
use crate::model::PubAck;
use crate::transport::Error;

/// Publishes with at most `window` acks outstanding: when the window is full, a publish first awaits the
/// oldest ack. Acks come back in publish order; every publish gets exactly one, an error included.
#[derive(Debug)]
pub struct AsyncPublishWindow<T: AsyncTransport> {
    js: AsyncContext<T>,
    window: usize,
    in_flight: VecDeque<(T::Pending, Call<PubAck>)>,
    done: Vec<Result<PubAck, Error>>,
}

impl<T: AsyncTransport> AsyncContext<T> {
    /// A publisher keeping up to `window` acks outstanding (at least 1).
    pub fn publish_window(&self, window: usize) -> AsyncPublishWindow<T> {
        AsyncPublishWindow { js: self.clone(), window: window.max(1), in_flight: VecDeque::new(), done: Vec::new() }
    }
}

impl<T: AsyncTransport> AsyncPublishWindow<T> {
    /// Publishes; waits only when the window is full (for the oldest ack).
    pub async fn publish(&mut self, subject: &str, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.publish_with(subject, payload, &PublishOptions::new()).await
    }

    /// [`publish`](Self::publish) with de-duplication and expectations.
    pub async fn publish_with(
        &mut self,
        subject: &str,
        payload: impl Into<Bytes>,
        options: &PublishOptions,
    ) -> Result<(), Error> {
        let call = self.js.api.publish(subject, payload, options)?;
        while self.in_flight.len() >= self.window {
            self.complete_oldest().await;
        }
        let pending =
            self.js.client.request_later(call.subject(), call.headers(), call.payload().clone(), self.js.timeout)?;
        self.in_flight.push_back((pending, call));
        Ok(())
    }

    async fn complete_oldest(&mut self) {
        if let Some((pending, call)) = self.in_flight.pop_front() {
            let ack = match pending.await {
                Ok(reply) => call.decode(reply.headers.as_ref(), reply.payload).map_err(Error::from),
                Err(e) => Err(Error::from(e)),
            };
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

    /// Awaits every outstanding ack; returns all acks not taken yet, in publish order.
    pub async fn wait_all(&mut self) -> Vec<Result<PubAck, Error>> {
        while !self.in_flight.is_empty() {
            self.complete_oldest().await;
        }
        self.take_acks()
    }
}
