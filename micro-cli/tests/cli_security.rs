//! The `micro` binary's TLS and credential options (natscli's names) against real servers configured for each:
//! the right credentials work, the wrong ones end the command quickly with one line and a non-zero exit.

mod common;

use std::time::Duration;

use common::{assert_clean_failure, micro, Output};
use nats_server_harness::auth::{NkeyUser, OperatorFixture};
use nats_server_harness::tls::{ServerTls, TlsFixture};
use nats_server_harness::NatsServer;

/// Well under the 5 s connect timeout the CLI would otherwise wait out, and far from a retry loop.
const QUICK: Duration = Duration::from_secs(4);

/// A request through the server proves the whole path: connect, subscribe (the reply inbox), publish.
fn round_trip(url: &str, extra: &[&str]) -> Output {
    // `micro req` with nobody listening answers "no responders": that is a server reply, so the connection,
    // the handshake and the credentials all worked.
    let mut args = extra.to_vec();
    args.extend(["req", "nobody.here", "hi"]);
    micro(url, &args)
}

fn assert_connected(run: &Output, what: &str) {
    assert!(
        run.stderr.contains("no responders") || run.stdout.contains("no responders"),
        "{what}: expected the server's no-responders answer, got ok={} stdout={:?} stderr={:?}",
        run.status.success(),
        run.stdout,
        run.stderr
    );
}

#[track_caller]
fn assert_refused(run: &Output, what: &str, needle: &str) {
    assert_clean_failure(run, &[needle]);
    assert!(run.elapsed < QUICK, "{what}: took {:?}", run.elapsed);
}

#[test]
fn tls_with_the_right_ca_works_and_an_untrusted_one_is_refused() {
    let fx = TlsFixture::new();
    let server = NatsServer::builder().tls(ServerTls::from_fixture(&fx)).start().unwrap();
    let ca = fx.ca_path().to_str().unwrap().to_owned();
    assert_connected(&round_trip(&server.tls_url(), &["--tlsca", &ca]), "tls:// with --tlsca");
    // The server requires TLS, so a nats:// URL upgrades.
    assert_connected(&round_trip(&server.url(), &["--tlsca", &ca]), "nats:// upgraded with --tlsca");

    let untrusted = fx.untrusted_ca_path().to_str().unwrap().to_owned();
    assert_refused(&round_trip(&server.tls_url(), &["--tlsca", &untrusted]), "untrusted CA", "tls");
    // Without --tlsca the system store does not know the test CA either.
    assert_refused(&round_trip(&server.tls_url(), &[]), "system roots", "tls");
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let fx = TlsFixture::new();
    let server = NatsServer::builder().tls(ServerTls::from_fixture(&fx).verify(true)).start().unwrap();
    let ca = fx.ca_path().to_str().unwrap().to_owned();
    let cert = fx.client_cert_path().to_str().unwrap().to_owned();
    let key = fx.client_key_path().to_str().unwrap().to_owned();
    let args = ["--tlsca", &ca, "--tlscert", &cert, "--tlskey", &key];
    assert_connected(&round_trip(&server.tls_url(), &args), "with a client certificate");
    let run = round_trip(&server.tls_url(), &["--tlsca", &ca]);
    assert!(
        !run.status.success() && run.elapsed < QUICK,
        "without a client certificate: {:?} {:?}",
        run.stderr,
        run.elapsed
    );
    assert_eq!(run.stderr.trim().lines().count(), 1, "{:?}", run.stderr);
    // clap refuses half a key pair before anything connects.
    let run = micro(&server.tls_url(), &["--tlscert", &cert, "req", "x", "y"]);
    assert!(!run.status.success() && run.stderr.contains("--tlskey"), "{:?}", run.stderr);
}

#[test]
fn tls_first_reaches_a_handshake_first_server() {
    let fx = TlsFixture::new();
    let server = NatsServer::builder().tls(ServerTls::from_fixture(&fx).handshake_first(true)).start().unwrap();
    let ca = fx.ca_path().to_str().unwrap().to_owned();
    assert_connected(&round_trip(&server.tls_url(), &["--tlsca", &ca, "--tlsfirst"]), "--tlsfirst");
    let run = round_trip(&server.tls_url(), &["--tlsca", &ca]);
    assert!(!run.status.success(), "a handshake-first server never sends a plaintext INFO: {:?}", run.stderr);
}

#[test]
fn nkey_seed_file_signs_the_nonce() {
    let user = NkeyUser::generate();
    let server = NatsServer::builder().nkey_user(user.public_key()).start().unwrap();
    let dir = std::env::temp_dir().join(format!("micro-nkey-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed_file = dir.join("user.nk");
    std::fs::write(&seed_file, format!("{}\n", user.seed())).unwrap();
    let other_file = dir.join("other.nk");
    std::fs::write(&other_file, NkeyUser::generate().seed()).unwrap();

    assert_connected(&round_trip(&server.url(), &["--nkey", seed_file.to_str().unwrap()]), "--nkey");
    assert_refused(
        &round_trip(&server.url(), &["--nkey", other_file.to_str().unwrap()]),
        "another key",
        "authorization",
    );
    let missing = dir.join("missing.nk");
    assert_refused(&round_trip(&server.url(), &["--nkey", missing.to_str().unwrap()]), "missing file", "nkey");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn creds_file_in_operator_mode() {
    let op = OperatorFixture::new();
    let server = NatsServer::builder().operator(&op).start().unwrap();
    let good = op.user("alice").unwrap().creds_file().unwrap();
    assert_connected(&round_trip(&server.url(), &["--creds", good.path().to_str().unwrap()]), "--creds");

    // A user of an account the server does not know.
    let stranger = OperatorFixture::new().user("mallory").unwrap().creds_file().unwrap();
    assert_refused(
        &round_trip(&server.url(), &["--creds", stranger.path().to_str().unwrap()]),
        "foreign creds",
        "authorization",
    );
    assert_refused(&round_trip(&server.url(), &["--creds", "/nonexistent/x.creds"]), "missing creds", "creds");
}

#[test]
fn user_password_and_token_flags_and_url_credentials() {
    let server = NatsServer::builder().user_password("ann", "s3cret").start().unwrap();
    assert_connected(&round_trip(&server.url(), &["--user", "ann", "--password", "s3cret"]), "flags");
    let with_userinfo = server.url().replace("nats://", "nats://ann:s3cret@");
    assert_connected(&round_trip(&with_userinfo, &[]), "URL userinfo");
    let run = round_trip(&server.url(), &["--user", "ann", "--password", "wrong"]);
    assert_refused(&run, "wrong password", "authorization");
    assert!(!run.stderr.contains("wrong"), "the password is not echoed: {:?}", run.stderr);

    let server = NatsServer::builder().token("t0ken").start().unwrap();
    assert_connected(&round_trip(&server.url(), &["--token", "t0ken"]), "--token");
    assert_refused(&round_trip(&server.url(), &["--token", "nope"]), "wrong token", "authorization");
}
