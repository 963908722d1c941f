//! `batch_replies`: which replies it holds, that every held reply is written when the batch ends, however it
//! ends, and that held replies leave before the thread waits on a client.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use nats_client::queue::{MessageQueue, Receiver};
use nats_client::{batch_replies, send_held_replies, Error, Message, PendingLimits, Publish};
use nats_proto::{Headers, Msg, Payload};

/// A client that records what it is asked to do, in order.
#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<String>>,
}

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    fn note(&self, what: String) {
        self.log.lock().unwrap().push(what);
    }
}

impl Publish for Recorder {
    fn publish(&self, subject: &[u8], _: Option<&Headers>, payload: Payload<'_>) -> Result<(), Error> {
        self.note(format!("now {} {}", String::from_utf8_lossy(subject), String::from_utf8_lossy(payload.as_slice())));
        Ok(())
    }

    fn publish_deferred(&self, subject: &[u8], _: Option<&Headers>, payload: Payload<'_>) -> Result<(), Error> {
        self.note(format!("held {} {}", String::from_utf8_lossy(subject), String::from_utf8_lossy(payload.as_slice())));
        Ok(())
    }

    fn send_deferred(&self) {
        self.note("send".to_owned());
    }
}

/// A request to `reply` whose answers go to `client`.
fn request(client: &Arc<Recorder>, reply: &str) -> Message {
    let weak: Weak<dyn Publish> = Arc::downgrade(&(client.clone() as Arc<dyn Publish>));
    Message::new(Msg::new("svc", 1, Some(reply.as_bytes()), None, "q"), Some(weak))
}

#[test]
fn replies_in_a_batch_are_held_and_sent_once_per_client_when_it_ends() {
    let (a, b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let out = batch_replies(|| {
        request(&a, "r.1").respond("1").unwrap();
        request(&b, "r.2").respond("2").unwrap();
        request(&a, "r.3").respond("3").unwrap();
        // Nothing was written yet.
        assert_eq!(a.take(), ["held r.1 1", "held r.3 3"]);
        assert_eq!(b.take(), ["held r.2 2"]);
        // An inner batch joins this one: its end writes nothing.
        batch_replies(|| request(&a, "r.4").respond("4").unwrap());
        assert_eq!(a.take(), ["held r.4 4"]);
        7
    });
    assert_eq!(out, 7);
    assert_eq!(a.take(), ["send"], "one write for all of a client's replies");
    assert_eq!(b.take(), ["send"]);

    // Outside a batch a reply leaves at once, and the next batch starts empty.
    request(&a, "r.5").respond("5").unwrap();
    batch_replies(|| {});
    assert_eq!(a.take(), ["now r.5 5"]);
}

#[test]
fn replies_from_other_threads_are_not_held() {
    let a = Arc::new(Recorder::default());
    batch_replies(|| {
        let msg = request(&a, "r.t");
        std::thread::spawn(move || msg.respond("t").unwrap()).join().unwrap();
        assert_eq!(a.take(), ["now r.t t"]);
    });
    assert!(a.take().is_empty(), "nothing was held, so nothing is sent");
}

#[test]
fn a_batch_that_unwinds_still_sends_what_it_held() {
    let a = Arc::new(Recorder::default());
    let unwound = std::panic::catch_unwind(|| {
        batch_replies(|| {
            request(&a, "r.p").respond("p").unwrap();
            panic!("handler failed");
        })
    });
    assert!(unwound.is_err());
    assert_eq!(a.take(), ["held r.p p", "send"]);
    // The thread's batch is closed again.
    request(&a, "r.q").respond("q").unwrap();
    assert_eq!(a.take(), ["now r.q q"]);
}

#[test]
fn a_reply_to_a_closed_client_fails_inside_a_batch_too() {
    let a = Arc::new(Recorder::default());
    let msg = request(&a, "r.c");
    drop(a);
    let result = batch_replies(|| msg.respond("c"));
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
}

/// A client whose `send_deferred` panics.
struct Failing;

impl Publish for Failing {
    fn publish(&self, _: &[u8], _: Option<&Headers>, _: Payload<'_>) -> Result<(), Error> {
        Ok(())
    }

    fn publish_deferred(&self, _: &[u8], _: Option<&Headers>, _: Payload<'_>) -> Result<(), Error> {
        Ok(())
    }

    fn send_deferred(&self) {
        panic!("the write failed");
    }
}

#[test]
fn a_failing_send_leaves_no_batch_open() {
    let failing: Arc<dyn Publish> = Arc::new(Failing);
    let weak = Arc::downgrade(&failing);
    let msg = Message::new(Msg::new("svc", 1, Some(b"r.f"), None, "q"), Some(weak));
    let respond = std::panic::AssertUnwindSafe(|| batch_replies(|| msg.respond("f").unwrap()));
    let unwound = std::panic::catch_unwind(respond);
    assert!(unwound.is_err());
    // Replies on this thread are no longer held.
    let a = Arc::new(Recorder::default());
    request(&a, "r.g").respond("g").unwrap();
    assert_eq!(a.take(), ["now r.g g"]);
}

#[test]
fn held_replies_leave_before_the_thread_waits_on_a_client() {
    let a = Arc::new(Recorder::default());
    batch_replies(|| {
        request(&a, "r.1").respond("1").unwrap();
        // Waiting for a reply (a slot) that does not come.
        let slot = nats_client::queue::Slot::<()>::new();
        assert!(slot.wait(Some(Instant::now() + Duration::from_millis(5))).is_none());
        assert_eq!(a.take(), ["held r.1 1", "send"]);
        // The batch is still open: the next reply is held again, and leaves when waiting for a message.
        request(&a, "r.2").respond("2").unwrap();
        let queue = Arc::new(MessageQueue::new(PendingLimits { messages: 8, bytes: 1 << 10 }));
        let mut rx = Receiver::new(queue);
        assert!(rx.next(Some(Instant::now() + Duration::from_millis(5))).is_err());
        assert_eq!(a.take(), ["held r.2 2", "send"]);
        // Nothing held, nothing sent.
        send_held_replies();
        assert!(a.take().is_empty());
    });
    assert!(a.take().is_empty(), "nothing was left for the end of the batch");
}
