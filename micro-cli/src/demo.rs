//! The demo services: `micro demo` (`demo-service`, which `scripts/demo` drives) and `micro serve NAME`
//! (natscli's demo: an echo endpoint that tells who answered). Both run until SIGINT or SIGTERM, then stop
//! gracefully: their subscriptions drained, the requests already received answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use micro::host::{Ended, Host};
use micro::{EndpointConfig, QueueGroup, Service, ServiceConfig, ServiceError, StopReason};
use nats_blocking::{Client, Headers};

use crate::columns::Columns;
use crate::human::{clock_now, duration, timestamp_now};
use crate::{failed, Cli};

/// `demo-service` 1.0.0: group `demo` with `echo` (demo.ECHO), a typed `sum`, and a `flaky` endpoint that
/// fails about one request in ten.
pub(crate) fn demo(cli: &Cli, client: Client) -> Result<(), String> {
    // Before the service exists, so a signal sent as soon as it is announced is never the default (death).
    let host = Host::new().map_err(failed)?;
    let config = ServiceConfig::new("demo-service", "1.0.0").description("A demo of the NATS Service API");
    let service = Service::start(client, config).map_err(failed)?;
    let group = service.root().group("demo", QueueGroup::Inherit).map_err(failed)?;
    let echo = EndpointConfig::new("echo").subject("ECHO").metadata("description", "Echoes the request back");
    service
        .endpoint(&group, echo, |mut req| {
            let body = req.payload_bytes();
            let _ = req.respond(body);
        })
        .map_err(failed)?;
    let sum = EndpointConfig::new("sum").metadata("description", "Adds a JSON array of numbers");
    service
        .typed_endpoint(&group, sum, |numbers: Vec<f64>| {
            let total: f64 = numbers.iter().sum();
            // Whole sums print as integers (`6`, not `6.0`).
            let whole = total.fract() == 0.0 && total.abs() < 9e15;
            Ok::<_, ServiceError>(if whole { serde_json::json!(total as i64) } else { serde_json::json!(total) })
        })
        .map_err(failed)?;
    let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64);
    let rng = std::sync::Mutex::new(nats_proto::Rng::new(seed));
    let flaky = EndpointConfig::new("flaky").metadata("description", "Fails about 10 % of requests");
    service
        .endpoint(&group, flaky, move |mut req| {
            let unlucky = rng.lock().map(|mut r| r.below(10) == 0).unwrap_or(false);
            let _ = if unlucky { req.respond_error(500, "unlucky") } else { req.respond("ok") };
        })
        .map_err(failed)?;
    eprintln!("demo-service {} running; stop it with Ctrl-C", service.id());
    until_signal(host, service, cli.timeout)
}

/// `micro serve NAME`: service NAME 1.0.0 with one endpoint, `echo` on `NAME.echo` (queue group `q`). It
/// answers with the request's payload and headers, and headers saying who answered (`ConnectedUrl`,
/// `Handler`: this process's id, `Subject`, `Timestamp`, `ConnectedCluster`) plus `extra`; its STATS data is
/// the payload bytes echoed (`total_payload`). Each request is logged on stdout.
pub(crate) fn serve(cli: &Cli, client: Client, name: &str, extra: &[String]) -> Result<(), String> {
    let extra = crate::messaging::headers(extra)?.unwrap_or_default();
    let host = Host::new().map_err(failed)?;
    let url = redacted(&crate::server_url(cli));
    let cluster = client.server_info().and_then(|info| info.cluster).filter(|c| !c.is_empty());
    let description = format!("Echo service of the micro tool ({name})");
    let service = Service::start(client, ServiceConfig::new(name, "1.0.0").description(&description));
    let service = service.map_err(failed)?;
    let echoed = Arc::new(AtomicU64::new(0));
    let total = echoed.clone();
    service.set_stats_handler(move |_| serde_json::json!({ "total_payload": total.load(Ordering::Relaxed) }));
    let group = service.root().group(name, QueueGroup::Inherit).map_err(failed)?;
    let (pid, who) = (std::process::id(), url.clone());
    let custom = extra.clone();
    service
        .endpoint(&group, EndpointConfig::new("echo"), move |mut req| {
            let subject = req.subject().to_string();
            say!("{} Handling request on subject {subject}", clock_now());
            echoed.fetch_add(req.payload().len() as u64, Ordering::Relaxed);
            let mut h = Headers::new();
            let pid = pid.to_string();
            let ours = [("ConnectedUrl", who.as_str()), ("Handler", &pid), ("Subject", &subject)];
            for (k, v) in ours.into_iter().chain([("Timestamp", timestamp_now().as_str())]) {
                let _ = h.append(k, v);
            }
            if let Some(c) = &cluster {
                let _ = h.append("ConnectedCluster", c);
            }
            for (k, v) in custom.iter() {
                let _ = h.append(k, v);
            }
            if let Some(theirs) = req.headers() {
                for (k, v) in theirs.iter() {
                    let _ = h.append(&String::from_utf8_lossy(k), &String::from_utf8_lossy(v));
                }
            }
            let body = req.payload_bytes();
            let _ = req.respond_with_headers(&h, body);
        })
        .map_err(failed)?;

    let mut c = Columns::new(format!("Service {name} handler {pid} waiting for requests on {url}"));
    c.title("Listening Subjects");
    c.row(&format!("{name}.echo"), "Echo Service");
    if !extra.is_empty() {
        c.title("Custom Response Headers");
        for (k, v) in extra.iter() {
            c.row(k, v);
        }
    }
    c.title("Requests Log");
    say!("{}", c.render().trim_end());
    say!();
    until_signal(host, service, cli.timeout)
}

/// Hosts the service until SIGINT or SIGTERM (or until it ends by itself), then stops it, giving the
/// requests in flight up to `timeout`; says on stderr how it ended.
fn until_signal(mut host: Host<Client>, service: Service<Client>, timeout: Duration) -> Result<(), String> {
    let name = service.name();
    host.add(service);
    let hosted = host.stop_timeout(timeout).run();
    let ran = duration(hosted.ran);
    match (hosted.cause, &hosted.stopped[0].1) {
        (Ended::Signal(_) | Ended::Handle, StopReason::Stopped) => {
            eprintln!("{name} stopped after {ran}: drained, every request answered");
            Ok(())
        }
        (_, StopReason::Timeout) => {
            Err(format!("{name}: requests still in flight {} after the stop", duration(timeout)))
        }
        (_, reason) => Err(format!("{name} ended after {ran}: {reason:?}")),
    }
}

/// `url` without a user or password (the part before `@` of each server URL).
fn redacted(url: &str) -> String {
    let one = |u: &str| match (u.find("://"), u.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}[REDACTED]{}", &u[..scheme + 3], &u[at..]),
        (None, Some(at)) => format!("[REDACTED]{}", &u[at..]),
        _ => u.to_owned(),
    };
    url.split(',').map(one).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_left_out_of_urls() {
        assert_eq!(redacted("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(redacted("nats://alice:s3cret@host:4222"), "nats://[REDACTED]@host:4222");
        assert_eq!(redacted("tok@host:4222,nats://a:b@h2"), "[REDACTED]@host:4222,nats://[REDACTED]@h2");
    }
}
