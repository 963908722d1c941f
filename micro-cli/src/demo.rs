//! The demo services: `micro demo` (`demo-service`, which `scripts/demo` drives).

use std::time::{Instant, SystemTime};

use micro::{EndpointConfig, QueueGroup, Service, ServiceConfig, ServiceError};
use nats_blocking::Client;

use crate::failed;

/// `demo-service` 1.0.0: group `demo` with `echo` (demo.ECHO), a typed `sum`, and a `flaky` endpoint that
/// fails about one request in ten.
pub(crate) fn demo(client: Client) -> Result<(), String> {
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
    let started = Instant::now();
    let reason = service.done();
    eprintln!("demo-service stopped after {:?}: {reason:?}", started.elapsed());
    Ok(())
}
