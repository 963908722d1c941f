//! Permissions: a denied subscription ends with the server's error, a denied publish is an event, a denied
//! reply inbox fails requests at once; the connection stays up and serves what is allowed.

use std::time::{Duration, Instant};

use conformance::{TestClient, TestSubscription};
use nats_client::seam::Subscription as _;
use nats_client::{Error, Event};
use nats_proto::{PermissionOp, ServerErrorKind};
use nats_server_harness::auth::{AuthUser, OperatorFixture, Permissions, UserOptions};
use nats_server_harness::NatsServer;

use crate::common::{options, recv, serve, take_queued, text, WAIT};
use crate::support::{is_disconnected, must_connect, start, BOTH, FAIL_FAST};

/// The subscription ends with the server's permissions violation for it, at once when asked again.
#[track_caller]
fn assert_ends_denied<S: TestSubscription>(sub: &mut S, subject: &str, queue: Option<&str>, what: &str) {
    match sub.next_timeout(WAIT) {
        Err(Error::Permission(e)) => {
            assert_eq!(e.kind(), ServerErrorKind::PermissionsViolation, "{what}: {e}");
            assert_eq!(e.permission(), Some((PermissionOp::Subscribe, subject, queue)), "{what}: {e}");
        }
        other => panic!("{what}: the denied subscription to {subject} should end with Permission, got {other:?}"),
    }
    // Ended for good: asking again reports the same, at once, and there is no next message.
    let started = Instant::now();
    assert!(matches!(sub.next_timeout(WAIT), Err(Error::Permission(_))), "{what}");
    assert!(sub.next_message().is_none(), "{what}");
    assert!(started.elapsed() < Duration::from_secs(1), "{what}: an ended subscription should not wait");
}

fn limited_permissions() -> Permissions {
    Permissions::new()
        .allow_publish("ok.>")
        .allow_publish("_INBOX.>")
        .allow_subscribe("ok.>")
        .allow_subscribe("_INBOX.>")
}

/// Checks permissions on a client connected as a user allowed `ok.>` and `_INBOX.>` only.
fn check_permissions<C: TestClient>(client: &C, what: &str) {
    let events = client.events();
    let mut allowed = client.subscribe("ok.>", None).unwrap();
    let mut denied = client.subscribe("secret.x", None).unwrap();
    let mut denied_queue = client.subscribe("secret.q", Some("workers")).unwrap();
    client.flush().unwrap();
    client.publish("ok.1", None, None, "one".into()).unwrap();

    // The denied subscriptions end with the server's error; the allowed one is unaffected.
    assert_ends_denied(&mut denied, "secret.x", None, what);
    assert_ends_denied(&mut denied_queue, "secret.q", Some("workers"), what);
    assert_eq!(text(&recv(&mut allowed, what)), "one");

    // A denied publish cannot fail the call (publishing does not wait): the server's -ERR is an event.
    client.publish("secret.y", None, None, "nope".into()).expect("a publish is not refused locally");
    let (event, before) = conformance::wait_event(
        &events,
        WAIT,
        "the publish violation",
        |e| matches!(e, Event::ServerError(s) if s.permission().is_some_and(|(op, _, _)| op == PermissionOp::Publish)),
    );
    let Event::ServerError(e) = event else { unreachable!() };
    assert_eq!(e.permission(), Some((PermissionOp::Publish, "secret.y", None)), "{what}: {e}");
    assert!(!e.closes_connection());
    assert!(!before.iter().any(is_disconnected), "{what}: {before:?}");

    // The connection is still up and serves the allowed subjects.
    client.flush().expect("the connection is still up");
    let _svc = serve(client.subscribe("ok.svc", None).unwrap(), |m| drop(m.respond("pong")));
    client.flush().unwrap();
    assert_eq!(text(&client.request_default("ok.svc", None, "ping".into()).unwrap()), "pong", "{what}");
    client.publish("ok.2", None, None, "two".into()).unwrap();
    // The allowed subscription keeps receiving: the request to `ok.svc` (it matches `ok.>`), then `two`.
    assert_eq!(text(&recv(&mut allowed, what)), "ping", "{what}");
    assert_eq!(text(&recv(&mut allowed, what)), "two", "{what}: the allowed subscription keeps receiving");
    assert!(!client.is_closed());
    let stats = client.statistics();
    assert_eq!((stats.connects, stats.reconnects), (1, 0), "{what}");
    let later: Vec<Event> = events.try_iter().collect();
    for e in before.iter().chain(&later) {
        assert!(
            !matches!(e, Event::Disconnected(_) | Event::Reconnected(_) | Event::Closed),
            "{what}: the connection must stay up: {before:?} {later:?}"
        );
    }
    client.flush().unwrap();
    assert!(take_queued(&mut allowed).is_empty(), "{what}");
}

pub(crate) fn permission_violations_end_only_the_denied_subscription_and_keep_the_connection<C: TestClient>() {
    for version in BOTH {
        let server = start(
            NatsServer::builder()
                .version(version)
                .auth_user(AuthUser::password("limited", "pw").permissions(limited_permissions())),
        );
        let what = format!("{version:?} config user");
        let client: C = must_connect(options(&server.url()).user_and_password("limited", "pw"), &server, &what);
        check_permissions(&client, &what);
    }

    // The same with permissions in a user JWT.
    let operator = OperatorFixture::new();
    let user = operator.user_with("limited", UserOptions::new().permissions(limited_permissions())).unwrap();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).operator(&operator));
        let what = format!("{version:?} JWT user");
        let client: C = must_connect(options(&server.url()).credentials(&user.creds()), &server, &what);
        check_permissions(&client, &what);
    }
}

pub(crate) fn jwt_permissions_with_a_denied_subject_inside_an_allowed_one<C: TestClient>() {
    let operator = OperatorFixture::new();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).operator(&operator));
        let user = operator
            .user_with(
                "limited",
                UserOptions::new().permissions(
                    Permissions::new().allow_publish("ok.>").allow_subscribe("ok.>").deny_subscribe("ok.secret"),
                ),
            )
            .unwrap();
        let client: C = must_connect(options(&server.url()).credentials(&user.creds()), &server, "JWT permissions");
        let events = client.events();
        let mut ok = client.subscribe("ok.a", None).unwrap();
        let mut secret = client.subscribe("ok.secret", None).unwrap();
        client.publish("ok.a", None, None, "1".into()).unwrap();
        match secret.next_timeout(WAIT) {
            Err(Error::Permission(e)) => {
                assert_eq!(e.permission(), Some((PermissionOp::Subscribe, "ok.secret", None)), "{version:?}: {e}")
            }
            other => panic!("{version:?}: expected Permission, got {other:?}"),
        }
        assert_eq!(text(&recv(&mut ok, "allowed JWT subscription")), "1");
        client.publish("nope", None, None, "x".into()).unwrap();
        conformance::wait_event(
            &events,
            WAIT,
            "the publish violation",
            |e| matches!(e, Event::ServerError(s) if s.permission() == Some((PermissionOp::Publish, "nope", None))),
        );
        client.flush().unwrap();
        client.publish("ok.a", None, None, "2".into()).unwrap();
        assert_eq!(text(&recv(&mut ok, "after the violation")), "2");
    }
}

pub(crate) fn a_denied_reply_inbox_fails_requests_at_once_with_a_permission_error<C: TestClient>() {
    // Everything but the default inbox may be used.
    let permissions = Permissions::new().allow_publish(">").allow_subscribe("svc.>");
    for version in BOTH {
        let server = start(
            NatsServer::builder()
                .version(version)
                .auth_user(AuthUser::password("noinbox", "pw").permissions(permissions.clone())),
        );
        let client: C = must_connect(options(&server.url()).user_and_password("noinbox", "pw"), &server, "no inbox");
        let _svc = serve(client.subscribe("svc.echo", None).unwrap(), |m| drop(m.respond(m.payload_bytes())));
        let started = Instant::now();
        match client.request("svc.echo", None, "hi".into(), Duration::from_secs(20)) {
            Err(Error::Permission(e)) => {
                assert_eq!(e.kind(), ServerErrorKind::PermissionsViolation, "{version:?}: {e}");
                assert!(matches!(e.permission(), Some((PermissionOp::Subscribe, s, None)) if s.starts_with("_INBOX.")));
            }
            other => panic!("{version:?}: expected Permission, got {other:?}"),
        }
        assert!(started.elapsed() < FAIL_FAST, "{version:?}: waited {:?} instead of failing", started.elapsed());
        // The connection is still usable.
        client.publish("svc.other", None, None, "x".into()).unwrap();
        client.flush().unwrap();
        assert!(!client.is_closed(), "{version:?}");
    }
}
