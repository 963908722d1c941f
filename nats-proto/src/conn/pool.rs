//! Server addresses, the server pool, reconnect backoff and the seedable random source they use.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

/// How a server is reached: the scheme of its URL.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `nats://` (or no scheme): plain TCP, upgraded to TLS when the server or the options ask.
    Nats,
    /// `tls://`: TCP, and TLS required.
    Tls,
    /// `ws://`: WebSocket over plain TCP. TLS is the transport's choice, made by the scheme alone.
    Ws,
    /// `wss://`: WebSocket over TLS.
    Wss,
}

impl Scheme {
    /// The scheme's name in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Nats => "nats",
            Scheme::Tls => "tls",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }

    /// The port a URL without one means: 4222, and HTTP's 80 and 443 for WebSocket.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Nats | Scheme::Tls => 4222,
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        }
    }
}

/// A server to connect to, parsed from `nats://user:pass@host:port`, `tls://host`, `ws://host:port/path`,
/// `wss://host`, `host:port` or `host`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServerAddr {
    host: String,
    port: u16,
    scheme: Scheme,
    /// The request path of a WebSocket URL (`/` when it has none); empty for the other schemes.
    path: String,
    user: Option<String>,
    pass: Option<String>,
    token: Option<String>,
}

/// A server URL that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidUrl(pub String);

impl fmt::Display for InvalidUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid server URL {:?}", self.0)
    }
}

impl core::error::Error for InvalidUrl {}

impl ServerAddr {
    /// Parses a server URL. Schemes are `nats`, `tls`, `ws` and `wss` (and none: `nats`); the default port is
    /// 4222, or 80 for `ws` and 443 for `wss`. A WebSocket URL may have a path (`ws://proxy/nats`), sent as the
    /// upgrade request's target; the others may not.
    pub fn parse(url: &str) -> Result<Self, InvalidUrl> {
        // The error shows the URL without its credentials: it ends up in logs.
        let bad = || {
            let shown = match url.rsplit_once('@') {
                Some((before, after)) => {
                    let scheme = before.split_once("://").map_or("", |(s, _)| s);
                    if scheme.is_empty() {
                        format!("<credentials>@{after}")
                    } else {
                        format!("{scheme}://<credentials>@{after}")
                    }
                }
                None => url.to_owned(),
            };
            InvalidUrl(shown)
        };
        let url = url.trim();
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "nats" => (Scheme::Nats, rest),
                "tls" => (Scheme::Tls, rest),
                "ws" => (Scheme::Ws, rest),
                "wss" => (Scheme::Wss, rest),
                _ => return Err(bad()),
            },
            None => (Scheme::Nats, url),
        };
        let (rest, path) = match scheme {
            // The authority ends at the first `/`; the rest (query included) is the request target.
            Scheme::Ws | Scheme::Wss => match rest.find('/') {
                Some(at) => (&rest[..at], rest[at..].to_owned()),
                None => (rest, "/".to_owned()),
            },
            _ => (rest.trim_end_matches('/'), String::new()),
        };
        if path.contains(|c: char| c.is_ascii_whitespace() || c.is_ascii_control()) {
            return Err(bad());
        }
        // `ws://user:pa/ss@host` would be host `user:pa` and a path: credentials quietly lost. A `/` in them must
        // be percent-encoded; an `@` before the query is refused.
        if path.split('?').next().is_some_and(|target| target.contains('@')) {
            return Err(bad());
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(bad());
        }
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| bad())?,
            None => scheme.default_port(),
        };
        let (mut user, mut pass, mut token) = (None, None, None);
        match userinfo.map(|u| u.split_once(':')) {
            Some(Some((u, p))) => (user, pass) = (Some(u.to_owned()), Some(p.to_owned())),
            Some(None) => token = userinfo.map(str::to_owned),
            None => {}
        }
        Ok(Self { host: host.to_owned(), port, scheme, path, user, pass, token })
    }

    /// Host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL's scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// True for `tls://` and `wss://` URLs.
    pub fn tls_required(&self) -> bool {
        matches!(self.scheme, Scheme::Tls | Scheme::Wss)
    }

    /// True for `ws://` and `wss://` URLs: the driver speaks WebSocket to the server, and TLS is the scheme's
    /// choice alone (the server's INFO describes its NATS port, not this one).
    pub fn is_websocket(&self) -> bool {
        matches!(self.scheme, Scheme::Ws | Scheme::Wss)
    }

    /// The WebSocket upgrade request's target (`/` unless the URL has a path); empty for other schemes.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `(user, password)` from the URL.
    pub fn user_password(&self) -> Option<(&str, &str)> {
        Some((self.user.as_deref()?, self.pass.as_deref()?))
    }

    /// Token from the URL (`nats://token@host`).
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `host:port`, for dialing (IPv6 hosts in brackets).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ServerAddr {
    /// The URL without credentials, and without a WebSocket path's query (where tokens travel): what logs show.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.host_port())?;
        let target = self.path.split('?').next().unwrap_or("");
        if target.len() > 1 {
            f.write_str(target)?;
        }
        Ok(())
    }
}

impl fmt::Debug for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials stay out of debug output and logs.
        write!(f, "ServerAddr({self})")
    }
}

/// How to retry after a connection is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Failed attempts per server after which it leaves the pool; `None` retries for ever.
    pub max_attempts_per_server: Option<u32>,
    /// Delay before the second consecutive attempt; it doubles with each failure after that.
    pub base_delay: Duration,
    /// Cap on the doubling delay.
    pub max_delay: Duration,
    /// Up to this much random delay is added to each wait, so that many clients do not return at once.
    pub jitter: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            max_attempts_per_server: None,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(4),
            jitter: Duration::from_millis(100),
        }
    }
}

/// The wait before attempt number `failures + 1` after `failures` consecutive failures: none for the
/// first attempt, then `base * 2^(failures-1)` capped at `max`, plus up to `jitter`.
pub fn backoff(failures: u32, policy: &ReconnectPolicy, rng: &mut Rng) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let doubled = policy.base_delay.saturating_mul(1u32 << (failures - 1).min(20));
    let jitter_ns = policy.jitter.as_nanos().min(u128::from(u64::MAX)) as u64;
    let jitter = if jitter_ns == 0 { Duration::ZERO } else { Duration::from_nanos(rng.below(jitter_ns + 1)) };
    doubled.min(policy.max_delay) + jitter
}

/// A small, seedable pseudo-random source (SplitMix64). Not for cryptography: it spreads reconnects, shuffles
/// the pool and names inboxes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed; equal seeds give equal sequences.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Shuffles a slice in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// `n` random base-62 characters.
    pub fn base62(&mut self, n: usize) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        (0..n).map(|_| ALPHABET[self.below(62) as usize] as char).collect()
    }
}

#[derive(Debug, Clone)]
struct Entry {
    addr: ServerAddr,
    /// Learned from INFO `connect_urls` rather than configured.
    implicit: bool,
    failed_attempts: u32,
}

/// The servers a connection may use: configured ones plus those learned from INFO.
#[derive(Debug, Clone)]
pub struct ServerPool {
    entries: Vec<Entry>,
    /// Index of the server last handed out.
    current: Option<usize>,
}

impl ServerPool {
    /// A pool of configured servers, shuffled with `rng` when `randomize`.
    pub fn new(mut servers: Vec<ServerAddr>, randomize: bool, rng: &mut Rng) -> Self {
        if randomize {
            rng.shuffle(&mut servers);
        }
        let entries = servers.into_iter().map(|addr| Entry { addr, implicit: false, failed_attempts: 0 }).collect();
        Self { entries, current: None }
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no server is left.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every server in pool order.
    pub fn servers(&self) -> impl Iterator<Item = &ServerAddr> + '_ {
        self.entries.iter().map(|e| &e.addr)
    }

    /// The server in use or last tried.
    pub fn current(&self) -> Option<&ServerAddr> {
        self.current.and_then(|i| self.entries.get(i)).map(|e| &e.addr)
    }

    /// Moves to the next server, round robin, and returns it.
    pub fn next_server(&mut self) -> Option<&ServerAddr> {
        if self.entries.is_empty() {
            return None;
        }
        let i = self.current.map_or(0, |c| (c + 1) % self.entries.len());
        self.current = Some(i);
        Some(&self.entries[i].addr)
    }

    /// Records a failed attempt on the current server; drops it once `max` attempts failed.
    pub fn record_failure(&mut self, max: Option<u32>) {
        let Some(i) = self.current else { return };
        let Some(entry) = self.entries.get_mut(i) else { return };
        entry.failed_attempts += 1;
        if max.is_some_and(|m| entry.failed_attempts >= m) {
            self.entries.remove(i);
            // Keep round robin order: the next pick is the entry that took this index.
            self.current =
                i.checked_sub(1).or(if self.entries.is_empty() { None } else { Some(self.entries.len() - 1) });
        }
    }

    /// Records a successful connection to the current server.
    pub fn record_success(&mut self) {
        if let Some(entry) = self.current.and_then(|i| self.entries.get_mut(i)) {
            entry.failed_attempts = 0;
        }
    }

    /// Failed attempts recorded for `addr`.
    pub fn failed_attempts(&self, addr: &ServerAddr) -> Option<u32> {
        self.entries.iter().find(|e| &e.addr == addr).map(|e| e.failed_attempts)
    }

    /// Applies INFO `connect_urls`: adds new servers (in random order), drops learned ones no longer listed
    /// (never the current one or a configured one). Returns true when servers were added.
    pub fn update_discovered(&mut self, urls: &[String], rng: &mut Rng) -> bool {
        // Learned servers are reached the way the current one is: same scheme, same URL credentials. Over
        // WebSocket the server lists its peers' WebSocket listeners (`ws_connect_urls`) in `connect_urls`, so
        // they keep the scheme (and path) too.
        let template = self.current().cloned();
        let mut learned: Vec<ServerAddr> = urls
            .iter()
            .filter_map(|u| ServerAddr::parse(u).ok())
            .map(|mut a| {
                if let Some(t) = &template {
                    a.scheme = t.scheme;
                    a.path = t.path.clone();
                    a.user = t.user.clone();
                    a.pass = t.pass.clone();
                    a.token = t.token.clone();
                }
                a
            })
            .collect();
        let current = self.current().cloned();
        let same = |a: &ServerAddr, b: &ServerAddr| a.host == b.host && a.port == b.port;
        self.entries.retain(|e| {
            !e.implicit
                || current.as_ref().is_some_and(|c| same(c, &e.addr))
                || learned.iter().any(|l| same(l, &e.addr))
        });
        learned.retain(|l| !self.entries.iter().any(|e| same(&e.addr, l)));
        rng.shuffle(&mut learned);
        let added = !learned.is_empty();
        self.entries.extend(learned.into_iter().map(|addr| Entry { addr, implicit: true, failed_attempts: 0 }));
        // Entries may have moved: find the current server again.
        self.current = current.and_then(|c| self.entries.iter().position(|e| same(&e.addr, &c)));
        added
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::*;

    #[test]
    fn parse_urls() {
        let a = ServerAddr::parse("nats://u:p@example.com:4333").unwrap();
        assert_eq!((a.host(), a.port(), a.user_password()), ("example.com", 4333, Some(("u", "p"))));
        assert_eq!(format!("{a:?}"), "ServerAddr(nats://example.com:4333)");
        let t = ServerAddr::parse("tls://tok@h").unwrap();
        assert!(t.tls_required());
        assert_eq!((t.token(), t.port()), (Some("tok"), 4222));
        assert_eq!(ServerAddr::parse("127.0.0.1:5").unwrap().host_port(), "127.0.0.1:5");
        assert_eq!(ServerAddr::parse("[::1]:7").unwrap().host_port(), "[::1]:7");
        assert!(ServerAddr::parse("http://x").is_err());
        assert!(ServerAddr::parse("nats://h:notaport").is_err());
        assert!(ServerAddr::parse("nats://").is_err());
        let err = ServerAddr::parse("nats://alice:s3cret@host:bad").unwrap_err();
        assert!(!err.to_string().contains("s3cret") && !format!("{err:?}").contains("s3cret"), "{err}");
    }

    #[test]
    fn parse_websocket_urls() {
        let w = ServerAddr::parse("ws://h").unwrap();
        assert_eq!(
            (w.scheme(), w.port(), w.path(), w.is_websocket(), w.tls_required()),
            (Scheme::Ws, 80, "/", true, false)
        );
        let s = ServerAddr::parse("WSS://u:p@h:8443/nats/ws?x=1").unwrap();
        assert_eq!((s.scheme(), s.port(), s.path(), s.tls_required()), (Scheme::Wss, 8443, "/nats/ws?x=1", true));
        assert_eq!(s.user_password(), Some(("u", "p")));
        assert_eq!(s.to_string(), "wss://h:8443/nats/ws", "no credentials, no query");
        assert_eq!(ServerAddr::parse("wss://h/").unwrap().to_string(), "wss://h:443");
        assert_eq!(ServerAddr::parse("ws://[::1]:9/").unwrap().host_port(), "[::1]:9");
        assert!(ServerAddr::parse("ws://h:1/a b").is_err());
        assert!(ServerAddr::parse("ws:///path").is_err());
        // A `/` in credentials would cut the authority short: refused rather than connect to the wrong host.
        assert!(ServerAddr::parse("ws://user:pa/ss@host:8080").is_err());
        assert_eq!(ServerAddr::parse("ws://h:1/ws?jwt=secret").unwrap().to_string(), "ws://h:1/ws", "no query in logs");
        // Only WebSocket URLs have a path.
        let n = ServerAddr::parse("nats://h/").unwrap();
        assert_eq!((n.path(), n.is_websocket(), n.port()), ("", false, 4222));
        assert!(ServerAddr::parse("nats://h/x").is_err());
    }

    #[test]
    fn servers_learned_over_websocket_keep_its_scheme_and_path() {
        let mut rng = Rng::new(5);
        let mut pool = ServerPool::new(alloc::vec![ServerAddr::parse("wss://tok@a:443/ws").unwrap()], false, &mut rng);
        pool.next_server();
        assert!(pool.update_discovered(&["b:8080".into()], &mut rng));
        let learned = pool.servers().find(|a| a.host() == "b").unwrap();
        assert_eq!((learned.scheme(), learned.port(), learned.path()), (Scheme::Wss, 8080, "/ws"));
        assert_eq!(learned.token(), Some("tok"));
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let p = ReconnectPolicy { jitter: Duration::ZERO, ..Default::default() };
        let mut rng = Rng::new(1);
        let waits: Vec<_> = (0..10).map(|n| backoff(n, &p, &mut rng).as_millis()).collect();
        assert_eq!(waits, [0, 50, 100, 200, 400, 800, 1600, 3200, 4000, 4000]);
        let p = ReconnectPolicy::default();
        for n in 1..50 {
            let w = backoff(n, &p, &mut rng);
            assert!(w <= p.max_delay + p.jitter, "{w:?}");
        }
        // Same seed, same jitter.
        let a: Vec<_> = (1..5).map(|n| backoff(n, &p, &mut Rng::new(9))).collect();
        let b: Vec<_> = (1..5).map(|n| backoff(n, &p, &mut Rng::new(9))).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn pool_round_robin_failures_and_discovery() {
        let mut rng = Rng::new(3);
        let servers = ["a:1", "b:2"].iter().map(|s| ServerAddr::parse(s).unwrap()).collect();
        let mut pool = ServerPool::new(servers, false, &mut rng);
        assert_eq!(pool.next_server().unwrap().host(), "a");
        assert_eq!(pool.next_server().unwrap().host(), "b");
        pool.record_failure(Some(1));
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.next_server().unwrap().host(), "a");
        assert!(pool.update_discovered(&["c:3".into(), "d:4".into()], &mut rng));
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.current().unwrap().host(), "a");
        assert!(!pool.update_discovered(&["d:4".into()], &mut rng));
        assert_eq!(pool.servers().map(ServerAddr::host).collect::<Vec<_>>(), ["a", "d"]);
    }
}
