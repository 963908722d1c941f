//! Handlers on the blocking client's reader thread, against a real `nats-server`: PING and INFO take no thread
//! of their own, an `inline` endpoint answers on the reader (statistics, a panic answered with a 500,
//! a graceful stop that drains it), and a handler's wait on its own client fails at once instead of hanging.

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use micro::{EndpointConfig, Service, ServiceConfig, StopReason};
use nats_blocking::{Client, ConnectOptions, Error};
use nats_server_harness::NatsServer;

/// The longest any single wait may take.
const WAIT: Duration = Duration::from_secs(5);

fn connect(url: &str) -> Client {
    Client::connect(ConnectOptions::new().server(url).request_timeout(WAIT)).expect("connects")
}

/// The names of this process's threads (as the kernel keeps them: 15 bytes at most).
fn thread_names() -> Vec<String> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task is readable");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

#[test]
fn discovery_verbs_take_no_thread_and_an_inline_endpoint_answers_on_the_reader() {
    let server = NatsServer::start();
    let client = connect(&server.url());
    let service = Service::start(client.clone(), ServiceConfig::new("inliner", "1.0.0")).unwrap();
    let (tx, rx) = mpsc::channel();
    let config = EndpointConfig::new("echo").subject("inline.echo").inline();
    service
        .endpoint(&service.root(), config, move |mut req| {
            tx.send(std::thread::current().name().map(str::to_owned)).unwrap();
            if req.payload() == b"boom" {
                panic!("inline endpoint panicked on purpose");
            }
            let body = req.payload_bytes();
            req.respond(body).unwrap();
        })
        .unwrap();
    // Subscriptions served on threads of their own have threads named after their subjects
    // (`micro-<subject>`): only STATS's three (it may run the user's stats handler, which may wait on the client).
    // (Other tests of this binary may run services meanwhile: only the names are checked.)
    let workers: Vec<_> = thread_names().into_iter().filter(|n| n.starts_with("micro-")).collect();
    assert!(workers.iter().all(|n| n == "micro-$SRV.STAT"), "service threads: {workers:?}");

    let requester = connect(&server.url());
    for i in 0..100 {
        let reply = requester.request("inline.echo", i.to_string()).unwrap();
        assert_eq!(reply.payload(), i.to_string().as_bytes());
    }
    let reply = requester.request("inline.echo", "boom").unwrap();
    assert_eq!(
        reply.headers().and_then(|h| h.get("Nats-Service-Error-Code")).map(str::to_owned),
        Some("500".to_owned())
    );
    assert_eq!(requester.request("inline.echo", "after").unwrap().payload(), b"after", "the endpoint goes on");
    let ping = requester.request("$SRV.PING.inliner", "").unwrap();
    assert!(std::str::from_utf8(ping.payload()).unwrap().contains("\"name\":\"inliner\""));

    let threads: Vec<_> = rx.try_iter().collect();
    assert_eq!(threads.len(), 102);
    assert!(threads.iter().all(|t| t.as_deref() == Some("nats-reader")), "handlers ran on {threads:?}");
    let stats = service.stats();
    assert_eq!(stats.endpoints[0].num_requests, 102);
    assert_eq!(stats.endpoints[0].num_errors, 1);
    assert_eq!(service.stop(WAIT), StopReason::Stopped);
    assert!(requester.request_with_timeout("inline.echo", "x", Duration::from_millis(300)).is_err(), "stopped");
}

#[test]
fn an_inline_handler_that_waits_on_its_own_client_is_refused_at_once() {
    let server = NatsServer::start();
    let client = connect(&server.url());
    let service = Service::start(client.clone(), ServiceConfig::new("waiter", "1.0.0")).unwrap();
    let own = client.clone();
    let (tx, rx) = mpsc::channel();
    let tx = Arc::new(std::sync::Mutex::new(tx));
    service
        .endpoint(&service.root(), EndpointConfig::new("ask").subject("inline.ask").inline(), move |mut req| {
            let started = Instant::now();
            let asked = own.request_with_timeout("elsewhere", "x", Duration::from_secs(30));
            tx.lock().unwrap().send((matches!(asked, Err(Error::WouldDeadlock)), started.elapsed())).unwrap();
            let _ = req.respond("answered anyway");
        })
        .unwrap();
    let requester = connect(&server.url());
    assert_eq!(requester.request("inline.ask", "").unwrap().payload(), b"answered anyway");
    let (refused, took) = rx.recv_timeout(WAIT).unwrap();
    assert!(refused, "the request from the reader thread fails with WouldDeadlock");
    assert!(took < Duration::from_secs(10), "at once, not after its timeout ({took:?})");
    assert_eq!(service.stop(WAIT), StopReason::Stopped);
}

#[test]
fn an_inline_handler_can_stop_its_service_without_waiting_for_itself() {
    let server = NatsServer::start();
    let client = connect(&server.url());
    let service = Service::start(client.clone(), ServiceConfig::new("stopper", "1.0.0")).unwrap();
    let (tx, rx) = mpsc::channel();
    let tx = Arc::new(std::sync::Mutex::new(tx));
    let svc = service.clone();
    let config = EndpointConfig::new("stop").subject("inline.stop").inline();
    let own = Arc::new(std::sync::Mutex::new(None));
    let own_handle = own.clone();
    let handle = service
        .endpoint(&service.root(), config, move |mut req| {
            let endpoint = own_handle.lock().unwrap().expect("the endpoint's handle");
            let removed = svc.remove_endpoint(endpoint, WAIT);
            let started = Instant::now();
            // A timeout far longer than the test: only a stop that does not wait returns in time.
            let reason = svc.stop(Duration::from_secs(3600));
            tx.lock().unwrap().send((removed.is_err(), reason, started.elapsed())).unwrap();
            let _ = req.respond("bye");
        })
        .unwrap();
    *own.lock().unwrap() = Some(handle);
    let requester = connect(&server.url());
    assert_eq!(requester.request("inline.stop", "").unwrap().payload(), b"bye");
    let (remove_refused, reason, took) = rx.recv_timeout(WAIT).expect("stop returned from the handler");
    assert!(remove_refused, "remove_endpoint from the reader thread is refused");
    assert_eq!(reason, StopReason::Timeout);
    assert!(took < WAIT, "{took:?}");
    assert_eq!(service.done(), StopReason::Timeout, "the first outcome is kept");
    assert!(requester.request_with_timeout("inline.stop", "", Duration::from_millis(300)).is_err(), "drained");
}
