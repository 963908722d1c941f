//! `compare`: our clients against async-nats (and the deprecated synchronous `nats` crate, `nats-sync`) in one
//! run, on one nats-server (and a fake server for ingest).
//!
//! `cargo run --release -p benches --bin compare -- [--quick] [--only publish,reqrep]` prints a table and writes
//! `target/bench/compare.json`. Clients alternate within each round and each cell is the median of the rounds;
//! every result is also a ratio to async-nats from the same run, because absolute figures drift on a shared
//! machine.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use nats_server_harness::NatsServer;

/// The deprecated synchronous client, measured as the other blocking client to beat.
#[allow(deprecated)]
fn nats_sync(url: &str) -> nats::Connection {
    nats::connect(url).unwrap()
}

const CLIENTS: [&str; 4] = ["ours-blocking", "ours-tokio", "async-nats", "nats-sync"];

#[derive(Debug, Clone, Default)]
struct Cell {
    msgs_per_s: Option<f64>,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    cpu_ns_per_msg: Option<f64>,
}

/// CPU time of this process: the sum of its threads' run times from /proc (nanoseconds), or the coarse
/// user + system ticks when per-thread figures are not there; `None` without /proc.
fn cpu_time() -> Option<Duration> {
    let threads = std::fs::read_dir("/proc/self/task").ok().map(|dir| {
        dir.filter_map(Result::ok)
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum::<u64>()
    });
    if let Some(ns) = threads.filter(|&ns| ns > 0) {
        return Some(Duration::from_nanos(ns));
    }
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports clock ticks of 1/100 s to user space.
    Some(Duration::from_millis(ticks * 10))
}

fn measure(n: usize, run: impl FnOnce()) -> Cell {
    let start = (cpu_time(), Instant::now());
    run();
    finish(n, start)
}

/// Takes up to `n` messages from a subscription stream, giving up after 5 s of silence; how many came.
async fn receive<S: futures::Stream + Unpin>(mut sub: S, n: usize) -> usize {
    let mut got = 0;
    while got < n {
        match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
            Ok(Some(_)) => got += 1,
            _ => break,
        }
    }
    got
}

/// A blocking client whose subscriptions hold `n` messages (so no message is dropped while it catches up).
fn blocking_client(url: &str, n: usize) -> nats_blocking::Client {
    let limits = nats_blocking::PendingLimits { messages: n, bytes: usize::MAX / 2 };
    nats_blocking::Client::connect(nats_blocking::ConnectOptions::new().server(url).pending_limits(limits)).unwrap()
}

fn latencies(mut samples: Vec<Duration>) -> Cell {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_nanos() as f64 / 1000.0;
    Cell { p50_us: Some(at(0.5)), p99_us: Some(at(0.99)), ..Cell::default() }
}

struct Bench {
    url: String,
    rt: tokio::runtime::Runtime,
}

impl Bench {
    fn publish(&self, client: &str, size: usize, n: usize) -> Cell {
        let payload = Bytes::from(vec![b'x'; size]);
        match client {
            "ours-blocking" => {
                let c = nats_blocking::connect(&self.url).unwrap();
                measure(n, || {
                    for _ in 0..n {
                        c.publish("bench.pub", payload.clone()).unwrap();
                    }
                    c.flush().unwrap();
                })
            }
            "nats-sync" => {
                let c = nats_sync(&self.url);
                measure(n, || {
                    for _ in 0..n {
                        c.publish("bench.pub", &payload).unwrap();
                    }
                    c.flush().unwrap();
                })
            }
            "ours-tokio" => self.rt.block_on(async {
                let c = nats_tokio::connect(&self.url).await.unwrap();
                let start = (cpu_time(), Instant::now());
                for _ in 0..n {
                    c.publish("bench.pub", payload.clone()).await.unwrap();
                }
                c.flush().await.unwrap();
                finish(n, start)
            }),
            _ => self.rt.block_on(async {
                let c = async_nats::connect(&self.url).await.unwrap();
                let start = (cpu_time(), Instant::now());
                for _ in 0..n {
                    c.publish("bench.pub", payload.clone()).await.unwrap();
                }
                c.flush().await.unwrap();
                finish(n, start)
            }),
        }
    }

    fn pubsub(&self, client: &str, n: usize) -> (Cell, u64) {
        let payload = Bytes::from_static(b"0123456789abcdef");
        match client {
            "ours-blocking" => {
                let c = blocking_client(&self.url, n);
                let sub = c.subscribe("bench.ps").unwrap();
                c.flush().unwrap();
                let mut got = 0;
                let cell = measure(n, || {
                    let reader = std::thread::spawn(move || {
                        let mut sub = sub;
                        let mut got = 0;
                        while got < n && sub.next_timeout(Duration::from_secs(5)).is_ok() {
                            got += 1;
                        }
                        got
                    });
                    for _ in 0..n {
                        c.publish("bench.ps", payload.clone()).unwrap();
                    }
                    c.flush().unwrap();
                    got = reader.join().unwrap();
                });
                (cell, (n - got) as u64)
            }
            "nats-sync" => {
                let c = nats_sync(&self.url);
                let sub = c.subscribe("bench.ps").unwrap();
                c.flush().unwrap();
                let mut got = 0;
                let cell = measure(n, || {
                    let reader = std::thread::spawn(move || {
                        let mut got = 0;
                        while got < n && sub.next_timeout(Duration::from_secs(5)).is_ok() {
                            got += 1;
                        }
                        got
                    });
                    for _ in 0..n {
                        c.publish("bench.ps", &payload).unwrap();
                    }
                    c.flush().unwrap();
                    got = reader.join().unwrap();
                });
                (cell, (n - got) as u64)
            }
            "ours-tokio" => self.rt.block_on(async {
                let opts = nats_tokio::ConnectOptions::new()
                    .server(&self.url)
                    .pending_limits(nats_tokio::PendingLimits { messages: n, bytes: usize::MAX / 2 });
                let c = nats_tokio::Client::connect(opts).await.unwrap();
                let sub = c.subscribe("bench.ps").await.unwrap();
                c.flush().await.unwrap();
                let start = (cpu_time(), Instant::now());
                let reader = tokio::spawn(receive(sub, n));
                for _ in 0..n {
                    c.publish("bench.ps", payload.clone()).await.unwrap();
                }
                c.flush().await.unwrap();
                let got = reader.await.unwrap();
                (finish(n, start), (n - got) as u64)
            }),
            _ => self.rt.block_on(async {
                let c = async_nats::ConnectOptions::new()
                    .subscription_capacity(n.max(1024))
                    .connect(&self.url)
                    .await
                    .unwrap();
                let sub = c.subscribe("bench.ps").await.unwrap();
                c.flush().await.unwrap();
                let start = (cpu_time(), Instant::now());
                let reader = tokio::spawn(receive(sub, n));
                for _ in 0..n {
                    c.publish("bench.ps", payload.clone()).await.unwrap();
                }
                c.flush().await.unwrap();
                let got = reader.await.unwrap();
                (finish(n, start), (n - got) as u64)
            }),
        }
    }

    fn reqrep(&self, client: &str, n: usize) -> Cell {
        match client {
            "ours-blocking" => {
                let c = nats_blocking::connect(&self.url).unwrap();
                let _svc = c
                    .subscribe_with("bench.rr", |m| {
                        let _ = m.respond(m.payload.clone());
                    })
                    .unwrap();
                c.flush().unwrap();
                let samples = (0..n)
                    .map(|_| {
                        let t = Instant::now();
                        c.request("bench.rr", "ping").unwrap();
                        t.elapsed()
                    })
                    .collect();
                latencies(samples)
            }
            "nats-sync" => {
                let c = nats_sync(&self.url);
                let svc = c.subscribe("bench.rr").unwrap();
                let _handler = svc.with_handler(|m| m.respond(&m.data));
                c.flush().unwrap();
                // Its requests take milliseconds each (a flush interval): a few hundred samples give the percentiles.
                let samples = (0..n.min(500))
                    .map(|_| {
                        let t = Instant::now();
                        c.request("bench.rr", "ping").unwrap();
                        t.elapsed()
                    })
                    .collect();
                latencies(samples)
            }
            "ours-tokio" => self.rt.block_on(async {
                let c = nats_tokio::connect(&self.url).await.unwrap();
                let mut svc = c.subscribe("bench.rr").await.unwrap();
                tokio::spawn(async move {
                    while let Some(m) = svc.next().await {
                        let _ = m.respond(m.payload.clone());
                    }
                });
                c.flush().await.unwrap();
                let mut samples = Vec::with_capacity(n);
                for _ in 0..n {
                    let t = Instant::now();
                    c.request("bench.rr", "ping").await.unwrap();
                    samples.push(t.elapsed());
                }
                latencies(samples)
            }),
            _ => self.rt.block_on(async {
                let c = async_nats::connect(&self.url).await.unwrap();
                let mut svc = c.subscribe("bench.rr").await.unwrap();
                let responder = c.clone();
                tokio::spawn(async move {
                    while let Some(m) = svc.next().await {
                        if let Some(reply) = m.reply {
                            let _ = responder.publish(reply, m.payload.clone()).await;
                        }
                    }
                });
                c.flush().await.unwrap();
                let mut samples = Vec::with_capacity(n);
                for _ in 0..n {
                    let t = Instant::now();
                    c.request("bench.rr", "ping".into()).await.unwrap();
                    samples.push(t.elapsed());
                }
                latencies(samples)
            }),
        }
    }

    fn ingest(&self, client: &str, size: usize, n: usize) -> (Cell, u64) {
        let (mut fake, url) = fake_ingest_server(size, n);
        let result = match client {
            "ours-blocking" => {
                let c = blocking_client(&url, n);
                let mut sub = c.subscribe("ingest").unwrap();
                let mut got = 0;
                let cell = measure(n, || {
                    while got < n && sub.next_timeout(Duration::from_secs(5)).is_ok() {
                        got += 1;
                    }
                });
                (cell, (n - got) as u64)
            }
            "ours-tokio" => self.rt.block_on(async {
                let opts = nats_tokio::ConnectOptions::new()
                    .server(&url)
                    .pending_limits(nats_tokio::PendingLimits { messages: n, bytes: usize::MAX / 2 });
                let c = nats_tokio::Client::connect(opts).await.unwrap();
                let sub = c.subscribe("ingest").await.unwrap();
                let start = (cpu_time(), Instant::now());
                let got = receive(sub, n).await;
                (finish(n, start), (n - got) as u64)
            }),
            "raw" => {
                let mut sock = TcpStream::connect(url.trim_start_matches("nats://")).unwrap();
                sock.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\nSUB ingest 1\r\n").unwrap();
                let mut got = 0;
                let cell = measure(n, || got = raw_count(&mut sock, n));
                (cell, (n - got) as u64)
            }
            _ => self.rt.block_on(async {
                let c =
                    async_nats::ConnectOptions::new().subscription_capacity(n.max(1024)).connect(&url).await.unwrap();
                let sub = c.subscribe("ingest").await.unwrap();
                let start = (cpu_time(), Instant::now());
                let got = receive(sub, n).await;
                (finish(n, start), (n - got) as u64)
            }),
        };
        let _ = fake.kill();
        let _ = fake.wait();
        result
    }

    /// A service endpoint echoing requests (our `micro` on the blocking client, or async-nats's service),
    /// loaded by `threads` requesters on one client of ours: requests per second.
    fn micro(&self, client: &str, n: usize) -> Cell {
        const THREADS: usize = 4;
        let subject = format!("bench.svc.{client}");
        let guard: Box<dyn std::any::Any> = match client {
            "ours-blocking" => {
                let c = nats_blocking::connect(&self.url).unwrap();
                let service = micro::Service::start(c, micro::ServiceConfig::new("bench", "1.0.0")).unwrap();
                let config = micro::EndpointConfig::new("echo").subject(&subject);
                service
                    .endpoint(&service.root(), config, |mut req| {
                        let body = req.payload().clone();
                        let _ = req.respond(body);
                    })
                    .unwrap();
                Box::new(service)
            }
            "ours-tokio" => {
                let url = self.url.clone();
                let subject = subject.clone();
                let service = self.rt.block_on(async move {
                    let c = nats_tokio::connect(&url).await.unwrap();
                    let service =
                        micro::AsyncService::start(c, micro::ServiceConfig::new("bench", "1.0.0")).await.unwrap();
                    let config = micro::EndpointConfig::new("echo").subject(&subject);
                    service
                        .endpoint(&service.root(), config, |mut req| async move {
                            let body = req.payload().clone();
                            let _ = req.respond(body);
                        })
                        .await
                        .unwrap();
                    service
                });
                let run = service.run();
                Box::new(AbortOnDrop(self.rt.spawn(async move {
                    run.await;
                })))
            }
            _ => {
                use async_nats::service::ServiceExt;
                let subject = subject.clone();
                let (service, mut endpoint) = self.rt.block_on(async move {
                    let c = async_nats::connect(&self.url).await.unwrap();
                    let service = c.service_builder().start("bench", "1.0.0").await.unwrap();
                    let endpoint = service.endpoint(subject).await.unwrap();
                    c.flush().await.unwrap();
                    (service, endpoint)
                });
                let task = self.rt.spawn(async move {
                    let _keep = service;
                    while let Some(req) = endpoint.next().await {
                        let body = req.message.payload.clone();
                        let _ = req.respond(Ok(body)).await;
                    }
                });
                Box::new(AbortOnDrop(task))
            }
        };
        let requester = nats_blocking::connect(&self.url).unwrap();
        let per_thread = n / THREADS;
        let cell = measure(per_thread * THREADS, || {
            let workers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (c, subject) = (requester.clone(), subject.clone());
                    std::thread::spawn(move || {
                        for _ in 0..per_thread {
                            c.request(&subject, "ping").unwrap();
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
        });
        drop(guard);
        Cell { cpu_ns_per_msg: None, ..cell }
    }

    /// Pre-encoded PUB frames written in large batches: the ceiling of publishing on this machine.
    fn raw_publish(&self, size: usize, n: usize) -> Cell {
        let mut sock = TcpStream::connect(self.url.trim_start_matches("nats://")).unwrap();
        sock.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n").unwrap();
        let mut frame = format!("PUB bench.pub {size}\r\n").into_bytes();
        frame.extend(std::iter::repeat_n(b'x', size));
        frame.extend_from_slice(b"\r\n");
        let batch: Vec<u8> =
            frame.iter().copied().cycle().take(frame.len() * (64 * 1024 / frame.len()).max(1)).collect();
        let per_batch = batch.len() / frame.len();
        measure(n, || {
            let mut sent = 0;
            while sent < n {
                let k = per_batch.min(n - sent);
                sock.write_all(&batch[..k * frame.len()]).unwrap();
                sent += k;
            }
            sock.write_all(b"PING\r\n").unwrap();
            let mut buf = [0u8; 256];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"PONG") {
                let r = sock.read(&mut buf).unwrap();
                assert!(r > 0, "server closed");
                seen.extend_from_slice(&buf[..r]);
            }
        })
    }
}

/// Ends a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Counts MSG frames with a plain memchr framing loop (the raw ingest ceiling).
fn raw_count(sock: &mut TcpStream, n: usize) -> usize {
    let mut buf = vec![0u8; 256 * 1024];
    let (mut filled, mut got) = (0, 0);
    while got < n {
        let r = match sock.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(r) => r,
        };
        filled += r;
        let mut at = 0;
        while let Some(lf) = memchr::memchr(b'\n', &buf[at..filled]) {
            let line = &buf[at..at + lf];
            if line.starts_with(b"MSG") {
                let size: usize = line
                    .rsplit(|&b| b == b' ')
                    .next()
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .and_then(|s| s.trim_end().parse().ok())
                    .unwrap_or(0);
                let end = at + lf + 1 + size + 2;
                if end > filled {
                    break;
                }
                got += 1;
                at = end;
            } else {
                at += lf + 1;
            }
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
    }
    got
}

fn finish(n: usize, (cpu0, start): (Option<Duration>, Instant)) -> Cell {
    let elapsed = start.elapsed();
    let cpu = cpu_time().zip(cpu0).map(|(a, b)| a.saturating_sub(b));
    Cell {
        msgs_per_s: Some(n as f64 / elapsed.as_secs_f64()),
        cpu_ns_per_msg: cpu.map(|c| c.as_nanos() as f64 / n as f64),
        ..Cell::default()
    }
}

/// Starts this binary again as a fake server streaming `n` MSG frames of `size` bytes after the client's SUB,
/// in its own process so that its CPU is not counted as the client's.
fn fake_ingest_server(size: usize, n: usize) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--fake-ingest", &size.to_string(), &n.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = child.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        line.push(byte[0] as char);
    }
    (child, line)
}

/// The fake server's side: INFO, PONG to the handshake, then `n` frames as fast as the socket takes them.
fn serve_fake_ingest(size: usize, n: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    println!("nats://{}", listener.local_addr().unwrap());
    let (mut sock, _) = listener.accept().unwrap();
    sock.write_all(b"INFO {\"server_id\":\"FAKE\",\"version\":\"2.10.0\",\"proto\":1,\"headers\":true,\"max_payload\":1048576}\r\n")
        .unwrap();
    let mut decoder = nats_proto::ClientDecoder::default();
    let mut input = bytes::BytesMut::new();
    let mut buf = [0u8; 4096];
    let sid = loop {
        let r = sock.read(&mut buf).unwrap();
        assert!(r > 0, "client left");
        input.extend_from_slice(&buf[..r]);
        let mut sid = None;
        while let Ok(Some(op)) = decoder.decode(&mut input) {
            match op {
                nats_proto::ClientOp::Ping => sock.write_all(b"PONG\r\n").unwrap(),
                nats_proto::ClientOp::Sub { sid: s, .. } => sid = Some(s),
                _ => {}
            }
        }
        if let Some(s) = sid {
            break s;
        }
    };
    let mut frame = format!("MSG ingest {sid} {size}\r\n").into_bytes();
    frame.extend(std::iter::repeat_n(b'x', size));
    frame.extend_from_slice(b"\r\n");
    let per_batch = (64 * 1024 / frame.len()).max(1);
    let batch: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * per_batch).collect();
    let mut sent = 0;
    let _ = sock.set_nonblocking(false);
    while sent < n {
        let k = per_batch.min(n - sent);
        if sock.write_all(&batch[..k * frame.len()]).is_err() {
            return;
        }
        sent += k;
    }
    // Keep answering PINGs until the client leaves.
    loop {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(r) if buf[..r].windows(4).any(|w| w == b"PING") => {
                let _ = sock.write_all(b"PONG\r\n");
            }
            Ok(_) => {}
        }
    }
}

fn median(mut v: Vec<Cell>, key: impl Fn(&Cell) -> Option<f64>) -> Option<f64> {
    let mut xs: Vec<f64> = v.drain(..).filter_map(|c| key(&c)).collect();
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.get(xs.len() / 2).copied()
}

struct Row {
    workload: &'static str,
    size: usize,
    /// Client and server on one CPU.
    pinned: bool,
    client: &'static str,
    cell: Cell,
    dropped: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--fake-ingest") {
        serve_fake_ingest(args[2].parse().unwrap(), args[3].parse().unwrap());
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    // `--only publish,reqrep`: just those workloads (for profiling one of them).
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').map(str::to_owned).collect());
    let wanted = |w: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == w));
    let (rounds, n_pub, n_ps, n_rr, n_in) =
        if quick { (3, 100_000, 50_000, 500, 200_000) } else { (5, 1_000_000, 300_000, 5_000, 2_000_000) };
    let server = NatsServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let bench = Bench { url: server.url(), rt };
    let mut rows: Vec<Row> = vec![];
    let pinned = std::cell::Cell::new(false);
    let mut run = |workload: &'static str, size: usize, clients: &[&'static str], f: &dyn Fn(&str) -> (Cell, u64)| {
        if !wanted(workload) {
            return;
        }
        let mut cells: Vec<Vec<Cell>> = vec![vec![]; clients.len()];
        let mut dropped = vec![0u64; clients.len()];
        for _ in 0..rounds {
            for (i, c) in clients.iter().enumerate() {
                let (cell, d) = f(c);
                dropped[i] += d;
                cells[i].push(cell);
            }
        }
        for (i, c) in clients.iter().enumerate() {
            let v = cells[i].clone();
            let cell = Cell {
                msgs_per_s: median(v.clone(), |c| c.msgs_per_s),
                p50_us: median(v.clone(), |c| c.p50_us),
                p99_us: median(v.clone(), |c| c.p99_us),
                cpu_ns_per_msg: median(v, |c| c.cpu_ns_per_msg),
            };
            rows.push(Row { workload, size, pinned: pinned.get(), client: c, cell, dropped: dropped[i] });
        }
    };
    for size in [16, 128, 1024, 16 * 1024] {
        let n = if size >= 16 * 1024 { n_pub / 10 } else { n_pub };
        run("publish", size, &CLIENTS, &|c| (bench.publish(c, size, n), 0));
        run("raw", size, &["raw"], &|_| (bench.raw_publish(size, n), 0));
    }
    run("pubsub", 16, &CLIENTS, &|c| bench.pubsub(c, n_ps));
    run("reqrep", 16, &CLIENTS, &|c| (bench.reqrep(c, n_rr), 0));
    // A round trip between two CPUs is dominated by waking the other one; on one CPU it is the clients' cost.
    if wanted("reqrep") && pin(server.pid(), "0") {
        pinned.set(true);
        run("reqrep", 16, &CLIENTS, &|c| (bench.reqrep(c, n_rr), 0));
        pinned.set(false);
        let all = format!("0-{}", std::thread::available_parallelism().map_or(1, |n| n.get()) - 1);
        pin(server.pid(), &all);
    }
    run("ingest", 16, &["ours-blocking", "ours-tokio", "async-nats", "raw"], &|c| bench.ingest(c, 16, n_in));
    run("micro", 16, &["ours-blocking", "ours-tokio", "async-nats"], &|c| (bench.micro(c, n_rr * 4), 0));
    report(&rows);
}

/// Moves every thread of this process and of the server onto `cpus` (taskset's list syntax). False when
/// `taskset` is missing or refuses, and the pinned rows are then left out.
fn pin(server: Option<u32>, cpus: &str) -> bool {
    let ours = std::process::id();
    [Some(ours), server].into_iter().flatten().all(|pid| {
        Command::new("taskset")
            .args(["-a", "-cp", cpus, &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn report(rows: &[Row]) {
    let base = |w: &str, s: usize, pinned: bool| {
        rows.iter().find(|r| r.workload == w && r.size == s && r.pinned == pinned && r.client == "async-nats")
    };
    let mut json = vec![];
    println!(
        "{:<8} {:>6} {:<14} {:>13} {:>9} {:>9} {:>10} {:>8} {:>7}",
        "workload", "size", "client", "msgs/s", "p50 us", "p99 us", "cpu ns/msg", "ratio", "dropped"
    );
    let label = |r: &Row| if r.pinned { format!("{} 1cpu", r.workload) } else { r.workload.to_owned() };
    for r in rows {
        // The raw ceiling is compared with async-nats publishing the same size (or ingesting).
        let against =
            if r.workload == "raw" { base("publish", r.size, false) } else { base(r.workload, r.size, r.pinned) };
        let ratio = against.and_then(|b| {
            if r.workload == "reqrep" {
                Some(r.cell.p50_us? / b.cell.p50_us?)
            } else {
                Some(r.cell.msgs_per_s? / b.cell.msgs_per_s?)
            }
        });
        let f = |v: Option<f64>, d: usize| v.map_or("-".to_owned(), |x| format!("{x:.d$}"));
        println!(
            "{:<8} {:>6} {:<14} {:>13} {:>9} {:>9} {:>10} {:>8} {:>7}",
            label(r),
            r.size,
            r.client,
            f(r.cell.msgs_per_s, 0),
            f(r.cell.p50_us, 1),
            f(r.cell.p99_us, 1),
            f(r.cell.cpu_ns_per_msg, 0),
            f(ratio, 2),
            r.dropped
        );
        json.push(serde_json::json!({
            "workload": r.workload, "size": r.size, "client": r.client,
            "msgs_per_s": r.cell.msgs_per_s, "p50_us": r.cell.p50_us, "p99_us": r.cell.p99_us,
            "cpu_ns_per_msg": r.cell.cpu_ns_per_msg, "ratio_vs_async_nats": ratio, "dropped": r.dropped,
            "pinned": r.pinned,
        }));
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("compare.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    println!("\nwrote {}", path.display());
}
