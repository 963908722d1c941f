//! Publishes messages. `cargo run -p nats-tokio --example tokio-pub -- [subject] [count]` (NATS_URL sets the server).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), nats_tokio::Error> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let mut args = std::env::args().skip(1);
    let subject = args.next().unwrap_or_else(|| "demo.hello".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);
    let client = nats_tokio::connect(&url).await?;
    for i in 0..count {
        client.publish(&subject, format!("message {i}")).await?;
    }
    // A publish returns once queued; flush waits until the server has them all.
    client.flush().await?;
    println!("published {count} messages to {subject}");
    Ok(())
}
