//! The WebSocket frame format (RFC 6455, section 5.2): opcodes, headers, masking, and what can go wrong.

use std::fmt;

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask key.
pub const MAX_HEADER: usize = 14;

/// The largest payload a control frame (close, ping, pong) may carry.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

const FIN: u8 = 0x80;
const RSV: u8 = 0x70;
const MASKED: u8 = 0x80;

/// What a frame carries.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// The next fragment of a text or binary message.
    Continuation,
    /// Text (nats-server sends binary; text is accepted all the same, its bytes are the protocol's).
    Text,
    /// Binary: the NATS protocol's bytes.
    Binary,
    /// The peer closes the WebSocket, with an optional status code and reason.
    Close,
    /// A keep-alive the other side must answer with a pong carrying the same payload.
    Ping,
    /// The answer to a ping (or an unsolicited heartbeat).
    Pong,
}

impl OpCode {
    /// The opcode of these four bits, if it is one RFC 6455 defines.
    pub fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// The four bits of this opcode.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// True for close, ping and pong: at most [`MAX_CONTROL_PAYLOAD`] bytes, never fragmented.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A frame the server sent that breaks RFC 6455. The connection cannot go on: the stream's framing is lost.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A reserved bit is set (no extension was agreed, so none may be used).
    ReservedBits,
    /// The opcode is not one RFC 6455 defines.
    UnknownOpCode(u8),
    /// The server masked a frame: only clients mask.
    Masked,
    /// A close, ping or pong frame is fragmented or longer than 125 bytes.
    BadControl,
    /// A continuation frame came with no fragmented message to continue.
    UnexpectedContinuation,
    /// A new text or binary message started before the fragmented one ended.
    UnfinishedMessage,
    /// A 64-bit payload length has its most significant bit set.
    LengthOverflow,
    /// A close frame's payload is one byte long (a status code takes two).
    BadClosePayload,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::ReservedBits => f.write_str("a frame has a reserved bit set"),
            FrameError::UnknownOpCode(op) => write!(f, "a frame has the unknown opcode {op:#x}"),
            FrameError::Masked => f.write_str("the server masked a frame"),
            FrameError::BadControl => f.write_str("a control frame is fragmented or longer than 125 bytes"),
            FrameError::UnexpectedContinuation => f.write_str("a continuation frame continues no message"),
            FrameError::UnfinishedMessage => f.write_str("a new message started inside a fragmented one"),
            FrameError::LengthOverflow => f.write_str("a frame length does not fit in 63 bits"),
            FrameError::BadClosePayload => f.write_str("a close frame's payload is one byte long"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Writes a frame header into `out` and returns its length: `fin` and `opcode`, the payload length in the
/// shortest form (7, 16 or 64 bits), then the mask key if there is one.
pub fn encode_header(out: &mut [u8; MAX_HEADER], opcode: OpCode, fin: bool, len: u64, mask: Option<[u8; 4]>) -> usize {
    out[0] = if fin { FIN } else { 0 } | opcode.bits();
    let masked = if mask.is_some() { MASKED } else { 0 };
    let mut at = match len {
        0..=125 => {
            out[1] = masked | len as u8;
            2
        }
        126..=0xFFFF => {
            out[1] = masked | 126;
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            out[1] = masked | 127;
            out[2..10].copy_from_slice(&len.to_be_bytes());
            10
        }
    };
    if let Some(key) = mask {
        out[at..at + 4].copy_from_slice(&key);
        at += 4;
    }
    at
}

/// A frame header read from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) fin: bool,
    pub(crate) opcode: OpCode,
    /// Payload bytes.
    pub(crate) len: u64,
    /// Header bytes (the payload starts here).
    pub(crate) size: usize,
}

/// How many bytes the frame starting with `first2` needs before it can be acted on: its header, and for a
/// control frame its payload too (at most 125 bytes, kept whole for the pong or the close). Checks everything
/// the first two bytes say, so a bad frame fails before more of it is gathered.
pub(crate) fn needed(first2: [u8; 2]) -> Result<usize, FrameError> {
    let [b0, b1] = first2;
    if b0 & RSV != 0 {
        return Err(FrameError::ReservedBits);
    }
    let opcode = OpCode::from_bits(b0 & 0x0F).ok_or(FrameError::UnknownOpCode(b0 & 0x0F))?;
    if b1 & MASKED != 0 {
        return Err(FrameError::Masked);
    }
    let len7 = usize::from(b1 & 0x7F);
    if opcode.is_control() {
        if b0 & FIN == 0 || len7 > MAX_CONTROL_PAYLOAD {
            return Err(FrameError::BadControl);
        }
        return Ok(2 + len7);
    }
    Ok(match len7 {
        126 => 4,
        127 => 10,
        _ => 2,
    })
}

/// Reads the header at the start of `bytes`, which hold at least what [`needed`] asked for.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header, FrameError> {
    let need = needed([bytes[0], bytes[1]])?;
    debug_assert!(bytes.len() >= need);
    let fin = bytes[0] & FIN != 0;
    // `needed` checked the opcode.
    let opcode = OpCode::from_bits(bytes[0] & 0x0F).ok_or(FrameError::UnknownOpCode(bytes[0] & 0x0F))?;
    let (len, size) = match bytes[1] & 0x7F {
        126 => (u64::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
        127 => {
            let mut be = [0u8; 8];
            be.copy_from_slice(&bytes[2..10]);
            let len = u64::from_be_bytes(be);
            if len >> 63 != 0 {
                return Err(FrameError::LengthOverflow);
            }
            (len, 10)
        }
        short => (u64::from(short), 2),
    };
    Ok(Header { fin, opcode, len, size })
}

/// XORs `data` with the mask `key`, as if `data` began `offset` bytes into the masked payload. Eight bytes at a
/// time: masking is the one pass over every byte a masked connection adds.
pub fn apply_mask(key: [u8; 4], offset: usize, data: &mut [u8]) {
    let mut k = [0u8; 8];
    for (i, b) in k.iter_mut().enumerate() {
        *b = key[(offset + i) % 4];
    }
    let wide = u64::from_ne_bytes(k);
    let mut words = data.chunks_exact_mut(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= k[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_use_the_shortest_length_and_read_back() {
        for (len, size) in [(0u64, 2), (125, 2), (126, 4), (0xFFFF, 4), (0x1_0000, 10), (1 << 40, 10)] {
            let mut out = [0u8; MAX_HEADER];
            let n = encode_header(&mut out, OpCode::Binary, true, len, None);
            assert_eq!(n, size, "{len}");
            let h = parse_header(&out[..n]).unwrap();
            assert_eq!((h.fin, h.opcode, h.len, h.size), (true, OpCode::Binary, len, size));
        }
        let mut out = [0u8; MAX_HEADER];
        let n = encode_header(&mut out, OpCode::Pong, true, 3, Some([1, 2, 3, 4]));
        assert_eq!(&out[..n], &[0x8A, 0x83, 1, 2, 3, 4]);
    }

    #[test]
    fn bad_first_bytes_are_typed_errors() {
        assert_eq!(needed([0x82 | 0x40, 0]), Err(FrameError::ReservedBits));
        assert_eq!(needed([0x83, 0]), Err(FrameError::UnknownOpCode(3)));
        assert_eq!(needed([0x82, 0x80]), Err(FrameError::Masked));
        assert_eq!(needed([0x09, 0]), Err(FrameError::BadControl), "fragmented ping");
        assert_eq!(needed([0x89, 126]), Err(FrameError::BadControl), "long ping");
        assert_eq!(needed([0x89, 5]), Ok(7));
        let mut long = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(parse_header(&long), Err(FrameError::LengthOverflow));
        long[2] = 0;
        assert_eq!(parse_header(&long).unwrap().len, 1);
    }

    #[test]
    fn masking_twice_restores_at_any_offset() {
        let data: Vec<u8> = (0..100u8).collect();
        for offset in 0..8 {
            let mut d = data.clone();
            apply_mask([9, 8, 7, 6], offset, &mut d);
            assert_eq!(d[0], data[0] ^ [9, 8, 7, 6][offset % 4]);
            // Masking in two pieces is masking in one.
            let mut split = data.clone();
            let (a, b) = split.split_at_mut(13);
            apply_mask([9, 8, 7, 6], offset, a);
            apply_mask([9, 8, 7, 6], offset + 13, b);
            assert_eq!(split, d);
            apply_mask([9, 8, 7, 6], offset, &mut d);
            assert_eq!(d, data);
        }
    }
}
