//! Answers requests by echoing them back. `cargo run -p nats-tokio --example tokio-reply -- [subject] [count]`
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), nats_tokio::Error> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let mut args = std::env::args().skip(1);
    let subject = args.next().unwrap_or_else(|| "demo.echo".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
    let client = nats_tokio::connect(&url).await?;
    // A queue group: run several of these and each request goes to one of them.
    let mut requests = client.queue_subscribe(&subject, "echo").await?;
    println!("serving {subject}");
    for _ in 0..count {
        let Some(request) = requests.next().await else { break };
        request.respond(request.payload_bytes())?;
    }
    client.drain().await
}
