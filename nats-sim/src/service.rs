//! `micro`'s [`ServiceCore`] as a runtime drives it: requests begin and finish in any order and with every
//! outcome, endpoints have in-flight limits and are removed while requests are in flight, statistics are
//! reset mid-request, and STATS is read (as JSON, as a requester would) at any time.
//!
//! Promises: every request received is counted once in the window it finishes in (a reset in between moves
//! it to the new window, time, outcome and all); errors and the last error follow the outcomes and the busy
//! refusals exactly; the processing time is the sum of the finished requests' times; in-flight counts return
//! to zero when every request has finished (stop drains); a removed endpoint turns requests away.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use micro::{Clock, EndpointConfig, EndpointId, Outcome as Ending, ServiceConfig, ServiceCore, Target, Ticket, Verb};

use crate::rng::SimRng;
use crate::world::Check;
use crate::{Counts, Failure, Outcome, Trace};

/// The simulated clock, shared with the core.
struct SimClock {
    base: Instant,
    nanos: AtomicU64,
}

impl Clock for SimClock {
    fn now(&self) -> Instant {
        self.base + Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    fn wall(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(1_700_000_000)
            + Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }
}

/// What STATS must say about one endpoint.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Expected {
    num_requests: u64,
    num_errors: u64,
    last_error: String,
    processing_ns: u64,
}

struct Endpoint {
    id: EndpointId,
    name: String,
    max_in_flight: Option<usize>,
    removed: bool,
    expected: Expected,
    /// Requests in flight: ticket, when received, and the reset generation then.
    in_flight: Vec<(Ticket, u64, u64)>,
}

struct Sim {
    rng: SimRng,
    /// Steps in the chaotic phase.
    steps: u64,
    clock: Arc<SimClock>,
    core: ServiceCore,
    endpoints: Vec<Endpoint>,
    generation: u64,
    counts: Counts,
    trace: Trace,
}

/// Runs one seed of the service-core simulation.
pub fn run(seed: u64) -> Result<Outcome, Failure> {
    let fail = |step, what: String, trace: Vec<String>| Failure { seed, step, at: Duration::ZERO, what, trace };
    let mut rng = SimRng::new(seed ^ 0x5E41_1CE5);
    let clock = Arc::new(SimClock { base: Instant::now(), nanos: AtomicU64::new(0) });
    let mut core = ServiceCore::new(ServiceConfig::new("sim", "1.0.0"), "SIMID".into(), clock.clone())
        .map_err(|e| fail(0, format!("config refused: {e}"), vec![]))?;
    let mut endpoints = Vec::new();
    for i in 0..rng.range(1, 3) {
        let name = format!("e{i}");
        let mut config = EndpointConfig::new(&name);
        let max_in_flight = rng.chance(500).then(|| rng.range(1, 3) as usize);
        if let Some(max) = max_in_flight {
            config = config.max_in_flight(max);
        }
        let root = core.root();
        let sub = core.add_endpoint(&root, config).map_err(|e| fail(0, format!("endpoint refused: {e}"), vec![]))?;
        let Target::Endpoint(id) = sub.target else { return Err(fail(0, "not an endpoint".into(), vec![])) };
        endpoints.push(Endpoint {
            id,
            name,
            max_in_flight,
            removed: false,
            expected: Expected::default(),
            in_flight: vec![],
        });
    }
    let mut sim = Sim {
        rng,
        steps: 0,
        clock,
        core,
        endpoints,
        generation: 0,
        counts: Counts::default(),
        trace: Trace::from_env(),
    };
    sim.steps = sim.rng.range(20, 400);
    crate::drive(seed, sim)
}

impl Sim {
    fn nanos(&self) -> u64 {
        self.clock.nanos.load(Ordering::Relaxed)
    }

    fn note(&mut self, line: String) {
        self.trace.push(line);
    }

    fn step(&mut self) -> Check {
        self.clock.nanos.fetch_add(self.rng.range(0, 5_000_000), Ordering::Relaxed);
        let e = self.rng.index(self.endpoints.len());
        match self.rng.weighted(&[30, 30, 8, 2, 1, 3]) {
            0 => self.arrive(e),
            1 => self.finish(e),
            2 => self.check_stats(),
            3 => {
                self.note("reset".into());
                self.core.reset();
                self.generation += 1;
                for ep in &mut self.endpoints {
                    ep.expected = Expected::default();
                }
                Ok(())
            }
            4 if !self.endpoints[e].removed => {
                self.note(format!("remove {}", self.endpoints[e].name));
                self.endpoints[e].removed = true;
                if !self.core.remove_endpoint(self.endpoints[e].id) {
                    return Err(format!("endpoint {} could not be removed", self.endpoints[e].name));
                }
                Ok(())
            }
            _ => {
                let (code, text) = (self.rng.range(400, 599) as u16, "slow consumer");
                self.core.record_error(self.endpoints[e].id, code, text);
                let ep = &mut self.endpoints[e];
                if !ep.removed {
                    ep.expected.num_errors += 1;
                    ep.expected.last_error = format!("{code}:{text}");
                }
                Ok(())
            }
        }
    }

    fn arrive(&mut self, e: usize) -> Check {
        let now = self.nanos();
        let generation = self.generation;
        let ep = &mut self.endpoints[e];
        let begun = self.core.begin(ep.id);
        match (begun, ep.removed) {
            (Err(_), true) => Ok(()),
            (Ok(_), true) => Err(format!("{} took a request after its removal", ep.name)),
            (Ok(ticket), false) => {
                ep.expected.num_requests += 1;
                if ep.max_in_flight.is_some_and(|m| ep.in_flight.len() >= m) {
                    return Err(format!("{} took a request over its limit", ep.name));
                }
                ep.in_flight.push((ticket, now, generation));
                Ok(())
            }
            (Err(_), false) => {
                ep.expected.num_requests += 1;
                if ep.max_in_flight.is_none_or(|m| ep.in_flight.len() < m) {
                    return Err(format!("{} refused a request under its limit", ep.name));
                }
                self.counts.bump("busy refusals");
                ep.expected.num_errors += 1;
                ep.expected.last_error = format!("{}:{}", micro::BUSY_CODE, micro::BUSY_DESCRIPTION);
                Ok(())
            }
        }
    }

    fn finish(&mut self, e: usize) -> Check {
        if self.endpoints[e].in_flight.is_empty() {
            return Ok(());
        }
        let now = self.nanos();
        let i = self.rng.index(self.endpoints[e].in_flight.len());
        let ending = match self.rng.below(4) {
            0 | 1 => Ending::Replied,
            2 => Ending::Error { code: self.rng.range(400, 599) as u16, description: "bad".into() },
            _ if self.rng.chance(500) => Ending::NoResponse,
            _ => Ending::PublishFailed("closed".into()),
        };
        let generation = self.generation;
        let ep = &mut self.endpoints[e];
        let (ticket, received, ticket_generation) = ep.in_flight.swap_remove(i);
        self.core.finish(ticket, ending.clone());
        self.counts.bump("requests finished");
        if ep.removed {
            return Ok(());
        }
        if ticket_generation != generation {
            ep.expected.num_requests += 1;
        }
        ep.expected.processing_ns += now - received;
        let error = match ending {
            Ending::Replied | Ending::NoResponse => None,
            Ending::Error { code, description } => Some(format!("{code}:{description}")),
            Ending::PublishFailed(why) => Some(format!("500:reply not sent: {why}")),
            _ => None,
        };
        if let Some(error) = error {
            ep.expected.num_errors += 1;
            ep.expected.last_error = error;
        }
        Ok(())
    }

    /// STATS as a requester reads it, against the model; and the in-flight counts.
    fn check_stats(&mut self) -> Check {
        self.counts.bump("STATS checked");
        let json = self.core.verb_reply(Verb::Stats);
        let stats: serde_json::Value = serde_json::from_slice(&json).map_err(|e| format!("STATS is not JSON: {e}"))?;
        let listed = stats["endpoints"].as_array().ok_or("STATS without endpoints")?;
        let live: Vec<&Endpoint> = self.endpoints.iter().filter(|e| !e.removed).collect();
        if listed.len() != live.len() {
            return Err(format!("STATS lists {} endpoints, {} are live", listed.len(), live.len()));
        }
        for (got, ep) in listed.iter().zip(live) {
            let num = |k: &str| got[k].as_u64().unwrap_or(u64::MAX);
            let seen = Expected {
                num_requests: num("num_requests"),
                num_errors: num("num_errors"),
                last_error: got["last_error"].as_str().unwrap_or_default().to_owned(),
                processing_ns: num("processing_time"),
            };
            if got["name"] != ep.name.as_str() || seen != ep.expected {
                return Err(format!("STATS of {} say {seen:?}, expected {:?}", ep.name, ep.expected));
            }
            let average = num("average_processing_time");
            if average != seen.processing_ns.checked_div(seen.num_requests).unwrap_or(0) {
                return Err(format!("average {average} of {}: {seen:?}", ep.name));
            }
            if self.core.in_flight(ep.id) != ep.in_flight.len() {
                return Err(format!(
                    "{}: core has {} in flight, {} are",
                    ep.name,
                    self.core.in_flight(ep.id),
                    ep.in_flight.len()
                ));
            }
        }
        Ok(())
    }

    /// Every request in flight finishes: nothing is left in flight, and the statistics agree.
    fn stop(&mut self) -> Check {
        while self.endpoints.iter().any(|e| !e.in_flight.is_empty()) {
            self.clock.nanos.fetch_add(self.rng.range(0, 1_000_000), Ordering::Relaxed);
            let e = self.rng.index(self.endpoints.len());
            self.finish(e)?;
        }
        self.counts.bump("stops drained");
        for ep in &self.endpoints {
            if self.core.in_flight(ep.id) != 0 {
                return Err(format!(
                    "{} still has {} in flight after every request finished",
                    ep.name,
                    self.core.in_flight(ep.id)
                ));
            }
        }
        self.check_stats()
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
        self.stop()
    }

    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos())
    }

    fn report(&self) -> (Counts, Vec<String>) {
        (self.counts.clone(), self.trace.lines())
    }
}
