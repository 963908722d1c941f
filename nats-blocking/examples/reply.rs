//! Answers requests by echoing them back. `cargo run -p nats-blocking --example reply -- [subject] [count]`
fn main() -> Result<(), nats_blocking::Error> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let mut args = std::env::args().skip(1);
    let subject = args.next().unwrap_or_else(|| "demo.echo".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
    let client = nats_blocking::connect(&url)?;
    // A queue group: run several of these and each request goes to one of them.
    let requests = client.queue_subscribe(&subject, "echo")?;
    println!("serving {subject}");
    for request in requests.take(count) {
        request.respond(request.payload_bytes())?;
    }
    client.drain()
}
