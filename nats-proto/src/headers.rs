//! NATS/1.0 header blocks (ADR-4).
//!
//! Two types, one per direction:
//! - [`HeaderBlock`]: a received block, validated once when the op is parsed and then read in place (a `Bytes`
//!   slice of the read buffer; lookups allocate nothing).
//! - [`Headers`]: an owned, editable list of headers to send, validated as it is built so that a CR or LF can
//!   never reach the wire.
//!
//! Both keep names as given (case-preserving), allow a name to repeat (multi-valued, in order), look names up
//! case-sensitively with `get`, and offer an explicit case-insensitive `get_ignore_case`.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::HeaderError;

const VERSION: &[u8] = b"NATS/1.0";

/// A three-digit status from the first line of a header block (`NATS/1.0 503`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(u16);

impl StatusCode {
    /// 100: idle heartbeat or flow control (JetStream).
    pub const CONTROL: StatusCode = StatusCode(100);
    /// 404: no messages / not found (JetStream).
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    /// 408: request timeout (JetStream pull).
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    /// 409: conflict (JetStream pull).
    pub const CONFLICT: StatusCode = StatusCode(409);
    /// 503: no responders for a request.
    pub const NO_RESPONDERS: StatusCode = StatusCode(503);

    /// A status from its number, if it has three digits.
    pub fn new(code: u16) -> Option<Self> {
        (100..=999).contains(&code).then_some(Self(code))
    }

    /// The number.
    pub fn as_u16(self) -> u16 {
        self.0
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

fn is_blank(b: &u8) -> bool {
    *b == b' ' || *b == b'\t'
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_blank(first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_blank(last) {
            break;
        }
        s = rest;
    }
    s
}

fn valid_name(name: &[u8]) -> Result<(), HeaderError> {
    if name.is_empty() {
        return Err(HeaderError::EmptyName);
    }
    if name.iter().any(|&b| !(33..=126).contains(&b) || b == b':') {
        return Err(HeaderError::InvalidName);
    }
    Ok(())
}

/// Splits the text after `NATS/1.0` into status and description.
fn parse_status_line(rest: &[u8]) -> Result<(Option<StatusCode>, &[u8]), HeaderError> {
    if rest.is_empty() {
        return Ok((None, b""));
    }
    if !is_blank(&rest[0]) {
        return Err(HeaderError::MissingVersion);
    }
    let rest = trim(rest);
    if rest.is_empty() {
        return Ok((None, b""));
    }
    match rest {
        [a, b, c, tail @ ..] if [a, b, c].iter().all(|d| d.is_ascii_digit()) && tail.first().is_none_or(is_blank) => {
            let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
            let code = StatusCode::new(code).ok_or(HeaderError::InvalidStatus)?;
            Ok((Some(code), trim(tail)))
        }
        _ => Err(HeaderError::InvalidStatus),
    }
}

/// Iterates the CRLF-terminated lines of a block; yields an error for a bare CR or LF.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<&'a [u8], HeaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some(i) = memchr::memchr2(b'\r', b'\n', self.rest) else {
            self.rest = b"";
            return Some(Err(HeaderError::MissingTerminator));
        };
        if self.rest[i] == b'\n' || self.rest.get(i + 1) != Some(&b'\n') {
            self.rest = b"";
            return Some(Err(HeaderError::BareLineBreak));
        }
        let line = &self.rest[..i];
        self.rest = &self.rest[i + 2..];
        Some(Ok(line))
    }
}

/// Validates a whole received block and returns its status code. This is the only pass that can fail; later
/// reads trust it.
pub(crate) fn validate_block(block: &[u8]) -> Result<Option<StatusCode>, HeaderError> {
    if !block.starts_with(VERSION) {
        return Err(HeaderError::MissingVersion);
    }
    if !block.ends_with(b"\r\n\r\n") {
        // A block that ends in a bare line break is reported as such, not as a missing terminator.
        let mut lines = Lines { rest: block };
        if let Some(Err(e)) = lines.find(Result::is_err) {
            return Err(e);
        }
        return Err(HeaderError::MissingTerminator);
    }
    let mut lines = Lines { rest: block };
    let first = lines.next().ok_or(HeaderError::MissingVersion)??;
    let (status, _) = parse_status_line(&first[VERSION.len()..])?;
    let mut ended = false;
    for line in lines {
        let line = line?;
        if ended {
            // Text after the empty line that should have ended the block.
            return Err(HeaderError::MissingTerminator);
        }
        if line.is_empty() {
            ended = true;
            continue;
        }
        let colon = memchr::memchr(b':', line).ok_or(HeaderError::MissingColon)?;
        valid_name(&line[..colon])?;
    }
    if ended {
        Ok(status)
    } else {
        Err(HeaderError::MissingTerminator)
    }
}

/// A received header block, validated, owned (a cheap-to-clone `Bytes`). Read it through
/// [`view`](Self::view), or the shortcuts here.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HeaderBlock(Bytes);

impl HeaderBlock {
    /// Validates `bytes` as a complete header block (`NATS/1.0 ...` through the empty line).
    pub fn parse(bytes: Bytes) -> Result<Self, HeaderError> {
        validate_block(&bytes)?;
        Ok(Self(bytes))
    }

    /// Wraps bytes already validated by the parser.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        Self(bytes)
    }

    /// The block as it was on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The wire bytes as `Bytes` (cheap clone).
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// The block, borrowed: every way of reading it.
    pub fn view(&self) -> HeaderView<'_> {
        HeaderView(&self.0)
    }

    /// The status code, if the first line has one.
    pub fn status(&self) -> Option<StatusCode> {
        self.view().status()
    }

    /// The status description (`No Messages`), empty when there is none or it is not UTF-8.
    pub fn description(&self) -> &str {
        self.view().description()
    }

    /// The first value of `name` (case-sensitive), if it is UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.view().get(name)
    }

    /// All `(name, value)` pairs in wire order, values trimmed of surrounding blanks.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.view().iter()
    }
}

impl fmt::Debug for HeaderBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

/// A received header block, borrowed (from a message's frame, or from a [`HeaderBlock`]). Lookups allocate
/// nothing, and what they return borrows from the block, not from the view.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeaderView<'a>(&'a [u8]);

impl<'a> HeaderView<'a> {
    /// Wraps a block the parser validated.
    pub(crate) fn from_validated(block: &'a [u8]) -> Self {
        Self(block)
    }

    /// The block as it was on the wire.
    pub fn as_bytes(self) -> &'a [u8] {
        self.0
    }

    /// An owned copy.
    pub fn to_block(self) -> HeaderBlock {
        HeaderBlock(Bytes::copy_from_slice(self.0))
    }

    fn status_line(self) -> (Option<StatusCode>, &'a [u8]) {
        let line_end = memchr::memchr(b'\r', self.0).unwrap_or(self.0.len());
        // Validated when the block was built, so the status line parses.
        parse_status_line(&self.0[VERSION.len()..line_end]).unwrap_or((None, b""))
    }

    /// The status code, if the first line has one.
    pub fn status(self) -> Option<StatusCode> {
        self.status_line().0
    }

    /// The status description (`No Messages`), empty when there is none or it is not UTF-8.
    pub fn description(self) -> &'a str {
        core::str::from_utf8(self.status_line().1).unwrap_or("")
    }

    /// All `(name, value)` pairs in wire order, values trimmed of surrounding blanks.
    pub fn iter(self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        Lines { rest: self.0 }.skip(1).map_while(|line| {
            let line = line.ok().filter(|l| !l.is_empty())?;
            let colon = memchr::memchr(b':', line)?;
            Some((&line[..colon], trim(&line[colon + 1..])))
        })
    }

    /// The first value of `name` (case-sensitive) as raw bytes.
    pub fn get_bytes(self, name: &str) -> Option<&'a [u8]> {
        self.iter().find(|(n, _)| *n == name.as_bytes()).map(|(_, v)| v)
    }

    /// The first value of `name` (case-sensitive), if it is UTF-8.
    pub fn get(self, name: &str) -> Option<&'a str> {
        self.get_bytes(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// Every value of `name` (case-sensitive), in order, skipping values that are not UTF-8.
    pub fn get_all<'n>(self, name: &'n str) -> impl Iterator<Item = &'a str> + 'n
    where
        'a: 'n,
    {
        self.iter().filter(move |(n, _)| *n == name.as_bytes()).filter_map(|(_, v)| core::str::from_utf8(v).ok())
    }

    /// The first value whose name equals `name` ignoring ASCII case.
    pub fn get_ignore_case(self, name: &str) -> Option<&'a str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|(_, v)| core::str::from_utf8(v).ok())
    }

    /// An owned, editable copy (invalid UTF-8 is replaced).
    pub fn to_headers(self) -> Headers {
        let (status, description) = self.status_line();
        Headers {
            status,
            description: String::from_utf8_lossy(description).into_owned(),
            entries: self
                .iter()
                .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
        }
    }
}

impl fmt::Debug for HeaderView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        if let Some(status) = self.status() {
            map.entry(&"status", &status.as_u16());
        }
        for (n, v) in self.iter() {
            map.entry(&String::from_utf8_lossy(n), &String::from_utf8_lossy(v));
        }
        map.finish()
    }
}

/// Headers to send: case-preserving, multi-valued, in insertion order, validated as built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    status: Option<StatusCode>,
    description: String,
    entries: Vec<(String, String)>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the status line (`NATS/1.0 <code> <description>`).
    pub fn set_status(&mut self, code: StatusCode, description: &str) -> Result<(), HeaderError> {
        if description.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(HeaderError::InvalidValue);
        }
        self.status = Some(code);
        self.description = description.to_owned();
        Ok(())
    }

    /// The status code, if set.
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// The status description ("" when unset).
    pub fn description(&self) -> &str {
        &self.description
    }

    fn check(name: &str, value: &str) -> Result<(), HeaderError> {
        valid_name(name.as_bytes())?;
        if value.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(HeaderError::InvalidValue);
        }
        Ok(())
    }

    /// Adds a value for `name`, keeping existing ones. Surrounding blanks in `value` are not preserved
    /// on the wire (receivers trim them).
    pub fn append(&mut self, name: &str, value: &str) -> Result<(), HeaderError> {
        Self::check(name, value)?;
        self.entries.push((name.to_owned(), value.to_owned()));
        Ok(())
    }

    /// Replaces every value of `name` (case-sensitive) with `value`.
    pub fn insert(&mut self, name: &str, value: &str) -> Result<(), HeaderError> {
        Self::check(name, value)?;
        self.remove(name);
        self.entries.push((name.to_owned(), value.to_owned()));
        Ok(())
    }

    /// Removes every value of `name` (case-sensitive); true if there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(n, _)| n != name);
        before != self.entries.len()
    }

    /// The first value of `name` (case-sensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (case-sensitive), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The first value whose name equals `name` ignoring ASCII case.
    pub fn get_ignore_case(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// All `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of `(name, value)` pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no pairs and no status.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.status.is_none()
    }

    /// Size of the encoded block in bytes (the `#hdr` field of HPUB).
    pub fn encoded_len(&self) -> usize {
        let status = match self.status {
            Some(_) if self.description.is_empty() => 4,
            Some(_) => 5 + self.description.len(),
            None => 0,
        };
        let entries: usize = self.entries.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        VERSION.len() + status + 2 + entries + 2
    }

    /// Writes the block (`NATS/1.0 ...` through the empty line) into `out`.
    pub fn write_to(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_len());
        out.put_slice(VERSION);
        if let Some(code) = self.status {
            let n = code.as_u16();
            // Three digits: a StatusCode is 100 to 999.
            out.put_slice(&[b' ', b'0' + (n / 100) as u8, b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]);
            if !self.description.is_empty() {
                out.put_u8(b' ');
                out.put_slice(self.description.as_bytes());
            }
        }
        out.put_slice(b"\r\n");
        for (n, v) in &self.entries {
            out.put_slice(n.as_bytes());
            out.put_slice(b": ");
            out.put_slice(v.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
    }

    /// The encoded block.
    pub fn to_block(&self) -> HeaderBlock {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.write_to(&mut out);
        HeaderBlock::from_validated(out.freeze())
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for Headers {
    /// Collects pairs, skipping any that could not be sent (use [`Headers::append`] to see the error).
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> Self {
        let mut h = Headers::new();
        for (n, v) in iter {
            let _ = h.append(n, v);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(s: &str) -> Result<HeaderBlock, HeaderError> {
        HeaderBlock::parse(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn status_only_and_description() {
        let b = block("NATS/1.0 503\r\n\r\n").unwrap();
        assert_eq!(b.status(), Some(StatusCode::NO_RESPONDERS));
        assert_eq!(b.description(), "");
        let b = block("NATS/1.0 404 No Messages\r\nNats-Pending-Messages: 3\r\n\r\n").unwrap();
        assert_eq!(b.status().map(StatusCode::as_u16), Some(404));
        assert_eq!(b.description(), "No Messages");
        assert_eq!(b.get("Nats-Pending-Messages"), Some("3"));
    }

    #[test]
    fn multi_valued_case_preserving() {
        let b = block("NATS/1.0\r\nA: 1\r\na: 2\r\nA:3\r\nEmpty:\r\n\r\n").unwrap();
        assert_eq!(b.get("A"), Some("1"));
        assert_eq!(b.view().get_all("A").collect::<Vec<_>>(), ["1", "3"]);
        assert_eq!(b.get("a"), Some("2"));
        assert_eq!(b.view().get_ignore_case("EMPTY"), Some(""));
        assert_eq!(b.get("B"), None);
        let owned = b.view().to_headers();
        assert_eq!(owned.len(), 4);
        assert_eq!(owned.to_block().view().get_all("A").count(), 2);
    }

    #[test]
    fn malformed_blocks() {
        assert_eq!(block("NATS/2.0\r\n\r\n"), Err(HeaderError::MissingVersion));
        assert_eq!(block("NATS/1.0 50\r\n\r\n"), Err(HeaderError::InvalidStatus));
        assert_eq!(block("NATS/1.0 5035\r\n\r\n"), Err(HeaderError::InvalidStatus));
        assert_eq!(block("NATS/1.0\r\nA: 1\r\n"), Err(HeaderError::MissingTerminator));
        assert_eq!(block("NATS/1.0\r\nA 1\r\n\r\n"), Err(HeaderError::MissingColon));
        assert_eq!(block("NATS/1.0\r\n: 1\r\n\r\n"), Err(HeaderError::EmptyName));
        assert_eq!(block("NATS/1.0\r\nA B: 1\r\n\r\n"), Err(HeaderError::InvalidName));
        assert_eq!(block("NATS/1.0\r\nA: 1\r2\r\n\r\n"), Err(HeaderError::BareLineBreak));
        assert_eq!(block("NATS/1.0\r\nA: 1\n2\r\n\r\n"), Err(HeaderError::BareLineBreak));
        assert_eq!(block("NATS/1.0\r\n\r\nA: 1\r\n\r\n"), Err(HeaderError::MissingTerminator));
    }

    #[test]
    fn building_rejects_line_breaks() {
        let mut h = Headers::new();
        assert_eq!(h.insert("A", "x\r\ny"), Err(HeaderError::InvalidValue));
        assert_eq!(h.insert("A:B", "x"), Err(HeaderError::InvalidName));
        assert_eq!(h.insert("", "x"), Err(HeaderError::EmptyName));
        assert_eq!(h.set_status(StatusCode::NO_RESPONDERS, "a\nb"), Err(HeaderError::InvalidValue));
        h.insert("A", "1").unwrap();
        h.insert("A", "2").unwrap();
        assert_eq!(h.get_all("A").collect::<Vec<_>>(), ["2"]);
        h.set_status(StatusCode::NOT_FOUND, "No Messages").unwrap();
        let b = h.to_block();
        assert_eq!(b.as_bytes(), b"NATS/1.0 404 No Messages\r\nA: 2\r\n\r\n");
        assert_eq!(b.as_bytes().len(), h.encoded_len());
        assert_eq!(HeaderBlock::parse(b.to_bytes()), Ok(b));
    }
}
