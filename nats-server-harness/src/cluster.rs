//! A full-mesh cluster of `nats-server` processes on loopback.

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use crate::server::{RouteSpec, START_TIMEOUT};
use crate::util;
use crate::{HarnessError, NatsServer, ServerBuilder, ServerVersion};

/// How long a started cluster may take to form its full mesh.
pub const MESH_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the whole cluster is restarted on new ports after a port clash.
const MAX_PORT_ATTEMPTS: usize = 3;

/// Configures and starts a [`Cluster`]. Create one with [`Cluster::builder`].
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    size: usize,
    template: ServerBuilder,
}

impl ClusterBuilder {
    /// Which server build every member runs (default [`ServerVersion::Current`]).
    pub fn version(mut self, version: ServerVersion) -> Self {
        self.template = self.template.version(version);
        self
    }

    /// Enables JetStream on every member (clustered JetStream).
    pub fn jetstream(mut self, enabled: bool) -> Self {
        self.template = self.template.jetstream(enabled);
        self
    }

    /// Appends raw config text to every member's config file.
    pub fn config(mut self, text: &str) -> Self {
        self.template = self.template.config(text);
        self
    }

    /// Opens a WebSocket listener on every member, each on a port of its own.
    pub fn websocket(mut self, websocket: crate::WebSocket) -> Self {
        self.template = self.template.websocket(websocket);
        self
    }

    /// Enables HTTP monitoring on every member.
    pub fn monitoring(mut self, enabled: bool) -> Self {
        self.template = self.template.monitoring(enabled);
        self
    }

    /// Starts all members, waits until each accepts clients and then until
    /// each one's `INFO` `connect_urls` lists every other member (full mesh),
    /// at most [`MESH_TIMEOUT`].
    pub fn start(self) -> Result<Cluster, HarnessError> {
        if self.size == 0 {
            return Err(HarnessError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a cluster needs at least one server",
            )));
        }
        let n = self.size;
        let mut attempt = 1;
        loop {
            let name = format!("harness-{}-{}", std::process::id(), util::unique_id());
            let ports = util::free_ports(2 * n)?;
            let (client_ports, route_ports) = ports.split_at(n);
            let mut servers = Vec::with_capacity(n);
            for i in 0..n {
                let mut builder = self.template.clone().port(client_ports[i]);
                builder.server_name = Some(format!("{name}-s{i}"));
                builder.route = Some(RouteSpec {
                    cluster_name: name.clone(),
                    port: route_ports[i],
                    routes: (0..n).filter(|&j| j != i).map(|j| route_ports[j]).collect(),
                });
                servers.push(NatsServer::prepare(builder)?);
            }
            let mut result = Ok(());
            for server in &mut servers {
                result = server.spawn();
                if result.is_err() {
                    break;
                }
            }
            if result.is_ok() {
                let deadline = Instant::now() + START_TIMEOUT;
                result = servers.iter().try_for_each(|s| s.wait_ready(deadline));
            }
            match result {
                Ok(()) => {
                    let cluster = Cluster { name, servers };
                    cluster.wait_for_mesh(MESH_TIMEOUT)?;
                    return Ok(cluster);
                }
                Err(e) => {
                    let clash = servers.iter().any(NatsServer::current_run_addr_in_use);
                    drop(servers);
                    if !(clash && attempt < MAX_PORT_ATTEMPTS) {
                        return Err(e);
                    }
                    attempt += 1;
                }
            }
        }
    }
}

/// A full-mesh cluster of [`NatsServer`]s, each listening for clients and
/// routes on `127.0.0.1`. Dropping it kills every member.
#[derive(Debug)]
pub struct Cluster {
    name: String,
    servers: Vec<NatsServer>,
}

impl Cluster {
    /// Starts `n` [`ServerVersion::Current`] servers and waits for the full mesh.
    ///
    /// # Panics
    ///
    /// If the cluster cannot be started; the message includes the logs.
    #[track_caller]
    pub fn start(n: usize) -> Cluster {
        match Self::builder(n).start() {
            Ok(cluster) => cluster,
            Err(e) => panic!("nats-server-harness: could not start cluster: {e}"),
        }
    }

    /// A builder for a cluster of `n` servers.
    pub fn builder(n: usize) -> ClusterBuilder {
        ClusterBuilder { size: n, template: ServerBuilder::default() }
    }

    /// The cluster name (the `cluster { name }` of every member).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of members (running or stopped).
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Always `false`: a cluster has at least one member.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// All members, in start order.
    pub fn servers(&self) -> &[NatsServer] {
        &self.servers
    }

    /// Member `i`.
    ///
    /// # Panics
    ///
    /// If `i` is out of range.
    pub fn server(&self, i: usize) -> &NatsServer {
        &self.servers[i]
    }

    /// Member `i`, mutably (to stop or restart it).
    ///
    /// # Panics
    ///
    /// If `i` is out of range.
    pub fn server_mut(&mut self, i: usize) -> &mut NatsServer {
        &mut self.servers[i]
    }

    /// Every member's client URL, `nats://127.0.0.1:PORT`.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(NatsServer::url).collect()
    }

    /// Kills member `i` (SIGKILL). Idempotent.
    pub fn kill(&mut self, i: usize) {
        self.servers[i].stop();
    }

    /// Stops member `i`; the same as [`kill`](Cluster::kill).
    pub fn stop(&mut self, i: usize) {
        self.kill(i);
    }

    /// Restarts member `i` on its old ports and waits for the full mesh
    /// among the running members.
    ///
    /// # Panics
    ///
    /// If the member or the mesh does not come back.
    #[track_caller]
    pub fn restart(&mut self, i: usize) {
        self.servers[i].restart();
        if let Err(e) = self.wait_for_mesh(MESH_TIMEOUT) {
            panic!("nats-server-harness: cluster did not re-form after restart: {e}");
        }
    }

    /// Waits until every running member's `INFO` `connect_urls` lists the
    /// client address of every other running member.
    pub fn wait_for_mesh(&self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let running: Vec<&NatsServer> = self.servers.iter().filter(|s| s.is_running()).collect();
            let missing = running.iter().find_map(|server| {
                let info = match server.fetch_info() {
                    Ok(info) => info,
                    Err(e) => return Some(format!("{}: {e}", server.server_name())),
                };
                let urls = util::connect_urls(&info);
                let absent: Vec<String> = running
                    .iter()
                    .filter(|other| other.port() != server.port())
                    .map(|other| format!("127.0.0.1:{}", other.port()))
                    .filter(|addr| !urls.contains(addr))
                    .collect();
                (!absent.is_empty())
                    .then(|| format!("{} has connect_urls {urls:?}, missing {absent:?}", server.server_name()))
            });
            let Some(missing) = missing else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(HarnessError::StartTimeout {
                    what: format!("the cluster full mesh ({missing})"),
                    log: self.logs(),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every member's log, each under a header line.
    pub fn logs(&self) -> String {
        self.servers
            .iter()
            .enumerate()
            .map(|(i, s)| format!("===== server {i} ({}) =====\n{}", s.server_name(), s.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
