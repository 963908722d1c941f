//! Prints messages. `cargo run -p nats-tokio --example tokio-sub -- [subject] [count]` (NATS_URL sets the server).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), nats_tokio::Error> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let mut args = std::env::args().skip(1);
    let subject = args.next().unwrap_or_else(|| "demo.>".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
    let client = nats_tokio::connect(&url).await?;
    let mut sub = client.subscribe(&subject).await?;
    println!("listening on {subject}");
    for _ in 0..count {
        let Some(msg) = sub.next().await else { break };
        println!("[{}] {}", msg.subject(), String::from_utf8_lossy(msg.payload()));
    }
    Ok(())
}
