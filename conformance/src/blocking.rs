//! `nats_blocking::Client` as a [`TestClient`]: every call is the client's own.

use std::time::Duration;

use nats_blocking::{Client, ConnectOptions, Error, Message, PendingLimits, Subscriber};
use nats_proto::{Headers, Payload, ServerInfo, Statistics};

use crate::{TestClient, TestSubscription};

impl TestClient for Client {
    const NAME: &'static str = "nats-blocking";

    fn connect(options: ConnectOptions) -> Result<Self, Error> {
        Client::connect(options)
    }

    fn flush_timeout(&self, timeout: Duration) -> Result<(), Error> {
        Client::flush_timeout(self, timeout)
    }

    fn drain(&self) -> Result<(), Error> {
        Client::drain(self)
    }

    fn close(&self) {
        Client::close(self);
    }

    fn is_closed(&self) -> bool {
        Client::is_closed(self)
    }

    fn statistics(&self) -> Statistics {
        Client::statistics(self)
    }

    fn server_info(&self) -> Option<ServerInfo> {
        Client::server_info(self)
    }

    fn max_payload(&self) -> usize {
        Client::max_payload(self)
    }

    fn request_default(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
    ) -> Result<Message, Error> {
        match headers {
            Some(headers) => Client::request_with_headers(self, subject, headers, payload),
            None => Client::request(self, subject, payload),
        }
    }
}

impl TestSubscription for Subscriber {
    fn try_next(&mut self) -> Option<Message> {
        Subscriber::try_next(self)
    }

    fn unsubscribe(&mut self) -> Result<(), Error> {
        Subscriber::unsubscribe(self)
    }

    fn unsubscribe_after(&mut self, max: u64) -> Result<(), Error> {
        Subscriber::unsubscribe_after(self, max)
    }

    fn pending_messages_and_bytes(&self) -> (usize, usize) {
        Subscriber::pending(self)
    }

    fn set_pending_limits(&mut self, limits: PendingLimits) {
        Subscriber::set_pending_limits(self, limits);
    }
}
