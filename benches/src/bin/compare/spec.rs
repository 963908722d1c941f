//! What the parent asks a child to run ([`ChildSpec`]) and what the child answers ([`RunResult`]), both one line
//! of JSON, plus the names of the workloads and clients.

use serde_json::{json, Value};

/// A workload, by the name `--only` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    /// Publishes then a flush, default options.
    Publish,
    /// Pre-encoded PUB frames over a plain socket: the ceiling of publishing here.
    RawPublish,
    /// Publish and subscribe to the same subject in one process.
    Pubsub,
    /// Request/reply round trips against a responder in the same process (p50/p99).
    Reqrep,
    /// Receiving a stream of MSG frames from the fake server.
    Ingest,
    /// A service echo endpoint loaded by requester threads.
    Micro,
    /// The `micro` row's service on our blocking client with its endpoint `inline` (handled on the client's
    /// reader thread): an option, not the default, so a row of its own.
    MicroInline,
    /// Many 1 KiB publishes with default options: how much the client buffers.
    PublishRss,
    /// Many 16 B messages published and received in one process with default options: memory and drops.
    PubsubRss,
}

impl Workload {
    /// Every workload, in the order they run and are reported.
    pub(crate) const ALL: [Workload; 9] = [
        Workload::Publish,
        Workload::RawPublish,
        Workload::Pubsub,
        Workload::Reqrep,
        Workload::Ingest,
        Workload::Micro,
        Workload::MicroInline,
        Workload::PublishRss,
        Workload::PubsubRss,
    ];

    /// The name used by `--only`, the table and the JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::Publish => "publish",
            Workload::RawPublish => "raw-publish",
            Workload::Pubsub => "pubsub",
            Workload::Reqrep => "reqrep",
            Workload::Ingest => "ingest",
            Workload::Micro => "micro",
            Workload::MicroInline => "micro-inline",
            Workload::PublishRss => "publish-rss",
            Workload::PubsubRss => "pubsub-rss",
        }
    }

    /// The workload of that name.
    pub(crate) fn parse(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Whether its headline figure is a latency (lower is better) rather than a rate.
    pub(crate) fn is_latency(self) -> bool {
        self == Workload::Reqrep
    }

    /// Whether it is one of the memory rows, which keep their full counts under `--quick`.
    pub(crate) fn is_rss(self) -> bool {
        matches!(self, Workload::PublishRss | Workload::PubsubRss)
    }
}

/// A client under test, by the name `--clients` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    /// Our blocking client (crate nats-blocking).
    OursBlocking,
    /// Our tokio client (crate nats-tokio).
    OursTokio,
    /// async-nats, the baseline of every ratio.
    AsyncNats,
    /// The deprecated synchronous `nats` crate.
    NatsSync,
    /// No client: hand-written frames over a plain socket.
    Raw,
}

impl Client {
    /// Every client, in report order.
    pub(crate) const ALL: [Client; 5] =
        [Client::OursBlocking, Client::OursTokio, Client::AsyncNats, Client::NatsSync, Client::Raw];

    /// The name used by `--clients`, the table and the JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Client::OursBlocking => "ours-blocking",
            Client::OursTokio => "ours-tokio",
            Client::AsyncNats => "async-nats",
            Client::NatsSync => "nats-sync",
            Client::Raw => "raw",
        }
    }

    /// The client of that name.
    pub(crate) fn parse(name: &str) -> Option<Client> {
        Client::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether the child needs a tokio runtime for it (the others run without one, so that their RSS does not
    /// carry a runtime they do not use).
    pub(crate) fn is_async(self) -> bool {
        matches!(self, Client::OursTokio | Client::AsyncNats)
    }
}

/// One run of one cell, as the parent hands it to a child (`compare --child <json>`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChildSpec {
    /// What to run.
    pub(crate) workload: Workload,
    /// Who runs it.
    pub(crate) client: Client,
    /// Payload size in bytes.
    pub(crate) size: usize,
    /// How many messages (or requests).
    pub(crate) messages: usize,
    /// The server to connect to (the fake one for ingest).
    pub(crate) url: String,
    /// Whether the child pins itself to CPU 0 first (the server is pinned there by the parent).
    pub(crate) pinned: bool,
    /// Our other processes (parent, servers), whose CPU is not "others" in the quiet check.
    pub(crate) exclude: Vec<u32>,
    /// The quiet guard's minimum sampling window, in seconds (see `child::Window`).
    pub(crate) min_window_s: f64,
}

impl ChildSpec {
    /// The spec as one line of JSON.
    pub(crate) fn to_json(&self) -> String {
        json!({
            "workload": self.workload.name(),
            "client": self.client.name(),
            "size": self.size,
            "messages": self.messages,
            "url": self.url,
            "pinned": self.pinned,
            "exclude": self.exclude,
            "min_window_s": self.min_window_s,
        })
        .to_string()
    }

    /// Reads a spec written by [`ChildSpec::to_json`].
    pub(crate) fn from_json(text: &str) -> Result<ChildSpec, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("bad child spec: {e}"))?;
        let name = |k: &str| v[k].as_str().ok_or_else(|| format!("child spec: no {k}"));
        let number = |k: &str| v[k].as_u64().ok_or_else(|| format!("child spec: no {k}"));
        Ok(ChildSpec {
            workload: Workload::parse(name("workload")?).ok_or("child spec: unknown workload")?,
            client: Client::parse(name("client")?).ok_or("child spec: unknown client")?,
            size: number("size")? as usize,
            messages: number("messages")? as usize,
            url: name("url")?.to_owned(),
            pinned: v["pinned"].as_bool().unwrap_or(false),
            exclude: v["exclude"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_u64())
                .map(|p| p as u32)
                .collect(),
            min_window_s: v["min_window_s"].as_f64().unwrap_or(0.0),
        })
    }
}

/// What one child measured, over its measured window only.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RunResult {
    /// Messages (or requests) that completed: for the receiving workloads, those received.
    pub(crate) messages: u64,
    /// Length of the measured window, in seconds.
    pub(crate) elapsed_s: f64,
    /// `messages / elapsed_s`.
    pub(crate) msgs_per_s: f64,
    /// Median round trip, for the latency workloads.
    pub(crate) p50_us: Option<f64>,
    /// 99th percentile round trip, for the latency workloads.
    pub(crate) p99_us: Option<f64>,
    /// The child's own CPU time over the window, per message.
    pub(crate) cpu_ns_per_msg: Option<f64>,
    /// Peak resident set of the child (VmHWM), read at its end.
    pub(crate) peak_rss_kib: Option<u64>,
    /// Messages sent but not received.
    pub(crate) dropped: u64,
    /// CPU used by processes other than ours while the run was measured, in cores.
    pub(crate) others_cores: Option<f64>,
    /// How long `others_cores` was sampled over, in seconds (at least the quiet guard's minimum window).
    pub(crate) others_window_s: f64,
}

impl RunResult {
    /// The result as a JSON value (the child prints it as one line; the parent keeps it in the report).
    pub(crate) fn to_value(&self) -> Value {
        json!({
            "messages": self.messages,
            "elapsed_s": self.elapsed_s,
            "msgs_per_s": self.msgs_per_s,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "cpu_ns_per_msg": self.cpu_ns_per_msg,
            "peak_rss_kib": self.peak_rss_kib,
            "dropped": self.dropped,
            "others_cores": self.others_cores,
            "others_window_s": self.others_window_s,
        })
    }

    /// Reads the line a child printed.
    pub(crate) fn from_json(text: &str) -> Result<RunResult, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("bad child result: {e}"))?;
        Ok(RunResult {
            messages: v["messages"].as_u64().ok_or("child result: no messages")?,
            elapsed_s: v["elapsed_s"].as_f64().ok_or("child result: no elapsed_s")?,
            msgs_per_s: v["msgs_per_s"].as_f64().unwrap_or(0.0),
            p50_us: v["p50_us"].as_f64(),
            p99_us: v["p99_us"].as_f64(),
            cpu_ns_per_msg: v["cpu_ns_per_msg"].as_f64(),
            peak_rss_kib: v["peak_rss_kib"].as_u64(),
            dropped: v["dropped"].as_u64().unwrap_or(0),
            others_cores: v["others_cores"].as_f64(),
            others_window_s: v["others_window_s"].as_f64().unwrap_or(0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::parse(w.name()), Some(w));
        }
        for c in Client::ALL {
            assert_eq!(Client::parse(c.name()), Some(c));
        }
        assert_eq!(Workload::parse("nope"), None);
    }

    #[test]
    fn spec_round_trips() {
        let spec = ChildSpec {
            workload: Workload::Ingest,
            client: Client::Raw,
            size: 1024,
            messages: 42,
            url: "nats://127.0.0.1:4222".into(),
            pinned: true,
            exclude: vec![1, 2, 3],
            min_window_s: 0.5,
        };
        assert_eq!(ChildSpec::from_json(&spec.to_json()), Ok(spec));
    }

    #[test]
    fn result_round_trips() {
        let r = RunResult {
            messages: 10,
            elapsed_s: 0.5,
            msgs_per_s: 20.0,
            p50_us: Some(12.5),
            p99_us: None,
            cpu_ns_per_msg: Some(100.0),
            peak_rss_kib: Some(4096),
            dropped: 1,
            others_cores: Some(0.01),
            others_window_s: 0.5,
        };
        assert_eq!(RunResult::from_json(&r.to_value().to_string()), Ok(r));
    }
}
