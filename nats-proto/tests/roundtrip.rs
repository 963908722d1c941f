//! Encode → decode round trips for every op of both sides, and `Headers` → `HeaderBlock` round trips.

use bytes::{Bytes, BytesMut};
use nats_proto::encode::CHAIN_THRESHOLD;
use nats_proto::subject::{validate_publish_subject, validate_queue, validate_subscribe_subject};
use nats_proto::{
    ClientDecoder, ClientOp, ConnectInfo, HeaderBlock, Headers, Limits, Msg, Pub, ServerDecoder, ServerError,
    ServerInfo, ServerOp, StatusCode, Subject, WriteBuffer,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn limits() -> Limits {
    Limits { max_payload: 1 << 24, ..Limits::default() }
}

// ---------- strategies ----------

/// A literal token: no blanks, no `.`, never a lone wildcard; sometimes non-ASCII.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[A-Za-z0-9_$:+!@#%&=~-]{1,8}", 1 => "[α-ω]{1,3}", 1 => "[a-z]{1,3}[*>][a-z]{0,2}"]
}

fn subject() -> impl Strategy<Value = Subject> {
    vec(token(), 1..5).prop_map(|t| Subject::from(t.join(".")))
}

/// A subscription subject: literal tokens with `*` anywhere and `>` only last.
fn sub_subject() -> impl Strategy<Value = Subject> {
    (vec(prop_oneof![4 => token(), 1 => Just("*".to_string())], 1..5), any::<bool>()).prop_map(|(mut t, full)| {
        if full {
            t.push(">".into());
        }
        Subject::from(t.join("."))
    })
}

fn queue() -> impl Strategy<Value = Subject> {
    "[A-Za-z0-9_.:-]{1,12}".prop_map(Subject::from)
}

fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        Just(Bytes::new()),
        vec(any::<u8>(), 0..64).prop_map(Bytes::from),
        (CHAIN_THRESHOLD - 2..CHAIN_THRESHOLD * 3, any::<u8>())
            .prop_map(|(n, b)| { Bytes::from((0..n).map(|i| b.wrapping_add(i as u8)).collect::<Vec<u8>>()) }),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    // Printable ASCII without `:`; a small pool makes repeats and case variants likely.
    prop_oneof![2 => "[!-9;-~]{1,12}", 1 => prop::sample::select(vec!["A", "a", "Nats-Msg-Id", "NATS-MSG-ID", "X"])
        .prop_map(String::from)]
}

/// A value the receiver reads back as is: no CR or LF, no surrounding blanks (receivers trim them).
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[^\r\n\t ]([^\r\n]{0,16}[^\r\n\t ])?", "[!-~]{1,20}"]
}

fn status() -> impl Strategy<Value = Option<(u16, String)>> {
    option::of((100u16..=999, prop_oneof![Just(String::new()), "[!-~]([ -~]{0,16}[!-~])?"]))
}

fn headers() -> impl Strategy<Value = Headers> {
    (status(), vec((header_name(), header_value()), 0..8)).prop_map(|(status, pairs)| {
        let mut h = Headers::new();
        if let Some((code, text)) = status {
            h.set_status(StatusCode::new(code).unwrap(), &text).unwrap();
        }
        for (n, v) in &pairs {
            h.append(n, v).unwrap();
        }
        h
    })
}

fn server_info() -> impl Strategy<Value = ServerInfo> {
    (
        ("[A-Z0-9]{1,20}", any::<String>(), "[0-9]\\.[0-9]{1,2}\\.[0-9]"),
        (any::<bool>(), any::<usize>(), any::<i32>(), any::<u16>(), any::<u64>()),
        (option::of("[A-Za-z0-9_-]{1,30}"), vec("[a-z0-9.]{1,10}:[0-9]{1,5}", 0..4), any::<bool>()),
    )
        .prop_map(|((id, name, version), (headers, max_payload, proto, port, client_id), (nonce, urls, ldm))| {
            let mut i = ServerInfo::default();
            (i.server_id, i.server_name, i.version) = (id, name, version);
            (i.headers, i.max_payload, i.proto, i.port, i.client_id) = (headers, max_payload, proto, port, client_id);
            (i.nonce, i.connect_urls, i.lame_duck_mode) = (nonce, urls, ldm);
            i
        })
}

fn connect_info() -> impl Strategy<Value = ConnectInfo> {
    (
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<u8>()),
        (option::of(any::<String>()), option::of("[a-z]{1,8}"), option::of(any::<String>())),
        (option::of("[A-Za-z0-9]{1,20}"), option::of("[A-Z0-9]{56}"), option::of("[A-Za-z0-9._-]{1,60}")),
    )
        .prop_map(|((verbose, pedantic, tls, echo, hdrs, protocol), (name, user, pass), (token, nkey, jwt))| {
            let mut c = ConnectInfo::new();
            (c.verbose, c.pedantic, c.tls_required, c.echo, c.headers, c.no_responders) =
                (verbose, pedantic, tls, echo, hdrs, hdrs);
            (c.protocol, c.name, c.user, c.pass, c.auth_token, c.nkey, c.jwt) =
                (protocol, name, user, pass, token, nkey, jwt.clone());
            c.sig = jwt.map(|j| j.chars().rev().collect());
            c
        })
}

fn err_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[^\r\n]{0,40}",
        Just("Permissions Violation for Publish to \"a.b\"".to_string()),
        Just("Authorization Violation".to_string()),
    ]
}

fn msg_op(with_headers: bool) -> impl Strategy<Value = ServerOp> {
    let hdrs = if with_headers { headers().prop_map(Some).boxed() } else { Just(None).boxed() };
    (subject(), any::<u64>(), option::of(subject()), hdrs, payload()).prop_map(|(subject, sid, reply, h, payload)| {
        let reply = reply.as_ref().map(Subject::as_bytes);
        ServerOp::Msg(Msg::new(subject, sid, reply, h.map(|h| h.to_block()).as_ref(), payload))
    })
}

fn server_op() -> impl Strategy<Value = ServerOp> {
    prop_oneof![
        server_info().prop_map(|i| ServerOp::Info(Box::new(i))),
        msg_op(false),
        msg_op(true),
        Just(ServerOp::Ping),
        Just(ServerOp::Pong),
        Just(ServerOp::Ok),
        err_text().prop_map(|t| ServerOp::Err(ServerError::new(t))),
    ]
}

fn pub_op(with_headers: bool) -> impl Strategy<Value = ClientOp> {
    let hdrs = if with_headers { headers().prop_map(Some).boxed() } else { Just(None).boxed() };
    (subject(), option::of(subject()), hdrs, payload()).prop_map(|(subject, reply, h, payload)| {
        ClientOp::Pub(Pub { subject, reply, headers: h.map(|h| h.to_block()), payload })
    })
}

fn client_op() -> impl Strategy<Value = ClientOp> {
    prop_oneof![
        connect_info().prop_map(|c| ClientOp::Connect(Box::new(c))),
        pub_op(false),
        pub_op(true),
        (sub_subject(), option::of(queue()), any::<u64>()).prop_map(|(subject, queue, sid)| ClientOp::Sub {
            subject,
            queue,
            sid
        }),
        // UNSUB max travels as a size field: 1 to 9 digits on the wire.
        (any::<u64>(), option::of(0u64..=999_999_999)).prop_map(|(sid, max)| ClientOp::Unsub { sid, max }),
        Just(ClientOp::Ping),
        Just(ClientOp::Pong),
    ]
}

// ---------- helpers ----------

fn decode_server(wire: Bytes) -> Result<Vec<ServerOp>, TestCaseError> {
    let mut d = ServerDecoder::new(limits());
    let mut buf = BytesMut::from(&wire[..]);
    let mut out = vec![];
    while let Some(op) = d.decode(&mut buf).map_err(|e| TestCaseError::fail(format!("{e:?}")))? {
        out.push(op);
    }
    prop_assert!(buf.is_empty(), "{} bytes left", buf.len());
    Ok(out)
}

fn decode_client(wire: Bytes) -> Result<Vec<ClientOp>, TestCaseError> {
    let mut d = ClientDecoder::new(limits());
    let mut buf = BytesMut::from(&wire[..]);
    let mut out = vec![];
    while let Some(op) = d.decode(&mut buf).map_err(|e| TestCaseError::fail(format!("{e:?}")))? {
        out.push(op);
    }
    prop_assert!(buf.is_empty(), "{} bytes left", buf.len());
    Ok(out)
}

fn encode_server(ops: &[ServerOp]) -> Bytes {
    let mut w = WriteBuffer::new();
    ops.iter().for_each(|op| op.encode(&mut w));
    assert_eq!(w.len(), bytes::Buf::remaining(&w));
    w.take_bytes()
}

fn encode_client(ops: &[ClientOp]) -> Bytes {
    let mut w = WriteBuffer::new();
    ops.iter().for_each(|op| op.encode(&mut w));
    w.take_bytes()
}

// ---------- properties ----------

proptest! {
    #[test]
    fn msg_round_trips(op in msg_op(false)) {
        let wire = encode_server(std::slice::from_ref(&op));
        prop_assert!(wire.starts_with(b"MSG "));
        prop_assert_eq!(decode_server(wire)?, vec![op]);
    }

    #[test]
    fn hmsg_round_trips(op in msg_op(true)) {
        let wire = encode_server(std::slice::from_ref(&op));
        prop_assert!(wire.starts_with(b"HMSG "));
        let got = decode_server(wire)?;
        let (ServerOp::Msg(want), [ServerOp::Msg(m)]) = (&op, &got[..]) else { panic!("{got:?}") };
        prop_assert_eq!(m.status(), want.status());
        prop_assert_eq!(m.size(), want.size());
        prop_assert_eq!(&got, &vec![op]);
    }

    #[test]
    fn info_round_trips(info in server_info()) {
        let op = ServerOp::Info(Box::new(info));
        prop_assert_eq!(decode_server(encode_server(std::slice::from_ref(&op)))?, vec![op]);
    }

    #[test]
    fn err_round_trips(text in err_text()) {
        let op = ServerOp::Err(ServerError::new(text.clone()));
        let got = decode_server(encode_server(std::slice::from_ref(&op)))?;
        let [ServerOp::Err(e)] = &got[..] else { panic!("{got:?}") };
        prop_assert_eq!(e.message(), text.as_str());
        prop_assert_eq!(&got, &vec![op]);
    }

    #[test]
    fn server_streams_round_trip(ops in vec(server_op(), 1..8)) {
        prop_assert_eq!(decode_server(encode_server(&ops))?, ops);
    }

    #[test]
    fn connect_round_trips(c in connect_info()) {
        let op = ClientOp::Connect(Box::new(c));
        prop_assert_eq!(decode_client(encode_client(std::slice::from_ref(&op)))?, vec![op]);
    }

    #[test]
    fn pub_and_hpub_round_trip(op in prop_oneof![pub_op(false), pub_op(true)]) {
        let wire = encode_client(std::slice::from_ref(&op));
        let ClientOp::Pub(p) = &op else { unreachable!() };
        let name: &[u8] = if p.headers.is_some() { b"HPUB " } else { b"PUB " };
        prop_assert!(wire.starts_with(name));
        prop_assert!(validate_publish_subject(p.subject.as_bytes()).is_ok());
        prop_assert_eq!(decode_client(wire)?, vec![op]);
    }

    #[test]
    fn hpub_from_headers_round_trips(
        subject in subject(), reply in option::of(subject()), h in headers(), payload in payload()
    ) {
        let mut w = WriteBuffer::new();
        w.push_hpub(subject.as_bytes(), reply.as_ref().map(Subject::as_bytes), &h, &payload);
        let want = ClientOp::Pub(Pub { subject, reply, headers: Some(h.to_block()), payload });
        prop_assert_eq!(decode_client(w.take_bytes())?, vec![want]);
    }

    #[test]
    fn sub_round_trips(subject in sub_subject(), queue in option::of(queue()), sid in any::<u64>()) {
        prop_assert!(validate_subscribe_subject(subject.as_bytes()).is_ok());
        prop_assert!(queue.as_ref().is_none_or(|q| validate_queue(q.as_bytes()).is_ok()));
        let op = ClientOp::Sub { subject, queue, sid };
        prop_assert_eq!(decode_client(encode_client(std::slice::from_ref(&op)))?, vec![op]);
    }

    #[test]
    fn unsub_round_trips(sid in any::<u64>(), max in option::of(0u64..=999_999_999)) {
        let op = ClientOp::Unsub { sid, max };
        prop_assert_eq!(decode_client(encode_client(std::slice::from_ref(&op)))?, vec![op]);
    }

    #[test]
    fn client_streams_round_trip(ops in vec(client_op(), 1..8)) {
        prop_assert_eq!(decode_client(encode_client(&ops))?, ops);
    }

    #[test]
    fn headers_survive_the_block(h in headers(), probes in vec(header_name(), 0..4)) {
        let built = h.to_block();
        prop_assert_eq!(built.as_bytes().len(), h.encoded_len());
        let block = HeaderBlock::parse(built.to_bytes()).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(&block, &built);
        let pairs: Vec<(&[u8], &[u8])> = h.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
        prop_assert_eq!(block.iter().collect::<Vec<_>>(), pairs);
        prop_assert_eq!(block.status(), h.status());
        prop_assert_eq!(block.description(), h.description());
        let names = h.iter().map(|(n, _)| n.to_string());
        for name in names.chain(probes).flat_map(|n| [n.to_ascii_lowercase(), n.to_ascii_uppercase(), n]) {
            prop_assert_eq!(block.get(&name), h.get(&name), "get {}", name);
            prop_assert_eq!(block.view().get_bytes(&name), h.get(&name).map(str::as_bytes));
            prop_assert_eq!(block.view().get_all(&name).collect::<Vec<_>>(), h.get_all(&name).collect::<Vec<_>>());
            prop_assert_eq!(block.view().get_ignore_case(&name), h.get_ignore_case(&name), "get_ignore_case {}", name);
        }
        prop_assert_eq!(block.view().to_headers(), h);
    }
}

#[test]
fn bare_ops_round_trip() {
    let server = [ServerOp::Ping, ServerOp::Pong, ServerOp::Ok];
    assert_eq!(&encode_server(&server)[..], b"PING\r\nPONG\r\n+OK\r\n");
    assert_eq!(decode_server(encode_server(&server)).unwrap(), server);
    let client = [ClientOp::Ping, ClientOp::Pong];
    assert_eq!(&encode_client(&client)[..], b"PING\r\nPONG\r\n");
    assert_eq!(decode_client(encode_client(&client)).unwrap(), client);
}

// WriteBuffer's own chunks_vectored needs nats-proto's std feature: without it bytes' default gives one chunk.
#[cfg(feature = "std")]
#[test]
fn large_payloads_are_chained_and_still_round_trip() {
    let payload = Bytes::from(vec![b'x'; CHAIN_THRESHOLD * 4]);
    let msg = Msg::new("big", 1, None, Some(&Headers::from_iter([("A", "1")]).to_block()), &payload);
    let mut w = WriteBuffer::new();
    w.push_pub(b"big", None, None, &payload);
    let mut iov = [std::io::IoSlice::new(&[]); 4];
    assert_eq!(bytes::Buf::chunks_vectored(&w, &mut iov), 3, "line, payload, CRLF");
    assert_eq!(iov[1].as_ptr(), payload.as_ptr(), "the payload is not copied");
    // A message's payload is a slice of its frame, chained from there.
    let op = ServerOp::Msg(msg.clone());
    let mut w = WriteBuffer::new();
    op.encode(&mut w);
    assert_eq!(bytes::Buf::chunks_vectored(&w, &mut iov), 3, "line+headers, payload, CRLF");
    assert_eq!(iov[1].as_ptr(), msg.payload().as_ptr(), "the payload is not copied");
    assert_eq!(decode_server(w.take_bytes()).unwrap(), vec![op]);
}

/// UNSUB's max is a size field, which nats-server (and our decoder) reads as 1 to 9 digits. An UNSUB built from
/// any `u64` must still be one the server accepts: a rejected max makes nats-server unsubscribe at once.
#[test]
fn unsub_with_a_max_beyond_nine_digits_stays_decodable() {
    for max in [1_000_000_000u64, u64::MAX] {
        let wire = encode_client(&[ClientOp::Unsub { sid: 7, max: Some(max) }]);
        let got = ClientDecoder::new(limits()).decode(&mut BytesMut::from(&wire[..]));
        assert!(
            matches!(got, Ok(Some(ClientOp::Unsub { sid: 7, max: Some(m) })) if m >= 999_999_999),
            "UNSUB 7 {max} encoded as {wire:?} decodes as {got:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]
    /// Arbitrary blocks never panic; whatever `HeaderBlock::parse` accepts reads back the same after a trip
    /// through `Headers`.
    #[test]
    fn accepted_blocks_survive_to_headers_and_back(
        parts in vec(prop::sample::select(vec![
            " ", "\t", "503", "404", " No Messages", "\r\n", "\r", "\n", "A", "a", ":", ": ", "x", "é", "1",
            "\r\nA: 1", "\r\na:", "\r\nNats-Seq:  7 ",
        ]), 0..12),
        with_version in prop::bool::weighted(0.9),
        terminated in prop::bool::weighted(0.8),
    ) {
        let text = format!(
            "{}{}{}",
            if with_version { "NATS/1.0" } else { "" },
            parts.concat(),
            if terminated { "\r\n\r\n" } else { "" }
        );
        let Ok(block) = HeaderBlock::parse(Bytes::from(text.clone())) else { return Ok(()) };
        prop_assert!(text.ends_with("\r\n\r\n"));
        let owned = block.view().to_headers();
        let again = owned.to_block();
        prop_assert_eq!(again.iter().collect::<Vec<_>>(), block.iter().collect::<Vec<_>>());
        prop_assert_eq!((again.status(), again.description()), (block.status(), block.description()));
        prop_assert_eq!(HeaderBlock::parse(again.to_bytes()), Ok(again));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// A driver writes what `chunks_vectored` offers and advances by what the socket took: however short the
    /// writes, the bytes are those of `take_bytes` and decode to the ops. `append` keeps order.
    #[test]
    fn partial_writes_deliver_the_encoded_stream(
        first in vec(client_op(), 1..5), second in vec(client_op(), 0..5), steps in vec(1usize..5000, 1..8)
    ) {
        let mut w = WriteBuffer::new();
        first.iter().for_each(|op| op.encode(&mut w));
        let mut tail = WriteBuffer::new();
        second.iter().for_each(|op| op.encode(&mut tail));
        w.append(&mut tail);
        prop_assert!(tail.is_empty());
        let expected = w.clone().take_bytes();
        prop_assert_eq!(expected.len(), w.len());
        let mut written = Vec::with_capacity(expected.len());
        for &step in steps.iter().cycle() {
            if !bytes::Buf::has_remaining(&w) {
                break;
            }
            let mut iov = [std::io::IoSlice::new(&[]); 3];
            let n = bytes::Buf::chunks_vectored(&w, &mut iov);
            let mut budget = step;
            for slice in &iov[..n] {
                let take = budget.min(slice.len());
                written.extend_from_slice(&slice[..take]);
                budget -= take;
            }
            let took = step - budget;
            prop_assert!(took > 0);
            bytes::Buf::advance(&mut w, took);
        }
        prop_assert_eq!(&written[..], &expected[..]);
        let all: Vec<ClientOp> = first.into_iter().chain(second).collect();
        prop_assert_eq!(decode_client(Bytes::from(written))?, all);
    }
}
