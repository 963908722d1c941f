//! The world: the clock, the nodes and connections, the clients, and the loop that drives them.

use std::collections::HashSet;
use std::time::Duration;

use nats_proto::Instant;

use crate::client::SimClient;
use crate::rng::SimRng;
use crate::server::{Link, Node, BASE_PORT};
use crate::{Counts, Schedule, Trace};

/// A step's verdict: `Err` names the broken promise.
pub(crate) type Check = Result<(), String>;

/// Longest the network may take to settle once faults stop.
const SETTLE_LIMIT: Duration = Duration::from_secs(300);

/// The shape of a seed's world and how stormy it is.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub(crate) clients: usize,
    pub(crate) nodes: usize,
    pub(crate) steps: u64,
    /// Weights of workload, network and fault actions.
    pub(crate) mix: [u64; 3],
    /// Weights of the fault kinds: reset, restart, lame duck, refuse dials, half-open, stall.
    pub(crate) faults: [u64; 6],
    /// Chance (per mille) that a read or write moves only part of what waits.
    pub(crate) partial: u64,
    pub(crate) auth: bool,
    /// Client 0 has the wrong password (only with auth).
    pub(crate) wrong_password: bool,
    pub(crate) max_payload: usize,
    pub(crate) reconnect_buffer: usize,
    pub(crate) ping_interval: Duration,
    pub(crate) slow_consumer_bytes: usize,
    /// INFO lists the other nodes.
    pub(crate) advertise: bool,
    /// Clients are given every node, not only the first.
    pub(crate) all_servers: bool,
}

impl Profile {
    fn draw(rng: &mut SimRng) -> Self {
        let auth = rng.chance(250);
        Self {
            clients: rng.range(1, 4) as usize,
            nodes: rng.range(1, 3) as usize,
            steps: rng.range(100, 1200),
            mix: [rng.range(20, 60), rng.range(30, 60), *rng.pick(&[0, 1, 3, 8, 20])],
            faults: [
                rng.range(0, 5),
                rng.range(0, 3),
                rng.range(0, 2),
                rng.range(0, 3),
                rng.range(0, 2),
                rng.range(0, 5),
            ],
            partial: *rng.pick(&[0, 100, 500, 900]),
            auth,
            wrong_password: auth && rng.chance(200),
            max_payload: *rng.pick(&[64, 1024, 1 << 20]),
            reconnect_buffer: *rng.pick(&[0, 200, 4096, 1 << 20]),
            ping_interval: Duration::from_millis(rng.range(300, 5000)),
            slow_consumer_bytes: *rng.pick(&[2048, 64 * 1024, 1 << 20]),
            advertise: rng.chance(700),
            all_servers: rng.chance(500),
        }
    }
}

/// Where the simulated clock starts, as the core sees it: virtual time (not zero, so that nothing can hide
/// behind saturation at the origin).
const START: Instant = Instant::from_nanos(1_000_000_000_000);

/// Everything one seed simulates.
pub(crate) struct World {
    pub(crate) rng: SimRng,
    base: Instant,
    pub(crate) now: Duration,
    pub(crate) profile: Profile,
    pub(crate) nodes: Vec<Node>,
    pub(crate) links: Vec<Link>,
    next_link: u64,
    pub(crate) clients: Vec<SimClient>,
    /// Tracked publishes the server processed: (client, sequence).
    pub(crate) processed: HashSet<(usize, u64)>,
    step: u64,
    trace: Trace,
    pub(crate) counts: Counts,
    /// Faults and new work have stopped.
    pub(crate) settling: bool,
}

impl World {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = SimRng::new(seed);
        let profile = Profile::draw(&mut rng);
        let base = START;
        let nodes = (0..profile.nodes)
            .map(|_| Node { up: true, down_until: Duration::ZERO, refuse_until: Duration::ZERO, lame_at: None })
            .collect();
        let mut world = Self {
            rng,
            base,
            now: Duration::ZERO,
            profile,
            nodes,
            links: Vec::new(),
            next_link: 1,
            clients: Vec::new(),
            processed: HashSet::new(),
            step: 0,
            trace: Trace::from_env(),
            counts: Counts::default(),
            settling: false,
        };
        for i in 0..world.profile.clients {
            let client = SimClient::new(i, &world.profile, base, &mut world.rng);
            world.clients.push(client);
        }
        world
    }

    /// The simulated clock as the core sees it.
    pub(crate) fn instant(&self) -> Instant {
        self.base + self.now
    }

    pub(crate) fn note(&mut self, what: impl FnOnce() -> String) {
        let line = format!("#{} {:?}: {}", self.step, self.now, what());
        self.trace.push(line);
    }

    /// Also trace the verbose view (`SIM_TRACE` is set).
    pub(crate) fn verbose(&self) -> bool {
        self.trace.verbose()
    }

    /// One step of the chaotic phase: time passes, then a workload, network or fault action; the promises
    /// are checked after it.
    fn one_step(&mut self) -> Check {
        if self.step == 0 {
            for i in 0..self.clients.len() {
                self.pump(i)?;
            }
        }
        self.step += 1;
        self.tick()?;
        let mix = self.profile.mix;
        match self.rng.weighted(&mix) {
            0 => self.workload()?,
            1 => {
                self.network()?;
            }
            _ => self.fault()?,
        }
        self.reap()?;
        self.pump_all()?;
        self.check_all()
    }

    /// Time passes; nodes come back or go down; dials complete.
    fn tick(&mut self) -> Check {
        let dt = match self.rng.weighted(&[70, 25, 5]) {
            0 => self.rng.below(2_000),
            1 => self.rng.range(2_000, 100_000),
            _ => self.rng.range(100_000, 3_000_000),
        };
        self.advance(Duration::from_micros(dt))
    }

    pub(crate) fn advance(&mut self, dt: Duration) -> Check {
        self.now += dt;
        for n in 0..self.nodes.len() {
            if self.nodes[n].lame_at.is_some_and(|t| t <= self.now) {
                self.note(|| format!("node {n} leaves lame duck mode: shut down"));
                let down = Duration::from_millis(self.rng.range(100, 2000));
                self.take_down(n, down);
            }
            let node = &mut self.nodes[n];
            if !node.up && node.down_until <= self.now {
                node.up = true;
                self.note(|| format!("node {n} is back"));
            }
        }
        for ci in 0..self.clients.len() {
            if self.clients[ci].dial.is_some_and(|(t, _)| t <= self.now) {
                self.complete_dial(ci)?;
            }
            self.answer_credentials(ci);
        }
        self.reap()?;
        self.pump_all()
    }

    /// Credentials the core asked for come back from the callback (as a driver calls it, outside the core).
    /// An answer for an attempt given up meanwhile must change nothing.
    fn answer_credentials(&mut self, ci: usize) {
        let now = self.instant();
        let c = &mut self.clients[ci];
        let due: Vec<_> = c.creds.iter().filter(|(t, ..)| *t <= self.now).cloned().collect();
        c.creds.retain(|(t, ..)| *t > self.now);
        for (_, ask, nonce) in due {
            let c = &mut self.clients[ci];
            let waiting = c.conn.state() == nats_proto::State::AwaitCredentials;
            let Some(callback) = c.conn.config().auth.callback.clone() else { continue };
            c.conn.handle_credentials(now, ask, callback(nonce.as_deref()));
            self.counts.bump(if waiting { "credentials answered" } else { "credentials answered late" });
        }
    }

    /// A dial the core asked for reaches its node, or fails.
    fn complete_dial(&mut self, ci: usize) -> Check {
        let Some((_, port)) = self.clients[ci].dial.take() else { return Ok(()) };
        let node = usize::from(port.wrapping_sub(BASE_PORT));
        let now = self.instant();
        let accepts = self.nodes.get(node).is_some_and(|n| n.up && n.refuse_until <= self.now && n.lame_at.is_none());
        if !accepts {
            self.counts.bump("refused dials");
            self.note(|| format!("client {ci}: dial to node {node} refused"));
            self.clients[ci].conn.handle_eof(now);
            return self.pump(ci);
        }
        let id = self.next_link;
        self.next_link += 1;
        let mut link = Link::new(id, ci, node);
        let info = self.info_line(node, false);
        link.s2c.write(&info);
        self.links.push(link);
        let c = &mut self.clients[ci];
        c.link = Some(id);
        c.read_buf.clear();
        c.conn.handle_connected(now);
        self.note(|| format!("client {ci}: connected to node {node} (link {id})"));
        self.pump(ci)
    }

    pub(crate) fn link_index(&self, id: u64) -> Option<usize> {
        self.links.iter().position(|l| l.id == id)
    }

    /// One network action: part of a pipe read, a client's write, or an end seen.
    fn network(&mut self) -> Result<bool, String> {
        // (link index, what): 0 = server reads, 1 = client reads, 2 = client sees the end, 3 = server forgets.
        let mut ready: Vec<(usize, u8)> = Vec::new();
        for (li, l) in self.links.iter().enumerate() {
            if l.c2s.ready(self.now) {
                ready.push((li, 0));
            }
            if !l.client_gone && l.s2c.ready(self.now) {
                ready.push((li, 1));
            }
            if l.server_gone && !l.client_gone && l.s2c.data.is_empty() {
                ready.push((li, 2));
            }
            if l.client_gone && l.c2s.data.is_empty() {
                ready.push((li, 3));
            }
        }
        let writers: Vec<usize> = (0..self.clients.len()).filter(|&ci| self.clients[ci].can_write()).collect();
        if ready.is_empty() && writers.is_empty() {
            return Ok(false);
        }
        let pick = self.rng.index(ready.len() + writers.len());
        if pick >= ready.len() {
            let ci = writers[pick - ready.len()];
            self.client_write(ci);
            return Ok(true);
        }
        let (li, what) = ready[pick];
        match what {
            0 | 1 => {
                let pipe = if what == 0 { &self.links[li].c2s } else { &self.links[li].s2c };
                let waiting = pipe.data.len();
                let n = if self.rng.chance(self.profile.partial) {
                    self.counts.bump("partial reads/writes");
                    self.rng.range(1, waiting as u64) as usize
                } else {
                    waiting
                };
                let link = &mut self.links[li];
                let black_hole = link.black_hole;
                let bytes = if what == 0 { link.c2s.take(n) } else { link.s2c.take(n) };
                if black_hole {
                    return Ok(true);
                }
                if what == 0 {
                    self.server_input(li, &bytes)?;
                } else {
                    let (ci, id) = (link.client, link.id);
                    self.client_read(ci, id, &bytes)?;
                }
            }
            2 => {
                let (ci, id) = (self.links[li].client, self.links[li].id);
                self.links[li].client_gone = true;
                if self.clients[ci].link == Some(id) {
                    self.note(|| format!("client {ci}: server closed link {id}"));
                    self.client_eof(ci)?;
                }
            }
            _ => {
                self.links.remove(li);
            }
        }
        Ok(true)
    }

    /// One fault, drawn by the profile's weights.
    fn fault(&mut self) -> Check {
        if self.settling {
            return Ok(());
        }
        let weights = self.profile.faults;
        if weights.iter().all(|&w| w == 0) {
            return Ok(());
        }
        let live: Vec<usize> = (0..self.links.len()).filter(|&li| !self.links[li].reset).collect();
        match self.rng.weighted(&weights) {
            0 if !live.is_empty() => {
                let li = *self.rng.pick(&live);
                self.counts.bump("resets");
                let id = self.links[li].id;
                self.note(|| format!("reset link {id}"));
                self.reset_link(li);
            }
            1 => {
                let n = self.rng.index(self.nodes.len());
                if self.nodes[n].up {
                    self.counts.bump("restarts");
                    self.note(|| format!("restart node {n}"));
                    let down = Duration::from_millis(self.rng.range(0, 3000));
                    self.take_down(n, down);
                }
            }
            2 => {
                let n = self.rng.index(self.nodes.len());
                if self.nodes[n].up && self.nodes[n].lame_at.is_none() {
                    self.counts.bump("lame ducks");
                    let at = self.now + Duration::from_millis(self.rng.range(100, 2000));
                    self.nodes[n].lame_at = Some(at);
                    self.note(|| format!("node {n} enters lame duck mode"));
                    let info = self.info_line(n, true);
                    for link in self.links.iter_mut().filter(|l| l.node == n && !l.reset) {
                        if !link.server_gone {
                            link.s2c.write(&info);
                        }
                    }
                }
            }
            3 => {
                let n = self.rng.index(self.nodes.len());
                self.nodes[n].refuse_until = self.now + Duration::from_millis(self.rng.range(50, 3000));
                self.note(|| format!("node {n} refuses dials for a while"));
            }
            4 if !live.is_empty() => {
                let li = *self.rng.pick(&live);
                self.counts.bump("half-open");
                let link = &mut self.links[li];
                link.black_hole = true;
                let id = link.id;
                self.note(|| format!("link {id} goes half-open"));
            }
            5 if !live.is_empty() => {
                let li = *self.rng.pick(&live);
                self.counts.bump("stalls");
                let until = self.now + Duration::from_millis(self.rng.range(10, 3000));
                let to_client = self.rng.chance(500);
                let link = &mut self.links[li];
                let id = link.id;
                if to_client {
                    link.s2c.stalled_until = until;
                } else {
                    link.c2s.stalled_until = until;
                }
                self.note(|| format!("link {id} stalls {}", if to_client { "to the client" } else { "to the server" }));
            }
            _ => {}
        }
        Ok(())
    }

    /// A node goes away for `down`: every connection to it torn down, its sessions forgotten.
    fn take_down(&mut self, n: usize, down: Duration) {
        let node = &mut self.nodes[n];
        node.up = false;
        node.lame_at = None;
        node.down_until = self.now + down;
        for li in 0..self.links.len() {
            if self.links[li].node == n {
                self.reset_link(li);
            }
        }
    }

    /// Tears a connection down; both ends see it at the next [`reap`](Self::reap).
    pub(crate) fn reset_link(&mut self, li: usize) {
        let link = &mut self.links[li];
        link.reset = true;
        link.c2s.data.clear();
        link.s2c.data.clear();
        link.routed.clear();
        link.subs.clear();
    }

    /// Removes torn-down connections, telling their clients.
    fn reap(&mut self) -> Check {
        while let Some(li) = self.links.iter().position(|l| l.reset) {
            let link = self.links.remove(li);
            // Half-open: the client never hears of it, and must find out by itself (keep-alive).
            if !link.black_hole && self.clients[link.client].link == Some(link.id) {
                let id = link.id;
                self.note(|| format!("client {}: link {id} torn down", link.client));
                self.client_eof(link.client)?;
            }
        }
        Ok(())
    }

    pub(crate) fn pump_all(&mut self) -> Check {
        for ci in 0..self.clients.len() {
            self.pump(ci)?;
        }
        Ok(())
    }

    /// Faults stop and the network heals: run until every client is connected and idle, then check that
    /// the server and each client agree.
    fn settle(&mut self) -> Check {
        self.settling = true;
        self.note(|| "settling".into());
        for node in &mut self.nodes {
            node.refuse_until = Duration::ZERO;
            node.down_until = node.down_until.min(self.now);
        }
        for link in &mut self.links {
            link.c2s.stalled_until = Duration::ZERO;
            link.s2c.stalled_until = Duration::ZERO;
        }
        let limit = self.now + SETTLE_LIMIT;
        let mut quiet_rounds = 0;
        while quiet_rounds < 3 {
            let mut moves = 0;
            while self.network()? {
                self.reap()?;
                self.pump_all()?;
                moves += 1;
                if moves > 100_000 {
                    return Err("the network never went quiet".into());
                }
            }
            self.check_all()?;
            if self.quiet() {
                quiet_rounds += 1;
            } else {
                quiet_rounds = 0;
            }
            if self.now > limit {
                return Err(format!("not settled after {SETTLE_LIMIT:?} without faults: {}", self.unsettled()));
            }
            self.advance(Duration::from_millis(50))?;
            self.check_all()?;
        }
        for ci in 0..self.clients.len() {
            self.check_agreement(ci)?;
        }
        Ok(())
    }

    /// Every client that can be is connected, nothing moves, no end is pending.
    fn quiet(&self) -> bool {
        let links_quiet = self.links.iter().all(|l| {
            self.clients[l.client].wrong_password
                || (l.c2s.data.is_empty() && l.s2c.data.is_empty() && !l.client_gone && !l.server_gone && !l.black_hole)
        });
        let nodes_up = self.nodes.iter().all(|n| n.up && n.lame_at.is_none());
        let clients_idle = self.clients.iter().all(|c| {
            c.settled()
                && (c.closed
                    || c.wrong_password
                    || c.link.and_then(|id| self.link_index(id)).is_some_and(|li| !self.links[li].black_hole))
        });
        links_quiet && nodes_up && clients_idle
    }

    fn unsettled(&self) -> String {
        let clients: Vec<String> = self.clients.iter().map(SimClient::describe).collect();
        let links: Vec<String> = self
            .links
            .iter()
            .map(|l| {
                format!(
                    "link {} (client {}, node {}): c2s {} B, s2c {} B, client_gone {}, server_gone {}, half-open {}",
                    l.id,
                    l.client,
                    l.node,
                    l.c2s.data.len(),
                    l.s2c.data.len(),
                    l.client_gone,
                    l.server_gone,
                    l.black_hole
                )
            })
            .collect();
        format!("clients: [{}]; links: [{}]", clients.join("; "), links.join("; "))
    }
}

impl Schedule for World {
    fn steps(&self) -> u64 {
        self.profile.steps
    }

    fn next_step(&mut self) -> Check {
        self.one_step()
    }

    fn wind_down(&mut self) -> Check {
        self.settle()?;
        self.finish()
    }

    fn elapsed(&self) -> Duration {
        self.now
    }

    fn report(&self) -> (Counts, Vec<String>) {
        (self.counts.clone(), self.trace.lines())
    }
}
