//! `micro bench`: message rates and request/reply latency against any NATS server, reported like `nats bench`.
//!
//! Every client is a connection of its own, driven by a thread of its own, and all of them start together.
//! Publishers split the messages between them and are timed until their flush returns (the server has every
//! message). Subscribers each expect every message and are timed from their first message to their last, so a
//! `bench sub` started long before its publishers measures the messages, not the wait. Requesters send one request
//! at a time and time each round trip. A group's rate is its messages over the span from the first client's start
//! to the last client's end; the min, avg, max and stddev lines are over the clients' own rates.

use std::sync::Barrier;
use std::thread::{self, ScopedJoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use nats_blocking::{Client, Error, Subscriber};
use serde_json::json;

use self::report::{
    announce, commas, commas_f, finish, human_bytes, print_json, progress_bar, size, Group, Latency, Tally,
};
use super::{connect, failed, Cli};

mod report;

#[derive(Subcommand)]
pub(super) enum Bench {
    /// Publish MSGS messages of SIZE bytes, split between CLIENTS connections, and report the rates.
    Pub {
        /// The subject to publish to.
        subject: String,
        #[command(flatten)]
        load: Load,
    },
    /// Receive MSGS messages on each of CLIENTS connections, published by someone else (start this first).
    ///
    /// Waits for the first message as long as it takes; after it, gives up when nothing arrives for --timeout.
    Sub {
        /// The subject to subscribe to (wildcards allowed).
        subject: String,
        /// Messages each subscriber waits for.
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
        msgs: u64,
        /// Subscriber connections, each receiving every message.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        clients: u64,
    },
    /// Publish and subscribe in one process: CLIENTS publishers, and SUBS subscribers that each receive every
    /// message.
    Pubsub {
        /// The subject to publish and subscribe to.
        subject: String,
        #[command(flatten)]
        load: Load,
        /// Subscriber connections.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        subs: u64,
    },
    /// Request/reply rate and round-trip latency percentiles, from CLIENTS requesters sending one at a time.
    ///
    /// Starts an echoing replier on a connection of its own unless --no-replier is given. One request, not counted,
    /// goes first: it checks that someone answers.
    Req {
        /// The subject to send requests to.
        subject: String,
        #[command(flatten)]
        load: Load,
        /// Use the repliers already listening on SUBJECT (`micro reply SUBJECT` echoes) instead of starting one.
        #[arg(long)]
        no_replier: bool,
    },
}

/// How much to send, and from how many connections.
#[derive(Args)]
pub(super) struct Load {
    /// Messages in all, split between the clients.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    msgs: u64,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Connections, one thread each.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    clients: u64,
}

/// Runs one `micro bench` command.
pub(super) fn run(cli: &Cli, bench: &Bench) -> Result<(), String> {
    if let Bench::Pub { load, .. } | Bench::Pubsub { load, .. } | Bench::Req { load, .. } = bench {
        if load.msgs < load.clients {
            return Err(format!(
                "--msgs {} is fewer than --clients {}: each client needs a message",
                load.msgs, load.clients
            ));
        }
    }
    match bench {
        Bench::Pub { subject, load } => bench_pub(cli, subject, load),
        Bench::Sub { subject, msgs, clients } => bench_sub(cli, subject, *msgs, *clients),
        Bench::Pubsub { subject, load, subs } => bench_pubsub(cli, subject, load, *subs),
        Bench::Req { subject, load, no_replier } => bench_req(cli, subject, load, *no_replier),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The four benchmarks
// ---------------------------------------------------------------------------------------------------------------

fn bench_pub(cli: &Cli, subject: &str, load: &Load) -> Result<(), String> {
    let publishers = connect_all(cli, load.clients)?;
    check_size(&publishers[0], load.size)?;
    let settings = [("msgs", commas(load.msgs)), size(load), ("clients", load.clients.to_string())];
    announce("pub", subject, &settings, "");
    let bar = progress_bar(cli, load.msgs, "pub");
    let group = finish(&bar, publish_all(&publishers, subject, load, &bar))?;
    if cli.json {
        print_json(json!({
            "mode": "pub", "subject": subject, "msgs": load.msgs, "size": load.size, "clients": load.clients,
            "pub": group.json(),
        }));
    } else {
        group.print("Pub", "");
    }
    Ok(())
}

fn bench_sub(cli: &Cli, subject: &str, msgs: u64, clients: u64) -> Result<(), String> {
    let (connections, subscribers) = subscribe_all(cli, subject, clients)?;
    let settings = [("msgs", commas(msgs)), ("clients", clients.to_string())];
    announce("sub", subject, &settings, ": subscribed, waiting for messages");
    let bar = progress_bar(cli, msgs * clients, "sub");
    let samples = thread::scope(|s| {
        let bar = &bar;
        let handles: Vec<_> = subscribers
            .into_iter()
            .map(|sub| s.spawn(move || receive(sub, subject, msgs, None, cli.timeout, bar)))
            .collect();
        joined(handles)
    });
    drop(connections);
    let group = Group { samples: finish(&bar, samples)?, receiving: true };
    if cli.json {
        print_json(json!({
            "mode": "sub", "subject": subject, "msgs": msgs, "clients": clients, "sub": group.json(),
        }));
    } else {
        group.print("Sub", "");
    }
    group.complete(msgs, cli.timeout)
}

fn bench_pubsub(cli: &Cli, subject: &str, load: &Load, subs: u64) -> Result<(), String> {
    let (connections, subscribers) = subscribe_all(cli, subject, subs)?;
    let publishers = connect_all(cli, load.clients)?;
    check_size(&publishers[0], load.size)?;
    let settings =
        [("msgs", commas(load.msgs)), size(load), ("pubs", load.clients.to_string()), ("subs", subs.to_string())];
    announce("pub/sub", subject, &settings, "");
    let bar = progress_bar(cli, load.msgs * (1 + subs), "pub/sub");
    let (published, received) = thread::scope(|s| {
        let bar = &bar;
        let handles: Vec<_> = subscribers
            .into_iter()
            .map(|sub| s.spawn(move || receive(sub, subject, load.msgs, Some(cli.timeout), cli.timeout, bar)))
            .collect();
        let published = publish_all(&publishers, subject, load, bar);
        if published.is_err() {
            // Nothing more is coming: end the subscribers now rather than after --timeout.
            connections.iter().for_each(Client::close);
        }
        (published, joined(handles))
    });
    let published = finish(&bar, published)?;
    let received = Group { samples: finish(&bar, received)?, receiving: true };
    let total = Group { samples: [&published.samples[..], &received.samples[..]].concat(), receiving: false };
    if cli.json {
        print_json(json!({
            "mode": "pubsub", "subject": subject, "msgs": load.msgs, "size": load.size, "clients": load.clients,
            "subs": subs, "pub": published.json(), "sub": received.json(), "total": total.totals_json(),
        }));
    } else {
        say!("NATS Pub/Sub stats: {} msgs/sec ~ {}/sec", commas_f(total.rate()), human_bytes(total.throughput()));
        published.print("Pub", " ");
        received.print("Sub", " ");
    }
    received.complete(load.msgs, cli.timeout)
}

fn bench_req(cli: &Cli, subject: &str, load: &Load, no_replier: bool) -> Result<(), String> {
    let requesters = connect_all(cli, load.clients)?;
    check_size(&requesters[0], load.size)?;
    let replier = if no_replier { None } else { Some(start_replier(cli, subject)?) };
    let payload = zeros(load.size);
    let failure = |e: Error| match e {
        Error::NoResponders if no_replier => {
            format!("no responders on {subject} (start one, e.g. `micro reply {subject}`, or leave out --no-replier)")
        }
        Error::NoResponders => format!("no responders on {subject}"),
        Error::Timeout => format!("no reply on {subject} within {:?}", cli.timeout),
        e => format!("request on {subject} failed: {e}"),
    };
    // One request, not counted, so that a missing replier is one line of error before anything else.
    requesters[0].request_with_timeout(subject, payload.clone(), cli.timeout).map_err(failure)?;
    let settings = [("msgs", commas(load.msgs)), size(load), ("clients", load.clients.to_string())];
    announce("request/reply", subject, &settings, "");
    let bar = progress_bar(cli, load.msgs, "req");
    let start = Barrier::new(requesters.len());
    let outcome = thread::scope(|s| {
        let (bar, payload, start, failure) = (&bar, &payload, &start, &failure);
        let handles: Vec<_> = requesters
            .iter()
            .zip(shares(load.msgs, requesters.len()))
            .map(|(client, count)| {
                s.spawn(move || {
                    start.wait();
                    request(client, subject, payload, count, cli.timeout, bar).map_err(failure)
                })
            })
            .collect();
        joined(handles)
    });
    if let Some((client, thread)) = replier {
        client.close();
        let _ = thread.join();
    }
    let outcome = finish(&bar, outcome)?;
    let mut rtts: Vec<u64> = outcome.iter().flat_map(|(_, rtts)| rtts.iter().copied()).collect();
    rtts.sort_unstable();
    let group = Group { samples: outcome.into_iter().map(|(sample, _)| sample).collect(), receiving: false };
    let latency = Latency::of(&rtts);
    if cli.json {
        print_json(json!({
            "mode": "req", "subject": subject, "msgs": load.msgs, "size": load.size, "clients": load.clients,
            "req": group.json(), "latency_us": latency.json(),
        }));
    } else {
        group.print("Req", "");
        latency.print();
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Clients at work
// ---------------------------------------------------------------------------------------------------------------

/// What one client did.
#[derive(Clone, Copy)]
struct Sample {
    /// Messages published, received or answered.
    msgs: u64,
    /// Their payload bytes.
    bytes: u64,
    start: Instant,
    end: Instant,
    /// Messages this subscriber lost because it fell behind its pending limits.
    dropped: u64,
}

impl Sample {
    fn seconds(&self) -> f64 {
        self.end.saturating_duration_since(self.start).as_secs_f64()
    }

    fn rate(&self) -> f64 {
        per_sec(self.msgs, self.seconds())
    }

    fn throughput(&self) -> f64 {
        per_sec(self.bytes, self.seconds())
    }
}

fn per_sec(n: u64, seconds: f64) -> f64 {
    if n == 0 {
        0.0
    } else {
        n as f64 / seconds.max(1e-9)
    }
}

/// `total` messages split between `clients`, the first ones taking one more when it does not divide.
fn shares(total: u64, clients: usize) -> Vec<u64> {
    let clients = clients as u64;
    (0..clients).map(|i| total / clients + u64::from(i < total % clients)).collect()
}

/// `size` zero bytes, as the payload every client sends. Static, so that clones on many threads share no
/// reference count; leaked once per run of a short-lived command.
fn zeros(size: usize) -> Bytes {
    Bytes::from_static(Box::leak(vec![0u8; size].into_boxed_slice()))
}

fn connect_all(cli: &Cli, n: u64) -> Result<Vec<Client>, String> {
    (0..n).map(|_| connect(cli)).collect()
}

fn check_size(client: &Client, size: usize) -> Result<(), String> {
    let max = client.max_payload();
    if size > max {
        return Err(format!("--size {size} is over the server's max_payload of {max} bytes"));
    }
    Ok(())
}

/// `n` connections, each subscribed to `subject`, with the server having every subscription.
fn subscribe_all(cli: &Cli, subject: &str, n: u64) -> Result<(Vec<Client>, Vec<Subscriber>), String> {
    let connections = connect_all(cli, n)?;
    let subscribers = connections
        .iter()
        .map(|c| c.subscribe(subject).map_err(|e| format!("cannot subscribe to {subject}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    for c in &connections {
        c.flush().map_err(|e| format!("subscribing: {e}"))?;
    }
    Ok((connections, subscribers))
}

/// Every publisher on a thread of its own, started together, each with its share of the messages.
fn publish_all(publishers: &[Client], subject: &str, load: &Load, bar: &ProgressBar) -> Result<Group, String> {
    let payload = zeros(load.size);
    let start = Barrier::new(publishers.len());
    let samples = thread::scope(|s| {
        let (payload, start) = (&payload, &start);
        let handles: Vec<_> = publishers
            .iter()
            .zip(shares(load.msgs, publishers.len()))
            .map(|(client, count)| {
                s.spawn(move || {
                    start.wait();
                    publish(client, subject, payload, count, bar)
                })
            })
            .collect();
        joined(handles)
    })?;
    Ok(Group { samples, receiving: false })
}

fn publish(client: &Client, subject: &str, payload: &Bytes, count: u64, bar: &ProgressBar) -> Result<Sample, String> {
    let mut tally = Tally::new(bar);
    let start = Instant::now();
    for _ in 0..count {
        client.publish(subject, payload.clone()).map_err(|e| format!("cannot publish to {subject}: {e}"))?;
        tally.one();
    }
    client.flush().map_err(|e| format!("flush after publishing: {e}"))?;
    let end = Instant::now();
    Ok(Sample { msgs: count, bytes: count * payload.len() as u64, start, end, dropped: 0 })
}

/// Receives until `expect` messages have arrived or been dropped. The first message is awaited for `first`
/// (forever when `None`), each later one for `stall`; a subscriber that waits longer stops short.
fn receive(
    mut sub: Subscriber,
    subject: &str,
    expect: u64,
    first: Option<Duration>,
    stall: Duration,
    bar: &ProgressBar,
) -> Result<Sample, String> {
    let mut tally = Tally::new(bar);
    let (mut msgs, mut bytes) = (0u64, 0u64);
    let mut start = None;
    let mut end = Instant::now();
    while msgs + sub.dropped() < expect {
        let wait = if start.is_some() { stall } else { first.unwrap_or(Duration::from_secs(60)) };
        match sub.next_timeout(wait) {
            Ok(msg) => {
                end = Instant::now();
                start.get_or_insert(end);
                msgs += 1;
                bytes += msg.payload().len() as u64;
                tally.one();
            }
            Err(Error::Timeout) if start.is_none() && first.is_none() => {}
            Err(Error::Timeout) => break,
            Err(e) => return Err(format!("subscription to {subject} ended: {e}")),
        }
    }
    Ok(Sample { msgs, bytes, start: start.unwrap_or(end), end, dropped: sub.dropped() })
}

/// An echoing replier on a connection of its own, until that connection is closed.
fn start_replier(cli: &Cli, subject: &str) -> Result<(Client, thread::JoinHandle<()>), String> {
    let client = connect(cli)?;
    let sub = client.subscribe(subject).map_err(|e| format!("cannot subscribe to {subject}: {e}"))?;
    client.flush().map_err(|e| format!("subscribing the replier: {e}"))?;
    let thread = thread::Builder::new()
        .name("bench-replier".into())
        .spawn(move || {
            for msg in sub {
                let _ = msg.respond(msg.payload_bytes());
            }
        })
        .map_err(failed)?;
    Ok((client, thread))
}

/// `count` requests one after another; the sample and every round trip in nanoseconds.
fn request(
    client: &Client,
    subject: &str,
    payload: &Bytes,
    count: u64,
    timeout: Duration,
    bar: &ProgressBar,
) -> Result<(Sample, Vec<u64>), Error> {
    let mut tally = Tally::new(bar);
    let mut rtts = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let start = Instant::now();
    for _ in 0..count {
        let sent = Instant::now();
        client.request_with_timeout(subject, payload.clone(), timeout)?;
        rtts.push(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
        tally.one();
    }
    let end = Instant::now();
    Ok((Sample { msgs: count, bytes: count * payload.len() as u64, start, end, dropped: 0 }, rtts))
}

/// Every thread's result, or the first error (a panicking thread is an error too).
fn joined<T>(handles: Vec<ScopedJoinHandle<'_, Result<T, String>>>) -> Result<Vec<T>, String> {
    let results: Vec<Result<T, String>> =
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a benchmark thread panicked".into()))).collect();
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        assert_eq!(shares(10, 3), vec![4, 3, 3]);
        assert_eq!(shares(2, 4), vec![1, 1, 0, 0]);
        assert_eq!(shares(100_000, 1), vec![100_000]);
    }
}
