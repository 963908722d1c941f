//! Property tests of the WebSocket codec: any framing of a byte stream, read in any pieces while the core takes
//! any prefix of what is decoded, gives back the same bytes; anything the encoder frames, written in any
//! pieces, a server unframes to the same bytes; no input makes the decoder panic.

use std::io::IoSlice;

use bytes::{Buf, BytesMut};
use nats_client::ws::{apply_mask, encode_header, FrameDecoder, FrameEncoder, OpCode, RandomKeys, WsError, MAX_HEADER};
use nats_client::{ConnectOptions, Error};
use proptest::prelude::*;

/// One server frame: unmasked, `fin` or not.
fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut header = [0u8; MAX_HEADER];
    let n = encode_header(&mut header, opcode, fin, payload.len() as u64, None);
    [&header[..n], payload].concat()
}

/// Frames `data` as a server might: messages cut at `cuts`, each message in fragments cut at `frags`, with
/// pings between frames where `pings` says. Returns the wire, and whether it has a ping.
fn server_wire(data: &[u8], cuts: &[usize], frags: &[usize], pings: &[bool]) -> (Vec<u8>, bool) {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    bounds.extend([0, data.len()]);
    bounds.sort_unstable();
    bounds.dedup();
    let mut wire = Vec::new();
    let mut pinged = false;
    let mut ping = pings.iter().cycle();
    let mut frag = frags.iter().cycle();
    for w in bounds.windows(2) {
        let msg = &data[w[0]..w[1]];
        let mut at = 0;
        let mut first = true;
        loop {
            let size = frag.next().copied().unwrap_or(usize::MAX).min(msg.len() - at);
            let last = at + size == msg.len();
            let op = if first { OpCode::Binary } else { OpCode::Continuation };
            wire.extend(frame(op, last, &msg[at..at + size]));
            if *ping.next().unwrap_or(&false) {
                wire.extend(frame(OpCode::Ping, true, b"hb"));
                pinged = true;
            }
            at += size;
            first = false;
            if last {
                break;
            }
        }
    }
    (wire, pinged)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_framing_and_any_reads_decode_to_the_same_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        frags in proptest::collection::vec(1usize..700, 1..6),
        pings in proptest::collection::vec(any::<bool>(), 1..5),
        reads in proptest::collection::vec(1usize..400, 1..12),
        takes in proptest::collection::vec(0usize..500, 1..12),
    ) {
        let (wire, pinged) = server_wire(&data, &cuts, &frags, &pings);
        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::with_capacity(64);
        let mut taken = Vec::new();
        let mut at = 0;
        let mut step = 0;
        while at < wire.len() {
            let n = reads[step % reads.len()].min(wire.len() - at);
            let start = buf.len();
            buf.extend_from_slice(&wire[at..at + n]);
            at += n;
            let added = decoder.decode(&mut buf, start).unwrap();
            prop_assert_eq!(buf.len(), start + added);
            // The core takes some of what is decoded (a whole op), leaving the start of the next.
            let take = takes[step % takes.len()].min(buf.len());
            taken.extend_from_slice(&buf[..take]);
            buf.advance(take);
            step += 1;
        }
        taken.extend_from_slice(&buf);
        prop_assert_eq!(&taken, &data);
        let pong = decoder.take_pong();
        prop_assert_eq!(pong.as_deref(), pinged.then_some(&b"hb"[..]));
    }

    #[test]
    fn any_bytes_give_bytes_or_a_typed_error_never_a_panic(
        wire in proptest::collection::vec(any::<u8>(), 0..600),
        reads in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut at = 0;
        let mut step = 0;
        while at < wire.len() {
            let n = reads[step % reads.len()].min(wire.len() - at);
            let start = buf.len();
            buf.extend_from_slice(&wire[at..at + n]);
            at += n;
            step += 1;
            match decoder.decode(&mut buf, start) {
                Ok(added) => prop_assert_eq!(buf.len(), start + added),
                Err(WsError::Frame(_) | WsError::Closed { .. }) => {
                    prop_assert!(buf.len() <= start + n);
                    break;
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn whatever_the_encoder_frames_a_server_unframes(
        parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..30_000), 0..5),
        writes in proptest::collection::vec(1usize..40_000, 1..6),
        masked in any::<bool>(),
        pong in any::<bool>(),
    ) {
        let mut encoder = if masked { FrameEncoder::masked(RandomKeys::new()) } else { FrameEncoder::unmasked() };
        if pong {
            encoder.queue_pong(b"owed");
        }
        let total: usize = parts.iter().map(Vec::len).sum();
        let mut done = 0;
        let mut wire = Vec::new();
        for step in 0.. {
            let mut skip = done;
            let offered: Vec<IoSlice<'_>> = parts
                .iter()
                .filter_map(|p| {
                    let s = &p[skip.min(p.len())..];
                    skip = skip.saturating_sub(p.len());
                    (!s.is_empty()).then(|| IoSlice::new(s))
                })
                .collect();
            let mut out = [IoSlice::new(&[]); 16];
            let k = encoder.prepare(&offered, &mut out);
            if k == 0 {
                break;
            }
            let limit = writes[step % writes.len()];
            let mut n = 0;
            for s in &out[..k] {
                let take = s.len().min(limit - n);
                wire.extend_from_slice(&s[..take]);
                n += take;
            }
            done += encoder.advance(n);
        }
        prop_assert_eq!(done, total);
        let (frames, data) = server_unframe(&wire, masked);
        prop_assert_eq!(data, parts.concat());
        prop_assert_eq!(frames.first().copied() == Some(OpCode::Pong), pong);
    }
}

/// Unframes client frames as nats-server does: every frame masked (or none), binary data and control frames.
fn server_unframe(mut wire: &[u8], masked: bool) -> (Vec<OpCode>, Vec<u8>) {
    let (mut ops, mut data) = (Vec::new(), Vec::new());
    while !wire.is_empty() {
        let op = OpCode::from_bits(wire[0] & 0x0F).expect("opcode");
        assert_eq!(wire[1] & 0x80 != 0, masked, "mask bit");
        let (len, mut at) = match wire[1] & 0x7F {
            126 => (u16::from_be_bytes([wire[2], wire[3]]) as usize, 4),
            127 => (u64::from_be_bytes(wire[2..10].try_into().unwrap()) as usize, 10),
            n => (n as usize, 2),
        };
        let key: Option<[u8; 4]> = masked.then(|| wire[at..at + 4].try_into().unwrap());
        at += if masked { 4 } else { 0 };
        let mut payload = wire[at..at + len].to_vec();
        if let Some(key) = key {
            apply_mask(key, 0, &mut payload);
        }
        if op == OpCode::Binary {
            data.extend_from_slice(&payload);
        }
        ops.push(op);
        wire = &wire[at + len..];
    }
    (ops, data)
}

#[test]
fn websocket_options_fail_clearly() {
    let err = ConnectOptions::new().server("ws://127.0.0.1:1").require_tls(true).into_parts().err().unwrap();
    assert!(matches!(&err, Error::Options(why) if why.contains("use wss://")), "{err}");
    let err = ConnectOptions::new().server("ws://h").websocket_header("Bad Name", "v").into_parts().err().unwrap();
    assert!(matches!(err, Error::Options(_)));
    let err = ConnectOptions::new().server("ws://h").websocket_header("X", "a\r\nInjected: 1").into_parts();
    assert!(matches!(err, Err(Error::Options(_))));
    let (config, settings, _) = ConnectOptions::new()
        .server("wss://h,ws://g:8080/nats")
        .require_tls(false)
        .websocket_header("Cookie", "jwt=x")
        .websocket_always_mask()
        .into_parts()
        .unwrap();
    assert_eq!(config.servers.iter().map(|a| a.port()).collect::<Vec<_>>(), [443, 8080]);
    assert_eq!(settings.websocket.headers, [("Cookie".to_owned(), "jwt=x".to_owned())]);
    assert!(settings.websocket.always_mask);
    // The header's value stays out of debug output.
    let shown = format!("{:?}", ConnectOptions::new().websocket_header("Cookie", "jwt=secret"));
    assert!(shown.contains("Cookie") && !shown.contains("secret"), "{shown}");
}
