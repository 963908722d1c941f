//! One service definition, run on the blocking client, on tokio and under smol, each checked through the
//! discovery subjects and its endpoints against a real server.

use std::time::Duration;

use micro::wire::{InfoResponse, PingResponse, StatsResponse};
use micro::{AsyncService, EndpointConfig, QueueGroup, Service, ServiceConfig, ServiceError, StopReason};
use nats_server_harness::NatsServer;

fn config() -> ServiceConfig {
    ServiceConfig::new("calc", "1.2.3").description("arithmetic").metadata("team", "core")
}

fn sum(numbers: Vec<f64>) -> Result<f64, ServiceError> {
    if numbers.is_empty() {
        return Err(ServiceError::new(400, "nothing to add"));
    }
    Ok(numbers.iter().sum())
}

/// Checks a running `calc` service through a separate blocking client.
fn check_service(url: &str, id: &str) {
    let client = nats_blocking::connect(url).unwrap();
    let ping = client
        .request_many("$SRV.PING.calc", "", Duration::from_secs(2), Some(Duration::from_millis(200)), None)
        .unwrap()
        .map(|m| serde_json::from_slice::<PingResponse>(m.payload()).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(ping.len(), 1, "{ping:?}");
    assert_eq!((ping[0].name.as_str(), ping[0].id.as_str()), ("calc", id));

    let info = client.request(&format!("$SRV.INFO.calc.{id}"), "{}").unwrap();
    let info: InfoResponse = serde_json::from_slice(info.payload()).unwrap();
    let subjects: Vec<_> = info.endpoints.iter().map(|e| (e.subject.as_str(), e.queue_group.as_str())).collect();
    assert_eq!(subjects, [("math.sum", "q"), ("math.echo", ""), ("math.boom", "q")]);

    let reply = client.request("math.sum", "[1, 2, 3.5]").unwrap();
    assert_eq!(reply.payload(), b"6.5");
    let reply = client.request("math.sum", "[]").unwrap();
    let err = ServiceError::from_headers(reply.headers().unwrap()).unwrap();
    assert_eq!(err, ServiceError::new(400, "nothing to add"));
    let reply = client.request("math.sum", "not json").unwrap();
    assert_eq!(ServiceError::from_headers(reply.headers().unwrap()).unwrap().code, 400);
    let reply = client.request("math.echo", "hello").unwrap();
    assert_eq!(reply.payload(), b"hello");
    let reply = client.request("math.boom", "").unwrap();
    assert_eq!(ServiceError::from_headers(reply.headers().unwrap()).unwrap().code, 500);
    // The service survived the panic.
    assert_eq!(client.request("math.echo", "again").unwrap().payload(), b"again");

    let stats = client.request(&format!("$SRV.STATS.calc.{id}"), "").unwrap();
    let stats: StatsResponse = serde_json::from_slice(stats.payload()).unwrap();
    let counts: Vec<_> = stats.endpoints.iter().map(|e| (e.num_requests, e.num_errors)).collect();
    assert_eq!(counts, [(3, 2), (2, 0), (1, 1)]);
    assert_eq!(stats.endpoints[2].last_error, "500:handler panicked");
    // A verb without a reply subject is ignored, never a crash.
    client.publish("$SRV.PING", "").unwrap();
    client.flush().unwrap();
    assert!(client.request(&format!("$SRV.PING.calc.{id}"), "").is_ok());
}

#[test]
fn blocking_service() {
    let server = NatsServer::start();
    let client = nats_blocking::connect(&server.url()).unwrap();
    let service = Service::start(client, config()).unwrap();
    let math = service.root().group("math", QueueGroup::Inherit).unwrap();
    service.typed_endpoint(&math, EndpointConfig::new("sum"), sum).unwrap();
    let echo = EndpointConfig::new("echo").queue_group(QueueGroup::Disabled);
    service
        .endpoint(&math, echo, |mut req| {
            let body = req.payload_bytes();
            req.respond(body).unwrap();
        })
        .unwrap();
    service.endpoint(&math, EndpointConfig::new("boom"), |_req| panic!("boom")).unwrap();
    check_service(&server.url(), &service.id());
    assert_eq!(service.stop(Duration::from_secs(2)), StopReason::Stopped);
    assert_eq!(service.stop(Duration::from_secs(2)), StopReason::Stopped, "idempotent");
    assert_eq!(service.done(), StopReason::Stopped);
}

async fn async_service<T: nats_client::seam::AsyncClient>(client: T, url: String) -> AsyncService<T> {
    let service = AsyncService::start(client, config()).await.unwrap();
    let math = service.root().group("math", QueueGroup::Inherit).unwrap();
    service.typed_endpoint(&math, EndpointConfig::new("sum"), sum).await.unwrap();
    let echo = EndpointConfig::new("echo").queue_group(QueueGroup::Disabled);
    service
        .endpoint(&math, echo, |mut req| async move {
            let body = req.payload_bytes();
            req.respond(body).unwrap();
        })
        .await
        .unwrap();
    service
        .endpoint(&math, EndpointConfig::new("boom"), |req| async move {
            // The request lives in the future, as in any real handler, when the panic comes.
            let _held = req;
            panic!("boom");
        })
        .await
        .unwrap();
    let _ = url;
    service
}

#[test]
fn async_service_on_tokio() {
    let server = NatsServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let client = nats_tokio::connect(&server.url()).await.unwrap();
        let service = async_service(client, server.url()).await;
        let run = tokio::spawn(service.run());
        let (url, id) = (server.url(), service.id());
        tokio::task::spawn_blocking(move || check_service(&url, &id)).await.unwrap();
        assert_eq!(service.stop(Duration::from_secs(2)).await, StopReason::Stopped);
        assert_eq!(run.await.unwrap(), StopReason::Stopped);
    });
}

#[test]
fn async_service_under_smol() {
    let server = NatsServer::start();
    smol::block_on(async {
        let options = nats_tokio::ConnectOptions::new().server(&server.url());
        let client = nats_tokio::connect_smol(options).await.unwrap();
        let service = async_service(client, server.url()).await;
        let run = smol::spawn(service.run());
        let (url, id) = (server.url(), service.id());
        smol::unblock(move || check_service(&url, &id)).await;
        assert_eq!(service.stop(Duration::from_secs(2)).await, StopReason::Stopped);
        assert_eq!(run.await, StopReason::Stopped);
    });
}

#[test]
fn typed_handlers_can_answer_with_headers() {
    let server = NatsServer::start();
    let client = nats_blocking::connect(&server.url()).unwrap();
    let service = Service::start(client.clone(), config()).unwrap();
    let root = service.root();
    service
        .typed_endpoint_with_headers(&root, EndpointConfig::new("double"), |n: i64| {
            Ok(micro::Response::new(n * 2).header("X-Doubled", "yes").unwrap())
        })
        .unwrap();
    let reply = client.request("double", "21").unwrap();
    assert_eq!(reply.payload(), b"42");
    assert_eq!(reply.headers().and_then(|h| h.get("X-Doubled")), Some("yes"));
    let bad = client.request("double", "\"x\"").unwrap();
    assert_eq!(ServiceError::from_headers(bad.headers().unwrap()).map(|e| e.code), Some(400));
    assert_eq!(service.stop(Duration::from_secs(2)), StopReason::Stopped);
}

#[test]
fn async_discovery_under_smol() {
    let server = NatsServer::start();
    smol::block_on(async {
        let options = nats_tokio::ConnectOptions::new().server(&server.url());
        let client = nats_tokio::connect_smol(options).await.unwrap();
        let service = async_service(client.clone(), server.url()).await;
        let run = smol::spawn(service.run());
        let collect = micro::discovery::Collect { timeout: Duration::from_secs(2), ..Default::default() };
        let discovery = micro::discovery::AsyncDiscovery::new(client).collect(collect);
        let pings = discovery.ping(Some("calc"), None).await.unwrap();
        assert_eq!(pings.len(), 1);
        assert_eq!(pings[0].value.id, service.id());
        let infos = discovery.info(None, None).await.unwrap();
        assert_eq!(infos[0].value.endpoints.len(), 3);
        let sum = discovery.request("calc", "sum", "[2, 3]").await.unwrap();
        assert_eq!(sum.payload(), b"5.0");
        let err = discovery.request("calc", "sum", "[]").await.unwrap_err();
        assert!(matches!(err, micro::discovery::DiscoveryError::Service(ref e) if e.code == 400), "{err}");
        let stats = discovery.stats(Some("calc"), Some(&service.id())).await.unwrap();
        assert_eq!(stats[0].value.endpoints[0].num_requests, 2);
        assert_eq!(service.stop(Duration::from_secs(2)).await, StopReason::Stopped);
        assert_eq!(run.await, StopReason::Stopped);
    });
}
