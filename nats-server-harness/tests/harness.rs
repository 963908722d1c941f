//! Integration tests: these start real nats-server processes.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use nats_server_harness::{parse_major_minor, server_binary, Cluster, HarnessError, NatsServer, ServerVersion};

/// A minimal raw protocol connection for the tests.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    info: String,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut raw = Raw { reader: BufReader::new(stream.try_clone().unwrap()), writer: stream, info: String::new() };
        raw.info = raw.line();
        raw
    }

    fn send(&mut self, data: &str) {
        self.writer.write_all(data.as_bytes()).unwrap();
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read a line");
        line
    }

    /// Next line that is not a PING (answered) or +OK.
    fn next_reply(&mut self) -> String {
        loop {
            let line = self.line();
            match line.as_str() {
                "PING\r\n" => self.send("PONG\r\n"),
                "+OK\r\n" => {}
                _ => return line,
            }
        }
    }
}

fn version_of(server: &NatsServer) -> (u32, u32) {
    let v = server.version();
    parse_major_minor(&v).unwrap_or_else(|| panic!("unparsable version {v:?}"))
}

#[test]
fn start_url_reachable_and_first_line_is_info() {
    let server = NatsServer::start();
    let url = server.url();
    assert_eq!(url, format!("nats://127.0.0.1:{}", server.port()));
    assert_eq!(server.addr().port(), server.port());
    assert!(server.addr().ip().is_loopback());
    assert!(server.is_running());

    let mut raw = Raw::connect(server.addr());
    assert!(raw.info.starts_with("INFO {"), "first line: {:?}", raw.info);
    assert!(raw.info.contains(&format!("\"port\":{}", server.port())));
    assert!(raw.info.contains(&format!("\"server_name\":\"{}\"", server.server_name())));
    raw.send("CONNECT {\"verbose\":false}\r\nPING\r\n");
    assert_eq!(raw.next_reply(), "PONG\r\n");

    let config = std::fs::read_to_string(server.config_path()).unwrap();
    assert!(config.contains(&format!("listen: \"127.0.0.1:{}\"", server.port())));
}

#[test]
fn restart_keeps_port_and_config() {
    let mut server = NatsServer::start();
    let port = server.port();
    let first_pid = server.pid().expect("running");

    server.stop();
    assert!(!server.is_running());
    assert_eq!(server.pid(), None);
    assert!(TcpStream::connect(server.addr()).is_err(), "port still accepting after stop");
    server.stop(); // idempotent

    server.restart();
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    assert_ne!(server.pid(), Some(first_pid));
    let raw = Raw::connect(server.addr());
    assert!(raw.info.starts_with("INFO {"));

    // Restarting a running server also works.
    server.restart();
    assert!(Raw::connect(server.addr()).info.starts_with("INFO"));

    let log = server.log();
    assert!(log.contains("run 1:"), "{log}");
    assert!(log.contains("run 3:"), "{log}");
    assert_eq!(log.matches("Server is ready").count(), 3, "{log}");
}

#[test]
fn log_is_captured() {
    let server = NatsServer::start();
    let log = server.log();
    assert!(!log.is_empty());
    assert!(log.contains("Server is ready"), "log: {log}");
    assert!(log.contains(&format!("127.0.0.1:{}", server.port())), "log: {log}");
    assert!(server.log_path().starts_with(server.config_dir()));
}

#[test]
fn current_and_old_versions_start() {
    let current = NatsServer::builder().version(ServerVersion::Current).start().unwrap();
    let old = NatsServer::builder().version(ServerVersion::Old).start().unwrap();
    assert_eq!(current.server_version_kind(), ServerVersion::Current);
    assert_eq!(old.server_version_kind(), ServerVersion::Old);
    assert_ne!(current.binary(), old.binary());

    let (cur, older) = (current.version(), old.version());
    assert_ne!(cur, older);
    assert!(version_of(&current) >= (2, 10), "current is {cur}");
    assert!(version_of(&old) < (2, 10), "old is {older}");

    // The running processes really are those versions.
    for (server, v) in [(&current, &cur), (&old, &older)] {
        let info = server.fetch_info().unwrap();
        assert!(info.contains(&format!("\"version\":\"{v}\"")), "{info}");
    }
    assert_eq!(server_binary(ServerVersion::Old).unwrap(), old.binary());
}

#[test]
fn jetstream_enabled() {
    let mut server = NatsServer::builder().jetstream(true).start().unwrap();
    let info = server.fetch_info().unwrap();
    assert!(info.contains("\"jetstream\":true"), "{info}");
    assert!(server.config_dir().join("jetstream").is_dir());

    server.restart();
    assert!(server.fetch_info().unwrap().contains("\"jetstream\":true"));

    let plain = NatsServer::start();
    assert!(!plain.fetch_info().unwrap().contains("\"jetstream\":true"));
}

#[test]
fn jetstream_on_old_server() {
    let server = NatsServer::builder().version(ServerVersion::Old).jetstream(true).start().unwrap();
    assert!(server.fetch_info().unwrap().contains("\"jetstream\":true"));
}

#[test]
fn token_auth_rejects_connect_without_token() {
    let server = NatsServer::builder().token("s3cr\"et").start().unwrap();

    let mut raw = Raw::connect(server.addr());
    assert!(raw.info.contains("\"auth_required\":true"), "{}", raw.info);
    raw.send("CONNECT {\"verbose\":false}\r\nPING\r\n");
    let reply = raw.next_reply();
    assert!(reply.starts_with("-ERR"), "got {reply:?}");

    let mut raw = Raw::connect(server.addr());
    raw.send("CONNECT {\"verbose\":false,\"auth_token\":\"s3cr\\\"et\"}\r\nPING\r\n");
    assert_eq!(raw.next_reply(), "PONG\r\n");
}

#[test]
fn user_password_auth() {
    let server = NatsServer::builder().user_password("alice", "pw").start().unwrap();

    let mut raw = Raw::connect(server.addr());
    raw.send("CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"wrong\"}\r\nPING\r\n");
    assert!(raw.next_reply().starts_with("-ERR"));

    let mut raw = Raw::connect(server.addr());
    raw.send("CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"pw\"}\r\nPING\r\n");
    assert_eq!(raw.next_reply(), "PONG\r\n");
}

#[test]
fn max_payload_and_extra_config() {
    let server = NatsServer::builder().max_payload(4096).start().unwrap();
    let info = server.fetch_info().unwrap();
    assert!(info.contains("\"max_payload\":4096"), "{info}");

    let server = NatsServer::builder().config("max_payload: 2048").start().unwrap();
    let info = server.fetch_info().unwrap();
    assert!(info.contains("\"max_payload\":2048"), "{info}");
}

#[test]
fn monitoring_endpoint() {
    let server = NatsServer::builder().monitoring(true).start().unwrap();
    let port = server.monitor_port().expect("monitoring port");
    assert_ne!(port, server.port());
    let varz = server.monitor_get("/varz").unwrap();
    assert!(varz.contains(server.server_name()), "{varz}");

    let plain = NatsServer::start();
    assert_eq!(plain.monitor_port(), None);
    assert!(plain.monitor_get("/varz").is_err());
}

#[test]
fn fixed_port_in_use_is_an_error_with_log() {
    let first = NatsServer::start();
    let err = NatsServer::builder().port(first.port()).start().expect_err("second server on the same port must fail");
    assert!(matches!(err, HarnessError::Exited { .. }), "{err}");
    let log = err.log().expect("error carries the log");
    assert!(log.contains("address already in use"), "{log}");
    assert!(err.to_string().contains("address already in use"));
    // The first server is unaffected.
    assert!(first.fetch_info().unwrap().contains(first.server_name()));
}

#[test]
fn missing_binary_is_an_error() {
    let err = NatsServer::builder().binary("/nonexistent/nats-server").start().expect_err("must fail");
    assert!(matches!(err, HarnessError::Spawn { .. }), "{err}");
}

#[test]
fn binary_not_found_message_points_to_setup() {
    let err =
        HarnessError::BinaryNotFound { version: ServerVersion::Old, searched: vec!["/usr/bin/nats-server".to_owned()] };
    let msg = err.to_string();
    assert!(msg.contains("scripts/setup"), "{msg}");
    assert!(msg.contains("/usr/bin/nats-server"), "{msg}");
}

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<NatsServer>();
    assert_send_sync::<Cluster>();
    assert_send_sync::<HarnessError>();
}

#[test]
fn drop_kills_server_and_removes_temp_dir() {
    let server = NatsServer::start();
    let dir = server.config_dir().to_path_buf();
    let addr = server.addr();
    assert!(dir.join("nats.conf").is_file());
    drop(server);
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(TcpStream::connect(addr).is_err(), "server still accepting");
}

fn assert_full_mesh(cluster: &Cluster) {
    for server in cluster.servers() {
        let info = server.fetch_info().unwrap();
        for other in cluster.servers() {
            let addr = format!("\"127.0.0.1:{}\"", other.port());
            assert!(info.contains(&addr), "{} lacks {addr}: {info}", server.server_name());
        }
    }
}

/// Subscribes on `from`, publishes on `to` until the message arrives.
fn assert_routes_messages(sub_addr: SocketAddr, pub_addr: SocketAddr) {
    let mut sub = Raw::connect(sub_addr);
    sub.send("CONNECT {\"verbose\":false}\r\nSUB harness.test 1\r\nPING\r\n");
    assert_eq!(sub.next_reply(), "PONG\r\n");
    sub.writer.set_read_timeout(Some(Duration::from_millis(200))).unwrap();

    let mut publisher = Raw::connect(pub_addr);
    publisher.send("CONNECT {\"verbose\":false}\r\nPING\r\n");
    assert_eq!(publisher.next_reply(), "PONG\r\n");

    // Interest propagates over the routes asynchronously: retry.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "message never crossed the route");
        publisher.send("PUB harness.test 5\r\nhello\r\n");
        let mut line = String::new();
        if sub.reader.read_line(&mut line).is_ok() && line.starts_with("MSG harness.test 1 5") {
            let mut payload = String::new();
            sub.reader.read_line(&mut payload).unwrap();
            assert_eq!(payload, "hello\r\n");
            return;
        }
    }
}

#[test]
fn cluster_of_three_forms_full_mesh() {
    let mut cluster = Cluster::start(3);
    assert_eq!(cluster.len(), 3);
    let urls = cluster.urls();
    assert_eq!(urls.len(), 3);
    let mut ports: Vec<u16> = cluster.servers().iter().map(NatsServer::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    for server in cluster.servers() {
        assert!(server.cluster_port().is_some());
        let info = server.fetch_info().unwrap();
        assert!(info.contains(&format!("\"cluster\":\"{}\"", cluster.name())), "{info}");
    }
    assert_full_mesh(&cluster);
    assert_routes_messages(cluster.server(0).addr(), cluster.server(2).addr());

    cluster.kill(1);
    assert!(!cluster.server(1).is_running());
    assert_routes_messages(cluster.server(2).addr(), cluster.server(0).addr());

    cluster.restart(1);
    assert!(cluster.server_mut(1).is_running());
    assert_full_mesh(&cluster);
    assert_routes_messages(cluster.server(1).addr(), cluster.server(0).addr());
}

#[test]
fn cluster_of_old_servers() {
    let cluster = Cluster::builder(2).version(ServerVersion::Old).start().unwrap();
    assert!(version_of(cluster.server(0)) < (2, 10));
    assert_full_mesh(&cluster);
    assert_routes_messages(cluster.server(1).addr(), cluster.server(0).addr());
}
