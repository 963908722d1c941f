//! The two ids of a trace context, their lowercase hex form, and where new ones come from.

use std::cell::RefCell;
use std::fmt;

use nats_proto::Rng;

/// A trace id: 16 bytes, never all zero, shared by every span of one trace. Written as 32 lowercase hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId([u8; 16]);

/// A span id (W3C's `parent-id`): 8 bytes, never all zero, one per operation. Written as 16 lowercase hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId([u8; 8]);

impl TraceId {
    /// The id with these bytes; `None` when they are all zero (an invalid trace id).
    pub fn from_bytes(bytes: [u8; 16]) -> Option<Self> {
        (bytes != [0; 16]).then_some(Self(bytes))
    }

    /// The id written as 32 lowercase hex digits; `None` for anything else (uppercase included) or all zeros.
    pub fn from_hex(hex: &str) -> Option<Self> {
        Self::from_bytes(decode_hex(hex.as_bytes())?)
    }

    /// A new random id.
    pub fn random() -> Self {
        loop {
            let (a, b) = with_rng(|rng| (rng.next_u64(), rng.next_u64()));
            let mut bytes = [0; 16];
            bytes[..8].copy_from_slice(&a.to_be_bytes());
            bytes[8..].copy_from_slice(&b.to_be_bytes());
            if let Some(id) = Self::from_bytes(bytes) {
                return id;
            }
        }
    }

    /// Its bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }
}

impl SpanId {
    /// The id with these bytes; `None` when they are all zero (an invalid span id).
    pub fn from_bytes(bytes: [u8; 8]) -> Option<Self> {
        (bytes != [0; 8]).then_some(Self(bytes))
    }

    /// The id written as 16 lowercase hex digits; `None` for anything else (uppercase included) or all zeros.
    pub fn from_hex(hex: &str) -> Option<Self> {
        Self::from_bytes(decode_hex(hex.as_bytes())?)
    }

    /// A new random id.
    pub fn random() -> Self {
        loop {
            if let Some(id) = Self::from_bytes(with_rng(Rng::next_u64).to_be_bytes()) {
                return id;
            }
        }
    }

    /// Its bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex into `out` (twice as long).
pub(crate) fn encode_hex(bytes: &[u8], out: &mut [u8]) {
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
}

/// The value of one lowercase hex digit. The W3C format allows no uppercase.
fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// `N` bytes from exactly `2 * N` lowercase hex digits.
pub(crate) fn decode_hex<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
    if hex.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0; 32];
        encode_hex(&self.0, &mut out);
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&out).unwrap_or_default())
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0; 16];
        encode_hex(&self.0, &mut out);
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&out).unwrap_or_default())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

thread_local! {
    /// Each thread's generator of ids, seeded on first use.
    static RNG: RefCell<Option<Rng>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's generator.
///
/// The workspace's SplitMix64 ([`Rng`]), seeded per thread from std's randomly keyed hasher (keys drawn from
/// the operating system once per thread, then varied per use) over the thread's id and the time: ids need to
/// be unique and unpredictable enough not to collide across processes, not secret (W3C asks for randomness,
/// not for a cryptographic generator). A 64-bit seed per thread and a full-period generator make two threads'
/// sequences overlap only if their seeds fall within the few ids each draws of one another.
fn with_rng<R>(f: impl FnOnce(&mut Rng) -> R) -> R {
    let seeded = || {
        use std::hash::BuildHasher;
        let keys = std::collections::hash_map::RandomState::new();
        Rng::new(keys.hash_one((std::thread::current().id(), std::time::SystemTime::now())))
    };
    // Nothing here needs dropping, so the slot stays usable while the thread is torn down.
    RNG.with(|rng| f(rng.borrow_mut().get_or_insert_with(seeded)))
}
