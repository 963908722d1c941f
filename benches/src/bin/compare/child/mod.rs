//! The child: one process runs one workload once with one client, measures it and prints one JSON line.
//!
//! A process per run keeps the figures apart: RSS and CPU are this client's alone, and no thread, connection or
//! subscription of an earlier run is still alive.

mod ingest;
mod publish;
mod raw;
mod rpc;

use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nats_server_harness::Gate;

use crate::proc;
use crate::quiet::{self, CpuMeter, Snapshot};
use crate::spec::{ChildSpec, Client, RunResult, Workload};

pub(crate) use raw::serve_fake_ingest;

/// How long a receiver waits for the next message before it takes the rest as lost. It is taken off the measured
/// time when it expires, so a run with drops is not charged for the wait.
const SILENCE: Duration = Duration::from_secs(5);
/// The subject of the pubsub rows.
const PUBSUB_SUBJECT: &str = "bench.ps";

/// Runs the spec and prints its result as one line of JSON on stdout (nothing else goes to stdout).
pub(crate) fn main(spec: &str) -> Result<(), String> {
    let spec = ChildSpec::from_json(spec)?;
    if spec.pinned {
        // Before any thread exists, so that every thread the client starts inherits CPU 0.
        pin_self_to_cpu0()?;
    }
    let mut result = dispatch(&spec)?;
    result.peak_rss_kib = proc::peak_rss_kib();
    println!("{}", result.to_value());
    Ok(())
}

/// The workload code for the spec's (workload, client).
fn dispatch(spec: &ChildSpec) -> Result<RunResult, String> {
    use Workload::*;
    match (spec.workload, spec.client) {
        (Publish | RawPublish | PublishRss, Client::Raw) => Ok(raw::publish(spec)),
        (Publish | PublishRss, client) => Ok(publish::publish(spec, client)),
        // The throughput row holds every message (no drops while the reader catches up); the memory row keeps
        // each client's defaults, because what they do with a fast publisher is the point.
        (Pubsub, Client::Raw) => Ok(raw::pubsub(spec)),
        (Pubsub, client) => Ok(publish::pubsub(spec, client, Some(spec.messages))),
        (PubsubRss, client) if client != Client::Raw => Ok(publish::pubsub(spec, client, None)),
        (Reqrep, client) if client != Client::Raw => Ok(rpc::reqrep(spec, client)),
        (Micro, client) if client != Client::NatsSync => Ok(rpc::micro(spec, client, false)),
        (MicroInline, Client::OursBlocking) => Ok(rpc::micro(spec, Client::OursBlocking, true)),
        (Ingest, Client::Raw) => Ok(raw::ingest(spec)),
        (Ingest, client @ (Client::OursBlocking | Client::OursTokio | Client::AsyncNats)) => {
            Ok(ingest::ingest(spec, client))
        }
        (workload, client) => Err(format!("no {} workload for {}", workload.name(), client.name())),
    }
}

/// Moves this process onto CPU 0 with `taskset -a -cp 0 <pid>`.
fn pin_self_to_cpu0() -> Result<(), String> {
    let status = Command::new("taskset")
        .args(["-a", "-cp", "0", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    status.success().then_some(()).ok_or_else(|| format!("taskset failed: {status}"))
}

/// A tokio runtime as an application would have one: multi-threaded, two workers (one per core here).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

/// Answers a request of one of our clients with its own payload. The one place that reads a field of our
/// `Message`, so that a change of its API is fixed here.
fn echo(msg: &nats_blocking::Message) {
    let _ = msg.respond(msg.payload_bytes());
}

/// A blocking client of ours whose subscriptions hold `pending` messages, or the defaults with `None`.
fn ours_blocking(url: &str, pending: Option<usize>) -> nats_blocking::Client {
    let mut options = nats_blocking::ConnectOptions::new().server(url);
    if let Some(messages) = pending {
        options = options.pending_limits(nats_blocking::PendingLimits { messages, bytes: usize::MAX / 2 });
    }
    nats_blocking::Client::connect(options).expect("connect ours-blocking")
}

/// Our tokio client, as [`ours_blocking`].
async fn ours_tokio(url: &str, pending: Option<usize>) -> nats_tokio::Client {
    let mut options = nats_tokio::ConnectOptions::new().server(url);
    if let Some(messages) = pending {
        options = options.pending_limits(nats_tokio::PendingLimits { messages, bytes: usize::MAX / 2 });
    }
    nats_tokio::Client::connect(options).await.expect("connect ours-tokio")
}

/// async-nats whose subscriptions hold `pending` messages (its channel capacity), or the defaults with `None`.
async fn async_nats_client(url: &str, pending: Option<usize>) -> async_nats::Client {
    let mut options = async_nats::ConnectOptions::new();
    if let Some(messages) = pending {
        options = options.subscription_capacity(messages.max(1024));
    }
    options.connect(url).await.expect("connect async-nats")
}

/// The deprecated synchronous client (its subscriptions are unbounded: it has no pending limit to set).
#[allow(deprecated)]
fn nats_sync(url: &str) -> nats::Connection {
    nats::connect(url).expect("connect nats-sync")
}

/// Takes up to `n` messages from a stream, giving up after [`SILENCE`]: how many came, and whether it gave up.
///
/// Each message is awaited as `tokio::time::timeout(SILENCE, sub.next())` would (the stream polled first, with
/// the task's own waker, then the deadline), but the timer is armed only when the stream has nothing, not
/// created for every message: a client's CPU per message is then its own, not the cost of a timer per message.
async fn receive<S: futures::Stream + Unpin>(mut sub: S, n: usize) -> (usize, bool) {
    use futures::StreamExt;
    use std::future::Future;
    use std::task::Poll;
    let deadline = tokio::time::sleep(SILENCE);
    tokio::pin!(deadline);
    let mut got = 0;
    while got < n {
        let mut armed = false;
        let next = std::future::poll_fn(|cx| {
            if let Poll::Ready(next) = sub.poll_next_unpin(cx) {
                return Poll::Ready(next.is_some());
            }
            if !armed {
                armed = true;
                deadline.as_mut().reset(tokio::time::Instant::now() + SILENCE);
            }
            deadline.as_mut().poll(cx).map(|()| false)
        });
        if !next.await {
            return (got, true);
        }
        got += 1;
    }
    (got, false)
}

/// Closes the window of a run that received `got` of `n` messages, less the silence waited out at the end if
/// the receiver gave up (a run with drops is not charged for waiting for messages that never come).
fn received(w: Window, n: usize, (got, gave_up): (usize, bool)) -> RunResult {
    let idle = if gave_up { SILENCE } else { Duration::ZERO };
    w.close(got, idle).result(n.saturating_sub(got))
}

/// The measured window of a run: wall time, the child's CPU time, and the CPU of processes other than ours.
pub(crate) struct Window {
    /// Wall clock at the start.
    start: Instant,
    /// This process's CPU time at the start.
    cpu: Option<Duration>,
    /// Reads the others' CPU.
    meter: CpuMeter,
    /// The others' reading at the start.
    others: Option<Snapshot>,
    /// The shortest window others are read over.
    min_others: Duration,
    /// Holds worker threads until the window is closed.
    gate: Arc<Gate>,
    /// Worker threads started in the window.
    workers: Vec<JoinHandle<()>>,
}

/// What a window measured.
pub(crate) struct Measured {
    /// Messages counted.
    messages: u64,
    /// Wall time, less any silence waited out at the end.
    elapsed: Duration,
    /// This process's CPU time over the window.
    cpu: Option<Duration>,
    /// Others' CPU in cores, and over how many seconds it was read.
    others: Option<(f64, f64)>,
}

impl Window {
    /// Starts measuring; `spec.exclude` are our other processes.
    pub(crate) fn open(spec: &ChildSpec) -> Window {
        let meter = CpuMeter::new(&spec.exclude);
        let others = meter.snapshot();
        Window {
            start: Instant::now(),
            cpu: proc::self_cpu_time(),
            meter,
            others,
            min_others: Duration::from_secs_f64(spec.min_window_s),
            gate: Arc::default(),
            workers: Vec::new(),
        }
    }

    /// Runs `work` on a new thread that stays alive until the window is closed: its CPU time is summed from
    /// /proc/self/task, where an exited thread no longer appears.
    pub(crate) fn spawn<T: Send + 'static>(&mut self, work: impl FnOnce() -> T + Send + 'static) -> Worker<T> {
        let (tx, rx) = mpsc::channel();
        let gate = Arc::clone(&self.gate);
        self.workers.push(std::thread::spawn(move || {
            let _ = tx.send(work());
            gate.wait();
        }));
        Worker(rx)
    }

    /// Ends the window over `messages`, `idle` of which was waiting out a silence (not counted as time).
    ///
    /// The others' CPU is read over at least the minimum window even when the run was shorter: /proc/stat counts
    /// in 10 ms ticks, which over a 20 ms run would be all noise. The extra time is spent asleep with the clients
    /// still connected, so the servers' processes are still there to be counted as ours.
    pub(crate) fn close(self, messages: usize, idle: Duration) -> Measured {
        let elapsed = self.start.elapsed().saturating_sub(idle);
        let cpu = proc::self_cpu_time().zip(self.cpu).map(|(b, a)| b.saturating_sub(a));
        let others = self.others.as_ref().and_then(|before| {
            let short = self.min_others.saturating_sub(self.start.elapsed());
            std::thread::sleep(short);
            Some(quiet::others_between(before, &self.meter.snapshot()?))
        });
        self.gate.open();
        for w in self.workers {
            let _ = w.join();
        }
        Measured { messages: messages as u64, elapsed, cpu, others }
    }
}

impl Measured {
    /// The result of a run that lost `dropped` messages.
    pub(crate) fn result(self, dropped: usize) -> RunResult {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        RunResult {
            messages: self.messages,
            elapsed_s: secs,
            msgs_per_s: self.messages as f64 / secs,
            cpu_ns_per_msg: self.cpu.filter(|_| self.messages > 0).map(|c| c.as_nanos() as f64 / self.messages as f64),
            dropped: dropped as u64,
            others_cores: self.others.map(|(cores, _)| cores),
            others_window_s: self.others.map_or(0.0, |(_, secs)| secs),
            ..RunResult::default()
        }
    }
}

/// The result of a thread started with [`Window::spawn`].
pub(crate) struct Worker<T>(mpsc::Receiver<T>);

impl<T> Worker<T> {
    /// Waits for the thread's result (the thread itself lingers until the window closes).
    pub(crate) fn wait(self) -> T {
        self.0.recv().expect("a worker thread failed")
    }
}

/// p50 and p99 of round-trip samples, in microseconds (the rank rounded down, as the old tool had it).
fn percentiles(mut samples: Vec<Duration>) -> (Option<f64>, Option<f64>) {
    if samples.is_empty() {
        return (None, None);
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_nanos() as f64 / 1000.0;
    (Some(at(0.5)), Some(at(0.99)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_round_the_rank_down() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        assert_eq!(percentiles(samples), (Some(50.0), Some(99.0)));
        assert_eq!(percentiles(vec![]), (None, None));
    }
}
