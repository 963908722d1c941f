//! Eight bytes at a time: the byte tests the parsers and the subject check share. Each takes a word read
//! little-endian and answers with 0x80 in every byte that passes (the byte's top bit), 0 elsewhere. All are
//! exact: no borrow or carry crosses from one byte into the next.

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// 0x80 in every byte of `word` equal to `b`.
#[inline]
pub(crate) fn bytes_equal(word: u64, b: u8) -> u64 {
    let x = word ^ (ONES * u64::from(b));
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// 0x80 in every byte of `word` below 0x21: space, tab, CR, LF and the other control bytes.
#[inline]
pub(crate) fn controls(word: u64) -> u64 {
    !(((word & LOW7) + 0x5f5f_5f5f_5f5f_5f5f) | word) & HIGH
}

/// One bit per byte from the markers of `marks`: bit `i` for byte `i`.
#[inline]
pub(crate) fn gather(marks: u64) -> u64 {
    // Each marker moves to bit 56 + i; no two partial products meet, so nothing carries.
    (marks >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_value_in_every_position() {
        for b in 0..=255u8 {
            // The byte under test beside its neighbours' extremes, so a borrow or carry would show.
            let word = u64::from_le_bytes([0x00, b, 0xff, b, 0x21, b, 0x80, b]);
            let (eq, low) = (bytes_equal(word, b'.'), controls(word));
            for (i, &byte) in word.to_le_bytes().iter().enumerate() {
                assert_eq!(eq >> (8 * i) & 0xff == 0x80, byte == b'.', "equal: {byte:#x} at {i}");
                assert_eq!(low >> (8 * i) & 0xff == 0x80, byte < 0x21, "controls: {byte:#x} at {i}");
                assert_eq!(gather(low) >> i & 1 == 1, byte < 0x21, "gather: {byte:#x} at {i}");
            }
            assert_eq!(gather(low) >> 8, 0);
            assert_eq!((eq | low) & !HIGH, 0, "markers only");
        }
    }
}
