//! The whole ingest path of a connection, `Connection::handle_read` into a `Deliver` sink, allocates nothing per
//! message once the read buffer and the sink are warm: not only the decoder (see `alloc.rs`) but the state
//! machine around it (state checks, statistics, the subscription lookup and count) and the hand-off to the sink.
//!
//! A counting global allocator wraps the system one. Only the thread that armed it is counted, so tests running
//! on other threads of the harness do not disturb a measurement.

mod common;

use bytes::Bytes;
use common::{config, sub_op, Peer, URL};
use nats_proto::conn::read_buffer::{ReadBuffer, READ_BUFFER};
use nats_proto::{Deliver, Msg};
use nats_server_harness::alloc::{allocations, assert_counting, message_frames as frames, CountingAllocator};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn the_counter_counts() {
    assert_counting();
}

/// Messages in the smaller batch; the larger one has ten times as many.
const N: usize = 2_000;

/// What a sink received: messages, payload bytes, with a reply, with headers.
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

/// The subscriber's end: checks and tallies each message, and keeps it in a vector with room reserved up front
/// (as the drivers' router queues them for the subscriber) or drops it at once.
struct Sink {
    sid: u64,
    keep: bool,
    held: Vec<Msg>,
    seen: Seen,
}

impl Deliver for Sink {
    fn deliver(&mut self, m: Msg) {
        // Reading a message allocates nothing either (`alloc.rs` covers header blocks).
        assert_eq!((m.sid(), m.subject().as_bytes()), (self.sid, &b"bench.msg"[..]));
        self.seen.msgs += 1;
        self.seen.payload += m.payload().len();
        self.seen.replies += usize::from(m.reply().is_some());
        self.seen.headers += usize::from(m.headers().is_some_and(|h| h.get("Trace") == Some("on")));
        if self.keep {
            self.held.push(m);
        }
    }
}

/// Reads of [`Ingest::driver_reads`]: how many, and how many filled the buffer and ended inside a frame.
#[derive(Debug, Default, Clone, Copy)]
struct Reads {
    reads: usize,
    full_and_cut: usize,
}

/// A connected client with one subscription, the driver's read buffer and a sink.
struct Ingest {
    peer: Peer,
    buf: ReadBuffer,
    sink: Sink,
}

impl Ingest {
    fn new(keep: bool) -> Self {
        let mut peer = Peer::connected(config(&[URL]));
        let sid = peer.conn.subscribe("bench.>", None).unwrap();
        assert_eq!(peer.sent(), vec![sub_op("bench.>", None, sid)]);
        let sink = Sink { sid, keep, held: Vec::with_capacity(10 * N), seen: Seen::default() };
        Self { peer, buf: ReadBuffer::new(), sink }
    }

    /// Feeds `wire` in one read; returns the allocations of the read and its decoding, and what arrived. The
    /// sink holds every message of the batch until the read is done; they are dropped outside the count.
    fn one_read(&mut self, wire: &Bytes) -> (usize, Seen) {
        let now = self.peer.now();
        let in_msgs = self.peer.conn.statistics().in_msgs;
        let Ingest { peer, buf, sink } = self;
        let (n, ()) = allocations(|| {
            buf.extend_from_slice(wire);
            peer.conn.handle_read(now, buf, sink);
        });
        assert_eq!(self.sink.held.len(), if self.sink.keep { self.sink.seen.msgs } else { 0 });
        self.sink.held.clear();
        (n, self.finish(in_msgs))
    }

    /// Feeds `wire` the way the drivers read a busy socket: the buffer is topped up by `ReadBuffer::make_room` when low,
    /// and each read fills all of its free room, so reads end anywhere inside a frame. After each read the
    /// consumer drops what it holds. Everything is counted, the drops too.
    fn driver_reads(&mut self, wire: &Bytes) -> (usize, Seen, Reads) {
        let now = self.peer.now();
        let in_msgs = self.peer.conn.statistics().in_msgs;
        let Ingest { peer, buf, sink } = self;
        let (n, reads) = allocations(|| {
            let mut reads = Reads::default();
            let mut at = 0;
            while at < wire.len() {
                buf.make_room();
                let len = (buf.capacity() - buf.len()).min(wire.len() - at);
                buf.extend_from_slice(&wire[at..at + len]);
                at += len;
                let full = buf.capacity() == buf.len();
                peer.conn.handle_read(now, buf, sink);
                reads.reads += 1;
                reads.full_and_cut += usize::from(full && !buf.is_empty());
                sink.held.clear();
            }
            reads
        });
        (n, self.finish(in_msgs), reads)
    }

    /// Checks the read left nothing behind, raised no event, and the connection counted what it delivered;
    /// returns what the sink saw since the last call.
    fn finish(&mut self, in_msgs_before: u64) -> Seen {
        assert!(self.buf.is_empty(), "{} bytes of a frame left in the read buffer", self.buf.len());
        assert!(self.peer.conn.is_connected());
        let events = self.peer.events();
        assert!(events.is_empty(), "unexpected events: {events:?}");
        let seen = std::mem::take(&mut self.sink.seen);
        assert_eq!(self.peer.conn.statistics().in_msgs - in_msgs_before, seen.msgs as u64);
        seen
    }
}

/// The batch sizes measured, after two warm-up rounds of the large one, three times over.
fn rounds(small: &Bytes, large: &Bytes, mut batch: impl FnMut(&Bytes, usize) -> usize) -> Vec<(usize, usize)> {
    for _ in 0..2 {
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
fn handle_read_into_a_sink_allocates_nothing_per_message() {
    let (small, large) = (frames(1, N), frames(1, 10 * N));
    let mut ingest = Ingest::new(true);
    assert_eq!(ingest.sink.sid, 1);
    // Warm-up: the buffer turns shared (one allocation, once) and grows to hold the large batch.
    let counts = rounds(&small, &large, |wire, n| {
        let (allocs, seen) = ingest.one_read(wire);
        assert_eq!(seen, Seen::expected(n));
        allocs
    });
    println!("allocations per batch, one read (messages, allocations): {counts:?}");
    assert!(counts.iter().all(|&(_, a)| a == counts[0].1), "the count grows with the batch: {counts:?}");
    assert_eq!(counts[0].1, 0, "allocations while delivering {N} messages: {counts:?}");
    assert_eq!(ingest.peer.conn.statistics().in_msgs, (2 * 10 * N + 3 * 11 * N) as u64);
}

#[test]
fn driver_reads_allocate_nothing_when_the_consumer_holds_nothing() {
    let (small, large) = (frames(1, N), frames(1, 10 * N));
    let mut ingest = Ingest::new(false);
    let counts = rounds(&small, &large, |wire, n| {
        let (allocs, seen, reads) = ingest.driver_reads(wire);
        assert_eq!(seen, Seen::expected(n));
        // Reads did end inside frames: `ReadBuffer::make_room` moved the rest of each frame to the front of the
        // same buffer, reclaimed in place because nothing else still pointed into it.
        assert!(reads.full_and_cut > 0, "{reads:?}");
        allocs
    });
    println!("allocations per batch, 64 KiB reads, messages dropped at once (messages, allocations): {counts:?}");
    assert!(counts.iter().all(|&(_, a)| a == 0), "allocations while delivering: {counts:?}");
    assert!(ingest.buf.capacity() <= 2 * READ_BUFFER, "the read buffer grew to {}", ingest.buf.capacity());
}

/// When the messages of a read are still held while that read is decoded (the drivers' router queues them for
/// the subscriber), a read that fills the buffer and ends inside a frame needs the next read to go into another
/// buffer: the `ReadBuffer` takes one of its earlier ones whose messages are gone (the decoder leaves a frame
/// of at most 64 KiB to it rather than `reserve` itself). After the warm-up (the first two rounds, which take the
/// spares), full reads cost no allocation at all, whatever the number of messages in them.
#[test]
fn driver_reads_allocate_nothing_once_warm_when_the_consumer_holds_the_read() {
    let (small, large) = (frames(1, N), frames(1, 10 * N));
    let mut ingest = Ingest::new(true);
    let mut per_read = Vec::new();
    rounds(&small, &large, |wire, n| {
        let (allocs, seen, reads) = ingest.driver_reads(wire);
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
