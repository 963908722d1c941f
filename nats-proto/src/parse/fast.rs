//! The decoder's hot path: a whole, well-formed `MSG` or `HMSG` at the front of the buffer, cut in one pass.
//!
//! This is what a subscriber's connection spends its time on, so it is written for that case alone: the op
//! name in upper case (what nats-server sends), the arguments in under 64 bytes, the whole frame already
//! read, nothing wrong. One pass over the line, eight bytes at a time, finds its end and marks its blanks
//! (no separate line-end search); the arguments are read off the blank mask; the op is cut as one `Bytes`.
//!
//! Any other case, including every malformed one, is declined and left to the general path
//! (`head::parse_head` and the resumable framing), the one place that words errors and keeps partial state.
//! Declining costs one more look at the line, which happens at most once per read (the frame cut by the end
//! of the read) or on bad input.

use bytes::BytesMut;

use super::head::{parse_size, parse_u64};
use super::Limits;
use crate::headers::{validate_block, StatusCode};
use crate::op::{Msg, MsgLayout};

/// 0x80 in every byte of `word` below 0x21: space, tab, CR, LF and the other control bytes.
fn controls(word: u64) -> u64 {
    !(((word & 0x7f7f_7f7f_7f7f_7f7f) + 0x5f5f_5f5f_5f5f_5f5f) | word) & 0x8080_8080_8080_8080
}

/// Reads the line from `from`: where its line feed is, and one bit per byte from `from` set for a space (and
/// for every position from the line's end, CR included, on).
///
/// Per word, one test finds every byte below 0x21; those are looked at one by one, and there are only a few:
/// the spaces between arguments, then the CR LF. `None` for a tab or another control byte in the line (the
/// general path takes those), past 64 bytes of arguments, or when the buffer ends first.
fn scan_line(buf: &[u8], from: usize) -> Option<(usize, u64)> {
    let mut bits = 0u64;
    for w in 0..8 {
        let at = from + 8 * w;
        let word = u64::from_le_bytes(buf.get(at..at + 8)?.try_into().ok()?);
        let mut low = controls(word);
        while low != 0 {
            let byte = (low.trailing_zeros() / 8) as usize;
            low &= low - 1;
            let pos = at + byte;
            match buf[pos] {
                b' ' => bits |= 1 << (8 * w + byte),
                // The line ends at CR LF (or at a bare LF, which nats-server also takes).
                b'\r' if buf.get(pos + 1) == Some(&b'\n') => return Some((pos + 1, bits | (!0u64 << (pos - from)))),
                b'\n' => return Some((pos, bits | (!0u64 << (pos - from)))),
                _ => return None,
            }
        }
    }
    None
}

/// Cuts the message at the front of `buf` if it is whole and ordinary; `None` leaves `buf` untouched.
pub(crate) fn cut(buf: &mut BytesMut, limits: &Limits) -> Option<Msg> {
    let (headers, from) = match &buf[..] {
        [b'M', b'S', b'G', b' ', ..] => (false, 4),
        [b'H', b'M', b'S', b'G', b' ', ..] => (true, 5),
        _ => return None,
    };
    let (lf, blank) = scan_line(buf, from)?;
    if lf > limits.max_control_line {
        return None;
    }
    // An argument starts at text after a blank (or at the beginning), and ends at the blank after it.
    let text = !blank;
    let mut starts = text & ((blank << 1) | 1);
    let mut ends = blank & (text << 1);
    let n = starts.count_ones() as usize;
    let (lo, hi) = if headers { (4, 5) } else { (3, 4) };
    if n < lo || n > hi {
        return None;
    }
    let mut spans = [(0usize, 0usize); 5];
    for span in spans.iter_mut().take(n) {
        *span = (from + starts.trailing_zeros() as usize, from + ends.trailing_zeros() as usize);
        starts &= starts - 1;
        ends &= ends - 1;
    }
    let arg = |i: usize| &buf[spans[i].0..spans[i].1];
    let sid = parse_u64(arg(1))?;
    let total = parse_size(arg(n - 1))?;
    let hdr = if headers { parse_size(arg(n - 2))? } else { 0 };
    if hdr > total || total > limits.max_payload {
        return None;
    }
    let body = lf + 1;
    let end = body + total;
    if buf.get(end..end + 2)? != b"\r\n" {
        return None;
    }
    let status = match headers {
        true => validate_block(&buf[body..body + hdr]).ok()?.map_or(0, StatusCode::as_u16),
        false => 0,
    };
    // Every offset is under 70 but the payload's, which has at most nine digits: all fit their fields.
    let (reply_at, reply_len) = if n == hi { (spans[2].0 as u32, (spans[2].1 - spans[2].0) as u32) } else { (0, 0) };
    let layout = MsgLayout {
        sid,
        subject_at: spans[0].0 as u16,
        subject_len: (spans[0].1 - spans[0].0) as u32,
        reply_at,
        reply_len,
        body_at: body as u32,
        hdr_len: hdr as u32,
        status,
    };
    Some(Msg::from_frame(buf.split_to(end + 2).freeze(), layout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_exact() {
        for b in 0..=255u8 {
            let word = u64::from_le_bytes([b'a', b, 0xff, b, 0x21, b, 0x80, b]);
            let mask = controls(word);
            for (i, &byte) in word.to_le_bytes().iter().enumerate() {
                assert_eq!(mask >> (8 * i) & 0xff == 0x80, byte < 0x21, "byte {byte:#x} at {i}");
            }
        }
    }

    #[test]
    fn declines_what_the_general_path_must_see() {
        let limits = Limits::default();
        for frame in [
            &b"MSG a\t1 2\r\nhi\r\n"[..], // a tab
            b"msg a 1 2\r\nhi\r\n",       // lower case
            b"MSG a 1 2\r\nhi",           // not all here yet
            b"MSG a 1 2\r\nhi!!",         // no CRLF after the payload
            b"MSG a 1 x 2 3\r\nhi\r\n",   // too many arguments
            b"MSG a x 2\r\nhi\r\n",       // a bad sid
            b"HMSG a 1 9 2\r\nhi\r\n",    // header size over the total
        ] {
            let mut buf = BytesMut::from(frame);
            assert!(cut(&mut buf, &limits).is_none(), "{:?}", String::from_utf8_lossy(frame));
            assert_eq!(&buf[..], frame, "a declined frame is left as it was");
        }
        let mut buf = BytesMut::from(&b"MSG a.b  7 r.x 2\nhi\r\nMSG"[..]);
        let m = cut(&mut buf, &limits).expect("runs of spaces and a bare LF are ordinary");
        assert_eq!(
            (m.subject().as_bytes(), m.sid(), m.reply().map(|r| r.as_bytes())),
            (&b"a.b"[..], 7, Some(&b"r.x"[..]))
        );
        assert_eq!(m.payload(), b"hi");
        assert_eq!(&buf[..], b"MSG");
    }
}
