//! Integration tests of the TLS and authentication fixtures against real
//! nats-server processes (2.15 and 2.9 where the feature exists).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nats_proto::ServerInfo;
use nats_server_harness::auth::{format_creds, AuthUser, NkeyUser, OperatorFixture, Permissions, UserOptions};
use nats_server_harness::tls::{CertKey, HandshakeFirst, ServerTls, TlsFixture};
use nats_server_harness::{HarnessError, NatsServer, ServerVersion};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

const BOTH: [ServerVersion; 2] = [ServerVersion::Current, ServerVersion::Old];
const IO_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// A tiny raw NATS connection over TCP or TLS.

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

struct Conn {
    reader: BufReader<Stream>,
    /// The INFO line (without CRLF).
    info: String,
}

impl Conn {
    fn new(stream: Stream, info: String) -> Conn {
        Conn { reader: BufReader::new(stream), info }
    }

    /// Connects in plaintext and reads the INFO.
    fn plain(server: &NatsServer) -> Conn {
        let mut tcp = tcp(server);
        let info = read_line_unbuffered(&mut tcp).expect("plaintext INFO");
        Conn::new(Stream::Plain(tcp), info)
    }

    fn parsed_info(&self) -> ServerInfo {
        parse_info(&self.info)
    }

    fn nonce(&self) -> String {
        self.parsed_info().nonce.unwrap_or_else(|| panic!("no nonce in {}", self.info))
    }

    fn send(&mut self, data: &str) -> io::Result<()> {
        let stream = self.reader.get_mut();
        stream.write_all(data.as_bytes())?;
        stream.flush()
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        Ok(line.trim_end().to_owned())
    }

    /// The next line that is not `PING` (answered) or `+OK`.
    fn reply(&mut self) -> io::Result<String> {
        loop {
            match self.line()?.as_str() {
                "PING" => self.send("PONG\r\n")?,
                "+OK" => {}
                other => return Ok(other.to_owned()),
            }
        }
    }

    /// Sends `CONNECT <json>` and `PING`, returns the first reply (`PONG` on
    /// success, `-ERR ...` otherwise) or the I/O error.
    fn handshake(&mut self, connect_json: &str) -> io::Result<String> {
        self.send(&format!("CONNECT {connect_json}\r\nPING\r\n"))?;
        self.reply()
    }

    /// Sends `data` then `PING` and returns every line received before the
    /// `PONG` (empty when the server accepted `data` silently).
    fn round_trip(&mut self, data: &str) -> Vec<String> {
        self.send(&format!("{data}PING\r\n")).expect("send");
        let mut lines = Vec::new();
        loop {
            match self.reply().expect("reply") {
                pong if pong == "PONG" => return lines,
                line => lines.push(line),
            }
        }
    }

    /// [`round_trip`](Conn::round_trip), expecting exactly one `-ERR` line
    /// containing `needle`.
    fn expect_err(&mut self, data: &str, needle: &str) {
        let lines = self.round_trip(data);
        assert!(
            lines.len() == 1 && lines[0].starts_with("-ERR") && lines[0].contains(needle),
            "after {data:?} expected -ERR with {needle:?}, got {lines:?}"
        );
    }
}

fn tcp(server: &NatsServer) -> TcpStream {
    let tcp = TcpStream::connect_timeout(&server.addr(), IO_TIMEOUT).expect("TCP connect");
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp
}

/// Reads one CRLF-terminated line byte by byte, so that no TLS bytes that
/// follow are swallowed by a buffer.
fn read_line_unbuffered(stream: &mut TcpStream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a full line"));
        }
        line.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
}

fn parse_info(line: &str) -> ServerInfo {
    let json = line.strip_prefix("INFO ").unwrap_or_else(|| panic!("not an INFO line: {line:?}"));
    ServerInfo::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("INFO does not parse ({e}): {line}"))
}

fn start(builder: nats_server_harness::ServerBuilder) -> NatsServer {
    builder.start().unwrap_or_else(|e| panic!("server did not start: {e}"))
}

// ---------------------------------------------------------------------------
// rustls client side.

fn client_config(ca_der: &[u8], client_cert: Option<&CertKey>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der.to_vec())).expect("CA certificate parses");
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let config = match client_cert {
        Some(pair) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(pair.cert_der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pair.key_der().to_vec())),
            )
            .expect("client certificate accepted by rustls"),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// Runs the TLS handshake to completion on `tcp`.
fn tls_upgrade(
    tcp: TcpStream,
    config: Arc<ClientConfig>,
    name: &str,
) -> io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let name = ServerName::try_from(name.to_owned()).expect("valid server name");
    let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// Classic flow: plaintext INFO, then the TLS upgrade.
fn connect_tls(server: &NatsServer, config: Arc<ClientConfig>, name: &str) -> io::Result<Conn> {
    let mut tcp = tcp(server);
    let info = read_line_unbuffered(&mut tcp)?;
    let tls = tls_upgrade(tcp, config, name)?;
    Ok(Conn::new(Stream::Tls(Box::new(tls)), info))
}

/// TLS-first flow: the handshake, then INFO over TLS.
fn connect_tls_first(server: &NatsServer, config: Arc<ClientConfig>) -> io::Result<Conn> {
    let tls = tls_upgrade(tcp(server), config, "127.0.0.1")?;
    let mut conn = Conn::new(Stream::Tls(Box::new(tls)), String::new());
    conn.info = conn.line()?;
    Ok(conn)
}

/// A TLS connection attempt the server must reject with a fatal TLS alert,
/// during the handshake or (TLS 1.3: the client finishes first) on the first
/// read.
fn assert_tls_rejected(result: io::Result<Conn>, what: &str) {
    let err = match result {
        Err(e) => e,
        Ok(mut conn) => match conn.handshake("{\"verbose\":false}") {
            Err(e) => e,
            Ok(reply) => panic!("{what}: the server accepted the connection and replied {reply:?}"),
        },
    };
    assert!(err.to_string().contains("alert"), "{what}: expected a TLS alert, got {err}");
}

// ---------------------------------------------------------------------------
// TLS

#[test]
fn tls_server_sends_plaintext_info_with_tls_required() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).tls(ServerTls::from_fixture(&fixture)));
        assert_eq!(server.tls_url(), format!("tls://127.0.0.1:{}", server.port()));
        assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
        assert!(!server.tls_handshake_first());
        let config = std::fs::read_to_string(server.config_path()).unwrap();
        assert!(config.contains("timeout: 5\n"), "{config}");
        assert!(!config.contains("verify"), "{config}");

        let conn = Conn::plain(&server);
        let info = conn.parsed_info();
        assert!(info.tls_required, "{version:?}: {}", conn.info);
        assert!(!info.tls_verify, "{version:?}: {}", conn.info);
        assert!(!info.tls_available, "{version:?}: {}", conn.info);
        assert!(server.fetch_info().unwrap().contains("\"tls_required\":true"), "{version:?}");

        // A client that does not upgrade is disconnected.
        let mut conn = Conn::plain(&server);
        let reply = conn.handshake("{\"verbose\":false}");
        assert!(reply.is_err(), "{version:?}: plaintext client got {reply:?}");
    }
}

#[test]
fn tls_handshake_with_trusted_ca_then_pong() {
    let fixture = TlsFixture::new();
    let config = client_config(fixture.ca_der(), None);
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).tls(ServerTls::from_fixture(&fixture)));
        for name in ["127.0.0.1", "localhost"] {
            let mut conn = connect_tls(&server, config.clone(), name)
                .unwrap_or_else(|e| panic!("{version:?}: TLS handshake as {name} failed: {e}\n{}", server.log()));
            assert!(conn.parsed_info().tls_required);
            assert_eq!(conn.handshake("{\"verbose\":false,\"tls_required\":true}").unwrap(), "PONG", "{version:?}");
            assert_eq!(conn.round_trip("SUB t 1\r\nPUB t 2\r\nhi\r\n"), ["MSG t 1 2", "hi"]);
        }
    }
}

#[test]
fn tls_untrusted_ca_and_wrong_host_are_rejected_by_the_client() {
    let fixture = TlsFixture::new();
    let untrusted = client_config(fixture.untrusted_ca().cert_der(), None);
    let trusted = client_config(fixture.ca_der(), None);
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).tls(ServerTls::from_fixture(&fixture)));
        let err = connect_tls(&server, untrusted.clone(), "127.0.0.1").err().expect("untrusted CA must fail");
        let text = err.to_string().to_lowercase();
        assert!(text.contains("unknownissuer") || text.contains("unknown issuer"), "{version:?}: {err}");

        let wrong = fixture.wrong_host_server();
        let server =
            start(NatsServer::builder().version(version).tls(ServerTls::new(wrong.cert_pem(), wrong.key_pem())));
        let err = connect_tls(&server, trusted.clone(), "127.0.0.1").err().expect("wrong host name must fail");
        assert!(err.to_string().contains("not valid for name"), "{version:?}: {err}");

        // The untrusted CA's own server certificate verifies against that CA.
        let other = fixture.untrusted_server();
        let server =
            start(NatsServer::builder().version(version).tls(ServerTls::new(other.cert_pem(), other.key_pem())));
        let mut conn = connect_tls(&server, untrusted.clone(), "localhost").expect("handshake with its own CA");
        assert_eq!(conn.handshake("{}").unwrap(), "PONG");
    }
}

#[test]
fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).tls(ServerTls::from_fixture(&fixture).verify(true)));
        let config = std::fs::read_to_string(server.config_path()).unwrap();
        assert!(config.contains("verify: true") && config.contains("ca_file"), "{config}");

        let with_cert = client_config(fixture.ca_der(), Some(fixture.client()));
        let mut conn = connect_tls(&server, with_cert, "127.0.0.1")
            .unwrap_or_else(|e| panic!("{version:?}: mTLS handshake failed: {e}\n{}", server.log()));
        let info = conn.parsed_info();
        assert!(info.tls_required && info.tls_verify, "{version:?}: {}", conn.info);
        assert_eq!(conn.handshake("{\"verbose\":false}").unwrap(), "PONG", "{version:?}");

        let without = client_config(fixture.ca_der(), None);
        assert_tls_rejected(connect_tls(&server, without, "127.0.0.1"), "no client certificate");

        let foreign = client_config(fixture.ca_der(), Some(fixture.untrusted_client()));
        assert_tls_rejected(connect_tls(&server, foreign, "127.0.0.1"), "client certificate from another CA");
    }
}

#[test]
fn allow_non_tls_makes_tls_optional() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server =
            start(NatsServer::builder().version(version).tls(ServerTls::from_fixture(&fixture).allow_non_tls(true)));
        let mut conn = Conn::plain(&server);
        let info = conn.parsed_info();
        assert!(info.tls_available && !info.tls_required, "{version:?}: {}", conn.info);
        assert_eq!(conn.handshake("{\"verbose\":false}").unwrap(), "PONG", "{version:?}: plaintext client");

        let mut tls = connect_tls(&server, client_config(fixture.ca_der(), None), "127.0.0.1").expect("TLS too");
        assert_eq!(tls.handshake("{\"verbose\":false}").unwrap(), "PONG", "{version:?}: TLS client");
    }
}

#[test]
fn handshake_first_sends_nothing_in_plaintext() {
    let fixture = TlsFixture::new();
    let server = start(
        NatsServer::builder()
            .version(ServerVersion::Current)
            .tls(ServerTls::from_fixture(&fixture).handshake_first(true)),
    );
    assert!(server.tls_handshake_first());
    assert!(std::fs::read_to_string(server.config_path()).unwrap().contains("handshake_first: true"));

    let mut raw = tcp(&server);
    raw.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 64];
    let started = Instant::now();
    match raw.read(&mut buf) {
        Ok(n) => panic!("TLS-first server sent {n} plaintext bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => assert!(matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut), "{e}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(250));

    let mut conn = connect_tls_first(&server, client_config(fixture.ca_der(), None))
        .unwrap_or_else(|e| panic!("TLS-first handshake failed: {e}\n{}", server.log()));
    let info = conn.parsed_info();
    assert!(info.tls_required, "{}", conn.info);
    assert_eq!(info.port, server.port(), "{}", conn.info);
    assert_eq!(conn.handshake("{\"verbose\":false}").unwrap(), "PONG");
}

#[test]
fn handshake_first_fallback_sends_info_after_the_delay() {
    let fixture = TlsFixture::new();
    let tls =
        ServerTls::from_fixture(&fixture).handshake_first_mode(HandshakeFirst::Fallback(Duration::from_millis(100)));
    let server = start(NatsServer::builder().tls(tls));
    let conn = Conn::plain(&server);
    assert!(conn.parsed_info().tls_required, "{}", conn.info);
    let mut tls = connect_tls_first(&server, client_config(fixture.ca_der(), None)).expect("TLS-first also works");
    assert_eq!(tls.handshake("{}").unwrap(), "PONG");
}

#[test]
fn handshake_first_is_refused_by_the_old_server() {
    let fixture = TlsFixture::new();
    let err = NatsServer::builder()
        .version(ServerVersion::Old)
        .tls(ServerTls::from_fixture(&fixture).handshake_first(true))
        .start()
        .expect_err("nats-server 2.9 has no handshake_first");
    assert!(matches!(err, HarnessError::Exited { .. }), "{err}");
    assert!(err.log().unwrap_or_default().contains("handshake_first"), "{err}");
}

// ---------------------------------------------------------------------------
// Config-file authentication

#[test]
fn nkey_user_signs_the_nonce() {
    let user = NkeyUser::generate();
    let other = NkeyUser::generate();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).nkey_user(user.public_key()));
        let mut conn = Conn::plain(&server);
        let info = conn.parsed_info();
        assert!(info.auth_required, "{version:?}: {}", conn.info);
        let nonce = conn.nonce();
        let connect =
            format!(r#"{{"verbose":false,"nkey":"{}","sig":"{}"}}"#, user.public_key(), user.sign_nonce(&nonce));
        assert_eq!(conn.handshake(&connect).unwrap(), "PONG", "{version:?}");

        // A signature by another key is refused.
        let mut conn = Conn::plain(&server);
        let nonce = conn.nonce();
        let forged = format!(r#"{{"nkey":"{}","sig":"{}"}}"#, user.public_key(), other.sign_nonce(&nonce));
        let reply = conn.handshake(&forged).unwrap();
        assert!(reply.contains("Authorization Violation"), "{version:?}: {reply}");

        // So is an unknown key with a valid signature.
        let mut conn = Conn::plain(&server);
        let nonce = conn.nonce();
        let unknown = format!(r#"{{"nkey":"{}","sig":"{}"}}"#, other.public_key(), other.sign_nonce(&nonce));
        assert!(conn.handshake(&unknown).unwrap().contains("Authorization Violation"), "{version:?}");
    }
}

#[test]
fn config_users_with_permissions() {
    let nkey = NkeyUser::generate();
    let limited = Permissions::new()
        .allow_publish("allowed.>")
        .deny_publish("allowed.secret")
        .allow_subscribe("allowed.>")
        .allow_subscribe("_INBOX.>");
    for version in BOTH {
        let server = start(
            NatsServer::builder()
                .version(version)
                .auth_user(AuthUser::password("admin", "s3cret"))
                .auth_user(AuthUser::password("limited", "pw").permissions(limited.clone()))
                .auth_user(AuthUser::nkey(nkey.public_key()).permissions(Permissions::new().deny_subscribe(">"))),
        );
        let mut admin = Conn::plain(&server);
        assert!(admin.parsed_info().auth_required);
        assert_eq!(admin.handshake(r#"{"verbose":false,"user":"admin","pass":"s3cret"}"#).unwrap(), "PONG");
        assert!(admin.round_trip("SUB anything 1\r\n").is_empty());

        let mut bad = Conn::plain(&server);
        assert!(bad.handshake(r#"{"user":"admin","pass":"nope"}"#).unwrap().contains("Authorization Violation"));

        let mut conn = Conn::plain(&server);
        assert_eq!(conn.handshake(r#"{"verbose":false,"user":"limited","pass":"pw"}"#).unwrap(), "PONG");
        let lines = conn.round_trip("SUB allowed.x 1\r\nPUB allowed.x 2\r\nok\r\n");
        assert_eq!(lines, ["MSG allowed.x 1 2", "ok"], "{version:?}");
        conn.expect_err("PUB other 0\r\n\r\n", "Permissions Violation for Publish to \"other\"");
        conn.expect_err("PUB allowed.secret 0\r\n\r\n", "Permissions Violation for Publish to \"allowed.secret\"");
        conn.expect_err("SUB other 2\r\n", "Permissions Violation for Subscription to \"other\"");
        assert!(conn.round_trip("SUB _INBOX.abc 3\r\n").is_empty(), "{version:?}");

        let mut nk = Conn::plain(&server);
        let nonce = nk.nonce();
        let connect =
            format!(r#"{{"verbose":false,"nkey":"{}","sig":"{}"}}"#, nkey.public_key(), nkey.sign_nonce(&nonce));
        assert_eq!(nk.handshake(&connect).unwrap(), "PONG", "{version:?}");
        nk.expect_err("SUB foo 1\r\n", "Permissions Violation for Subscription to \"foo\"");
        assert!(nk.round_trip("PUB foo 0\r\n\r\n").is_empty(), "{version:?}");
    }
}

// ---------------------------------------------------------------------------
// Operator mode (JWT)

/// Extracts the JWT and seed from a creds file the way a client would.
fn parse_creds(text: &str) -> (String, String) {
    let block = |begin: &str| {
        let mut lines = text.lines().skip_while(|l| !l.contains(begin));
        lines.next().unwrap_or_else(|| panic!("no {begin} in {text}"));
        lines.next().expect("a line after the marker").trim().to_owned()
    };
    (block("BEGIN NATS USER JWT"), block("BEGIN USER NKEY SEED"))
}

fn jwt_connect(conn: &Conn, jwt: &str, seed: &str) -> String {
    let sig = nats_server_harness::auth::sign_nonce(seed, &conn.nonce()).expect("valid seed");
    format!(r#"{{"verbose":false,"jwt":"{jwt}","sig":"{sig}"}}"#)
}

#[test]
fn operator_mode_accepts_jwt_users_from_creds_files() {
    let operator = OperatorFixture::new();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).operator(&operator));
        let config = std::fs::read_to_string(server.config_path()).unwrap();
        assert!(config.contains("resolver: MEMORY") && config.contains(operator.account_public_key()), "{config}");

        let user = operator.user("alice").unwrap();
        let creds = user.creds_file().unwrap();
        let (jwt, seed) = parse_creds(&std::fs::read_to_string(creds.path()).unwrap());
        assert_eq!((jwt.as_str(), seed.as_str()), (user.jwt(), user.seed()));

        let mut conn = Conn::plain(&server);
        let info = conn.parsed_info();
        assert!(info.auth_required && info.nonce.is_some(), "{version:?}: {}", conn.info);
        let connect = jwt_connect(&conn, &jwt, &seed);
        let reply = conn.handshake(&connect).unwrap();
        assert_eq!(reply, "PONG", "{version:?}\n{}", server.log());
        assert_eq!(conn.round_trip("SUB a.b 1\r\nPUB a.b 1\r\nx\r\n"), ["MSG a.b 1 1", "x"]);

        // A different user's seed cannot sign for this JWT.
        let mallory = operator.user("mallory").unwrap();
        let mut conn = Conn::plain(&server);
        let connect = jwt_connect(&conn, user.jwt(), mallory.seed());
        assert!(conn.handshake(&connect).unwrap().contains("Authorization Violation"), "{version:?}");

        // A user signed by an account the server does not know is refused.
        let stranger = OperatorFixture::new().user("stranger").unwrap();
        let mut conn = Conn::plain(&server);
        let connect = jwt_connect(&conn, stranger.jwt(), stranger.seed());
        assert!(conn.handshake(&connect).unwrap().contains("Authorization Violation"), "{version:?}");

        // The system account has its own users.
        let sys = operator.system_user("sys").unwrap();
        let mut conn = Conn::plain(&server);
        let connect = jwt_connect(&conn, sys.jwt(), sys.seed());
        assert_eq!(conn.handshake(&connect).unwrap(), "PONG", "{version:?}");
    }
}

#[test]
fn operator_mode_jwt_permissions_and_expiry() {
    let operator = OperatorFixture::new();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).operator(&operator));
        let limited = operator
            .user_with("limited", UserOptions::new().permissions(Permissions::new().allow_publish("ok.>")))
            .unwrap();
        let mut conn = Conn::plain(&server);
        let connect = jwt_connect(&conn, limited.jwt(), limited.seed());
        assert_eq!(conn.handshake(&connect).unwrap(), "PONG", "{version:?}");
        assert!(conn.round_trip("PUB ok.1 0\r\n\r\n").is_empty(), "{version:?}");
        conn.expect_err("PUB nope 0\r\n\r\n", "Permissions Violation for Publish to \"nope\"");

        let expired = operator
            .user_with("expired", UserOptions::new().expires_at(SystemTime::now() - Duration::from_secs(60)))
            .unwrap();
        let mut conn = Conn::plain(&server);
        let connect = jwt_connect(&conn, expired.jwt(), expired.seed());
        let reply = conn.handshake(&connect).unwrap();
        assert!(reply.contains("Authorization Violation"), "{version:?}: expired user got {reply:?}");

        // A bearer-token user needs no nonce signature.
        let bearer = operator.user_with("bearer", UserOptions::new().bearer_token(true)).unwrap();
        let mut conn = Conn::plain(&server);
        let connect = format!(r#"{{"verbose":false,"jwt":"{}"}}"#, bearer.jwt());
        assert_eq!(conn.handshake(&connect).unwrap(), "PONG", "{version:?}\n{}", server.log());
    }
}

#[test]
fn operator_mode_account_has_jetstream() {
    let operator = OperatorFixture::new();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).operator(&operator).jetstream(true));
        let user = operator.user("js").unwrap();
        let mut conn = Conn::plain(&server);
        let connect = jwt_connect(&conn, user.jwt(), user.seed());
        assert_eq!(conn.handshake(&connect).unwrap(), "PONG", "{version:?}\n{}", server.log());
        conn.send("SUB _INBOX.js 1\r\nPUB $JS.API.INFO _INBOX.js 0\r\n\r\n").unwrap();
        let reply = conn.reply().unwrap();
        assert!(reply.starts_with("MSG _INBOX.js 1"), "{version:?}: {reply}");
        let body = conn.line().unwrap();
        assert!(body.contains("io.nats.jetstream.api.v1.account_info_response"), "{version:?}: {body}");
        assert!(!body.contains("\"error\""), "{version:?}: JetStream not enabled for the account: {body}");
    }
}

#[test]
fn creds_text_matches_the_standard_layout() {
    let text = format_creds("JWT", "SEED");
    let expected = "-----BEGIN NATS USER JWT-----\nJWT\n------END NATS USER JWT------\n\n\
                    ************************* IMPORTANT *************************\n\
                    NKEY Seed printed below can be used to sign and prove identity.\n\
                    NKEYs are sensitive and should be treated as secrets.\n\n\
                    -----BEGIN USER NKEY SEED-----\nSEED\n------END USER NKEY SEED------\n\n\
                    *************************************************************\n";
    assert_eq!(text, expected);
}

#[test]
fn tls_and_nkey_auth_combine() {
    let fixture = TlsFixture::new();
    let user = NkeyUser::generate();
    let server = start(NatsServer::builder().tls(ServerTls::from_fixture(&fixture)).nkey_user(user.public_key()));
    let mut conn = connect_tls(&server, client_config(fixture.ca_der(), None), "127.0.0.1").expect("TLS");
    let info = conn.parsed_info();
    assert!(info.tls_required && info.auth_required, "{}", conn.info);
    let connect =
        format!(r#"{{"verbose":false,"nkey":"{}","sig":"{}"}}"#, user.public_key(), user.sign_nonce(&conn.nonce()));
    assert_eq!(conn.handshake(&connect).unwrap(), "PONG");
}
