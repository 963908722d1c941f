//! No client at all: pre-encoded PUB frames written in large batches (the publishing ceiling), the same with a
//! second socket subscribed and counting them (the pub → sub ceiling), a plain memchr framing loop over the fake
//! server's stream (the ingest ceiling), a socket echoing requests (the service ceiling), and the fake server
//! itself.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use super::{received, Window, PUBSUB_SUBJECT, SILENCE};
use crate::spec::{ChildSpec, RunResult};

/// Bytes per write of the raw publisher and of the fake server.
const BATCH_BYTES: usize = 64 * 1024;

/// `frame` repeated to fill about [`BATCH_BYTES`], and how many frames that is.
fn batch_of(frame: &[u8]) -> (Vec<u8>, usize) {
    let per_batch = (BATCH_BYTES / frame.len()).max(1);
    (frame.repeat(per_batch), per_batch)
}

/// Writes `n` frames from `batch` (`per_batch` frames of `frame_len` bytes each) in batches.
fn write_frames(sock: &mut TcpStream, batch: &[u8], per_batch: usize, frame_len: usize, n: usize) -> bool {
    let mut sent = 0;
    while sent < n {
        let k = per_batch.min(n - sent);
        if sock.write_all(&batch[..k * frame_len]).is_err() {
            return false;
        }
        sent += k;
    }
    true
}

/// `spec.messages` pre-encoded PUB frames of `spec.size` bytes, then a PING whose PONG says the server has read
/// them all.
pub(super) fn publish(spec: &ChildSpec) -> RunResult {
    let mut sock = TcpStream::connect(spec.url.trim_start_matches("nats://")).expect("connect raw");
    sock.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n").expect("write CONNECT");
    let mut frame = format!("PUB bench.pub {}\r\n", spec.size).into_bytes();
    frame.extend(std::iter::repeat_n(b'x', spec.size));
    frame.extend_from_slice(b"\r\n");
    let (batch, per_batch) = batch_of(&frame);
    let w = Window::open(spec);
    assert!(write_frames(&mut sock, &batch, per_batch, frame.len(), spec.messages), "server closed");
    sock.write_all(b"PING\r\n").expect("write PING");
    wait_for_pong(&mut sock);
    w.close(spec.messages, Duration::ZERO).result(0)
}

/// `spec.messages` pre-encoded PUB frames of `spec.size` bytes to [`PUBSUB_SUBJECT`], written by this thread
/// while a second socket, subscribed before the window opens, counts the MSG frames on a thread of its own.
pub(super) fn pubsub(spec: &ChildSpec) -> RunResult {
    let n = spec.messages;
    let addr = spec.url.trim_start_matches("nats://");
    let mut sub = TcpStream::connect(addr).expect("connect raw subscriber");
    sub.set_read_timeout(Some(SILENCE)).expect("read timeout");
    let hello = format!("CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB {PUBSUB_SUBJECT} 1\r\nPING\r\n");
    sub.write_all(hello.as_bytes()).expect("write SUB");
    // Once the PONG is read the server has the SUB, and nothing else was sent yet.
    wait_for_pong(&mut sub);
    let mut publisher = TcpStream::connect(addr).expect("connect raw publisher");
    publisher.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n").expect("write CONNECT");
    let mut frame = format!("PUB {PUBSUB_SUBJECT} {}\r\n", spec.size).into_bytes();
    frame.extend(std::iter::repeat_n(b'x', spec.size));
    frame.extend_from_slice(b"\r\n");
    let (batch, per_batch) = batch_of(&frame);
    let mut w = Window::open(spec);
    let reader = w.spawn(move || {
        let got = count_frames(&mut sub, n);
        (got, got < n)
    });
    assert!(write_frames(&mut publisher, &batch, per_batch, frame.len(), n), "server closed");
    let counted = reader.wait();
    received(w, n, counted)
}

/// Reads until a PONG.
fn wait_for_pong(sock: &mut TcpStream) {
    let mut buf = [0u8; 256];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"PONG") {
        let r = sock.read(&mut buf).expect("read PONG");
        assert!(r > 0, "server closed");
        seen.extend_from_slice(&buf[..r]);
    }
}

/// Subscribes by hand to the fake server and counts `spec.messages` MSG frames.
pub(super) fn ingest(spec: &ChildSpec) -> RunResult {
    let n = spec.messages;
    let mut sock = TcpStream::connect(spec.url.trim_start_matches("nats://")).expect("connect raw");
    sock.set_read_timeout(Some(SILENCE)).expect("read timeout");
    sock.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\nSUB ingest 1\r\n").expect("write SUB");
    let w = Window::open(spec);
    let got = count_frames(&mut sock, n);
    // A short count means the socket went quiet for SILENCE (or closed) at the end.
    received(w, n, (got, got < n))
}

/// Counts MSG frames with a plain memchr framing loop, up to `n` or until the socket closes or times out.
fn count_frames(sock: &mut TcpStream, n: usize) -> usize {
    let mut buf = vec![0u8; 256 * 1024];
    let (mut filled, mut got) = (0, 0);
    while got < n {
        let r = match sock.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(r) => r,
        };
        filled += r;
        let (frames, used) = frames_in(&buf[..filled]);
        got += frames;
        buf.copy_within(used..filled, 0);
        filled -= used;
    }
    got
}

/// Whole MSG frames at the start of `buf` (other lines are skipped), and the bytes they and the skipped lines
/// take.
fn frames_in(buf: &[u8]) -> (usize, usize) {
    let (mut at, mut frames) = (0, 0);
    while let Some(lf) = memchr::memchr(b'\n', &buf[at..]) {
        let line = &buf[at..at + lf];
        if !line.starts_with(b"MSG") {
            at += lf + 1;
            continue;
        }
        let size: usize = line
            .rsplit(|&b| b == b' ')
            .next()
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.trim_end().parse().ok())
            .unwrap_or(0);
        let end = at + lf + 1 + size + 2;
        if end > buf.len() {
            break;
        }
        frames += 1;
        at = end;
    }
    (frames, at)
}

/// The fake server (`compare --fake-ingest SIZE N`): prints its URL, takes one client, answers its handshake and,
/// after its SUB, writes `n` MSG frames of `size` bytes as fast as the socket takes them. It then answers PINGs
/// until the client leaves.
pub(crate) fn serve_fake_ingest(size: usize, n: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("nats://{}", listener.local_addr().expect("local addr"));
    let (mut sock, _) = listener.accept().expect("accept");
    sock.write_all(
        b"INFO {\"server_id\":\"FAKE\",\"version\":\"2.10.0\",\"proto\":1,\"headers\":true,\"max_payload\":1048576}\r\n",
    )
    .expect("write INFO");
    let Some(sid) = await_sub(&mut sock) else { return };
    let mut frame = format!("MSG ingest {sid} {size}\r\n").into_bytes();
    frame.extend(std::iter::repeat_n(b'x', size));
    frame.extend_from_slice(b"\r\n");
    let (batch, per_batch) = batch_of(&frame);
    if !write_frames(&mut sock, &batch, per_batch, frame.len(), n) {
        return;
    }
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(r) if buf[..r].windows(4).any(|w| w == b"PING") => {
                let _ = sock.write_all(b"PONG\r\n");
            }
            Ok(_) => {}
        }
    }
}

/// Answers PINGs until the client subscribes: its sid, or `None` if it left.
fn await_sub(sock: &mut TcpStream) -> Option<u64> {
    let mut decoder = nats_proto::ClientDecoder::default();
    let mut input = bytes::BytesMut::new();
    let mut buf = [0u8; 4096];
    loop {
        let r = sock.read(&mut buf).ok().filter(|&r| r > 0)?;
        input.extend_from_slice(&buf[..r]);
        let mut sid = None;
        while let Ok(Some(op)) = decoder.decode(&mut input) {
            match op {
                nats_proto::ClientOp::Ping => sock.write_all(b"PONG\r\n").ok()?,
                nats_proto::ClientOp::Sub { sid: s, .. } => sid = Some(s),
                _ => {}
            }
        }
        if sid.is_some() {
            return sid;
        }
    }
}

/// A service with no client library: a socket in a queue group that answers each request with its payload,
/// all replies of one read in one write. Stops when dropped.
pub(super) struct Echo(TcpStream);

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// Starts the echo on `subject`; it is subscribed (the server has the SUB) when this returns.
pub(super) fn echo(url: &str, subject: &str) -> Echo {
    let mut sock = TcpStream::connect(url.trim_start_matches("nats://")).expect("connect raw echo");
    let _ = sock.set_nodelay(true);
    let hello = format!("CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB {subject} q 1\r\nPING\r\n");
    sock.write_all(hello.as_bytes()).expect("subscribe raw echo");
    let mut reader = sock.try_clone().expect("clone raw echo socket");
    let mut input = bytes::BytesMut::with_capacity(BATCH_BYTES);
    let mut decoder = nats_proto::ServerDecoder::default();
    let mut buf = vec![0u8; BATCH_BYTES];
    // Wait for the PONG: the subscription is in place.
    'subscribed: loop {
        let n = reader.read(&mut buf).expect("read raw echo");
        assert!(n > 0, "server closed");
        input.extend_from_slice(&buf[..n]);
        while let Ok(Some(op)) = decoder.decode(&mut input) {
            if op == nats_proto::ServerOp::Pong {
                break 'subscribed;
            }
        }
    }
    std::thread::spawn(move || {
        let mut out = nats_proto::WriteBuffer::new();
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            input.extend_from_slice(&buf[..n]);
            while let Ok(Some(op)) = decoder.decode(&mut input) {
                match op {
                    nats_proto::ServerOp::Msg(m) => {
                        if let Some(reply) = m.reply() {
                            out.push_pub(reply.as_bytes(), None, None, m.payload_bytes());
                        }
                    }
                    nats_proto::ServerOp::Ping => out.push_pong(),
                    _ => {}
                }
            }
            if !out.is_empty() && reader.write_all(&out.take_bytes()).is_err() {
                return;
            }
        }
    });
    Echo(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_counted_whole_and_other_lines_skipped() {
        let stream = b"PONG\r\nMSG ingest 1 3\r\nabc\r\nMSG ingest 1 2\r\nxy\r\nMSG ingest 1 4\r\nab";
        let (frames, used) = frames_in(stream);
        assert_eq!(frames, 2);
        // The partial third frame stays for the next read.
        assert_eq!(&stream[used..], b"MSG ingest 1 4\r\nab");
    }

    #[test]
    fn batches_hold_whole_frames() {
        let (batch, per) = batch_of(&[b'x'; 1000]);
        assert_eq!((batch.len(), per), (65_000, 65));
        let (batch, per) = batch_of(&[b'x'; 100_000]);
        assert_eq!((batch.len(), per), (100_000, 1));
    }
}
