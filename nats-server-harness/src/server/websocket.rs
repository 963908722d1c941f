//! [`WebSocket`]: the `websocket { ... }` block of a server's config.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::util::conf_quote;
use crate::HarnessError;

/// A WebSocket listener for a [`NatsServer`](crate::NatsServer), set with
/// [`ServerBuilder::websocket`](crate::ServerBuilder::websocket). It listens on `127.0.0.1` on a port of its
/// own; nats-server refuses one without TLS unless it says `no_tls`, which [`plain`](Self::plain) does.
#[derive(Debug, Clone)]
pub struct WebSocket {
    /// Certificate and key (PEM), for `wss`.
    tls: Option<(String, String)>,
}

impl WebSocket {
    /// Plain WebSocket (`ws://`, `no_tls: true`).
    pub fn plain() -> WebSocket {
        WebSocket { tls: None }
    }

    /// WebSocket over TLS (`wss://`) with this server certificate and key (PEM).
    pub fn tls(cert_pem: &str, key_pem: &str) -> WebSocket {
        WebSocket { tls: Some((cert_pem.to_owned(), key_pem.to_owned())) }
    }

    /// True for `wss`.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The config block, listening on `port`; PEMs are written into `dir`.
    pub(crate) fn render(&self, port: u16, dir: &Path) -> Result<String, HarnessError> {
        let mut c = String::from("websocket {\n");
        let _ = writeln!(c, "  listen: \"127.0.0.1:{port}\"");
        match &self.tls {
            None => c.push_str("  no_tls: true\n"),
            Some((cert_pem, key_pem)) => {
                let cert = dir.join("ws-cert.pem");
                let key = dir.join("ws-key.pem");
                fs::write(&cert, cert_pem)?;
                fs::write(&key, key_pem)?;
                let _ = writeln!(c, "  tls {{\n    cert_file: {}", conf_quote(&cert.to_string_lossy()));
                let _ = writeln!(c, "    key_file: {}\n  }}", conf_quote(&key.to_string_lossy()));
            }
        }
        c.push_str("}\n");
        Ok(c)
    }
}
