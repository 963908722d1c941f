//! A sans-IO NATS protocol core: zero-copy parser, encoder and connection state machine.
//!
//! Nothing here touches a socket, a clock or a thread. Bytes and time go in; ops, events and bytes to write
//! come out. The blocking and async clients are thin drivers around it, and fuzzers and test servers use the
//! same parser.
//!
//! ```text
//!            bytes read                       bytes to write
//! socket ─────────────▶ Connection::handle_input    poll_transmit ─────────▶ socket
//!  clock ─────────────▶ Connection::handle_timeout  poll_timeout  ─────────▶ timer
//!  user  ─ publish / subscribe / request / flush ─▶ poll_event    ─────────▶ user
//!                                                    poll_action   ─────────▶ driver (dial, TLS, close)
//! ```
//!
//! # The drive loop
//!
//! A driver dials when asked, feeds what it reads, writes what it is given, and sleeps until
//! [`Connection::poll_timeout`]. Here the "server" is scripted so the example runs anywhere:
//!
//! ```
//! use bytes::{Buf, Bytes};
//! use nats_proto::{Action, Config, Connection, Event, Instant, ServerAddr, WriteBuffer};
//!
//! let now = Instant::from_nanos(0); // a driver passes its clock's time
//! let mut conn = Connection::new(Config::new(vec![ServerAddr::parse("nats://127.0.0.1:4222")?]), now);
//! assert!(matches!(conn.poll_action(), Some(Action::Dial(_))));
//! conn.handle_connected(now); // the driver opened a TCP connection
//!
//! // The server speaks first; the core answers with CONNECT and PING.
//! conn.handle_input(now, b"INFO {\"server_id\":\"S\",\"headers\":true,\"max_payload\":1048576,\"proto\":1}\r\n");
//! let mut wire = WriteBuffer::new();
//! conn.poll_transmit(&mut wire);
//! let sent = wire.copy_to_bytes(wire.remaining());
//! assert!(sent.starts_with(b"CONNECT {") && sent.ends_with(b"PING\r\n"));
//!
//! conn.handle_input(now, b"PONG\r\n");
//! assert!(matches!(conn.poll_event(), Some(Event::Connected(_))));
//!
//! let sid = conn.subscribe("greet.*", None)?;
//! conn.publish("greet.joe", None, None, Bytes::from_static(b"hello"))?;
//! conn.poll_transmit(&mut wire);
//! assert_eq!(wire.copy_to_bytes(wire.remaining()), "SUB greet.* 1\r\nPUB greet.joe 5\r\nhello\r\n");
//!
//! // A message arrives: its payload is a slice of the read buffer.
//! conn.handle_input(now, b"MSG greet.joe 1 5\r\nhello\r\n");
//! match conn.poll_event() {
//!     Some(Event::Message(msg)) => assert_eq!((msg.sid(), msg.payload()), (sid, &b"hello"[..])),
//!     other => panic!("unexpected {other:?}"),
//! }
//!
//! // A driver that reads into a buffer of its own hands messages straight to a sink: no copy, no event.
//! let mut read = bytes::BytesMut::from(&b"MSG greet.ann 1 2\r\nhi\r\n"[..]);
//! let mut delivered: Vec<nats_proto::Msg> = Vec::new();
//! conn.handle_read(now, &mut read, &mut delivered);
//! assert_eq!(delivered[0].subject(), "greet.ann");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! For a real socket see `examples/manual_loop.rs`.
//!
//! # Parsing alone
//!
//! [`parse_server_op`] is stateless and borrows from the caller's buffer; [`ServerDecoder`] and
//! [`ClientDecoder`] are resumable over a `BytesMut` and cut each op as one `Bytes`:
//!
//! ```
//! use nats_proto::{parse_server_op, Limits, ServerOpRef, Status};
//!
//! let limits = Limits::default();
//! assert_eq!(parse_server_op(b"MSG a 1 5\r\nhel", &limits)?, Status::Partial);
//! let Status::Complete((ServerOpRef::Msg(m), used)) = parse_server_op(b"MSG a 1 5\r\nhello\r\n", &limits)? else {
//!     unreachable!()
//! };
//! assert_eq!((m.payload, used), (&b"hello"[..], 18));
//! # Ok::<(), nats_proto::ParseError>(())
//! ```
//!
//! # Errors
//!
//! Bad bytes from the server are a [`ParseError`] (`Copy`, with an offset), never a panic; `-ERR` is a
//! classified [`ServerError`]; caller mistakes are a [`CommandError`]; why a connection ended is a
//! [`ConnectionError`].
//!
//! # Without std
//!
//! With its default `std` feature off the crate is `#![no_std]` and needs only `alloc`: parser, encoder, headers
//! and the connection state machine are all there, time comes in as an [`Instant`] the driver reads from its own
//! clock, and randomness as [`Config::seed`]. `std` adds `IdMap` (the core's maps are hashed with it,
//! `BTreeMap`s without) and `Buf::chunks_vectored` on [`WriteBuffer`] (for `write_vectored`). Reading a clock
//! is never the core's, with or without `std`: the clients convert `std::time::Instant` with
//! `nats_client::StdInstant`.

#![no_std]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod conn;
pub mod encode;
pub mod error;
pub mod headers;
pub mod info;
pub mod op;
pub mod parse;
pub mod payload;
pub mod subject;
mod swar;
pub mod time;

#[cfg(feature = "std")]
pub use conn::IdMap;
pub use conn::{
    backoff, Action, Auth, CloseReason, Config, Connection, Credentials, CredentialsCallback, Deliver, Event,
    FlushError, FlushId, IdHasher, InvalidUrl, ReconnectPolicy, RequestError, RequestId, Rng, Scheme, ServerAddr,
    ServerPool, State, Statistics, SubscriptionEnd,
};
pub use encode::WriteBuffer;
pub use error::{
    CommandError, ConnectionError, HeaderError, ParseError, ParseErrorKind, PermissionOp, ServerError, ServerErrorKind,
    SubjectError,
};
pub use headers::{HeaderBlock, HeaderView, Headers, StatusCode};
pub use info::{ConnectInfo, ServerInfo};
pub use op::{ClientOp, Msg, MsgRef, Pub, ServerOp, ServerOpRef};
pub use parse::{parse_server_op, ClientDecoder, Limits, ServerDecoder, Status};
pub use payload::Payload;
pub use subject::{Subject, SubjectRef};
pub use time::Instant;
