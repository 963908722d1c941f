//! The sans-IO state machines of `nats-jetstream` driven with a simulated clock: the pull consumer (consume,
//! fetch, next), the ordered-consumer tracker, ack metadata, the status classifier and Key/Value rules, plus
//! property tests (the ack parser never panics; the pull machine's invariants hold under random input).

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use nats_jetstream::ack::{AckMetadata, AckParseError};
use nats_jetstream::kv::{self, Operation, WatchTracker};
use nats_jetstream::model::{AckPolicy, DeliverPolicy, PullRequest};
use nats_jetstream::ordered::{Delivery, OrderedConfig, OrderedConsumer, ResetReason};
use nats_jetstream::pull::{ConsumeConfig, FetchConfig, FetchEnd, PullConsumer, PullEvent, Termination};
use nats_jetstream::status::{Control, Incoming, Kind, Limit, Pending};
use nats_proto::{HeaderBlock, Msg, StatusCode, Subject};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------------------
// Simulated clock and message builders
// ---------------------------------------------------------------------------------------------------------

/// The one place these tests read the system clock; every other instant is `t0() + offset`.
#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

/// A simulated clock.
struct Clock {
    start: Instant,
    now: Instant,
}

impl Clock {
    fn new() -> Self {
        let start = t0();
        Clock { start, now: start }
    }

    fn advance(&mut self, d: Duration) -> Instant {
        self.now += d;
        self.now
    }

    fn at(&self, offset: Duration) -> Instant {
        self.start + offset
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn subject(s: &str) -> Subject {
    Subject::from_bytes(Bytes::copy_from_slice(s.as_bytes()))
}

/// A user message of stream sequence `seq` with a payload of `size` bytes.
fn user(seq: u64, size: usize) -> Msg {
    Msg::new(
        subject("orders.new"),
        1,
        (Some(subject(&format!("$JS.ACK.ORDERS.c.1.{seq}.{seq}.1700000000000000000.0"))))
            .as_ref()
            .map(|r| r.as_bytes()),
        None,
        Bytes::from(vec![b'x'; size]),
    )
}

/// A status message `NATS/1.0 <line>` with optional pending headers.
fn status(line: &str, pending: Option<(u64, u64)>) -> Msg {
    let extra =
        pending.map(|(m, b)| format!("Nats-Pending-Messages: {m}\r\nNats-Pending-Bytes: {b}\r\n")).unwrap_or_default();
    Msg::new(
        subject("_INBOX.pull"),
        1,
        None,
        (Some(HeaderBlock::parse(Bytes::from(format!("NATS/1.0 {line}\r\n{extra}\r\n"))).unwrap())).as_ref(),
        Bytes::new(),
    )
}

fn heartbeat() -> Msg {
    status("100 Idle Heartbeat", None)
}

fn events(p: &mut PullConsumer<Msg>) -> Vec<PullEvent<Msg>> {
    std::iter::from_fn(|| p.poll_event()).collect()
}

fn delivered(events: &[PullEvent<Msg>]) -> usize {
    events.iter().filter(|e| matches!(e, PullEvent::Message(_))).count()
}

fn consume_with(max_messages: u64, expires: Duration, clock: &Clock) -> PullConsumer<Msg> {
    let config = ConsumeConfig { max_messages: Some(max_messages), expires, ..Default::default() };
    PullConsumer::consume(config, clock.now).expect("valid config")
}

// ---------------------------------------------------------------------------------------------------------
// Consume
// ---------------------------------------------------------------------------------------------------------

#[test]
fn consume_repulls_below_threshold() {
    let clock = Clock::new();
    let mut c = consume_with(10, secs(30), &clock);
    let first = c.poll_pull().expect("initial pull");
    assert_eq!(first.batch, 10);
    assert_eq!(first.expires, secs(30));
    assert_eq!(first.idle_heartbeat, secs(15));
    assert_eq!(c.pending_messages(), 10);

    // Threshold ceil(10 / 2) = 5: pulls once fewer than 5 are pending.
    for seq in 1..=5 {
        c.handle_message(clock.now, user(seq, 10));
        assert!(c.poll_pull().is_none(), "no pull at pending {}", c.pending_messages());
    }
    assert_eq!(c.pending_messages(), 5);
    c.handle_message(clock.now, user(6, 10));
    assert_eq!(c.pending_messages(), 4);
    let refill = c.poll_pull().expect("threshold pull");
    assert_eq!(refill.batch, 6);
    assert_eq!(c.pending_messages(), 10);
    // At most one threshold pull per crossing.
    assert!(c.poll_pull().is_none());
    assert_eq!(delivered(&events(&mut c)), 6);
}

#[test]
fn consume_with_max_messages_one() {
    let clock = Clock::new();
    let mut c = consume_with(1, secs(30), &clock);
    for seq in 1..=5 {
        let pull = c.poll_pull().expect("a pull per message");
        assert_eq!(pull.batch, 1);
        assert!(c.poll_pull().is_none());
        c.handle_message(clock.now, user(seq, 3));
        assert_eq!(c.pending_messages(), 0);
    }
    assert_eq!(delivered(&events(&mut c)), 5);
}

#[test]
fn pending_reconciles_with_408_and_409_headers() {
    let clock = Clock::new();
    let mut c = consume_with(10, secs(30), &clock);
    c.poll_pull().unwrap(); // request A: 10
    for seq in 1..=6 {
        c.handle_message(clock.now, user(seq, 1));
    }
    let b = c.poll_pull().unwrap(); // request B: 6
    assert_eq!(b.batch, 6);
    assert_eq!(c.pending_messages(), 10);

    // A expires having served 6 of its 10: the 408 says 4 were left.
    c.handle_message(clock.now, status("408 Request Timeout", Some((4, 0))));
    assert_eq!(c.pending_messages(), 6);
    // B serves one message, arriving right before its own 408, which then says 5 were left.
    c.handle_message(clock.now, user(7, 1));
    c.handle_message(clock.now, status("408 Request Timeout", Some((5, 0))));
    assert_eq!(c.pending_messages(), 0, "every request closed: nothing pending");
    assert!(events(&mut c).iter().all(|e| matches!(e, PullEvent::Message(_))), "408s are quiet");

    // 409s with pending headers count the same way.
    assert_eq!(c.poll_pull().unwrap().batch, 10);
    c.handle_message(clock.now, status("409 Batch Completed", Some((3, 0))));
    assert_eq!(c.pending_messages(), 7);
    c.handle_message(clock.now, status("409 Message Size Exceeds MaxBytes", Some((7, 0))));
    assert_eq!(c.pending_messages(), 0);
    assert!(events(&mut c).is_empty());
}

#[test]
fn late_message_after_408_never_underflows() {
    let clock = Clock::new();
    let mut c = consume_with(4, secs(30), &clock);
    c.poll_pull().unwrap();
    // The 408 claims everything was left unserved, yet one message arrives after it.
    c.handle_message(clock.now, status("408 Request Timeout", Some((4, 0))));
    assert_eq!(c.pending_messages(), 0);
    c.handle_message(clock.now, user(1, 5));
    assert_eq!(c.pending_messages(), 0);
    // A 408 announcing more than pending saturates at zero too.
    c.handle_message(clock.now, status("408 Request Timeout", Some((100, 100))));
    assert_eq!((c.pending_messages(), c.pending_bytes()), (0, 0));
    assert_eq!(c.poll_pull().unwrap().batch, 4);
    assert_eq!(delivered(&events(&mut c)), 1);
}

#[test]
fn max_bytes_accounting() {
    let clock = Clock::new();
    let config = ConsumeConfig { max_bytes: Some(1000), ..Default::default() };
    let mut c = PullConsumer::<Msg>::consume(config, clock.now).unwrap();
    let pull = c.poll_pull().unwrap();
    assert_eq!((pull.batch, pull.max_bytes), (1_000_000, 1000));

    let msg = user(1, 100);
    let size = msg.wire_size();
    assert_eq!(size, ("orders.new".len() + msg.reply().unwrap().len() + 100) as u64);
    c.handle_message(clock.now, msg);
    assert_eq!(c.pending_bytes(), 1000 - size);
    assert!(c.poll_pull().is_none(), "still above half of the bytes");

    // Below ceil(1000 / 2) = 500 bytes pending: pull the difference.
    let mut sent = size;
    let mut seq = 2;
    while 1000 - sent >= 500 {
        c.handle_message(clock.now, user(seq, 100));
        sent += size;
        seq += 1;
    }
    let pending_before = c.pending_bytes();
    assert_eq!(pending_before, 1000 - sent);
    let refill = c.poll_pull().expect("bytes threshold pull");
    assert_eq!(refill.max_bytes as u64, 1000 - pending_before);
    // Only bytes limit a bytes-limited consume: the full batch again, never one shrunk by what arrived.
    assert_eq!(refill.batch as u64, 1_000_000);
    assert_eq!(c.pending_messages(), 0);
    assert_eq!(c.pending_bytes(), 1000);

    // The server ends a request with bytes left over: those bytes are released.
    c.handle_message(clock.now, status("409 Message Size Exceeds MaxBytes", Some((999_000, 300))));
    assert_eq!(c.pending_bytes(), 700);
}

#[test]
fn heartbeat_missed_after_two_intervals_and_reset_by_any_traffic() {
    let mut clock = Clock::new();
    let mut c = consume_with(10, secs(10), &clock); // heartbeat 5 s
    c.poll_pull().unwrap();
    assert_eq!(c.poll_timeout(), Some(clock.at(secs(10))));

    // A heartbeat at 8 s moves the deadline to 18 s.
    c.handle_message(clock.advance(secs(8)), heartbeat());
    assert_eq!(c.poll_timeout(), Some(clock.at(secs(18))));
    // A user message at 15 s moves it to 25 s.
    c.handle_message(clock.advance(secs(7)), user(1, 1));
    assert_eq!(c.poll_timeout(), Some(clock.at(secs(25))));
    // A quiet 408 at 24 s too: any traffic counts.
    c.handle_message(clock.advance(secs(9)), status("408 Request Timeout", Some((9, 0))));
    assert_eq!(c.poll_timeout(), Some(clock.at(secs(34))));
    assert_eq!(delivered(&events(&mut c)), 1);
    assert_eq!(c.poll_pull().unwrap().batch, 10);

    // Early timeouts do nothing.
    c.handle_timeout(clock.at(secs(33)));
    assert!(events(&mut c).is_empty());

    // Silence until 34 s: a warning, not an end; pending is forgotten and a fresh pull goes out.
    c.handle_timeout(clock.advance(secs(10)));
    assert_eq!(events(&mut c), vec![PullEvent::MissingHeartbeat]);
    assert!(!c.is_finished());
    assert_eq!(c.pending_messages(), 0);
    assert_eq!(c.poll_pull().unwrap().batch, 10);
    assert_eq!(c.poll_timeout(), Some(clock.at(secs(44))));
    // And it keeps watching.
    c.handle_timeout(clock.advance(secs(10)));
    assert_eq!(events(&mut c), vec![PullEvent::MissingHeartbeat]);
}

#[test]
fn disconnect_pauses_and_reconnect_pulls_afresh_without_ending() {
    let mut clock = Clock::new();
    let mut c = consume_with(10, secs(10), &clock);
    c.poll_pull().unwrap();
    for seq in 1..=3 {
        c.handle_message(clock.now, user(seq, 1));
    }
    c.handle_disconnected(clock.advance(secs(3)));
    assert_eq!(c.poll_timeout(), None, "heartbeat timer paused");
    // Messages drain below the threshold while disconnected (already buffered ones): still no pull.
    for seq in 4..=8 {
        c.handle_message(clock.now, user(seq, 1));
    }
    assert!(c.poll_pull().is_none());
    c.handle_timeout(clock.advance(secs(60)));
    assert_eq!(delivered(&events(&mut c)), 8);

    c.handle_reconnected(clock.advance(secs(60)));
    assert_eq!(c.pending_messages(), 0);
    let fresh = c.poll_pull().expect("fresh pull after reconnect");
    assert_eq!(fresh.batch, 10);
    assert_eq!(c.poll_timeout(), Some(clock.now + secs(10)));
    assert!(!c.is_finished());
    assert!(events(&mut c).is_empty(), "a reconnect reports nothing and ends nothing");

    // A second disconnect/reconnect cycle behaves the same.
    c.handle_disconnected(clock.advance(secs(1)));
    c.handle_disconnected(clock.now);
    c.handle_reconnected(clock.advance(secs(1)));
    assert_eq!(c.poll_pull().map(|p| p.batch), Some(10));
}

#[test]
fn terminal_409s_end_consume() {
    for (line, reason) in [
        ("409 Consumer Deleted", Termination::ConsumerDeleted),
        ("409 Consumer is push based", Termination::ConsumerIsPushBased),
    ] {
        let clock = Clock::new();
        let mut c = consume_with(10, secs(30), &clock);
        c.poll_pull().unwrap();
        c.handle_message(clock.now, user(1, 1));
        c.handle_message(clock.now, status(line, None));
        c.handle_message(clock.now, user(2, 1));
        let evs = events(&mut c);
        assert_eq!(delivered(&evs), 1, "{line}");
        assert_eq!(evs.last(), Some(&PullEvent::Terminated { reason: reason.clone() }), "{line}");
        assert!(c.is_finished());
        assert!(c.poll_pull().is_none());
        assert_eq!(c.poll_timeout(), None);
        c.handle_reconnected(clock.now);
        assert!(c.poll_pull().is_none(), "a terminated consume stays terminated");
    }
}

#[test]
fn consume_errors_and_warnings_do_not_end_it() {
    let clock = Clock::new();
    let mut c = consume_with(10, secs(30), &clock);
    c.poll_pull().unwrap();
    c.handle_message(clock.now, status("400 Bad Request - heartbeat value too large", None));
    c.handle_message(clock.now, status("412 Required Api Level", None));
    c.handle_message(clock.now, status("503", None));
    c.handle_message(clock.now, status("418 Teapot", None));
    c.handle_message(clock.now, status("409 Exceeded MaxWaiting", None));
    let evs = events(&mut c);
    assert_eq!(evs.len(), 5);
    assert!(matches!(&evs[0], PullEvent::Error(Control::BadRequest { .. })));
    assert!(matches!(&evs[1], PullEvent::Error(Control::RequiredApiLevel { .. })));
    assert_eq!(evs[2], PullEvent::Error(Control::NoResponders));
    assert_eq!(evs[3], PullEvent::Error(Control::Unknown { code: 418, description: "Teapot".into() }));
    assert!(matches!(&evs[4], PullEvent::Warning(Control::LimitExceeded { limit: Limit::MaxWaiting, .. })));
    assert!(!c.is_finished());
}

#[test]
fn leadership_change_and_pin_mismatch_repull() {
    let clock = Clock::new();
    let mut c = consume_with(10, secs(30), &clock);
    c.poll_pull().unwrap();
    // Without pending headers the pulls are presumed gone.
    c.handle_message(clock.now, status("409 Leadership Change", None));
    assert_eq!(c.pending_messages(), 0);
    assert_eq!(c.poll_pull().unwrap().batch, 10);
    // With them, only what they say.
    c.handle_message(clock.now, status("409 Server Shutdown", Some((2, 0))));
    assert_eq!(c.pending_messages(), 8);
    c.handle_message(clock.now, status("423 Nats-Wrong-Pin-Id", Some((8, 0))));
    assert_eq!(c.pending_messages(), 0);
    assert!(events(&mut c).is_empty());
}

// ---------------------------------------------------------------------------------------------------------
// Fetch and next
// ---------------------------------------------------------------------------------------------------------

fn fetch(config: FetchConfig, clock: &Clock) -> PullConsumer<Msg> {
    let mut f = PullConsumer::fetch(config, clock.now).expect("valid fetch");
    f.poll_pull().expect("the fetch's one pull");
    f
}

fn end_of(evs: &[PullEvent<Msg>]) -> Option<&FetchEnd> {
    match evs.last() {
        Some(PullEvent::FetchDone { reason }) => Some(reason),
        _ => None,
    }
}

#[test]
fn fetch_ends_when_batch_full() {
    let clock = Clock::new();
    let mut f = fetch(FetchConfig::batch(3), &clock);
    for seq in 1..=3 {
        f.handle_message(clock.now, user(seq, 1));
    }
    f.handle_message(clock.now, user(4, 1)); // would be a server bug; dropped
    let evs = events(&mut f);
    assert_eq!(delivered(&evs), 3);
    assert_eq!(end_of(&evs), Some(&FetchEnd::BatchFilled));
    assert!(f.is_finished());
    assert!(f.poll_pull().is_none());
    assert_eq!(f.poll_timeout(), None);
}

#[test]
fn next_is_a_fetch_of_one() {
    let clock = Clock::new();
    let mut f = PullConsumer::<Msg>::fetch(FetchConfig::next(), clock.now).unwrap();
    let pull = f.poll_pull().unwrap();
    assert_eq!((pull.batch, pull.expires, pull.no_wait), (1, secs(30), false));
    f.handle_message(clock.now, user(1, 1));
    let evs = events(&mut f);
    assert_eq!(delivered(&evs), 1);
    assert_eq!(end_of(&evs), Some(&FetchEnd::BatchFilled));
}

#[test]
fn fetch_no_wait_ends_on_404() {
    let clock = Clock::new();
    let mut f = fetch(FetchConfig::no_wait(10), &clock);
    f.handle_message(clock.now, user(1, 1));
    f.handle_message(clock.now, user(2, 1));
    f.handle_message(clock.now, status("404 No Messages", None));
    let evs = events(&mut f);
    assert_eq!(delivered(&evs), 2);
    assert_eq!(end_of(&evs), Some(&FetchEnd::Status(Control::NoMessages)));
    assert!(!end_of(&evs).unwrap().is_error());
}

#[test]
fn fetch_ends_on_408_expiry() {
    let mut clock = Clock::new();
    let mut f = fetch(FetchConfig::batch(10).with_expires(secs(5)), &clock);
    f.handle_message(clock.advance(secs(1)), user(1, 1));
    f.handle_message(clock.advance(secs(4)), status("408 Request Timeout", Some((9, 0))));
    let evs = events(&mut f);
    assert_eq!(delivered(&evs), 1);
    assert_eq!(
        end_of(&evs),
        Some(&FetchEnd::Status(Control::RequestTimeout { pending: Pending { messages: 9, bytes: 0 } }))
    );
    assert_eq!(f.pending_messages(), 0);
}

#[test]
fn fetch_ends_at_client_deadline() {
    let mut clock = Clock::new();
    let config = FetchConfig { deadline_margin: secs(2), ..FetchConfig::batch(10).with_expires(secs(5)) };
    let mut f = fetch(config, &clock);
    assert_eq!(f.poll_timeout(), Some(clock.at(secs(7))));
    f.handle_timeout(clock.advance(ms(6_999)));
    assert!(events(&mut f).is_empty());
    f.handle_timeout(clock.advance(ms(1)));
    assert_eq!(events(&mut f), vec![PullEvent::FetchDone { reason: FetchEnd::Deadline }]);
    // Late arrivals after the end are not delivered.
    f.handle_message(clock.now, user(1, 1));
    assert!(events(&mut f).is_empty());
}

#[test]
fn fetch_bytes_ends_when_full_or_on_409() {
    let clock = Clock::new();
    let probe = user(1, 10).wire_size();
    let mut f = fetch(FetchConfig::bytes(probe * 2), &clock);
    f.handle_message(clock.now, user(1, 10));
    assert!(events(&mut f).len() == 1 && !f.is_finished());
    f.handle_message(clock.now, user(2, 10));
    assert_eq!(end_of(&events(&mut f)), Some(&FetchEnd::BytesFilled));

    let mut f = fetch(FetchConfig::bytes(1000), &clock);
    f.handle_message(clock.now, status("409 Message Size Exceeds MaxBytes", Some((1_000_000, 1000))));
    let evs = events(&mut f);
    assert!(matches!(end_of(&evs), Some(FetchEnd::Status(Control::MessageSizeExceedsMaxBytes { .. }))));
    assert_eq!((f.pending_messages(), f.pending_bytes()), (0, 0));
}

#[test]
fn fetch_ends_on_terminal_and_error_statuses() {
    let clock = Clock::new();
    for (line, terminal) in [
        ("409 Consumer Deleted", true),
        ("409 Exceeded MaxRequestBatch of 5", true),
        ("400 Bad Request", true),
        ("503", true),
        ("409 Leadership Change", false),
    ] {
        let mut f = fetch(FetchConfig::batch(10), &clock);
        f.handle_message(clock.now, heartbeat()); // does not end a fetch
        assert!(!f.is_finished());
        f.handle_message(clock.now, status(line, None));
        let evs = events(&mut f);
        let end = end_of(&evs).expect(line);
        assert_eq!(end.is_error(), terminal, "{line}");
        assert!(f.is_finished());
    }
}

#[test]
fn fetch_heartbeat_and_disconnect() {
    let mut clock = Clock::new();
    let mut f = fetch(FetchConfig::batch(10).with_expires(secs(60)), &clock);
    // hb = 30 s: missing after 60 s, before the 61 s deadline.
    assert_eq!(f.poll_timeout(), Some(clock.at(secs(60))));
    f.handle_message(clock.advance(secs(20)), heartbeat());
    assert_eq!(f.poll_timeout(), Some(clock.at(secs(61))), "deadline first now");
    f.handle_timeout(clock.advance(secs(41)));
    assert_eq!(events(&mut f), vec![PullEvent::FetchDone { reason: FetchEnd::Deadline }]);

    let mut clock = Clock::new();
    let mut f = fetch(FetchConfig::batch(10).with_expires(secs(60)), &clock);
    f.handle_timeout(clock.advance(secs(60)));
    assert_eq!(events(&mut f), vec![PullEvent::FetchDone { reason: FetchEnd::MissingHeartbeat }]);

    let clock = Clock::new();
    let mut f = fetch(FetchConfig::batch(10), &clock);
    f.handle_message(clock.now, user(1, 1));
    f.handle_disconnected(clock.now);
    let evs = events(&mut f);
    assert_eq!(delivered(&evs), 1);
    assert_eq!(end_of(&evs), Some(&FetchEnd::Disconnected));
    f.handle_reconnected(clock.now);
    assert!(f.poll_pull().is_none());
}

// ---------------------------------------------------------------------------------------------------------
// Ordered consumer
// ---------------------------------------------------------------------------------------------------------

fn ordered(clock: &Clock) -> OrderedConsumer {
    let config = OrderedConfig { filter_subjects: vec!["orders.>".into()], ..OrderedConfig::default() };
    let mut o = OrderedConsumer::new("R4nd0m", config, clock.now).unwrap();
    let first = o.poll_create(clock.now).unwrap();
    assert_eq!(first.name, "R4nd0m_1");
    assert_eq!(first.deliver_policy, DeliverPolicy::All);
    assert_eq!(first.ack_policy, AckPolicy::None);
    o.create_succeeded(1);
    o
}

#[test]
fn ordered_gap_resets_at_next_stream_sequence() {
    let clock = Clock::new();
    let mut o = ordered(&clock);
    assert_eq!(o.handle_message(1, 100, 1), Delivery::Deliver);
    assert_eq!(o.handle_message(2, 105, 1), Delivery::Deliver);
    assert_eq!(o.handle_message(4, 110, 1), Delivery::Reset);
    assert_eq!(o.resets(), (1, Some(ResetReason::Gap { expected: 3, received: 4 })));
    assert_eq!(o.last_stream_sequence(), 105);
    assert_eq!(o.serial(), 2);

    let again = o.poll_create(clock.now).expect("re-create due at once");
    assert_eq!(again.name, "R4nd0m_2");
    assert_eq!(again.deliver_policy, DeliverPolicy::ByStartSequence);
    assert_eq!(again.opt_start_seq, 106);
    assert_eq!(again.opt_start_time, None);
    assert_eq!(again.filter_subject, "orders.>");
    assert!(again.mem_storage);
    assert_eq!(again.num_replicas, 1);
    assert_eq!(again.inactive_threshold, secs(300));
    assert_eq!(o.poll_delete().as_deref(), Some("R4nd0m_1"));
    assert_eq!(o.poll_delete(), None);

    o.create_succeeded(2);
    // The new consumer counts from 1 again.
    assert_eq!(o.handle_message(1, 106, 2), Delivery::Deliver);
    assert_eq!(o.last_consumer_sequence(), 1);
}

#[test]
fn ordered_drops_stale_serials() {
    let clock = Clock::new();
    let mut o = ordered(&clock);
    assert_eq!(o.handle_message(1, 10, 1), Delivery::Deliver);
    o.reset(ResetReason::ConsumerDeleted);
    // Messages still in flight from consumer 1.
    assert_eq!(o.handle_message(2, 11, 1), Delivery::DropStale);
    assert_eq!(o.handle_message(3, 12, 1), Delivery::DropStale);
    assert_eq!(o.last_stream_sequence(), 10);
    assert_eq!(o.serial_of("R4nd0m_1"), Some(1));
    let c = o.poll_create(clock.now).unwrap();
    assert_eq!(c.opt_start_seq, 11);
    o.create_succeeded(2);
    assert_eq!(o.handle_message(1, 11, 2), Delivery::Deliver);
    assert_eq!(o.handle_message(2, 12, 2), Delivery::Deliver);
}

#[test]
fn ordered_resets_on_every_cause() {
    let clock = Clock::new();
    let mut o = ordered(&clock);
    for (i, reason) in [
        ResetReason::MissedHeartbeat,
        ResetReason::ConsumerDeleted,
        ResetReason::Reconnected,
        ResetReason::NoResponders,
    ]
    .into_iter()
    .enumerate()
    {
        let serial = o.serial();
        o.reset(reason);
        assert_eq!(o.serial(), serial + 1);
        assert_eq!(o.resets(), (i as u64 + 1, Some(reason)));
        assert_eq!(o.poll_delete(), Some(format!("R4nd0m_{serial}")));
        let c = o.poll_create(clock.now).unwrap();
        assert_eq!(c.name, format!("R4nd0m_{}", serial + 1));
        o.create_succeeded(serial + 1);
    }
}

#[test]
fn ordered_backoff_grows_to_ten_seconds_and_never_gives_up() {
    let mut clock = Clock::new();
    let mut o = ordered(&clock);
    o.handle_message(1, 7, 1);
    o.reset(ResetReason::Reconnected);
    assert_eq!(o.poll_delete().as_deref(), Some("R4nd0m_1"));
    let mut waits = Vec::new();
    for _ in 0..8 {
        let c = o.poll_create(clock.now).expect("a create is due");
        assert_eq!(c.opt_start_seq, 8);
        o.create_failed(o.serial(), clock.now);
        let due = o.poll_timeout().expect("a retry is scheduled");
        let wait = due - clock.now;
        waits.push(wait.as_secs());
        // Not before it is due.
        assert!(o.poll_create(due - ms(1)).is_none());
        clock.now = due;
    }
    assert_eq!(waits, [1, 2, 4, 8, 10, 10, 10, 10]);
    assert_eq!(o.failures(), 8);
    // A reset while waiting keeps the backoff (no tight loop) and deletes nothing: no create succeeded.
    clock.now -= ms(500);
    let due = o.poll_timeout();
    o.reset(ResetReason::NoResponders);
    assert_eq!(o.poll_timeout(), due);
    assert_eq!(o.poll_delete(), None);
    assert!(o.poll_create(clock.now).is_none());
    let c = o.poll_create(clock.advance(ms(500))).expect("due again");
    assert_eq!((c.name, c.opt_start_seq), (format!("R4nd0m_{}", o.serial()), 8));
    o.create_succeeded(o.serial());
    assert_eq!(o.failures(), 0);
    assert!(o.is_active());
}

// ---------------------------------------------------------------------------------------------------------
// Ack metadata
// ---------------------------------------------------------------------------------------------------------

fn nanos(n: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(n)
}

#[test]
fn ack_metadata_versions() {
    let v1 = AckMetadata::parse("$JS.ACK.ORDERS.dur.3.1024.77.1700000000999999999.12").unwrap();
    assert_eq!((v1.domain, v1.account_hash, v1.stream, v1.consumer), (None, None, "ORDERS", "dur"));
    assert_eq!((v1.delivered, v1.stream_sequence, v1.consumer_sequence), (3, 1024, 77));
    assert_eq!((v1.timestamp, v1.pending), (nanos(1_700_000_000_999_999_999), 12));

    let v2 = AckMetadata::parse("$JS.ACK.HUB.AH1.ORDERS.dur.1.1024.77.5.0").unwrap();
    assert_eq!((v2.domain, v2.account_hash, v2.stream, v2.consumer), (Some("HUB"), Some("AH1"), "ORDERS", "dur"));
    assert_eq!((v2.stream_sequence, v2.consumer_sequence, v2.timestamp, v2.pending), (1024, 77, nanos(5), 0));

    let no_domain = AckMetadata::parse("$JS.ACK._.AH1.ORDERS.dur.1.2.3.4.5").unwrap();
    assert_eq!(no_domain.domain, None);

    for extra in ["$JS.ACK._.AH1.S.C.1.2.3.4.5.tok", "$JS.ACK._.AH1.S.C.1.2.3.4.5.a.b.c.d"] {
        let m = AckMetadata::parse(extra).unwrap();
        assert_eq!(
            (m.stream, m.consumer, m.delivered, m.stream_sequence, m.consumer_sequence, m.pending),
            ("S", "C", 1, 2, 3, 5)
        );
    }
}

#[test]
fn ack_metadata_rejects() {
    assert_eq!(AckMetadata::parse("$JS.ACK.D.S.C.1.2.3.4.5"), Err(AckParseError::TokenCount(10)));
    assert_eq!(AckMetadata::parse("$JS.ACK.S.C.1.2.3.4"), Err(AckParseError::TokenCount(8)));
    assert_eq!(AckMetadata::parse("$JS.ACKS.S.C.1.2.3.4.5"), Err(AckParseError::NotAckSubject));
    assert_eq!(AckMetadata::parse("$JS.API.S.C.1.2.3.4.5"), Err(AckParseError::NotAckSubject));
    assert_eq!(AckMetadata::parse("_INBOX.a.b.c.d.e.f.g.h"), Err(AckParseError::NotAckSubject));
    assert!(matches!(AckMetadata::parse("$JS.ACK.S.C.one.2.3.4.5"), Err(AckParseError::InvalidNumber(_))));
}

// ---------------------------------------------------------------------------------------------------------
// Status classification
// ---------------------------------------------------------------------------------------------------------

#[test]
fn status_classification_table() {
    let p = Some((2, 64));
    let pending = Pending { messages: 2, bytes: 64 };
    type Row = (&'static str, Option<(u64, u64)>, Kind);
    let table: Vec<Row> = vec![
        ("100 Idle Heartbeat", None, Kind::Control(Control::IdleHeartbeat)),
        ("100 FlowControl Request", None, Kind::Control(Control::FlowControl { reply: None })),
        ("404 No Messages", None, Kind::Control(Control::NoMessages)),
        ("408 Request Timeout", p, Kind::Control(Control::RequestTimeout { pending })),
        ("408 Interest Expired", p, Kind::Control(Control::InterestExpired { pending })),
        ("408 Requests Pending", None, Kind::Control(Control::RequestsPending { pending: Pending::default() })),
        ("409 Message Size Exceeds MaxBytes", p, Kind::Control(Control::MessageSizeExceedsMaxBytes { pending })),
        ("409 Batch Completed", p, Kind::Control(Control::BatchCompleted { pending })),
        ("409 Consumer Deleted", None, Kind::Control(Control::ConsumerDeleted)),
        ("409 Consumer is push based", None, Kind::Control(Control::ConsumerIsPushBased)),
        ("409 Leadership Change", p, Kind::Control(Control::LeadershipChange { pending })),
        ("409 Server Shutdown", None, Kind::Control(Control::ServerShutdown { pending: Pending::default() })),
        ("423 Nats-Pin-Id mismatch", None, Kind::Control(Control::PinIdMismatch { pending: Pending::default() })),
        ("503", None, Kind::Control(Control::NoResponders)),
        ("499 Who Knows", None, Kind::Control(Control::Unknown { code: 499, description: "Who Knows".into() })),
    ];
    for (line, pend, want) in table {
        assert_eq!(status(line, pend).classify(), want, "{line}");
    }
    // The limit warnings name their limit.
    for (line, limit) in [
        ("409 Exceeded MaxRequestBatch of 10", Limit::MaxRequestBatch),
        ("409 Exceeded MaxRequestExpires of 1s", Limit::MaxRequestExpires),
        ("409 Exceeded MaxRequestMaxBytes of 1024", Limit::MaxRequestMaxBytes),
        ("409 Exceeded MaxWaiting", Limit::MaxWaiting),
    ] {
        match status(line, None).classify() {
            Kind::Control(Control::LimitExceeded { limit: got, description }) => {
                assert_eq!(got, limit, "{line}");
                assert_eq!(description, &line[4..]);
            }
            other => panic!("{line}: {other:?}"),
        }
    }
    // Unknown statuses are errors, never user messages; user messages are those with a payload or no status.
    let unknown = status("409 Brand New Reason", None).classify();
    assert!(unknown.control().is_some_and(Control::is_error));
    assert_eq!(user(1, 0).classify(), Kind::User);
    assert_eq!(nats_jetstream::status::classify(StatusCode::new(404), "No Messages", None, 1), Kind::User);
}

// ---------------------------------------------------------------------------------------------------------
// Key/Value
// ---------------------------------------------------------------------------------------------------------

#[test]
fn kv_validation_tables() {
    let buckets = [("profiles", true), ("a_b-C9", true), ("", false), ("a.b", false), ("a b", false), ("*", false)];
    for (b, ok) in buckets {
        assert_eq!(kv::validate_bucket(b).is_ok(), ok, "bucket {b:?}");
    }
    let keys = [
        ("k", true),
        ("user.42.name", true),
        ("a-b_c/d=e.f", true),
        ("_kv", true),
        (".k", false),
        ("k.", false),
        ("a..b", false),
        ("a*", false),
        ("*", false),
        (">", false),
        ("a b", false),
        ("", false),
        ("ключ", false),
    ];
    for (k, ok) in keys {
        assert_eq!(kv::validate_key(k).is_ok(), ok, "key {k:?}");
    }
    for (k, ok) in [("_kv", false), ("_kvx.y", false), ("kv_", true), ("a._kv", true)] {
        assert_eq!(kv::validate_put_key(k).is_ok(), ok, "put key {k:?}");
    }
    let filters = [
        (">", true),
        ("*", true),
        ("user.*.name", true),
        ("user.>", true),
        ("*.*", true),
        ("user.>.x", false),
        ("us*er", false),
        ("user.", false),
        ("..", false),
    ];
    for (f, ok) in filters {
        assert_eq!(kv::validate_filter(f).is_ok(), ok, "filter {f:?}");
    }
}

#[test]
fn kv_watch_marker() {
    // Empty bucket: the marker comes first and once.
    let mut w = WatchTracker::new(0);
    let mut markers = usize::from(w.start());
    for delta in [0, 0, 3] {
        markers += usize::from(w.on_entry(delta));
    }
    assert_eq!(markers, 1);

    // Filled bucket: after the initial pending count, whatever the deltas say.
    let mut w = WatchTracker::new(4);
    assert!(!w.start());
    let marks: Vec<bool> = [9, 8, 7, 6, 0, 0].into_iter().map(|d| w.on_entry(d)).collect();
    assert_eq!(marks, [false, false, false, true, false, false]);

    // Or at the first delta == 0 (fewer entries than initially pending, e.g. after a purge).
    let mut w = WatchTracker::new(100);
    assert!(!w.start());
    let marks: Vec<bool> = [2, 1, 0, 0].into_iter().map(|d| w.on_entry(d)).collect();
    assert_eq!(marks, [false, false, true, false]);
}

#[test]
fn kv_entries_from_watch_messages() {
    let headers =
        HeaderBlock::parse(Bytes::from_static(b"NATS/1.0\r\nKV-Operation: PURGE\r\nNats-Rollup: sub\r\n\r\n")).unwrap();
    let meta = AckMetadata::parse("$JS.ACK._.AH.KV_cfg.w_1.1.33.4.1700000000000000000.2").unwrap();
    let e = kv::Entry::from_message("cfg", "$KV.cfg.db.url", Some(headers.view()), Bytes::new(), &meta).unwrap();
    assert_eq!((e.key.as_str(), e.revision, e.delta, e.operation), ("db.url", 33, 2, Operation::Purge));
    assert_eq!(e.created, nanos(1_700_000_000_000_000_000));
}

// ---------------------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn ack_parse_never_panics(s in ".{0,120}") {
        let _ = AckMetadata::parse(&s);
        let _ = AckMetadata::parse_bytes(s.as_bytes());
    }

    #[test]
    fn ack_parse_never_panics_on_ack_like_subjects(tokens in prop::collection::vec("[0-9a-zA-Z_+-]{0,21}", 0..16)) {
        let subject = format!("$JS.ACK.{}", tokens.join("."));
        match AckMetadata::parse(&subject) {
            Ok(m) => {
                let n = tokens.len() + 2;
                prop_assert!(n == 9 || n >= 11);
                prop_assert!(!m.stream.is_empty() && !m.consumer.is_empty());
            }
            Err(AckParseError::TokenCount(n)) => prop_assert!(n == 10 || n < 9),
            Err(_) => {}
        }
    }

    #[test]
    fn ack_parse_reads_what_was_written(
        domain in prop::option::of("[a-z]{1,6}"),
        stream in "[A-Z]{1,8}",
        consumer in "[a-z0-9]{1,8}",
        nums in prop::array::uniform5(any::<u64>()),
        extra in 0usize..3,
    ) {
        let [delivered, sseq, cseq, ts, pending] = nums;
        let subject = match &domain {
            None => format!("$JS.ACK.{stream}.{consumer}.{delivered}.{sseq}.{cseq}.{ts}.{pending}"),
            Some(d) => {
                let tail = ".x".repeat(extra);
                format!("$JS.ACK.{d}.HASH.{stream}.{consumer}.{delivered}.{sseq}.{cseq}.{ts}.{pending}{tail}")
            }
        };
        let m = AckMetadata::parse(&subject).unwrap();
        prop_assert_eq!(m.domain, domain.as_deref());
        prop_assert_eq!((m.stream, m.consumer), (stream.as_str(), consumer.as_str()));
        prop_assert_eq!((m.delivered, m.stream_sequence, m.consumer_sequence, m.pending), (delivered, sseq, cseq, pending));
        prop_assert_eq!(m.timestamp, nanos(ts));
    }
}

/// One input to a pull consumer.
#[derive(Debug, Clone)]
enum Step {
    Poll,
    User(usize),
    Heartbeat,
    Status(u8, u64, u64),
    Advance(u64),
    Timeout,
    Disconnect,
    Reconnect,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Poll),
        6 => (0usize..300).prop_map(Step::User),
        1 => Just(Step::Heartbeat),
        2 => (0u8..12, 0u64..40, 0u64..5000).prop_map(|(k, m, b)| Step::Status(k, m, b)),
        2 => (0u64..20_000).prop_map(Step::Advance),
        2 => Just(Step::Timeout),
        1 => Just(Step::Disconnect),
        1 => Just(Step::Reconnect),
    ]
}

fn status_step(kind: u8, m: u64, b: u64) -> Msg {
    let lines = [
        "408 Request Timeout",
        "408 Interest Expired",
        "409 Batch Completed",
        "409 Message Size Exceeds MaxBytes",
        "409 Leadership Change",
        "409 Server Shutdown",
        "423 Nats-Wrong-Pin-Id",
        "404 No Messages",
        "409 Exceeded MaxWaiting",
        "400 Bad Request",
        "503",
        "409 Consumer Deleted",
    ];
    status(lines[usize::from(kind) % lines.len()], Some((m, b)))
}

/// Drives `p` through `steps`, checking the invariants after each; returns every event and pull.
fn drive(
    p: &mut PullConsumer<Msg>,
    steps: &[Step],
    start: Instant,
    (max_msgs, max_bytes): (u64, u64),
) -> Result<(Vec<PullEvent<Msg>>, Vec<PullRequest>), TestCaseError> {
    let mut now = start;
    let mut connected = true;
    let mut all_events = Vec::new();
    let mut pulls = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        match s {
            Step::Poll => {
                if let Some(pull) = p.poll_pull() {
                    prop_assert!(connected, "no pull while disconnected");
                    prop_assert!(p.poll_pull().is_none(), "at most one pull per crossing");
                    pulls.push(pull);
                }
            }
            Step::User(size) => p.handle_message(now, user(i as u64, *size)),
            Step::Heartbeat => p.handle_message(now, heartbeat()),
            Step::Status(k, m, b) => p.handle_message(now, status_step(*k, *m, *b)),
            Step::Advance(millis) => now += ms(*millis),
            Step::Timeout => {
                p.handle_timeout(now);
                prop_assert!(p.poll_timeout().is_none_or(|t| t > now), "a fired timer is re-armed in the future");
            }
            Step::Disconnect => {
                p.handle_disconnected(now);
                connected = false;
                prop_assert_eq!(p.poll_timeout().filter(|_| !p.is_fetch()), None, "paused while disconnected");
            }
            Step::Reconnect => {
                p.handle_reconnected(now);
                connected = true;
            }
        }
        let finished_before =
            all_events.iter().any(|e| matches!(e, PullEvent::Terminated { .. } | PullEvent::FetchDone { .. }));
        let new: Vec<_> = std::iter::from_fn(|| p.poll_event()).collect();
        prop_assert!(!finished_before || new.is_empty(), "nothing after the end");
        all_events.extend(new);
        prop_assert!(p.pending_messages() <= max_msgs, "pending messages {} over {}", p.pending_messages(), max_msgs);
        prop_assert!(p.pending_bytes() <= max_bytes, "pending bytes {} over {}", p.pending_bytes(), max_bytes);
        if p.is_finished() {
            prop_assert!(p.poll_pull().is_none());
            prop_assert_eq!(p.poll_timeout(), None);
        }
    }
    Ok((all_events, pulls))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn consume_invariants(
        by_bytes in any::<bool>(),
        limit in 1u64..60,
        steps in prop::collection::vec(step(), 0..200),
    ) {
        let start = t0();
        let config = if by_bytes {
            ConsumeConfig { max_bytes: Some(limit * 100), expires: secs(4), ..Default::default() }
        } else {
            ConsumeConfig { max_messages: Some(limit), expires: secs(4), ..Default::default() }
        };
        let mut c = PullConsumer::<Msg>::consume(config, start).unwrap();
        let (max_msgs, max_bytes) = if by_bytes { (1_000_000, limit * 100) } else { (limit, 0) };
        let (evs, pulls) = drive(&mut c, &steps, start, (max_msgs, max_bytes))?;
        for pull in &pulls {
            prop_assert!(pull.batch >= 1 && pull.batch as u64 <= max_msgs);
            prop_assert!(pull.max_bytes as u64 <= max_bytes);
            prop_assert!(by_bytes == (pull.max_bytes > 0));
            prop_assert_eq!(pull.expires, secs(4));
            prop_assert_eq!(pull.idle_heartbeat, secs(2));
            prop_assert!(!pull.no_wait);
        }
        prop_assert!(c.pending_messages() <= max_msgs);
        prop_assert!(c.pending_bytes() <= max_bytes);
        let ends = evs.iter().filter(|e| matches!(e, PullEvent::Terminated { .. })).count();
        prop_assert!(ends <= 1);
        prop_assert!(evs.iter().all(|e| !matches!(e, PullEvent::FetchDone { .. })), "consume never reports a fetch end");
        if ends == 1 {
            let last = evs.last();
            prop_assert!(
                matches!(last, Some(PullEvent::Terminated { reason: Termination::ConsumerDeleted })),
                "only a consumer deletion ends it here: {:?}",
                last
            );
        }
    }

    #[test]
    fn fetch_invariants(
        batch in 1u64..20,
        no_wait in any::<bool>(),
        steps in prop::collection::vec(step(), 0..120),
    ) {
        let start = t0();
        let config = if no_wait { FetchConfig::no_wait(batch) } else { FetchConfig::batch(batch).with_expires(secs(40)) };
        let mut f = PullConsumer::<Msg>::fetch(config, start).unwrap();
        // The pull goes out first, as a driver does; the fetch always ends at a step far past any deadline.
        let mut steps: Vec<Step> = std::iter::once(Step::Poll).chain(steps).collect();
        steps.push(Step::Advance(3_600_000));
        steps.push(Step::Timeout);
        let (evs, pulls) = drive(&mut f, &steps, start, (batch, 0))?;
        prop_assert_eq!(pulls.len(), 1);
        prop_assert_eq!(pulls[0].batch as u64, batch);
        prop_assert_eq!(pulls[0].no_wait, no_wait);
        prop_assert!(delivered(&evs) as u64 <= batch, "a fetch never delivers more than its batch");
        let ends = evs.iter().filter(|e| matches!(e, PullEvent::FetchDone { .. })).count();
        prop_assert_eq!(ends, 1, "a fetch always ends exactly once");
        prop_assert!(matches!(evs.last(), Some(PullEvent::FetchDone { .. })), "the end is the last event");
        prop_assert!(f.is_finished());
    }
}
