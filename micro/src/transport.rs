//! The seams between a service and a client: what a service needs, blocking and async. Implemented for
//! `nats-blocking` (feature `blocking`) and `nats-tokio` (feature `async`, which needs no tokio runtime:
//! `nats-tokio` runs on smol too).

use std::task::{Context, Poll};

use nats_client::{Error, Message};

/// A blocking client, as a service uses it.
pub trait Transport: Clone + Send + Sync + 'static {
    /// A subscription of this client.
    type Subscription: Subscription;
    /// Subscribes, in `queue` if given.
    fn subscribe(&self, subject: &str, queue: Option<&str>) -> Result<Self::Subscription, Error>;
    /// Drains the subscription with this id: no new messages; those already sent are still delivered.
    fn drain_subscription(&self, sid: u64) -> Result<(), Error>;
    /// Returns once the server has processed everything sent before (subscriptions included).
    fn flush(&self) -> Result<(), Error>;
}

/// A blocking subscription.
pub trait Subscription: Send + 'static {
    /// Its id.
    fn sid(&self) -> u64;
    /// The next message, blocking; `None` once the subscription has ended.
    fn next_message(&mut self) -> Option<Message>;
    /// Messages dropped because the service fell behind.
    fn dropped(&self) -> u64;
    /// Whether messages already received wait to be taken (the next `next_message` returns at once). By
    /// default `false`: the service then answers each request in a write of its own.
    fn has_pending(&self) -> bool {
        false
    }
}

/// An async client, as a service uses it.
pub trait AsyncTransport: Clone + Send + Sync + 'static {
    /// A subscription of this client.
    type Subscription: AsyncSubscription;
    /// Subscribes, in `queue` if given.
    fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> impl std::future::Future<Output = Result<Self::Subscription, Error>> + Send;
    /// Drains the subscription with this id: no new messages; those already sent are still delivered.
    fn drain_subscription(&self, sid: u64) -> Result<(), Error>;
    /// Completes once the server has processed everything sent before (subscriptions included).
    fn flush(&self) -> impl std::future::Future<Output = Result<(), Error>> + Send;
}

/// An async subscription.
pub trait AsyncSubscription: Send + Unpin + 'static {
    /// Its id.
    fn sid(&self) -> u64;
    /// The next message, or `Ready(None)` once the subscription has ended.
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>>;
    /// Messages dropped because the service fell behind.
    fn dropped(&self) -> u64;
}

#[cfg(feature = "blocking")]
mod blocking_impl {
    use super::*;

    impl Transport for nats_blocking::Client {
        type Subscription = nats_blocking::Subscriber;

        fn subscribe(&self, subject: &str, queue: Option<&str>) -> Result<Self::Subscription, Error> {
            match queue {
                Some(q) => self.queue_subscribe(subject, q),
                None => nats_blocking::Client::subscribe(self, subject),
            }
        }

        fn drain_subscription(&self, sid: u64) -> Result<(), Error> {
            nats_blocking::Client::drain_subscription(self, sid)
        }

        fn flush(&self) -> Result<(), Error> {
            nats_blocking::Client::flush(self)
        }
    }

    impl Subscription for nats_blocking::Subscriber {
        fn sid(&self) -> u64 {
            nats_blocking::Subscriber::sid(self)
        }

        fn next_message(&mut self) -> Option<Message> {
            self.next()
        }

        fn dropped(&self) -> u64 {
            nats_blocking::Subscriber::dropped(self)
        }

        fn has_pending(&self) -> bool {
            self.pending().0 > 0
        }
    }
}

#[cfg(feature = "async")]
mod async_impl {
    use std::pin::Pin;

    use futures_core::Stream;

    use super::*;

    impl AsyncTransport for nats_tokio::Client {
        type Subscription = nats_tokio::Subscriber;

        async fn subscribe(&self, subject: &str, queue: Option<&str>) -> Result<Self::Subscription, Error> {
            match queue {
                Some(q) => self.queue_subscribe(subject, q).await,
                None => nats_tokio::Client::subscribe(self, subject).await,
            }
        }

        fn drain_subscription(&self, sid: u64) -> Result<(), Error> {
            // The async method only locks and encodes: completing it here needs no runtime.
            poll_now(nats_tokio::Client::drain_subscription(self, sid))
        }

        async fn flush(&self) -> Result<(), Error> {
            nats_tokio::Client::flush(self).await
        }
    }

    impl AsyncSubscription for nats_tokio::Subscriber {
        fn sid(&self) -> u64 {
            nats_tokio::Subscriber::sid(self)
        }

        fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
            Pin::new(self).poll_next(cx)
        }

        fn dropped(&self) -> u64 {
            nats_tokio::Subscriber::dropped(self)
        }
    }

    /// Completes a future that never waits.
    fn poll_now<T>(fut: impl std::future::Future<Output = Result<T, Error>>) -> Result<T, Error> {
        let mut fut = std::pin::pin!(fut);
        match fut.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(Error::Timeout),
        }
    }
}
