//! This client's side of the one seam ([`nats_client::seam`]): what `micro` and JetStream build on.

use std::time::{Duration, Instant};

use nats_client::seam;
use nats_client::{EventReceiver, Message};
use nats_proto::{Headers, Payload};

use crate::driver::publish;
use crate::inline::refuse_on_reader;
use crate::{Client, Error, InlineSubscription, PendingReply, Responses, Subscriber};

impl seam::Client for Client {
    type Subscription = Subscriber;
    type PendingReply = PendingReply;
    type Replies = Responses;

    fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&Headers>,
        payload: Payload<'_>,
    ) -> Result<(), Error> {
        publish(self.shared(), subject.as_bytes(), reply.map(str::as_bytes), headers, payload)
    }

    fn request(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<Message, Error> {
        self.send_request(subject, headers, payload, timeout)
    }

    fn request_later(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<PendingReply, Error> {
        self.send_request_later(subject, headers, payload, timeout)
    }

    fn request_many(
        &self,
        subject: &str,
        payload: Payload<'_>,
        timeout: Duration,
        stall: Option<Duration>,
        max: Option<usize>,
    ) -> Result<Responses, Error> {
        Client::request_many(self, subject, payload, timeout, stall, max)
    }

    fn subscribe(&self, subject: &str, queue: Option<&str>) -> Result<Subscriber, Error> {
        self.subscribe_inner(subject, queue)
    }

    fn drain_subscription(&self, sid: u64) -> Result<(), Error> {
        Client::drain_subscription(self, sid)
    }

    fn flush(&self) -> Result<(), Error> {
        Client::flush(self)
    }

    fn new_inbox(&self) -> String {
        Client::new_inbox(self)
    }

    fn events(&self) -> EventReceiver {
        Client::events(self)
    }

    fn on_reader_thread(&self) -> bool {
        refuse_on_reader(self.shared()).is_err()
    }

    fn subscribe_inline(
        &self,
        subject: &str,
        queue: Option<&str>,
        handler: Box<dyn FnMut(Message) + Send>,
    ) -> Result<Box<dyn seam::InlineSubscription>, Error> {
        Ok(Box::new(InlineSubscription::subscribe(self.shared(), subject, queue, handler)?))
    }
}

impl seam::InlineSubscription for InlineSubscription {
    fn sid(&self) -> u64 {
        InlineSubscription::sid(self)
    }

    fn is_ended(&self) -> bool {
        InlineSubscription::is_ended(self)
    }

    fn wait_ended(&self, deadline: Option<Instant>) -> bool {
        InlineSubscription::wait_ended(self, deadline)
    }
}

impl seam::Subscription for Subscriber {
    fn sid(&self) -> u64 {
        Subscriber::sid(self)
    }

    fn next_message(&mut self) -> Option<Message> {
        self.next()
    }

    fn next_timeout(&mut self, timeout: Duration) -> Result<Message, Error> {
        Subscriber::next_timeout(self, timeout)
    }

    fn dropped(&self) -> u64 {
        Subscriber::dropped(self)
    }

    fn pending(&self) -> usize {
        Subscriber::pending(self).0
    }
}

impl seam::PendingReply for PendingReply {
    fn wait(self) -> Result<Message, Error> {
        PendingReply::wait(self)
    }
}
