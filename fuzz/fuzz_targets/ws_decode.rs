//! The WebSocket frame decoder: any bytes, read in any pieces while the core takes any prefix of what is
//! decoded, give the same protocol bytes and the same end as one read; never a panic. The same bytes as an
//! upgrade response give an answer or a typed error.
#![no_main]

use bytes::{Buf, BytesMut};
use libfuzzer_sys::fuzz_target;
use nats_client::ws::{ClientHandshake, FrameDecoder, WsError};

/// Decodes `stream` in reads of `size` bytes, the core taking `take` bytes after each: the protocol bytes in
/// order, and how the stream ended (if it did).
fn run(stream: &[u8], size: usize, take: usize) -> (Vec<u8>, Option<WsError>) {
    let mut decoder = FrameDecoder::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in stream.chunks(size) {
        let start = buf.len();
        buf.extend_from_slice(chunk);
        match decoder.decode(&mut buf, start) {
            Ok(added) => assert_eq!(buf.len(), start + added),
            Err(e) => {
                out.extend_from_slice(&buf);
                return (out, Some(e));
            }
        }
        let n = take.min(buf.len());
        out.extend_from_slice(&buf[..n]);
        buf.advance(n);
    }
    out.extend_from_slice(&buf);
    let end = buf.len();
    let ended = decoder.decode(&mut buf, end).err();
    (out, ended)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else { return };
    let whole = run(stream, stream.len().max(1), usize::MAX);
    let chunked = run(stream, usize::from(seed % 32) + 1, usize::from(seed >> 3));
    assert_eq!(whole, chunked);
    let _ = ClientHandshake::new([seed; 16], seed & 1 == 0).read_response(stream);
});
