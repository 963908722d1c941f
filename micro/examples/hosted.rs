//! A service hosted until Ctrl-C or SIGTERM, then stopped gracefully: `cargo run -p micro --example hosted
//! --features host -- nats://127.0.0.1:4222`, then `micro req hosted.greet world` from another shell.

use std::time::Duration;

use micro::host::Host;
use micro::{EndpointConfig, Service, ServiceConfig, ServiceError};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
    // Before the service: a signal while it starts is then a stop, not the process's death.
    let mut host = Host::new()?.stop_timeout(Duration::from_secs(10));
    let service = Service::start(nats_blocking::connect(&url)?, ServiceConfig::new("hosted", "1.0.0"))?;
    let group = service.root().group("hosted", micro::QueueGroup::Inherit)?;
    service.typed_endpoint(&group, EndpointConfig::new("greet"), |name: String| {
        if name.is_empty() {
            return Err(ServiceError::new(400, "greet whom?"));
        }
        Ok(format!("hello {name}"))
    })?;
    eprintln!("hosted {} serving hosted.greet; Ctrl-C stops it", service.id());
    host.add(service);
    let hosted = host.run();
    eprintln!("{hosted}");
    std::process::exit(if hosted.is_clean() { 0 } else { 1 });
}
