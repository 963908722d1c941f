//! The codec on its own: the handshake's bytes, frames in and out, every rule's typed error.

use std::io::IoSlice;

use bytes::BytesMut;

use super::*;

/// A server frame (unmasked).
fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut header = [0u8; MAX_HEADER];
    let op = OpCode::from_bits(opcode).unwrap();
    let n = encode_header(&mut header, op, fin, payload.len() as u64, None);
    let mut out = header[..n].to_vec();
    out.extend_from_slice(payload);
    out
}

/// Unframes client frames as a server would: (opcode, unmasked payload, was masked) each.
fn client_frames(mut wire: &[u8]) -> Vec<(OpCode, Vec<u8>, bool)> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        let op = OpCode::from_bits(wire[0] & 0x0F).unwrap();
        let masked = wire[1] & 0x80 != 0;
        let (len, mut at) = match wire[1] & 0x7F {
            126 => (u16::from_be_bytes([wire[2], wire[3]]) as usize, 4),
            127 => (u64::from_be_bytes(wire[2..10].try_into().unwrap()) as usize, 10),
            n => (n as usize, 2),
        };
        let key = masked.then(|| {
            let k: [u8; 4] = wire[at..at + 4].try_into().unwrap();
            at += 4;
            k
        });
        let mut payload = wire[at..at + len].to_vec();
        if let Some(k) = key {
            apply_mask(k, 0, &mut payload);
        }
        out.push((op, payload, masked));
        wire = &wire[at + len..];
    }
    out
}

#[test]
fn accept_key_is_rfc_6455s_example() {
    assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn the_request_carries_key_version_no_masking_and_extra_headers() {
    let h = ClientHandshake::new(*b"the sample nonce", true);
    assert_eq!(h.key(), "dGhlIHNhbXBsZSBub25jZQ==");
    let req = String::from_utf8(h.request("[::1]:80", "/nats?x=1", &[("Cookie".into(), "jwt=abc".into())])).unwrap();
    assert!(req.starts_with("GET /nats?x=1 HTTP/1.1\r\nHost: [::1]:80\r\n"), "{req}");
    for line in ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Nats-No-Masking: true"] {
        assert!(req.contains(&format!("\r\n{line}\r\n")), "{line} in {req}");
    }
    assert!(req.ends_with("\r\nCookie: jwt=abc\r\n\r\n"), "{req}");
    let masked = String::from_utf8(ClientHandshake::new([0; 16], false).request("h:1", "", &[])).unwrap();
    assert!(masked.starts_with("GET / HTTP/1.1") && !masked.contains("Nats-No-Masking"), "{masked}");
}

fn response(h: &ClientHandshake, extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_key(h.key())
    )
}

#[test]
fn a_response_is_read_whole_at_any_split_and_the_rest_is_frames() {
    let h = ClientHandshake::new([3; 16], true);
    let mut wire = response(&h, "nats-no-masking: TRUE\r\n").into_bytes();
    let len = wire.len();
    wire.extend_from_slice(&frame(2, true, b"INFO {}\r\n"));
    for cut in 0..len {
        assert_eq!(h.read_response(&wire[..cut]), Ok(None), "partial at {cut}");
    }
    assert_eq!(h.read_response(&wire), Ok(Some(Upgraded { no_masking: true, consumed: len })));
    // Not echoed, or not asked: frames stay masked.
    assert!(!h.read_response(response(&h, "").as_bytes()).unwrap().unwrap().no_masking);
    let h2 = ClientHandshake::new([3; 16], false);
    assert!(!h2.read_response(response(&h2, "Nats-No-Masking: true\r\n").as_bytes()).unwrap().unwrap().no_masking);
}

#[test]
fn bad_responses_are_typed_errors() {
    let h = ClientHandshake::new([5; 16], true);
    let refused = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        h.read_response(refused.as_bytes()),
        Err(HandshakeError::Status { code: 403, reason: "Forbidden".into() })
    );
    let wrong_key = response(&ClientHandshake::new([6; 16], true), "");
    assert_eq!(h.read_response(wrong_key.as_bytes()), Err(HandshakeError::BadAccept));
    let not_upgraded = response(&h, "").replace("Upgrade: WebSocket\r\n", "");
    assert_eq!(h.read_response(not_upgraded.as_bytes()), Err(HandshakeError::NotUpgraded));
    let ext = response(&h, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    assert!(matches!(h.read_response(ext.as_bytes()), Err(HandshakeError::Unrequested(_))));
    assert!(matches!(h.read_response(b"SSH-2.0-OpenSSH\r\n\r\n"), Err(HandshakeError::Malformed(_))));
    let endless = format!("HTTP/1.1 101 OK\r\nX: {}", "y".repeat(MAX_RESPONSE));
    assert_eq!(h.read_response(endless.as_bytes()), Err(HandshakeError::TooLarge));
}

/// Decodes `wire` fed in reads of the given sizes, the core taking nothing: the protocol bytes in order.
fn decode_in_reads(wire: &[u8], reads: &[usize]) -> Result<Vec<u8>, WsError> {
    let mut decoder = FrameDecoder::new();
    let mut buf = BytesMut::new();
    let mut at = 0;
    for &n in reads.iter().chain(std::iter::repeat(&usize::MAX)) {
        if at >= wire.len() {
            break;
        }
        let n = n.min(wire.len() - at);
        let start = buf.len();
        buf.extend_from_slice(&wire[at..at + n]);
        at += n;
        let before = buf.len() - n;
        let added = decoder.decode(&mut buf, start)?;
        assert_eq!(buf.len(), before + added);
    }
    // An end that came after protocol bytes is reported by the next call.
    let end = buf.len();
    decoder.decode(&mut buf, end)?;
    Ok(buf.to_vec())
}

#[test]
fn data_pings_and_fragments_decode_at_every_split() {
    let mut wire = frame(2, true, b"PING\r\n");
    wire.extend(frame(9, true, b"hb"));
    wire.extend(frame(1, false, b"MSG a 1 5\r\nhe"));
    wire.extend(frame(0xA, true, b""));
    wire.extend(frame(0, false, b"l"));
    wire.extend(frame(0, true, &[b'l'; 300]));
    wire.extend(frame(2, true, b""));
    let mut expected = b"PING\r\nMSG a 1 5\r\nhel".to_vec();
    expected.extend_from_slice(&[b'l'; 300]);
    for a in 0..wire.len() {
        assert_eq!(decode_in_reads(&wire, &[a, 1, 3]).unwrap(), expected, "split at {a}");
    }
    let mut d = FrameDecoder::new();
    let mut buf = BytesMut::from(&frame(9, true, b"abc")[..]);
    assert_eq!(d.decode(&mut buf, 0).unwrap(), 0);
    assert!(buf.is_empty());
    assert_eq!(d.take_pong().as_deref(), Some(&b"abc"[..]));
    assert_eq!(d.take_pong(), None);
}

#[test]
fn a_close_frame_ends_the_stream_after_what_preceded_it() {
    let mut wire = frame(2, true, b"-ERR 'Authorization Violation'\r\n");
    let mut close = 1008u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"Authentication Failure");
    wire.extend(frame(8, true, &close));
    wire.extend(frame(2, true, b"ignored"));
    let mut d = FrameDecoder::new();
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(d.decode(&mut buf, 0).unwrap(), 32);
    assert_eq!(&buf[..], b"-ERR 'Authorization Violation'\r\n");
    let closed = WsError::Closed { code: Some(1008), reason: "Authentication Failure".into() };
    buf.extend_from_slice(b"more");
    assert_eq!(d.decode(&mut buf, 32), Err(closed.clone()));
    assert_eq!(buf.len(), 32, "nothing after the close is kept");
    assert_eq!(d.ended(), Some(&closed));
    assert_eq!(closed.to_string(), "the server closed the websocket (1008: Authentication Failure)");
    let mut bare = BytesMut::from(&frame(8, true, b"")[..]);
    assert_eq!(FrameDecoder::new().decode(&mut bare, 0), Err(WsError::Closed { code: None, reason: String::new() }));
}

#[test]
fn broken_frames_are_sticky_typed_errors() {
    let cases: [(Vec<u8>, FrameError); 7] = [
        (vec![0xC2, 0], FrameError::ReservedBits),
        (vec![0x87, 0], FrameError::UnknownOpCode(7)),
        (vec![0x82, 0x81, 1, 2, 3, 4, 5], FrameError::Masked),
        (frame(0, true, b"x"), FrameError::UnexpectedContinuation),
        ([frame(2, false, b"a"), frame(2, true, b"b")].concat(), FrameError::UnfinishedMessage),
        (vec![0x89, 126, 0, 200], FrameError::BadControl),
        (frame(8, true, b"x"), FrameError::BadClosePayload),
    ];
    for (wire, error) in cases {
        for cut in [1, 2, wire.len()] {
            let got = decode_in_reads(&wire, &[cut.min(wire.len())]);
            assert_eq!(got, Err(WsError::Frame(error.clone())), "{wire:?} in reads of {cut}");
        }
        let mut d = FrameDecoder::new();
        let mut buf = BytesMut::from(&wire[..]);
        let first = d.decode(&mut buf, 0);
        // A fragment before the broken frame is the server's last word: kept, the error reported next.
        assert!(first.is_err() || first == Ok(1), "{first:?}");
        let mut more = BytesMut::from(&frame(2, true, b"ok")[..]);
        assert_eq!(d.decode(&mut more, 0), Err(WsError::Frame(error)), "sticky");
        assert!(more.is_empty());
    }
}

#[test]
fn a_large_frame_after_a_small_op_start_moves_the_small_side() {
    // What the core left (the start of an op), then a frame header, then a large payload: the payload stays
    // where it was read, the few bytes before it move.
    let mut d = FrameDecoder::new();
    let payload = vec![b'p'; 10_000];
    let mut buf = BytesMut::with_capacity(20_000);
    buf.extend_from_slice(b"MSG a 1 ");
    buf.extend_from_slice(&frame(2, true, &payload));
    let payload_at = buf.as_ptr() as usize + 8 + 4;
    assert_eq!(d.decode(&mut buf, 8).unwrap(), 10_000);
    assert_eq!(&buf[..8], b"MSG a 1 ");
    assert_eq!(buf.as_ptr() as usize + 8, payload_at, "the payload did not move");
}

/// Writes everything `encoder` lays out for `payload`, `chunk` bytes at most per write.
fn encode_all(encoder: &mut FrameEncoder, payload: &[&[u8]], chunk: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut done = 0usize;
    let total: usize = payload.iter().map(|p| p.len()).sum();
    loop {
        // The caller offers what is not done yet.
        let mut skip = done;
        let offered: Vec<IoSlice<'_>> = payload
            .iter()
            .filter_map(|p| {
                let s = &p[skip.min(p.len())..];
                skip = skip.saturating_sub(p.len());
                (!s.is_empty()).then(|| IoSlice::new(s))
            })
            .collect();
        let mut out = [IoSlice::new(&[]); 8];
        let k = encoder.prepare(&offered, &mut out);
        if k == 0 {
            break;
        }
        let mut n = 0;
        for s in &out[..k] {
            let take = s.len().min(chunk - n);
            wire.extend_from_slice(&s[..take]);
            n += take;
            if n == chunk {
                break;
            }
        }
        done += encoder.advance(n);
        assert!(done <= total);
    }
    assert_eq!(done, total);
    wire
}

#[test]
fn unmasked_frames_wrap_the_callers_slices_and_masked_ones_a_masked_copy() {
    let big = vec![7u8; 70_000];
    let parts: [&[u8]; 3] = [b"PUB a 5\r\n", b"hello\r\n", &big];
    let plain: Vec<u8> = parts.concat();
    for chunk in [1, 3, 1000, usize::MAX] {
        let wire = encode_all(&mut FrameEncoder::unmasked(), &parts, chunk);
        let frames = client_frames(&wire);
        assert_eq!(frames.len(), 1, "one frame for the batch");
        assert_eq!((frames[0].0, &frames[0].1, frames[0].2), (OpCode::Binary, &plain, false));

        let mut n = 0u8;
        let keys = move || {
            n = n.wrapping_add(1);
            [n, 0x5A, n, 0xA5]
        };
        let wire = encode_all(&mut FrameEncoder::masked(keys), &parts, chunk);
        let frames = client_frames(&wire);
        assert_eq!(frames.len(), 2, "64 KiB a masked frame");
        assert!(frames.iter().all(|f| f.2 && f.0 == OpCode::Binary));
        assert_eq!(frames.iter().flat_map(|f| f.1.clone()).collect::<Vec<_>>(), plain);
    }
}

#[test]
fn control_frames_go_between_data_frames_and_nothing_after_a_close() {
    let mut e = FrameEncoder::masked(RandomKeys::new());
    e.queue_pong(b"hb");
    let wire = encode_all(&mut e, &[b"PONG\r\n"], 3);
    let frames = client_frames(&wire);
    assert_eq!(
        frames.iter().map(|f| (f.0, f.1.clone())).collect::<Vec<_>>(),
        [(OpCode::Pong, b"hb".to_vec()), (OpCode::Binary, b"PONG\r\n".to_vec())]
    );
    // A pong queued in the middle of a frame waits for its end.
    let mut e = FrameEncoder::unmasked();
    let payload = [&b"0123456789"[..]];
    let offered = [IoSlice::new(payload[0])];
    let mut out = [IoSlice::new(&[]); 4];
    e.prepare(&offered, &mut out);
    assert_eq!(e.advance(5), 3, "2 header bytes, 3 payload");
    e.queue_pong(b"p");
    assert!(e.in_frame() && e.has_control());
    let rest = [IoSlice::new(&payload[0][3..])];
    let mut out = [IoSlice::new(&[]); 4];
    let k = e.prepare(&rest, &mut out);
    assert_eq!((k, out[0].len()), (1, 7), "the frame's rest only");
    assert_eq!(e.advance(7), 7);
    let mut out = [IoSlice::new(&[]); 4];
    assert_eq!(e.prepare(&[], &mut out), 1);
    assert_eq!(client_frames(&out[0]), [(OpCode::Pong, b"p".to_vec(), false)]);
    e.advance(3);
    e.queue_close(1000, "bye");
    let mut out = [IoSlice::new(&[]); 4];
    let k = e.prepare(&offered, &mut out);
    assert_eq!(k, 1, "the close, and no data after it");
    assert_eq!(client_frames(&out[0])[0].1, [&1000u16.to_be_bytes()[..], b"bye"].concat());
}
