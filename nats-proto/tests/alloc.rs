//! Decoding MSG and HMSG allocates nothing once the read buffer is warm, and reading a header block allocates
//! nothing either.
//!
//! A counting global allocator wraps the system one. Only the thread that armed it is counted, so tests running
//! on other threads of the harness do not disturb a measurement.

use bytes::{Bytes, BytesMut};
use nats_proto::{ClientDecoder, ClientOp, Headers, ServerDecoder, ServerOp, StatusCode, WriteBuffer};
use nats_server_harness::alloc::{allocations, assert_counting, CountingAllocator};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn the_counter_counts() {
    assert_counting();
}

/// MSG with 16 bytes, MSG with a reply, HMSG with headers (and a status), HMSG 503.
fn batch() -> (Bytes, usize) {
    let mut w = WriteBuffer::new();
    let mut h = Headers::new();
    h.set_status(StatusCode::new(408).unwrap(), "Request Timeout").unwrap();
    h.append("Nats-Pending-Messages", "3").unwrap();
    h.append("Nats-Pending-Bytes", "1024").unwrap();
    let h = h.to_block();
    let mut nr = Headers::from_iter([("Nats-Subject", "svc.x")]);
    nr.set_status(StatusCode::NO_RESPONDERS, "").unwrap();
    let nr = nr.to_block();
    let payload = Bytes::from_static(b"0123456789abcdef");
    for i in 0..8u64 {
        w.push_msg(b"bench.msg", i, None, None, &payload);
        w.push_msg(b"bench.req", i, Some(b"_INBOX.abcdef.1234"), None, &payload);
        w.push_msg(b"bench.hmsg", i, Some(b"_INBOX.x.1"), Some(h.as_bytes()), &payload);
        w.push_msg(b"_INBOX.x.2", i, None, Some(nr.as_bytes()), Bytes::new());
    }
    (w.take_bytes(), 32)
}

/// Decodes everything in `buf`, dropping each op; returns (ops, payload bytes, sum of sids, statuses seen).
fn drain(d: &mut ServerDecoder, buf: &mut BytesMut) -> [usize; 4] {
    let mut acc = [0usize; 4];
    while let Ok(Some(op)) = d.decode(buf) {
        if let ServerOp::Msg(m) = op {
            acc[0] += 1;
            acc[1] += m.payload().len();
            acc[2] += m.sid() as usize;
            acc[3] += usize::from(m.status().is_some());
        }
    }
    acc
}

#[test]
fn decoding_msg_and_hmsg_allocates_nothing_after_warm_up() {
    let (batch, per_batch) = batch();
    let mut d = ServerDecoder::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    assert!(batch.len() * 4 < buf.capacity());
    // Warm-up: the first `split_to` turns the buffer into a shared one (one allocation, once).
    for _ in 0..4 {
        buf.extend_from_slice(&batch);
        assert_eq!(drain(&mut d, &mut buf)[0], per_batch);
    }
    const ROUNDS: usize = 2_000;
    let (n, totals) = allocations(|| {
        let mut totals = [0usize; 4];
        for _ in 0..ROUNDS {
            // Every frame of the last batch is dropped, so `reserve` can reclaim the buffer's front.
            buf.extend_from_slice(&batch);
            let acc = drain(&mut d, &mut buf);
            totals.iter_mut().zip(acc).for_each(|(t, a)| *t += a);
        }
        totals
    });
    assert_eq!(totals, [ROUNDS * per_batch, ROUNDS * 8 * 16 * 3, ROUNDS * 4 * 28, ROUNDS * 16]);
    assert!(buf.is_empty());
    assert_eq!(n, 0, "{n} allocations while decoding {} messages", ROUNDS * per_batch);
}

#[test]
fn decoding_pub_and_hpub_allocates_nothing_after_warm_up() {
    let mut w = WriteBuffer::new();
    let h = Headers::from_iter([("Nats-Msg-Id", "abc"), ("A", "1")]);
    for _ in 0..8 {
        w.push_pub(b"bench.pub", Some(b"_INBOX.r"), None, Bytes::from_static(b"0123456789abcdef"));
        w.push_hpub(b"bench.hpub", None, &h, Bytes::from_static(b"0123456789abcdef"));
    }
    let batch = w.take_bytes();
    let mut d = ClientDecoder::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut run = |buf: &mut BytesMut| {
        buf.extend_from_slice(&batch);
        let mut n = 0;
        while let Ok(Some(ClientOp::Pub(p))) = d.decode(buf) {
            n += p.payload.len() + usize::from(p.headers.is_some());
        }
        n
    };
    for _ in 0..4 {
        assert_eq!(run(&mut buf), 16 * 16 + 8);
    }
    let (n, sum) = allocations(|| (0..1_000).map(|_| run(&mut buf)).sum::<usize>());
    assert_eq!(sum, 1_000 * (16 * 16 + 8));
    assert_eq!(n, 0, "{n} allocations while decoding PUB/HPUB");
}

#[test]
fn reading_a_header_block_allocates_nothing() {
    let mut h = Headers::new();
    h.set_status(StatusCode::NOT_FOUND, "No Messages").unwrap();
    for (name, value) in [("Nats-Pending-Messages", "3"), ("A", "1"), ("a", "2"), ("A", "3")] {
        h.append(name, value).unwrap();
    }
    let mut w = WriteBuffer::new();
    w.push_msg(b"x", 1, None, Some(h.to_block().as_bytes()), Bytes::from_static(b"p"));
    let mut buf = BytesMut::from(&w.take_bytes()[..]);
    let Ok(Some(ServerOp::Msg(m))) = ServerDecoder::default().decode(&mut buf) else { panic!("no message") };
    let block = m.headers().expect("headers");
    let (n, seen) = allocations(|| {
        let mut seen = 0usize;
        for _ in 0..100 {
            seen += usize::from(block.status() == Some(StatusCode::NOT_FOUND));
            seen += usize::from(block.description() == "No Messages");
            seen += block.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>();
            seen += usize::from(block.get("A") == Some("1"));
            seen += usize::from(block.get("Missing").is_none());
            seen += block.get_all("A").count();
            seen += usize::from(block.get_ignore_case("nats-pending-messages") == Some("3"));
            seen += usize::from(block.get_bytes("a") == Some(&b"2"[..]));
        }
        seen
    });
    let iter_len = "Nats-Pending-Messages".len() + 1 + 3 * 2;
    assert_eq!(seen, 100 * (2 + iter_len + 2 + 2 + 1 + 1));
    assert_eq!(n, 0, "{n} allocations while reading a header block");
}
