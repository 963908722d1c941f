//! `ConnectOptions`: everything a connection can be told, as a builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use nats_proto::{Config, Credentials, ReconnectPolicy, ServerAddr};

use crate::event::Event;
use crate::Error;

/// Per-subscription limits on messages received but not yet taken by the subscriber. Past either limit,
/// messages are dropped and counted, and one [`Event::SlowConsumer`] reports the episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimits {
    /// Messages.
    pub messages: usize,
    /// Bytes of headers plus payload.
    pub bytes: usize,
}

impl Default for PendingLimits {
    fn default() -> Self {
        Self { messages: 512 * 1024, bytes: 64 << 20 }
    }
}

/// A function called with every connection event.
pub type EventCallback = Arc<dyn Fn(Event) + Send + Sync>;

/// Connection options, shared by both clients. Defaults follow ADR-40 where it sets one.
#[derive(Clone)]
pub struct ConnectOptions {
    config: Config,
    urls: Vec<String>,
    request_timeout: Duration,
    flush_timeout: Duration,
    pending: PendingLimits,
    event_callback: Option<EventCallback>,
    /// The first invalid option (bad seed, unreadable file), reported by `connect`.
    invalid: Option<String>,
    #[cfg(feature = "tls")]
    tls: crate::tls::TlsOptions,
    #[cfg(feature = "websocket")]
    websocket: crate::ws::WebSocketSettings,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("ConnectOptions");
        f.field("config", &self.config)
            .field("request_timeout", &self.request_timeout)
            .field("flush_timeout", &self.flush_timeout)
            .field("pending", &self.pending)
            .field("event_callback", &self.event_callback.is_some());
        #[cfg(feature = "tls")]
        f.field("tls", &self.tls);
        // Header values may be credentials (a cookie, a bearer token): names only.
        #[cfg(feature = "websocket")]
        f.field("websocket_headers", &self.websocket.headers.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("websocket_always_mask", &self.websocket.always_mask);
        f.finish()
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectOptions {
    /// Defaults: one server at `nats://127.0.0.1:4222`, 10 s request timeout.
    pub fn new() -> Self {
        Self {
            config: Config::new(vec![]),
            urls: vec![],
            request_timeout: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(10),
            pending: PendingLimits::default(),
            event_callback: None,
            invalid: None,
            #[cfg(feature = "tls")]
            tls: Default::default(),
            #[cfg(feature = "websocket")]
            websocket: Default::default(),
        }
    }

    /// Adds a server URL (`nats://user:pass@host:port`, `tls://host`, `host:port`, and with the `websocket`
    /// feature `ws://host:port/path` and `wss://host`); call again for more. Several may also be given
    /// comma-separated.
    pub fn server(mut self, url: &str) -> Self {
        self.urls.extend(url.split(',').map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()));
        self
    }

    /// Name shown by the server's monitoring.
    pub fn name(mut self, name: &str) -> Self {
        self.config.name = Some(name.to_owned());
        self
    }

    /// User and password (a URL's own credentials win).
    pub fn user_and_password(mut self, user: &str, password: &str) -> Self {
        self.config.auth.user_password = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Token (a URL's own credentials win).
    pub fn token(mut self, token: &str) -> Self {
        self.config.auth.token = Some(token.to_owned());
        self
    }

    /// A function returning the CONNECT credentials for each handshake, given the server's nonce (`None` if
    /// it sent none). Runs under the connection's lock, so keep it quick. Fields it leaves `None` fall back
    /// to the user, password and token set here or in the URL; an `Err` fails that attempt (backoff applies).
    pub fn credentials_callback(
        mut self,
        callback: impl Fn(Option<&str>) -> Result<Credentials, String> + Send + Sync + 'static,
    ) -> Self {
        self.config.auth.callback = Some(Arc::new(callback));
        self
    }

    #[cfg(feature = "nkeys")]
    fn set_callback(mut self, callback: Result<nats_proto::CredentialsCallback, Error>) -> Self {
        match callback {
            // The last credentials option wins, so it also clears an earlier invalid one.
            Ok(cb) => {
                self.config.auth.callback = Some(cb);
                self.invalid = None;
            }
            Err(e) => self.invalid = Some(e.to_string()),
        }
        self
    }

    /// Authenticates with an nkey: the seed (`SU...`) signs the server's nonce. An invalid seed fails
    /// `connect` with [`Error::Options`].
    #[cfg(feature = "nkeys")]
    pub fn nkey(self, seed: &str) -> Self {
        self.set_callback(crate::auth::nkey_callback(seed))
    }

    /// Authenticates with JWT user credentials from a `.creds` file. The file is read at every connect, so
    /// a rotated file is picked up; an unreadable or invalid file fails `connect` with [`Error::Options`].
    #[cfg(feature = "nkeys")]
    pub fn credentials_file(self, path: impl AsRef<std::path::Path>) -> Self {
        self.set_callback(crate::auth::creds_file_callback(path.as_ref().to_owned()))
    }

    /// Authenticates with JWT user credentials given as the contents of a `.creds` file.
    #[cfg(feature = "nkeys")]
    pub fn credentials(self, creds: &str) -> Self {
        self.set_callback(crate::auth::creds_callback(creds))
    }

    /// Authenticates with a user JWT and the nkey seed that signs for it.
    #[cfg(feature = "nkeys")]
    pub fn jwt(self, jwt: &str, seed: &str) -> Self {
        self.set_callback(crate::auth::jwt_callback(jwt, seed))
    }

    /// Fails to connect rather than talk to a server without TLS. `tls://` URLs ask for this per server.
    pub fn require_tls(mut self, require: bool) -> Self {
        self.config.require_tls = require;
        self
    }

    /// Starts TLS at once, before the server's INFO, for servers configured with `handshake_first`.
    pub fn tls_first(mut self) -> Self {
        self.config.tls_first = true;
        self
    }

    /// Trusts the CA certificates in this PEM file instead of the system's trust store (call again to add
    /// more). Read at `connect`. Like every TLS setting it also makes TLS required: no server is used without.
    #[cfg(feature = "tls")]
    pub fn add_root_certificates(mut self, path: impl AsRef<std::path::Path>) -> Self {
        self.tls.add_root_file(path.as_ref().to_owned());
        self
    }

    /// Trusts the CA certificates in this PEM text instead of the system's trust store.
    #[cfg(feature = "tls")]
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Self {
        self.tls.add_root_pem(pem);
        self
    }

    /// Presents this client certificate (PEM file, with its chain) and private key (PEM file) for mutual TLS.
    #[cfg(feature = "tls")]
    pub fn add_client_certificate(
        mut self,
        cert: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> Self {
        self.tls.client_cert_files(cert.as_ref().to_owned(), key.as_ref().to_owned());
        self
    }

    /// Presents this client certificate and key, given as PEM text, for mutual TLS.
    #[cfg(feature = "tls")]
    pub fn add_client_certificate_pem(mut self, cert: &[u8], key: &[u8]) -> Self {
        self.tls.client_cert_pem(cert, key);
        self
    }

    /// Accepts any server certificate: no check of the issuer, the name or the dates. This removes TLS's
    /// protection against an impostor; use it only for tests or a server you reach over a trusted path.
    #[cfg(feature = "tls")]
    pub fn dangerous_accept_any_server_certificate(mut self) -> Self {
        self.tls.dangerous_accept_any_server_certificate();
        self
    }

    /// Uses this rustls configuration as it is, for what the other TLS options do not cover.
    #[cfg(feature = "tls")]
    pub fn tls_client_config(mut self, config: rustls::ClientConfig) -> Self {
        self.tls.custom(Arc::new(config));
        self
    }

    /// Adds a header to every WebSocket upgrade request (`ws://`, `wss://` servers): a cookie carrying a JWT
    /// (nats-server's `jwt_cookie`), a proxy's authorization. Call again for more. A name or value with a line
    /// break, or a name with a space or a colon, fails `connect` with [`Error::Options`].
    #[cfg(feature = "websocket")]
    pub fn websocket_header(mut self, name: &str, value: &str) -> Self {
        let bad_name =
            name.is_empty() || name.contains(|c: char| c == ':' || c.is_ascii_whitespace() || c.is_control());
        if bad_name || value.contains(['\r', '\n']) {
            self.invalid = Some(format!("websocket header {name:?}: not a valid HTTP header"));
        } else {
            self.websocket.headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Masks every WebSocket frame this client sends. By default the client asks nats-server to take them
    /// unmasked (`Nats-No-Masking`), which saves a copy and a pass over every byte sent, and masks only when
    /// the server does not agree. Masking protects intermediaries from content a browser script chose; use
    /// this where a proxy on the way insists on it.
    #[cfg(feature = "websocket")]
    pub fn websocket_always_mask(mut self) -> Self {
        self.websocket.always_mask = true;
        self
    }

    /// Time allowed for TCP connect plus handshake. Default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Time between keep-alive PINGs. Default 2 min.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.config.ping_interval = interval;
        self
    }

    /// Unanswered PINGs after which the connection is stale. Default 2.
    pub fn max_pings_out(mut self, max: u32) -> Self {
        self.config.max_pings_out = max;
        self
    }

    /// Reconnect backoff and attempt limit.
    pub fn reconnect_policy(mut self, policy: ReconnectPolicy) -> Self {
        self.config.reconnect = policy;
        self
    }

    /// Failed attempts per server before it is dropped (`None`: retry for ever, the default).
    pub fn max_reconnects(mut self, max: Option<u32>) -> Self {
        self.config.reconnect.max_attempts_per_server = max;
        self
    }

    /// Bytes of publishes kept while disconnected. Default 8 MiB; 0 fails publishes while disconnected.
    pub fn reconnect_buffer_size(mut self, bytes: usize) -> Self {
        self.config.reconnect_buffer_size = bytes;
        self
    }

    /// Prefix of inbox subjects. Default `_INBOX`.
    pub fn inbox_prefix(mut self, prefix: &str) -> Self {
        self.config.inbox_prefix = prefix.to_owned();
        self
    }

    /// Do not receive this client's own publishes.
    pub fn no_echo(mut self) -> Self {
        self.config.no_echo = true;
        self
    }

    /// Pending limits for every subscription.
    pub fn pending_limits(mut self, limits: PendingLimits) -> Self {
        self.pending = limits;
        self
    }

    /// Default timeout of `Client::request`. Default 10 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Timeout of `Client::flush`. Default 10 s.
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Longest `Client::drain` waits. Default 30 s.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.config.drain_timeout = timeout;
        self
    }

    /// Return from `connect` at once and keep trying in the background if the first attempt fails.
    pub fn retry_on_initial_connect(mut self) -> Self {
        self.config.retry_on_initial_connect = true;
        self
    }

    /// Ignore the servers INFO announces.
    pub fn ignore_discovered_servers(mut self) -> Self {
        self.config.ignore_discovered_servers = true;
        self
    }

    /// Try servers in the order given rather than shuffled.
    pub fn retain_servers_order(mut self) -> Self {
        self.config.randomize_servers = false;
        self
    }

    /// Calls `callback` with every connection event, on a thread of its own.
    pub fn event_callback(mut self, callback: impl Fn(Event) + Send + Sync + 'static) -> Self {
        self.event_callback = Some(Arc::new(callback));
        self
    }

    /// Splits the options into the core's settings, the client's, and the event callback. Parses the URLs.
    pub fn into_parts(mut self) -> Result<(Config, Settings, Option<EventCallback>), Error> {
        if let Some(why) = self.invalid {
            return Err(Error::Options(why));
        }
        // Any TLS setting means TLS is wanted: never fall back to plaintext, on a reconnect either.
        #[cfg(feature = "tls")]
        if self.tls.is_configured() {
            self.config.require_tls = true;
        }
        let urls = if self.urls.is_empty() { vec!["nats://127.0.0.1:4222".to_owned()] } else { self.urls };
        self.config.servers = urls.iter().map(|u| ServerAddr::parse(u)).collect::<Result<_, _>>()?;
        if let Some(ws) = self.config.servers.iter().find(|a| a.is_websocket()) {
            if !cfg!(feature = "websocket") {
                return Err(Error::Options(format!("{ws}: WebSocket URLs need the `websocket` feature")));
            }
            if ws.scheme() == nats_proto::Scheme::Ws && self.config.require_tls {
                return Err(Error::Options(format!(
                    "{ws} is WebSocket without TLS, but TLS is required (require_tls or a TLS option): use wss://"
                )));
            }
        }
        // Jitter, pool order and inbox names must differ between processes.
        self.config.seed = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8);
        let settings = Settings {
            pending: self.pending,
            request_timeout: self.request_timeout,
            flush_timeout: self.flush_timeout,
            drain_timeout: self.config.drain_timeout,
            #[cfg(feature = "tls")]
            tls: Arc::new(crate::tls::TlsConfig::new(self.tls)?),
            #[cfg(feature = "websocket")]
            websocket: Arc::new(self.websocket),
        };
        Ok((self.config, settings, self.event_callback))
    }
}

/// Timeouts and limits the handles need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Pending limits of each subscription.
    pub pending: PendingLimits,
    /// Default request timeout.
    pub request_timeout: Duration,
    /// Flush timeout.
    pub flush_timeout: Duration,
    /// Drain timeout.
    pub drain_timeout: Duration,
    /// TLS configuration.
    #[cfg(feature = "tls")]
    pub tls: Arc<crate::tls::TlsConfig>,
    /// WebSocket settings (upgrade headers, masking).
    #[cfg(feature = "websocket")]
    pub websocket: Arc<crate::ws::WebSocketSettings>,
}
