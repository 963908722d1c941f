//! Subjects as received (zero-copy bytes) and the rules for subjects, reply subjects and queue groups we send.
//!
//! The server does not check that subjects are UTF-8, so a [`Subject`] keeps the bytes it was given and only
//! offers a `&str` view when they are valid: a non-UTF-8 subject from some other publisher is data, not a crash.

use alloc::borrow::Cow;
use alloc::string::String;
use core::fmt;

use bytes::Bytes;

use crate::error::SubjectError;

/// A subject: cheap to clone, a slice of the read buffer when received.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Subject(Bytes);

impl Subject {
    /// A subject from a static string, without copying.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// Wraps bytes as they are (no validation: received subjects are whatever the server routed).
    pub fn from_bytes(bytes: Bytes) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The subject as text, when it is UTF-8 (it always is when sent by a well-behaved client).
    pub fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.0).ok()
    }

    /// The subject as text, with invalid UTF-8 replaced.
    pub fn to_string_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// The underlying `Bytes`.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty subject.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Subject {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for Subject {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&String> for Subject {
    fn from(s: &String) -> Self {
        Self::from(s.as_str())
    }
}

impl PartialEq<str> for Subject {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Subject {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl AsRef<[u8]> for Subject {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

/// A subject borrowed from a received message: its bytes, read as text when they are UTF-8. The same views
/// as [`Subject`], without a reference count.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectRef<'a>(&'a [u8]);

impl<'a> SubjectRef<'a> {
    /// Wraps bytes as they are.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(self) -> &'a [u8] {
        self.0
    }

    /// The subject as text, when it is UTF-8 (it always is when sent by a well-behaved client).
    pub fn as_str(self) -> Option<&'a str> {
        core::str::from_utf8(self.0).ok()
    }

    /// The subject as text, with invalid UTF-8 replaced.
    pub fn to_string_lossy(self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.0)
    }

    /// An owned copy.
    pub fn to_subject(self) -> Subject {
        Subject(Bytes::copy_from_slice(self.0))
    }

    /// Length in bytes.
    pub fn len(self) -> usize {
        self.0.len()
    }

    /// True for the empty subject.
    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq<str> for SubjectRef<'_> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for SubjectRef<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<Subject> for SubjectRef<'_> {
    fn eq(&self, other: &Subject) -> bool {
        self.0 == other.as_bytes()
    }
}

impl AsRef<[u8]> for SubjectRef<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0
    }
}

impl fmt::Display for SubjectRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl fmt::Debug for SubjectRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

/// Longest subject we send. The server caps the whole argument part of a control line at 4096 bytes by
/// default; this leaves room for a reply subject of the same size plus the op name and sizes.
pub const MAX_SUBJECT_LEN: usize = 2000;

fn check_chars(s: &[u8]) -> Result<(), SubjectError> {
    if s.is_empty() {
        return Err(SubjectError::Empty);
    }
    if s.len() > MAX_SUBJECT_LEN {
        return Err(SubjectError::TooLong);
    }
    // Any byte at or below space (tab, CR, LF, FF, NUL ...) or DEL would split or corrupt the control line.
    if s.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(SubjectError::Whitespace);
    }
    Ok(())
}

const ORDINARY: u8 = 0;
const BREAKS_LINE: u8 = 1;
const WILD: u8 = 2;
const DOT: u8 = 4;

/// The class of each byte in a subject: breaking the control line (a space, a control byte, DEL), a wildcard
/// character (`*`, `>`: wrong only as a whole token), a dot, or an ordinary one. One bit each, so that a pass
/// can gather them.
const CLASS: [u8; 256] = {
    let mut table = [ORDINARY; 256];
    let mut b = 0;
    while b < 256 {
        if b <= 0x20 || b == 0x7f {
            table[b] = BREAKS_LINE;
        }
        b += 1;
    }
    table[b'*' as usize] = WILD;
    table[b'>' as usize] = WILD;
    table[b'.' as usize] = DOT;
    table
};

/// True when `s` is surely a subject to publish to: no byte that would break the line, no `*` or `>` at all,
/// no dot at either end or beside another. `false` says only "look closer". Eight bytes at a time from eight
/// bytes on (the last word overlaps the one before it), a table lookup a byte below that.
#[inline]
fn plainly_valid(s: &[u8]) -> bool {
    let (Some(&first), Some(&last)) = (s.first(), s.last()) else { return false };
    if first == b'.' || last == b'.' {
        return false;
    }
    if s.len() < 8 {
        let (mut seen, mut prev) = (0, 0);
        for &b in s {
            let class = CLASS[usize::from(b)];
            // A dot beside a dot shows as a wildcard character would: either way, look closer.
            seen |= class | (prev & class) >> 1;
            prev = class;
        }
        return seen & (BREAKS_LINE | WILD) == 0;
    }
    let (mut suspect, mut carry) = (0, 0);
    let mut words = s.chunks_exact(8);
    for word in &mut words {
        let (bad, dots) = suspect_bytes(u64::from_le_bytes(word.try_into().unwrap_or_default()), carry);
        suspect |= bad;
        // The last byte's dot mark, moved to where byte 0 of the next word is marked.
        carry = dots >> 56;
    }
    if let Some(tail) = s.len().checked_sub(8).filter(|_| !words.remainder().is_empty()) {
        // The last eight bytes: they overlap bytes already checked, so every pair that crosses into the
        // remainder lies inside this word, and no carry is needed.
        let word = u64::from_le_bytes(s[tail..].try_into().unwrap_or_default());
        suspect |= suspect_bytes(word, 0).0;
    }
    suspect == 0
}

/// Marks in the bytes of `word` that may break the control line (at or below space, DEL), may be wildcards
/// (`*`, `>`), or may be a dot beside a dot (`carry` marks byte 0 when the byte before the word was a dot);
/// and the word's dot marks. The marks are the cheap kind: one that is set may be wrong (a borrow from a byte
/// that rightly set one: "./" marks two dots), one that should be set never is, so "no marks" is exact and a
/// mark sends the subject to the exact check.
#[inline]
fn suspect_bytes(word: u64, carry: u64) -> (u64, u64) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x21) & !word & HIGH;
    let dots = zero_bytes(word ^ (ONES * u64::from(b'.')));
    let others = zero_bytes(word ^ (ONES * 0x7f))
        | zero_bytes(word ^ (ONES * u64::from(b'*')))
        | zero_bytes(word ^ (ONES * u64::from(b'>')));
    (below_space | others | (dots & (dots << 8 | carry)), dots)
}

/// Checks a subject to publish to, or a reply subject: non-empty tokens, no whitespace, no wildcards.
///
/// This runs on every publish: the usual subject is cleared by one pass without a branch per byte, and anything
/// that pass cannot clear gets one exact pass, in which a byte that would break the control line wins over a bad
/// token, wherever each is.
#[inline]
pub fn validate_publish_subject(s: &[u8]) -> Result<(), SubjectError> {
    if s.len() <= MAX_SUBJECT_LEN && plainly_valid(s) {
        return Ok(());
    }
    validate_exactly(s)
}

/// [`validate_publish_subject`] byte by byte.
fn validate_exactly(s: &[u8]) -> Result<(), SubjectError> {
    if s.is_empty() {
        return Err(SubjectError::Empty);
    }
    if s.len() > MAX_SUBJECT_LEN {
        return Err(SubjectError::TooLong);
    }
    let token = |t: &[u8]| match t {
        b"" => Some(SubjectError::EmptyToken),
        b"*" | b">" => Some(SubjectError::Wildcard),
        _ => None,
    };
    let mut bad_token = None;
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        // One table lookup per byte; the common byte takes one predictable branch.
        match CLASS[usize::from(b)] {
            // A wildcard character is wrong only as a whole token, which the token check sees.
            ORDINARY | WILD => {}
            BREAKS_LINE => return Err(SubjectError::Whitespace),
            _ => {
                bad_token = bad_token.or_else(|| token(&s[start..i]));
                start = i + 1;
            }
        }
    }
    match bad_token.or_else(|| token(&s[start..])) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Checks a subject to subscribe to: non-empty tokens, no whitespace, `>` only as the last token.
pub fn validate_subscribe_subject(s: &[u8]) -> Result<(), SubjectError> {
    check_chars(s)?;
    let mut tokens = s.split(|&b| b == b'.').peekable();
    while let Some(token) = tokens.next() {
        match token {
            b"" => return Err(SubjectError::EmptyToken),
            b">" if tokens.peek().is_some() => return Err(SubjectError::FullWildcardNotLast),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a queue group name: non-empty, no whitespace (what the server requires).
pub fn validate_queue(q: &[u8]) -> Result<(), SubjectError> {
    check_chars(q)
}

/// True when `subject` (literal) matches the subscription `pattern` (may hold `*` and `>`).
pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut p = pattern.split(|&b| b == b'.');
    let mut s = subject.split(|&b| b == b'.');
    loop {
        match (p.next(), s.next()) {
            (Some(b">"), Some(_)) => return true,
            (Some(b"*"), Some(_)) => {}
            (Some(pt), Some(st)) if pt == st => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_subjects() {
        assert_eq!(validate_publish_subject(b"foo.bar"), Ok(()));
        assert_eq!(validate_publish_subject(b""), Err(SubjectError::Empty));
        assert_eq!(validate_publish_subject(b"foo bar"), Err(SubjectError::Whitespace));
        assert_eq!(validate_publish_subject(b"foo\tbar"), Err(SubjectError::Whitespace));
        assert_eq!(validate_publish_subject(b"foo\r\n"), Err(SubjectError::Whitespace));
        assert_eq!(validate_publish_subject(b".foo"), Err(SubjectError::EmptyToken));
        assert_eq!(validate_publish_subject(b"foo."), Err(SubjectError::EmptyToken));
        assert_eq!(validate_publish_subject(b"foo..bar"), Err(SubjectError::EmptyToken));
        assert_eq!(validate_publish_subject(b"foo.*"), Err(SubjectError::Wildcard));
        assert_eq!(validate_publish_subject(b"foo.>"), Err(SubjectError::Wildcard));
        // Not whole-token wildcards: literal to the server.
        assert_eq!(validate_publish_subject(b"foo*.b>r"), Ok(()));
        assert_eq!(validate_publish_subject(&[b'a'; MAX_SUBJECT_LEN + 1]), Err(SubjectError::TooLong));
    }

    #[test]
    fn whitespace_wins_over_a_bad_token_wherever_each_is() {
        assert_eq!(validate_publish_subject(b"..a b"), Err(SubjectError::Whitespace));
        assert_eq!(validate_publish_subject(b"a b.."), Err(SubjectError::Whitespace));
        assert_eq!(validate_publish_subject(b"*.x\x7f"), Err(SubjectError::Whitespace));
        assert_eq!(validate_publish_subject(b"a.*..b"), Err(SubjectError::Wildcard), "the first bad token");
        assert_eq!(validate_publish_subject(b"a..*"), Err(SubjectError::EmptyToken));
        assert_eq!(validate_publish_subject(b">"), Err(SubjectError::Wildcard));
    }

    #[test]
    fn the_fast_check_clears_ordinary_subjects() {
        for s in [&b"bench.pub"[..], b"a", b"orders.eu.west.2026-12-04.\xc3\xa9t\xc3\xa9", &[b'a'; MAX_SUBJECT_LEN]] {
            assert!(plainly_valid(s), "{:?}", String::from_utf8_lossy(s));
        }
        for s in [&b""[..], b".a", b"a.b.c.d.*", b"abcdefg.", b"abcdefg..h", b"abcdefgh\x7f", b"abc*defgh", b"a b"] {
            assert!(!plainly_valid(s), "{:?}", String::from_utf8_lossy(s));
        }
        // Dots side by side across the boundary of two whole words, and in the overlapping last word.
        for s in [&b"abcdefg..bcdefgh"[..], b"abcdefgh.bcdefg.", b"abcdefghijklmno..b", b"abcdefgh>"] {
            assert!(!plainly_valid(s), "{:?}", String::from_utf8_lossy(s));
        }
        // What the cheap marks may wrongly flag is still valid by the exact check.
        assert_eq!(validate_publish_subject(b"abcdefgh./xyz"), Ok(()));
        assert_eq!(validate_publish_subject(b"a!b~c\x80\xff.\x7e!"), Ok(()));
        for s in [&b"abcdefgh\x1f"[..], b"abcdefghijklmn\x7f", b"abcdefgh\x00ijk", b"\x21\x20\x21\x21\x21\x21\x21\x21"]
        {
            assert!(!plainly_valid(s), "{:?}", String::from_utf8_lossy(s));
        }
    }

    proptest::proptest! {
        /// Whatever the fast check clears is valid, and the answer never depends on which path gave it.
        #[test]
        fn the_fast_check_agrees_with_the_exact_one(
            s in proptest::collection::vec(proptest::sample::select(&b"aaaaaaaaaabbbbbbbbbb\xc3\xc3\x80\xff....//!~*> \t\x7f\x00\x1f\r"[..]), 0..40)
        ) {
            if plainly_valid(&s) {
                proptest::prop_assert_eq!(validate_exactly(&s), Ok(()));
            }
            proptest::prop_assert_eq!(validate_publish_subject(&s), validate_exactly(&s));
        }
    }

    #[test]
    fn subscribe_subjects_and_queues() {
        assert_eq!(validate_subscribe_subject(b"foo.*.bar"), Ok(()));
        assert_eq!(validate_subscribe_subject(b"foo.>"), Ok(()));
        assert_eq!(validate_subscribe_subject(b">"), Ok(()));
        assert_eq!(validate_subscribe_subject(b"foo.>.bar"), Err(SubjectError::FullWildcardNotLast));
        assert_eq!(validate_subscribe_subject(b"foo..bar"), Err(SubjectError::EmptyToken));
        assert_eq!(validate_queue(b"workers"), Ok(()));
        assert_eq!(validate_queue(b""), Err(SubjectError::Empty));
        assert_eq!(validate_queue(b"a b"), Err(SubjectError::Whitespace));
    }

    #[test]
    fn wildcard_matching() {
        assert!(matches(b"foo.*", b"foo.bar"));
        assert!(!matches(b"foo.*", b"foo.bar.baz"));
        assert!(matches(b"foo.>", b"foo.bar.baz"));
        assert!(!matches(b"foo.>", b"foo"));
        assert!(matches(b"foo.bar", b"foo.bar"));
        assert!(!matches(b"foo.bar", b"foo.baz"));
    }

    #[test]
    fn subject_views() {
        let s = Subject::from_bytes(Bytes::from_static(b"a.\xffb"));
        assert_eq!(s.as_str(), None);
        assert_eq!(s.to_string_lossy(), "a.\u{fffd}b");
        assert_eq!(Subject::from("x.y"), "x.y");
    }
}
