//! The simulated users' actions, drawn from the seed: publishes, subscriptions, requests, flushes, drains.

use std::time::Duration;

use bytes::Bytes;
use nats_proto::{CommandError, Headers, Instant, State};

use crate::client::{FlushRecord, RequestRecord, UserSub, DRAIN_TIMEOUT};
use crate::server::{stamp, REQUEST, TRACKED};
use crate::world::{Check, World};

/// Subjects tracked messages are published on.
const SUBJECTS: [&str; 5] = ["t.a", "t.b", "t.a.x", "t.b.y", "t.c"];
/// Patterns subscribers use.
const PATTERNS: [&str; 7] = ["t.a", "t.*", "t.>", "t.a.*", "t.b.y", "t.*.x", ">"];
/// Subjects requests go to; the last has no responder ever.
const SERVICES: [&str; 4] = ["svc.0", "svc.1", "svc.2", "svc.none"];
/// Patterns responders use.
const RESPONDERS: [&str; 3] = ["svc.0", "svc.1", "svc.*"];

impl World {
    /// One action of a client's user, drawn from the seed.
    pub(crate) fn workload(&mut self) -> Check {
        if self.settling {
            return Ok(());
        }
        let ci = self.rng.index(self.clients.len());
        if self.clients[ci].closed {
            return Ok(());
        }
        let now = self.instant();
        match self.rng.weighted(&[30, 6, 3, 4, 4, 3, 8, 2, 6, 2, 1, 1]) {
            0 => self.publish(ci),
            1 | 2 => {
                let pattern = *self.rng.pick(&PATTERNS);
                let queue = self.rng.chance(300).then(|| *self.rng.pick(&["g1", "g2"]));
                self.subscribe(ci, pattern, queue, false)
            }
            3 => {
                let pattern = *self.rng.pick(&RESPONDERS);
                let queue = self.rng.chance(500).then_some("workers");
                self.subscribe(ci, pattern, queue, true)
            }
            4 | 5 => {
                let c = &self.clients[ci];
                let live: Vec<u64> = c.subs.iter().filter(|(_, s)| s.live).map(|(&sid, _)| sid).collect();
                if live.is_empty() {
                    return Ok(());
                }
                let sid = *self.rng.pick(&live);
                let delivered = c.subs[&sid].delivered;
                let max = self.rng.chance(500).then(|| delivered + self.rng.below(4));
                self.note(|| format!("client {ci}: unsubscribe sid {sid} max {max:?}"));
                let c = &mut self.clients[ci];
                match c.conn.unsubscribe(sid, max) {
                    Ok(()) => {
                        let sub = c.subs.get_mut(&sid).expect("picked from the map");
                        match max {
                            Some(m) => sub.max = Some(m),
                            None => sub.live = false,
                        }
                        Ok(())
                    }
                    Err(e) => Err(format!("client {ci}: unsubscribe of live sid {sid} refused: {e}")),
                }
            }
            6 | 7 => self.request(ci, now),
            8 => {
                let timeout = Duration::from_millis(self.rng.range(50, 5000));
                let c = &mut self.clients[ci];
                let id = c.conn.flush(now, Some(timeout)).map_err(|e| format!("client {ci}: flush refused: {e}"))?;
                c.flush_calls += 1;
                let record = FlushRecord { epoch: c.epoch, seq_end: c.next_seq, deadline: now + timeout };
                if c.flushes.insert(id, record).is_some() {
                    return Err(format!("client {ci}: {id:?} given twice"));
                }
                self.note(|| format!("client {ci}: flush {id:?}"));
                Ok(())
            }
            9 => {
                if self.rng.chance(500) {
                    self.subscribe(ci, "deny.x", None, false)
                } else {
                    let _ = self.clients[ci].conn.publish("deny.x", None, None, &b"no"[..]);
                    Ok(())
                }
            }
            10 if self.rng.chance(60) => {
                self.note(|| format!("client {ci}: drain"));
                let c = &mut self.clients[ci];
                if c.drain_deadline.is_none() {
                    c.drain_deadline = Some(self.now + DRAIN_TIMEOUT);
                }
                c.conn.drain(now).map_err(|e| format!("client {ci}: drain refused: {e}"))
            }
            11 if self.rng.chance(30) => {
                self.note(|| format!("client {ci}: close"));
                let c = &mut self.clients[ci];
                c.close_requested = true;
                c.conn.close();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn payload_len(&mut self) -> usize {
        match self.rng.weighted(&[60, 30, 8, 2]) {
            0 => self.rng.range(10, 40) as usize,
            1 => self.rng.range(40, 300) as usize,
            2 => self.rng.range(300, 3000) as usize,
            _ => self.profile.max_payload + self.rng.range(1, 100) as usize,
        }
    }

    fn publish(&mut self, ci: usize) -> Check {
        let subject = *self.rng.pick(&SUBJECTS);
        let len = self.payload_len();
        let c = &mut self.clients[ci];
        let seq = c.next_seq;
        c.next_seq += 1;
        let payload = stamp(TRACKED, ci, seq, len);
        let mut headers = Headers::new();
        headers.insert("Sim-Seq", &seq.to_string()).map_err(|e| e.to_string())?;
        let headers = (seq % 3 == 0).then_some(&headers);
        let buffered_before = c.conn.reconnect_buffer_len();
        match c.conn.publish(subject, None, headers, &payload[..]) {
            Ok(()) => {
                c.pubs.push((seq, c.epoch));
                Ok(())
            }
            Err(CommandError::ReconnectBufferFull { needed, available }) => {
                self.counts.bump("reconnect buffer full");
                let bound = self.profile.reconnect_buffer;
                if c.conn.is_connected() || needed <= available || available != bound.saturating_sub(buffered_before) {
                    return Err(format!(
                        "client {ci}: buffer full with needed {needed}, available {available}, buffered \
                         {buffered_before}, bound {bound}, connected {}",
                        c.conn.is_connected()
                    ));
                }
                Ok(())
            }
            Err(CommandError::MaxPayloadExceeded { size, max_payload }) if size > max_payload => Ok(()),
            Err(CommandError::Closed) if c.conn.state() == State::Closed => Ok(()),
            Err(e) => Err(format!("client {ci}: publish of {len} B refused: {e}")),
        }
    }

    fn subscribe(&mut self, ci: usize, pattern: &str, queue: Option<&str>, responder: bool) -> Check {
        let c = &mut self.clients[ci];
        match c.conn.subscribe(pattern, queue.map(str::as_bytes)) {
            Ok(sid) => {
                let sub = UserSub {
                    pattern: pattern.to_owned(),
                    queue: queue.map(str::to_owned),
                    max: None,
                    delivered: 0,
                    live: true,
                    ended: false,
                    responder,
                };
                if c.subs.insert(sid, sub).is_some() {
                    return Err(format!("client {ci}: sid {sid} given twice"));
                }
                self.note(|| format!("client {ci}: subscribe {pattern} {queue:?} as sid {sid}"));
                Ok(())
            }
            Err(CommandError::Draining) if c.drain_deadline.is_some() => Ok(()),
            Err(e) => Err(format!("client {ci}: subscribe to {pattern} refused: {e}")),
        }
    }

    fn request(&mut self, ci: usize, now: Instant) -> Check {
        let subject = *self.rng.pick(&SERVICES);
        let len = self.payload_len();
        let many = self.rng.chance(200);
        let timeout = Duration::from_millis(self.rng.range(20, 3000));
        let c = &mut self.clients[ci];
        let seq = c.next_req;
        c.next_req += 1;
        let payload = Bytes::from(stamp(REQUEST, ci, seq, len));
        let made = if many {
            c.conn.request_many(now, subject, None, &payload[..], Some(timeout))
        } else {
            c.conn.request(now, subject, None, &payload[..], Some(timeout))
        };
        match made {
            Ok(id) => {
                let record = RequestRecord { payload, deadline: now + timeout, many, done: false };
                if c.requests.insert(id, record).is_some() {
                    return Err(format!("client {ci}: {id:?} given twice"));
                }
                Ok(())
            }
            Err(CommandError::ReconnectBufferFull { .. }) if !c.conn.is_connected() => {
                self.counts.bump("reconnect buffer full");
                Ok(())
            }
            Err(CommandError::MaxPayloadExceeded { size, max_payload }) if size > max_payload => Ok(()),
            Err(CommandError::Draining) if c.drain_deadline.is_some() => Ok(()),
            Err(e) => Err(format!("client {ci}: request refused: {e}")),
        }
    }
}
