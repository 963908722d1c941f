//! `nats_blocking::Client` as a [`TestClient`]: every call is the client's own.

use std::time::Duration;

use nats_blocking::{Client, ConnectOptions, Error, Message, Subscriber};
use nats_proto::{ServerInfo, Statistics};

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
}

impl TestSubscription for Subscriber {
    fn try_next(&mut self) -> Option<Message> {
        Subscriber::try_next(self)
    }

    fn unsubscribe(&mut self) -> Result<(), Error> {
        Subscriber::unsubscribe(self)
    }
}
