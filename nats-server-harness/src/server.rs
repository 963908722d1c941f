//! A single `nats-server` process.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::auth::{AuthUser, OperatorFixture};
use crate::binary::{binary_version, server_binary};
use crate::tls::ServerTls;
use crate::util::{self, conf_quote, TempDir};
use crate::{HarnessError, ServerVersion};

/// How long a single server may take to accept connections.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a non-fixed port is re-picked when the server reports it in use.
const MAX_PORT_ATTEMPTS: usize = 5;
/// Pause between readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Marker nats-server logs when it cannot bind a listener.
const ADDR_IN_USE: &str = "address already in use";
/// Marker nats-server (2.9 and 2.15) logs once it accepts clients.
const SERVER_READY: &str = "Server is ready";

#[derive(Debug, Clone)]
enum Auth {
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
#[derive(Debug, Clone, Default)]
pub struct ServerBuilder {
    version: ServerVersion,
    binary: Option<PathBuf>,
    extra_config: String,
    jetstream: bool,
    jetstream_domain: Option<String>,
    max_payload: Option<u64>,
    auth: Option<Auth>,
    tls: Option<ServerTls>,
    port: Option<u16>,
    monitoring: bool,
    pub(crate) server_name: Option<String>,
    pub(crate) route: Option<RouteSpec>,
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

/// A running `nats-server` child process, listening on `127.0.0.1`.
///
/// Each server has its own temp dir (under `std::env::temp_dir()`) holding
/// the generated `nats.conf`, the captured log `server.log` and the
/// JetStream store. Dropping the value kills the process and removes the
/// dir; set `NATS_HARNESS_KEEP=1` to keep the dir for inspection.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    settings: ServerBuilder,
    port: u16,
    monitor_port: Option<u16>,
    server_name: String,
    config_path: PathBuf,
    log_path: PathBuf,
    /// Log length when the current run started.
    run_log_offset: u64,
    runs: usize,
    child: Mutex<Option<Child>>,
    version: OnceLock<String>,
    // Dropped last, after `Drop::drop` has killed the process.
    dir: TempDir,
}

impl NatsServer {
    /// Starts a plain [`ServerVersion::Current`] server on a free port.
    ///
    /// # Panics
    ///
    /// If the server cannot be started; the message includes the reason and
    /// the server log. Use [`NatsServer::builder`] for a `Result`.
    #[track_caller]
    pub fn start() -> NatsServer {
        match Self::builder().start() {
            Ok(server) => server,
            Err(e) => panic!("nats-server-harness: could not start nats-server: {e}"),
        }
    }

    /// A builder for a server with a custom version or config.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    pub(crate) fn prepare(settings: ServerBuilder) -> Result<NatsServer, HarnessError> {
        let binary = match &settings.binary {
            Some(path) => path.clone(),
            None => server_binary(settings.version)?,
        };
        let dir = TempDir::new("nats-harness")?;
        let server_name = settings
            .server_name
            .clone()
            .unwrap_or_else(|| format!("harness-{}-{}", std::process::id(), util::unique_id()));
        let mut server = NatsServer {
            binary,
            port: 0,
            monitor_port: None,
            server_name,
            config_path: dir.path().join("nats.conf"),
            log_path: dir.path().join("server.log"),
            run_log_offset: 0,
            runs: 0,
            child: Mutex::new(None),
            version: OnceLock::new(),
            dir,
            settings,
        };
        server.pick_new_ports()?;
        Ok(server)
    }

    /// Picks ports (keeping a fixed one) and rewrites the config file.
    fn pick_new_ports(&mut self) -> Result<(), HarnessError> {
        let free = util::free_ports(2)?;
        self.port = self.settings.port.unwrap_or(free[0]);
        self.monitor_port = self.settings.monitoring.then_some(free[1]);
        fs::write(&self.config_path, self.render_config()?)?;
        Ok(())
    }

    fn render_config(&self) -> Result<String, HarnessError> {
        let s = &self.settings;
        let mut c = String::from("# Generated by nats-server-harness.\n");
        let _ = writeln!(c, "server_name: {}", conf_quote(&self.server_name));
        let _ = writeln!(c, "listen: \"127.0.0.1:{}\"", self.port);
        if let Some(port) = self.monitor_port {
            let _ = writeln!(c, "http: \"127.0.0.1:{port}\"");
        }
        if let Some(bytes) = s.max_payload {
            let _ = writeln!(c, "max_payload: {bytes}");
        }
        match &s.auth {
            Some(Auth::Token(token)) => {
                let _ = writeln!(c, "authorization {{\n  token: {}\n}}", conf_quote(token));
            }
            Some(Auth::UserPassword(user, password)) => {
                let _ = writeln!(
                    c,
                    "authorization {{\n  user: {}\n  password: {}\n}}",
                    conf_quote(user),
                    conf_quote(password)
                );
            }
            Some(Auth::Users(users)) => {
                c.push_str("authorization {\n  users = [\n");
                for user in users {
                    let _ = writeln!(c, "    {}", user.render_config());
                }
                c.push_str("  ]\n}\n");
            }
            Some(Auth::Operator(operator)) => c.push_str(&operator.render_config(self.dir.path())?),
            None => {}
        }
        if let Some(tls) = &s.tls {
            c.push_str(&tls.render(self.dir.path())?);
        }
        if s.jetstream {
            let store = self.dir.path().join("jetstream");
            let domain =
                s.jetstream_domain.as_deref().map(|d| format!("\n  domain: {}", conf_quote(d))).unwrap_or_default();
            let _ = writeln!(c, "jetstream {{\n  store_dir: {}{domain}\n}}", conf_quote(&store.to_string_lossy()));
        }
        if let Some(route) = &s.route {
            let _ = writeln!(c, "cluster {{");
            let _ = writeln!(c, "  name: {}", conf_quote(&route.cluster_name));
            let _ = writeln!(c, "  listen: \"127.0.0.1:{}\"", route.port);
            let _ = writeln!(c, "  routes: [");
            for port in &route.routes {
                let _ = writeln!(c, "    \"nats-route://127.0.0.1:{port}\"");
            }
            let _ = writeln!(c, "  ]\n}}");
        }
        if !s.extra_config.is_empty() {
            c.push_str("# Extra configuration from ServerBuilder::config.\n");
            c.push_str(&s.extra_config);
        }
        Ok(c)
    }

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Spawns the process (no waiting).
    pub(crate) fn spawn(&mut self) -> Result<(), HarnessError> {
        self.kill_child();
        let mut log = OpenOptions::new().create(true).append(true).open(&self.log_path)?;
        self.run_log_offset = log.seek(SeekFrom::End(0))?;
        self.runs += 1;
        writeln!(
            log,
            "=== nats-server-harness: run {}: {} -c {} ===",
            self.runs,
            self.binary.display(),
            self.config_path.display()
        )?;
        let stderr = log.try_clone()?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|source| HarnessError::Spawn { binary: self.binary.clone(), source })?;
        *self.lock_child() = Some(child);
        Ok(())
    }

    /// Spawns the process and waits for it to be ready.
    fn launch(&mut self, deadline: Instant) -> Result<(), HarnessError> {
        self.spawn()?;
        self.wait_ready(deadline)
    }

    /// Waits until the server answers a new connection with its own `INFO`
    /// (and, with monitoring, until the HTTP port accepts).
    pub(crate) fn wait_ready(&self, deadline: Instant) -> Result<(), HarnessError> {
        if self.is_handshake_first() {
            self.wait_ready_from_log(deadline)?;
        } else {
            self.wait_info(deadline)?;
        }
        self.wait_monitoring(deadline)
    }

    /// Waits until a new connection gets this server's `INFO`.
    fn wait_info(&self, deadline: Instant) -> Result<(), HarnessError> {
        let addr = self.addr();
        // Only accept an INFO naming this server: a port collision with
        // another server must not look like success.
        let check_name = !self.settings.extra_config.contains("server_name");
        let mut last = String::from("no attempt yet");
        loop {
            self.check_alive()?;
            let now = Instant::now();
            if now >= deadline {
                return Err(HarnessError::StartTimeout {
                    what: format!("nats-server to send INFO on {addr} (last attempt: {last})"),
                    log: self.log(),
                });
            }
            let probe = (deadline - now).min(Duration::from_millis(500));
            match util::read_first_line(addr, probe) {
                Ok(line) if line.starts_with("INFO") => {
                    let name_ok =
                        !check_name || util::json_field(&line, "server_name") == Some(self.server_name.as_str());
                    if name_ok {
                        break;
                    }
                    last = format!("INFO from another server: {line}");
                }
                Ok(line) => last = format!("unexpected first line {line:?}"),
                Err(e) => last = e.to_string(),
            }
            thread::sleep(POLL_INTERVAL);
        }
        Ok(())
    }

    /// For a TLS-first server, which sends nothing in plaintext: waits until
    /// the current run's log says the server is ready and the port accepts.
    fn wait_ready_from_log(&self, deadline: Instant) -> Result<(), HarnessError> {
        let addr = self.addr();
        let mut last = String::from("no attempt yet");
        loop {
            self.check_alive()?;
            let now = Instant::now();
            if now >= deadline {
                return Err(HarnessError::StartTimeout {
                    what: format!("TLS-first nats-server on {addr} to log {SERVER_READY:?} (last: {last})"),
                    log: self.log(),
                });
            }
            if self.current_run_log().contains(SERVER_READY) {
                let probe = (deadline - now).min(Duration::from_millis(500));
                match TcpStream::connect_timeout(&addr, probe) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e.to_string(),
                }
            } else {
                last = "not ready yet".to_owned();
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// With monitoring, waits until the HTTP port accepts.
    fn wait_monitoring(&self, deadline: Instant) -> Result<(), HarnessError> {
        if let Some(port) = self.monitor_port {
            let maddr = util::loopback(port);
            loop {
                self.check_alive()?;
                let now = Instant::now();
                if now >= deadline {
                    return Err(HarnessError::StartTimeout {
                        what: format!("nats-server monitoring to accept on {maddr}"),
                        log: self.log(),
                    });
                }
                let probe = (deadline - now).min(Duration::from_millis(500));
                if TcpStream::connect_timeout(&maddr, probe).is_ok() {
                    break;
                }
                thread::sleep(POLL_INTERVAL);
            }
        }
        Ok(())
    }

    /// An error if the process is not running (exited, or never started).
    fn check_alive(&self) -> Result<(), HarnessError> {
        let status = {
            let mut guard = self.lock_child();
            match guard.as_mut() {
                None => Some("not started".to_owned()),
                Some(child) => child.try_wait()?.map(|s| s.to_string()),
            }
        };
        match status {
            None => Ok(()),
            Some(status) => Err(HarnessError::Exited { status, log: self.log() }),
        }
    }

    /// The log of the current run (empty if it cannot be read).
    fn current_run_log(&self) -> String {
        let mut bytes = Vec::new();
        let read = File::open(&self.log_path).and_then(|mut f| {
            f.seek(SeekFrom::Start(self.run_log_offset))?;
            f.read_to_end(&mut bytes)
        });
        match read {
            Ok(_) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => String::new(),
        }
    }

    /// Whether the log of the current run says a port was taken.
    pub(crate) fn current_run_addr_in_use(&self) -> bool {
        self.current_run_log().contains(ADDR_IN_USE)
    }

    fn is_handshake_first(&self) -> bool {
        self.settings.tls.as_ref().is_some_and(ServerTls::is_handshake_first)
    }

    pub(crate) fn kill_child(&mut self) {
        let child = self.lock_child().take();
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The client URL, `nats://127.0.0.1:PORT` (also for a TLS server: a
    /// client must then upgrade because `INFO` says `tls_required`).
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client URL with the `tls://` scheme, `tls://127.0.0.1:PORT`
    /// (the certificate from [`TlsFixture`](crate::tls::TlsFixture) has an
    /// IP SAN for `127.0.0.1`).
    pub fn tls_url(&self) -> String {
        format!("tls://127.0.0.1:{}", self.port)
    }

    /// The client URL using the host name, `<scheme>://localhost:PORT` with
    /// `scheme` `"nats"` or `"tls"`. The server listens on `127.0.0.1` only,
    /// so a client must reach it through `localhost` resolving to 127.0.0.1.
    pub fn localhost_url(&self, scheme: &str) -> String {
        format!("{scheme}://localhost:{}", self.port)
    }

    /// The TLS settings, if the server was started with [`ServerBuilder::tls`].
    pub fn tls(&self) -> Option<&ServerTls> {
        self.settings.tls.as_ref()
    }

    /// Whether the client port uses TLS-first (`handshake_first`).
    pub fn tls_handshake_first(&self) -> bool {
        self.is_handshake_first()
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The client address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        util::loopback(self.port)
    }

    /// The HTTP monitoring port, if [`ServerBuilder::monitoring`] was enabled.
    pub fn monitor_port(&self) -> Option<u16> {
        self.monitor_port
    }

    /// The route (cluster) port, if this server is part of a [`Cluster`](crate::Cluster).
    pub fn cluster_port(&self) -> Option<u16> {
        self.settings.route.as_ref().map(|r| r.port)
    }

    /// The `server_name` the harness configured (it appears in `INFO`).
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// Which server build was requested.
    pub fn server_version_kind(&self) -> ServerVersion {
        self.settings.version
    }

    /// The binary this server runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The server's temp dir (config, log, JetStream store).
    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The generated config file, `<config_dir>/nats.conf`.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The captured stdout+stderr file, `<config_dir>/server.log`.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The captured stdout and stderr of every run of this server (restarts
    /// are appended, each preceded by a `=== nats-server-harness: run N` line).
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_else(|e| format!("<could not read {}: {e}>", self.log_path.display()))
    }

    /// The server version reported by `nats-server --version`, e.g. `"2.15.1"`.
    ///
    /// # Panics
    ///
    /// If the binary cannot be run or its output not parsed.
    pub fn version(&self) -> String {
        self.version
            .get_or_init(|| binary_version(&self.binary).unwrap_or_else(|e| panic!("nats-server-harness: {e}")))
            .clone()
    }

    /// Opens a new connection and returns the `INFO` line the server sends
    /// first (without the trailing CRLF). With TLS the `INFO` is still sent
    /// in plaintext first, except for a TLS-first server, where this times
    /// out.
    pub fn fetch_info(&self) -> Result<String, HarnessError> {
        Ok(util::read_first_line(self.addr(), Duration::from_secs(2))?)
    }

    /// `GET`s `path` (e.g. `"/varz"`, `"/routez"`) from the monitoring
    /// endpoint over raw HTTP/1.0 and returns the body.
    pub fn monitor_get(&self, path: &str) -> Result<String, HarnessError> {
        let port = self.monitor_port.ok_or_else(|| {
            HarnessError::Io(io::Error::other("monitoring is not enabled; use ServerBuilder::monitoring(true)"))
        })?;
        Ok(util::http_get(util::loopback(port), path, Duration::from_secs(5))?)
    }

    /// Whether the process is still running.
    pub fn is_running(&self) -> bool {
        let mut guard = self.lock_child();
        match guard.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.lock_child().as_ref().map(Child::id)
    }

    /// Kills the process (SIGKILL) and waits for it. Idempotent.
    pub fn stop(&mut self) {
        self.kill_child();
    }

    /// Stops the server if running, starts it again with the same port and
    /// config (JetStream data is kept) and waits until it is ready.
    pub fn try_restart(&mut self) -> Result<(), HarnessError> {
        let result = self.launch(Instant::now() + START_TIMEOUT);
        if result.is_err() {
            self.kill_child();
        }
        result
    }

    /// Like [`try_restart`](NatsServer::try_restart).
    ///
    /// # Panics
    ///
    /// If the server does not come back; the message includes the log.
    #[track_caller]
    pub fn restart(&mut self) {
        if let Err(e) = self.try_restart() {
            panic!("nats-server-harness: could not restart nats-server: {e}");
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill_child();
    }
}
