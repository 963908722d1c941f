//! Asynchronous publishing on the async client: many publishes in flight, their acks awaited later, with a
//! window of outstanding acks for back-pressure.

use std::collections::VecDeque;

use bytes::Bytes;

use super::AsyncContext;
use crate::call::PublishOptions;
use crate::common::ack_of;
use crate::error::{AckResult, Error};
use nats_client::seam::AsyncClient;

/// Publishes with at most `window` acks outstanding. When the window is full, a publish first awaits the
/// oldest ack and hands it back; [`wait_all`](Self::wait_all) returns the rest: every publish gets exactly one
/// ack, in publish order. A publish cancelled while it awaits loses nothing: the ack stays in the window.
#[derive(Debug)]
pub struct AsyncPublishWindow<T: AsyncClient> {
    js: AsyncContext<T>,
    window: usize,
    in_flight: VecDeque<T::PendingReply>,
    /// An ack taken to make room for a publish that then could not be sent: handed back first.
    ready: Option<AckResult>,
}

impl<T: AsyncClient> AsyncContext<T> {
    /// A publisher keeping up to `window` acks outstanding (at least 1).
    pub fn publish_window(&self, window: usize) -> AsyncPublishWindow<T> {
        AsyncPublishWindow { js: self.clone(), window: window.max(1), in_flight: VecDeque::new(), ready: None }
    }
}

impl<T: AsyncClient> AsyncPublishWindow<T> {
    /// Publishes; awaits only when the window is full. `Ok(Some(ack))`: the oldest publish's ack, taken to
    /// make room; `Err`: this message could not be sent.
    pub async fn publish(&mut self, subject: &str, payload: impl Into<Bytes>) -> Result<Option<AckResult>, Error> {
        self.publish_with(subject, payload, &PublishOptions::new()).await
    }

    /// [`publish`](Self::publish) with de-duplication and expectations.
    pub async fn publish_with(
        &mut self,
        subject: &str,
        payload: impl Into<Bytes>,
        options: &PublishOptions,
    ) -> Result<Option<AckResult>, Error> {
        let call = self.js.api.publish(subject, payload, options)?;
        let full = self.ready.is_some() || self.in_flight.len() >= self.window;
        let oldest = if full { self.complete_oldest().await } else { None };
        match self.js.client.request_later(call.subject(), call.headers(), call.payload().into(), self.js.timeout) {
            Ok(pending) => {
                self.in_flight.push_back(pending);
                Ok(oldest)
            }
            Err(e) => {
                // Not sent: the ack taken to make room is handed back by the next call, not lost.
                self.ready = oldest;
                Err(e.into())
            }
        }
    }

    async fn complete_oldest(&mut self) -> Option<AckResult> {
        if let Some(ack) = self.ready.take() {
            return Some(ack);
        }
        // Awaited in place and removed only once done, so a cancelled await keeps it.
        let reply = self.in_flight.front_mut()?.await;
        self.in_flight.pop_front();
        Some(ack_of(reply))
    }

    /// Acks outstanding.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len() + usize::from(self.ready.is_some())
    }

    /// Awaits every outstanding ack; returns them in publish order.
    pub async fn wait_all(&mut self) -> Vec<AckResult> {
        let mut acks = Vec::with_capacity(self.in_flight.len());
        while let Some(ack) = self.complete_oldest().await {
            acks.push(ack);
        }
        acks
    }
}
