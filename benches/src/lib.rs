//! Benchmarks for the NATS stack; the benches live in `benches/`.
//!
//! This library holds what the benches share, so that the unit tests below can prove the inputs valid and the
//! measured loops correct:
//! - stream builders: many `MSG` or `HMSG` frames back to back, as a server would send them;
//! - the measured loops: [`decode_stream`] ([`ServerDecoder`] over a `BytesMut`), [`parse_stream`]
//!   ([`parse_server_op`] over a `&[u8]`) and the baseline [`memchr_scan`], the least work any framing parser
//!   must do.
//!
//! Run with `cargo bench -p benches` (add `-- parse_msg/16B` to filter, `--warm-up-time 1 --measurement-time 3`
//! for a quick pass).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use nats_proto::{parse_server_op, HeaderBlock, Headers, Limits, Msg, ServerDecoder, ServerOp, ServerOpRef, Status};

/// Subject of every benchmark message.
pub const SUBJECT: &str = "subject.foo.bar";
/// Reply subject of every received benchmark message.
pub const REPLY: &str = "_INBOX.reply.x";
/// Subscription id of every received benchmark message.
pub const SID: u64 = 1;
/// The header the header benchmarks look up.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The value of [`MSG_ID`] in every benchmark header block.
pub const MSG_ID_VALUE: &str = "a1b2c3d4-e5f6-4711-8899-aabbccddeeff";
/// Payload sizes benchmarked, with their labels.
pub const PAYLOAD_SIZES: [(usize, &str); 4] = [(16, "16B"), (128, "128B"), (1024, "1KiB"), (16 * 1024, "16KiB")];
/// How many bytes a parse stream holds, roughly (it fits in L2 on most machines).
pub const STREAM_BYTES: usize = 1 << 20;

/// A payload of `len` bytes (a repeating pattern that contains CR and LF, so nothing may search the payload).
pub fn payload(len: usize) -> Bytes {
    (0..len).map(|i| b"0123456789\r\nabcdefghij"[i % 22]).collect::<Vec<u8>>().into()
}

/// The headers of benchmark HMSG/HPUB frames: `n` entries (at most 3), [`MSG_ID`] second when `n >= 2`.
pub fn headers(n: usize) -> Headers {
    let all = [("Content-Type", "application/json"), (MSG_ID, MSG_ID_VALUE), ("Nats-Expected-Stream", "ORDERS")];
    let mut h = Headers::new();
    for (name, value) in all.into_iter().take(n) {
        h.append(name, value).expect("valid header");
    }
    h
}

/// One frame: `MSG SUBJECT SID REPLY <n>\r\n<payload>\r\n`, or HMSG when `headers` (an encoded block) is given.
pub fn msg_frame(headers: Option<&HeaderBlock>, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(64 + payload.len() + headers.map_or(0, |h| h.as_bytes().len()));
    let hdr = headers.map_or(&[][..], HeaderBlock::as_bytes);
    let total = hdr.len() + payload.len();
    match headers {
        Some(_) => f.extend_from_slice(format!("HMSG {SUBJECT} {SID} {REPLY} {} {total}\r\n", hdr.len()).as_bytes()),
        None => f.extend_from_slice(format!("MSG {SUBJECT} {SID} {REPLY} {total}\r\n").as_bytes()),
    }
    f.extend_from_slice(hdr);
    f.extend_from_slice(payload);
    f.extend_from_slice(b"\r\n");
    f
}

/// A pre-encoded stream of identical frames.
#[derive(Debug, Clone)]
pub struct Stream {
    /// The wire bytes.
    pub bytes: Vec<u8>,
    /// How many frames they hold.
    pub frames: usize,
    /// Payload size of each frame (headers excluded).
    pub payload_len: usize,
}

impl Stream {
    /// `frame` repeated until the stream holds at least `target` bytes (and at least one frame).
    pub fn repeat(frame: &[u8], payload_len: usize, target: usize) -> Self {
        let frames = target.div_ceil(frame.len()).max(1);
        Self { bytes: frame.repeat(frames), frames, payload_len }
    }

    /// About [`STREAM_BYTES`] of `MSG` frames with a `payload_len` byte payload.
    pub fn msg(payload_len: usize) -> Self {
        Self::repeat(&msg_frame(None, &payload(payload_len)), payload_len, STREAM_BYTES)
    }

    /// About [`STREAM_BYTES`] of `HMSG` frames with `n_headers` headers and a `payload_len` byte payload.
    pub fn hmsg(n_headers: usize, payload_len: usize) -> Self {
        let block = headers(n_headers).to_block();
        Self::repeat(&msg_frame(Some(&block), &payload(payload_len)), payload_len, STREAM_BYTES)
    }
}

/// What a measured loop saw: checked by the tests, and returned so the optimiser cannot drop the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// Frames (ops) read.
    pub frames: usize,
    /// Sum of the payload lengths (headers excluded for the parsers; the baseline cannot tell them apart).
    pub payload_bytes: usize,
}

/// Decodes every op in `buf` with `decoder`, dropping each one as it goes (as a consumer would). Leaves `buf`
/// empty when the input was whole.
///
/// # Panics
/// On a parse error or an op other than a message: the inputs are known good.
pub fn decode_stream(decoder: &mut ServerDecoder, buf: &mut BytesMut) -> Tally {
    let mut t = Tally::default();
    // One match on the whole result, as the connection's own loop reads ops.
    loop {
        match decoder.decode(buf) {
            Ok(Some(ServerOp::Msg(m))) => {
                t.frames += 1;
                t.payload_bytes += m.payload().len();
                black_box(&m);
            }
            Ok(None) => return t,
            other => panic!("not a message: {other:?}"),
        }
    }
}

/// As [`decode_stream`], and reads `status()` and `get(MSG_ID)` from each message; `payload_bytes` counts the
/// bytes of the `MSG_ID` values found.
///
/// # Panics
/// As [`decode_stream`].
pub fn decode_stream_read_headers(decoder: &mut ServerDecoder, buf: &mut BytesMut) -> Tally {
    let mut t = Tally::default();
    while let Some(op) = decoder.decode(buf).expect("valid stream") {
        let ServerOp::Msg(m) = op else { panic!("not a message: {op:?}") };
        t.frames += 1;
        t.payload_bytes += read_headers(&m);
    }
    t
}

/// Reads `status()` and `get(MSG_ID)` from one message; the length of the value found (0 when absent), plus
/// 1000 when there is a status.
pub fn read_headers(m: &Msg) -> usize {
    let status = black_box(m.status());
    let id = black_box(m.headers().and_then(|h| h.get(MSG_ID)));
    id.map_or(0, str::len) + status.map_or(0, |_| 1000)
}

/// Parses every op in `stream` with the stateless [`parse_server_op`].
///
/// # Panics
/// On a parse error, a trailing partial op, or an op other than a message.
pub fn parse_stream(stream: &[u8], limits: &Limits) -> Tally {
    let mut t = Tally::default();
    let mut rest = stream;
    while !rest.is_empty() {
        match parse_server_op(rest, limits).expect("valid stream") {
            Status::Complete((ServerOpRef::Msg(m), used)) => {
                t.frames += 1;
                t.payload_bytes += m.payload.len();
                black_box(&m);
                rest = &rest[used..];
            }
            Status::Complete((op, _)) => panic!("not a message: {op:?}"),
            Status::Partial => panic!("trailing partial op"),
        }
    }
    t
}

/// The baseline: the least work a framing parser can do. Finds each control line end with `memchr`, reads the
/// last argument's digits (the total size), and skips that many bytes plus CRLF. No validation, no op name, no
/// other arguments. `payload_bytes` is the total size (header block included).
///
/// # Panics
/// If a frame overruns the stream (the baseline trusts its input otherwise).
pub fn memchr_scan(stream: &[u8]) -> Tally {
    let mut t = Tally::default();
    let mut pos = 0;
    while let Some(lf) = memchr::memchr(b'\n', &stream[pos..]) {
        let line = &stream[pos..pos + lf];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let digits = memchr::memrchr(b' ', line).map_or(line, |sp| &line[sp + 1..]);
        let size = digits.iter().fold(0usize, |n, &d| n * 10 + usize::from(d.wrapping_sub(b'0')));
        pos += lf + 1 + size + 2;
        assert!(pos <= stream.len(), "frame overruns the stream");
        t.frames += 1;
        t.payload_bytes += size;
    }
    t
}

/// Refills `buf` with `stream` for the next decoding pass. When `buf` was drained and every op cut from it
/// dropped, the allocation is reclaimed (same address, no allocation): only the copy remains.
pub fn refill(buf: &mut BytesMut, stream: &[u8]) {
    buf.clear();
    buf.extend_from_slice(stream);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use nats_proto::{ClientDecoder, ClientOp, WriteBuffer};

    #[test]
    fn msg_streams_decode_to_the_expected_frames() {
        for (size, label) in PAYLOAD_SIZES {
            let s = Stream::msg(size);
            assert!(s.bytes.len() >= STREAM_BYTES && s.frames > 1, "{label}");
            let want = Tally { frames: s.frames, payload_bytes: s.frames * size };

            let mut buf = BytesMut::from(&s.bytes[..]);
            assert_eq!(decode_stream(&mut ServerDecoder::default(), &mut buf), want, "decoder {label}");
            assert!(buf.is_empty(), "{label}: the decoder consumed everything");
            assert_eq!(parse_stream(&s.bytes, &Limits::default()), want, "stateless {label}");
            assert_eq!(memchr_scan(&s.bytes), want, "memchr_scan {label}");
        }
    }

    #[test]
    fn hmsg_streams_decode_with_headers() {
        let s = Stream::hmsg(3, 128);
        let block_len = headers(3).encoded_len();
        let want = Tally { frames: s.frames, payload_bytes: s.frames * 128 };
        let mut buf = BytesMut::from(&s.bytes[..]);
        assert_eq!(decode_stream(&mut ServerDecoder::default(), &mut buf), want);
        assert_eq!(parse_stream(&s.bytes, &Limits::default()), want);
        let scanned = memchr_scan(&s.bytes);
        assert_eq!(scanned, Tally { frames: s.frames, payload_bytes: s.frames * (block_len + 128) });

        let mut buf = BytesMut::from(&s.bytes[..]);
        let read = decode_stream_read_headers(&mut ServerDecoder::default(), &mut buf);
        assert_eq!(read, Tally { frames: s.frames, payload_bytes: s.frames * MSG_ID_VALUE.len() });
    }

    #[test]
    fn the_first_frame_is_what_the_benches_claim() {
        let s = Stream::msg(16);
        let mut buf = BytesMut::from(&s.bytes[..]);
        let Ok(Some(ServerOp::Msg(m))) = ServerDecoder::default().decode(&mut buf) else { panic!() };
        assert_eq!((m.subject().as_bytes(), m.sid()), (SUBJECT.as_bytes(), SID));
        assert_eq!(m.reply().map(|r| r.as_bytes()), Some(REPLY.as_bytes()));
        assert_eq!(m.payload(), payload(16));
        assert!(m.headers().is_none());
    }

    #[test]
    fn a_corrupt_stream_is_caught() {
        let mut s = Stream::msg(16);
        let last = s.bytes.len() - 1;
        s.bytes[last] = b'x';
        let mut buf = BytesMut::from(&s.bytes[..]);
        let r = std::panic::catch_unwind(move || decode_stream(&mut ServerDecoder::default(), &mut buf));
        assert!(r.is_err(), "a missing payload CRLF must fail the decoding loop");
    }

    #[test]
    fn refill_reuses_the_allocation_once_ops_are_dropped() {
        let s = Stream::msg(128);
        let mut buf = BytesMut::with_capacity(s.bytes.len());
        let mut d = ServerDecoder::default();
        let mut addr = None;
        for _ in 0..3 {
            refill(&mut buf, &s.bytes);
            let a = buf.as_ptr();
            assert_eq!(*addr.get_or_insert(a), a, "the buffer was reallocated");
            assert_eq!(decode_stream(&mut d, &mut buf).frames, s.frames);
        }
    }

    #[test]
    fn encoded_pubs_decode_back() {
        for (size, label) in PAYLOAD_SIZES {
            let p = payload(size);
            let mut w = WriteBuffer::new();
            for _ in 0..10 {
                w.push_pub(SUBJECT.as_bytes(), None, None, &p);
            }
            w.push_hpub(SUBJECT.as_bytes(), None, &headers(2), &p);
            let mut buf = BytesMut::from(&w.copy_to_bytes(w.remaining())[..]);
            let mut d = ClientDecoder::default();
            let mut n = 0;
            while let Some(op) = d.decode(&mut buf).expect("valid") {
                let ClientOp::Pub(p) = op else { panic!("{op:?}") };
                assert_eq!(p.payload.len(), size, "{label}");
                n += 1;
                if n == 11 {
                    assert_eq!(p.headers.and_then(|h| h.get(MSG_ID).map(str::to_owned)).as_deref(), Some(MSG_ID_VALUE));
                }
            }
            assert_eq!((n, buf.len()), (11, 0), "{label}");
        }
    }
}
