//! Prints messages. `cargo run -p nats-blocking --example sub -- [subject] [count]` (NATS_URL sets the server).
fn main() -> Result<(), nats_blocking::Error> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let mut args = std::env::args().skip(1);
    let subject = args.next().unwrap_or_else(|| "demo.>".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
    let client = nats_blocking::connect(&url)?;
    let sub = client.subscribe(&subject)?;
    println!("listening on {subject}");
    for msg in sub.take(count) {
        println!("[{}] {}", msg.subject(), String::from_utf8_lossy(msg.payload()));
    }
    Ok(())
}
