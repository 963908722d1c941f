//! The service side of the NATS client-compatibility suite (`tests.service.core.>`), as async-nats, nats.go
//! and nats.py ship it: the tester sends a service definition as JSON, the runner builds that service
//! (echo handlers, a `faulty` endpoint answering `500 handler error`, a stats handler returning
//! `{"endpoint": <name>}`), the tester exercises it, then asks for it to be destroyed and reports a result.

use std::time::Duration;

use nats_client::seam::{Client, Subscription};
use serde::Deserialize;

use crate::config::{EndpointConfig, Group, Metadata, QueueGroup, ServiceConfig};
use crate::{Service, ServiceFailure};

/// The subjects the tester talks on.
pub const SUITE_SUBJECT: &str = "tests.service.core.>";

/// What the tester sends to set a service up.
#[derive(Debug, Clone, Deserialize)]
pub struct SetupRequest {
    /// `service`.
    #[serde(default)]
    pub suite: String,
    /// `core`.
    #[serde(default)]
    pub test: String,
    /// The service to build.
    pub config: ServiceDefinition,
}

/// A service as JSON.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServiceDefinition {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Description.
    pub description: String,
    /// Metadata.
    pub metadata: Option<Metadata>,
    /// Service-wide queue group.
    pub queue_group: Option<String>,
    /// Groups.
    pub groups: Vec<GroupDefinition>,
    /// Endpoints.
    pub endpoints: Vec<EndpointDefinition>,
}

/// A group as JSON.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GroupDefinition {
    /// Prefix.
    pub name: String,
    /// Queue group.
    pub queue_group: Option<String>,
}

/// An endpoint as JSON.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EndpointDefinition {
    /// Name.
    pub name: String,
    /// Subject.
    pub subject: Option<String>,
    /// Queue group.
    pub queue_group: Option<String>,
    /// Metadata.
    pub metadata: Option<Metadata>,
    /// The group it belongs to, by name.
    pub group: Option<String>,
}

fn queue(q: &Option<String>) -> QueueGroup {
    q.clone().map_or(QueueGroup::Inherit, QueueGroup::Named)
}

/// Builds and starts the service `def` describes, with the suite's handlers.
pub fn start_service<C: Client>(client: C, def: &ServiceDefinition) -> Result<Service<C>, ServiceFailure> {
    let mut config = ServiceConfig::new(&def.name, &def.version).description(&def.description);
    config.metadata = def.metadata.clone().unwrap_or_default();
    config.queue_group = queue(&def.queue_group);
    let service = Service::start(client, config)?;
    service.set_stats_handler(|endpoint| serde_json::json!({ "endpoint": endpoint.name }));
    let root = service.root();
    let groups: Vec<(String, Group)> = def
        .groups
        .iter()
        .map(|g| Ok((g.name.clone(), root.group(&g.name, queue(&g.queue_group))?)))
        .collect::<Result<_, ServiceFailure>>()?;
    for e in &def.endpoints {
        let group = match &e.group {
            Some(name) => {
                groups.iter().find(|(n, _)| n == name).map(|(_, g)| g.clone()).unwrap_or_else(|| root.clone())
            }
            None => root.clone(),
        };
        let mut config = EndpointConfig::new(&e.name).queue_group(queue(&e.queue_group));
        config.subject = e.subject.clone();
        config.metadata = e.metadata.clone().unwrap_or_default();
        if e.name == "faulty" {
            service.endpoint(&group, config, |mut req| {
                let _ = req.respond_error(500, "handler error");
            })?;
        } else {
            service.endpoint(&group, config, |mut req| {
                let body = req.payload_bytes();
                let _ = req.respond(body);
            })?;
        }
    }
    Ok(service)
}

/// Serves the suite on `client` until the tester reports its result: builds each service it asks for and
/// destroys it when told. `Err` when the tester reports a failure (a result subject containing `fail`).
pub fn run_service_suite<C: Client>(client: C, timeout: Duration) -> Result<(), String> {
    let mut requests = client.subscribe(SUITE_SUBJECT, None).map_err(|e| e.to_string())?;
    client.flush().map_err(|e| e.to_string())?;
    let mut service: Option<Service<C>> = None;
    loop {
        let msg = requests.next_timeout(timeout).map_err(|e| format!("waiting for the tester: {e}"))?;
        let subject = msg.subject().to_string();
        if subject.ends_with("destroy.command") {
            if let Some(s) = service.take() {
                s.stop(Duration::from_secs(5));
            }
            let _ = msg.respond("");
        } else if msg.reply().is_none() {
            // The tester's verdict.
            return if subject.contains("fail") { Err(format!("the tester reported {subject}")) } else { Ok(()) };
        } else {
            let setup: SetupRequest =
                serde_json::from_slice(msg.payload()).map_err(|e| format!("bad setup request: {e}"))?;
            service = Some(start_service(client.clone(), &setup.config).map_err(|e| e.to_string())?);
            let _ = msg.respond("");
        }
    }
}
