//! The decoder's hot path: whole, well-formed `MSG` and `HMSG` frames at the front of the buffer, cut ahead in
//! one piece.
//!
//! This is what a subscriber's connection spends its time on, so it is written for that case alone: the op
//! name in upper case (what nats-server sends), the arguments in under 64 bytes, the whole frame already
//! read, nothing wrong. One pass over the line, eight bytes at a time, finds its end and marks its blanks
//! (no separate line-end search); the arguments are read off the blank mask.
//!
//! The frames found that way one after another (up to [`AHEAD`]) are cut from the read buffer at once, each
//! with the `BytesMut` split (inlined, so each frame's fields are written where they are kept: a `Bytes`
//! returned by a call and copied at once stalls the copy until the call's stores land), and handed out one by
//! one: every message costs exactly one reference count, and a frame is read back long after the split that
//! wrote it.
//!
//! Any other case, including every malformed one, is declined and left to the general path
//! (`head::parse_head` and the resumable framing), the one place that words errors and keeps partial state.
//! Declining costs one more look at the line, which happens at most once per read (the frame cut by the end
//! of the read) or on bad input.

use bytes::{Bytes, BytesMut};

use super::head::{parse_digits, parse_size};
use super::Limits;
use crate::headers::{validate_block, StatusCode};
use crate::op::{Msg, MsgLayout};
use crate::swar::{bytes_equal, controls, gather};

/// How many messages are cut ahead at most: enough to spread the cost of one `BytesMut` split, few enough
/// that the decoder stays small.
pub(crate) const AHEAD: usize = 16;

/// Messages cut from the buffer ahead of the caller: each one's frame, already split, and where its parts are.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ahead {
    /// The frames not handed out yet, from `next` to `len`.
    frames: [Option<Bytes>; AHEAD],
    /// Each frame's layout.
    layouts: [MsgLayout; AHEAD],
    next: usize,
    len: usize,
}

impl Ahead {
    /// The next message cut ahead, if one is left.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Msg> {
        if self.next == self.len {
            return None;
        }
        // Split when the run was cut, not here: the frame is read back long after it was written, which keeps
        // the copy out of the store-to-load forwarding stall of a `Bytes` returned by a call just before.
        let frame = self.frames[self.next].take();
        debug_assert!(frame.is_some(), "every frame from `next` to `len` is cut");
        let frame = frame?;
        let layout = self.layouts[self.next];
        self.next += 1;
        Some(Msg::from_frame(frame, layout))
    }

    /// Cuts every whole, ordinary message at the front of `buf` (up to [`AHEAD`]) and returns the first;
    /// `None` (and `buf` untouched) when the front is not one. Call only when [`pop`](Self::pop) has none.
    pub(crate) fn fill(&mut self, buf: &mut BytesMut, limits: &Limits) -> Option<Msg> {
        let mut at = 0;
        let mut n = 0;
        let mut lens = [0usize; AHEAD];
        while n < AHEAD {
            let Some((layout, len)) = scan(&buf[at..], limits) else { break };
            at += len;
            self.layouts[n] = layout;
            lens[n] = len;
            n += 1;
        }
        match n {
            0 => None,
            1 => Some(Msg::from_frame(buf.split_to(at).freeze(), self.layouts[0])),
            _ => {
                // One reference count per message. Cut from the `BytesMut`, whose split is inlined: each
                // frame's fields are written where they go, not returned through memory and copied at once
                // (a copy that stalls, reading 16 bytes over two 8-byte stores still in flight).
                for (frame, &len) in self.frames.iter_mut().zip(&lens[..n]) {
                    *frame = Some(buf.split_to(len).freeze());
                }
                (self.next, self.len) = (0, n);
                self.pop()
            }
        }
    }

    /// Bytes cut from the buffer and not handed out yet.
    pub(crate) fn held(&self) -> usize {
        self.frames[self.next..self.len].iter().flatten().map(Bytes::len).sum()
    }

    /// Forgets what was cut ahead.
    pub(crate) fn clear(&mut self) {
        for frame in &mut self.frames[self.next..self.len] {
            *frame = None;
        }
        (self.next, self.len) = (0, 0);
    }
}

/// Reads the line from `from`: where its line feed is, and one bit per byte from `from` set for a space (and
/// for every position from the line's end, CR included, on).
///
/// Per word, two tests mark the bytes below 0x21 and the spaces; a word of text and spaces (most of them) is
/// added to the mask as it is, and only the first other control byte is looked at: the CR LF that ends the
/// line. `None` for a tab or another control byte in the line (the general path takes those), past 64 bytes of
/// arguments, or when the buffer ends first.
#[inline]
fn scan_line(buf: &[u8], from: usize) -> Option<(usize, u64)> {
    let mut bits = 0u64;
    for w in 0..8 {
        let at = from + 8 * w;
        let word = u64::from_le_bytes(buf.get(at..at + 8)?.try_into().ok()?);
        let spaces = bytes_equal(word, b' ');
        let other = controls(word) ^ spaces;
        if other == 0 {
            bits |= gather(spaces) << (8 * w);
            continue;
        }
        // The marker is a byte's top bit: the byte starts seven bits below it.
        let shift = other.trailing_zeros() - 7;
        bits |= gather(spaces & ((1 << shift) - 1)) << (8 * w);
        let in_line = 8 * w + shift as usize / 8;
        // The line ends at CR LF (or at a bare LF, which nats-server also takes).
        let lf = match (word >> shift) as u8 {
            b'\r' if buf.get(from + in_line + 1) == Some(&b'\n') => from + in_line + 1,
            b'\n' => from + in_line,
            _ => return None,
        };
        return Some((lf, bits | (!0u64 << in_line)));
    }
    None
}

/// The message at the front of `buf` if it is whole and ordinary: its layout, and the length of its frame.
#[inline]
fn scan(buf: &[u8], limits: &Limits) -> Option<(MsgLayout, usize)> {
    let name = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?);
    let (headers, from) = if name == u32::from_le_bytes(*b"MSG ") {
        (false, 4)
    } else if name == u32::from_le_bytes(*b"HMSG") && buf.get(4) == Some(&b' ') {
        (true, 5)
    } else {
        return None;
    };
    let (lf, blank) = scan_line(buf, from)?;
    if lf > limits.max_control_line {
        return None;
    }
    // An argument starts at text after a blank (or at the beginning), and ends at the blank after it.
    let text = !blank;
    let mut starts = text & ((blank << 1) | 1);
    let mut ends = blank & (text << 1);
    let mut spans = [(0usize, 0usize); 5];
    let mut n = 0;
    while starts != 0 {
        *spans.get_mut(n)? = (from + starts.trailing_zeros() as usize, from + ends.trailing_zeros() as usize);
        starts &= starts - 1;
        ends &= ends - 1;
        n += 1;
    }
    let (lo, hi) = if headers { (4, 5) } else { (3, 4) };
    if n < lo || n > hi {
        return None;
    }
    let arg = |i: usize| buf.get(spans[i].0..spans[i].1);
    // Up to 19 digits here (no overflow check); a 20-digit sid goes the general way.
    let sid = parse_digits(arg(1)?, 19)?;
    let total = parse_size(arg(n - 1)?)?;
    let hdr = if headers { parse_size(arg(n - 2)?)? } else { 0 };
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
    Some((layout, end + 2))
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;

    use super::*;

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
            assert!(Ahead::default().fill(&mut buf, &limits).is_none(), "{:?}", String::from_utf8_lossy(frame));
            assert_eq!(&buf[..], frame, "a declined frame is left as it was");
        }
        let mut buf = BytesMut::from(&b"MSG a.b  7 r.x 2\nhi\r\nMSG"[..]);
        let m = Ahead::default().fill(&mut buf, &limits).expect("runs of spaces and a bare LF are ordinary");
        assert_eq!(
            (m.subject().as_bytes(), m.sid(), m.reply().map(|r| r.as_bytes())),
            (&b"a.b"[..], 7, Some(&b"r.x"[..]))
        );
        assert_eq!(m.payload(), b"hi");
        assert_eq!(&buf[..], b"MSG");
    }

    #[test]
    fn cuts_a_run_of_frames_ahead_and_stops_at_anything_else() {
        let limits = Limits::default();
        let mut wire = Vec::new();
        for i in 0..AHEAD + 3 {
            wire.extend_from_slice(format!("MSG s.{i} {i} {}\r\n{}\r\n", i % 7, "x".repeat(i % 7)).as_bytes());
        }
        wire.extend_from_slice(b"PING\r\nMSG a 1 2\r\nhi\r\n");
        let mut buf = BytesMut::from(&wire[..]);
        let mut ahead = Ahead::default();
        let mut got = Vec::new();
        loop {
            let m = match ahead.pop() {
                Some(m) => m,
                None => match ahead.fill(&mut buf, &limits) {
                    Some(m) => m,
                    None => break,
                },
            };
            got.push((m.subject().as_bytes().to_vec(), m.sid(), m.payload().to_vec()));
            if got.len() == 1 {
                assert!(buf.starts_with(format!("MSG s.{AHEAD} ").as_bytes()), "a whole run is cut at once");
                assert_eq!(ahead.held() + buf.len() + b"MSG s.0 0 0\r\n\r\n".len(), wire.len());
            }
        }
        assert_eq!(got.len(), AHEAD + 3, "stops at the PING");
        for (i, (subject, sid, payload)) in got.iter().enumerate() {
            assert_eq!((subject.as_slice(), *sid), (format!("s.{i}").as_bytes(), i as u64));
            assert_eq!(payload, &"x".repeat(i % 7).into_bytes());
        }
        assert_eq!((ahead.held(), &buf[..]), (0, &b"PING\r\nMSG a 1 2\r\nhi\r\n"[..]));
        ahead.clear();
        assert!(ahead.pop().is_none());
    }
}
