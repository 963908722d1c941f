//! Hosting services against a real server: a stop (from a handle, then from a real SIGTERM to this process)
//! drains every hosted service, a request in flight is still answered, and services whose connection closes
//! end the host by themselves. One test, in its own binary: a signal reaches every host of the process.
#![cfg(unix)]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use micro::host::{Ended, Host};
use micro::{EndpointConfig, Service, ServiceConfig, StopReason};
use nats_server_harness::NatsServer;
use signal_hook::consts::SIGTERM;

fn slow_echo(url: &str, name: &str, entered: mpsc::Sender<()>) -> Service<nats_blocking::Client> {
    let service = Service::start(nats_blocking::connect(url).unwrap(), ServiceConfig::new(name, "1.0.0")).unwrap();
    let entered = std::sync::Mutex::new(entered);
    service
        .endpoint(&service.root(), EndpointConfig::new("slow").subject(&format!("{name}.slow")), move |mut req| {
            let _ = entered.lock().unwrap().send(());
            thread::sleep(Duration::from_millis(300));
            let body = req.payload_bytes();
            req.respond(body).unwrap();
        })
        .unwrap();
    service
}

#[test]
fn hosted_services_stop_gracefully_on_a_handle_on_sigterm_and_by_themselves() {
    let server = NatsServer::start();
    let url = server.url();
    let client = nats_blocking::connect(&url).unwrap();

    // 1. Stopped from a handle while a request is in flight: it is answered, both services drain.
    let mut host = Host::new().unwrap().stop_timeout(Duration::from_secs(5));
    let (entered, inside) = mpsc::channel();
    host.add(slow_echo(&url, "alpha", entered.clone()));
    host.add(slow_echo(&url, "beta", entered));
    let handle = host.handle();
    let requester = {
        let client = client.clone();
        thread::spawn(move || client.request_with_timeout("alpha.slow", "in flight", Duration::from_secs(5)))
    };
    inside.recv_timeout(Duration::from_secs(5)).expect("the handler has the request");
    handle.stop();
    let hosted = host.run();
    assert_eq!(hosted.cause, Ended::Handle);
    assert_eq!(hosted.stopped, [("alpha".to_owned(), StopReason::Stopped), ("beta".to_owned(), StopReason::Stopped)]);
    assert!(hosted.is_clean());
    assert_eq!(requester.join().unwrap().expect("answered during the stop").payload(), b"in flight");
    assert!(hosted.to_string().contains("alpha stopped when asked"), "{hosted}");

    // 2. A real SIGTERM, raised in this process: caught, the service stopped, the process alive.
    let mut host = Host::new().unwrap();
    let (entered, _inside) = mpsc::channel();
    host.add(slow_echo(&url, "gamma", entered));
    let killer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        signal_hook::low_level::raise(SIGTERM)
    });
    let hosted = host.run();
    killer.join().unwrap().expect("SIGTERM raised");
    assert_eq!(hosted.cause, Ended::Signal(SIGTERM));
    assert_eq!(hosted.stopped, [("gamma".to_owned(), StopReason::Stopped)]);
    assert!(hosted.to_string().contains("on SIGTERM"), "{hosted}");
    // Nobody answers for it any more.
    assert!(client.request_with_timeout("gamma.slow", "", Duration::from_millis(300)).is_err());

    // 3. The services' connection closes: the host ends by itself.
    let mut host = Host::new().unwrap();
    let own = nats_blocking::connect(&url).unwrap();
    let service = Service::start(own.clone(), ServiceConfig::new("delta", "1.0.0")).unwrap();
    host.add(service);
    let closer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        own.close();
    });
    let hosted = host.run();
    closer.join().unwrap();
    assert_eq!(hosted.cause, Ended::ByThemselves);
    assert_eq!(hosted.stopped, [("delta".to_owned(), StopReason::ConnectionClosed)]);
    assert!(hosted.to_string().contains("delta stopped by itself"), "{hosted}");
    assert!(!hosted.is_clean());
}
