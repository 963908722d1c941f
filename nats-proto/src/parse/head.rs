//! Control lines: the op name, its arguments, and the sizes that say how long the op is.
//!
//! This is the hot loop of every decoder. A control line is searched for its end once (memchr), and its
//! arguments are found in one pass of eight bytes at a time: each word is turned into a mask of its blanks,
//! and only the edges between blanks and text are visited. Per argument that is a couple of bit operations,
//! not a byte loop with a mispredicted branch at every boundary.

use crate::error::{ParseError, ParseErrorKind};
use crate::swar::{bytes_equal, gather};

use super::{Limits, Side};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Info,
    Connect,
    Msg,
    Hmsg,
    Pub,
    Hpub,
    Sub,
    Unsub,
    Ping,
    Pong,
    Ok,
    Err,
}

/// Start and end of an argument, relative to the start of the op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Span {
    pub(crate) fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start..self.end]
    }
}

/// A parsed control line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) kind: OpKind,
    /// Bytes of the control line including its line end.
    pub(crate) line_len: usize,
    /// Subject; or the JSON of INFO/CONNECT; or the text of -ERR.
    pub(crate) text: Span,
    /// Reply subject (MSG, PUB) or queue group (SUB).
    pub(crate) extra: Option<Span>,
    pub(crate) sid: u64,
    /// Header block size (HMSG, HPUB).
    pub(crate) hdr: usize,
    /// Header block plus payload size.
    pub(crate) total: usize,
    /// UNSUB max.
    pub(crate) max: Option<u64>,
}

impl Head {
    pub(crate) fn has_payload(&self) -> bool {
        matches!(self.kind, OpKind::Msg | OpKind::Hmsg | OpKind::Pub | OpKind::Hpub)
    }

    pub(crate) fn has_headers(&self) -> bool {
        matches!(self.kind, OpKind::Hmsg | OpKind::Hpub)
    }

    /// Bytes of the whole op: control line, then payload and its CRLF when it has one.
    pub(crate) fn frame_len(&self) -> Result<usize, ParseError> {
        if !self.has_payload() {
            return Ok(self.line_len);
        }
        self.line_len
            .checked_add(self.total)
            .and_then(|n| n.checked_add(2))
            .ok_or(ParseError::new(ParseErrorKind::PayloadTooLarge { size: self.total, limit: usize::MAX }, 0))
    }

    /// Checks the CRLF after the payload once the whole frame is in `frame`.
    pub(crate) fn check_crlf(&self, frame: &[u8]) -> Result<(), ParseError> {
        let end = self.line_len + self.total;
        if self.has_payload() && frame.get(end..end + 2) != Some(b"\r\n") {
            return Err(ParseError::new(ParseErrorKind::MissingPayloadCrlf, end));
        }
        Ok(())
    }
}

/// Outcome of looking for a control line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadStatus {
    Complete(Head),
    /// No line end yet; the search may resume at `scanned`.
    Partial {
        scanned: usize,
    },
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn starts_with_ignore_case(line: &[u8], name: &[u8]) -> bool {
    line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name)
}

/// 1 to 9 ASCII digits, as nats-server's `parseSize`.
pub(crate) fn parse_size(digits: &[u8]) -> Option<usize> {
    parse_digits(digits, 9).and_then(|n| usize::try_from(n).ok())
}

/// 1 to `max` decimal digits; `max` is at most 19, so that the value cannot overflow.
#[inline]
pub(crate) fn parse_digits(digits: &[u8], max: usize) -> Option<u64> {
    debug_assert!(max <= 19);
    if digits.is_empty() || digits.len() > max {
        return None;
    }
    let mut n = 0u64;
    for &d in digits {
        let v = d.wrapping_sub(b'0');
        if v > 9 {
            return None;
        }
        n = n * 10 + u64::from(v);
    }
    Some(n)
}

/// 1 to 20 decimal digits that fit a `u64`.
pub(crate) fn parse_u64(digits: &[u8]) -> Option<u64> {
    match digits {
        // Twenty digits: the first nineteen cannot overflow, the last one may.
        [head @ .., last] if digits.len() == 20 => {
            let v = last.wrapping_sub(b'0');
            if v > 9 {
                return None;
            }
            parse_digits(head, 19)?.checked_mul(10)?.checked_add(u64::from(v))
        }
        _ => parse_digits(digits, 19),
    }
}

const MAX_ARGS: usize = 5;
/// 0x80 in every byte of `word` that is a space or a tab.
fn blanks(word: u64) -> u64 {
    bytes_equal(word, b' ') | bytes_equal(word, b'\t')
}

/// Eight bytes of `buf` from `at` as a little-endian word; past the end of `buf`, blanks.
fn word_at(buf: &[u8], at: usize) -> u64 {
    match buf.get(at..at + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().unwrap_or([b' '; 8])),
        None => {
            let mut w = [b' '; 8];
            let rest = buf.get(at..).unwrap_or_default();
            w[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(w)
        }
    }
}

/// One bit per byte of `buf[at..at + 64]`, set for a space or tab, and for every position from `end` on. Words
/// are read from `buf` even past `end` (the payload usually follows the line), so a line's last bytes cost no
/// copy.
fn blank_bits(buf: &[u8], at: usize, end: usize) -> u64 {
    let mut bits = 0;
    for w in 0..8 {
        let pos = at + 8 * w;
        if pos >= end {
            return bits | (!0 << (8 * w));
        }
        // 0x80 per blank byte, moved to bit 0 of each byte, then gathered into the low byte by a multiply.
        let byte_bits = gather(blanks(word_at(buf, pos)));
        bits |= byte_bits << (8 * w);
        if pos + 8 > end {
            // The line ends inside this word: what follows it counts as blank.
            return bits | (!0 << (end - at));
        }
    }
    bits
}

/// Splits `buf[from..end]` (the arguments of a control line) at runs of spaces and tabs into at most
/// [`MAX_ARGS`] spans.
///
/// Sixty-four bytes at a time become a bit mask of blanks; an argument starts where a blank bit is followed by
/// a clear one and ends at the next set bit, so only the edges are visited.
fn split_args(buf: &[u8], from: usize, end: usize, out: &mut [Span; MAX_ARGS]) -> Result<usize, ParseError> {
    let mut n = 0;
    let mut start = 0;
    // The position before the first byte counts as blank: text there starts an argument.
    let mut before = 1u64;
    let mut at = from;
    // Up to and including the position just past the end, which is blank and so ends the last argument.
    while at <= end {
        let blank = blank_bits(buf, at, end);
        let mut edges = blank ^ ((blank << 1) | before);
        before = blank >> 63;
        while edges != 0 {
            let bit = edges.trailing_zeros();
            edges &= edges - 1;
            let pos = at + bit as usize;
            if blank >> bit & 1 == 0 {
                if n == MAX_ARGS {
                    return Err(ParseError::new(ParseErrorKind::WrongArgCount, pos));
                }
                start = pos;
            } else {
                out[n] = Span { start, end: pos };
                n += 1;
            }
        }
        at += 64;
    }
    Ok(n)
}

/// Recognises the op name; returns the kind and where its arguments start.
fn op_name(line: &[u8], side: Side) -> Result<(OpKind, usize), ParseError> {
    // The hot path first: servers send upper-case `MSG ` and `HMSG ` far more often than anything else.
    match (side, line) {
        (Side::Server, [b'M', b'S', b'G', b' ', ..]) => return Ok((OpKind::Msg, 3)),
        (Side::Server, [b'H', b'M', b'S', b'G', b' ', ..]) => return Ok((OpKind::Hmsg, 4)),
        (Side::Client, [b'P', b'U', b'B', b' ', ..]) => return Ok((OpKind::Pub, 3)),
        _ => {}
    }
    let unknown = ParseError::new(ParseErrorKind::UnknownOp, 0);
    // Ops whose trailing bytes the server ignores, and ops whose text follows with optional blanks.
    let loose: &[(&[u8], OpKind)] = match side {
        Side::Server => &[(b"PING", OpKind::Ping), (b"PONG", OpKind::Pong), (b"+OK", OpKind::Ok)],
        Side::Client => &[(b"PING", OpKind::Ping), (b"PONG", OpKind::Pong)],
    };
    for &(name, kind) in loose {
        if starts_with_ignore_case(line, name) {
            return Ok((kind, name.len()));
        }
    }
    let texty: &[(&[u8], OpKind)] = match side {
        Side::Server => &[(b"INFO", OpKind::Info), (b"-ERR", OpKind::Err)],
        Side::Client => &[(b"CONNECT", OpKind::Connect)],
    };
    for &(name, kind) in texty {
        if starts_with_ignore_case(line, name) {
            return Ok((kind, name.len()));
        }
    }
    // Ops with arguments: the name must be followed by a blank (or end the line: then the count is wrong).
    let name_end = memchr::memchr2(b' ', b'\t', line).unwrap_or(line.len());
    let token = &line[..name_end];
    let with_args: &[(&[u8], OpKind)] = match side {
        Side::Server => &[(b"MSG", OpKind::Msg), (b"HMSG", OpKind::Hmsg)],
        Side::Client => {
            &[(b"PUB", OpKind::Pub), (b"HPUB", OpKind::Hpub), (b"SUB", OpKind::Sub), (b"UNSUB", OpKind::Unsub)]
        }
    };
    with_args
        .iter()
        .find(|(name, _)| token.eq_ignore_ascii_case(name))
        .map(|&(_, kind)| (kind, name_end))
        .ok_or(unknown)
}

/// Trims blanks; removes one pair of surrounding single quotes (for -ERR).
fn text_span(line: &[u8], from: usize, unquote: bool) -> Span {
    let mut start = from;
    let mut end = line.len();
    while start < end && is_blank(line[start]) {
        start += 1;
    }
    while end > start && is_blank(line[end - 1]) {
        end -= 1;
    }
    if unquote && end - start >= 2 && line[start] == b'\'' && line[end - 1] == b'\'' {
        start += 1;
        end -= 1;
    }
    Span { start, end }
}

/// Reads the control line at the start of `buf`, resuming the line-end search at `scan_from`.
pub(crate) fn parse_head(buf: &[u8], scan_from: usize, side: Side, limits: &Limits) -> Result<HeadStatus, ParseError> {
    let Some(&first) = buf.first() else {
        return Ok(HeadStatus::Partial { scanned: 0 });
    };
    // INFO and -ERR (server side) or CONNECT (client side) may be long; every other line has the small cap.
    let long_line = match side {
        Side::Server => matches!(first.to_ascii_uppercase(), b'I' | b'-'),
        Side::Client => first.eq_ignore_ascii_case(&b'C'),
    };
    let cap = if long_line { limits.max_info_line } else { limits.max_control_line };
    // The line may be `cap` bytes plus CRLF; look no further than that.
    let window = buf.len().min(cap.saturating_add(2));
    let scan_from = scan_from.min(window);
    let Some(lf) = memchr::memchr(b'\n', &buf[scan_from..window]).map(|i| scan_from + i) else {
        if buf.len() >= cap.saturating_add(2) {
            return Err(ParseError::new(ParseErrorKind::ControlLineTooLong { limit: cap }, cap));
        }
        return Ok(HeadStatus::Partial { scanned: window });
    };
    let line_end = if lf > 0 && buf[lf - 1] == b'\r' { lf - 1 } else { lf };
    if line_end > cap {
        return Err(ParseError::new(ParseErrorKind::ControlLineTooLong { limit: cap }, cap));
    }
    let line = &buf[..line_end];
    let (kind, args_from) = op_name(line, side)?;
    let mut head =
        Head { kind, line_len: lf + 1, text: Span::default(), extra: None, sid: 0, hdr: 0, total: 0, max: None };
    match kind {
        OpKind::Ping | OpKind::Pong | OpKind::Ok => return Ok(HeadStatus::Complete(head)),
        OpKind::Info | OpKind::Connect | OpKind::Err => {
            head.text = text_span(line, args_from, kind == OpKind::Err);
            return Ok(HeadStatus::Complete(head));
        }
        _ => {}
    }
    let mut args = [Span::default(); MAX_ARGS];
    let n = split_args(buf, args_from, line_end, &mut args)?;
    read_args(&mut head, line, &args[..n], args_from)?;
    if head.total > limits.max_payload {
        return Err(ParseError::new(
            ParseErrorKind::PayloadTooLarge { size: head.total, limit: limits.max_payload },
            args[n - 1].start,
        ));
    }
    Ok(HeadStatus::Complete(head))
}

/// Fills `head` from the arguments of a message, SUB or UNSUB op, by their count.
fn read_args(head: &mut Head, line: &[u8], args: &[Span], args_from: usize) -> Result<(), ParseError> {
    let n = args.len();
    let size = |s: Span| parse_size(s.of(line)).ok_or(ParseError::new(ParseErrorKind::InvalidSize, s.start));
    let sid = |s: Span| parse_u64(s.of(line)).ok_or(ParseError::new(ParseErrorKind::InvalidSid, s.start));
    // Argument layouts, by count: which index holds the reply/queue, and where the sizes are.
    match (head.kind, n) {
        (OpKind::Msg, 3 | 4) => {
            head.sid = sid(args[1])?;
            head.extra = (n == 4).then_some(args[2]);
            head.total = size(args[n - 1])?;
        }
        (OpKind::Hmsg, 4 | 5) => {
            head.sid = sid(args[1])?;
            head.extra = (n == 5).then_some(args[2]);
            head.hdr = size(args[n - 2])?;
            head.total = size(args[n - 1])?;
        }
        (OpKind::Pub, 2 | 3) => {
            head.extra = (n == 3).then_some(args[1]);
            head.total = size(args[n - 1])?;
        }
        (OpKind::Hpub, 3 | 4) => {
            head.extra = (n == 4).then_some(args[1]);
            head.hdr = size(args[n - 2])?;
            head.total = size(args[n - 1])?;
        }
        (OpKind::Sub, 2 | 3) => {
            head.extra = (n == 3).then_some(args[1]);
            head.sid = sid(args[n - 1])?;
        }
        (OpKind::Unsub, 1 | 2) => {
            head.sid = sid(args[0])?;
            if n == 2 {
                head.max = Some(size(args[1])? as u64);
            }
            return Ok(());
        }
        _ => return Err(ParseError::new(ParseErrorKind::WrongArgCount, args_from)),
    }
    head.text = args[0];
    if head.hdr > head.total {
        return Err(ParseError::new(ParseErrorKind::HeaderSizeExceedsTotal, args[n - 2].start));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;

    use super::*;

    fn split(s: &[u8]) -> Result<Vec<&[u8]>, ParseError> {
        // Followed by bytes that are not blank: they must not be taken for part of the line.
        let buf = [s, b"xx\r\nzzzzzzzzz"].concat();
        let mut out = [Span::default(); MAX_ARGS];
        let n = split_args(&buf, 0, s.len(), &mut out)?;
        let args: Vec<&[u8]> = out[..n].iter().map(|a| a.of(&buf)).collect();
        Ok(args.into_iter().map(|a| &s[a.as_ptr() as usize - buf.as_ptr() as usize..][..a.len()]).collect())
    }

    /// The obvious byte-at-a-time split, to check the word-at-a-time one against.
    fn split_slowly(s: &[u8]) -> Option<Vec<&[u8]>> {
        let args: Vec<&[u8]> = s.split(|&b| is_blank(b)).filter(|a| !a.is_empty()).collect();
        (args.len() <= MAX_ARGS).then_some(args)
    }

    #[test]
    fn blank_masks_are_exact() {
        for b in 0..=255u8 {
            let word = u64::from_le_bytes([b, 0, b' ', 1, b'\t', 0x21, b, 0x20]);
            let mask = blanks(word);
            for (i, &byte) in word.to_le_bytes().iter().enumerate() {
                assert_eq!(mask >> (8 * i) & 0xff == 0x80, is_blank(byte), "byte {byte:#x} at {i}");
            }
        }
    }

    #[test]
    fn splits_like_the_obvious_loop() {
        let cases: &[&[u8]] = &[
            b"",
            b"a",
            b" a",
            b"a ",
            b"foo.bar 1 12",
            b" \t foo.bar\t\t1   _INBOX.abcdefghijklmnop 1234 ",
            b"subject.foo.bar 1 _INBOX.reply.x 16",
            b"a b c d e",
            b"aaaaaaa bbbbbbbb ccccccccc",
            b"        x",
            b"12345678 12345678",
        ];
        for &c in cases {
            assert_eq!(split(c).ok(), split_slowly(c), "{:?}", String::from_utf8_lossy(c));
        }
        assert_eq!(split(b"a b c d e f").unwrap_err().kind(), ParseErrorKind::WrongArgCount);
    }

    #[test]
    fn blank_bits_are_exact() {
        let s: Vec<u8> = (0..70u8).map(|i| if i % 3 == 0 || i % 7 == 0 { b' ' } else { b'a' + i % 26 }).collect();
        for (at, end) in [(0, 70), (64, 70), (0, 61), (3, 9)] {
            let bits = blank_bits(&s, at, end);
            for i in 0..64 {
                let want = at + i >= end || is_blank(s[at + i]);
                assert_eq!(bits >> i & 1 == 1, want, "byte {} (from {at})", at + i);
            }
        }
    }

    #[test]
    fn long_lines_split_across_blocks() {
        let sixty_three = "s".repeat(63);
        let long = format!("{sixty_three} 1 {} 123", "r".repeat(70));
        let boundary = format!("{} {}", "a".repeat(64), "b".repeat(64));
        for c in [long.as_bytes(), boundary.as_bytes(), "x".repeat(64).as_bytes(), "x".repeat(128).as_bytes()] {
            assert_eq!(split(c).ok(), split_slowly(c), "{} bytes", c.len());
        }
    }

    #[test]
    fn every_layout_of_blanks_up_to_eleven_bytes() {
        // Every string of 'x', ' ' and '\t' of length up to 11 (crossing a word boundary).
        for len in 0..=11u32 {
            for code in 0..3usize.pow(len) {
                let mut c = code;
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        let b = [b'x', b' ', b'\t'][c % 3];
                        c /= 3;
                        b
                    })
                    .collect();
                assert_eq!(split(&s).ok(), split_slowly(&s), "{:?}", String::from_utf8_lossy(&s));
            }
        }
    }

    #[test]
    fn sizes_and_sids() {
        assert_eq!(parse_size(b"0"), Some(0));
        assert_eq!(parse_size(b"999999999"), Some(999_999_999));
        assert_eq!(parse_size(b"1000000000"), None);
        assert_eq!(parse_size(b"1a"), None);
        assert_eq!(parse_size(b""), None);
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"/"), None);
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"9999999999999999999"), Some(9_999_999_999_999_999_999));
        assert_eq!(parse_u64(b"1844674407370955161x"), None);
        assert_eq!(parse_u64(b"000000000000000000001"), None, "21 digits");
        assert_eq!(parse_u64(b""), None);
    }
}
