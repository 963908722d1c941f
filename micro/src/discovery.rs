//! Finding services: PING, INFO and STATS fanned out to every instance, by name, or by name and id, with
//! replies collected until a timeout, a stall after the last reply, or a count.

use std::time::{Duration, Instant};

use bytes::Bytes;
use nats_client::seam::{self, AsyncReplies};
use nats_proto::Payload;
use serde::de::DeserializeOwned;

use crate::config::DEFAULT_API_PREFIX;
use crate::request::ServiceError;
use crate::wire::{InfoResponse, PingResponse, StatsResponse, INFO_TYPE, PING_TYPE, STATS_TYPE};
use crate::Verb;

/// When to stop collecting replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collect {
    /// Never wait longer than this.
    pub timeout: Duration,
    /// Stop this long after the last reply (`None`: wait for the whole timeout).
    pub stall: Option<Duration>,
    /// Stop after this many replies.
    pub max: Option<usize>,
}

impl Default for Collect {
    /// natscli's adaptive wait: up to 5 s, ending 300 ms after the last reply.
    fn default() -> Self {
        Self { timeout: Duration::from_secs(5), stall: Some(Duration::from_millis(300)), max: None }
    }
}

/// One instance's reply: decoded, as sent, and how long it took.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    /// The decoded reply.
    pub value: T,
    /// The JSON as the instance sent it.
    pub raw: Bytes,
    /// Time from the request to this reply.
    pub rtt: Duration,
}

/// Why a discovery call failed.
#[non_exhaustive]
#[derive(Debug)]
pub enum DiscoveryError {
    /// The client failed.
    Client(nats_client::Error),
    /// No instance of the service has an endpoint of that name.
    NoSuchEndpoint(String),
    /// The endpoint answered with a service error.
    Service(ServiceError),
}

impl std::fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Client(e) => e.fmt(f),
            Self::NoSuchEndpoint(e) => write!(f, "no endpoint named {e:?}"),
            Self::Service(e) => write!(f, "service error {e}"),
        }
    }
}

impl std::error::Error for DiscoveryError {}

impl From<nats_client::Error> for DiscoveryError {
    fn from(e: nats_client::Error) -> Self {
        Self::Client(e)
    }
}

/// The subject a verb is sent to: all services, one service, or one instance.
pub fn verb_subject(prefix: &str, verb: Verb, name: Option<&str>, id: Option<&str>) -> String {
    match (name, id) {
        (Some(n), Some(i)) => format!("{prefix}.{}.{n}.{i}", verb.as_str()),
        (Some(n), None) => format!("{prefix}.{}.{n}", verb.as_str()),
        _ => format!("{prefix}.{}", verb.as_str()),
    }
}

/// Decodes a reply of the expected `type`; anything else (another type, broken JSON) is skipped.
pub fn decode<T: DeserializeOwned>(payload: &[u8], expected_type: &str) -> Option<T> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    if value.get("type").and_then(|t| t.as_str()) != Some(expected_type) {
        return None;
    }
    serde_json::from_value(value).ok()
}

/// A discovery client on a blocking client (any [`seam::Client`]: `nats_blocking::Client`).
#[derive(Debug, Clone)]
pub struct Discovery<C> {
    client: C,
    prefix: String,
    collect: Collect,
}

/// A discovery client on an async client (any [`seam::AsyncClient`]: `nats_tokio::Client`, on any runtime).
/// The same calls as [`Discovery`], with `.await`.
#[derive(Debug, Clone)]
pub struct AsyncDiscovery<C> {
    client: C,
    prefix: String,
    collect: Collect,
}

/// The builder methods both discovery clients share.
macro_rules! discovery_builder {
    ($name:ident, $bound:path) => {
        impl<C: $bound> $name<C> {
            /// Discovery over `client`, with the `$SRV` prefix and natscli's adaptive wait.
            pub fn new(client: C) -> Self {
                Self { client, prefix: DEFAULT_API_PREFIX.to_owned(), collect: Collect::default() }
            }

            /// Uses another API prefix.
            pub fn prefix(mut self, prefix: &str) -> Self {
                self.prefix = prefix.to_owned();
                self
            }

            /// Sets when to stop collecting.
            pub fn collect(mut self, collect: Collect) -> Self {
                self.collect = collect;
                self
            }

            /// The request subject and the reply count to stop at: one instance answers a request by id, so
            /// there is no need to wait for more.
            fn target(&self, verb: Verb, name: Option<&str>, id: Option<&str>) -> (String, Option<usize>) {
                let max = if id.is_some() { Some(1) } else { self.collect.max };
                (verb_subject(&self.prefix, verb, name, id), max)
            }

            /// This client collecting only the first INFO reply (to find an endpoint's subject).
            fn first_only(&self) -> Self {
                self.clone().collect(Collect { max: Some(1), ..self.collect })
            }
        }
    };
}

discovery_builder!(Discovery, seam::Client);
discovery_builder!(AsyncDiscovery, seam::AsyncClient);

impl<C: seam::Client> Discovery<C> {
    fn gather<T: DeserializeOwned>(
        &self,
        verb: Verb,
        name: Option<&str>,
        id: Option<&str>,
        kind: &str,
    ) -> Result<Vec<Reply<T>>, DiscoveryError> {
        let (subject, max) = self.target(verb, name, id);
        let started = Instant::now();
        let c = self.collect;
        let replies = self.client.request_many(&subject, Payload::from("{}"), c.timeout, c.stall, max)?;
        Ok(replies.filter_map(|m| reply(&m, kind, started)).collect())
    }

    /// PINGs every instance (of `name`, or the one with `id`).
    pub fn ping(&self, name: Option<&str>, id: Option<&str>) -> Result<Vec<Reply<PingResponse>>, DiscoveryError> {
        self.gather(Verb::Ping, name, id, PING_TYPE)
    }

    /// INFO of every instance.
    pub fn info(&self, name: Option<&str>, id: Option<&str>) -> Result<Vec<Reply<InfoResponse>>, DiscoveryError> {
        self.gather(Verb::Info, name, id, INFO_TYPE)
    }

    /// STATS of every instance.
    pub fn stats(&self, name: Option<&str>, id: Option<&str>) -> Result<Vec<Reply<StatsResponse>>, DiscoveryError> {
        self.gather(Verb::Stats, name, id, STATS_TYPE)
    }

    /// Sends a request to the endpoint named `endpoint` of service `name`, resolving its subject through INFO.
    /// A reply carrying a service error is `Err(DiscoveryError::Service)`.
    pub fn request<'p>(
        &self,
        name: &str,
        endpoint: &str,
        payload: impl Into<Payload<'p>>,
    ) -> Result<nats_client::Message, DiscoveryError> {
        let infos = self.first_only().info(Some(name), None)?;
        let subject = endpoint_subject(&infos, endpoint)?;
        service_reply(self.client.request(&subject, None, payload.into(), self.collect.timeout)?)
    }
}

impl<C: seam::AsyncClient> AsyncDiscovery<C> {
    async fn gather<T: DeserializeOwned>(
        &self,
        verb: Verb,
        name: Option<&str>,
        id: Option<&str>,
        kind: &str,
    ) -> Result<Vec<Reply<T>>, DiscoveryError> {
        let (subject, max) = self.target(verb, name, id);
        let started = Instant::now();
        let c = self.collect;
        let mut replies = self.client.request_many(&subject, Payload::from("{}"), c.timeout, c.stall, max).await?;
        let mut out = vec![];
        while let Some(m) = std::future::poll_fn(|cx| replies.poll_reply(cx)).await {
            out.extend(reply(&m, kind, started));
        }
        Ok(out)
    }

    /// PINGs every instance (of `name`, or the one with `id`).
    pub async fn ping(&self, name: Option<&str>, id: Option<&str>) -> Result<Vec<Reply<PingResponse>>, DiscoveryError> {
        self.gather(Verb::Ping, name, id, PING_TYPE).await
    }

    /// INFO of every instance.
    pub async fn info(&self, name: Option<&str>, id: Option<&str>) -> Result<Vec<Reply<InfoResponse>>, DiscoveryError> {
        self.gather(Verb::Info, name, id, INFO_TYPE).await
    }

    /// STATS of every instance.
    pub async fn stats(
        &self,
        name: Option<&str>,
        id: Option<&str>,
    ) -> Result<Vec<Reply<StatsResponse>>, DiscoveryError> {
        self.gather(Verb::Stats, name, id, STATS_TYPE).await
    }

    /// Sends a request to the endpoint named `endpoint` of service `name` (see [`Discovery::request`]).
    pub async fn request<'p>(
        &self,
        name: &str,
        endpoint: &str,
        payload: impl Into<Payload<'p>>,
    ) -> Result<nats_client::Message, DiscoveryError> {
        let infos = self.first_only().info(Some(name), None).await?;
        let subject = endpoint_subject(&infos, endpoint)?;
        service_reply(self.client.request(&subject, None, payload.into(), self.collect.timeout).await?)
    }
}

/// A reply message decoded as `kind`, timed from `started`; `None` for anything else.
fn reply<T: DeserializeOwned>(m: &nats_client::Message, kind: &str, started: Instant) -> Option<Reply<T>> {
    let rtt = started.elapsed();
    decode(m.payload(), kind).map(|value| Reply { value, raw: m.payload_bytes(), rtt })
}

/// The subject of the first endpoint named `endpoint` in these INFO replies.
fn endpoint_subject(infos: &[Reply<InfoResponse>], endpoint: &str) -> Result<String, DiscoveryError> {
    infos
        .iter()
        .flat_map(|r| r.value.endpoints.iter())
        .find(|e| e.name == endpoint)
        .map(|e| e.subject.clone())
        .ok_or_else(|| DiscoveryError::NoSuchEndpoint(endpoint.to_owned()))
}

/// A reply, or the service error its headers carry.
fn service_reply(reply: nats_client::Message) -> Result<nats_client::Message, DiscoveryError> {
    match reply.headers().and_then(ServiceError::from_headers) {
        Some(e) => Err(DiscoveryError::Service(e)),
        None => Ok(reply),
    }
}
