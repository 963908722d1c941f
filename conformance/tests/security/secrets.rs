//! Secrets never show in `Debug` output: of the connect options (every credential kind, TLS keys) and of the
//! credentials a callback returns. No client is involved, so this runs once, not per client.

use nats_client::ConnectOptions;
use nats_proto::Credentials;
use nats_server_harness::auth::{NkeyUser, OperatorFixture};
use nats_server_harness::tls::TlsFixture;

use crate::support::assert_no_pem_body;

#[test]
fn debug_output_never_shows_secrets() {
    let fixture = TlsFixture::new();
    let nkey = NkeyUser::generate();
    let operator = OperatorFixture::new();
    let alice = operator.user("alice").unwrap();
    let creds = alice.creds_file().unwrap();
    let key_pem = fixture.client_key_pem();
    let url = "nats://someone:url-pa55word@127.0.0.1:4222";

    let cases: Vec<(&str, ConnectOptions, Vec<&str>)> = vec![
        ("password", ConnectOptions::new().user_and_password("u", "hunter2-pa55"), vec!["hunter2-pa55"]),
        ("URL password", ConnectOptions::new().server(url), vec!["url-pa55word"]),
        ("token", ConnectOptions::new().token("t0ken-very-secret"), vec!["t0ken-very-secret"]),
        ("nkey seed", ConnectOptions::new().nkey(nkey.seed()), vec![nkey.seed()]),
        ("creds string", ConnectOptions::new().credentials(&alice.creds()), vec![alice.jwt(), alice.seed()]),
        ("creds file", ConnectOptions::new().credentials_file(creds.path()), vec![alice.jwt(), alice.seed()]),
        ("jwt + seed", ConnectOptions::new().jwt(alice.jwt(), alice.seed()), vec![alice.jwt(), alice.seed()]),
        (
            "client key PEM",
            ConnectOptions::new().add_client_certificate_pem(fixture.client_cert_pem().as_bytes(), key_pem.as_bytes()),
            vec![key_pem],
        ),
        (
            "client key file",
            ConnectOptions::new().add_client_certificate(fixture.client_cert_path(), fixture.client_key_path()),
            vec![key_pem],
        ),
    ];
    let all = ConnectOptions::new()
        .server(url)
        .user_and_password("u", "hunter2-pa55")
        .token("t0ken-very-secret")
        .add_client_certificate_pem(fixture.client_cert_pem().as_bytes(), key_pem.as_bytes());
    for (what, opts, secrets) in cases {
        let shown = format!("{opts:?}");
        assert!(shown.starts_with("ConnectOptions"), "{shown}");
        for secret in &secrets {
            if secret.contains("-----BEGIN") {
                assert_no_pem_body(&shown, secret, what);
            } else {
                assert!(!shown.contains(secret), "{what}: Debug shows the secret: {shown}");
                // Not even a recognisable piece of it.
                assert!(!shown.contains(&secret[..12]), "{what}: Debug shows part of the secret: {shown}");
            }
        }
        let pretty = format!("{opts:#?}");
        for secret in secrets.iter().filter(|s| !s.contains("-----BEGIN")) {
            assert!(!pretty.contains(secret), "{what}: pretty Debug shows the secret");
        }
    }
    // Everything at once, plus a credentials callback.
    let all = all.nkey(nkey.seed()).credentials_callback(|_| Ok(Credentials::default()));
    let shown = format!("{all:?}");
    for secret in ["hunter2-pa55", "t0ken-very-secret", "url-pa55word", nkey.seed()] {
        assert!(!shown.contains(secret), "Debug shows {secret}: {shown}");
    }
    assert_no_pem_body(&shown, key_pem, "all options");
    // The user name is not a secret, and it helps to see it.
    assert!(shown.contains("\"u\""), "{shown}");

    // Credentials as a callback returns them.
    let mut c = Credentials::default();
    c.user = Some("u".into());
    c.pass = Some("cred-pa55".into());
    c.token = Some("cred-t0ken".into());
    c.jwt = Some(alice.jwt().to_owned());
    c.sig = Some("c2lnbmF0dXJlLXNlY3JldA".into());
    let shown = format!("{c:?}");
    for secret in ["cred-pa55", "cred-t0ken", alice.jwt(), "c2lnbmF0dXJlLXNlY3JldA"] {
        assert!(!shown.contains(secret), "Credentials Debug shows {secret}: {shown}");
    }
}
