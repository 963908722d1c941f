//! Encoding ops into a caller-owned [`WriteBuffer`].
//!
//! Control lines and small payloads are copied into one growing `BytesMut`; a payload of at least
//! [`CHAIN_THRESHOLD`] bytes given as a `Bytes` is chained (a reference count, no copy), a borrowed one
//! copied. The buffer is a [`bytes::Buf`], so a driver can hand its chunks to `write_vectored` and `advance`
//! by what was written.

use alloc::collections::VecDeque;
#[cfg(feature = "std")]
use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::info::{ConnectInfo, ServerInfo};
use crate::payload::Payload;

/// Payloads this large or larger are chained rather than copied. Below it, a copy is cheaper than the extra
/// iovec and reference count.
pub const CHAIN_THRESHOLD: usize = 4096;

/// The largest number a size field can hold: nats-server parses 1 to 9 digits.
pub const MAX_SIZE_FIELD: u64 = 999_999_999;

/// Bytes waiting to be written: a queue of frozen chunks followed by a tail still being filled.
#[derive(Debug, Default, Clone)]
pub struct WriteBuffer {
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
    len: usize,
}

/// A header block to write: encoded already, or from its entries.
#[derive(Clone, Copy)]
enum Hdr<'a> {
    Block(&'a [u8]),
    Entries(&'a crate::Headers),
}

impl Hdr<'_> {
    fn len(self) -> usize {
        match self {
            Hdr::Block(b) => b.len(),
            Hdr::Entries(h) => h.encoded_len(),
        }
    }
}

/// Room an empty tail keeps for the next bytes; a larger one is given back when it is drained.
const KEEP_AT_MOST: usize = 2 * 1024 * 1024;

/// Bytes of the largest op written in place in one piece.
const SMALL: usize = 192;

/// The decimal digits of `n` (below 100,000,000) packed in a word, first digit lowest, and how many there are.
#[inline]
fn digits_word(mut n: u64) -> (u64, usize) {
    debug_assert!(n < 100_000_000);
    let (mut digits, mut len) = (0u64, 0);
    loop {
        digits = digits << 8 | (u64::from(b'0') + n % 10);
        len += 1;
        n /= 10;
        if n == 0 {
            return (digits, len);
        }
    }
}

/// `" <n>\r\n"` for every size a small op's payload can have, packed in a word (first byte lowest), with its
/// length in bytes in the top byte. A lookup, where working the digits out cost about 25 instructions a publish.
const SIZE_FIELDS: [u64; SMALL + 1] = {
    let mut table = [0u64; SMALL + 1];
    let mut n = 0;
    while n <= SMALL {
        let (mut digits, mut len, mut rest) = (0u64, 0, n as u64);
        loop {
            digits = digits << 8 | (b'0' as u64 + rest % 10);
            len += 1;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let crlf = (b'\r' as u64) | (b'\n' as u64) << 8;
        table[n] = b' ' as u64 | digits << 8 | crlf << (8 * (len + 1)) | ((len + 3) as u64) << 56;
        n += 1;
    }
    table
};

/// `" <n>\r\n"` packed in a word, first byte lowest, and its length in bytes; `n` at most [`SMALL`].
#[inline]
fn size_field(n: usize) -> (u64, usize) {
    let entry = SIZE_FIELDS[n];
    (entry & 0x00ff_ffff_ffff_ffff, (entry >> 56) as usize)
}

/// Appends the first `len` bytes of `word` (lowest first): stored whole, a fixed-size store rather than a
/// call, and cut back.
#[inline]
fn put_word(out: &mut BytesMut, word: u64, len: usize) {
    out.extend_from_slice(&word.to_le_bytes());
    out.truncate(out.len() - (8 - len));
}

/// `n` in decimal, written at the end of `digits` (20 digits hold any `u64`).
#[inline]
fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[i..]
}

/// Writes `n` in decimal without allocating.
#[inline]
fn put_decimal(out: &mut BytesMut, n: u64) {
    if n < 100_000_000 {
        let (word, len) = digits_word(n);
        put_word(out, word, len);
    } else {
        let mut digits = [0u8; 20];
        out.put_slice(decimal(n, &mut digits));
    }
}

/// Appends a small op (one that fits in [`SMALL`] bytes with its fields at their widest) in one piece: one
/// reservation, then each piece copied once, straight from where it lies into the buffer's spare room, and the
/// length set once at the end. Nothing is assembled on the stack first: a copy that reads bytes just written
/// piecemeal stalls until they land (store-to-load forwarding fails), which cost more than the copies it saved.
/// A `BytesMut::extend_from_slice` per piece checked the room and moved the length each time: five pieces,
/// about a quarter of what a whole publish cost in instructions.
///
/// The fields are stored as whole words (a fixed-size store, not a call) and the cursor moved by their length;
/// [`SMALL`] leaves room for the bytes of a word past the end.
#[allow(unsafe_code)]
#[inline]
fn put_small(
    t: &mut BytesMut,
    op: &[u8],
    subject: &[u8],
    sid: Option<u64>,
    reply: Option<&[u8]>,
    body: &[u8],
) -> usize {
    t.reserve(SMALL);
    let spare = t.chunk_mut();
    let mut at = 0;
    let mut put = |bytes: &[u8], len: usize| {
        debug_assert!(len <= bytes.len(), "a piece moves the cursor past no byte it did not write");
        spare[at..at + bytes.len()].copy_from_slice(bytes);
        at += len;
    };
    put(op, op.len());
    put(subject, subject.len());
    if let Some(sid) = sid {
        put(b" ", 1);
        if sid < 100_000_000 {
            let (word, len) = digits_word(sid);
            put(&word.to_le_bytes(), len);
        } else {
            let mut digits = [0u8; 20];
            let digits = decimal(sid, &mut digits);
            put(digits, digits.len());
        }
    }
    if let Some(reply) = reply {
        put(b" ", 1);
        put(reply, reply.len());
    }
    // " <size>\r\n" as one word: the size of a small op has at most 3 digits.
    let (word, len) = size_field(body.len());
    put(&word.to_le_bytes(), len);
    put(body, body.len());
    put(b"\r\n", 2);
    // SAFETY: every byte of `spare[..at]` was written above (each `put` writes at least the bytes it moves the
    // cursor past, from where the last one stopped), and `spare` is the room past the buffer's length, so the
    // first `at` bytes past the length are initialised.
    unsafe { t.advance_mut(at) };
    at
}

impl WriteBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops everything waiting.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.tail.clear();
        self.reclaim();
        self.len = 0;
    }

    /// Takes back the room of bytes written out, so the next bytes go at the start of the allocation (an empty
    /// tail would otherwise go on filling after them, and grow once it reached the end). Never allocates. A
    /// tail grown past [`KEEP_AT_MOST`] (by large borrowed payloads, which are copied) is given back instead.
    fn reclaim(&mut self) {
        // More than the room left after the written bytes: only a reclaim can make it.
        let _ = self.tail.try_reclaim(self.tail.capacity() + 1);
        if self.tail.capacity() > KEEP_AT_MOST {
            self.tail = BytesMut::new();
        }
    }

    /// Moves everything from `other` to the end of `self`.
    pub fn append(&mut self, other: &mut WriteBuffer) {
        other.seal();
        self.seal();
        self.len += other.len;
        self.chunks.append(&mut other.chunks);
        other.len = 0;
    }

    /// Moves the tail into the chunk queue.
    fn seal(&mut self) {
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        self.len += bytes.len();
    }

    fn put_num(&mut self, n: u64) {
        let before = self.tail.len();
        put_decimal(&mut self.tail, n);
        self.len += self.tail.len() - before;
    }

    /// Appends `CONNECT <json>`.
    pub fn push_connect(&mut self, info: &ConnectInfo) {
        self.put(b"CONNECT ");
        self.put(&info.to_json());
        self.put(b"\r\n");
    }

    /// Appends `PUB`, or `HPUB` when `headers` (a complete encoded block) is given. Returns the bytes added.
    #[inline(always)]
    pub fn push_pub<'p>(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: impl Into<Payload<'p>>,
    ) -> usize {
        let op = if headers.is_some() { &b"HPUB "[..] } else { b"PUB " };
        self.push_message(op, subject, None, reply, headers.map(Hdr::Block), payload.into())
    }

    /// Appends `MSG`, or `HMSG` when `headers` is given (server side; for test servers).
    pub fn push_msg<'p>(
        &mut self,
        subject: &[u8],
        sid: u64,
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: impl Into<Payload<'p>>,
    ) -> usize {
        let op = if headers.is_some() { &b"HMSG "[..] } else { b"MSG " };
        self.push_message(op, subject, Some(sid), reply, headers.map(Hdr::Block), payload.into())
    }

    /// Appends `HPUB` with headers written straight from `headers` (no intermediate block). Returns the bytes
    /// added.
    pub fn push_hpub<'p>(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: &crate::Headers,
        payload: impl Into<Payload<'p>>,
    ) -> usize {
        self.push_message(b"HPUB ", subject, None, reply, Some(Hdr::Entries(headers)), payload.into())
    }

    /// One message op. A small one (the common publish) is written straight into the tail under one
    /// reservation, each piece copied once from where it lies; a larger one likewise, with the sizes formatted
    /// once; a large shared payload is chained.
    #[inline(always)]
    fn push_message(
        &mut self,
        op: &[u8],
        subject: &[u8],
        sid: Option<u64>,
        reply: Option<&[u8]>,
        headers: Option<Hdr<'_>>,
        payload: Payload<'_>,
    ) -> usize {
        let body = payload.as_slice();
        let reply_len = reply.map_or(0, |r| r.len() + 1);
        if headers.is_none() && op.len() + subject.len() + reply_len + 42 + body.len() + 4 <= SMALL {
            let n = put_small(&mut self.tail, op, subject, sid, reply, body);
            self.len += n;
            return n;
        }
        self.push_large(op, subject, sid, reply, headers, payload)
    }

    /// [`push_message`](Self::push_message) for an op with headers or too large to be written as a small one.
    fn push_large(
        &mut self,
        op: &[u8],
        subject: &[u8],
        sid: Option<u64>,
        reply: Option<&[u8]>,
        headers: Option<Hdr<'_>>,
        payload: Payload<'_>,
    ) -> usize {
        let start_len = self.len;
        let hdr_len = headers.map_or(0, Hdr::len);
        let size = payload.len();
        // A borrowed body cannot be held past the call: it is copied whatever its size.
        let chained = size >= CHAIN_THRESHOLD && payload.is_shared();
        let inline = if chained { 0 } else { size };
        let t = &mut self.tail;
        let before = t.len();
        // 2 x 21: a space and up to 20 digits for the sid, and the same for the sizes; then CRLFs.
        t.reserve(op.len() + subject.len() + reply.map_or(0, |r| r.len() + 1) + 64 + hdr_len + inline);
        t.extend_from_slice(op);
        t.extend_from_slice(subject);
        if let Some(sid) = sid {
            t.extend_from_slice(b" ");
            put_decimal(t, sid);
        }
        if let Some(reply) = reply {
            t.extend_from_slice(b" ");
            t.extend_from_slice(reply);
        }
        t.extend_from_slice(b" ");
        if headers.is_some() {
            put_decimal(t, hdr_len as u64);
            t.extend_from_slice(b" ");
        }
        put_decimal(t, (hdr_len + size) as u64);
        t.extend_from_slice(b"\r\n");
        match headers {
            Some(Hdr::Block(block)) => t.extend_from_slice(block),
            Some(Hdr::Entries(h)) => h.write_to(t),
            None => {}
        }
        if chained {
            self.len += t.len() - before;
            self.seal();
            self.chunks.push_back(payload.into_bytes());
            self.len += size;
            self.put(b"\r\n");
        } else {
            t.extend_from_slice(payload.as_slice());
            t.extend_from_slice(b"\r\n");
            self.len += t.len() - before;
        }
        self.len - start_len
    }

    /// Appends `SUB <subject> [queue] <sid>`.
    pub fn push_sub(&mut self, subject: &[u8], queue: Option<&[u8]>, sid: u64) {
        self.put(b"SUB ");
        self.put(subject);
        if let Some(q) = queue {
            self.put(b" ");
            self.put(q);
        }
        self.put(b" ");
        self.put_num(sid);
        self.put(b"\r\n");
    }

    /// Appends `UNSUB <sid> [max]`. nats-server reads at most 9 digits, so a larger `max` is sent as
    /// 999,999,999 (a client counts locally and unsubscribes at its own max anyway).
    pub fn push_unsub(&mut self, sid: u64, max: Option<u64>) {
        self.put(b"UNSUB ");
        self.put_num(sid);
        if let Some(max) = max {
            self.put(b" ");
            self.put_num(max.min(MAX_SIZE_FIELD));
        }
        self.put(b"\r\n");
    }

    /// Appends `PING`.
    pub fn push_ping(&mut self) {
        self.put(b"PING\r\n");
    }

    /// Appends `PONG`.
    pub fn push_pong(&mut self) {
        self.put(b"PONG\r\n");
    }

    /// Appends `INFO <json>` (server side).
    pub fn push_info(&mut self, info: &ServerInfo) {
        self.put(b"INFO ");
        // Serializing a struct of plain fields cannot fail.
        self.put(&serde_json::to_vec(info).unwrap_or_default());
        self.put(b"\r\n");
    }

    /// Appends `+OK` (server side).
    pub fn push_ok(&mut self) {
        self.put(b"+OK\r\n");
    }

    /// Appends `-ERR '<text>'` (server side).
    pub fn push_err(&mut self, text: &str) {
        self.put(b"-ERR '");
        self.put(text.as_bytes());
        self.put(b"'\r\n");
    }

    /// Everything waiting, as one contiguous `Bytes` (copies when there is more than one chunk).
    pub fn take_bytes(&mut self) -> Bytes {
        self.seal();
        self.len = 0;
        match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks.pop_front().unwrap_or_default(),
            _ => {
                let mut all = BytesMut::with_capacity(self.chunks.iter().map(Bytes::len).sum());
                for c in self.chunks.drain(..) {
                    all.extend_from_slice(&c);
                }
                all.freeze()
            }
        }
    }
}

impl Buf for WriteBuffer {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        self.chunks.front().map_or(&self.tail[..], |c| &c[..])
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.len, "advance past the end of a WriteBuffer");
        self.len -= cnt;
        while cnt > 0 {
            match self.chunks.front_mut() {
                Some(c) if c.len() <= cnt => {
                    cnt -= c.len();
                    self.chunks.pop_front();
                }
                Some(c) => {
                    c.advance(cnt);
                    return;
                }
                None => {
                    self.tail.advance(cnt);
                    if self.tail.is_empty() {
                        self.reclaim();
                    }
                    return;
                }
            }
        }
    }

    /// Every chunk, for `write_vectored` (needs the `std` feature, as `bytes` does).
    #[cfg(feature = "std")]
    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for c in &self.chunks {
            if n == dst.len() {
                return n;
            }
            dst[n] = IoSlice::new(c);
            n += 1;
        }
        if n < dst.len() && !self.tail.is_empty() {
            dst[n] = IoSlice::new(&self.tail);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests;
