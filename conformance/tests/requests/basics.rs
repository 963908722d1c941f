//! One request, one reply: the reply, a timeout, no responders, headers.

use std::time::{Duration, Instant};

use conformance::TestClient;
use nats_client::Error;
use nats_proto::Headers;
use nats_server_harness::NatsServer;

use crate::common::{connect, echo, options, recv, serve, text};

pub(crate) fn request_gets_the_reply<C: TestClient>() {
    let server = NatsServer::start();
    let service: C = connect(&server);
    let client: C = connect(&server);
    let _svc = echo(&service, "svc.echo", None, "re:");
    service.flush().unwrap();
    let reply = client.request_default("svc.echo", None, "hello".into()).unwrap();
    assert_eq!(text(&reply), "re:hello");
    // The reply came to this client's inbox, not to the service subject.
    let subject = reply.subject().as_str().unwrap().to_owned();
    assert!(subject.starts_with("_INBOX."), "reply subject {subject}");
    // Again, on the same (already set up) inbox subscription.
    assert_eq!(text(&client.request_default("svc.echo", None, "again".into()).unwrap()), "re:again");
}

pub(crate) fn request_times_out_when_nobody_answers<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    // Someone listens (so no 503), but never answers.
    let mut silent = client.subscribe("svc.silent", None).unwrap();
    client.flush().unwrap();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let result = client.request("svc.silent", None, "anyone?".into(), timeout);
    let took = started.elapsed();
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(took >= timeout - Duration::from_millis(10), "timed out early: {took:?}");
    assert!(took < timeout + Duration::from_millis(1500), "timed out late: {took:?}");
    // The request did reach the silent subscriber.
    let req = recv(&mut silent, "the request");
    assert!(req.reply().is_some());
    // A late answer to the abandoned request is dropped, and the client still works.
    req.respond("too late").unwrap();
    let _svc = echo(&client, "svc.live", None, "");
    assert_eq!(text(&client.request_default("svc.live", None, "ok".into()).unwrap()), "ok");
    // The default request timeout applies to a request without one: a silent service is still a timeout.
    let short = C::connect(options(&server.url()).request_timeout(Duration::from_millis(200))).unwrap();
    let started = Instant::now();
    let result = short.request_default("svc.silent", None, "x".into());
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(started.elapsed() >= Duration::from_millis(190), "{:?}", started.elapsed());
}

pub(crate) fn no_responders_fails_fast<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let started = Instant::now();
    let result = client.request("svc.nobody", None, "hello".into(), Duration::from_secs(10));
    assert!(matches!(result, Err(Error::NoResponders)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "no responders took {:?}", started.elapsed());
    // Once more with the default timeout and headers.
    let started = Instant::now();
    let result = client.request_default("svc.nobody", Some(&Headers::new()), "".into());
    assert!(matches!(result, Err(Error::NoResponders)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

pub(crate) fn request_with_headers_both_ways<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let requests = client.subscribe("svc.hdr", None).unwrap();
    let _svc = serve(requests, |msg| {
        let mut back = msg.headers().map(|h| h.to_headers()).unwrap_or_default();
        back.append("Replied-By", "svc").unwrap();
        let _ = msg.respond_with_headers(Some(&back), msg.payload_bytes());
    });
    let mut headers = Headers::new();
    headers.append("Trace-Id", "abc").unwrap();
    headers.append("Trace-Id", "def").unwrap();
    let reply = client.request_default("svc.hdr", Some(&headers), "payload".into()).unwrap();
    assert_eq!(text(&reply), "payload");
    let h = reply.headers().expect("reply headers");
    assert_eq!(h.get_all("Trace-Id").collect::<Vec<_>>(), ["abc", "def"]);
    assert_eq!(h.get("Replied-By"), Some("svc"));
    assert!(reply.status().is_none());
}
