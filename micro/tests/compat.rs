//! The compatibility-suite runner, driven by a stand-in for the official tester with the configuration the
//! suite sends: two endpoints sharing `demo.default` in different queue groups, groups with and without a
//! queue group, a `faulty` endpoint, a stats handler.

use std::time::Duration;

use micro::compat::run_service_suite;
use micro::discovery::{Collect, Discovery};
use micro::ServiceError;
use nats_server_harness::NatsServer;

const SETUP: &str = r#"{
  "suite": "service", "test": "core", "command": "setup",
  "config": {
    "name": "demo", "version": "1.0.0", "description": "demo service", "metadata": {"workload": "cpu"},
    "groups": [{"name": "g1"}, {"name": "g2", "queue_group": "group-queue"}],
    "endpoints": [
      {"name": "demo-default-queue", "subject": "demo.default", "metadata": {"key": "value"}},
      {"name": "demo-custom-queue", "subject": "demo.default", "queue_group": "endpoint-group"},
      {"name": "g1-parent-queue", "subject": "parent.queue", "group": "g1"},
      {"name": "g1-custom-queue", "subject": "custom.queue", "queue_group": "endpoint-group", "group": "g1"},
      {"name": "g2-parent-queue", "subject": "parent.queue", "group": "g2"},
      {"name": "g2-custom-queue", "subject": "custom.queue", "queue_group": "endpoint-group", "group": "g2"},
      {"name": "faulty", "subject": "faulty"}
    ]
  }
}"#;

#[test]
fn the_runner_serves_the_core_suite() {
    let server = NatsServer::start();
    let runner_client = nats_blocking::connect(&server.url()).unwrap();
    let runner = std::thread::spawn(move || run_service_suite(runner_client, Duration::from_secs(10)));
    let tester = nats_blocking::connect(&server.url()).unwrap();
    // Wait until the runner listens.
    let setup = (0..100)
        .find_map(|_| {
            match tester.request_with_timeout("tests.service.core.setup.command", SETUP, Duration::from_secs(1)) {
                Ok(reply) => Some(reply),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    None
                }
            }
        })
        .expect("the runner acknowledges the setup");
    assert!(setup.payload().is_empty());

    // Two endpoints share demo.default in different queue groups: one request, two echoes.
    let echoes: Vec<_> = tester
        .request_many("demo.default", "hi", Duration::from_secs(2), Some(Duration::from_millis(300)), None)
        .unwrap()
        .collect();
    assert_eq!(echoes.len(), 2);
    assert!(echoes.iter().all(|m| m.payload() == b"hi"));
    for subject in ["g1.parent.queue", "g1.custom.queue", "g2.parent.queue", "g2.custom.queue"] {
        assert_eq!(tester.request(subject, subject).unwrap().payload(), subject.as_bytes());
    }
    let faulty = tester.request("faulty", "x").unwrap();
    assert_eq!(ServiceError::from_headers(faulty.headers().unwrap()), Some(ServiceError::new(500, "handler error")));

    let discovery =
        Discovery::new(tester.clone()).collect(Collect { timeout: Duration::from_secs(2), ..Collect::default() });
    let info = discovery.info(Some("demo"), None).unwrap().remove(0).value;
    assert_eq!(
        (info.description.as_str(), info.metadata.get("workload").map(String::as_str)),
        ("demo service", Some("cpu"))
    );
    let table: Vec<_> =
        info.endpoints.iter().map(|e| (e.name.as_str(), e.subject.as_str(), e.queue_group.as_str())).collect();
    assert_eq!(
        table,
        [
            ("demo-default-queue", "demo.default", "q"),
            ("demo-custom-queue", "demo.default", "endpoint-group"),
            ("g1-parent-queue", "g1.parent.queue", "q"),
            ("g1-custom-queue", "g1.custom.queue", "endpoint-group"),
            ("g2-parent-queue", "g2.parent.queue", "group-queue"),
            ("g2-custom-queue", "g2.custom.queue", "endpoint-group"),
            ("faulty", "faulty", "q"),
        ]
    );
    assert_eq!(info.endpoints[0].metadata.get("key").map(String::as_str), Some("value"));
    let stats = discovery.stats(Some("demo"), Some(&info.id)).unwrap().remove(0).value;
    for e in &stats.endpoints {
        assert_eq!(e.data, Some(serde_json::json!({ "endpoint": e.name })), "{}", e.name);
    }
    let faulty_stats = stats.endpoints.iter().find(|e| e.name == "faulty").unwrap();
    assert_eq!(
        (faulty_stats.num_requests, faulty_stats.num_errors, faulty_stats.last_error.as_str()),
        (1, 1, "500:handler error")
    );
    let per_endpoint: Vec<u64> = stats.endpoints.iter().take(2).map(|e| e.num_requests).collect();
    assert_eq!(per_endpoint, [1, 1], "stats are per endpoint, not per subject");

    // Teardown, then the verdict.
    let destroyed = tester.request("tests.service.core.destroy.command", "").unwrap();
    assert!(destroyed.payload().is_empty());
    assert!(matches!(tester.request("faulty", ""), Err(nats_blocking::Error::NoResponders)));
    tester.publish("tests.service.core.result.pass", "").unwrap();
    tester.flush().unwrap();
    assert_eq!(runner.join().unwrap(), Ok(()));
}
