//! The encoder's unit tests.

use alloc::format;
use alloc::string::ToString;
use alloc::vec;

use super::*;

#[test]
fn decimals_match_display() {
    for n in [0, 1, 9, 10, 99, 100, 4096, 1 << 40, u64::MAX - 1, u64::MAX] {
        let mut digits = [0u8; 20];
        assert_eq!(decimal(n, &mut digits), n.to_string().as_bytes());
        let mut w = WriteBuffer::new();
        w.put_num(n);
        assert_eq!(w.take_bytes(), n.to_string().as_bytes());
    }
}

#[test]
fn every_size_and_number_is_written_as_display_writes_it() {
    let numbers = (0..=1100).chain([9_999, 10_000, 99_999, 100_000, 99_999_999, 100_000_000, 1 << 40]);
    for n in numbers {
        let mut w = WriteBuffer::new();
        w.push_msg(b"s", n, Some(b"r"), None, &b"x"[..]);
        assert_eq!(w.take_bytes(), format!("MSG s {n} r 1\r\nx\r\n").as_bytes());
    }
    for size in 0..=SMALL + 8 {
        let body = vec![b'b'; size];
        let mut w = WriteBuffer::new();
        w.push_pub(b"sub.ject", None, None, &body);
        w.push_pub(b"a", Some(b"_INBOX.r"), None, Bytes::from(body.clone()));
        let text = "b".repeat(size);
        let want = format!("PUB sub.ject {size}\r\n{text}\r\nPUB a _INBOX.r {size}\r\n{text}\r\n");
        assert_eq!(w.remaining(), want.len());
        assert_eq!(w.take_bytes(), want.as_bytes(), "size {size}");
    }
}

#[test]
fn a_written_out_tail_is_filled_again_from_its_start() {
    let mut w = WriteBuffer::new();
    // Room for many ops, so that filling on after written bytes would not run out of it at once.
    for _ in 0..100 {
        w.push_pub(b"s", None, None, &[0u8; 100][..]);
    }
    let start = w.chunk().as_ptr();
    for _ in 0..1000 {
        w.advance(w.remaining());
        w.push_pub(b"s", None, None, &[0u8; 100][..]);
        // Without the reclaim, each round would start where the last ended, and the tail would grow.
        assert_eq!(w.chunk().as_ptr(), start);
    }
}

#[test]
fn a_tail_grown_by_a_large_borrowed_payload_is_given_back_once_written() {
    let mut w = WriteBuffer::new();
    let big = vec![7u8; 3 * KEEP_AT_MOST / 2];
    w.push_pub(b"s", None, None, &big);
    assert!(w.tail.capacity() > KEEP_AT_MOST, "a borrowed payload is copied into the tail");
    w.advance(w.remaining());
    assert!(w.tail.capacity() <= KEEP_AT_MOST);
    w.push_pub(b"s", None, None, &b"x"[..]);
    assert_eq!(w.take_bytes(), &b"PUB s 1\r\nx\r\n"[..]);
}

#[test]
fn small_ops_are_copied_large_payloads_chained() {
    let mut w = WriteBuffer::new();
    w.push_pub(b"a", Some(b"r"), None, Bytes::from_static(b"hi"));
    w.push_sub(b"s", Some(b"q"), 12);
    w.push_unsub(12, Some(5));
    w.push_ping();
    assert_eq!(w.chunks.len(), 0);
    let big = Bytes::from(vec![7u8; CHAIN_THRESHOLD]);
    w.push_pub(b"big", None, None, &big);
    assert_eq!(w.chunks.len(), 2, "tail sealed, payload chained");
    assert_eq!(w.chunks[1].as_ptr(), big.as_ptr(), "the payload is not copied");
    #[cfg(feature = "std")]
    {
        let mut iov = [IoSlice::new(&[]); 8];
        assert_eq!(w.chunks_vectored(&mut iov), 3);
    }
    let all = w.clone().take_bytes();
    assert_eq!(all.len(), w.len());
    let head = b"PUB a r 2\r\nhi\r\nSUB s q 12\r\nUNSUB 12 5\r\nPING\r\nPUB big 4096\r\n";
    assert_eq!(&all[..head.len()], head);
    assert_eq!(&all[all.len() - 2..], b"\r\n");
}

#[test]
fn advance_across_chunks() {
    let mut w = WriteBuffer::new();
    w.push_ping();
    w.push_pub(b"x", None, None, Bytes::from(vec![1u8; CHAIN_THRESHOLD]));
    let total = w.len();
    w.advance(10);
    assert_eq!(w.remaining(), total - 10);
    w.advance(total - 12);
    assert_eq!(w.chunk(), b"\r\n");
    w.advance(2);
    assert!(w.is_empty());
}

#[test]
fn hpub_from_headers() {
    let mut h = crate::Headers::new();
    h.insert("A", "1").unwrap();
    let mut w = WriteBuffer::new();
    w.push_hpub(b"s", None, &h, Bytes::from_static(b"p"));
    assert_eq!(&w.take_bytes()[..], b"HPUB s 18 19\r\nNATS/1.0\r\nA: 1\r\n\r\np\r\n");
}
