//! Small std-only helpers: temp dirs, free ports, INFO parsing, raw HTTP.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, unique, process-local id (used for dir and server names).
pub(crate) fn unique_id() -> usize {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A directory under `std::env::temp_dir()` removed (recursively) on drop,
/// unless the environment variable `NATS_HARNESS_KEEP` is set to a value
/// other than `0`.
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(crate) fn new(prefix: &str) -> io::Result<TempDir> {
        let base = std::env::temp_dir();
        let pid = std::process::id();
        loop {
            let path = base.join(format!("{prefix}-{pid}-{}", unique_id()));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                // Left over from an earlier process with the same pid.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let keep = std::env::var_os("NATS_HARNESS_KEEP").is_some_and(|v| !v.is_empty() && v != "0");
        if keep {
            eprintln!("nats-server-harness: keeping {}", self.path.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// The loopback address with `port`.
pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// `count` distinct currently-free loopback ports (all listeners are held
/// until every port is chosen, so they are distinct).
pub(crate) fn free_ports(count: usize) -> io::Result<Vec<u16>> {
    let listeners = (0..count).map(|_| TcpListener::bind(loopback(0))).collect::<io::Result<Vec<_>>>()?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect()
}

/// Connects to `addr` and reads the first protocol line (the server's INFO),
/// without the trailing CRLF.
pub(crate) fn read_first_line(addr: SocketAddr, timeout: Duration) -> io::Result<String> {
    let timeout = timeout.max(Duration::from_millis(10));
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}

/// Finds the raw JSON value of `"key":` in a single-level JSON object
/// rendered without spaces after colons (as nats-server does).
///
/// Strings are returned without their quotes; arrays and other values are
/// returned verbatim.
pub(crate) fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\":");
    let start = json.find(&needle)? + needle.len();
    let rest = json[start..].trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in s.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => return Some(&s[..i]),
                _ => escaped = false,
            }
        }
        None
    } else if rest.starts_with('[') {
        let end = rest.find(']')?;
        Some(&rest[..=end])
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].trim())
    }
}

/// The `connect_urls` of an INFO line (empty if absent).
pub(crate) fn connect_urls(info: &str) -> Vec<String> {
    json_field(info, "connect_urls")
        .map(|array| {
            array
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Quotes `s` as a nats-server config string.
pub(crate) fn conf_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A raw HTTP/1.0 GET; returns the response body, or an error for a non-2xx
/// status.
pub(crate) fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP response"))?;
    let status_line = head.lines().next().unwrap_or_default();
    let ok = status_line.split_whitespace().nth(1).is_some_and(|code| code.starts_with('2'));
    if !ok {
        return Err(io::Error::other(format!("GET {path} returned {status_line:?}")));
    }
    Ok(body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = r#"INFO {"server_id":"NDL","server_name":"s\"0","version":"2.15.1","port":14230,"jetstream":true,"connect_urls":["127.0.0.1:14230","127.0.0.1:14231"],"api_lvl":5}"#;

    #[test]
    fn json_fields() {
        assert_eq!(json_field(INFO, "version"), Some("2.15.1"));
        assert_eq!(json_field(INFO, "server_name"), Some("s\\\"0"));
        assert_eq!(json_field(INFO, "port"), Some("14230"));
        assert_eq!(json_field(INFO, "jetstream"), Some("true"));
        assert_eq!(json_field(INFO, "api_lvl"), Some("5"));
        assert_eq!(json_field(INFO, "missing"), None);
    }

    #[test]
    fn parses_connect_urls() {
        assert_eq!(connect_urls(INFO), vec!["127.0.0.1:14230".to_owned(), "127.0.0.1:14231".to_owned()]);
        assert!(connect_urls("INFO {}").is_empty());
    }

    #[test]
    fn quotes_config_strings() {
        assert_eq!(conf_quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(4).unwrap();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 4);
        assert!(ports.iter().all(|&p| p != 0));
    }

    #[test]
    fn temp_dir_is_removed_on_drop() {
        let dir = TempDir::new("harness-unit").unwrap();
        let path = dir.path().to_path_buf();
        fs::write(path.join("f"), b"x").unwrap();
        assert!(path.is_dir());
        drop(dir);
        assert!(!path.exists());
    }
}
