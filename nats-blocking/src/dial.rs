//! Opening a connection (the socket, TLS under a `wss://` upgrade, the WebSocket upgrade) and what a failed
//! read or write means to the core.

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use nats_proto::{ConnectionError, ServerAddr};

use crate::driver::Shared;
use crate::transport::Transport;

/// A write that makes no progress for this long means the server is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a TCP connection to the first address of `addr` that answers.
pub(crate) fn dial(addr: &ServerAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(ErrorKind::NotFound, "no address");
    for a in addr.host_port().to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(sock) => {
                // Small writes (requests, replies) go out at once; batching is done above the socket.
                let _ = sock.set_nodelay(true);
                let _ = sock.set_write_timeout(Some(WRITE_TIMEOUT));
                return Ok(sock);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The transport for `addr` over a connected socket: the socket itself, or for a WebSocket URL the upgrade
/// (after TLS for `wss`), within `deadline`.
#[cfg_attr(not(feature = "websocket"), allow(unused_variables))]
pub(crate) fn open(
    shared: &Shared,
    sock: TcpStream,
    addr: &ServerAddr,
    deadline: std::time::Instant,
) -> Result<Transport, ConnectionError> {
    if !addr.is_websocket() {
        return Ok(Transport::Plain(sock));
    }
    #[cfg(feature = "websocket")]
    {
        let inner = if addr.tls_required() { secure(shared, sock, addr, deadline)? } else { Transport::Plain(sock) };
        crate::websocket::upgrade(inner, addr, &shared.settings().websocket, deadline)
            .map_err(|e| transport_error(&e).unwrap_or_else(|| ConnectionError::WebSocket(e.to_string())))
    }
    #[cfg(not(feature = "websocket"))]
    Err(ConnectionError::Incompatible("WebSocket needs the `websocket` feature of nats-blocking"))
}

/// TLS over `sock` for a `wss://` server, before the upgrade.
#[cfg(all(feature = "websocket", feature = "tls"))]
fn secure(
    shared: &Shared,
    sock: TcpStream,
    addr: &ServerAddr,
    deadline: std::time::Instant,
) -> Result<Transport, ConnectionError> {
    let session = shared.settings().tls.session(addr)?;
    crate::transport::handshake(sock, session, deadline).map_err(|e| nats_client::tls::connection_error(&e))
}

#[cfg(all(feature = "websocket", not(feature = "tls")))]
fn secure(_: &Shared, _: TcpStream, _: &ServerAddr, _: std::time::Instant) -> Result<Transport, ConnectionError> {
    Err(ConnectionError::Incompatible("wss:// needs the `tls` feature of nats-blocking"))
}

/// What a failed read or write means to the core, when it is more than a lost connection: a TLS failure
/// (kind `InvalidData`), or a WebSocket's (the server's close frame, a broken frame).
pub(crate) fn transport_error(e: &std::io::Error) -> Option<ConnectionError> {
    #[cfg(feature = "websocket")]
    if let Some(error) = nats_client::ws::connection_error(e) {
        return Some(error);
    }
    (e.kind() == ErrorKind::InvalidData).then(|| ConnectionError::Tls(e.to_string()))
}
