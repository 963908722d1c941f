//! The model server: cluster nodes, the session behind each connection, and routing.
//!
//! It speaks enough NATS to be honest: INFO first (with the other nodes in `connect_urls`, `ldm` when going
//! away), CONNECT checked against the node's auth, PING answered, SUB/UNSUB with max-msgs, queue groups
//! across the cluster, PUB/HPUB routed as MSG/HMSG, a 503 to a request nobody is subscribed to, and `-ERR`
//! for denied subjects, bad credentials and oversized payloads. Messages route synchronously to every
//! session of every node that is up: the cluster acts as one server with several doors.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nats_proto::subject::matches;
use nats_proto::{ClientDecoder, ClientOp, Limits, Pub, Subject, WriteBuffer};

use crate::world::{Check, World};

/// The first node's port; node `i` listens on `BASE_PORT + i`.
pub(crate) const BASE_PORT: u16 = 4222;
/// Subjects under this prefix are denied to everyone, for publish and subscribe.
pub(crate) const DENIED: &str = "deny.";
/// The credentials a node with auth accepts.
pub(crate) const USER: (&str, &str) = ("sim", "secret");

/// One server of the cluster.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) up: bool,
    /// When a node that is down comes back.
    pub(crate) down_until: Duration,
    /// Dials are refused until then.
    pub(crate) refuse_until: Duration,
    /// In lame duck mode: shuts down at this time.
    pub(crate) lame_at: Option<Duration>,
}

/// One direction of a connection: bytes written and not yet read.
#[derive(Debug, Default)]
pub(crate) struct Pipe {
    pub(crate) data: BytesMut,
    /// Nothing moves before this time.
    pub(crate) stalled_until: Duration,
    /// Bytes read from it so far.
    pub(crate) read: u64,
    /// Bytes written into it so far.
    pub(crate) written: u64,
}

impl Pipe {
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        self.written += bytes.len() as u64;
    }

    pub(crate) fn take(&mut self, n: usize) -> Bytes {
        self.read += n as u64;
        self.data.split_to(n).freeze()
    }

    pub(crate) fn ready(&self, now: Duration) -> bool {
        !self.data.is_empty() && self.stalled_until <= now
    }
}

/// A subscription as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerSub {
    pub(crate) subject: String,
    pub(crate) queue: Option<String>,
    pub(crate) max: Option<u64>,
    pub(crate) delivered: u64,
}

/// A tracked message written to a connection: where it ends in the stream, and what it was.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Routed {
    pub(crate) end: u64,
    pub(crate) sid: u64,
    pub(crate) origin: usize,
    pub(crate) seq: u64,
}

/// A connection between a client and a node, with the node's session for it.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) id: u64,
    pub(crate) client: usize,
    pub(crate) node: usize,
    /// Client to server.
    pub(crate) c2s: Pipe,
    /// Server to client.
    pub(crate) s2c: Pipe,
    decoder: ClientDecoder,
    input: BytesMut,
    /// CONNECT accepted.
    pub(crate) ready: bool,
    echo: bool,
    no_responders: bool,
    pub(crate) subs: BTreeMap<u64, ServerSub>,
    /// Tracked messages written to `s2c`, in order.
    pub(crate) routed: std::collections::VecDeque<Routed>,
    /// Half-open: everything written either way is lost, and neither end hears of it.
    pub(crate) black_hole: bool,
    /// The client closed its end; the server reads what is left, then forgets the session.
    pub(crate) client_gone: bool,
    /// The server closed its end; the client reads what is left, then sees the end.
    pub(crate) server_gone: bool,
    /// Torn down (reset, node gone): both ends see the end at the next reaping, bytes in flight are lost.
    pub(crate) reset: bool,
}

impl Link {
    pub(crate) fn new(id: u64, client: usize, node: usize) -> Self {
        Self {
            id,
            client,
            node,
            c2s: Pipe::default(),
            s2c: Pipe::default(),
            decoder: ClientDecoder::new(Limits::default()),
            input: BytesMut::new(),
            ready: false,
            echo: true,
            no_responders: false,
            subs: BTreeMap::new(),
            routed: Default::default(),
            black_hole: false,
            client_gone: false,
            server_gone: false,
            reset: false,
        }
    }

    /// True while the server may still write to it and route to it.
    fn routable(&self) -> bool {
        self.ready && !self.server_gone && !self.client_gone && !self.reset
    }

    fn send(&mut self, bytes: &[u8]) {
        if !self.server_gone && !self.reset {
            self.s2c.write(bytes);
        }
    }

    fn send_err(&mut self, text: &str) {
        self.send(format!("-ERR '{text}'\r\n").as_bytes());
    }
}

/// A subject as text (the model only ever sees ASCII subjects).
fn text(s: &Subject) -> String {
    String::from_utf8_lossy(s.as_bytes()).into_owned()
}

/// A tracked payload: `m`, the publishing client, the publish sequence (LE), then a pattern.
pub(crate) const TRACKED: u8 = b'm';
/// A request payload: `q`, the requesting client, the request sequence (LE), then a pattern.
pub(crate) const REQUEST: u8 = b'q';
/// Bytes before the pattern.
pub(crate) const STAMP: usize = 10;

/// A payload of `len` bytes (at least [`STAMP`]) for `kind`, `origin` and `seq`.
pub(crate) fn stamp(kind: u8, origin: usize, seq: u64, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(len.max(STAMP));
    p.push(kind);
    p.push(origin as u8);
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend((STAMP..len.max(STAMP)).map(|i| (seq as u8).wrapping_add(i as u8)));
    p
}

/// Reads a stamp back: `(kind, origin, seq)` when the whole payload is intact.
pub(crate) fn read_stamp(p: &[u8]) -> Option<(u8, usize, u64)> {
    if p.len() < STAMP {
        return None;
    }
    let seq = u64::from_le_bytes(p[2..STAMP].try_into().ok()?);
    let intact = p[STAMP..].iter().enumerate().all(|(i, &b)| b == (seq as u8).wrapping_add((i + STAMP) as u8));
    intact.then_some((p[0], usize::from(p[1]), seq))
}

impl World {
    /// The INFO a node sends, lame duck or not.
    pub(crate) fn info_line(&self, node: usize, lame: bool) -> Vec<u8> {
        let urls: Vec<String> = (0..self.nodes.len())
            .filter(|&i| i != node && self.profile.advertise)
            .map(|i| format!("\"127.0.0.1:{}\"", BASE_PORT + i as u16))
            .collect();
        format!(
            "INFO {{\"server_id\":\"N{node}\",\"server_name\":\"n{node}\",\"version\":\"2.11.0\",\"proto\":1,\
             \"headers\":true,\"max_payload\":{},\"auth_required\":{},\"connect_urls\":[{}],\"ldm\":{lame}}}\r\n",
            self.profile.max_payload,
            self.profile.auth,
            urls.join(",")
        )
        .into_bytes()
    }

    /// Bytes from a client reach the server: decode and act on every complete op.
    pub(crate) fn server_input(&mut self, li: usize, bytes: &[u8]) -> Check {
        let link = &mut self.links[li];
        if link.server_gone || link.reset {
            return Ok(());
        }
        link.input.extend_from_slice(bytes);
        let mut ops = Vec::new();
        loop {
            match link.decoder.decode(&mut link.input) {
                Ok(Some(op)) => ops.push(op),
                Ok(None) => break,
                Err(e) => return Err(format!("client {} sent bytes the server cannot parse: {e}", link.client)),
            }
        }
        for op in ops {
            if self.links[li].server_gone || self.links[li].reset {
                break;
            }
            self.server_op(li, op)?;
        }
        Ok(())
    }

    fn server_op(&mut self, li: usize, op: ClientOp) -> Check {
        if self.verbose() && !matches!(op, ClientOp::Pub(_)) {
            let (client, id) = (self.links[li].client, self.links[li].id);
            self.note(|| format!("server: client {client} link {id}: {op:?}"));
        }
        let link = &mut self.links[li];
        if !link.ready && !matches!(op, ClientOp::Connect(_)) {
            return Err(format!("client {} sent {op:?} before CONNECT", link.client));
        }
        match op {
            ClientOp::Connect(info) => {
                if link.ready {
                    return Err(format!("client {} sent CONNECT twice", link.client));
                }
                if self.profile.auth && (info.user.as_deref(), info.pass.as_deref()) != (Some(USER.0), Some(USER.1)) {
                    link.send_err("Authorization Violation");
                    link.server_gone = true;
                    self.counts.bump("auth failures");
                    return Ok(());
                }
                link.ready = true;
                link.echo = info.echo;
                link.no_responders = info.no_responders && info.headers;
            }
            ClientOp::Ping => link.send(b"PONG\r\n"),
            ClientOp::Pong => {}
            ClientOp::Sub { subject, queue, sid } => {
                let subject = text(&subject);
                if subject.starts_with(DENIED) {
                    let text = match &queue {
                        Some(q) => format!(
                            "Permissions Violation for Subscription to \"{subject}\" using queue \"{}\"",
                            text(q)
                        ),
                        None => format!("Permissions Violation for Subscription to \"{subject}\""),
                    };
                    link.send_err(&text);
                    self.counts.bump("permission errors");
                    return Ok(());
                }
                let queue = queue.as_ref().map(text);
                match link.subs.get(&sid) {
                    // nats-server ignores a SUB for a sid that is still live.
                    Some(s) if s.subject == subject && s.queue == queue => {}
                    Some(s) => return Err(format!("client {} reused sid {sid} for {subject}: {s:?}", link.client)),
                    None => {
                        link.subs.insert(sid, ServerSub { subject, queue, max: None, delivered: 0 });
                    }
                }
            }
            ClientOp::Unsub { sid, max } => match (link.subs.get_mut(&sid), max) {
                (Some(sub), Some(max)) if max > sub.delivered => sub.max = Some(max),
                _ => {
                    link.subs.remove(&sid);
                }
            },
            ClientOp::Pub(p) => self.route(li, p)?,
            other => return Err(format!("client sent an op the model does not know: {other:?}")),
        }
        Ok(())
    }

    fn route(&mut self, li: usize, p: Pub) -> Check {
        let size = p.payload.len() + p.headers.as_ref().map_or(0, |h| h.as_bytes().len());
        let subject = text(&p.subject);
        let from = &mut self.links[li];
        if size > self.profile.max_payload {
            from.send_err("Maximum Payload Violation");
            from.server_gone = true;
            self.counts.bump("max-payload errors");
            return Ok(());
        }
        if subject.starts_with(DENIED) {
            from.send_err(&format!("Permissions Violation for Publish to \"{subject}\""));
            self.counts.bump("permission errors");
            return Ok(());
        }
        let stamp = read_stamp(&p.payload);
        if let Some((TRACKED, origin, seq)) = stamp {
            self.processed.insert((origin, seq));
        }
        // Every matching subscription; one member per queue group, cluster-wide.
        let mut plain = Vec::new();
        let mut groups: BTreeMap<String, Vec<(usize, u64)>> = BTreeMap::new();
        for (ti, link) in self.links.iter().enumerate() {
            if !link.routable() || !self.nodes[link.node].up || (ti == li && !link.echo) {
                continue;
            }
            for (&sid, sub) in &link.subs {
                if matches(sub.subject.as_bytes(), subject.as_bytes()) {
                    match &sub.queue {
                        Some(q) => groups.entry(q.clone()).or_default().push((ti, sid)),
                        None => plain.push((ti, sid)),
                    }
                }
            }
        }
        for members in groups.values() {
            plain.push(*self.rng.pick(members));
        }
        if plain.is_empty() {
            if let Some(reply) = &p.reply {
                self.no_responders(li, &text(reply));
            }
            return Ok(());
        }
        let reply = p.reply.as_ref().map(|r| r.as_bytes());
        let headers = p.headers.as_ref().map(|h| h.as_bytes());
        for (ti, sid) in plain {
            let link = &mut self.links[ti];
            let mut w = WriteBuffer::new();
            w.push_msg(subject.as_bytes(), sid, reply, headers, p.payload.clone());
            link.send(&w.take_bytes());
            if let Some((TRACKED, origin, seq)) = stamp {
                link.routed.push_back(Routed { end: link.s2c.written, sid, origin, seq });
            }
            let Some(sub) = link.subs.get_mut(&sid) else { continue };
            sub.delivered += 1;
            let (client, id, delivered) = (link.client, link.id, sub.delivered);
            if sub.max.is_some_and(|m| sub.delivered >= m) {
                link.subs.remove(&sid);
            }
            if self.verbose() {
                let stamp = stamp.map(|(_, o, s)| (o, s));
                self.note(|| {
                    format!("server: {subject} {stamp:?} to client {client} link {id} sid {sid} ({delivered})")
                });
            }
            let link = &mut self.links[ti];
            if link.s2c.data.len() > self.profile.slow_consumer_bytes {
                // The server gives up on a client that does not read: the connection ends, queued bytes lost.
                self.counts.bump("slow consumers");
                self.reset_link(ti);
            }
        }
        Ok(())
    }

    /// A request to a subject nobody listens on: a 503 status to the requester, when it asked for one.
    fn no_responders(&mut self, li: usize, reply: &str) {
        let link = &mut self.links[li];
        if !link.no_responders {
            return;
        }
        let Some((&sid, _)) = link.subs.iter().find(|(_, s)| matches(s.subject.as_bytes(), reply.as_bytes())) else {
            return;
        };
        let mut w = WriteBuffer::new();
        w.push_msg(reply.as_bytes(), sid, None, Some(b"NATS/1.0 503\r\n\r\n"), &b""[..]);
        link.send(&w.take_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_back_and_catch_damage() {
        for len in [0, STAMP, 11, 300] {
            let p = stamp(TRACKED, 3, 77, len);
            assert_eq!(read_stamp(&p), Some((TRACKED, 3, 77)));
        }
        let mut p = stamp(TRACKED, 3, 77, 40);
        p[20] ^= 1;
        assert_eq!(read_stamp(&p), None);
        assert_eq!(read_stamp(&p[..5]), None);
    }
}
