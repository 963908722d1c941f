//! Asynchronous publishing: many publishes in flight at once, their acks taken later, with a window of
//! outstanding acks for back-pressure.

use std::collections::VecDeque;

use bytes::Bytes;

use super::Context;
use crate::call::PublishOptions;
use crate::common::ack_of;
use crate::error::{AckResult, Error};
use nats_client::seam::{Client, PendingReply};

/// Publishes with at most `window` acks outstanding. When the window is full, a publish first waits for the
/// oldest ack and hands it back; [`wait_all`](Self::wait_all) returns the rest. So every publish gets exactly
/// one ack, in publish order, an error included, and nothing piles up if the acks are ignored.
#[derive(Debug)]
pub struct PublishWindow<T: Client> {
    js: Context<T>,
    window: usize,
    in_flight: VecDeque<T::PendingReply>,
    /// An ack taken to make room for a publish that then could not be sent: handed back first.
    ready: Option<AckResult>,
}

impl<T: Client> Context<T> {
    /// A publisher keeping up to `window` acks outstanding (at least 1). Small windows are often fastest:
    /// the server acks in order anyway.
    pub fn publish_window(&self, window: usize) -> PublishWindow<T> {
        PublishWindow { js: self.clone(), window: window.max(1), in_flight: VecDeque::new(), ready: None }
    }
}

impl<T: Client> PublishWindow<T> {
    /// Publishes without waiting for its ack. `Ok(Some(ack))`: the window was full and this is the oldest
    /// publish's ack; `Err`: this message could not be sent.
    pub fn publish(&mut self, subject: &str, payload: impl Into<Bytes>) -> Result<Option<AckResult>, Error> {
        self.publish_with(subject, payload, &PublishOptions::new())
    }

    /// [`publish`](Self::publish) with de-duplication and expectations.
    pub fn publish_with(
        &mut self,
        subject: &str,
        payload: impl Into<Bytes>,
        options: &PublishOptions,
    ) -> Result<Option<AckResult>, Error> {
        let call = self.js.api.publish(subject, payload, options)?;
        let full = self.ready.is_some() || self.in_flight.len() >= self.window;
        let oldest = if full { self.complete_oldest() } else { None };
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

    fn complete_oldest(&mut self) -> Option<AckResult> {
        if let Some(ack) = self.ready.take() {
            return Some(ack);
        }
        self.in_flight.pop_front().map(|pending| ack_of(pending.wait()))
    }

    /// Acks outstanding.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len() + usize::from(self.ready.is_some())
    }

    /// Waits for every outstanding ack; returns them in publish order.
    pub fn wait_all(&mut self) -> Vec<AckResult> {
        std::iter::from_fn(|| self.complete_oldest()).collect()
    }
}
