//! [`ServerBuilder`]: what a test asks of a server before it starts.

use std::path::PathBuf;
use std::time::Instant;

use super::{NatsServer, MAX_PORT_ATTEMPTS, START_TIMEOUT};
use crate::auth::{AuthUser, OperatorFixture};
use crate::tls::ServerTls;
use crate::{HarnessError, ServerVersion};

#[derive(Debug, Clone)]
pub(super) enum Auth {
    Token(String),
    UserPassword(String, String),
    Users(Vec<AuthUser>),
    Operator(Box<OperatorFixture>),
}

/// The route part of a clustered server's config.
#[derive(Debug, Clone)]
pub(crate) struct RouteSpec {
    pub(crate) cluster_name: String,
    pub(crate) port: u16,
    pub(crate) routes: Vec<u16>,
}

/// Configures and starts a [`NatsServer`]. Create one with
/// [`NatsServer::builder`].
///
/// The server always listens on `127.0.0.1` only, on a free port unless
/// [`port`](ServerBuilder::port) fixes one.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    pub(super) version: ServerVersion,
    pub(super) binary: Option<PathBuf>,
    pub(super) extra_config: String,
    pub(super) jetstream: bool,
    pub(super) jetstream_domain: Option<String>,
    pub(super) max_payload: Option<u64>,
    pub(super) auth: Option<Auth>,
    pub(super) tls: Option<ServerTls>,
    pub(super) port: Option<u16>,
    pub(super) monitoring: bool,
    pub(super) websocket: Option<super::WebSocket>,
    pub(crate) server_name: Option<String>,
    pub(crate) route: Option<RouteSpec>,
}

thread_local! {
    /// Servers built on this thread get a plain WebSocket listener (see [`websocket_by_default`]).
    static WEBSOCKET_BY_DEFAULT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// From now on, every server built on this thread ([`NatsServer::start`], [`ServerBuilder::default`]) also
/// listens for plain WebSocket (see [`NatsServer::ws_url`]), so that a suite written for `nats://` can run its
/// cases over `ws://` too.
pub fn websocket_by_default(enabled: bool) {
    WEBSOCKET_BY_DEFAULT.with(|w| w.set(enabled));
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            version: ServerVersion::default(),
            binary: None,
            extra_config: String::new(),
            jetstream: false,
            jetstream_domain: None,
            max_payload: None,
            auth: None,
            tls: None,
            port: None,
            monitoring: false,
            websocket: WEBSOCKET_BY_DEFAULT.with(|w| w.get()).then(super::WebSocket::plain),
            server_name: None,
            route: None,
        }
    }
}

impl ServerBuilder {
    /// Which server build to run (default [`ServerVersion::Current`]).
    pub fn version(mut self, version: ServerVersion) -> Self {
        self.version = version;
        self
    }

    /// Runs this exact binary instead of looking one up by
    /// [`version`](ServerBuilder::version).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Appends raw nats-server configuration text to the generated config
    /// file. May be called several times; the pieces are appended in order.
    pub fn config(mut self, text: &str) -> Self {
        self.extra_config.push_str(text);
        self.extra_config.push('\n');
        self
    }

    /// Enables JetStream, with its store directory inside the server's temp
    /// dir (so it survives [`NatsServer::restart`]).
    pub fn jetstream(mut self, enabled: bool) -> Self {
        self.jetstream = enabled;
        self
    }

    /// Enables JetStream in domain `domain` (for hub and leaf set-ups, with leafnodes from
    /// [`config`](Self::config)).
    pub fn jetstream_domain(mut self, domain: &str) -> Self {
        self.jetstream = true;
        self.jetstream_domain = Some(domain.to_owned());
        self
    }

    /// Sets the server's `max_payload` in bytes (nats-server rejects values
    /// above its `max_pending`, 64 MiB by default).
    pub fn max_payload(mut self, bytes: u64) -> Self {
        self.max_payload = Some(bytes);
        self
    }

    /// Requires clients to authenticate with this token
    /// (`CONNECT {"auth_token":"..."}`). Replaces any user/password.
    pub fn token(mut self, token: &str) -> Self {
        self.auth = Some(Auth::Token(token.to_owned()));
        self
    }

    /// Requires clients to authenticate with this user and password
    /// (`CONNECT {"user":"...","pass":"..."}`). Replaces any token.
    pub fn user_password(mut self, user: &str, password: &str) -> Self {
        self.auth = Some(Auth::UserPassword(user.to_owned(), password.to_owned()));
        self
    }

    /// Adds a user to the config's `authorization { users = [...] }`: a
    /// user/password or nkey user, optionally with permissions. May be called
    /// several times. Replaces a [`token`](ServerBuilder::token),
    /// [`user_password`](ServerBuilder::user_password) or
    /// [`operator`](ServerBuilder::operator) set earlier.
    pub fn auth_user(mut self, user: AuthUser) -> Self {
        match &mut self.auth {
            Some(Auth::Users(users)) => users.push(user),
            _ => self.auth = Some(Auth::Users(vec![user])),
        }
        self
    }

    /// Adds an nkey user with this public key (`U...`, see
    /// [`NkeyUser`](crate::auth::NkeyUser)); shorthand for
    /// `auth_user(AuthUser::nkey(public_key))`. The server's `INFO` then
    /// carries a `nonce` the client must sign.
    pub fn nkey_user(self, public_key: &str) -> Self {
        self.auth_user(AuthUser::nkey(public_key))
    }

    /// Runs the server in operator mode (JWT authentication) with the
    /// fixture's operator, system account and account preloaded into a
    /// memory resolver. Replaces any other authentication setting.
    pub fn operator(mut self, operator: &OperatorFixture) -> Self {
        self.auth = Some(Auth::Operator(Box::new(operator.clone())));
        self
    }

    /// Enables TLS on the client port (see [`ServerTls`]). With
    /// [`ServerTls::handshake_first`], readiness is detected from the log
    /// (the server sends nothing in plaintext), and
    /// [`NatsServer::fetch_info`] does not work.
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Listens on this fixed port instead of a free one. A fixed port is never
    /// changed: if it is in use, [`start`](ServerBuilder::start) fails.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Enables the HTTP monitoring endpoint on another free loopback port
    /// (see [`NatsServer::monitor_port`] and [`NatsServer::monitor_get`]).
    pub fn monitoring(mut self, enabled: bool) -> Self {
        self.monitoring = enabled;
        self
    }

    /// Opens a WebSocket listener too, on another free loopback port (see [`NatsServer::ws_url`]).
    pub fn websocket(mut self, websocket: super::WebSocket) -> Self {
        self.websocket = Some(websocket);
        self
    }

    /// Starts the server and waits until it sends `INFO` to a new connection.
    ///
    /// If a port picked by the harness turns out to be taken, it retries with
    /// new ports a few times.
    pub fn start(self) -> Result<NatsServer, HarnessError> {
        let mut server = NatsServer::prepare(self)?;
        let mut attempt = 1;
        loop {
            match server.launch(Instant::now() + START_TIMEOUT) {
                Ok(()) => return Ok(server),
                Err(e) => {
                    server.kill_child();
                    let retry = attempt < MAX_PORT_ATTEMPTS
                        && server.settings.port.is_none()
                        && server.current_run_addr_in_use();
                    if !retry {
                        return Err(e);
                    }
                    attempt += 1;
                    server.pick_new_ports()?;
                }
            }
        }
    }
}
