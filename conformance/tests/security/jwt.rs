//! Operator mode: user JWTs from creds files, creds text, and a JWT plus seed; creds that cannot be used; a
//! creds file read again at every connect; a user that expires while connected.

use std::time::Duration;

use conformance::TestClient;
use nats_client::Event;
use nats_proto::{ConnectionError, ServerErrorKind};
use nats_server_harness::auth::{format_creds, OperatorFixture, UserOptions};
use nats_server_harness::tls::{ServerTls, TlsFixture};
use nats_server_harness::NatsServer;

use crate::common::{event_recorder, free_port, options, wait_recorded};
use crate::support::{
    corrupt, is_connect_failed, is_disconnected, is_reconnected, must_connect, nowhere, options_failure, refused,
    round_trip, start, trusting, BOTH, RECONNECT_WAIT,
};

pub(crate) fn jwt_authentication_with_creds_files_creds_text_and_jwt_plus_seed<C: TestClient>() {
    let operator = OperatorFixture::new();
    let alice = operator.user("alice").unwrap();
    let mallory = operator.user("mallory").unwrap();
    let stranger = OperatorFixture::new().user("stranger").unwrap();
    let creds = alice.creds_file().unwrap();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).operator(&operator));
        let url = server.url();
        let client: C = must_connect(options(&url).credentials_file(creds.path()), &server, "creds file");
        round_trip(&client, &format!("credsfile{version:?}"));
        let client: C = must_connect(options(&url).credentials(&alice.creds()), &server, "creds text");
        round_trip(&client, &format!("credsstr{version:?}"));
        let client: C = must_connect(options(&url).jwt(alice.jwt(), alice.seed()), &server, "jwt + seed");
        round_trip(&client, &format!("jwtseed{version:?}"));

        // A user of an operator this server does not know, as a file and as text.
        let stranger_file = stranger.creds_file().unwrap();
        refused::<C>(options(&url).credentials_file(stranger_file.path()), "unknown account, creds file");
        refused::<C>(options(&url).credentials(&stranger.creds()), "unknown account, creds string");
        // Alice's JWT signed with someone else's seed: as a file, as text, as a JWT plus seed.
        let forged = creds.path().with_file_name("forged.creds");
        std::fs::write(&forged, format_creds(alice.jwt(), mallory.seed())).unwrap();
        refused::<C>(options(&url).credentials_file(&forged), "JWT and seed of different users");
        refused::<C>(options(&url).credentials(&format_creds(alice.jwt(), mallory.seed())), "forged creds");
        refused::<C>(options(&url).jwt(alice.jwt(), mallory.seed()), "jwt with another user's seed");
        // An expired user.
        let expired = operator
            .user_with("old", UserOptions::new().expires_at(std::time::SystemTime::now() - Duration::from_secs(60)))
            .unwrap()
            .creds_file()
            .unwrap();
        refused::<C>(options(&url).credentials_file(expired.path()), "expired JWT");
        refused::<C>(options(&url), "no credentials");
    }
}

pub(crate) fn unreadable_or_invalid_creds_fail_connect_at_once_without_showing_secrets<C: TestClient>() {
    let operator = OperatorFixture::new();
    let alice = operator.user("alice").unwrap();
    let creds = alice.creds_file().unwrap();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let dir = creds.path().parent().unwrap();

    let missing = dir.join("missing.creds");
    let msg = options_failure::<C>(options(&url).credentials_file(&missing), "missing creds file");
    assert!(msg.contains("missing.creds"), "{msg}");

    // A creds file whose seed is corrupted (in two places).
    let mut broken = alice.seed().to_owned();
    broken.replace_range(5..6, if &broken[5..6] == "A" { "B" } else { "A" });
    let bad = dir.join("bad-seed.creds");
    std::fs::write(&bad, format_creds(alice.jwt(), &broken)).unwrap();
    let msg = options_failure::<C>(options(&url).credentials_file(&bad), "creds file with a bad seed");
    assert!(msg.contains("seed"), "{msg}");
    for secret in [broken.as_str(), &broken[..12], alice.jwt()] {
        assert!(!msg.contains(secret), "the error shows a secret: {msg}");
    }
    // The same as a string; and text that is not creds at all.
    for broken in [broken.clone(), corrupt(alice.seed())] {
        let opts = options(&url).credentials(&format_creds(alice.jwt(), &broken));
        let msg = options_failure::<C>(opts, "creds string, bad seed");
        assert!(msg.contains("seed"), "{msg}");
        assert!(!msg.contains(&broken) && !msg.contains(&broken[..12]) && !msg.contains(alice.jwt()), "{msg}");
    }
    let msg = options_failure::<C>(options(&url).credentials("not creds"), "creds string without blocks");
    assert!(msg.contains("JWT"), "{msg}");
    // A directory is not a creds file.
    let msg = options_failure::<C>(nowhere().credentials_file(dir), "a directory");
    assert!(msg.contains("creds"), "{msg}");
}

pub(crate) fn a_rotated_creds_file_is_read_again_at_every_connect<C: TestClient>() {
    let operator = OperatorFixture::new();
    let mut server = start(NatsServer::builder().operator(&operator));
    let alice = operator.user("alice").unwrap();
    let creds = alice.creds_file().unwrap();
    let (callback, events) = event_recorder();
    let opts = options(&server.url()).credentials_file(creds.path()).event_callback(callback);
    let client: C = must_connect(opts, &server, "creds file");
    round_trip(&client, "rotate1");

    // Replace the file with a user the server refuses, then restart: the reconnect reads the new file.
    let stranger = OperatorFixture::new().user("stranger").unwrap();
    stranger.write_creds(creds.path()).unwrap();
    server.restart();
    let (failed, _) = wait_recorded(
        &events,
        RECONNECT_WAIT,
        "a refused reconnect",
        |e| matches!(e, Event::ConnectFailed { error: ConnectionError::Server(s), .. } if s.is_auth_error()),
    );
    assert!(matches!(failed, Event::ConnectFailed { .. }));

    // Gone: the attempt fails before reaching the server, naming the file.
    std::fs::remove_file(creds.path()).unwrap();
    let (missing, _) = wait_recorded(&events, RECONNECT_WAIT, "a credentials failure", |e| {
        matches!(e, Event::ConnectFailed { error: ConnectionError::Credentials(_), .. })
    });
    match missing {
        Event::ConnectFailed { error: ConnectionError::Credentials(why), .. } => {
            assert!(why.contains("user.creds"), "{why}");
        }
        other => unreachable!("{other:?}"),
    }

    // Rotate to a valid user: the next attempt succeeds.
    operator.user("bob").unwrap().write_creds(creds.path()).unwrap();
    wait_recorded(&events, RECONNECT_WAIT, "Reconnected with the rotated file", is_reconnected);
    round_trip(&client, "rotate2");
}

pub(crate) fn an_expiring_user_is_disconnected_over_tls_with_a_typed_error<C: TestClient>() {
    let fixture = TlsFixture::new();
    let operator = OperatorFixture::new();
    for version in BOTH {
        let server =
            start(NatsServer::builder().version(version).operator(&operator).tls(ServerTls::from_fixture(&fixture)));
        let expires = std::time::SystemTime::now() + Duration::from_secs(3);
        let user = operator.user_with("brief", UserOptions::new().expires_at(expires)).unwrap();
        let (callback, events) = event_recorder();
        let opts = trusting(&server.tls_url(), &fixture).credentials(&user.creds()).event_callback(callback);
        let client: C = must_connect(opts, &server, "expiring user");
        round_trip(&client, &format!("expiring{version:?}"));
        // The server says why, then closes the TLS session; the client reports the reason, not a bare loss.
        let (lost, _) = wait_recorded(&events, Duration::from_secs(10), "Disconnected", is_disconnected);
        match lost {
            Event::Disconnected(ConnectionError::Server(e)) => {
                assert_eq!(e.kind(), ServerErrorKind::AuthenticationExpired, "{version:?}: {e}");
                assert!(e.is_auth_error());
            }
            other => panic!("{version:?}: expected a Disconnected with the server's reason, got {other:?}"),
        }
        // Reconnecting with the expired JWT is refused, and reported as such.
        let (failed, _) = wait_recorded(&events, RECONNECT_WAIT, "a refused reconnect", is_connect_failed);
        assert!(
            matches!(&failed, Event::ConnectFailed { error: ConnectionError::Server(e), .. } if e.is_auth_error()),
            "{version:?}: {failed:?}"
        );
        client.close();
    }
}
