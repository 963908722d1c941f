//! Encoding benchmarks: `PUB` per payload size and `HPUB` with two headers, into a reused [`WriteBuffer`].
//!
//! Each iteration encodes a batch of about [`BATCH_BYTES`] of frames and drains the buffer with
//! [`Buf::advance`], as a driver does after writing it out, so the buffer's allocation is reused. Throughput is
//! the wire bytes produced. The baseline, `extend_from_slice`, appends the same pre-encoded frame to a reused
//! `BytesMut` as many times: one copy of the final bytes and nothing else.
//!
//! Payloads of at least [`CHAIN_THRESHOLD`] bytes are chained by reference, not copied, so at 16 KiB
//! `push_pub` can beat the copying baseline.
//!
//! [`WriteBuffer`]: nats_proto::WriteBuffer
//! [`CHAIN_THRESHOLD`]: nats_proto::encode::CHAIN_THRESHOLD

use std::hint::black_box;

use benches::{headers, payload, PAYLOAD_SIZES, SUBJECT};
use bytes::{Buf, Bytes, BytesMut};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use nats_proto::WriteBuffer;

/// Bytes encoded per iteration, about one socket write's worth.
const BATCH_BYTES: usize = 64 * 1024;

/// The frame `push` produces, and how many of them make a batch.
fn batch(push: &impl Fn(&mut WriteBuffer)) -> (Bytes, usize) {
    let mut w = WriteBuffer::new();
    push(&mut w);
    let frame = w.take_bytes();
    let n = BATCH_BYTES.div_ceil(frame.len()).max(1);
    (frame, n)
}

/// Benchmarks `push` into a reused `WriteBuffer`, and the `extend_from_slice` baseline of the same bytes.
fn bench_push(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, push: impl Fn(&mut WriteBuffer)) {
    let (frame, n) = batch(&push);
    g.throughput(Throughput::Bytes((frame.len() * n) as u64));
    let mut w = WriteBuffer::new();
    g.bench_function(name, |b| {
        b.iter(|| {
            for _ in 0..n {
                push(&mut w);
            }
            let len = w.remaining();
            w.advance(len);
            black_box(len)
        })
    });
}

fn bench_baseline(g: &mut BenchmarkGroup<'_, WallTime>, push: impl Fn(&mut WriteBuffer)) {
    let (frame, n) = batch(&push);
    g.throughput(Throughput::Bytes((frame.len() * n) as u64));
    let mut buf = BytesMut::with_capacity(frame.len() * n);
    g.bench_function("extend_from_slice", |b| {
        b.iter(|| {
            for _ in 0..n {
                buf.extend_from_slice(black_box(&frame));
            }
            let len = buf.len();
            buf.clear();
            black_box(len)
        })
    });
}

fn encode_pub(c: &mut Criterion) {
    for (size, label) in PAYLOAD_SIZES {
        let p = payload(size);
        let push = |w: &mut WriteBuffer| {
            w.push_pub(black_box(SUBJECT.as_bytes()), None, None, black_box(&p));
        };
        let mut g = c.benchmark_group(format!("encode_pub/{label}"));
        bench_push(&mut g, "push_pub", push);
        bench_baseline(&mut g, push);
        g.finish();
    }
}

fn encode_hpub(c: &mut Criterion) {
    let p = payload(128);
    let h = headers(2);
    let block = h.to_block();
    let mut g = c.benchmark_group("encode_hpub/2hdr_128B");
    // Headers written straight from the `Headers` entries.
    let push = |w: &mut WriteBuffer| {
        w.push_hpub(black_box(SUBJECT.as_bytes()), None, black_box(&h), black_box(&p));
    };
    bench_push(&mut g, "push_hpub", push);
    // The same frame from a header block encoded once beforehand.
    bench_push(&mut g, "push_pub_block", |w: &mut WriteBuffer| {
        w.push_pub(black_box(SUBJECT.as_bytes()), None, Some(black_box(block.as_bytes())), black_box(&p));
    });
    bench_baseline(&mut g, push);
    g.finish();
}

criterion_group!(benches, encode_pub, encode_hpub);
criterion_main!(benches);
