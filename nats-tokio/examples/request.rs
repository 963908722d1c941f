//! Sends a request and prints the reply. `cargo run -p nats-tokio --example tokio-request -- [subject] [payload]`
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), nats_tokio::Error> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let mut args = std::env::args().skip(1);
    let subject = args.next().unwrap_or_else(|| "demo.echo".into());
    let payload = args.next().unwrap_or_else(|| "ping".into());
    let client = nats_tokio::connect(&url).await?;
    match client.request_with_timeout(&subject, payload, Duration::from_secs(2)).await {
        Ok(reply) => println!("reply: {}", String::from_utf8_lossy(reply.payload())),
        Err(nats_tokio::Error::NoResponders) => println!("nobody serves {subject}"),
        Err(e) => return Err(e),
    }
    Ok(())
}
