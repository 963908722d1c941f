//! The service commands (`ls`, `ping`, `info`, `stats`, `request`, `serve`), also reachable as `micro service ...`,
//! natscli's name for them. Human output takes natscli's layouts (see [`crate::table`] and
//! [`crate::columns`]); `--json` prints the replies as the instances sent them.

use std::time::{Duration, SystemTime};

use clap::Subcommand;
use micro::discovery::{Collect, Discovery, DiscoveryError, Reply};
use micro::wire::{InfoResponse, StatsResponse};
use nats_blocking::Client;

use crate::columns::Columns;
use crate::human::{count, duration, duration_ns, local_time_and_age};
use crate::table::Boxed;
use crate::{failed, Cli};

/// The service commands.
#[derive(Subcommand)]
pub(crate) enum ServiceCommand {
    /// List services (name, version, id, description).
    #[command(visible_alias = "list")]
    Ls { name: Option<String> },
    /// Ping service instances and show their round-trip times.
    Ping { name: Option<String> },
    /// Show a service's endpoints and statistics.
    Info { name: String, id: Option<String> },
    /// Show the statistics of a service's endpoints.
    Stats { name: String, id: Option<String> },
    /// Send a request to a service's endpoint, found by name.
    Request { name: String, endpoint: String, data: Option<String> },
    /// Run a demo echo service NAME (on NAME.echo) until SIGINT or SIGTERM, then stop it gracefully.
    Serve {
        name: String,
        /// A header to add to every reply, K:V (repeatable).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
    },
}

fn discovery(cli: &Cli, client: &Client) -> Discovery<Client> {
    Discovery::new(client.clone()).collect(Collect { timeout: cli.timeout, ..Collect::default() })
}

/// The replies exactly as the instances sent them, as one JSON array.
fn raw_json<T>(replies: &[Reply<T>]) -> String {
    let parts: Vec<String> = replies.iter().map(|r| String::from_utf8_lossy(&r.raw).into_owned()).collect();
    format!("[{}]", parts.join(","))
}

/// Runs one service command.
pub(crate) fn run(cli: &Cli, client: &Client, command: &ServiceCommand) -> Result<(), String> {
    match command {
        ServiceCommand::Ls { name } => {
            let mut replies = discovery(cli, client).info(name.as_deref(), None).map_err(failed)?;
            if cli.json {
                say!("{}", raw_json(&replies));
                return Ok(());
            }
            if replies.is_empty() {
                say!("No results received");
                return Ok(());
            }
            replies.sort_by(|a, b| (&a.value.name, &a.value.id).cmp(&(&b.value.name, &b.value.id)));
            let infos: Vec<InfoResponse> = replies.into_iter().map(|r| r.value).collect();
            say!("{}", ls_table(name.as_deref(), &infos));
        }
        ServiceCommand::Ping { name } => {
            let collect = Collect { timeout: cli.timeout, stall: None, max: None };
            let replies = discovery(cli, client).collect(collect).ping(name.as_deref(), None).map_err(failed)?;
            if cli.json {
                say!("{}", raw_json(&replies));
                return Ok(());
            }
            for r in &replies {
                say!("{}", ping_line(&r.value.name, &r.value.id, r.rtt));
            }
            if replies.is_empty() {
                return Err("no services answered".into());
            }
        }
        ServiceCommand::Info { name, id } => {
            let d = discovery(cli, client);
            let info = d.info(Some(name), id.as_deref()).map_err(failed)?.into_iter().next();
            let info = info.ok_or_else(|| format!("no service named {name:?} answered"))?;
            let stats = d.stats(Some(name), Some(&info.value.id)).map_err(failed)?.into_iter().next();
            if cli.json {
                let info_json: serde_json::Value = serde_json::from_slice(&info.raw).unwrap_or_default();
                let stats_json: Option<serde_json::Value> =
                    stats.as_ref().and_then(|s| serde_json::from_slice(&s.raw).ok());
                let both = serde_json::json!({ "info": info_json, "stats": stats_json });
                say!("{}", serde_json::to_string_pretty(&both).unwrap_or_default());
                return Ok(());
            }
            let report = info_report(&info.value, stats.as_ref().map(|s| &s.value), SystemTime::now());
            say!("{}", report.trim_end());
        }
        ServiceCommand::Stats { name, id } => {
            let mut replies = discovery(cli, client).stats(Some(name), id.as_deref()).map_err(failed)?;
            if cli.json {
                say!("{}", raw_json(&replies));
                return Ok(());
            }
            if replies.is_empty() {
                return Err(format!("no service named {name:?} answered"));
            }
            replies.sort_by(|a, b| (&a.value.name, &a.value.id).cmp(&(&b.value.name, &b.value.id)));
            let all: Vec<StatsResponse> = replies.into_iter().map(|r| r.value).collect();
            say!("{}", stats_table(name, &all));
        }
        ServiceCommand::Request { name, endpoint, data } => {
            let reply = discovery(cli, client).request(name, endpoint, data.clone().unwrap_or_default());
            let reply = reply.map_err(|e| match e {
                DiscoveryError::Service(e) => format!("the service answered with an error: {e}"),
                e => e.to_string(),
            })?;
            say!("{}", String::from_utf8_lossy(reply.payload()));
        }
        ServiceCommand::Serve { name, headers } => crate::demo::serve(cli, client.clone(), name, headers)?,
    }
    Ok(())
}

/// One instance's answer to PING: its name and id in a column 50 wide, then the round trip.
fn ping_line(name: &str, id: &str, rtt: Duration) -> String {
    format!("{:<50} rtt={}", format!("{name} {id}"), duration(rtt))
}

/// `ls`: one row per instance, sorted by name and id; a name, version or description the same as the row
/// above's (of the same service) is left blank, so each service stands out.
fn ls_table(name: Option<&str>, infos: &[InfoResponse]) -> String {
    let title = match name {
        None => "All Services".to_owned(),
        Some(n) => format!("{n} Service Instances"),
    };
    let mut table = Boxed::new(title, &["Name", "Version", "ID", "Description"]);
    let mut previous: Option<&InfoResponse> = None;
    for info in infos {
        let same_service = previous.is_some_and(|p| p.name == info.name);
        let unless_repeated = |this: &str, before: Option<&str>| {
            if same_service && before == Some(this) {
                String::new()
            } else {
                this.to_owned()
            }
        };
        table.row(vec![
            unless_repeated(&info.name, previous.map(|p| p.name.as_str())),
            unless_repeated(&info.version, previous.map(|p| p.version.as_str())),
            info.id.clone(),
            unless_repeated(&info.description, previous.map(|p| p.description.as_str())),
        ]);
        previous = Some(info);
    }
    table.render()
}

/// `stats`: one row per endpoint, each instance's id on its first row only, and a footer with the totals.
/// The footer's average is the total processing time over the total requests, as each endpoint's is.
fn stats_table(name: &str, all: &[StatsResponse]) -> String {
    let mut table = Boxed::new(
        format!("{name} Service Statistics"),
        &["ID", "Endpoint", "Requests", "Queue Group", "Errors", "Processing Time", "Average Time"],
    );
    let (mut requests, mut errors, mut time) = (0u64, 0u64, 0u64);
    for s in all {
        for (i, e) in s.endpoints.iter().enumerate() {
            requests = requests.saturating_add(e.num_requests);
            errors = errors.saturating_add(e.num_errors);
            time = time.saturating_add(e.processing_time);
            table.row(vec![
                if i == 0 { s.id.clone() } else { String::new() },
                e.name.clone(),
                count(e.num_requests),
                e.queue_group.clone(),
                count(e.num_errors),
                duration_ns(e.processing_time),
                duration_ns(e.average_processing_time),
            ]);
        }
    }
    let average = time.checked_div(requests).unwrap_or(0);
    table.footer(vec![
        String::new(),
        String::new(),
        count(requests),
        String::new(),
        count(errors),
        duration_ns(time),
        duration_ns(average),
    ]);
    table.render()
}

/// `info`: the service, its endpoints, then each endpoint's statistics (when the instance answered STATS).
fn info_report(info: &InfoResponse, stats: Option<&StatsResponse>, now: SystemTime) -> String {
    let mut c = Columns::new("Service Information");
    c.row("Service", format!("{} ({})", info.name, info.id));
    c.row("Description", info.description.as_str());
    c.row("Version", info.version.as_str());
    c.map_rows("Metadata", &info.metadata);

    c.title("Endpoints:");
    c.indent(2);
    for e in &info.endpoints {
        c.line("");
        c.row("Name", e.name.as_str());
        c.row("Subject", e.subject.as_str());
        c.row_if_not_empty("Queue Group", &e.queue_group);
        c.map_rows("Metadata", &e.metadata);
    }
    c.indent(0);

    if let Some(stats) = stats {
        let started = match local_time_and_age(&stats.started, now) {
            Some((at, age)) => format!("{at} ({age} ago)"),
            None => stats.started.clone(),
        };
        c.title(format!("Statistics for {} Endpoint(s)", stats.endpoints.len()));
        for e in &stats.endpoints {
            let name = if e.name.is_empty() { "default" } else { e.name.as_str() };
            c.indent(2);
            c.title(format!("{name} Endpoint Statistics"));
            c.row("Requests", format!("{} in group {:?}", count(e.num_requests), e.queue_group));
            let average = duration_ns(e.average_processing_time);
            c.row("Processing Time", format!("{} (average {average})", duration_ns(e.processing_time)));
            c.row("Started", started.as_str());
            c.row("Errors", count(e.num_errors));
            c.row_if_not_empty("Last Error", &e.last_error);
            if let Some(data) = &e.data {
                c.title("Endpoint Specific Statistics");
                for line in pretty_json(data).lines() {
                    c.line(format!("  {line}"));
                }
            }
            c.indent(0);
        }
    }
    c.render()
}

/// JSON indented by four spaces.
fn pretty_json(value: &serde_json::Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    match serde::Serialize::serialize(value, &mut serializer) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => value.to_string(),
    }
}

#[cfg(test)]
#[path = "services_tests.rs"]
mod tests;
