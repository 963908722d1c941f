//! Sends a request and prints the reply. `cargo run -p nats-blocking --example request -- [subject] [payload]`
use std::time::Duration;

fn main() -> Result<(), nats_blocking::Error> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let mut args = std::env::args().skip(1);
    let subject = args.next().unwrap_or_else(|| "demo.echo".into());
    let payload = args.next().unwrap_or_else(|| "ping".into());
    let client = nats_blocking::connect(&url)?;
    match client.request_with_timeout(&subject, payload, Duration::from_secs(2)) {
        Ok(reply) => println!("reply: {}", String::from_utf8_lossy(reply.payload())),
        Err(nats_blocking::Error::NoResponders) => println!("nobody serves {subject}"),
        Err(e) => return Err(e),
    }
    Ok(())
}
