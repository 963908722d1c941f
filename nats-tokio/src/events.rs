//! Connection events as a `Stream`.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use nats_client::{Event, EventReceiver};

/// Connection events as they happen. It ends after [`Event::Closed`]. Up to 256 events wait; more are
/// dropped while the stream lags.
#[derive(Debug)]
pub struct Events {
    rx: EventReceiver,
}

impl Events {
    pub(crate) fn new(rx: EventReceiver) -> Self {
        Self { rx }
    }

    /// The next event; `None` once the connection is closed and every event was taken.
    pub async fn next(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.rx.poll_recv(cx)).await
    }

    /// The next event if one is waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}
