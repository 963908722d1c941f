//! `ServiceCore`: the Service API without I/O.
//!
//! It validates the configuration, lists the subscriptions a service needs (the 9 discovery subjects, never in
//! a queue group, and one per endpoint), renders the PING/INFO/STATS replies, and keeps the statistics. The
//! clock and the instance id are given to it, so everything here is tested without a server. A runtime (the
//! blocking or async service) subscribes as told, answers verbs with [`ServiceCore::verb_reply`], and brackets
//! each endpoint request with [`ServiceCore::begin`] and [`ServiceCore::finish`].
//!
//! An endpoint's statistics live in a [`Meter`] of its own, outside the core: a running service holds the meter
//! and counts each request on it without taking the lock around the whole core, which only INFO, STATS and
//! configuration changes take.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use crate::config::{EndpointConfig, Group, Metadata, ServiceConfig, DEFAULT_QUEUE_GROUP};
use crate::meter::{InFlight, Meter};
use crate::validate::{check_endpoint_subject, check_metadata, is_valid_name, join_subject, ConfigError};
use crate::wire::{
    rfc3339, EndpointInfo, EndpointStats, InfoResponse, PingResponse, StatsResponse, INFO_TYPE, PING_TYPE, STATS_TYPE,
};

/// Time, for statistics: a monotonic clock for durations and a wall clock for `started`.
pub trait Clock: Send + Sync {
    /// Monotonic now.
    fn now(&self) -> Instant;
    /// Wall-clock now.
    fn wall(&self) -> SystemTime;
}

/// The system's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A discovery verb.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `$SRV.PING`.
    Ping,
    /// `$SRV.INFO`.
    Info,
    /// `$SRV.STATS`.
    Stats,
}

impl Verb {
    /// The verb as it appears in subjects.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Ping => "PING",
            Verb::Info => "INFO",
            Verb::Stats => "STATS",
        }
    }
}

/// Identifies an endpoint of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(u64);

/// What a subscription is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A discovery verb.
    Verb(Verb),
    /// An endpoint.
    Endpoint(EndpointId),
}

/// A subscription the service needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Subject.
    pub subject: String,
    /// Queue group (`None`: a plain subscription).
    pub queue: Option<String>,
    /// What it serves.
    pub target: Target,
}

/// How a request ended, for the statistics.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A reply was published.
    Replied,
    /// An error reply (`code`, `description`) was published.
    Error {
        /// Numeric code (`Nats-Service-Error-Code`).
        code: u16,
        /// Description (`Nats-Service-Error`).
        description: String,
    },
    /// The request was dropped without any reply: counted as a request, not as an error.
    NoResponse,
    /// Publishing the reply failed.
    PublishFailed(String),
}

/// A request being handled: counted when received, timed until [`ServiceCore::finish`].
#[derive(Debug)]
#[must_use = "finish the ticket, or the request is never timed"]
pub struct Ticket {
    pub(crate) endpoint: EndpointId,
    pub(crate) received: Instant,
    /// The statistics' generation (bumped by every reset) when it was received.
    pub(crate) generation: u64,
}

impl Ticket {
    /// The endpoint the request is for.
    pub fn endpoint(&self) -> EndpointId {
        self.endpoint
    }
}

/// The endpoint has as many requests in flight as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

struct Endpoint {
    id: EndpointId,
    name: String,
    subject: String,
    queue: Option<String>,
    metadata: Metadata,
    meter: Arc<Meter>,
}

impl Endpoint {
    fn info(&self) -> EndpointInfo {
        EndpointInfo {
            name: self.name.clone(),
            subject: self.subject.clone(),
            queue_group: self.queue.clone().unwrap_or_default(),
            metadata: self.metadata.clone(),
        }
    }
}

/// The per-endpoint `data` of STATS: called for each endpoint on each STATS request when set.
pub type StatsHandler = Box<dyn FnMut(&EndpointInfo) -> serde_json::Value + Send>;

/// The Service API of one service instance, without I/O.
pub struct ServiceCore {
    config: ServiceConfig,
    id: String,
    clock: Arc<dyn Clock>,
    started: SystemTime,
    endpoints: Vec<Endpoint>,
    last_endpoint: u64,
    ping: Bytes,
    stats_handler: Option<StatsHandler>,
    in_flight: Arc<InFlight>,
}

impl std::fmt::Debug for ServiceCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCore").field("name", &self.config.name).field("id", &self.id).finish()
    }
}

impl ServiceCore {
    /// A service instance with this configuration and id (a subject token: use [`new_id`]).
    pub fn new(config: ServiceConfig, id: String, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        config.validate()?;
        // The id is a subject token of `$SRV.VERB.name.id`.
        if id.is_empty() || id.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'.' || b == b'*' || b == b'>') {
            return Err(ConfigError::InvalidName(id));
        }
        let ping = PingResponse {
            kind: PING_TYPE.to_owned(),
            name: config.name.clone(),
            id: id.clone(),
            version: config.version.clone(),
            metadata: config.metadata.clone(),
        };
        // A struct of strings serializes.
        let ping = Bytes::from(serde_json::to_vec(&ping).unwrap_or_default());
        let started = clock.wall();
        let in_flight = Arc::new(InFlight::default());
        Ok(Self {
            config,
            id,
            clock,
            started,
            endpoints: vec![],
            last_endpoint: 0,
            ping,
            stats_handler: None,
            in_flight,
        })
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// This instance's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// Sets the function that fills `data` in STATS.
    pub fn set_stats_handler(&mut self, handler: StatsHandler) {
        self.stats_handler = Some(handler);
    }

    /// The 9 discovery subscriptions: each verb alone, with the name, and with name and id. Never queued, so
    /// every instance answers.
    pub fn verb_subscriptions(&self) -> Vec<Subscription> {
        let prefix = &self.config.api_prefix;
        [Verb::Ping, Verb::Info, Verb::Stats]
            .into_iter()
            .flat_map(|verb| {
                let v = verb.as_str();
                [
                    format!("{prefix}.{v}"),
                    format!("{prefix}.{v}.{}", self.config.name),
                    format!("{prefix}.{v}.{}.{}", self.config.name, self.id),
                ]
                .map(|subject| Subscription { subject, queue: None, target: Target::Verb(verb) })
            })
            .collect()
    }

    /// The service itself as a group: no prefix, the service's queue group.
    pub fn root(&self) -> Group {
        let default = Some(DEFAULT_QUEUE_GROUP);
        Group { prefix: String::new(), queue: self.config.queue_group.resolve(default) }
    }

    /// Adds an endpoint under `group`; returns the subscription it needs.
    pub fn add_endpoint(&mut self, group: &Group, config: EndpointConfig) -> Result<Subscription, ConfigError> {
        self.add_metered_endpoint(group, config).map(|(needed, ..)| needed)
    }

    /// [`add_endpoint`](Self::add_endpoint), for a runtime: also the endpoint's id and its meter, on which the
    /// runtime counts the endpoint's requests.
    pub(crate) fn add_metered_endpoint(
        &mut self,
        group: &Group,
        config: EndpointConfig,
    ) -> Result<(Subscription, EndpointId, Arc<Meter>), ConfigError> {
        if !is_valid_name(&config.name) {
            return Err(ConfigError::InvalidName(config.name));
        }
        let relative = config.subject.as_deref().unwrap_or(&config.name);
        let subject = join_subject(&group.prefix, relative);
        check_endpoint_subject(&subject, &self.config.api_prefix)?;
        config.queue_group.check()?;
        check_metadata(config.metadata.iter())?;
        let queue = config.queue_group.resolve(group.queue.as_deref());
        self.last_endpoint += 1;
        let id = EndpointId(self.last_endpoint);
        let meter =
            Arc::new(Meter::new(id, self.clock.clone(), self.in_flight.clone(), config.max_in_flight, config.no_reply));
        self.endpoints.push(Endpoint {
            id,
            name: config.name,
            subject: subject.clone(),
            queue: queue.clone(),
            metadata: config.metadata,
            meter: meter.clone(),
        });
        Ok((Subscription { subject, queue, target: Target::Endpoint(id) }, id, meter))
    }

    /// Forgets an endpoint (after its subscription was drained): it leaves INFO and STATS.
    pub fn remove_endpoint(&mut self, id: EndpointId) -> bool {
        let Some(at) = self.endpoints.iter().position(|e| e.id == id) else { return false };
        self.endpoints.remove(at).meter.mark_removed();
        true
    }

    fn meter_ref(&self, id: EndpointId) -> Option<&Arc<Meter>> {
        self.endpoints.iter().find(|e| e.id == id).map(|e| &e.meter)
    }

    /// Requests in flight on the whole service, counted by every endpoint's meter.
    pub(crate) fn service_in_flight(&self) -> Arc<InFlight> {
        self.in_flight.clone()
    }

    /// The endpoint's name and subject, if it exists.
    pub fn endpoint(&self, id: EndpointId) -> Option<EndpointInfo> {
        self.endpoints.iter().find(|e| e.id == id).map(Endpoint::info)
    }

    /// Requests in flight on an endpoint.
    pub fn in_flight(&self, id: EndpointId) -> usize {
        self.meter_ref(id).map_or(0, |m| m.in_flight())
    }

    /// The reply to a verb, rendered now (INFO and STATS reflect endpoints added since the start).
    pub fn verb_reply(&mut self, verb: Verb) -> Bytes {
        let json = match verb {
            Verb::Ping => return self.ping.clone(),
            Verb::Info => serde_json::to_vec(&self.info()),
            Verb::Stats => serde_json::to_vec(&self.stats()),
        };
        // Plain structs and JSON values serialize.
        Bytes::from(json.unwrap_or_default())
    }

    /// INFO as a value.
    pub fn info(&self) -> InfoResponse {
        InfoResponse {
            kind: INFO_TYPE.to_owned(),
            name: self.config.name.clone(),
            id: self.id.clone(),
            version: self.config.version.clone(),
            metadata: self.config.metadata.clone(),
            description: self.config.description.clone(),
            endpoints: self.endpoints.iter().map(Endpoint::info).collect(),
            subjects: vec![],
        }
    }

    /// STATS as a value (calls the stats handler, if any, once per endpoint).
    pub fn stats(&mut self) -> StatsResponse {
        let mut endpoints = Vec::with_capacity(self.endpoints.len());
        for e in &self.endpoints {
            let s = &e.meter.stats();
            let data = self.stats_handler.as_mut().map(|h| h(&e.info()));
            endpoints.push(EndpointStats {
                name: e.name.clone(),
                subject: e.subject.clone(),
                queue_group: e.queue.clone().unwrap_or_default(),
                num_requests: s.num_requests,
                num_errors: s.num_errors,
                last_error: s.last_error.clone(),
                processing_time: s.processing_ns,
                average_processing_time: s.processing_ns.checked_div(s.num_requests).unwrap_or(0),
                data,
            });
        }
        StatsResponse {
            kind: STATS_TYPE.to_owned(),
            name: self.config.name.clone(),
            id: self.id.clone(),
            version: self.config.version.clone(),
            metadata: self.config.metadata.clone(),
            started: rfc3339(self.started),
            endpoints,
        }
    }

    /// A request arrived for `endpoint`: it is counted now and timed from now. `Err(Busy)` when the endpoint
    /// already has its maximum in flight (counted as an error; the runtime answers 503).
    pub fn begin(&mut self, endpoint: EndpointId) -> Result<Ticket, Busy> {
        let received = self.clock.now();
        self.meter_ref(endpoint).ok_or(Busy)?.begin(received)
    }

    /// A request ended: its time (receipt to reply) and outcome go into the statistics.
    pub fn finish(&mut self, ticket: Ticket, outcome: Outcome) {
        if let Some(meter) = self.meter_ref(ticket.endpoint) {
            meter.finish(ticket, outcome);
        }
    }

    /// Counts an error that is not tied to one request (a slow consumer on the endpoint's subscription).
    pub fn record_error(&mut self, endpoint: EndpointId, code: u16, description: &str) {
        if let Some(meter) = self.meter_ref(endpoint) {
            meter.record_error(code, description);
        }
    }

    /// Clears every statistic, `last_error` included, and restarts the clock of `started`.
    pub fn reset(&mut self) {
        for e in &self.endpoints {
            e.meter.reset();
        }
        self.started = self.clock.wall();
    }
}

/// Code of the reply to a request over an endpoint's in-flight limit.
pub const BUSY_CODE: u16 = 503;
/// Description of that reply.
pub const BUSY_DESCRIPTION: &str = "too many requests in flight";

/// A fresh instance id: 22 random base-62 characters (a valid subject token).
pub fn new_id() -> String {
    let seed = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), SystemTime::now());
    nats_proto::Rng::new(seed).base62(22)
}
