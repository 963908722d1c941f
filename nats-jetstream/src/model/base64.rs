//! Standard base64 (RFC 4648 §4), the way Go's `encoding/json` writes `[]byte` (the `hdrs` and `data` of a
//! stored message).
//!
//! Our own ~40 lines rather than a dependency: the core stays small. Decoding accepts padded and unpadded
//! input and ignores the unused low bits of the last character; anything else (a foreign character, a
//! misplaced `=`, a length that cannot be base64) is `None`, never a panic.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn sextet(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// Decodes base64 text; `None` when it is not valid base64.
pub(crate) fn decode(text: &[u8]) -> Option<Vec<u8>> {
    // Padding, if any, is one or two '=' that complete the last group of four.
    let body = match text {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] if text.len() % 4 == 0 => rest,
        _ => text,
    };
    if body.len() % 4 == 1 {
        return None; // one character holds only 6 bits: never a whole byte
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    for group in body.chunks(4) {
        let mut bits = 0u32;
        for (i, &c) in group.iter().enumerate() {
            bits |= sextet(c)? << (18 - 6 * i);
        }
        let [_, b0, b1, b2] = bits.to_be_bytes();
        out.extend_from_slice(&[b0, b1, b2][..group.len() - 1]);
    }
    Some(out)
}

/// The URL-safe alphabet (RFC 4648 §5): object names in subjects and object digests, padded as Go's
/// `base64.URLEncoding` writes them.
const URL_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Encodes bytes as padded standard base64.
pub(crate) fn encode(bytes: &[u8]) -> String {
    encode_with(bytes, ALPHABET)
}

/// Encodes bytes as padded URL-safe base64.
pub(crate) fn encode_url(bytes: &[u8]) -> String {
    encode_with(bytes, URL_ALPHABET)
}

fn encode_with(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let mut padded = [0u8; 3];
        padded[..group.len()].copy_from_slice(group);
        let bits = u32::from_be_bytes([0, padded[0], padded[1], padded[2]]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(alphabet[(bits >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn url_safe_alphabet_and_padding() {
        assert_eq!(encode_url(&[0xfb, 0xff]), "-_8=");
        assert_eq!(encode(&[0xfb, 0xff]), "+/8=");
        assert_eq!(encode_url(b"my object.txt"), "bXkgb2JqZWN0LnR4dA==");
    }

    #[test]
    fn rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in vectors {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded.as_bytes()).as_deref(), Some(plain.as_bytes()), "{coded}");
            let unpadded = coded.trim_end_matches('=');
            assert_eq!(decode(unpadded.as_bytes()).as_deref(), Some(plain.as_bytes()), "{unpadded}");
        }
    }

    #[test]
    fn high_alphabet_and_binary() {
        assert_eq!(encode(&[0xfb, 0xff, 0xbf]), "+/+/");
        assert_eq!(decode(b"+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        assert_eq!(decode(b"AA==").unwrap(), [0]);
        assert_eq!(decode(b"TkFUUy8xLjANCg0K").unwrap(), b"NATS/1.0\r\n\r\n");
        // Unused low bits of the last character are ignored, as lenient decoders do.
        assert_eq!(decode(b"Zh==").unwrap(), b"f");
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            &b"Z"[..],
            b"Zm9vY",
            b"Z===",
            b"====",
            b"=",
            b"Zg=",
            b"Zg=a",
            b"Zm=v",
            b"Zm9v\n",
            b"Zm 9",
            b"Zm9-",
            b"Zm9_",
            b"\xff\xfe",
            b"Zg==Zg==",
        ] {
            assert_eq!(decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let coded = encode(&bytes);
            prop_assert_eq!(coded.len() % 4, 0);
            prop_assert_eq!(decode(coded.as_bytes()), Some(bytes.clone()));
            prop_assert_eq!(decode(coded.trim_end_matches('=').as_bytes()), Some(bytes));
        }

        #[test]
        fn decode_is_total(text in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Never panics; when it accepts, the output has the length the input implies.
            if let Some(out) = decode(&text) {
                let body = text.iter().filter(|&&c| c != b'=').count();
                prop_assert_eq!(out.len(), body * 3 / 4);
            }
        }
    }
}
