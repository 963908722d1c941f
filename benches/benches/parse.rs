//! Parsing benchmarks: `MSG` streams per payload size, and `HMSG` with headers.
//!
//! In each group, `decoder` ([`ServerDecoder::decode`] over a `BytesMut`), `stateless` ([`parse_server_op`]
//! over a `&[u8]`) and `memchr_scan` (the least work any framing parser must do) read the same stream, with
//! `Throughput::Bytes` of its length, so their ratios are the overhead of the parser over the bound.
//!
//! The decoder consumes its buffer, so each iteration refills a pre-allocated `BytesMut` first, outside the
//! timed region (`iter_custom`); the other two are timed the same way over the same refilled buffer, so that
//! all three read memory in the same state (a stream read over and over without being written again would
//! sit in the caches as a read buffer does not). `refill_memcpy` measures the copy alone, for reference.
//!
//! [`ServerDecoder::decode`]: nats_proto::ServerDecoder::decode
//! [`parse_server_op`]: nats_proto::parse_server_op

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::{
    decode_stream, decode_stream_read_headers, memchr_scan, parse_stream, read_headers, refill, Stream, Tally,
    PAYLOAD_SIZES,
};
use bytes::BytesMut;
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use nats_proto::{Limits, ServerDecoder, ServerOp};

/// Times `run` over a buffer refilled with `stream` before each iteration; the refill is not timed.
///
/// Every parser in a group is timed this way, the baseline included, so that all of them read memory in the
/// same state: just written by the refill, as a read buffer is just written by the kernel.
fn bench_refilled(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    stream: &Stream,
    mut run: impl FnMut(&mut BytesMut) -> Tally,
) {
    let mut buf = BytesMut::with_capacity(stream.bytes.len());
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                refill(&mut buf, &stream.bytes);
                let start = Instant::now();
                let t = run(&mut buf);
                spent += start.elapsed();
                assert_eq!(black_box(t).frames, stream.frames);
            }
            spent
        })
    });
}

/// The functions every parse group holds.
fn bench_stream(g: &mut BenchmarkGroup<'_, WallTime>, stream: &Stream) {
    g.throughput(Throughput::Bytes(stream.bytes.len() as u64));
    let mut decoder = ServerDecoder::default();
    bench_refilled(g, "decoder", stream, |buf| decode_stream(&mut decoder, buf));
    let limits = Limits::default();
    bench_refilled(g, "stateless", stream, |buf| parse_stream(buf, &limits));
    bench_refilled(g, "memchr_scan", stream, |buf| memchr_scan(buf));
    let mut buf = BytesMut::with_capacity(stream.bytes.len());
    g.bench_function("refill_memcpy", |b| {
        b.iter(|| {
            refill(&mut buf, black_box(&stream.bytes));
            black_box(buf.len())
        })
    });
}

fn parse_msg(c: &mut Criterion) {
    for (size, label) in PAYLOAD_SIZES {
        let stream = Stream::msg(size);
        let mut g = c.benchmark_group(format!("parse_msg/{label}"));
        bench_stream(&mut g, &stream);
        g.finish();
    }
}

fn parse_hmsg(c: &mut Criterion) {
    let stream = Stream::hmsg(3, 128);
    let mut g = c.benchmark_group("parse_hmsg/3hdr_128B");
    bench_stream(&mut g, &stream);
    // The same stream again, also reading `status()` and `get("Nats-Msg-Id")` from every message.
    let mut decoder = ServerDecoder::default();
    bench_refilled(&mut g, "decoder_read_headers", &stream, |buf| decode_stream_read_headers(&mut decoder, buf));
    g.finish();

    // Header reads alone, over messages decoded beforehand.
    let mut buf = BytesMut::from(&stream.bytes[..]);
    let mut decoder = ServerDecoder::default();
    let msgs: Vec<_> = std::iter::from_fn(|| match decoder.decode(&mut buf).expect("valid stream")? {
        ServerOp::Msg(m) => Some(m),
        op => panic!("not a message: {op:?}"),
    })
    .collect();
    assert_eq!(msgs.len(), stream.frames);
    let mut g = c.benchmark_group("hmsg_headers");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("status_and_get_msg_id", |b| b.iter(|| msgs.iter().map(read_headers).sum::<usize>()));
    g.finish();
}

criterion_group!(benches, parse_msg, parse_hmsg);
criterion_main!(benches);
