//! Connection settings.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use super::pool::{ReconnectPolicy, ServerAddr};
use crate::parse::Limits;

/// The authentication fields of CONNECT, as a [`CredentialsCallback`] returns them. Fields left `None` are
/// taken from [`Auth`]'s static user, password and token. `Debug` never shows secrets.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Credentials {
    /// User name.
    pub user: Option<String>,
    /// Password.
    pub pass: Option<String>,
    /// Token.
    pub token: Option<String>,
    /// User JWT (decentralized auth).
    pub jwt: Option<String>,
    /// Public nkey of the signer (nkey auth without a JWT).
    pub nkey: Option<String>,
    /// Signature of the server's nonce, base64url without padding.
    pub sig: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("pass", &self.pass.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("jwt", &self.jwt.as_ref().map(|_| "<redacted>"))
            .field("nkey", &self.nkey)
            .field("sig", &self.sig.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Produces [`Credentials`] for one handshake from the server's nonce (`None` when INFO carried none). The
/// core never calls it: it asks the driver with [`Action::Credentials`](crate::Action::Credentials), and the
/// driver calls it outside any lock (so it may read a `.creds` file; keep it short all the same: nats-tokio
/// calls it on the connection's task, whose I/O waits meanwhile) and hands the result to
/// [`Connection::handle_credentials`](crate::Connection::handle_credentials). An `Err` fails that attempt with
/// [`ConnectionError::Credentials`](crate::ConnectionError::Credentials); backoff applies.
pub type CredentialsCallback = Arc<dyn Fn(Option<&str>) -> Result<Credentials, String> + Send + Sync>;

/// Credentials sent in CONNECT. `Debug` never shows secrets.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Auth {
    /// User and password.
    pub user_password: Option<(String, String)>,
    /// Token.
    pub token: Option<String>,
    /// Called at every handshake for nonce-signing methods (nkey, JWT) or credentials that change.
    pub callback: Option<CredentialsCallback>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("user", &self.user_password.as_ref().map(|(u, _)| u))
            .field("password", &self.user_password.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("callback", &self.callback.is_some())
            .finish()
    }
}

/// Connection settings. Defaults follow ADR-40 where it sets one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Servers to try, in order unless `randomize_servers`. Empty means `nats://127.0.0.1:4222`.
    pub servers: Vec<ServerAddr>,
    /// Client name shown by the server.
    pub name: Option<String>,
    /// Credentials, used when a server URL carries none.
    pub auth: Auth,
    /// Ask the server not to send this client its own messages (needs server protocol 1).
    pub no_echo: bool,
    /// Time from dial to the handshake's PONG. Default 5 s.
    pub connect_timeout: Duration,
    /// Time between keep-alive PINGs. Default 2 min.
    pub ping_interval: Duration,
    /// Unanswered keep-alive PINGs after which the connection is stale. Default 2.
    pub max_pings_out: u32,
    /// Reconnect backoff and per-server attempt limit.
    pub reconnect: ReconnectPolicy,
    /// Bytes of publishes kept while disconnected; past it publishes fail. 0 refuses publishes at once.
    /// Default 8 MiB.
    pub reconnect_buffer_size: usize,
    /// Prefix of inbox subjects. Default `_INBOX`.
    pub inbox_prefix: String,
    /// Keep retrying when the first connection fails, instead of closing.
    pub retry_on_initial_connect: bool,
    /// Ignore the servers INFO announces in `connect_urls`.
    pub ignore_discovered_servers: bool,
    /// Shuffle the configured servers. Default true.
    pub randomize_servers: bool,
    /// Fail rather than connect without TLS.
    pub require_tls: bool,
    /// Start TLS before the server's INFO (server `handshake_first`).
    pub tls_first: bool,
    /// Longest a drain may take. Default 30 s.
    pub drain_timeout: Duration,
    /// Parser limits. Inbound messages may be as large as the larger of `limits.max_payload` (default 64 MiB,
    /// the largest any server allows) and the server's INFO `max_payload`.
    pub limits: Limits,
    /// Seed for jitter, pool order and inbox names. Drivers pass a random one.
    pub seed: u64,
}

impl Config {
    /// Settings for these servers, every other field at its default.
    pub fn new(servers: Vec<ServerAddr>) -> Self {
        Self {
            servers,
            name: None,
            auth: Auth::default(),
            no_echo: false,
            connect_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(120),
            max_pings_out: 2,
            reconnect: ReconnectPolicy::default(),
            reconnect_buffer_size: 8 << 20,
            inbox_prefix: "_INBOX".into(),
            retry_on_initial_connect: false,
            ignore_discovered_servers: false,
            randomize_servers: true,
            require_tls: false,
            tls_first: false,
            drain_timeout: Duration::from_secs(30),
            limits: Limits { max_payload: 64 << 20, ..Limits::default() },
            seed: 0,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new(vec![])
    }
}
