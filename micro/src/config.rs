//! What a service is made of: its identity, groups and endpoints, and how queue groups are inherited.

use std::collections::BTreeMap;

use crate::validate::{check_metadata, is_valid_name, is_valid_semver, ConfigError};

/// The queue group used when nobody sets one.
pub const DEFAULT_QUEUE_GROUP: &str = "q";
/// The default API prefix of the discovery subjects.
pub const DEFAULT_API_PREFIX: &str = "$SRV";

/// How a service, group or endpoint chooses its queue group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum QueueGroup {
    /// Take the parent's (the service's default is `q`).
    #[default]
    Inherit,
    /// This one.
    Named(String),
    /// None: every instance receives every request (fan-out, hedged requests).
    Disabled,
}

impl QueueGroup {
    /// Resolves against the parent's resolved group (`None` when the parent disabled queueing).
    pub(crate) fn resolve(&self, parent: Option<&str>) -> Option<String> {
        match self {
            QueueGroup::Inherit => parent.map(str::to_owned),
            QueueGroup::Named(q) => Some(q.clone()),
            QueueGroup::Disabled => None,
        }
    }

    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        match self {
            QueueGroup::Named(q) if nats_proto::subject::validate_queue(q.as_bytes()).is_err() => {
                Err(ConfigError::InvalidQueueGroup(q.clone()))
            }
            _ => Ok(()),
        }
    }
}

/// Metadata (ADR-33): string keys and values, fixed once the service or endpoint is created.
pub type Metadata = BTreeMap<String, String>;

/// A service's identity and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The service's name, shared by all its instances: `[A-Za-z0-9_-]+`.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// Description ("" when unset).
    pub description: String,
    /// Metadata.
    pub metadata: Metadata,
    /// Queue group for endpoints that do not choose.
    pub queue_group: QueueGroup,
    /// Prefix of the discovery subjects (`$SRV.PING...`).
    pub api_prefix: String,
}

impl ServiceConfig {
    /// A service with this name and version, no description, no metadata, queue group `q`, prefix `$SRV`.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            description: String::new(),
            metadata: Metadata::new(),
            queue_group: QueueGroup::Inherit,
            api_prefix: DEFAULT_API_PREFIX.to_owned(),
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: &str) -> Self {
        self.description = description.to_owned();
        self
    }

    /// Adds a metadata entry.
    pub fn metadata(mut self, key: &str, value: &str) -> Self {
        self.metadata.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Sets the service-wide queue group.
    pub fn queue_group(mut self, queue_group: QueueGroup) -> Self {
        self.queue_group = queue_group;
        self
    }

    /// Sets the API prefix (default `$SRV`).
    pub fn api_prefix(mut self, prefix: &str) -> Self {
        self.api_prefix = prefix.to_owned();
        self
    }

    /// Checks every rule of ADR-32 and the schemas.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !is_valid_name(&self.name) {
            return Err(ConfigError::InvalidName(self.name.clone()));
        }
        if !is_valid_semver(&self.version) {
            return Err(ConfigError::InvalidVersion(self.version.clone()));
        }
        if nats_proto::subject::validate_publish_subject(self.api_prefix.as_bytes()).is_err() {
            return Err(ConfigError::InvalidPrefix(self.api_prefix.clone()));
        }
        self.queue_group.check()?;
        check_metadata(self.metadata.iter())
    }
}

/// An endpoint: a name, the subject it serves (default: the name), its queue group and metadata.
///
/// Made with [`new`](Self::new) and the builder methods; the fields stay public to read and change, and more may
/// come without breaking anyone (hence `#[non_exhaustive]`: no struct literals outside this crate).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointConfig {
    /// `[A-Za-z0-9_-]+`; names may repeat.
    pub name: String,
    /// Subject, relative to its group; `None` uses the name.
    pub subject: Option<String>,
    /// Queue group choice.
    pub queue_group: QueueGroup,
    /// Metadata.
    pub metadata: Metadata,
    /// Most requests handled at once; more are answered with a 503 service error. `None`: no limit.
    pub max_in_flight: Option<usize>,
    /// Handle requests without answering (FastStream's `no_reply`): a handler's answers are counted (an error
    /// answer as an error) and not sent.
    pub no_reply: bool,
    /// On a blocking client: run the handler on the connection's own reader thread (see [`inline`](Self::inline)).
    pub inline: bool,
}

impl EndpointConfig {
    /// An endpoint serving the subject of its name.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            subject: None,
            queue_group: QueueGroup::Inherit,
            metadata: Metadata::new(),
            max_in_flight: None,
            no_reply: false,
            inline: false,
        }
    }

    /// On a blocking client, the handler runs on the connection's reader thread, right after the read that
    /// brought the request, instead of on a thread of the endpoint's own: no hand-off between threads, about
    /// the latency of a hand-written echo, and the replies to one read's requests leave in one write.
    ///
    /// For handlers that are quick and never wait on the service's own client: while one runs, the connection
    /// reads nothing. A request, flush or subscription wait on that client from the handler fails at once with
    /// `Error::WouldDeadlock`; use another client, or keep the default. The async service ignores it (its
    /// handlers are tasks).
    pub fn inline(mut self) -> Self {
        self.inline = true;
        self
    }

    /// Requests are handled and never answered (see the field of this name).
    pub fn no_reply(mut self) -> Self {
        self.no_reply = true;
        self
    }

    /// Serves `subject` instead of the name.
    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_owned());
        self
    }

    /// Sets the queue group choice.
    pub fn queue_group(mut self, queue_group: QueueGroup) -> Self {
        self.queue_group = queue_group;
        self
    }

    /// Adds a metadata entry.
    pub fn metadata(mut self, key: &str, value: &str) -> Self {
        self.metadata.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Limits the requests handled at once.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = Some(max);
        self
    }
}

/// A group: a subject prefix and a resolved queue group, for endpoints and nested groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub(crate) prefix: String,
    pub(crate) queue: Option<String>,
}

impl Group {
    /// The full subject prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The resolved queue group (`None`: disabled).
    pub fn queue_group(&self) -> Option<&str> {
        self.queue.as_deref()
    }

    /// A nested group: `name` is joined to this prefix; its queue group resolves against this one's.
    pub fn group(&self, name: &str, queue_group: QueueGroup) -> Result<Group, ConfigError> {
        crate::validate::check_group_prefix(name)?;
        queue_group.check()?;
        Ok(Group {
            prefix: crate::validate::join_subject(&self.prefix, name),
            queue: queue_group.resolve(self.queue.as_deref()),
        })
    }
}
