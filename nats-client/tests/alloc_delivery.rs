//! The client half of the ingest path allocates nothing per message either: `Connection::handle_read` decodes
//! the driver's read buffer into the drivers' own sink, `nats_client::router::Router`, which appends each run of
//! messages to its subscription's `MessageQueue` in one step; the subscriber's
//! `Receiver` takes everything waiting in one swap and hands the messages out. Once the read buffers and the
//! three `VecDeque`s that the router, the queue and the receiver swap have their capacity, a batch of N
//! messages costs no allocation. A batch of 10 N, past the 8192 entries a drained receiver keeps, costs the
//! same few whatever its size: the deque it grew is shrunk back once drained and grown again by the next such
//! burst (so that no subscription keeps its largest backlog's memory for good); none per message.
//!
//! A counting global allocator wraps the system one. Only the thread that armed it is counted, so tests running
//! on other threads of the harness do not disturb a measurement.

use nats_client::StdInstant as _;
use nats_proto::conn::read_buffer::ReadBuffer;
use nats_server_harness::alloc::{allocations, assert_counting, message_frames as frames, CountingAllocator};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use nats_client::queue::{MessageQueue, Receiver};
use nats_client::router::{Delivered, Router};
use nats_client::{Error, Message, PendingLimits, Publish};
use nats_proto::{Action, Config, Connection, Event, Headers, IdMap, Instant, Payload, ServerAddr, WriteBuffer};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn the_counter_counts() {
    assert_counting();
}

/// Messages in the smaller batch; the larger one has ten times as many.
const N: usize = 2_000;

/// The client a message with a reply subject answers through: records what it is asked to publish.
#[derive(Default)]
struct Replies {
    count: AtomicUsize,
    last: Mutex<Option<(Vec<u8>, Bytes)>>,
}

impl Publish for Replies {
    fn publish(&self, subject: &[u8], _headers: Option<&Headers>, payload: Payload<'_>) -> Result<(), Error> {
        self.count.fetch_add(1, Ordering::Relaxed);
        *self.last.lock().unwrap() = Some((subject.to_vec(), payload.into_bytes()));
        Ok(())
    }

    fn publish_deferred(&self, subject: &[u8], headers: Option<&Headers>, payload: Payload<'_>) -> Result<(), Error> {
        self.publish(subject, headers, payload)
    }

    fn send_deferred(&self) {}
}

/// What the subscriber took: messages, payload bytes, with a reply (and a client to answer through), with
/// headers.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    msgs: usize,
    payload: usize,
    replies: usize,
    headers: usize,
}

impl Seen {
    /// What `n` frames of [`frames`] deliver.
    fn expected(n: usize) -> Self {
        Self { msgs: n, payload: 16 * n, replies: n / 2, headers: n / 2 }
    }
}

/// Reads of [`Client::driver_reads`]: how many, and how many filled the buffer and ended inside a frame.
#[derive(Debug, Default, Clone, Copy)]
struct Reads {
    reads: usize,
    full_and_cut: usize,
}

/// What a driver holds for the ingest path, and a subscriber's receiver.
struct Client {
    conn: Connection,
    now: Instant,
    sid: u64,
    buf: ReadBuffer,
    routes: IdMap<Arc<MessageQueue>>,
    replies: Arc<Replies>,
    client: Weak<dyn Publish>,
    delivered: Delivered,
    rx: Receiver,
}

impl Client {
    /// A connection through its handshake (INFO, CONNECT + PING, PONG) with one subscription routed to a queue.
    fn new() -> Self {
        let now = Instant::now();
        let addr = ServerAddr::parse("nats://127.0.0.1:4222").unwrap();
        let mut config = Config::new(vec![addr.clone()]);
        config.randomize_servers = false;
        let mut conn = Connection::new(config, now);
        assert!(matches!(conn.poll_action(), Some(Action::Dial(a)) if a == addr));
        conn.handle_connected(now);
        let info = r#"{"server_id":"S1","server_name":"s1","version":"2.11.0","proto":1,"headers":true,"max_payload":1048576}"#;
        conn.handle_input(now, format!("INFO {info}\r\n").as_bytes());
        let sent = transmit(&mut conn);
        assert!(sent.starts_with("CONNECT {") && sent.ends_with("\r\nPING\r\n"), "{sent:?}");
        conn.handle_input(now, b"PONG\r\n");
        let mut connected = false;
        while let Some(e) = conn.poll_event() {
            connected |= matches!(e, Event::Connected(a) if a == addr);
        }
        assert!(connected && conn.is_connected());
        let sid = conn.subscribe("bench.>", None).unwrap();
        assert_eq!(transmit(&mut conn), format!("SUB bench.> {sid}\r\n"));

        let queue = Arc::new(MessageQueue::new(PendingLimits::default()));
        let mut routes = IdMap::default();
        routes.insert(sid, queue.clone());
        let replies = Arc::new(Replies::default());
        let client: Weak<dyn Publish> = Arc::downgrade(&replies) as Weak<dyn Publish>;
        let buf = ReadBuffer::new();
        Self { conn, now, sid, buf, routes, replies, client, delivered: Delivered::default(), rx: Receiver::new(queue) }
    }

    /// Decodes what is in the read buffer into the router, as `Locked::ingest` does, then wakes the queue.
    fn ingest(&mut self) {
        let Client { conn, now, buf, routes, client, delivered, .. } = self;
        conn.handle_read(*now, buf, &mut Router::new(routes, client, delivered));
        assert!(delivered.slow().is_empty(), "a slow consumer: {:?}", delivered.slow());
        assert!(delivered.touched().len() <= 1);
        delivered.wake_touched();
    }

    /// The subscriber takes every message waiting and drops it; what it saw goes into `seen`.
    fn drain(&mut self, seen: &mut Seen) {
        while let Some(next) = self.rx.try_next() {
            let m: Message = next.expect("the queue does not end");
            assert_eq!((m.sid(), m.subject().as_bytes()), (self.sid, &b"bench.msg"[..]));
            seen.msgs += 1;
            seen.payload += m.payload().len();
            seen.replies += usize::from(m.reply().is_some());
            seen.headers += usize::from(m.headers().is_some_and(|h| h.get("Trace") == Some("on")));
        }
    }

    /// Feeds `wire` in one read, then the subscriber takes it all; returns the allocations of the whole round
    /// (the drops included) and what the subscriber saw.
    fn one_read(&mut self, wire: &Bytes) -> (usize, Seen) {
        let in_msgs = self.conn.statistics().in_msgs;
        let (n, seen) = allocations(|| {
            self.buf.extend_from_slice(wire);
            self.ingest();
            let mut seen = Seen::default();
            self.drain(&mut seen);
            seen
        });
        self.check(in_msgs, &seen);
        (n, seen)
    }

    /// Feeds `wire` the way the drivers read a busy socket: the buffer is topped up by `ReadBuffer::make_room` when low,
    /// each read fills all of its free room (so reads end anywhere inside a frame), and the subscriber takes
    /// what arrived after each read.
    fn driver_reads(&mut self, wire: &Bytes) -> (usize, Seen, Reads) {
        let in_msgs = self.conn.statistics().in_msgs;
        let (n, (seen, reads)) = allocations(|| {
            let (mut seen, mut reads) = (Seen::default(), Reads::default());
            let mut at = 0;
            while at < wire.len() {
                self.buf.make_room();
                let len = (self.buf.capacity() - self.buf.len()).min(wire.len() - at);
                self.buf.extend_from_slice(&wire[at..at + len]);
                at += len;
                let full = self.buf.capacity() == self.buf.len();
                self.ingest();
                reads.reads += 1;
                reads.full_and_cut += usize::from(full && !self.buf.is_empty());
                self.drain(&mut seen);
            }
            (seen, reads)
        });
        self.check(in_msgs, &seen);
        (n, seen, reads)
    }

    /// The read left nothing behind, raised no event, dropped nothing, and every message decoded was taken.
    fn check(&mut self, in_msgs_before: u64, seen: &Seen) {
        assert!(self.buf.is_empty(), "{} bytes of a frame left in the read buffer", self.buf.len());
        assert!(self.conn.is_connected());
        let event = self.conn.poll_event();
        assert!(event.is_none(), "unexpected event: {event:?}");
        assert_eq!(self.conn.statistics().in_msgs - in_msgs_before, seen.msgs as u64);
        assert_eq!((self.rx.pending(), self.rx.dropped()), ((0, 0), 0));
    }
}

/// Everything the connection wrote since the last call, as text.
fn transmit(conn: &mut Connection) -> String {
    let mut w = WriteBuffer::new();
    conn.poll_transmit(&mut w);
    String::from_utf8(w.take_bytes().to_vec()).unwrap()
}

/// The batch sizes measured, after three warm-up rounds of the large one, three times over.
fn rounds(small: &Bytes, large: &Bytes, mut batch: impl FnMut(&Bytes, usize) -> usize) -> Vec<(usize, usize)> {
    for _ in 0..3 {
        batch(large, 10 * N);
    }
    let mut counts = Vec::new();
    for _ in 0..3 {
        for (wire, n) in [(small, N), (large, 10 * N)] {
            counts.push((n, batch(wire, n)));
        }
    }
    counts
}

#[test]
fn a_message_with_a_reply_answers_through_the_client() {
    let mut c = Client::new();
    c.buf.extend_from_slice(&frames(c.sid, 2));
    c.ingest();
    // The router gives the client only to messages that can be answered.
    let plain = c.rx.try_next().unwrap().unwrap();
    assert!(matches!(plain.respond("x"), Err(Error::Command(_))));
    let request = c.rx.try_next().unwrap().unwrap();
    request.respond("pong").unwrap();
    assert_eq!(c.replies.count.load(Ordering::Relaxed), 1);
    let last = c.replies.last.lock().unwrap().take();
    assert_eq!(last, Some((b"_INBOX.abcdef.1234".to_vec(), Bytes::from_static(b"pong"))));
    assert!(c.rx.try_next().is_none());
}

#[test]
fn routing_and_receiving_allocate_nothing_per_message() {
    let (small, large) = (frames(1, N), frames(1, 10 * N));
    let mut c = Client::new();
    assert_eq!(c.sid, 1);
    // Warm-up: the buffer turns shared and grows to hold the large batch; the three `VecDeque`s that the
    // router's batch, the queue and the receiver swap round grow to hold the small one.
    let counts = rounds(&small, &large, |wire, n| {
        let (allocs, seen) = c.one_read(wire);
        assert_eq!(seen, Seen::expected(n));
        allocs
    });
    println!("allocations per batch, one read, router + queue + receiver (messages, allocations): {counts:?}");
    for &(n, allocs) in &counts {
        match n {
            N => assert_eq!(allocs, 0, "allocations while delivering {N} messages: {counts:?}"),
            // A burst's deque shrunk back and grown again: a few, and the same every time.
            _ => assert!(allocs <= 8 && allocs == counts[1].1, "allocations for a burst of {n}: {counts:?}"),
        }
    }
    assert_eq!(c.conn.statistics().in_msgs, (3 * 10 * N + 3 * 11 * N) as u64);
    assert_eq!(c.replies.count.load(Ordering::Relaxed), 0);
}

/// The drivers' read loop: the messages of a read are held (gathered, then queued) while that read is decoded,
/// so a read that fills the buffer and ends inside a frame needs the next read to go into another buffer; the
/// `ReadBuffer` reuses an earlier one whose messages the subscriber has dropped. After the warm-up (the first
/// two rounds), full reads cost no allocation at all.
#[test]
fn driver_reads_allocate_nothing_once_warm() {
    let (small, large) = (frames(1, N), frames(1, 10 * N));
    let mut c = Client::new();
    let mut per_read = Vec::new();
    rounds(&small, &large, |wire, n| {
        let (allocs, seen, reads) = c.driver_reads(wire);
        assert_eq!(seen, Seen::expected(n));
        per_read.push((n, wire.len(), reads.reads, reads.full_and_cut, allocs));
        allocs
    });
    println!("(messages, bytes, reads, full reads cut inside a frame, allocations): {per_read:?}");
    for &(n, _, _, full_and_cut, allocs) in &per_read[2..] {
        assert!(full_and_cut > 0, "{per_read:?}");
        assert_eq!(allocs, 0, "{allocs} allocations for {n} messages: {per_read:?}");
    }
}
