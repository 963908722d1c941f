//! A burst of requests to a quick endpoint, against a real `nats-server`: every request gets its own reply, and
//! the replies leave in batches, in far fewer writes than there are requests (blocking and async services);
//! a handler that answers and then waits on its client does not wait on its own held answer.
//!
//! Writes are counted from the process's write system calls (`/proc/self/io`), so these tests have a binary
//! of their own and run one after the other: nothing else in the process writes meanwhile.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use micro::{AsyncService, EndpointConfig, Service, ServiceConfig};
use nats_blocking::{Client, ConnectOptions};
use nats_server_harness::{Gate, NatsServer};

/// Requests in the burst.
const N: usize = 400;
/// The longest any wait may take.
const WAIT: Duration = Duration::from_secs(10);

/// Only one test at a time: the write count is the whole process's.
static SERIAL: Mutex<()> = Mutex::new(());

fn connect(url: &str) -> Client {
    Client::connect(ConnectOptions::new().server(url)).expect("connects")
}

/// Write system calls made by this process so far (`writev` and `sendmsg` included).
fn write_calls() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").expect("/proc/self/io is readable");
    let line = io.lines().find_map(|l| l.strip_prefix("syscw:")).expect("a syscw line");
    line.trim().parse().expect("a count")
}

/// Sends the burst while the service holds its first request at `gate`, waits until the service's client has
/// received all of it (`received` reads its count), opens the gate, and checks every reply. Returns the writes
/// made while answering.
fn burst(requester: &Client, received: impl Fn() -> u64, gate: &Gate) -> u64 {
    let mut replies = requester.subscribe("burst.replies.*").unwrap();
    for i in 0..N {
        requester.publish_with_reply("burst.echo", &format!("burst.replies.{i}"), i.to_string()).unwrap();
    }
    requester.flush().unwrap();
    let deadline = Instant::now() + WAIT;
    while received() < N as u64 {
        assert!(Instant::now() < deadline, "the service's client receives the burst");
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = write_calls();
    gate.open();
    let mut seen = vec![false; N];
    for _ in 0..N {
        let reply = replies.next_timeout(WAIT).expect("every request is answered");
        let i: usize = reply.subject().as_str().unwrap().rsplit('.').next().unwrap().parse().unwrap();
        assert_eq!(reply.payload(), i.to_string().as_bytes(), "each reply answers its own request");
        assert!(!std::mem::replace(&mut seen[i], true), "one reply per request");
    }
    write_calls() - before
}

#[test]
fn a_burst_to_a_quick_blocking_endpoint_is_answered_in_batches() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = NatsServer::start();
    let (service_client, requester) = (connect(&server.url()), connect(&server.url()));
    let gate = Arc::new(Gate::default());
    let service = Service::start(service_client.clone(), ServiceConfig::new("burst", "1.0.0")).unwrap();
    let first = Arc::new(std::sync::Once::new());
    let (g, f) = (gate.clone(), first.clone());
    service
        .endpoint(&service.root(), EndpointConfig::new("echo").subject("burst.echo"), move |mut req| {
            f.call_once(|| assert!(g.wait_for(WAIT), "the gate opens"));
            let body = req.payload_bytes();
            req.respond(body).unwrap();
        })
        .unwrap();
    service_client.flush().unwrap();
    let writes = burst(&requester, || service_client.statistics().in_msgs, &gate);
    assert!(writes < (N / 2) as u64, "{writes} writes for {N} replies");
    assert_eq!(service.stats().endpoints[0].num_requests, N as u64);
    assert_eq!(service.stats().endpoints[0].num_errors, 0);
}

#[test]
fn a_burst_to_a_quick_async_endpoint_is_answered_in_batches() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = NatsServer::start();
    let requester = connect(&server.url());
    // A runtime on one thread that runs only inside `block_on`: between two calls the service stands still,
    // which is what lets the burst queue up.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (service_client, service) = rt.block_on(async {
        let client = nats_tokio::connect(&server.url()).await.unwrap();
        let service = AsyncService::start(client.clone(), ServiceConfig::new("burst", "1.0.0")).await.unwrap();
        let config = EndpointConfig::new("echo").subject("burst.echo");
        service
            .endpoint(&service.root(), config, |mut req| async move {
                let body = req.payload_bytes();
                req.respond(body).unwrap();
            })
            .await
            .unwrap();
        client.flush().await.unwrap();
        (client, service)
    });
    let run = service.run();
    let gate = Arc::new(Gate::default());
    let runner = std::thread::spawn({
        let gate = gate.clone();
        move || {
            assert!(gate.wait_for(WAIT), "the gate opens");
            rt.block_on(run)
        }
    });
    // The service's client reads only once the runtime runs: the burst waits in its socket meanwhile.
    let writes = burst(&requester, || N as u64, &gate);
    assert!(writes < (N / 2) as u64, "{writes} writes for {N} replies");
    drop(service_client);
    assert_eq!(service.stats().endpoints[0].num_requests, N as u64);
    assert_eq!(service.stats().endpoints[0].num_errors, 0);
    assert_eq!(smol::block_on(service.stop(WAIT)), micro::StopReason::Stopped);
    assert_eq!(runner.join().unwrap(), micro::StopReason::Stopped);
}

#[test]
fn a_handler_that_answers_then_waits_on_its_client_does_not_wait_on_its_own_answer() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = NatsServer::start();
    let (service_client, requester) = (connect(&server.url()), connect(&server.url()));
    const K: usize = 20;
    // Each handler answers, then waits for the requester's word that the answer arrived: held until the
    // handler returned, the answer would never arrive in time.
    let go = Arc::new(Mutex::new(service_client.subscribe("burst.go").unwrap()));
    let late = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let gate = Arc::new(Gate::default());
    let service = Service::start(service_client.clone(), ServiceConfig::new("burst", "1.0.0")).unwrap();
    let first = Arc::new(std::sync::Once::new());
    let (g, f, go2, late2) = (gate.clone(), first.clone(), go.clone(), late.clone());
    service
        .endpoint(&service.root(), EndpointConfig::new("echo").subject("burst.echo"), move |mut req| {
            f.call_once(|| assert!(g.wait_for(WAIT), "the gate opens"));
            let body = req.payload_bytes();
            req.respond(body.clone()).unwrap();
            match go2.lock().unwrap().next_timeout(Duration::from_secs(2)) {
                Ok(word) if word.payload() == &body[..] => {}
                _ => {
                    late2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
        .unwrap();
    service_client.flush().unwrap();
    let mut replies = requester.subscribe("burst.replies.*").unwrap();
    for i in 0..K {
        requester.publish_with_reply("burst.echo", &format!("burst.replies.{i}"), i.to_string()).unwrap();
    }
    requester.flush().unwrap();
    let deadline = Instant::now() + WAIT;
    while service_client.statistics().in_msgs < K as u64 {
        assert!(Instant::now() < deadline, "the service's client receives the burst");
        std::thread::sleep(Duration::from_millis(5));
    }
    gate.open();
    for _ in 0..K {
        let reply = replies.next_timeout(WAIT).expect("every request is answered");
        requester.publish("burst.go", reply.payload_bytes()).unwrap();
        requester.flush().unwrap();
    }
    assert_eq!(late.load(std::sync::atomic::Ordering::Relaxed), 0, "a handler waited on its own answer");
}
