//! The credentials callback: asked at every connect, with that connection's nonce (or none), for a signature,
//! a password or a token; a callback that fails or signs wrongly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use conformance::{wait_event, TestClient};
use nats_client::Error;
use nats_proto::{ConnectionError, Credentials};
use nats_server_harness::auth::{NkeyUser, OperatorFixture};
use nats_server_harness::NatsServer;

use crate::common::options;
use crate::support::{
    connect_fails, is_reconnected, must_connect, refused, round_trip, start, BOTH, FAIL_FAST, RECONNECT_WAIT,
};

/// A failing callback fails the attempt with its own message, fast and without a second attempt.
#[track_caller]
fn a_failing_callback_fails_the_attempt<C: TestClient>(server: &NatsServer, what: &str) {
    let opts = options(&server.url()).credentials_callback(|_| Err("vault unavailable".to_owned()));
    let (e, took, _) = connect_fails::<C>(opts, what);
    assert!(took < FAIL_FAST, "{what}: {took:?}");
    assert!(
        matches!(&e, Error::Connect(ConnectionError::Credentials(m)) if m.contains("vault unavailable")),
        "{what}: {e:?}"
    );
}

/// A user JWT and the signature of each handshake's nonce, from a callback.
pub(crate) fn credentials_callback_signs_each_handshake_nonce<C: TestClient>() {
    let operator = OperatorFixture::new();
    for version in BOTH {
        let mut server = start(NatsServer::builder().version(version).operator(&operator));
        let alice = operator.user("alice").unwrap();
        let nonces: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let (jwt, seed, seen) = (alice.jwt().to_owned(), alice.seed().to_owned(), nonces.clone());
        let opts = options(&server.url()).credentials_callback(move |nonce| {
            seen.lock().unwrap().push(nonce.map(str::to_owned));
            let nonce = nonce.ok_or("no nonce")?;
            let mut c = Credentials::default();
            c.jwt = Some(jwt.clone());
            c.sig = Some(nats_server_harness::auth::sign_nonce(&seed, nonce).map_err(|e| e.to_string())?);
            Ok(c)
        });
        let client: C = must_connect(opts, &server, "credentials callback");
        round_trip(&client, &format!("callback{version:?}"));
        let events = client.events();
        server.restart();
        wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
        round_trip(&client, &format!("callback2{version:?}"));
        // Called for each handshake (at least the first and the one after the restart; an attempt lost while
        // the server was starting may add one), each time with that connection's fresh nonce.
        let nonces = nonces.lock().unwrap().clone();
        assert!(nonces.len() >= 2, "{version:?}: {nonces:?}");
        assert!(nonces.iter().all(Option::is_some), "{version:?}: {nonces:?}");
        let distinct: std::collections::HashSet<_> = nonces.iter().collect();
        assert_eq!(distinct.len(), nonces.len(), "{version:?}: a nonce was reused: {nonces:?}");

        // A callback signing with the wrong key is refused by the server.
        let (jwt, other) = (alice.jwt().to_owned(), operator.user("mallory").unwrap().seed().to_owned());
        let opts = options(&server.url()).credentials_callback(move |nonce| {
            let mut c = Credentials::default();
            c.jwt = Some(jwt.clone());
            c.sig = Some(nats_server_harness::auth::sign_nonce(&other, nonce.unwrap_or_default()).unwrap());
            Ok(c)
        });
        refused::<C>(opts, "callback with the wrong seed");
        a_failing_callback_fails_the_attempt::<C>(&server, &format!("{version:?}: failing callback"));
    }
}

/// An nkey and the signature of the server's nonce, from a callback; a token, from a callback asked without a
/// nonce.
pub(crate) fn credentials_callback_signs_the_servers_nonce<C: TestClient>() {
    let user = NkeyUser::generate();
    for version in BOTH {
        let mut server = start(NatsServer::builder().version(version).nkey_user(user.public_key()));
        let nonces: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let (seen, signer) = (nonces.clone(), user.clone());
        let opts = options(&server.url()).credentials_callback(move |nonce| {
            seen.lock().unwrap().push(nonce.map(str::to_owned));
            let nonce = nonce.ok_or("no nonce")?;
            let mut c = Credentials::default();
            c.nkey = Some(signer.public_key().to_owned());
            c.sig = Some(signer.sign_nonce(nonce));
            Ok(c)
        });
        let client: C = must_connect(opts, &server, "callback");
        round_trip(&client, &format!("cb{version:?}"));
        // The server accepted a signature of what the callback was given: that was the nonce of its INFO.
        // (`server_info()` is the latest INFO, which need not repeat the nonce.)
        let first = nonces.lock().unwrap().clone();
        assert_eq!(first.len(), 1, "{version:?}: one call per connect: {first:?}");
        let sent = first[0].clone();
        assert!(sent.as_deref().is_some_and(|n| !n.is_empty()), "{version:?}: no nonce given: {first:?}");

        // Each connect signs that connection's nonce.
        let events = client.events();
        server.restart();
        wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
        let all = nonces.lock().unwrap().clone();
        assert!(all.len() >= 2 && all.iter().all(Option::is_some), "{version:?}: {all:?}");
        assert_ne!(all.last(), Some(&sent), "{version:?}: a new connection signs its own, new nonce: {all:?}");
        round_trip(&client, &format!("cbagain{version:?}"));
        client.close();

        a_failing_callback_fails_the_attempt::<C>(&server, &format!("{version:?}: failing callback"));

        // A callback with the wrong signature is refused by the server.
        let forger = NkeyUser::generate();
        let public = user.public_key().to_owned();
        let opts = options(&server.url()).credentials_callback(move |nonce| {
            let mut c = Credentials::default();
            c.nkey = Some(public.clone());
            c.sig = Some(forger.sign_nonce(nonce.unwrap_or_default()));
            Ok(c)
        });
        refused::<C>(opts, "forged signature");
    }

    // A token server sends no nonce; the callback is still asked, with `None`, and can supply the token.
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).token("t0k"));
        let nonces: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let seen = nonces.clone();
        let opts = options(&server.url()).credentials_callback(move |nonce| {
            seen.lock().unwrap().push(nonce.map(str::to_owned));
            let mut c = Credentials::default();
            c.token = Some("t0k".to_owned());
            Ok(c)
        });
        let client: C = must_connect(opts, &server, "token from the callback");
        round_trip(&client, &format!("cbtoken{version:?}"));
        assert_eq!(*nonces.lock().unwrap(), vec![None], "{version:?}");
    }
}

pub(crate) fn credentials_callback_supplies_user_and_password<C: TestClient>() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).user_password("carol", "cb-pass"));
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let opts = options(&server.url()).user_and_password("carol", "wrong").credentials_callback(move |nonce| {
            // No nkey or JWT user is configured: the server sends no nonce.
            assert!(nonce.is_none(), "unexpected nonce {nonce:?}");
            counter.fetch_add(1, Ordering::SeqCst);
            let mut c = Credentials::default();
            c.pass = Some("cb-pass".to_owned());
            Ok(c)
        });
        // The callback's password replaces the option's; the option's user is kept.
        let client: C = must_connect(opts, &server, "callback password");
        round_trip(&client, &format!("cbpass{version:?}"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let opts = options(&server.url()).credentials_callback(|_| {
            let mut c = Credentials::default();
            c.user = Some("carol".to_owned());
            c.pass = Some("nope".to_owned());
            Ok(c)
        });
        refused::<C>(opts, "callback with a wrong password");
    }
}
