//! Connection state machine: subscription ids, UNSUB with max, delivery, and replay after reconnect.

mod common;

use common::*;
use nats_proto::{CommandError, Event, SubscriptionEnd};

/// The payloads of the `Message` events for `sid`, in order.
fn delivered(events: &[Event], sid: u64) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) if m.sid() == sid => Some(String::from_utf8_lossy(m.payload()).into_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn sids_allocate_in_order_and_subs_are_sent() {
    let mut p = Peer::connected(config(&[URL]));
    assert_eq!(p.conn.subscribe("a", None).unwrap(), 1);
    assert_eq!(p.conn.subscribe("b.*", Some(b"q")).unwrap(), 2);
    assert_eq!(p.conn.subscribe("c.>", None).unwrap(), 3);
    assert_eq!(p.sent(), [sub_op("a", None, 1), sub_op("b.*", Some("q"), 2), sub_op("c.>", None, 3)]);
    assert_eq!(p.conn.subscription_count(), 3);
}

#[test]
fn messages_are_delivered_with_their_fields() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("greet.*", None).unwrap();
    p.sent();
    p.input("MSG greet.joe 1 reply.to 5\r\nhello\r\n");
    let events = p.events();
    let [Event::Message(m)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!((m.sid(), m.subject().as_str(), m.payload()), (sid, Some("greet.joe"), &b"hello"[..]));
    assert_eq!(m.reply().and_then(|r| r.as_str()), Some("reply.to"));
    assert!(m.headers().is_none());
}

#[test]
fn unsubscribe_with_max_ends_after_n_messages() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    p.sent();
    p.conn.unsubscribe(sid, Some(2)).unwrap();
    assert_eq!(p.sent(), [unsub_op(sid, Some(2))]);
    assert!(p.events().is_empty(), "still live until it delivered 2");

    p.input(format!("{}{}{}", msg("a", sid, "m1"), msg("a", sid, "m2"), msg("a", sid, "m3")));
    let events = p.events();
    assert_eq!(delivered(&events, sid), ["m1", "m2"], "the third message is dropped");
    assert_eq!(events.last(), Some(&Event::SubscriptionEnded { sid, reason: SubscriptionEnd::MaxReached }));
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(p.conn.subscription_count(), 0);
    // The local count decides; a plain UNSUB covers a server that still holds the subscription.
    assert_eq!(p.sent(), [unsub_op(sid, None)]);

    p.input(msg("a", sid, "m4"));
    assert!(p.events().is_empty(), "messages for an ended sid are dropped");
    assert!(p.sent().is_empty(), "ended once, unsubscribed once");
    assert_eq!(p.conn.unsubscribe(sid, None), Err(CommandError::UnknownSubscription(sid)));
}

#[test]
fn unsubscribe_with_max_already_reached_ends_now() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    p.sent();
    p.input(format!("{}{}", msg("a", sid, "1"), msg("a", sid, "2")));
    assert_eq!(delivered(&p.events(), sid), ["1", "2"]);
    p.conn.unsubscribe(sid, Some(2)).unwrap();
    assert_eq!(p.sent(), [unsub_op(sid, None)]);
    assert_eq!(p.events(), [Event::SubscriptionEnded { sid, reason: SubscriptionEnd::MaxReached }]);
}

#[test]
fn raising_a_max_subscribes_again_in_case_the_server_ended_it_at_the_old_one() {
    // Found by the simulator (seeds 236 and 1011138): a lower max crossed messages in flight, the server ended
    // the subscription at it, and the UNSUB that raised the max found nothing to raise.
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", Some(b"q")).unwrap();
    p.sent();
    p.conn.unsubscribe(sid, Some(2)).unwrap();
    assert_eq!(p.sent(), [unsub_op(sid, Some(2))]);
    p.input(msg("a", sid, "m1"));
    assert_eq!(delivered(&p.events(), sid), ["m1"]);
    p.conn.unsubscribe(sid, Some(4)).unwrap();
    // A server that still holds it raises the max and ignores the SUB; one that ended it revives it with the
    // SUB and takes the max from the second UNSUB. However the ops are split across reads, it ends up live.
    assert_eq!(p.sent(), [unsub_op(sid, Some(4)), sub_op("a", Some("q"), sid), unsub_op(sid, Some(4))]);
    // Lowering needs no SUB: the server ending it early only stops what the client would drop.
    p.conn.unsubscribe(sid, Some(3)).unwrap();
    assert_eq!(p.sent(), [unsub_op(sid, Some(3))]);
    p.input(format!("{}{}", msg("a", sid, "m2"), msg("a", sid, "m3")));
    let events = p.events();
    assert_eq!(delivered(&events, sid), ["m2", "m3"]);
    assert_eq!(events.last(), Some(&Event::SubscriptionEnded { sid, reason: SubscriptionEnd::MaxReached }));
}

#[test]
fn unsubscribe_now_ends_and_drops_later_messages() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    p.sent();
    p.conn.unsubscribe(sid, None).unwrap();
    assert_eq!(p.sent(), [unsub_op(sid, None)]);
    assert_eq!(p.events(), [Event::SubscriptionEnded { sid, reason: SubscriptionEnd::Unsubscribed }]);
    p.input(msg("a", sid, "late"));
    assert!(p.events().is_empty());
}

#[test]
fn messages_for_unknown_sids_are_dropped_silently() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    p.sent();
    p.input(format!("{}{}", msg("a", 99, "x"), msg("a", sid, "y")));
    let events = p.events();
    assert_eq!(delivered(&events, sid), ["y"]);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(p.conn.is_connected());
    assert!(p.sent().is_empty());
}

#[test]
fn reconnect_replays_live_subs_in_sid_order_with_remaining_max() {
    let mut p = Peer::connected(config(&[URL]));
    let s1 = p.conn.subscribe("a", None).unwrap();
    let s2 = p.conn.subscribe("b", Some(b"q")).unwrap();
    let s3 = p.conn.subscribe("c", None).unwrap();
    let s4 = p.conn.subscribe("d.*", Some(b"workers")).unwrap();
    p.conn.unsubscribe(s2, Some(5)).unwrap();
    p.conn.unsubscribe(s3, None).unwrap();
    p.conn.unsubscribe(s4, Some(3)).unwrap();
    p.sent();
    p.input(format!("{}{}", msg("b", s2, "1"), msg("b", s2, "2")));
    p.drain();

    let events = p.reconnect();
    assert!(events.contains(&Event::Reconnected(addr(URL))), "{events:?}");
    assert_eq!(
        p.sent(),
        [
            sub_op("a", None, s1),
            sub_op("b", Some("q"), s2),
            unsub_op(s2, Some(3)),
            sub_op("d.*", Some("workers"), s4),
            unsub_op(s4, Some(3)),
        ],
        "every live SUB in sid order, the unsubscribed one left out"
    );

    // The local count goes on across connections: 3 more for s2.
    p.input(format!("{}{}{}{}", msg("b", s2, "3"), msg("b", s2, "4"), msg("b", s2, "5"), msg("b", s2, "6")));
    let events = p.events();
    assert_eq!(delivered(&events, s2), ["3", "4", "5"]);
    assert_eq!(events.last(), Some(&Event::SubscriptionEnded { sid: s2, reason: SubscriptionEnd::MaxReached }));
}

#[test]
fn unsubscribe_max_after_reconnect_counts_from_the_new_sub() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    p.sent();
    p.input(msg("a", sid, "before"));
    p.drain();
    p.reconnect();
    assert_eq!(p.sent(), [sub_op("a", None, sid)]);
    p.input(msg("a", sid, "after"));
    p.drain();
    // 2 delivered in total, 1 of them on this connection: the server needs 5 - 2 + 1 = 4.
    p.conn.unsubscribe(sid, Some(5)).unwrap();
    assert_eq!(p.sent(), [unsub_op(sid, Some(4))]);
}

#[test]
fn subscribe_while_disconnected_is_sent_on_reconnect() {
    let mut p = Peer::connected(config(&[URL]));
    p.eof();
    p.drain();
    let sid = p.conn.subscribe("late.sub", None).unwrap();
    assert_eq!(sid, 1);
    assert!(p.sent().is_empty());
    p.advance_to_timeout();
    p.handshake();
    assert_eq!(p.sent(), [sub_op("late.sub", None, sid)]);
    p.input(msg("late.sub", sid, "hi"));
    assert_eq!(delivered(&p.events(), sid), ["hi"]);
}

#[test]
fn subscribe_before_first_connect_is_sent_after_connect() {
    let mut p = Peer::new(config(&[URL]));
    let sid = p.conn.subscribe("early", None).unwrap();
    assert!(p.sent().is_empty());
    p.handshake();
    assert_eq!(p.sent(), [sub_op("early", None, sid)]);
}

#[test]
fn unsubscribe_while_disconnected_is_not_replayed() {
    let mut p = Peer::connected(config(&[URL]));
    let keep = p.conn.subscribe("keep", None).unwrap();
    let gone = p.conn.subscribe("gone", None).unwrap();
    let capped = p.conn.subscribe("capped", None).unwrap();
    p.sent();
    p.eof();
    p.drain();
    p.conn.unsubscribe(gone, None).unwrap();
    p.conn.unsubscribe(capped, Some(2)).unwrap();
    assert_eq!(p.events(), [Event::SubscriptionEnded { sid: gone, reason: SubscriptionEnd::Unsubscribed }]);
    assert!(p.sent().is_empty(), "nothing written while disconnected");
    p.advance_to_timeout();
    p.handshake();
    assert_eq!(p.sent(), [sub_op("keep", None, keep), sub_op("capped", None, capped), unsub_op(capped, Some(2))]);
}

#[test]
fn drain_subscription_delivers_what_was_in_flight_then_ends_at_the_fence() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("work", None).unwrap();
    let other = p.conn.subscribe("other", None).unwrap();
    p.sent();
    p.conn.drain_subscription(sid).unwrap();
    assert_eq!(p.sent(), [unsub_op(sid, None), nats_proto::ClientOp::Ping]);
    // Sent by the server before it processed the UNSUB: still delivered.
    p.input(msg("work", sid, "late"));
    p.input(msg("other", other, "x"));
    let events = p.events();
    assert_eq!(delivered(&events, sid), ["late"]);
    assert!(!events.iter().any(|e| matches!(e, Event::SubscriptionEnded { .. })), "{events:?}");
    p.input("PONG\r\n");
    let events = p.events();
    assert_eq!(events, [Event::SubscriptionEnded { sid, reason: SubscriptionEnd::Drained }]);
    p.input(msg("work", sid, "after"));
    assert!(delivered(&p.events(), sid).is_empty(), "nothing after the fence");
    assert_eq!(p.conn.subscription_count(), 1);
    assert_eq!(p.conn.drain_subscription(sid), Err(CommandError::UnknownSubscription(sid)));
}

#[test]
fn drain_subscription_cut_short_by_a_lost_connection_is_not_replayed() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("work", None).unwrap();
    let keep = p.conn.subscribe("keep", None).unwrap();
    p.sent();
    p.conn.drain_subscription(sid).unwrap();
    p.sent();
    p.eof();
    let events = p.events();
    assert!(events.contains(&Event::SubscriptionEnded { sid, reason: SubscriptionEnd::Drained }), "{events:?}");
    p.advance_to_timeout();
    p.handshake();
    let replayed = p.sent();
    assert!(replayed.contains(&sub_op("keep", None, keep)), "{replayed:?}");
    assert!(!replayed.contains(&sub_op("work", None, sid)), "{replayed:?}");
}
