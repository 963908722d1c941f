//! The ordered consumer's tracker ([`nats_jetstream::ordered::OrderedConsumer`]) against a model stream and
//! its consumers, over a network that loses messages, delays them, and lets an old consumer's messages
//! arrive after a reset; creates fail and succeed late; the connection drops.
//!
//! Promises: the user sees the stream's sequences 1, 2, 3, ... with no gap and no repeat; each create starts
//! right after the last delivered message; a failed create waits its backoff; when the network settles every
//! message is delivered and every consumer but the current one was deleted.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use nats_jetstream::model::DeliverPolicy;
use nats_jetstream::ordered::{backoff, Delivery, OrderedConfig, OrderedConsumer, ResetReason};

use crate::rng::SimRng;
use crate::world::Check;
use crate::{Counts, Failure, Outcome, Trace};

/// A consumer of the chain as the server holds it.
#[derive(Debug, Clone, Copy)]
struct ServerConsumer {
    /// The stream sequence it delivers next.
    next_sseq: u64,
    /// Its consumer sequence so far.
    cseq: u64,
    alive: bool,
}

struct Sim {
    rng: SimRng,
    /// Steps in the chaotic phase.
    steps: u64,
    base: Instant,
    now: Duration,
    tracker: OrderedConsumer,
    /// Messages 1..=stream_len are stored.
    stream_len: u64,
    consumers: BTreeMap<u64, ServerConsumer>,
    /// A create in flight: serial, start sequence, when its outcome arrives.
    creating: Option<(u64, u64, Duration)>,
    /// Deliveries on their way: (serial, consumer sequence, stream sequence), in order.
    wire: VecDeque<(u64, u64, u64)>,
    /// The last stream sequence the user got.
    delivered: u64,
    /// When the last create failed.
    failed_at: Option<Instant>,
    settling: bool,
    counts: Counts,
    trace: Trace,
    loss: u64,
    create_failures: u64,
}

/// Runs one seed of the ordered-consumer simulation.
pub fn run(seed: u64) -> Result<Outcome, Failure> {
    let mut rng = SimRng::new(seed ^ 0x0D0E_0ED0);
    let loss = *rng.pick(&[0, 5, 30, 100]);
    let create_failures = *rng.pick(&[0, 50, 300]);
    let base = Instant::now();
    let tracker = OrderedConsumer::new("Sim", OrderedConfig::default(), base).map_err(|e| Failure {
        seed,
        step: 0,
        at: Duration::ZERO,
        what: format!("tracker refused the default config: {e}"),
        trace: vec![],
    })?;
    let mut sim = Sim {
        rng,
        steps: 0,
        base,
        now: Duration::ZERO,
        tracker,
        stream_len: 0,
        consumers: BTreeMap::new(),
        creating: None,
        wire: VecDeque::new(),
        delivered: 0,
        failed_at: None,
        settling: false,
        counts: Counts::default(),
        trace: Trace::from_env(),
        loss,
        create_failures,
    };
    sim.steps = sim.rng.range(50, 800);
    crate::drive(seed, sim)
}

impl Sim {
    fn now(&self) -> Instant {
        self.base + self.now
    }

    fn note(&mut self, line: String) {
        let line = format!("{:?}: {line}", self.now);
        self.trace.push(line);
    }

    fn step(&mut self) -> Check {
        self.now += Duration::from_millis(self.rng.range(0, 300));
        let (publish, faults) = if self.settling { (0, 0) } else { (10, 4) };
        match self.rng.weighted(&[publish, 25, 30, 10, faults]) {
            0 => self.stream_len += self.rng.range(1, 5),
            1 => self.server_sends(),
            2 => self.client_reads()?,
            3 => {}
            _ => self.fault(),
        }
        self.create()?;
        self.complete_create();
        self.delete()
    }

    /// Every live consumer with stored messages left sends its next one, the current one most often.
    fn server_sends(&mut self) {
        let serials: Vec<u64> = self.consumers.iter().filter(|(_, c)| c.alive).map(|(&s, _)| s).collect();
        for serial in serials {
            let c = self.consumers.get_mut(&serial).expect("listed");
            if c.next_sseq <= self.stream_len {
                c.cseq += 1;
                self.wire.push_back((serial, c.cseq, c.next_sseq));
                c.next_sseq += 1;
            }
        }
    }

    fn client_reads(&mut self) -> Check {
        let Some((serial, cseq, sseq)) = self.wire.pop_front() else { return Ok(()) };
        if !self.settling && self.rng.chance(self.loss) {
            self.counts.bump("deliveries lost");
            self.note(format!("lost {serial}/{cseq}/{sseq}"));
            return Ok(());
        }
        let current = self.tracker.serial();
        match self.tracker.handle_message(cseq, sseq, serial) {
            Delivery::Deliver => {
                if serial != current || sseq != self.delivered + 1 {
                    return Err(format!(
                        "delivered stream seq {sseq} (consumer {serial}/{cseq}) after {}; current serial {current}",
                        self.delivered
                    ));
                }
                self.delivered = sseq;
                self.counts.bump("messages delivered");
            }
            Delivery::Reset => {
                self.counts.bump("consumer resets");
                self.note(format!("gap at {serial}/{cseq}: reset to serial {}", self.tracker.serial()));
            }
            Delivery::DropStale if serial == current => {
                return Err(format!("a message of the current consumer {serial} dropped as stale"));
            }
            Delivery::DropStale => {}
        }
        Ok(())
    }

    fn fault(&mut self) {
        let reason = match self.rng.below(4) {
            0 => ResetReason::MissedHeartbeat,
            1 => {
                // The server deleted the current consumer.
                if let Some(c) = self.consumers.get_mut(&self.tracker.serial()) {
                    c.alive = false;
                }
                ResetReason::ConsumerDeleted
            }
            2 => {
                // The connection dropped: whatever was on its way is gone.
                self.wire.clear();
                self.counts.bump("reconnects");
                ResetReason::Reconnected
            }
            _ => ResetReason::NoResponders,
        };
        self.note(format!("reset: {reason:?}"));
        self.counts.bump("consumer resets");
        self.tracker.reset(reason);
    }

    fn create(&mut self) -> Check {
        let now = self.now();
        let Some(config) = self.tracker.poll_create(now) else { return Ok(()) };
        let serial = self.tracker.serial();
        if config.name != self.tracker.name() {
            return Err(format!("create names {:?}, the tracker is at {}", config.name, self.tracker.name()));
        }
        if let Some(failed) = self.failed_at {
            let wait = backoff(self.tracker.failures());
            if now < failed + wait {
                return Err(format!("create {serial} sent {:?} after a failure, backoff {wait:?}", now - failed));
            }
        }
        let start = match config.deliver_policy {
            DeliverPolicy::All if self.delivered == 0 => 1,
            DeliverPolicy::ByStartSequence if config.opt_start_seq == self.delivered + 1 => config.opt_start_seq,
            other => {
                return Err(format!(
                    "create {serial} starts {other:?} at {} after {} delivered",
                    config.opt_start_seq, self.delivered
                ))
            }
        };
        let at = self.now + Duration::from_millis(self.rng.range(0, 500));
        self.creating = Some((serial, start, at));
        Ok(())
    }

    fn complete_create(&mut self) {
        let Some((serial, start, at)) = self.creating else { return };
        if at > self.now {
            return;
        }
        self.creating = None;
        if !self.settling && self.rng.chance(self.create_failures) {
            self.counts.bump("creates failed");
            self.failed_at = Some(self.now());
            self.tracker.create_failed(serial, self.now());
            self.note(format!("create {serial} failed"));
            return;
        }
        self.failed_at = None;
        self.consumers.insert(serial, ServerConsumer { next_sseq: start, cseq: 0, alive: true });
        self.tracker.create_succeeded(serial);
        self.note(format!("created {serial} at {start}"));
    }

    fn delete(&mut self) -> Check {
        while let Some(name) = self.tracker.poll_delete() {
            let Some(serial) = self.tracker.serial_of(&name) else {
                return Err(format!("asked to delete {name}, not of this chain"));
            };
            if serial >= self.tracker.serial() {
                return Err(format!("asked to delete {name}, the current consumer or a later one"));
            }
            if let Some(c) = self.consumers.get_mut(&serial) {
                c.alive = false;
            }
        }
        Ok(())
    }

    /// No more faults or losses; a few more messages reveal any gap left. Everything must arrive.
    fn settle(&mut self) -> Check {
        self.settling = true;
        self.stream_len += 3;
        for _ in 0..100_000 {
            self.step()?;
            let current = self.tracker.serial();
            let idle = self.wire.is_empty()
                && self.creating.is_none()
                && self.consumers.get(&current).is_some_and(|c| c.alive && c.next_sseq > self.stream_len);
            if idle && self.delivered == self.stream_len {
                let leaked: Vec<u64> =
                    self.consumers.iter().filter(|(&s, c)| c.alive && s != current).map(|(&s, _)| s).collect();
                if !leaked.is_empty() {
                    return Err(format!("consumers {leaked:?} of the chain were never deleted"));
                }
                return Ok(());
            }
        }
        Err(format!(
            "not settled: {} of {} delivered, serial {}, creating {:?}, {} on the wire",
            self.delivered,
            self.stream_len,
            self.tracker.serial(),
            self.creating,
            self.wire.len()
        ))
    }
}

impl crate::Schedule for Sim {
    fn steps(&self) -> u64 {
        self.steps
    }

    fn next_step(&mut self) -> Check {
        self.step()
    }

    fn wind_down(&mut self) -> Check {
        self.settle()
    }

    fn elapsed(&self) -> Duration {
        self.now
    }

    fn report(&self) -> (Counts, Vec<String>) {
        (self.counts.clone(), self.trace.lines())
    }
}
