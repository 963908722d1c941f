//! Hostile and adversarial server frames, each with its exact outcome.
//!
//! Every row is fed to [`ServerDecoder::decode`] and, where it applies, to the stateless [`parse_server_op`].
//! Rows that are valid (if unusual) must produce exactly the expected op and consume exactly its frame; rows
//! that are not must produce exactly the expected [`ParseErrorKind`] and offset. Frame-local errors must let
//! the next op decode; fatal ones must be repeated by every later call. `split.rs` reuses this table.

use bytes::{Bytes, BytesMut};
use nats_proto::{
    parse_server_op, ClientDecoder, ClientOp, HeaderBlock, HeaderError, Limits, Msg, ParseError, ParseErrorKind,
    ServerDecoder, ServerError, ServerInfo, ServerOp, ServerOpRef, Status,
};

/// What a row must produce on its first `decode`.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    /// This op, consuming exactly its frame.
    Op(ServerOp),
    /// This error kind at this offset.
    Err(ParseErrorKind, usize),
}

/// One hostile or adversarial input.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Unique description.
    pub(crate) name: &'static str,
    /// The bytes. Rows that leave the stream intact are followed by `PING\r\n`.
    pub(crate) input: Vec<u8>,
    /// Limits for the decoder.
    pub(crate) limits: Limits,
    /// The outcome.
    pub(crate) expect: Expect,
}

impl Row {
    /// True when the stream survives this row (an op, or a frame-local error): a PING follows it.
    pub(crate) fn stream_survives(&self) -> bool {
        match self.expect {
            Expect::Op(_) => true,
            Expect::Err(kind, _) => frame_local(kind),
        }
    }
}

const TRAILER: &[u8] = b"PING\r\n";

/// The kinds the docs call frame-local: only the header block or the JSON of one op was bad.
pub(crate) fn frame_local(kind: ParseErrorKind) -> bool {
    matches!(kind, ParseErrorKind::InvalidHeaders(_) | ParseErrorKind::InvalidJson)
}

fn row(name: &'static str, input: impl AsRef<[u8]>, expect: Expect) -> Row {
    row_with(name, input, Limits::default(), expect)
}

fn row_with(name: &'static str, input: impl AsRef<[u8]>, limits: Limits, expect: Expect) -> Row {
    let mut r = Row { name, input: input.as_ref().to_vec(), limits, expect };
    if r.stream_survives() {
        r.input.extend_from_slice(TRAILER);
    }
    r
}

fn err(kind: ParseErrorKind, offset: usize) -> Expect {
    Expect::Err(kind, offset)
}

fn op(op: ServerOp) -> Expect {
    Expect::Op(op)
}

/// An HMSG frame with computed sizes; returns it and the length of its control line (the block's offset).
fn hmsg(args: &str, block: &str, payload: &str) -> (Vec<u8>, usize) {
    let line = format!("HMSG {args} {} {}\r\n", block.len(), block.len() + payload.len());
    (format!("{line}{block}{payload}\r\n").into_bytes(), line.len())
}

/// A row for an HMSG whose header block is bad in the given way (frame-local, at the block's start).
fn bad_block(name: &'static str, block: &str, e: HeaderError) -> Row {
    let (frame, line_len) = hmsg("a 1", block, "p");
    row(name, frame, err(ParseErrorKind::InvalidHeaders(e), line_len))
}

fn msg(subject: &[u8], sid: u64, reply: Option<&str>, headers: Option<&str>, payload: &[u8]) -> ServerOp {
    let headers = headers.map(|h| HeaderBlock::parse(Bytes::copy_from_slice(h.as_bytes())).expect("valid block"));
    ServerOp::Msg(Msg::new(subject, sid, reply.map(str::as_bytes), headers.as_ref(), payload))
}

fn info(server_id: &str, proto: i32) -> ServerOp {
    let mut i = ServerInfo::default();
    i.server_id = server_id.into();
    i.proto = proto;
    ServerOp::Info(Box::new(i))
}

fn small_info_cap() -> Limits {
    Limits { max_info_line: 64, ..Limits::default() }
}

/// The table.
pub(crate) fn rows() -> Vec<Row> {
    use HeaderError as H;
    use ParseErrorKind::*;
    let big = |n: usize| "a".repeat(n);
    let (mut hdr_crlf, hdr_crlf_line) = hmsg("a 1", "NATS/1.0\r\n\r\n", "hi");
    hdr_crlf.truncate(hdr_crlf.len() - 2);
    hdr_crlf.extend_from_slice(b"XX");
    let info_64 = format!("INFO {{\"server_id\":\"{}\"}}", big(43));
    vec![
        // --- sizes ---
        row("size with letters", "MSG a 1 x\r\n", err(InvalidSize, 8)),
        row("negative size", "MSG a 1 -3\r\n", err(InvalidSize, 8)),
        row("size with plus sign", "MSG a 1 +3\r\n", err(InvalidSize, 8)),
        row("hex size", "MSG a 1 0x1\r\n", err(InvalidSize, 8)),
        row("empty size leaves too few args", "MSG a 1 \r\n", err(WrongArgCount, 3)),
        row("empty hdr size leaves too few args", "HMSG a 1  5\r\n", err(WrongArgCount, 4)),
        row("10-digit size", "MSG a 1 1000000000\r\n", err(InvalidSize, 8)),
        row("size usize::MAX+1 (20 digits)", "MSG a 1 18446744073709551616\r\n", err(InvalidSize, 8)),
        row("size of 24 digits", "MSG a 1 999999999999999999999999\r\n", err(InvalidSize, 8)),
        row("hdr size of 20 digits", "HMSG a 1 99999999999999999999 5\r\n", err(InvalidSize, 9)),
        row("total size with letters", "HMSG a 1 5 x\r\n", err(InvalidSize, 11)),
        row("hdr > total", "HMSG a 1 13 12\r\n", err(HeaderSizeExceedsTotal, 9)),
        row(
            "9-digit size over max_payload",
            "MSG a 1 999999999\r\n",
            err(PayloadTooLarge { size: 999_999_999, limit: 1 << 20 }, 8),
        ),
        row("size max_payload+1", "MSG a 1 1048577\r\n", err(PayloadTooLarge { size: 1_048_577, limit: 1 << 20 }, 8)),
        row(
            "hmsg total over max_payload",
            "HMSG a 1 12 1048577\r\n",
            err(PayloadTooLarge { size: 1_048_577, limit: 1 << 20 }, 12),
        ),
        row_with(
            "size over a small max_payload",
            "MSG a 1 17\r\n",
            Limits { max_payload: 16, ..Limits::default() },
            err(PayloadTooLarge { size: 17, limit: 16 }, 8),
        ),
        row_with(
            "size at a small max_payload",
            "MSG a 1 16\r\n0123456789abcdef\r\n",
            Limits { max_payload: 16, ..Limits::default() },
            op(msg(b"a", 1, None, None, b"0123456789abcdef")),
        ),
        // --- payload terminator ---
        row("payload followed by wrong bytes", "MSG a 1 3\r\nabcXY", err(MissingPayloadCrlf, 14)),
        row("payload followed by CR only", "MSG a 1 3\r\nabc\rPING\r\n", err(MissingPayloadCrlf, 14)),
        row("payload followed by LF CR", "MSG a 1 3\r\nabc\n\r", err(MissingPayloadCrlf, 14)),
        row("payload followed by LF only", "MSG a 1 3\r\nabc\nPING\r\n", err(MissingPayloadCrlf, 14)),
        row("payload shorter than announced", "MSG a 1 5\r\nabc\r\nPING\r\n", err(MissingPayloadCrlf, 16)),
        row("hmsg payload followed by wrong bytes", hdr_crlf, err(MissingPayloadCrlf, hdr_crlf_line + 14)),
        row(
            "bad block and bad terminator: framing wins",
            "HMSG a 1 12 12\r\nNATS/2.0\r\n\r\nXX",
            err(MissingPayloadCrlf, 28),
        ),
        // --- header blocks (frame-local) ---
        bad_block("lone CR in a header value", "NATS/1.0\r\nA: x\ry\r\n\r\n", H::BareLineBreak),
        bad_block("lone LF in a header value", "NATS/1.0\r\nA: x\ny\r\n\r\n", H::BareLineBreak),
        bad_block("CR CR at the end of a header line", "NATS/1.0\r\nA: x\r\r\n\r\n", H::BareLineBreak),
        bad_block("block starts with NATS/1.1", "NATS/1.1\r\n\r\n", H::MissingVersion),
        bad_block("block starts with HTTP/1.0", "HTTP/1.0\r\n\r\n", H::MissingVersion),
        bad_block("status glued to the version", "NATS/1.0503\r\n\r\n", H::MissingVersion),
        row("hdr size 0: no block at all", "HMSG a 1 0 2\r\nhi\r\n", err(InvalidHeaders(H::MissingVersion), 14)),
        bad_block("status of 2 digits", "NATS/1.0 50\r\n\r\n", H::InvalidStatus),
        bad_block("status of 4 digits", "NATS/1.0 5034\r\n\r\n", H::InvalidStatus),
        bad_block("status of letters", "NATS/1.0 abc\r\n\r\n", H::InvalidStatus),
        bad_block("status below 100", "NATS/1.0 099\r\n\r\n", H::InvalidStatus),
        bad_block("missing final empty line", "NATS/1.0\r\nA: 1\r\n", H::MissingTerminator),
        bad_block("hdr counts only the version line", "NATS/1.0\r\n", H::MissingTerminator),
        bad_block("text after the empty line", "NATS/1.0\r\n\r\nA: 1\r\n\r\n", H::MissingTerminator),
        bad_block("header line without colon", "NATS/1.0\r\nA 1\r\n\r\n", H::MissingColon),
        bad_block("folded continuation line", "NATS/1.0\r\nA: 1\r\n  more\r\n\r\n", H::MissingColon),
        bad_block("empty header name", "NATS/1.0\r\n: 1\r\n\r\n", H::EmptyName),
        bad_block("header name with a space", "NATS/1.0\r\nA B: 1\r\n\r\n", H::InvalidName),
        bad_block("space before the colon", "NATS/1.0\r\nA : 1\r\n\r\n", H::InvalidName),
        bad_block("header name with a control byte", "NATS/1.0\r\nA\u{1}B: 1\r\n\r\n", H::InvalidName),
        bad_block("non-ASCII header name", "NATS/1.0\r\nNäme: 1\r\n\r\n", H::InvalidName),
        // --- op names ---
        row("unknown op", "FOO bar\r\n", err(UnknownOp, 0)),
        row("op without its blank", "MSGfoo 1 2\r\n", err(UnknownOp, 0)),
        row("client-only PUB", "PUB a 1\r\nx\r\n", err(UnknownOp, 0)),
        row("client-only SUB", "SUB a 1\r\n", err(UnknownOp, 0)),
        row("client-only HPUB", "HPUB a 12 12\r\n", err(UnknownOp, 0)),
        row("client-only UNSUB", "UNSUB 1\r\n", err(UnknownOp, 0)),
        row("client-only CONNECT", "CONNECT {}\r\n", err(UnknownOp, 0)),
        row("route op RMSG", "RMSG $G a 1 0\r\n\r\n", err(UnknownOp, 0)),
        row("truncated op name", "PIN\r\n", err(UnknownOp, 0)),
        row("truncated +OK", "+O\r\n", err(UnknownOp, 0)),
        row("empty line", "\r\n", err(UnknownOp, 0)),
        row("bare LF line", "\n", err(UnknownOp, 0)),
        row("NUL byte op", "\0PING\r\n", err(UnknownOp, 0)),
        row("leading blank before the op", " MSG a 1 0\r\n\r\n", err(UnknownOp, 0)),
        // --- argument counts and sids ---
        row("MSG with 2 args", "MSG a 1\r\n", err(WrongArgCount, 3)),
        row("MSG with no args", "MSG\r\n", err(WrongArgCount, 3)),
        row("MSG with 5 args", "MSG a 1 r 3 x\r\n", err(WrongArgCount, 3)),
        row("MSG with 6 args", "MSG a b c d e f\r\n", err(WrongArgCount, 14)),
        row("HMSG with 3 args", "HMSG a 1 12\r\n", err(WrongArgCount, 4)),
        row("HMSG with 6 args", "HMSG a 1 r 12 12 x\r\n", err(WrongArgCount, 17)),
        row("non-numeric sid", "MSG a x 3\r\n", err(InvalidSid, 6)),
        row("negative sid", "MSG a -1 3\r\n", err(InvalidSid, 6)),
        row("sid u64::MAX+1", "MSG a 18446744073709551616 0\r\n", err(InvalidSid, 6)),
        row("sid of 21 digits", "MSG a 184467440737095516150 0\r\n", err(InvalidSid, 6)),
        row("HMSG non-numeric sid", "HMSG a x 12 12\r\n", err(InvalidSid, 7)),
        row("sid u64::MAX", "MSG a 18446744073709551615 0\r\n\r\n", op(msg(b"a", u64::MAX, None, None, b""))),
        // --- line limits ---
        row(
            "control line of 5000 bytes",
            format!("MSG {}\r\n", big(4996)),
            err(ControlLineTooLong { limit: 4096 }, 4096),
        ),
        row(
            "control line of 4097 bytes, bare LF",
            format!("MSG a 1 {}\n", big(4089)),
            err(ControlLineTooLong { limit: 4096 }, 4096),
        ),
        row("5000 bytes without a line end", big(5000), err(ControlLineTooLong { limit: 4096 }, 4096)),
        row(
            "5000 bytes starting with C, no line end",
            format!("C{}", big(5000)),
            err(ControlLineTooLong { limit: 4096 }, 4096),
        ),
        row(
            "control line of exactly 4096 bytes",
            format!("MSG {} 1 0\r\n\r\n", big(4088)),
            op(msg(big(4088).as_bytes(), 1, None, None, b"")),
        ),
        row(
            "INFO over the default info cap",
            format!("INFO {{{}}}\r\n", big(1 << 20)),
            err(ControlLineTooLong { limit: 1 << 20 }, 1 << 20),
        ),
        row_with(
            "INFO over a small info cap",
            format!("INFO {{\"server_id\":\"{}\"}}\r\n", big(100)),
            small_info_cap(),
            err(ControlLineTooLong { limit: 64 }, 64),
        ),
        row_with(
            "-ERR over a small info cap",
            format!("-ERR '{}'\r\n", big(100)),
            small_info_cap(),
            err(ControlLineTooLong { limit: 64 }, 64),
        ),
        row_with("INFO of exactly the info cap", format!("{info_64}\r\n"), small_info_cap(), op(info(&big(43), 0))),
        // --- INFO JSON (frame-local) ---
        row("INFO with bad JSON", "INFO {bad\r\n", err(InvalidJson, 5)),
        row("INFO without JSON", "INFO\r\n", err(InvalidJson, 4)),
        row("INFO with an out-of-range port", "INFO   {\"port\":70000}\r\n", err(InvalidJson, 7)),
        row("INFO with a JSON array", "INFO [1,2]\r\n", err(InvalidJson, 5)),
        row("INFO with trailing garbage", "INFO {\"proto\":1} x\r\n", err(InvalidJson, 5)),
        // --- adversarial but valid ---
        row("lower-case msg", "msg a 1 3\r\nabc\r\n", op(msg(b"a", 1, None, None, b"abc"))),
        row("mixed-case MsG", "MsG a 1 0\r\n\r\n", op(msg(b"a", 1, None, None, b""))),
        row(
            "lower-case hmsg",
            "hmsg a 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
            op(msg(b"a", 1, None, Some("NATS/1.0\r\n\r\n"), b"hi")),
        ),
        row("tabs and runs of blanks", "MSG\ta \t 1\t\tr  3 \t\r\nabc\r\n", op(msg(b"a", 1, Some("r"), None, b"abc"))),
        row("bare LF ends the control line", "MSG a 1 3\nabc\r\n", op(msg(b"a", 1, None, None, b"abc"))),
        row("size with leading zeros", "MSG a 1 00003\r\nabc\r\n", op(msg(b"a", 1, None, None, b"abc"))),
        row("numeric reply subject", "MSG a 1 123 2\r\nhi\r\n", op(msg(b"a", 1, Some("123"), None, b"hi"))),
        row("non-UTF-8 subject", b"MSG a.\xff\xfe 7 1\r\n\x80\r\n", op(msg(b"a.\xff\xfe", 7, None, None, b"\x80"))),
        row("payload holding CRLF and an op", "MSG a 1 6\r\nPING\r\n\r\n", op(msg(b"a", 1, None, None, b"PING\r\n"))),
        row(
            "empty header value",
            "HMSG a 1 18 18\r\nNATS/1.0\r\nFoo:\r\n\r\n\r\n",
            op(msg(b"a", 1, None, Some("NATS/1.0\r\nFoo:\r\n\r\n"), b"")),
        ),
        row(
            "HMSG 503 no responders",
            "HMSG _INBOX.x 9 16 16\r\nNATS/1.0 503\r\n\r\n\r\n",
            op(msg(b"_INBOX.x", 9, None, Some("NATS/1.0 503\r\n\r\n"), b"")),
        ),
        row("lower-case ping", "ping\r\n", op(ServerOp::Ping)),
        row("PING with trailing text", "PING foo\r\n", op(ServerOp::Ping)),
        row("PING ended by bare LF", "PING\n", op(ServerOp::Ping)),
        row("lower-case pong", "pong\r\n", op(ServerOp::Pong)),
        row("lower-case +ok", "+ok\r\n", op(ServerOp::Ok)),
        row(
            "-ERR without quotes",
            "-ERR Stale Connection\r\n",
            op(ServerOp::Err(ServerError::new("Stale Connection"))),
        ),
        row("bare -ERR", "-ERR\r\n", op(ServerOp::Err(ServerError::new("")))),
        row(
            "lower-case -err, quoted",
            "-err 'Authorization Violation'\r\n",
            op(ServerOp::Err(ServerError::new("Authorization Violation"))),
        ),
        row(
            "INFO with unknown fields",
            "INFO {\"server_id\":\"x\",\"proto\":1,\"new\":{\"a\":[1,null]}}\r\n",
            op(info("x", 1)),
        ),
        row("INFO without proto", "INFO {\"server_id\":\"x\"}\r\n", op(info("x", 0))),
        row("lower-case info without a blank", "info{\"server_id\":\"x\"}\r\n", op(info("x", 0))),
    ]
}

/// Feeds a row and checks its outcome; returns a description of every mismatch.
fn check_decoder(r: &Row) -> Vec<String> {
    let mut bad = vec![];
    let mut d = ServerDecoder::new(r.limits);
    let mut buf = BytesMut::from(&r.input[..]);
    let first = d.decode(&mut buf);
    match (&r.expect, first) {
        (Expect::Op(want), Ok(Some(got))) if *want == got => {}
        (Expect::Err(kind, offset), Err(e)) if e.kind() == *kind && e.offset() == *offset => {
            if e.is_frame_local() != frame_local(*kind) {
                bad.push(format!("is_frame_local() = {}", e.is_frame_local()));
            }
            if !r.stream_survives() {
                buf.extend_from_slice(TRAILER);
                for _ in 0..2 {
                    let again = d.decode(&mut buf);
                    if again != Err(e) {
                        bad.push(format!("not sticky: later decode gave {again:?}"));
                    }
                }
                return bad;
            }
        }
        (_, got) => {
            bad.push(format!("first decode gave {got:?}"));
            return bad;
        }
    }
    // The stream survived: exactly the trailing PING is left.
    let next = d.decode(&mut buf);
    if next != Ok(Some(ServerOp::Ping)) {
        bad.push(format!("the op after it decoded as {next:?}"));
    }
    if d.decode(&mut buf) != Ok(None) || !buf.is_empty() {
        bad.push(format!("{} bytes left over", buf.len()));
    }
    bad
}

fn fail_rows(what: &str, failures: Vec<(&'static str, Vec<String>)>) {
    let failures: Vec<_> = failures.into_iter().filter(|(_, f)| !f.is_empty()).collect();
    assert!(failures.is_empty(), "{what}: {} rows failed:\n{failures:#?}", failures.len());
}

#[test]
fn table_is_big_and_names_are_unique() {
    let rows = rows();
    assert!(rows.len() >= 45, "{} rows", rows.len());
    let mut names: Vec<_> = rows.iter().map(|r| r.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), rows.len(), "duplicate row names");
    let errors = rows.iter().filter(|r| matches!(r.expect, Expect::Err(..))).count();
    assert!(errors >= 45, "{errors} error rows");
}

#[test]
fn decoder_gives_the_exact_outcome() {
    fail_rows("ServerDecoder::decode", rows().iter().map(|r| (r.name, check_decoder(r))).collect());
}

/// Converts a borrowed op to the owned form for comparison (INFO is not decoded by the borrowing parser).
fn to_owned_op(op: ServerOpRef<'_>) -> Option<ServerOp> {
    Some(match op {
        ServerOpRef::Msg(m) => {
            let headers = m.headers.map(|h| HeaderBlock::parse(Bytes::copy_from_slice(h)).expect("validated block"));
            ServerOp::Msg(Msg::new(m.subject, m.sid, m.reply, headers.as_ref(), m.payload))
        }
        ServerOpRef::Ping => ServerOp::Ping,
        ServerOpRef::Pong => ServerOp::Pong,
        ServerOpRef::Ok => ServerOp::Ok,
        ServerOpRef::Err(text) => ServerOp::Err(ServerError::new(String::from_utf8_lossy(text))),
        _ => return None,
    })
}

#[test]
fn parse_server_op_agrees_with_the_decoder() {
    let mut checked = 0;
    let failures = rows()
        .iter()
        .filter(|r| !matches!(r.expect, Expect::Op(ServerOp::Info(_)) | Expect::Err(ParseErrorKind::InvalidJson, _)))
        .map(|r| {
            checked += 1;
            let got = parse_server_op(&r.input, &r.limits);
            let problem = match (&r.expect, got) {
                (Expect::Err(kind, offset), Err(e)) if e.kind() == *kind && e.offset() == *offset => None,
                (Expect::Op(want), Ok(Status::Complete((op, used)))) => {
                    let frame_len = r.input.len() - TRAILER.len();
                    (to_owned_op(op).as_ref() != Some(want) || used != frame_len)
                        .then(|| format!("gave {op:?} using {used} of {frame_len} bytes"))
                }
                (_, got) => Some(format!("gave {got:?}")),
            };
            (r.name, problem.into_iter().collect())
        })
        .collect();
    fail_rows("parse_server_op", failures);
    assert!(checked >= 45, "{checked} rows compared");
}

#[test]
fn borrowed_info_is_the_raw_json_of_the_decoded_info() {
    for r in rows().iter().filter(|r| matches!(r.expect, Expect::Op(ServerOp::Info(_)))) {
        let Ok(Status::Complete((ServerOpRef::Info(json), _))) = parse_server_op(&r.input, &r.limits) else {
            panic!("{}: not an INFO", r.name);
        };
        let Expect::Op(ServerOp::Info(want)) = &r.expect else { unreachable!() };
        assert_eq!(ServerInfo::from_json(json).as_ref().ok(), Some(&**want), "{}", r.name);
    }
}

fn first_op(input: &[u8]) -> ServerOp {
    let mut buf = BytesMut::from(input);
    ServerDecoder::default().decode(&mut buf).expect("valid").expect("complete")
}

#[test]
fn adversarial_values_read_back() {
    let (frame, _) = hmsg("a 1", "NATS/1.0\r\nFoo:\r\nBar:   \t\r\nA:x\r\n\r\n", "");
    let ServerOp::Msg(m) = first_op(&frame) else { panic!() };
    let h = m.headers().unwrap();
    assert_eq!((h.get("Foo"), h.get("Bar"), h.get("A")), (Some(""), Some(""), Some("x")));
    assert_eq!(h.iter().count(), 3);
    let ServerOp::Msg(m) = first_op(b"MSG a.\xff 1 0\r\n\r\n") else { panic!() };
    assert_eq!((m.subject().as_str(), m.subject().as_bytes()), (None, &b"a.\xff"[..]));
    let (frame, _) = hmsg("x 1", "NATS/1.0 404 No Messages\r\nA: 1\r\n\r\n", "hi");
    let ServerOp::Msg(m) = first_op(&frame) else { panic!() };
    assert_eq!(m.status().map(|s| s.as_u16()), Some(404));
    assert_eq!(m.headers().unwrap().description(), "No Messages");
    assert_eq!((m.size(), m.payload()), (36, &b"hi"[..]));
    let ServerOp::Err(e) = first_op(b"-ERR 'Permissions Violation for Subscription to \"x.y\"'\r\n") else { panic!() };
    assert_eq!(e.permission().map(|(_, s, _)| s), Some("x.y"));
    assert!(!e.closes_connection());
}

#[test]
fn reset_forgets_a_sticky_error() {
    let mut d = ServerDecoder::default();
    let mut buf = BytesMut::from(&b"MSG a x 1\r\n"[..]);
    let e: ParseError = d.decode(&mut buf).unwrap_err();
    assert_eq!((e.kind(), e.is_frame_local()), (ParseErrorKind::InvalidSid, false));
    let mut fresh = BytesMut::from(&b"PING\r\n"[..]);
    assert_eq!(d.decode(&mut fresh), Err(e), "sticky even with a new buffer");
    d.reset();
    assert_eq!(d.decode(&mut fresh), Ok(Some(ServerOp::Ping)));
}

#[test]
fn set_max_payload_applies_to_the_next_control_line() {
    let mut d = ServerDecoder::default();
    d.set_max_payload(4);
    assert_eq!(d.limits().max_payload, 4);
    let mut buf = BytesMut::from(&b"MSG a 1 4\r\nabcd\r\nMSG a 1 5\r\n"[..]);
    assert!(matches!(d.decode(&mut buf), Ok(Some(ServerOp::Msg(_)))));
    let e = d.decode(&mut buf).unwrap_err();
    assert_eq!((e.kind(), e.offset()), (ParseErrorKind::PayloadTooLarge { size: 5, limit: 4 }, 8));
}

/// The other direction, briefly: what a test server must refuse from a client.
#[test]
fn client_side_hostile_frames() {
    use ParseErrorKind::*;
    type Case = (&'static str, Result<ClientOp, (ParseErrorKind, usize)>);
    let cases: &[Case] = &[
        ("PUB a -1\r\n", Err((InvalidSize, 6))),
        ("PUB a\r\n", Err((WrongArgCount, 3))),
        ("PUB a r s 1\r\n", Err((WrongArgCount, 3))),
        ("HPUB a 13 12\r\n", Err((HeaderSizeExceedsTotal, 7))),
        ("PUB a 3\r\nabcXY", Err((MissingPayloadCrlf, 12))),
        ("SUB a\r\n", Err((WrongArgCount, 3))),
        ("SUB a q 1 x\r\n", Err((WrongArgCount, 3))),
        ("SUB a 18446744073709551616\r\n", Err((InvalidSid, 6))),
        ("UNSUB x\r\n", Err((InvalidSid, 6))),
        ("UNSUB 1 1000000000\r\n", Err((InvalidSize, 8))),
        ("UNSUB\r\n", Err((WrongArgCount, 5))),
        ("MSG a 1 0\r\n\r\n", Err((UnknownOp, 0))),
        ("INFO {}\r\n", Err((UnknownOp, 0))),
        ("+OK\r\n", Err((UnknownOp, 0))),
        ("-ERR 'x'\r\n", Err((UnknownOp, 0))),
        ("PUBa 1\r\n", Err((UnknownOp, 0))),
        ("CONNECT {bad\r\n", Err((InvalidJson, 8))),
        ("HPUB a 5 5\r\nNATS/\r\n", Err((InvalidHeaders(HeaderError::MissingVersion), 12))),
        ("sub\tfoo\t\tq  9\n", Ok(ClientOp::Sub { subject: "foo".into(), queue: Some("q".into()), sid: 9 })),
        ("unsub 9 0\r\n", Ok(ClientOp::Unsub { sid: 9, max: Some(0) })),
        ("PING x\r\n", Ok(ClientOp::Ping)),
    ];
    for (input, want) in cases {
        let mut d = ClientDecoder::default();
        let mut buf = BytesMut::from(input.as_bytes());
        let got = d.decode(&mut buf);
        match (want, &got) {
            (Ok(op), Ok(Some(got))) => assert_eq!(got, op, "{input:?}"),
            (Err((kind, offset)), Err(e)) => {
                assert_eq!((e.kind(), e.offset()), (*kind, *offset), "{input:?}");
                if !e.is_frame_local() {
                    assert_eq!(d.decode(&mut BytesMut::from(&b"PING\r\n"[..])), Err(*e), "{input:?}: sticky");
                }
            }
            _ => panic!("{input:?}: expected {want:?}, got {got:?}"),
        }
    }
}

/// A client line that cannot be INFO or -ERR is held to `max_control_line`, as on the server side.
#[test]
fn client_side_long_garbage_is_refused_at_the_control_line_limit() {
    for first in ["I", "-"] {
        let mut buf = BytesMut::from(format!("{first}{}", "x".repeat(5000)).as_bytes());
        let got = ClientDecoder::default().decode(&mut buf).map_err(|e| (e.kind(), e.offset()));
        assert_eq!(got, Err((ParseErrorKind::ControlLineTooLong { limit: 4096 }, 4096)), "{first}xxxx...");
    }
}
