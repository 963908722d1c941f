//! However a stream is cut into reads, the decoders must produce the same ops (and the same errors) as when
//! it arrives in one piece: split at every byte offset, fed one byte at a time, and in chunks of 2 to 7.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use nats_proto::{
    ClientDecoder, ClientOp, ConnectInfo, HeaderBlock, Msg, ParseError, Pub, ServerDecoder, ServerError, ServerInfo,
    ServerOp, SubjectRef,
};

// The hostile table (its tests also run in this binary, under `hostile::`).
#[path = "hostile.rs"]
mod hostile;

/// Decodes `chunks` fed one after the other, draining the decoder after each. Stops at a fatal error.
fn run<T>(
    chunks: &[&[u8]],
    mut decode: impl FnMut(&mut BytesMut) -> Result<Option<T>, ParseError>,
) -> Vec<Result<T, ParseError>> {
    let mut buf = BytesMut::new();
    let mut out = vec![];
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decode(&mut buf) {
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

/// Every way of cutting `input` this test uses.
fn cuttings(input: &[u8]) -> Vec<(String, Vec<&[u8]>)> {
    let mut all: Vec<(String, Vec<&[u8]>)> =
        (0..=input.len()).map(|i| (format!("split at {i}"), vec![&input[..i], &input[i..]])).collect();
    for size in 1..=7 {
        all.push((format!("chunks of {size}"), input.chunks(size).collect()));
    }
    all
}

/// Checks every cutting against the one-shot outcome; returns the one-shot outcome.
fn same_however_cut<T: PartialEq + Debug>(
    input: &[u8],
    mut decode_with_fresh_decoder: impl FnMut(&[&[u8]]) -> Vec<Result<T, ParseError>>,
) -> Vec<Result<T, ParseError>> {
    let whole = decode_with_fresh_decoder(&[input]);
    for (how, chunks) in cuttings(input) {
        assert_eq!(chunks.concat(), input);
        let got = decode_with_fresh_decoder(&chunks);
        assert!(got == whole, "{how}: {got:?}\none-shot: {whole:?}");
    }
    whole
}

fn server_run(chunks: &[&[u8]]) -> Vec<Result<ServerOp, ParseError>> {
    let mut d = ServerDecoder::default();
    run(chunks, |buf| d.decode(buf))
}

fn client_run(chunks: &[&[u8]]) -> Vec<Result<ClientOp, ParseError>> {
    let mut d = ClientDecoder::default();
    run(chunks, |buf| d.decode(buf))
}

fn block(s: &str) -> HeaderBlock {
    HeaderBlock::parse(Bytes::copy_from_slice(s.as_bytes())).expect("valid block")
}

fn msg(subject: &str, sid: u64, reply: Option<&str>, headers: Option<&str>, payload: &str) -> Msg {
    Msg::new(subject, sid, reply.map(str::as_bytes), headers.map(block).as_ref(), payload)
}

fn hframe(op: &str, args: &str, headers: &str, payload: &str) -> String {
    format!("{op} {args} {} {}\r\n{headers}{payload}\r\n", headers.len(), headers.len() + payload.len())
}

const HEARTBEAT: &str = "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 7\r\nA: 1\r\nA:  2\r\nEmpty:\r\n\r\n";
const NO_RESPONDERS: &str = "NATS/1.0 503\r\nNats-Subject: svc.x\r\n\r\n";

#[test]
fn every_server_op_however_cut() {
    let info_json = r#"{"server_id":"S1","version":"2.10.0","headers":true,"max_payload":1048576,"proto":1}"#;
    let input = [
        format!("INFO {info_json}\r\n"),
        "MSG greet.joe 1 5\r\nhello\r\n".into(),
        "MSG greet.joe 2 _INBOX.abc.1 12\r\nhello\r\nworld\r\n".into(),
        hframe("HMSG", "greet.joe 3 _INBOX.abc.2", HEARTBEAT, "payload"),
        hframe("HMSG", "_INBOX.abc.3 4", NO_RESPONDERS, ""),
        "PING\r\nPONG\r\n+OK\r\n-ERR 'Permissions Violation for Publish to \"x\"'\r\n".into(),
        "MSG empty 5 0\r\n\r\nping\n-ERR 'Stale Connection'\r\n".into(),
    ]
    .concat();
    let mut info = ServerInfo::default();
    (info.server_id, info.version, info.headers, info.max_payload, info.proto) =
        ("S1".into(), "2.10.0".into(), true, 1 << 20, 1);
    let want = vec![
        ServerOp::Info(Box::new(info)),
        ServerOp::Msg(msg("greet.joe", 1, None, None, "hello")),
        ServerOp::Msg(msg("greet.joe", 2, Some("_INBOX.abc.1"), None, "hello\r\nworld")),
        ServerOp::Msg(msg("greet.joe", 3, Some("_INBOX.abc.2"), Some(HEARTBEAT), "payload")),
        ServerOp::Msg(msg("_INBOX.abc.3", 4, None, Some(NO_RESPONDERS), "")),
        ServerOp::Ping,
        ServerOp::Pong,
        ServerOp::Ok,
        ServerOp::Err(ServerError::new("Permissions Violation for Publish to \"x\"")),
        ServerOp::Msg(msg("empty", 5, None, None, "")),
        ServerOp::Ping,
        ServerOp::Err(ServerError::new("Stale Connection")),
    ];
    let whole = same_however_cut(input.as_bytes(), server_run);
    let whole: Vec<ServerOp> = whole.into_iter().collect::<Result<_, _>>().expect("no errors");
    assert_eq!(whole, want);
    let ServerOp::Msg(hb) = &whole[3] else { unreachable!() };
    let h = hb.headers().unwrap();
    assert_eq!((hb.status().map(|s| s.as_u16()), h.description()), (Some(100), "Idle Heartbeat"));
    assert_eq!((h.get_all("A").collect::<Vec<_>>(), h.get("Empty")), (vec!["1", "2"], Some("")));
    let ServerOp::Msg(nr) = &whole[4] else { unreachable!() };
    assert_eq!(nr.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(nr.headers().unwrap().get("Nats-Subject"), Some("svc.x"));
}

#[test]
fn every_client_op_however_cut() {
    let mut connect = ConnectInfo::new();
    (connect.name, connect.headers, connect.no_responders, connect.user, connect.pass) =
        (Some("split test".into()), true, true, Some("me".into()), Some("secret".into()));
    let input = [
        format!("CONNECT {}\r\n", String::from_utf8(connect.to_json()).unwrap()),
        "PUB greet.joe 5\r\nhello\r\nPUB greet.joe _INBOX.r.1 0\r\n\r\n".into(),
        hframe("HPUB", "greet.joe _INBOX.r.2", HEARTBEAT, "pay\r\nload"),
        hframe("HPUB", "svc.x", NO_RESPONDERS, ""),
        "SUB greet.* 1\r\nSUB greet.> workers 2\r\nsub\tx  3\r\n".into(),
        "UNSUB 1\r\nUNSUB 2 10\r\nPING\r\nPONG\r\n".into(),
    ]
    .concat();
    let p = |subject: &str, reply: Option<&str>, headers: Option<&str>, payload: &str| {
        let m = msg(subject, 0, reply, headers, payload);
        ClientOp::Pub(Pub {
            subject: m.subject().to_subject(),
            reply: m.reply().map(SubjectRef::to_subject),
            headers: m.header_block(),
            payload: m.payload_bytes(),
        })
    };
    let want = vec![
        ClientOp::Connect(Box::new(connect)),
        p("greet.joe", None, None, "hello"),
        p("greet.joe", Some("_INBOX.r.1"), None, ""),
        p("greet.joe", Some("_INBOX.r.2"), Some(HEARTBEAT), "pay\r\nload"),
        p("svc.x", None, Some(NO_RESPONDERS), ""),
        ClientOp::Sub { subject: "greet.*".into(), queue: None, sid: 1 },
        ClientOp::Sub { subject: "greet.>".into(), queue: Some("workers".into()), sid: 2 },
        ClientOp::Sub { subject: "x".into(), queue: None, sid: 3 },
        ClientOp::Unsub { sid: 1, max: None },
        ClientOp::Unsub { sid: 2, max: Some(10) },
        ClientOp::Ping,
        ClientOp::Pong,
    ];
    let whole = same_however_cut(input.as_bytes(), client_run);
    assert_eq!(whole.into_iter().collect::<Result<Vec<_>, _>>(), Ok(want));
}

#[test]
fn hostile_rows_however_cut() {
    let mut compared = 0;
    // Rows of a megabyte are left to hostile.rs: cutting them at every offset would take minutes.
    for row in hostile::rows().into_iter().filter(|r| r.input.len() <= 6000) {
        let limits = row.limits;
        let whole = same_however_cut(&row.input, |chunks| {
            let mut d = ServerDecoder::new(limits);
            run(chunks, |buf| d.decode(buf))
        });
        // The one-shot outcome is the table's (checked exactly in hostile.rs); here only the first result's kind.
        match (&row.expect, whole.first()) {
            (hostile::Expect::Op(want), Some(Ok(got))) => assert_eq!(got, want, "{}", row.name),
            (hostile::Expect::Err(kind, _), Some(Err(e))) => assert_eq!(e.kind(), *kind, "{}", row.name),
            // Nothing decoded in one shot: hostile.rs reports that row; the cut runs still had to agree above.
            (_, None) => {}
            (want, got) => panic!("{}: expected {want:?}, got {got:?}", row.name),
        }
        compared += 1;
    }
    assert!(compared >= 90, "{compared} rows");
}

#[test]
fn fatal_errors_stay_sticky_when_more_bytes_arrive() {
    for row in hostile::rows().into_iter().filter(|r| !r.stream_survives() && r.input.len() <= 6000) {
        let mut d = ServerDecoder::new(row.limits);
        let first = run(&row.input.chunks(3).collect::<Vec<_>>(), |buf| d.decode(buf));
        let Some(Err(e)) = first.last() else { continue };
        let mut buf = BytesMut::from(&b"PING\r\nMSG a 1 0\r\n\r\n"[..]);
        assert_eq!(d.decode(&mut buf), Err(*e), "{}", row.name);
    }
}

mod fuzzish {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Protocol-shaped fragments, so that random streams often get deep into a frame before going wrong.
    const FRAGMENTS: &[&str] = &[
        "MSG ",
        "HMSG ",
        "msg ",
        "PUB ",
        "SUB ",
        "UNSUB ",
        "a ",
        "b.c ",
        "1 ",
        "2 ",
        "12 ",
        "16 ",
        "0 ",
        "5 ",
        "\t",
        " ",
        "\r\n",
        "\n",
        "\r",
        "NATS/1.0",
        " 503",
        "A: 1",
        "Foo:",
        ":",
        "hello",
        "PING",
        "PONG",
        "+OK",
        "-ERR ",
        "'x'",
        "INFO ",
        "CONNECT ",
        "{}",
        "{\"proto\":1}",
        "x",
        "99999999999",
    ];

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        vec(
            prop_oneof![4 => prop::sample::select(FRAGMENTS).prop_map(|f| f.as_bytes().to_vec()),
                        1 => vec(any::<u8>(), 1..4)],
            0..40,
        )
        .prop_map(|parts| parts.concat())
    }

    fn cut<'a>(input: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
        let mut chunks = vec![];
        let mut rest = input;
        for &n in sizes.iter().cycle().take(input.len() + 1) {
            if rest.is_empty() {
                break;
            }
            let (a, b) = rest.split_at(n.min(rest.len()));
            chunks.push(a);
            rest = b;
        }
        chunks
    }

    proptest! {
        #[test]
        fn random_streams_decode_the_same_however_cut(input in stream(), sizes in vec(1usize..9, 1..6)) {
            let chunks = cut(&input, &sizes);
            prop_assert_eq!(chunks.concat(), input.clone());
            prop_assert_eq!(server_run(&chunks), server_run(&[&input]));
            prop_assert_eq!(client_run(&chunks), client_run(&[&input]));
        }
    }
}
