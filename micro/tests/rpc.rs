//! FastStream-style RPC on both services against a real server: strings in and out as text, a correlation
//! id carried to the reply (echoed, or the handler's own), `no_reply` endpoints, replies to a permanent
//! `reply_to` subject, and unanswered requests counted without an error.

use std::sync::mpsc;
use std::time::Duration;

use micro::{AsyncService, EndpointConfig, Response, Service, ServiceConfig, ServiceError, StopReason};
use nats_client::CORRELATION_ID;
use nats_proto::Headers;
use nats_server_harness::NatsServer;

fn config() -> ServiceConfig {
    ServiceConfig::new("rpc", "1.0.0")
}

fn correlated(id: &str) -> Headers {
    let mut headers = Headers::new();
    headers.insert(CORRELATION_ID, id).unwrap();
    headers
}

fn greet(name: String) -> Result<String, ServiceError> {
    if name.is_empty() {
        return Err(ServiceError::new(400, "who?"));
    }
    Ok(format!("hello {name}"))
}

/// Drives the `rpc` service (whatever runs it) from a blocking client; `seen` gets what the `note` endpoint
/// (no reply) handled.
fn check(url: &str, seen: &mpsc::Receiver<String>) {
    let client = nats_blocking::connect(url).unwrap();
    // A string in, a string out: text both ways, no JSON quotes.
    let reply = client.request("greet", "foobar").unwrap();
    assert_eq!(reply.payload(), b"hello foobar");
    assert_eq!(client.request("greet", "\"quoted\"").unwrap().payload(), b"hello quoted", "JSON still reads");

    // The correlation id comes back: echoed by a typed endpoint, by an error, by a plain handler, or the
    // handler's own.
    let reply = client.request_with_headers("greet", &correlated("c-1"), "x").unwrap();
    assert_eq!(reply.correlation_id(), Some("c-1"));
    let error = client.request_with_headers("greet", &correlated("c-2"), "").unwrap();
    assert_eq!(
        (error.correlation_id(), error.headers().and_then(|h| h.get(micro::ERROR_CODE_HEADER))),
        (Some("c-2"), Some("400"))
    );
    assert_eq!(client.request_with_headers("plain", &correlated("c-3"), "").unwrap().correlation_id(), Some("c-3"));
    let own = client.request_with_headers("tagged", &correlated("c-4"), "5").unwrap();
    assert_eq!((own.payload(), own.correlation_id()), (&b"10"[..], Some("job-5")));
    assert_eq!(client.request("plain", "").unwrap().correlation_id(), None, "none asked, none sent");

    // No reply: the handler runs, the requester hears nothing.
    let silent = client.request_with_timeout("note", "remember me", Duration::from_millis(300));
    assert!(matches!(silent, Err(nats_client::Error::Timeout)), "{silent:?}");
    assert_eq!(seen.recv_timeout(Duration::from_secs(5)).unwrap(), "remember me");

    // reply_to: the answer goes to a permanent subject someone else listens on.
    let mut results = client.subscribe("results.greetings").unwrap();
    client.flush().unwrap();
    client.publish_with_reply_and_headers("greet", "results.greetings", &correlated("c-5"), "later").unwrap();
    let later = results.next_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((later.payload(), later.correlation_id()), (&b"hello later"[..], Some("c-5")));

    // Nothing of that counts as an error but the one error answer; the silent endpoint counted its request.
    let id = micro::discovery::Discovery::new(client.clone()).ping(Some("rpc"), None).unwrap().remove(0).value.id;
    let stats = micro::discovery::Discovery::new(client).stats(Some("rpc"), Some(&id)).unwrap().remove(0).value;
    let counts: Vec<_> = stats.endpoints.iter().map(|e| (e.name.as_str(), e.num_requests, e.num_errors)).collect();
    assert_eq!(counts, [("greet", 5, 1), ("plain", 2, 0), ("tagged", 1, 0), ("note", 1, 0), ("ignore", 0, 0)]);
}

#[test]
fn rpc_on_the_blocking_service() {
    let server = NatsServer::start();
    let service = Service::start(nats_blocking::connect(&server.url()).unwrap(), config()).unwrap();
    let root = service.root();
    service.typed_endpoint(&root, EndpointConfig::new("greet"), greet).unwrap();
    service.endpoint(&root, EndpointConfig::new("plain"), |mut req| req.respond("ok").unwrap()).unwrap();
    service
        .typed_endpoint_with_headers(&root, EndpointConfig::new("tagged"), |n: u32| {
            Ok(Response::new(n * 2).correlation_id(&format!("job-{n}")).unwrap())
        })
        .unwrap();
    let (tx, seen) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    service
        .endpoint(&root, EndpointConfig::new("note").no_reply(), move |mut req| {
            let text = String::from_utf8_lossy(req.payload()).into_owned();
            req.respond("this is not sent").unwrap();
            tx.lock().unwrap().send(text).unwrap();
        })
        .unwrap();
    // A handler that answers nothing: its requests are not errors.
    service.endpoint(&root, EndpointConfig::new("ignore"), drop).unwrap();
    check(&server.url(), &seen);
    let client = nats_blocking::connect(&server.url()).unwrap();
    assert!(client.request_with_timeout("ignore", "", Duration::from_millis(200)).is_err());
    let stats = service.stats();
    assert_eq!((stats.endpoints[4].num_requests, stats.endpoints[4].num_errors), (1, 0));
    assert_eq!(service.stop(Duration::from_secs(2)), StopReason::Stopped);
}

#[test]
fn rpc_on_the_async_service() {
    let server = NatsServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let client = nats_tokio::connect(&server.url()).await.unwrap();
        let service = AsyncService::start(client, config()).await.unwrap();
        let root = service.root();
        service.typed_endpoint(&root, EndpointConfig::new("greet"), greet).await.unwrap();
        service
            .endpoint(&root, EndpointConfig::new("plain"), |mut req| async move { req.respond("ok").unwrap() })
            .await
            .unwrap();
        service
            .typed_endpoint_with_headers(&root, EndpointConfig::new("tagged"), |n: u32| {
                Ok(Response::new(n * 2).correlation_id(&format!("job-{n}")).unwrap())
            })
            .await
            .unwrap();
        let (tx, seen) = mpsc::channel();
        let tx = std::sync::Arc::new(std::sync::Mutex::new(tx));
        service
            .endpoint(&root, EndpointConfig::new("note").no_reply(), move |mut req| {
                let tx = tx.clone();
                async move {
                    let text = String::from_utf8_lossy(req.payload()).into_owned();
                    req.respond("this is not sent").unwrap();
                    tx.lock().unwrap().send(text).unwrap();
                }
            })
            .await
            .unwrap();
        service.endpoint(&root, EndpointConfig::new("ignore"), |req| async move { drop(req) }).await.unwrap();
        let run = tokio::spawn(service.run());
        let url = server.url();
        tokio::task::spawn_blocking(move || check(&url, &seen)).await.unwrap();
        assert_eq!(service.stop(Duration::from_secs(2)).await, StopReason::Stopped);
        assert_eq!(run.await.unwrap(), StopReason::Stopped);
    });
}

#[test]
fn only_strings_and_bytes_go_out_as_they_are() {
    let server = NatsServer::start();
    let client = nats_blocking::connect(&server.url()).unwrap();
    let service = Service::start(client.clone(), config()).unwrap();
    let root = service.root();
    service
        .typed_endpoint(&root, EndpointConfig::new("value"), |_: String| {
            Ok::<_, ServiceError>(serde_json::Value::String("json".into()))
        })
        .unwrap();
    service
        .typed_endpoint(&root, EndpointConfig::new("bytes"), |_: String| {
            Ok::<_, ServiceError>(bytes::Bytes::from_static(b"\x00raw"))
        })
        .unwrap();
    service.typed_endpoint(&root, EndpointConfig::new("text"), |_: String| Ok::<_, ServiceError>("static")).unwrap();
    assert_eq!(client.request("value", "").unwrap().payload(), b"\"json\"", "a JSON string value stays JSON");
    assert_eq!(client.request("bytes", "").unwrap().payload(), b"\x00raw");
    let text = client.request("text", "").unwrap();
    assert_eq!(text.payload(), b"static");
    assert!(text.headers().is_none(), "no header block when there is nothing to say");
    assert_eq!(service.stop(Duration::from_secs(2)), StopReason::Stopped);
}
