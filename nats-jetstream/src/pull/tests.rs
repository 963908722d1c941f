//! Unit tests of the pull-consumer state machine.

use super::*;
use bytes::Bytes;
use nats_proto::{HeaderBlock, Msg, Subject};

#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

fn consume(config: ConsumeConfig) -> Result<PullConsumer<Msg>, JetStreamError> {
    PullConsumer::consume(config, t0())
}

fn status(line: &str) -> Msg {
    Msg::new(
        Subject::from_bytes(Bytes::from_static(b"_INBOX.p")),
        1,
        None,
        (Some(HeaderBlock::parse(Bytes::from(format!("NATS/1.0 {line}\r\n\r\n"))).unwrap())).as_ref(),
        Bytes::new(),
    )
}

#[test]
fn heartbeat_defaults() {
    assert_eq!(default_heartbeat(Duration::from_secs(30)), Duration::from_secs(15));
    assert_eq!(default_heartbeat(Duration::from_secs(1)), Duration::from_millis(500));
    assert_eq!(default_heartbeat(Duration::from_millis(200)), Duration::from_millis(500));
    assert_eq!(default_heartbeat(Duration::from_secs(120)), Duration::from_secs(30));
    assert_eq!(half_up(5), 3);
    assert_eq!(half_up(1), 1);
    assert_eq!(half_up(0), 0);
}

#[test]
fn consume_config_rules() {
    let both = ConsumeConfig { max_messages: Some(1), max_bytes: Some(1), ..Default::default() };
    assert!(matches!(consume(both), Err(JetStreamError::InvalidConfig { .. })));
    assert!(consume(ConsumeConfig { max_messages: Some(0), ..Default::default() }).is_err());
    assert!(consume(ConsumeConfig { max_bytes: Some(0), ..Default::default() }).is_err());
    assert!(consume(ConsumeConfig { expires: Duration::from_millis(999), ..Default::default() }).is_err());
    let hb = |s| ConsumeConfig {
        expires: Duration::from_secs(10),
        idle_heartbeat: Some(Duration::from_secs(s)),
        ..Default::default()
    };
    assert!(consume(hb(5)).is_ok());
    assert!(consume(hb(6)).is_err());
    assert!(consume(hb(0)).is_err());
    assert!(
        consume(ConsumeConfig { max_messages: Some(4), threshold_messages: Some(5), ..Default::default() }).is_err()
    );
    assert!(consume(ConsumeConfig { threshold_bytes: Some(5), ..Default::default() }).is_err());
    assert!(consume(ConsumeConfig { max_bytes: Some(4), threshold_bytes: Some(5), ..Default::default() }).is_err());

    let mut c = consume(ConsumeConfig::default()).unwrap();
    assert_eq!(c.idle_heartbeat(), Some(Duration::from_secs(15)));
    let pull = c.poll_pull().unwrap();
    assert_eq!((pull.batch, pull.max_bytes, pull.no_wait), (500, 0, false));
    assert!(!c.is_fetch());

    let mut c = consume(ConsumeConfig { max_bytes: Some(1000), ..Default::default() }).unwrap();
    let pull = c.poll_pull().unwrap();
    assert_eq!((pull.batch, pull.max_bytes), (1_000_000, 1000));
    // Limited by bytes: messages are not counted.
    assert_eq!((c.pending_messages(), c.pending_bytes()), (0, 1000));
}

#[test]
fn fetch_config_rules() {
    let now = t0();
    assert!(PullConsumer::<Msg>::fetch(FetchConfig::batch(0), now).is_err());
    assert!(PullConsumer::<Msg>::fetch(FetchConfig { max_bytes: Some(0), ..FetchConfig::batch(1) }, now).is_err());
    assert!(PullConsumer::<Msg>::fetch(FetchConfig::batch(1).with_expires(Duration::ZERO), now).is_err());
    assert!(PullConsumer::<Msg>::fetch(FetchConfig { expires: None, ..FetchConfig::batch(1) }, now).is_err());
    let hb_too_big = FetchConfig { idle_heartbeat: Some(Duration::from_secs(20)), ..FetchConfig::batch(1) };
    assert!(PullConsumer::<Msg>::fetch(hb_too_big, now).is_err());
    let hb_no_wait = FetchConfig { idle_heartbeat: Some(Duration::from_secs(1)), ..FetchConfig::no_wait(1) };
    assert!(PullConsumer::<Msg>::fetch(hb_no_wait, now).is_err());

    // Heartbeats only when expires is over 30 s.
    let f = PullConsumer::<Msg>::fetch(FetchConfig::batch(5), now).unwrap();
    assert_eq!(f.idle_heartbeat(), None);
    let f = PullConsumer::<Msg>::fetch(FetchConfig::batch(5).with_expires(Duration::from_secs(31)), now).unwrap();
    assert_eq!(f.idle_heartbeat(), Some(Duration::from_millis(15_500)));
    let f = PullConsumer::<Msg>::fetch(FetchConfig::batch(5).with_expires(Duration::from_secs(90)), now).unwrap();
    assert_eq!(f.idle_heartbeat(), Some(MAX_HEARTBEAT));
    let explicit = FetchConfig { idle_heartbeat: Some(Duration::from_secs(2)), ..FetchConfig::batch(1) };
    assert_eq!(PullConsumer::<Msg>::fetch(explicit, now).unwrap().idle_heartbeat(), Some(Duration::from_secs(2)));

    let mut f = PullConsumer::<Msg>::fetch(FetchConfig::no_wait(3), now).unwrap();
    assert!(f.is_fetch());
    assert_eq!(f.poll_timeout(), Some(now + NO_WAIT_TIMEOUT));
    let pull = f.poll_pull().unwrap();
    assert_eq!(
        (pull.batch, pull.no_wait, pull.expires, pull.idle_heartbeat),
        (3, true, Duration::ZERO, Duration::ZERO)
    );
    assert!(f.poll_pull().is_none());

    let mut f = PullConsumer::<Msg>::fetch(FetchConfig::bytes(100), now).unwrap();
    let pull = f.poll_pull().unwrap();
    assert_eq!((pull.batch, pull.max_bytes), (1_000_000, 100));
    let next = FetchConfig::next();
    assert_eq!((next.batch, next.expires), (1, Some(DEFAULT_EXPIRES)));
}

#[test]
fn fetch_end_errors() {
    assert!(FetchEnd::Status(Control::ConsumerDeleted).is_error());
    assert!(FetchEnd::Status(Control::NoResponders).is_error());
    assert!(!FetchEnd::Status(Control::NoMessages).is_error());
    assert!(FetchEnd::MissingHeartbeat.is_error());
    assert!(!FetchEnd::Deadline.is_error());
    assert!(!FetchEnd::BatchFilled.is_error());
}

#[test]
fn flow_control_and_no_messages_are_ignored_by_consume() {
    let mut c = consume(ConsumeConfig { max_messages: Some(4), ..Default::default() }).unwrap();
    c.poll_pull().unwrap();
    c.handle_message(t0(), status("100 FlowControl Request"));
    c.handle_message(t0(), status("404 No Messages"));
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.pending_messages(), 4);
}

#[test]
fn stop_is_final() {
    let mut c = consume(ConsumeConfig::default()).unwrap();
    c.stop();
    c.stop();
    assert_eq!(c.poll_event(), Some(PullEvent::Terminated { reason: Termination::Stopped }));
    assert_eq!(c.poll_event(), None);
    assert!(c.poll_pull().is_none());
    assert_eq!(c.poll_timeout(), None);
    assert!(c.is_finished());
    let mut f = PullConsumer::<Msg>::fetch(FetchConfig::next(), t0()).unwrap();
    f.stop();
    assert_eq!(f.poll_event(), Some(PullEvent::FetchDone { reason: FetchEnd::Stopped }));
}

#[test]
fn a_bytes_limited_consume_pulls_full_batches_after_a_pull_ends_on_its_bytes() {
    // Found by the simulator: the server ends a pull whose bytes are used up without a status. Had its
    // unserved batch stayed counted, the next pull would have asked for only as many messages as arrived, and
    // a pull then filled by that small batch would have left bytes counted that never came.
    let now = t0();
    let mut c = consume(ConsumeConfig { max_bytes: Some(100), ..Default::default() }).unwrap();
    let first = c.poll_pull().unwrap();
    assert_eq!((first.batch, first.max_bytes), (1_000_000, 100));
    // Four messages of 25 bytes (subject 5 + payload 20) use the pull's bytes exactly.
    for _ in 0..4 {
        c.handle_message(now, Msg::new("a.b.c", 1, None, None, [b'x'; 20]));
    }
    assert_eq!((c.pending_messages(), c.pending_bytes()), (0, 0));
    let next = c.poll_pull().unwrap();
    assert_eq!((next.batch, next.max_bytes), (1_000_000, 100), "a full batch again");
}

#[test]
fn a_pinned_consume_sends_its_pin_and_forgets_it_on_423() {
    let group = PriorityGroup::new("jobs").min_pending(3).min_ack_pending(2).priority(4);
    let config = ConsumeConfig { max_messages: Some(4), priority_group: Some(group), ..Default::default() };
    let mut c = consume(config).unwrap();
    let first = c.poll_pull().unwrap();
    assert_eq!((first.group.as_str(), first.min_pending, first.min_ack_pending, first.priority), ("jobs", 3, 2, 4));
    assert!(first.id.is_empty(), "no pin yet");
    let block = HeaderBlock::parse(Bytes::from_static(b"NATS/1.0\r\nNats-Pin-Id: p1\r\n\r\n")).unwrap();
    let pinned = Msg::new("s.x", 1, Some(&b"$JS.ACK.S.c.1.1.1.0.0"[..]), Some(&block), "m");
    for _ in 0..3 {
        c.handle_message(t0(), pinned.clone());
    }
    assert_eq!(c.pin_id(), Some("p1"));
    assert_eq!(c.poll_pull().map(|p| p.id), Some("p1".to_owned()), "later pulls carry the pin");
    c.handle_message(t0(), status("423 Nats-Pin-Id mismatch"));
    assert_eq!(c.pin_id(), None);
    assert!(c.poll_pull().is_some_and(|p| p.id.is_empty()), "a fresh pull competes for the pin");

    // Refused before anything is sent.
    let bad = ConsumeConfig { priority_group: Some(PriorityGroup::new("a.b")), ..Default::default() };
    assert!(matches!(consume(bad), Err(JetStreamError::InvalidConfig { .. })));
    let fetch = PullConsumer::<Msg>::fetch(FetchConfig::batch(1).with_priority_group(PriorityGroup::new("")), t0());
    assert!(matches!(fetch, Err(JetStreamError::InvalidConfig { .. })));
    // A fetch refused its pin ends in error, and forgets the pin.
    let mut f =
        PullConsumer::<Msg>::fetch(FetchConfig::batch(1).with_priority_group(PriorityGroup::new("g")), t0()).unwrap();
    f.set_pin_id(Some("old".into()));
    assert_eq!(f.poll_pull().map(|p| p.id), Some("old".to_owned()));
    f.handle_message(t0(), status("423 Nats-Pin-Id mismatch"));
    assert!(matches!(f.poll_event(), Some(PullEvent::FetchDone { reason }) if reason.is_error()));
    assert_eq!(f.pin_id(), None);
}
