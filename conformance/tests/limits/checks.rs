//! What the client refuses before sending anything: payloads over the server's max_payload, invalid
//! subjects and queue names.

use std::time::Duration;

use conformance::{TestClient, TestSubscription as _};
use nats_client::Error;
use nats_proto::{CommandError, Headers, SubjectError};
use nats_server_harness::NatsServer;

use crate::common::{connect, recv, text, WAIT};

pub(crate) fn max_payload_is_enforced_before_sending<C: TestClient>() {
    let server = NatsServer::builder().max_payload(1024).start().unwrap();
    let client: C = connect(&server);
    assert_eq!(client.max_payload(), 1024);
    let mut sub = client.subscribe("mp.x", None).unwrap();
    client.flush().unwrap();

    let before = client.statistics();
    let result = client.publish("mp.x", None, None, vec![0u8; 2000].into());
    assert!(
        matches!(result, Err(Error::Command(CommandError::MaxPayloadExceeded { size: 2000, max_payload: 1024 }))),
        "{result:?}"
    );
    // Headers count towards the limit.
    let mut h = Headers::new();
    h.insert("Name", "value").unwrap();
    let result = client.publish("mp.x", None, Some(&h), vec![0u8; 1020].into());
    assert!(matches!(result, Err(Error::Command(CommandError::MaxPayloadExceeded { .. }))), "{result:?}");
    let result = client.request_default("mp.x", None, vec![0u8; 1025].into());
    assert!(matches!(result, Err(Error::Command(CommandError::MaxPayloadExceeded { .. }))), "{result:?}");
    let result = client.publish("mp.x", Some("r"), None, vec![0u8; 1025].into());
    assert!(matches!(result, Err(Error::Command(CommandError::MaxPayloadExceeded { .. }))), "{result:?}");
    let result = client.request_many("mp.x", vec![0u8; 1025].into(), WAIT, None, None).map(drop);
    assert!(matches!(result, Err(Error::Command(CommandError::MaxPayloadExceeded { .. }))), "{result:?}");
    let after = client.statistics();
    assert_eq!(after.out_msgs, before.out_msgs, "nothing was sent");
    assert_eq!(after.out_bytes, before.out_bytes, "nothing was queued");

    // The connection is unharmed, and exactly max_payload is allowed.
    client.publish("mp.x", None, None, vec![7u8; 1024].into()).unwrap();
    client.publish("mp.x", None, None, "small".into()).unwrap();
    assert_eq!(recv(&mut sub, "max-size message").payload().len(), 1024);
    assert_eq!(text(&recv(&mut sub, "small message")), "small");
    client.flush().unwrap();
    assert!(!client.is_closed());
    assert_eq!(client.statistics().connects, 1, "no reconnect: the server never saw the oversized message");
    // Nothing else arrived: the oversized ones were never delivered.
    assert!(sub.try_next().is_none());
}

pub(crate) fn invalid_subjects_and_queues_are_typed_errors<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let subject_err = |r: Result<(), Error>| match r {
        Err(Error::Command(CommandError::InvalidSubject(e))) => e,
        other => panic!("expected InvalidSubject, got {other:?}"),
    };
    let publish = |subject: &str, reply: Option<&str>| client.publish(subject, reply, None, "x".into());
    assert_eq!(subject_err(publish("", None)), SubjectError::Empty);
    assert_eq!(subject_err(publish("a b", None)), SubjectError::Whitespace);
    assert_eq!(subject_err(publish("a\r\nPUB b 1", None)), SubjectError::Whitespace);
    assert_eq!(subject_err(publish("a..b", None)), SubjectError::EmptyToken);
    assert_eq!(subject_err(publish(".a", None)), SubjectError::EmptyToken);
    assert_eq!(subject_err(publish("a.*", None)), SubjectError::Wildcard);
    assert_eq!(subject_err(publish("a.>", None)), SubjectError::Wildcard);
    assert_eq!(subject_err(publish("a", Some("bad reply"))), SubjectError::Whitespace);
    assert_eq!(subject_err(publish("a", Some("r.*"))), SubjectError::Wildcard);
    assert_eq!(subject_err(client.subscribe("", None).map(drop)), SubjectError::Empty);
    assert_eq!(subject_err(client.subscribe("a.>.b", None).map(drop)), SubjectError::FullWildcardNotLast);
    assert_eq!(subject_err(client.subscribe("a..b", None).map(drop)), SubjectError::EmptyToken);
    assert_eq!(subject_err(client.subscribe("a\tb", None).map(drop)), SubjectError::Whitespace);
    assert_eq!(subject_err(client.request_default("a.*", None, "x".into()).map(drop)), SubjectError::Wildcard);
    let many = client.request_many("a b", "x".into(), WAIT, None, None).map(drop);
    assert_eq!(subject_err(many), SubjectError::Whitespace);

    let queue_err = |r: Result<C::Subscription, Error>| match r {
        Err(Error::Command(CommandError::InvalidQueue(e))) => e,
        other => panic!("expected InvalidQueue, got {other:?}"),
    };
    assert_eq!(queue_err(client.subscribe("a", Some(""))), SubjectError::Empty);
    assert_eq!(queue_err(client.subscribe("a", Some("q 1"))), SubjectError::Whitespace);
    assert_eq!(queue_err(client.subscribe("a", Some("q\r\n"))), SubjectError::Whitespace);

    // Nothing was sent, and the connection still works.
    let stats = client.statistics();
    assert_eq!(stats.out_msgs, 0);
    let mut sub = client.subscribe("valid.subject", None).unwrap();
    client.publish("valid.subject", None, None, "ok".into()).unwrap();
    assert_eq!(text(&recv(&mut sub, "after invalid calls")), "ok");
    client.flush_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(client.statistics().connects, 1);
}
