//! The JSON of INFO (server to client) and CONNECT (client to server).
//!
//! Decoding is lenient (every field has a default, unknown fields are ignored: old servers lack `proto`, new
//! ones add fields); encoding is minimal (optional fields are left out when unset).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

/// The server's INFO. Every INFO replaces the previous one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ServerInfo {
    /// Unique id of the server.
    pub server_id: String,
    /// Configured name of the server.
    pub server_name: String,
    /// Server version (semver).
    pub version: String,
    /// Go version it was built with.
    pub go: String,
    /// Host it listens on.
    pub host: String,
    /// Port it listens on.
    pub port: u16,
    /// Whether the server supports headers (HPUB/HMSG).
    pub headers: bool,
    /// Largest header block plus payload the server accepts.
    pub max_payload: usize,
    /// Protocol version: 1 allows async INFO and `echo:false`.
    pub proto: i32,
    /// Id the server gave this client.
    pub client_id: u64,
    /// The client's address as the server sees it.
    pub client_ip: String,
    /// Credentials are required.
    pub auth_required: bool,
    /// TLS is required.
    pub tls_required: bool,
    /// The server demands a client certificate.
    pub tls_verify: bool,
    /// TLS is optional.
    pub tls_available: bool,
    /// Nonce to sign for nkey or JWT authentication.
    pub nonce: Option<String>,
    /// Other servers of the cluster this client may connect to (`host:port`).
    pub connect_urls: Vec<String>,
    /// Lame duck mode: the server is shutting down and will close this connection.
    #[serde(rename = "ldm")]
    pub lame_duck_mode: bool,
    /// JetStream is enabled.
    pub jetstream: bool,
    /// JetStream domain.
    pub domain: Option<String>,
    /// Cluster name.
    pub cluster: Option<String>,
}

impl ServerInfo {
    /// Decodes INFO JSON.
    pub fn from_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }
}

/// The client's CONNECT. Secrets (`pass`, `auth_token`, `sig`) are not shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ConnectInfo {
    /// `+OK` after every op; we always send false.
    pub verbose: bool,
    /// Strict subject checks by the server; we always send false.
    pub pedantic: bool,
    /// Whether the client is on TLS.
    pub tls_required: bool,
    /// Client name, shown in monitoring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Implementation language.
    pub lang: String,
    /// Implementation version.
    pub version: String,
    /// Protocol version; 1 asks for async INFO.
    pub protocol: u8,
    /// Whether the server should send this client its own messages.
    pub echo: bool,
    /// Whether the client understands HMSG.
    pub headers: bool,
    /// Whether the server should answer requests with no subscribers with a 503.
    pub no_responders: bool,
    /// User name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    /// Token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// Public nkey.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nkey: Option<String>,
    /// User JWT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
    /// Signature of the server nonce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

impl ConnectInfo {
    /// The CONNECT this library sends by default: quiet, protocol 1, echo on.
    pub fn new() -> Self {
        Self {
            lang: "rust".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: 1,
            echo: true,
            ..Self::default()
        }
    }

    /// Decodes CONNECT JSON.
    pub fn from_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// Encodes as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings, bools and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

fn redact(v: &Option<String>) -> Option<&'static str> {
    v.as_ref().map(|_| "<redacted>")
}

impl fmt::Debug for ConnectInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectInfo")
            .field("verbose", &self.verbose)
            .field("pedantic", &self.pedantic)
            .field("tls_required", &self.tls_required)
            .field("name", &self.name)
            .field("lang", &self.lang)
            .field("version", &self.version)
            .field("protocol", &self.protocol)
            .field("echo", &self.echo)
            .field("headers", &self.headers)
            .field("no_responders", &self.no_responders)
            .field("user", &self.user)
            .field("pass", &redact(&self.pass))
            .field("auth_token", &redact(&self.auth_token))
            .field("nkey", &self.nkey)
            .field("jwt", &self.jwt)
            .field("sig", &redact(&self.sig))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;

    use super::*;

    #[test]
    fn info_is_lenient() {
        let info =
            ServerInfo::from_json(br#"{"server_id":"X","max_payload":1024,"unknown":[1,2],"ldm":true}"#).unwrap();
        assert_eq!(info.server_id, "X");
        assert_eq!(info.max_payload, 1024);
        assert_eq!(info.proto, 0);
        assert!(info.lame_duck_mode);
        assert!(ServerInfo::from_json(b"{not json").is_err());
    }

    #[test]
    fn connect_is_minimal_and_redacted() {
        let mut c = ConnectInfo::new();
        c.pass = Some("hunter2".into());
        c.user = Some("me".into());
        let json = String::from_utf8(c.to_json()).unwrap();
        assert!(json.contains(r#""verbose":false"#) && json.contains(r#""protocol":1"#));
        assert!(!json.contains("auth_token"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
        assert_eq!(ConnectInfo::from_json(json.as_bytes()).unwrap(), c);
    }
}
