//! Allocation counting for the workspace's allocation tests: a global allocator that counts the allocations of
//! the thread that armed it, and the mixed message stream the connection-path tests feed.
//!
//! A test binary installs the allocator itself (a crate cannot do it for the binary that links it):
//!
//! ```
//! use nats_server_harness::alloc::{allocations, CountingAllocator};
//!
//! #[global_allocator]
//! static ALLOCATOR: CountingAllocator = CountingAllocator;
//!
//! fn main() {
//!     let (n, v) = allocations(|| vec![1u8; 64]);
//!     assert_eq!((n, v.len()), (1, 64));
//! }
//! ```
//!
//! Only the armed thread is counted, so tests running on other threads of the harness do not disturb a
//! measurement.

// A `#[global_allocator]` needs an `unsafe impl GlobalAlloc`. The impl only counts and then delegates every
// call, unchanged, to `std::alloc::System`, so the workspace-wide `unsafe_code = "deny"` is lifted for this
// module alone.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use nats_proto::{Headers, WriteBuffer};

/// The system allocator, counting the allocations (and reallocations) of a thread inside [`allocations`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAllocator;

thread_local! {
    /// Whether allocations on this thread are being counted.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// Allocations (and reallocations) counted on this thread.
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator may run while the thread's locals are being torn down.
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is passed on unchanged to `System`, which upholds the `GlobalAlloc` contract.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` and returns how many allocations it made on this thread. Counts nothing unless the test binary
/// installed [`CountingAllocator`] as its global allocator (each binary checks that it counts).
pub fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (COUNT.with(Cell::get), r)
}

/// Panics unless the test binary counts allocations: its first test, so that a binary that forgot to install
/// [`CountingAllocator`] cannot pass by counting nothing.
pub fn assert_counting() {
    let (n, v) = allocations(|| vec![1u8; 64]);
    assert_eq!((n, v.len()), (1, 64), "install CountingAllocator as the #[global_allocator]");
    let (n, _) = allocations(|| Bytes::copy_from_slice(b"x"));
    assert_eq!(n, 1);
}

/// `n` frames for `sid`, cycling through: MSG, MSG with a reply, HMSG, HMSG with a reply; 16-byte payloads.
pub fn message_frames(sid: u64, n: usize) -> Bytes {
    let mut h = Headers::new();
    h.append("Nats-Msg-Id", "a1b2c3").expect("a valid header");
    h.append("Trace", "on").expect("a valid header");
    let h = h.to_block();
    let payload = Bytes::from_static(b"0123456789abcdef");
    let mut w = WriteBuffer::new();
    for i in 0..n {
        let reply = (i % 2 == 1).then_some(&b"_INBOX.abcdef.1234"[..]);
        let headers = (i % 4 >= 2).then(|| h.as_bytes());
        w.push_msg(b"bench.msg", sid, reply, headers, &payload);
    }
    w.take_bytes()
}
