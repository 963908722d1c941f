//! `ConnectOptions`: everything a connection can be told, as a builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use nats_proto::{Config, ReconnectPolicy, ServerAddr};

use crate::event::Event;
use crate::shared::Settings;
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
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("config", &self.config)
            .field("request_timeout", &self.request_timeout)
            .field("flush_timeout", &self.flush_timeout)
            .field("pending", &self.pending)
            .field("event_callback", &self.event_callback.is_some())
            .finish()
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
        }
    }

    /// Adds a server URL (`nats://user:pass@host:port`, `tls://host`, `host:port`); call again for more.
    /// Several may also be given comma-separated.
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
        let urls = if self.urls.is_empty() { vec!["nats://127.0.0.1:4222".to_owned()] } else { self.urls };
        self.config.servers = urls.iter().map(|u| ServerAddr::parse(u)).collect::<Result<_, _>>()?;
        // Jitter, pool order and inbox names must differ between processes.
        self.config.seed = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8);
        let settings = Settings {
            pending: self.pending,
            request_timeout: self.request_timeout,
            flush_timeout: self.flush_timeout,
            drain_timeout: self.config.drain_timeout,
        };
        Ok((self.config, settings, self.event_callback))
    }
}
