//! Chunked decode equals one-shot decode: the first byte picks chunk sizes, the rest is the stream.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use nats_proto::{Limits, ParseError, ServerDecoder, ServerOp};

fn run(chunks: &mut dyn Iterator<Item = &[u8]>, limits: Limits) -> Vec<Result<ServerOp, ParseError>> {
    let mut decoder = ServerDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(op)) => out.push(Ok(op)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    if !e.is_frame_local() {
                        return out;
                    }
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else { return };
    let limits = Limits { max_control_line: 128, max_info_line: 512, max_payload: 2048 };
    let whole = run(&mut std::iter::once(stream), limits);
    let size = usize::from(seed % 16) + 1;
    let chunked = run(&mut stream.chunks(size), limits);
    // An error after the last complete op may be reported at a different point when the stream is chunked
    // (a too-long line is noticed once enough bytes arrived), but every op before it must match.
    let ok = |v: &[Result<ServerOp, ParseError>]| v.iter().filter(|r| r.is_ok()).cloned().collect::<Vec<_>>();
    assert_eq!(ok(&whole), ok(&chunked));
    assert_eq!(whole.last().and_then(|r| r.clone().err()), chunked.last().and_then(|r| r.clone().err()));
});
