//! [`Payload`]: a message body to send, borrowed or shared.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};

/// A message body to send, as the caller has it.
///
/// Every publish, request and reply takes `impl Into<Payload>`, so a caller passes what it holds, without
/// converting:
/// - a borrowed slice (`&[u8]`, `&str`, `&Vec<u8>`, `b"..."`) is copied once, into the write buffer, and never
///   held past the call;
/// - a `Bytes` (owned or borrowed) is copied likewise when small, and chained by reference count when it is
///   [`CHAIN_THRESHOLD`](crate::encode::CHAIN_THRESHOLD) bytes or more; a borrowed `&Bytes` costs a reference
///   count only then, so a loop that sends one `Bytes` over and over touches no shared counter;
/// - owned buffers (`Vec<u8>`, `String`, `BytesMut`, `Box<[u8]>`) become a `Bytes` without a copy.
///
/// ```
/// use bytes::Bytes;
/// use nats_proto::Payload;
///
/// let body = Bytes::from_static(b"hello");
/// assert_eq!(Payload::from(&body).as_slice(), b"hello");
/// assert_eq!(Payload::from("hello").len(), 5);
/// assert_eq!(Payload::from(vec![1u8, 2]).into_bytes(), Bytes::from_static(&[1, 2]));
/// ```
#[derive(Debug, Clone)]
pub struct Payload<'a>(Repr<'a>);

#[derive(Debug, Clone)]
enum Repr<'a> {
    Borrowed(&'a [u8]),
    Shared(&'a Bytes),
    Owned(Bytes),
}

impl<'a> Payload<'a> {
    /// The body's bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Borrowed(s) => s,
            Repr::Shared(b) => b,
            Repr::Owned(b) => b,
        }
    }

    /// The body's length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// True for an empty body.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the body is a `Bytes` that can be chained by reference count instead of copied.
    #[inline]
    pub(crate) fn is_shared(&self) -> bool {
        !matches!(self.0, Repr::Borrowed(_))
    }

    /// The body as a `Bytes`: a move when owned, a reference count when shared, a copy when borrowed.
    #[inline]
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Borrowed(s) => Bytes::copy_from_slice(s),
            Repr::Shared(b) => b.clone(),
            Repr::Owned(b) => b,
        }
    }
}

impl Default for Payload<'_> {
    fn default() -> Self {
        Payload(Repr::Borrowed(&[]))
    }
}

impl AsRef<[u8]> for Payload<'_> {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl<'a> From<&'a [u8]> for Payload<'a> {
    #[inline]
    fn from(s: &'a [u8]) -> Self {
        Payload(Repr::Borrowed(s))
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Payload<'a> {
    #[inline]
    fn from(s: &'a [u8; N]) -> Self {
        Payload(Repr::Borrowed(s))
    }
}

impl<'a> From<&'a str> for Payload<'a> {
    #[inline]
    fn from(s: &'a str) -> Self {
        Payload(Repr::Borrowed(s.as_bytes()))
    }
}

impl<'a> From<&'a String> for Payload<'a> {
    #[inline]
    fn from(s: &'a String) -> Self {
        Payload(Repr::Borrowed(s.as_bytes()))
    }
}

impl<'a> From<&'a Vec<u8>> for Payload<'a> {
    #[inline]
    fn from(s: &'a Vec<u8>) -> Self {
        Payload(Repr::Borrowed(s))
    }
}

impl<'a> From<&'a Bytes> for Payload<'a> {
    #[inline]
    fn from(b: &'a Bytes) -> Self {
        Payload(Repr::Shared(b))
    }
}

impl<'a> From<&'a BytesMut> for Payload<'a> {
    #[inline]
    fn from(b: &'a BytesMut) -> Self {
        Payload(Repr::Borrowed(b))
    }
}

impl From<Bytes> for Payload<'_> {
    #[inline]
    fn from(b: Bytes) -> Self {
        Payload(Repr::Owned(b))
    }
}

impl From<BytesMut> for Payload<'_> {
    #[inline]
    fn from(b: BytesMut) -> Self {
        Payload(Repr::Owned(b.freeze()))
    }
}

impl From<Vec<u8>> for Payload<'_> {
    #[inline]
    fn from(v: Vec<u8>) -> Self {
        Payload(Repr::Owned(Bytes::from(v)))
    }
}

impl From<Box<[u8]>> for Payload<'_> {
    #[inline]
    fn from(v: Box<[u8]>) -> Self {
        Payload(Repr::Owned(Bytes::from(v)))
    }
}

impl From<String> for Payload<'_> {
    #[inline]
    fn from(s: String) -> Self {
        Payload(Repr::Owned(Bytes::from(s)))
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;

    #[test]
    fn every_form_reads_the_same_bytes() {
        let b = Bytes::from_static(b"abc");
        let v = b"abc".to_vec();
        let s = String::from("abc");
        let m = BytesMut::from(&b"abc"[..]);
        let forms: Vec<Payload<'_>> = vec![
            (&b"abc"[..]).into(),
            b"abc".into(),
            "abc".into(),
            (&s).into(),
            (&v).into(),
            (&b).into(),
            (&m).into(),
            b.clone().into(),
            m.clone().into(),
            v.clone().into(),
            v.clone().into_boxed_slice().into(),
            s.clone().into(),
        ];
        for p in forms {
            assert_eq!(p.as_slice(), b"abc");
            assert_eq!(p.len(), 3);
            assert!(!p.is_empty());
            assert_eq!(p.into_bytes(), b);
        }
        assert!(Payload::default().is_empty());
    }

    #[test]
    fn shared_and_owned_bytes_are_not_copied() {
        let b = Bytes::from(vec![7u8; 64]);
        assert_eq!(Payload::from(&b).into_bytes().as_ptr(), b.as_ptr());
        assert_eq!(Payload::from(b.clone()).into_bytes().as_ptr(), b.as_ptr());
        let v = vec![1u8; 64];
        let at = v.as_ptr();
        assert_eq!(Payload::from(v).into_bytes().as_ptr(), at);
    }
}
