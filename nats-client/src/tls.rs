//! TLS for both clients: the rustls configuration built from [`ConnectOptions`](crate::ConnectOptions), and
//! [`TlsSession`], rustls's own sans-IO client connection behind the few calls a driver needs.
//!
//! Neither client hands its socket to a TLS library. Each reads ciphertext into a buffer, feeds it to the
//! session, takes plaintext out, and writes the ciphertext the session produces, so one implementation serves
//! the blocking client's two threads and the async client on any runtime.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use nats_proto::{ConnectionError, ServerAddr};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::Error;

/// Where a PEM comes from.
#[derive(Clone)]
enum Pem {
    File(PathBuf),
    Data(Vec<u8>),
}

impl Pem {
    fn describe(&self) -> String {
        match self {
            Pem::File(p) => p.display().to_string(),
            Pem::Data(_) => "PEM data".to_owned(),
        }
    }

    fn certs(&self) -> Result<Vec<CertificateDer<'static>>, Error> {
        let certs: Result<Vec<_>, _> = match self {
            Pem::File(p) => CertificateDer::pem_file_iter(p).and_then(|i| i.collect()),
            Pem::Data(d) => CertificateDer::pem_slice_iter(d).collect(),
        };
        let certs = certs.map_err(|e| Error::Options(format!("certificates in {}: {e}", self.describe())))?;
        if certs.is_empty() {
            return Err(Error::Options(format!("no certificate in {}", self.describe())));
        }
        Ok(certs)
    }

    fn key(&self) -> Result<PrivateKeyDer<'static>, Error> {
        match self {
            Pem::File(p) => PrivateKeyDer::from_pem_file(p),
            Pem::Data(d) => PrivateKeyDer::from_pem_slice(d),
        }
        .map_err(|e| Error::Options(format!("private key in {}: {e}", self.describe())))
    }
}

/// The TLS part of the connect options. `Debug` shows sources, never key material.
#[derive(Clone, Default)]
pub(crate) struct TlsOptions {
    roots: Vec<Pem>,
    client_cert: Option<(Pem, Pem)>,
    dangerous_accept_any_server_certificate: bool,
    custom: Option<Arc<ClientConfig>>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("roots", &self.roots.iter().map(Pem::describe).collect::<Vec<_>>())
            .field("client_cert", &self.client_cert.as_ref().map(|(c, _)| c.describe()))
            .field("dangerous_accept_any_server_certificate", &self.dangerous_accept_any_server_certificate)
            .field("custom_config", &self.custom.is_some())
            .finish()
    }
}

impl TlsOptions {
    pub(crate) fn is_configured(&self) -> bool {
        !self.roots.is_empty()
            || self.client_cert.is_some()
            || self.dangerous_accept_any_server_certificate
            || self.custom.is_some()
    }

    pub(crate) fn add_root_file(&mut self, path: PathBuf) {
        self.roots.push(Pem::File(path));
    }

    pub(crate) fn add_root_pem(&mut self, pem: &[u8]) {
        self.roots.push(Pem::Data(pem.to_vec()));
    }

    pub(crate) fn client_cert_files(&mut self, cert: PathBuf, key: PathBuf) {
        self.client_cert = Some((Pem::File(cert), Pem::File(key)));
    }

    pub(crate) fn client_cert_pem(&mut self, cert: &[u8], key: &[u8]) {
        self.client_cert = Some((Pem::Data(cert.to_vec()), Pem::Data(key.to_vec())));
    }

    pub(crate) fn dangerous_accept_any_server_certificate(&mut self) {
        self.dangerous_accept_any_server_certificate = true;
    }

    pub(crate) fn custom(&mut self, config: Arc<ClientConfig>) {
        self.custom = Some(config);
    }

    /// Builds the rustls configuration: files are read now, so a bad path fails `connect` at once.
    pub(crate) fn build(&self) -> Result<Arc<ClientConfig>, Error> {
        if let Some(custom) = &self.custom {
            return Ok(custom.clone());
        }
        // ring builds with a C compiler alone (aws-lc-rs also wants cmake and more), keeping fresh builds fast.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Options(format!("TLS: {e}")))?;
        let builder = if self.dangerous_accept_any_server_certificate {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyServerCertificate(
                provider.signature_verification_algorithms,
            )))
        } else {
            let mut roots = RootCertStore::empty();
            if self.roots.is_empty() {
                // The system's trust store, as other NATS clients use.
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
            for pem in &self.roots {
                for cert in pem.certs()? {
                    roots.add(cert).map_err(|e| Error::Options(format!("CA in {}: {e}", pem.describe())))?;
                }
            }
            builder.with_root_certificates(roots)
        };
        let config = match &self.client_cert {
            Some((cert, key)) => builder
                .with_client_auth_cert(cert.certs()?, key.key()?)
                .map_err(|e| Error::Options(format!("client certificate {}: {e}", cert.describe())))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// The rustls configuration a connection uses, built at `connect` when TLS options were given, else on the
/// first server that asks for TLS (the system roots are read only then).
#[derive(Debug, Default)]
pub struct TlsConfig {
    options: TlsOptions,
    built: OnceLock<Arc<ClientConfig>>,
}

impl TlsConfig {
    pub(crate) fn new(options: TlsOptions) -> Result<Self, Error> {
        let this = Self { options, built: OnceLock::new() };
        if this.options.is_configured() {
            let _ = this.built.set(this.options.build()?);
        }
        Ok(this)
    }

    /// A client session for `addr`, checking the certificate against its host name (or IP address).
    pub fn session(&self, addr: &ServerAddr) -> Result<TlsSession, ConnectionError> {
        let config = match self.built.get() {
            Some(c) => c.clone(),
            None => {
                let c = self.options.build().map_err(|e| ConnectionError::Tls(e.to_string()))?;
                self.built.get_or_init(|| c).clone()
            }
        };
        let host = addr.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let name = ServerName::try_from(host).map_err(|e| ConnectionError::Tls(format!("server name: {e}")))?;
        let conn = ClientConnection::new(config, name).map_err(|e| ConnectionError::Tls(e.to_string()))?;
        Ok(TlsSession { conn, backlog: Vec::new() })
    }
}

/// One TLS client connection without a socket: ciphertext in and out, plaintext in and out.
pub struct TlsSession {
    conn: ClientConnection,
    /// Ciphertext read but not yet taken by rustls.
    backlog: Vec<u8>,
}

/// rustls's limit on received plaintext not yet read.
const PLAINTEXT_LIMIT: usize = 16 * 1024;

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSession").field("handshaking", &self.conn.is_handshaking()).finish()
    }
}

/// A TLS failure as an I/O error a driver can tell from a plain loss (kind `InvalidData`).
fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// The connection error for an I/O error from a session: TLS failures are [`ConnectionError::Tls`], a
/// handshake past the connect deadline is [`ConnectionError::ConnectTimeout`].
pub fn connection_error(e: &io::Error) -> ConnectionError {
    match e.kind() {
        io::ErrorKind::InvalidData => ConnectionError::Tls(e.to_string()),
        io::ErrorKind::TimedOut => ConnectionError::ConnectTimeout,
        _ => ConnectionError::TransportClosed,
    }
}

impl TlsSession {
    /// True until the handshake is done.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// True when there is ciphertext to send.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Feeds ciphertext read from the socket. A TLS failure (bad certificate, alert from the server) is an
    /// error of kind `InvalidData`; its ciphertext (an alert) may still be waiting to be sent. What rustls
    /// cannot take yet (its plaintext buffer is full) is kept and fed as the plaintext is read.
    pub fn read_tls(&mut self, data: &[u8]) -> io::Result<()> {
        if !self.backlog.is_empty() {
            self.backlog.extend_from_slice(data);
            return self.feed_backlog();
        }
        let rest = self.feed(data)?;
        self.backlog.extend_from_slice(rest);
        Ok(())
    }

    fn feed<'a>(&mut self, mut data: &'a [u8]) -> io::Result<&'a [u8]> {
        while !data.is_empty() {
            let n = self.conn.read_tls(&mut data)?;
            let state = self.conn.process_new_packets().map_err(tls_error)?;
            // rustls refuses more ciphertext while it holds over this much plaintext.
            if n == 0 || state.plaintext_bytes_to_read() > PLAINTEXT_LIMIT {
                break;
            }
        }
        Ok(data)
    }

    fn feed_backlog(&mut self) -> io::Result<()> {
        let backlog = std::mem::take(&mut self.backlog);
        let rest = self.feed(&backlog)?.len();
        self.backlog = backlog;
        let done = self.backlog.len() - rest;
        self.backlog.drain(..done);
        Ok(())
    }

    /// Takes decrypted bytes. `Ok(0)`: the server closed the session; `WouldBlock`: none yet.
    pub fn read_plaintext(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.conn.reader().read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !self.backlog.is_empty() => {
                self.feed_backlog()?;
                self.conn.reader().read(buf)
            }
            other => other,
        }
    }

    /// Encrypts as much of `bufs` as the session takes (its send buffer is bounded). Returns bytes taken.
    pub fn write_plaintext(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.conn.writer().write_vectored(bufs)
    }

    /// Moves pending ciphertext into `out`.
    pub fn write_tls(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            // Writing to a Vec cannot fail.
            if self.conn.write_tls(out).is_err() {
                break;
            }
        }
    }
}

/// Accepts any server certificate, still checking that the handshake is signed by its key. For tests and
/// for servers whose certificate cannot be checked; it gives up protection against a man in the middle.
#[derive(Debug)]
struct AcceptAnyServerCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
