//! Throw-away TLS material for tests: certificate authorities, server and
//! client certificates, generated fresh with `rcgen`, and the server-side
//! TLS settings ([`ServerTls`]) that put them into a `nats-server` config.
//!
//! ```
//! use nats_server_harness::tls::{ServerTls, TlsFixture};
//! use nats_server_harness::NatsServer;
//!
//! let fixture = TlsFixture::generate().expect("certificates");
//! let server = NatsServer::builder()
//!     .tls(ServerTls::from_fixture(&fixture))
//!     .start()
//!     .expect("TLS server starts");
//! // The INFO is still sent in plaintext before the TLS upgrade.
//! assert!(server.fetch_info().unwrap().contains("\"tls_required\":true"));
//! assert!(server.tls_url().starts_with("tls://127.0.0.1:"));
//! assert!(fixture.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
//! ```

use std::fmt;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

use crate::util::TempDir;
use crate::HarnessError;

/// The default TLS handshake `timeout` written into the server config.
/// nats-server's own default (a couple of seconds at most) is too short for a
/// loaded CI machine.
pub const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(5);

/// A certificate and its private key, as PEM text, DER bytes, and files in
/// the owning [`TlsFixture`]'s directory.
#[derive(Clone)]
pub struct CertKey {
    cert_pem: String,
    key_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

impl CertKey {
    /// The certificate, PEM encoded (`-----BEGIN CERTIFICATE-----`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PKCS#8 PEM encoded (`-----BEGIN PRIVATE KEY-----`, ECDSA P-256).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate, DER encoded.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The private key, PKCS#8 DER encoded.
    pub fn key_der(&self) -> &[u8] {
        &self.key_der
    }

    /// The file holding [`cert_pem`](CertKey::cert_pem).
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The file holding [`key_pem`](CertKey::key_pem).
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }
}

impl fmt::Debug for CertKey {
    /// Shows the paths only (no key material).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertKey").field("cert_path", &self.cert_path).field("key_path", &self.key_path).finish()
    }
}

/// A freshly generated set of TLS certificates in a temp dir that the
/// fixture owns and removes on drop (unless `NATS_HARNESS_KEEP=1`).
///
/// - a self-signed **CA** ([`ca`](TlsFixture::ca));
/// - a **server** certificate signed by the CA, valid for `127.0.0.1` (IP
///   SAN) and `localhost` (DNS SAN), with the `serverAuth` usage;
/// - a **client** certificate signed by the CA (`clientAuth` usage, CN
///   `nats-harness-client`), for mutual TLS;
/// - a server certificate signed by the CA whose only SAN is
///   `wrong-host.invalid` ([`wrong_host_server`](TlsFixture::wrong_host_server)),
///   for hostname-verification failures;
/// - a second, unrelated **untrusted CA** with its own server and client
///   certificates (same SANs / usages), for "unknown authority" failures.
///
/// All keys are ECDSA P-256. Certificates are valid from 1975 to 4096.
/// Files: `ca.pem`, `server-cert.pem`, `server-key.pem`, `client-cert.pem`,
/// `client-key.pem`, `wrong-host-cert.pem`, `wrong-host-key.pem`,
/// `untrusted-ca.pem`, `untrusted-server-cert.pem`, ... (each key next to
/// its certificate as `<name>-key.pem`, CA keys included).
///
/// A server started with [`ServerTls`] gets its own copies of the PEMs, so
/// the fixture may be dropped before the server.
pub struct TlsFixture {
    ca: CertKey,
    server: CertKey,
    client: CertKey,
    wrong_host_server: CertKey,
    untrusted_ca: CertKey,
    untrusted_server: CertKey,
    untrusted_client: CertKey,
    dir: TempDir,
}

impl fmt::Debug for TlsFixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFixture").field("dir", &self.dir.path()).finish_non_exhaustive()
    }
}

/// The SANs of every "good" server certificate.
const SERVER_SANS: [&str; 2] = ["127.0.0.1", "localhost"];

fn tls_error(context: &str, e: rcgen::Error) -> HarnessError {
    HarnessError::Io(std::io::Error::other(format!("generating {context}: {e}")))
}

/// A CA: its certificate (as a [`CertKey`]) and the issuer that signs leaves.
struct Authority {
    cert: CertKey,
    issuer: Issuer<'static, KeyPair>,
}

impl Default for TlsFixture {
    /// Same as [`TlsFixture::new`]: generates a fresh fixture (panics on failure).
    fn default() -> Self {
        Self::new()
    }
}

impl TlsFixture {
    /// Generates every certificate and writes the PEM files to a new temp dir.
    pub fn generate() -> Result<TlsFixture, HarnessError> {
        let dir = TempDir::new("nats-harness-tls")?;
        let ca = authority(dir.path(), "ca", "nats-harness CA")?;
        let untrusted = authority(dir.path(), "untrusted-ca", "nats-harness untrusted CA")?;
        let server_sans: Vec<String> = SERVER_SANS.iter().map(|s| (*s).to_owned()).collect();
        let fixture = TlsFixture {
            server: leaf(dir.path(), "server", &ca.issuer, &server_sans, Role::Server)?,
            client: leaf(dir.path(), "client", &ca.issuer, &[], Role::Client)?,
            wrong_host_server: leaf(
                dir.path(),
                "wrong-host",
                &ca.issuer,
                &["wrong-host.invalid".to_owned()],
                Role::Server,
            )?,
            untrusted_server: leaf(dir.path(), "untrusted-server", &untrusted.issuer, &server_sans, Role::Server)?,
            untrusted_client: leaf(dir.path(), "untrusted-client", &untrusted.issuer, &[], Role::Client)?,
            ca: ca.cert,
            untrusted_ca: untrusted.cert,
            dir,
        };
        Ok(fixture)
    }

    /// Like [`generate`](TlsFixture::generate).
    ///
    /// # Panics
    ///
    /// If the certificates cannot be generated or written.
    #[track_caller]
    pub fn new() -> TlsFixture {
        Self::generate().unwrap_or_else(|e| panic!("nats-server-harness: could not generate TLS fixture: {e}"))
    }

    /// The directory holding the PEM files (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The trusted CA certificate and key (`ca.pem`, `ca-key.pem`).
    pub fn ca(&self) -> &CertKey {
        &self.ca
    }

    /// The trusted CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// The trusted CA certificate file (`ca.pem`).
    pub fn ca_path(&self) -> &Path {
        self.ca.cert_path()
    }

    /// The trusted CA certificate, DER.
    pub fn ca_der(&self) -> &[u8] {
        self.ca.cert_der()
    }

    /// The server certificate (signed by the trusted CA; SANs `127.0.0.1`, `localhost`).
    pub fn server(&self) -> &CertKey {
        &self.server
    }

    /// The server certificate file.
    pub fn server_cert_path(&self) -> &Path {
        self.server.cert_path()
    }

    /// The server private key file.
    pub fn server_key_path(&self) -> &Path {
        self.server.key_path()
    }

    /// The client certificate (signed by the trusted CA), for mutual TLS.
    pub fn client(&self) -> &CertKey {
        &self.client
    }

    /// The client certificate, PEM.
    pub fn client_cert_pem(&self) -> &str {
        self.client.cert_pem()
    }

    /// The client private key, PEM (PKCS#8).
    pub fn client_key_pem(&self) -> &str {
        self.client.key_pem()
    }

    /// The client certificate file.
    pub fn client_cert_path(&self) -> &Path {
        self.client.cert_path()
    }

    /// The client private key file.
    pub fn client_key_path(&self) -> &Path {
        self.client.key_path()
    }

    /// A server certificate signed by the trusted CA whose only SAN is the
    /// DNS name `wrong-host.invalid`: a client dialing `127.0.0.1` or
    /// `localhost` must reject it.
    pub fn wrong_host_server(&self) -> &CertKey {
        &self.wrong_host_server
    }

    /// The unrelated CA, which signed none of the trusted certificates.
    pub fn untrusted_ca(&self) -> &CertKey {
        &self.untrusted_ca
    }

    /// The unrelated CA certificate, PEM.
    pub fn untrusted_ca_pem(&self) -> &str {
        self.untrusted_ca.cert_pem()
    }

    /// The unrelated CA certificate file (`untrusted-ca.pem`).
    pub fn untrusted_ca_path(&self) -> &Path {
        self.untrusted_ca.cert_path()
    }

    /// A server certificate with the usual SANs, signed by the untrusted CA.
    pub fn untrusted_server(&self) -> &CertKey {
        &self.untrusted_server
    }

    /// A client certificate signed by the untrusted CA: a server verifying
    /// clients against the trusted CA must reject it.
    pub fn untrusted_client(&self) -> &CertKey {
        &self.untrusted_client
    }
}

#[derive(Clone, Copy)]
enum Role {
    Server,
    Client,
}

fn write_pair(
    dir: &Path,
    name: &str,
    cert_pem: String,
    cert_der: Vec<u8>,
    key: &KeyPair,
) -> Result<CertKey, HarnessError> {
    let (cert_path, key_path) = if name.ends_with("ca") {
        (dir.join(format!("{name}.pem")), dir.join(format!("{name}-key.pem")))
    } else {
        (dir.join(format!("{name}-cert.pem")), dir.join(format!("{name}-key.pem")))
    };
    let key_pem = key.serialize_pem();
    fs::write(&cert_path, &cert_pem)?;
    fs::write(&key_path, &key_pem)?;
    Ok(CertKey { cert_pem, key_pem, cert_der, key_der: key.serialize_der(), cert_path, key_path })
}

fn authority(dir: &Path, name: &str, common_name: &str) -> Result<Authority, HarnessError> {
    let key = KeyPair::generate().map_err(|e| tls_error(name, e))?;
    let mut params = CertificateParams::default();
    params.distinguished_name.remove(DnType::CommonName);
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.distinguished_name.push(DnType::OrganizationName, "nats-server-harness");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key).map_err(|e| tls_error(name, e))?;
    let cert = write_pair(dir, name, cert.pem(), cert.der().to_vec(), &key)?;
    Ok(Authority { cert, issuer: Issuer::new(params, key) })
}

fn leaf(
    dir: &Path,
    name: &str,
    issuer: &Issuer<'static, KeyPair>,
    sans: &[String],
    role: Role,
) -> Result<CertKey, HarnessError> {
    let key = KeyPair::generate().map_err(|e| tls_error(name, e))?;
    let mut params = CertificateParams::new(sans.to_vec()).map_err(|e| tls_error(name, e))?;
    // `CertificateParams::new` already maps IP strings to IP SANs; make sure
    // the loopback one is an IP SAN even if parsing rules change.
    if sans.iter().any(|s| s == "127.0.0.1") {
        let ip = SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST));
        if !params.subject_alt_names.contains(&ip) {
            params.subject_alt_names.push(ip);
        }
    }
    params.distinguished_name.remove(DnType::CommonName);
    let common_name = match role {
        Role::Server => sans.first().cloned().unwrap_or_else(|| "nats-harness-server".to_owned()),
        Role::Client => "nats-harness-client".to_owned(),
    };
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.distinguished_name.push(DnType::OrganizationName, "nats-server-harness");
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![match role {
        Role::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Role::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    let cert = params.signed_by(&key, issuer).map_err(|e| tls_error(name, e))?;
    write_pair(dir, name, cert.pem(), cert.der().to_vec(), &key)
}

/// How the server handles TLS-first connections (`tls { handshake_first }`,
/// nats-server ≥ 2.10.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HandshakeFirst {
    /// The classic flow: plaintext `INFO`, then the client upgrades.
    #[default]
    Off,
    /// `handshake_first: true`: the server sends nothing until the client
    /// has completed a TLS handshake.
    On,
    /// `handshake_first: "<duration>"`: wait this long for a client TLS
    /// handshake, then fall back to sending `INFO` in plaintext.
    Fallback(Duration),
}

/// Server-side TLS settings: the `tls { ... }` block of the generated config
/// plus the top-level `allow_non_tls`. Set with [`ServerBuilder::tls`](crate::ServerBuilder::tls).
///
/// The PEMs are copied into the server's own temp dir, so the server does not
/// depend on the [`TlsFixture`] they came from.
#[derive(Clone)]
pub struct ServerTls {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) ca_pem: Option<String>,
    pub(crate) verify: bool,
    pub(crate) handshake_first: HandshakeFirst,
    pub(crate) timeout: Duration,
    pub(crate) allow_non_tls: bool,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("ca", &self.ca_pem.is_some())
            .field("verify", &self.verify)
            .field("handshake_first", &self.handshake_first)
            .field("timeout", &self.timeout)
            .field("allow_non_tls", &self.allow_non_tls)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// TLS with this server certificate and key (PEM), no CA, no client
    /// verification, [`DEFAULT_TLS_TIMEOUT`], TLS required.
    pub fn new(cert_pem: &str, key_pem: &str) -> ServerTls {
        ServerTls {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            ca_pem: None,
            verify: false,
            handshake_first: HandshakeFirst::Off,
            timeout: DEFAULT_TLS_TIMEOUT,
            allow_non_tls: false,
        }
    }

    /// The fixture's server certificate and key, with its trusted CA as
    /// `ca_file` (client certificates are not requested unless
    /// [`verify`](ServerTls::verify) is set).
    pub fn from_fixture(fixture: &TlsFixture) -> ServerTls {
        Self::new(fixture.server().cert_pem(), fixture.server().key_pem()).ca(fixture.ca_pem())
    }

    /// The `ca_file` used to verify client certificates (PEM).
    pub fn ca(mut self, ca_pem: &str) -> ServerTls {
        self.ca_pem = Some(ca_pem.to_owned());
        self
    }

    /// `verify: true`: mutual TLS; the server demands a client certificate
    /// signed by the [`ca`](ServerTls::ca) (its INFO then has `"tls_verify":true`).
    pub fn verify(mut self, verify: bool) -> ServerTls {
        self.verify = verify;
        self
    }

    /// `handshake_first: true` (or off). Not supported by nats-server before
    /// 2.10.4: the 2.9 server refuses to start ("unknown field").
    pub fn handshake_first(mut self, enabled: bool) -> ServerTls {
        self.handshake_first = if enabled { HandshakeFirst::On } else { HandshakeFirst::Off };
        self
    }

    /// Sets the TLS-first mode, including the fallback form.
    pub fn handshake_first_mode(mut self, mode: HandshakeFirst) -> ServerTls {
        self.handshake_first = mode;
        self
    }

    /// The TLS handshake `timeout` (default [`DEFAULT_TLS_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> ServerTls {
        self.timeout = timeout;
        self
    }

    /// Top-level `allow_non_tls: true`: TLS becomes optional (INFO says
    /// `"tls_available":true` instead of `"tls_required":true`) and plaintext
    /// clients are accepted. Supported by both 2.9.10 and 2.15.
    pub fn allow_non_tls(mut self, allow: bool) -> ServerTls {
        self.allow_non_tls = allow;
        self
    }

    /// Whether TLS-first is on (in either form).
    pub fn is_handshake_first(&self) -> bool {
        self.handshake_first != HandshakeFirst::Off
    }

    /// Writes the PEMs into `dir` and returns the config text (the `tls`
    /// block, preceded by `allow_non_tls` if set).
    pub(crate) fn render(&self, dir: &Path) -> Result<String, HarnessError> {
        use crate::util::conf_quote;
        use std::fmt::Write as _;
        let cert = dir.join("tls-server-cert.pem");
        let key = dir.join("tls-server-key.pem");
        fs::write(&cert, &self.cert_pem)?;
        fs::write(&key, &self.key_pem)?;
        let mut c = String::new();
        if self.allow_non_tls {
            c.push_str("allow_non_tls: true\n");
        }
        c.push_str("tls {\n");
        let _ = writeln!(c, "  cert_file: {}", conf_quote(&cert.to_string_lossy()));
        let _ = writeln!(c, "  key_file: {}", conf_quote(&key.to_string_lossy()));
        if let Some(ca_pem) = &self.ca_pem {
            let ca = dir.join("tls-ca.pem");
            fs::write(&ca, ca_pem)?;
            let _ = writeln!(c, "  ca_file: {}", conf_quote(&ca.to_string_lossy()));
        }
        if self.verify {
            c.push_str("  verify: true\n");
        }
        let _ = writeln!(c, "  timeout: {}", self.timeout.as_secs_f64());
        match self.handshake_first {
            HandshakeFirst::Off => {}
            HandshakeFirst::On => c.push_str("  handshake_first: true\n"),
            HandshakeFirst::Fallback(delay) => {
                let _ = writeln!(c, "  handshake_first: \"{}ms\"", delay.as_millis().max(1));
            }
        }
        c.push_str("}\n");
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_writes_and_removes_files() {
        let fixture = TlsFixture::generate().unwrap();
        let dir = fixture.dir().to_path_buf();
        for pair in
            [fixture.ca(), fixture.server(), fixture.client(), fixture.untrusted_ca(), fixture.untrusted_server()]
        {
            assert_eq!(fs::read_to_string(pair.cert_path()).unwrap(), pair.cert_pem());
            assert_eq!(fs::read_to_string(pair.key_path()).unwrap(), pair.key_pem());
            assert!(pair.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(pair.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
            assert!(!pair.cert_der().is_empty() && !pair.key_der().is_empty());
        }
        assert_ne!(fixture.ca_pem(), fixture.untrusted_ca_pem());
        assert_eq!(fixture.ca_path(), dir.join("ca.pem"));
        assert_eq!(fixture.server_cert_path(), dir.join("server-cert.pem"));
        drop(fixture);
        assert!(!dir.exists());
    }

    #[test]
    fn fixtures_are_fresh() {
        let a = TlsFixture::generate().unwrap();
        let b = TlsFixture::generate().unwrap();
        assert_ne!(a.ca_pem(), b.ca_pem());
        assert_ne!(a.dir(), b.dir());
    }

    #[test]
    fn renders_tls_block() {
        let fixture = TlsFixture::new();
        let dir = TempDir::new("harness-unit-tls").unwrap();
        let text = ServerTls::from_fixture(&fixture)
            .verify(true)
            .handshake_first(true)
            .allow_non_tls(true)
            .timeout(Duration::from_millis(2500))
            .render(dir.path())
            .unwrap();
        assert!(text.starts_with("allow_non_tls: true\ntls {\n"), "{text}");
        assert!(text.contains("  verify: true\n"), "{text}");
        assert!(text.contains("  timeout: 2.5\n"), "{text}");
        assert!(text.contains("  handshake_first: true\n"), "{text}");
        assert!(text.contains("ca_file"), "{text}");
        let copied = fs::read_to_string(dir.path().join("tls-ca.pem")).unwrap();
        assert_eq!(copied, fixture.ca_pem());

        let fallback = ServerTls::new("c", "k")
            .handshake_first_mode(HandshakeFirst::Fallback(Duration::from_millis(300)))
            .render(dir.path())
            .unwrap();
        assert!(fallback.contains("handshake_first: \"300ms\""), "{fallback}");
        assert!(!fallback.contains("ca_file") && !fallback.contains("verify") && !fallback.contains("allow_non_tls"));
    }
}
