//! A publish loop to count what one publish costs, for an instruction counter such as callgrind: starts a
//! nats-server (the test harness's), publishes `N` small messages (default 200,000) through a function that
//! is never inlined, and flushes. Count only that function's instructions, e.g. with callgrind's
//! `--toggle-collect='*publish_one*'`, and divide by `N`.
//!
//! `cargo run --release -p nats-blocking --example publish_loop [N] [traced]`; with the `trace-context` feature
//! and `traced`, the messages are published inside a trace context (what that costs); without `traced`, with
//! none current (what the feature costs when unused).

use nats_blocking::{Client, Error};

/// One publish. The subject and payload are hidden from the optimiser, as a real program's are: constants
/// would let it fold their lengths into the encoder, which measures the constant folding, not the publish.
#[inline(never)]
fn publish_one(client: &Client, subject: &str, payload: &[u8]) -> Result<(), Error> {
    client.publish(std::hint::black_box(subject), std::hint::black_box(payload))
}

fn publish_all(client: &Client, n: u64) -> Result<(), Error> {
    let payload = [b'x'; 16];
    for _ in 0..n {
        publish_one(client, "bench.trace", &payload)?;
    }
    client.flush()
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let traced = args.next().as_deref() == Some("traced");
    let server = nats_server_harness::NatsServer::start();
    let client = nats_blocking::connect(&server.url())?;
    if traced {
        #[cfg(feature = "trace-context")]
        return nats_blocking::trace::TraceContext::new_root().in_scope(|| publish_all(&client, n));
        #[cfg(not(feature = "trace-context"))]
        panic!("`traced` needs the trace-context feature");
    }
    publish_all(&client, n)
}
