//! Drives the sans-IO core over a plain `std::net::TcpStream`: publish, subscribe, headers, request/reply and
//! no-responders against a real server. Run: `cargo run -p nats-proto --example manual_loop -- 127.0.0.1:4222`
#![allow(clippy::disallowed_methods)] // the core never reads the clock; its driver does
use bytes::{Buf, Bytes};
use nats_proto::{
    Action, Config, Connection, Event, Headers, Instant, Msg, RequestError, RequestId, ServerAddr, WriteBuffer,
};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
type Error = Box<dyn std::error::Error>;

pub(crate) struct Driver {
    conn: Connection,
    sock: Option<TcpStream>,
    wire: WriteBuffer,
}

impl Driver {
    /// Steps until `pick` accepts an event (or 5 s pass): one socket, one core, one loop.
    pub(crate) fn until<T>(&mut self, mut pick: impl FnMut(Event) -> Option<T>) -> Result<T, Error> {
        let give_up = now() + Duration::from_secs(5);
        while now() < give_up {
            while let Some(action) = self.conn.poll_action() {
                match action {
                    Action::Dial(addr) => {
                        self.sock = TcpStream::connect(addr.host_port()).ok();
                        let up = [Connection::handle_eof, Connection::handle_connected][self.sock.is_some() as usize];
                        up(&mut self.conn, now());
                    }
                    Action::CloseTransport => self.sock = None,
                    other => return Err(format!("no TLS in this example: {other:?}").into()),
                }
            }
            while let Some(event) = self.conn.poll_event() {
                match event {
                    Event::Closed(why) => return Err(format!("closed: {why:?}").into()),
                    other => {
                        if let Some(found) = pick(other) {
                            return Ok(found);
                        }
                    }
                }
            }
            self.conn.poll_transmit(&mut self.wire);
            let mut buf = [0u8; 64 * 1024];
            if let Some(sock) = self.sock.as_mut() {
                sock.write_all(&self.wire.copy_to_bytes(self.wire.remaining()))?;
                // Sleep in read() until data arrives or the core's next deadline, whichever is first.
                let wait = self.conn.poll_timeout().map_or(Duration::from_millis(50), |t| t - now());
                sock.set_read_timeout(Some(wait.clamp(Duration::from_millis(1), Duration::from_millis(50))))?;
                match sock.read(&mut buf) {
                    Ok(0) => self.conn.handle_eof(now()),
                    Ok(n) => self.conn.handle_input(now(), &buf[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => self.conn.handle_eof(now()),
                }
            }
            self.conn.handle_timeout(now());
        }
        Err("timed out".into())
    }

    fn message(&mut self, sid: u64) -> Result<Msg, Error> {
        self.until(|e| if let Event::Message(m) = e { (m.sid() == sid).then_some(m) } else { None })
    }

    fn response(&mut self, id: RequestId) -> Result<Result<Msg, RequestError>, Error> {
        self.until(|e| if let Event::Response { id: i, result, .. } = e { (i == id).then_some(result) } else { None })
    }
}

/// Connects to `addr` and runs the demo. Returns the message with headers, the reply to our request, and
/// whether a request nobody serves failed with the typed no-responders error.
pub(crate) fn run(addr: &str) -> Result<(Msg, Msg, bool), Error> {
    let mut config = Config::new(vec![ServerAddr::parse(addr)?]);
    config.seed = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8);
    let mut d = Driver { conn: Connection::new(config, now()), sock: None, wire: WriteBuffer::new() };
    d.until(|e| matches!(e, Event::Connected(_)).then_some(()))?;

    let sub = d.conn.subscribe("demo.>", None)?;
    let mut headers = Headers::new();
    headers.insert("Greeting", "hello")?;
    d.conn.publish("demo.hello", None, Some(&headers), Bytes::from_static(b"world"))?;
    let message = d.message(sub)?;
    // Answer our own request: it arrives on svc.echo, the reply comes back on the request mux.
    let svc = d.conn.subscribe("svc.echo", None)?;
    let timeout = Some(Duration::from_secs(2));
    let id = d.conn.request(now(), "svc.echo", None, Bytes::from_static(b"ping"), timeout)?;
    let request = d.message(svc)?;
    d.conn.publish(request.reply().ok_or("no reply subject")?, None, None, request.payload_bytes())?;
    let reply = d.response(id)??;
    let id = d.conn.request(now(), "nobody.home", None, Bytes::new(), timeout)?;
    Ok((message, reply, d.response(id)? == Err(RequestError::NoResponders)))
}

/// This example's clock: the core's instants counted from the first reading (the core never reads a clock;
/// its driver does, here `std::time::Instant`).
fn now() -> Instant {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let elapsed = START.get_or_init(std::time::Instant::now).elapsed();
    Instant::from_nanos(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
}

fn main() -> Result<(), Error> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:4222".into());
    let (message, reply, no_responders) = run(&addr)?;
    let greeting = message.headers().and_then(|h| h.get("Greeting")).unwrap_or("-");
    println!("received {} {:?} with Greeting: {greeting}", message.subject(), message.payload());
    println!("request/reply round trip: {:?}; no responders typed: {no_responders}", reply.payload());
    Ok(())
}
