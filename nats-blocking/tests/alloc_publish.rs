//! Publishing allocates nothing per message: a borrowed payload is copied once into the write buffer, and
//! the buffer's room is reused from write to write. Counted on the publishing thread, which also writes its
//! own large batches, against a real nats-server.

use nats_blocking::bytes::Bytes;
use nats_server_harness::alloc::{allocations, assert_counting, CountingAllocator};
use nats_server_harness::NatsServer;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Publishes per measured run: enough for dozens of batch writes from the publishing thread.
const N: usize = 100_000;

#[test]
fn publishing_allocates_nothing_per_message() {
    assert_counting();
    let server = NatsServer::start();
    let client = nats_blocking::connect(&server.url()).unwrap();
    let body = [b'x'; 16];
    let shared = Bytes::from_static(&[b'y'; 100]);
    let publish_all = || {
        for i in 0..N {
            if i % 2 == 0 {
                client.publish("alloc.pub", &body[..]).unwrap();
            } else {
                client.publish_with_reply("alloc.pub", "alloc.reply", &shared).unwrap();
            }
        }
    };
    // The first run grows the buffers to their working size; the second must find them ready.
    publish_all();
    client.flush().unwrap();
    let (n, ()) = allocations(publish_all);
    client.flush().unwrap();
    assert!(n <= 16, "{n} allocations for {N} publishes");
    assert_eq!(client.statistics().out_msgs, 2 * N as u64);
}
