//! The buffer a driver reads into and hands to [`Connection::handle_read`](super::Connection::handle_read): one
//! policy for every driver, so that what the allocation tests count is what the clients do.

use alloc::collections::VecDeque;
use core::ops::{Deref, DerefMut};

use bytes::BytesMut;

/// A read buffer's initial capacity, and what it grows by when nearly full.
pub const READ_BUFFER: usize = 64 * 1024;
/// Room below which a read buffer grows before the next read.
pub const MIN_READ: usize = 4 * 1024;
/// Earlier buffers kept for reuse.
const SPARES: usize = 4;

/// A driver's read buffer (a `BytesMut`, through `Deref`), and a few earlier ones kept for reuse.
///
/// Messages cut from the buffer share its memory, so a buffer whose messages still live cannot be reused; the
/// next read goes into another one. Letting the old one go would free it once its last message is dropped,
/// and the allocator hands memory freed that way back to the system: every new buffer would then be fresh
/// pages, faulted in and zeroed by the kernel, and the consumer's frees would cost cross-CPU TLB flushes. So
/// up to four earlier buffers are kept, and the first of them whose messages are all gone is taken
/// instead of a new one: a steady stream reads into the same few buffers for ever.
///
/// Only buffers of the usual size are kept: one that grew for a frame larger than [`READ_BUFFER`] (the decoder
/// makes room for such a frame itself) goes once its messages do, so a burst of large messages leaves no large
/// buffers behind.
#[derive(Debug)]
pub struct ReadBuffer {
    buf: BytesMut,
    /// Where the memory `make_room` gave `buf` starts and ends: `buf` still points into it unless the decoder
    /// moved it to a larger allocation.
    given: (usize, usize),
    /// Earlier buffers, empty, the oldest first; each reusable once every message cut from it is dropped.
    spares: VecDeque<BytesMut>,
}

impl Default for ReadBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl ReadBuffer {
    /// A fresh read buffer of [`READ_BUFFER`] bytes.
    pub fn new() -> Self {
        let buf = BytesMut::with_capacity(READ_BUFFER);
        Self { given: span(&buf), buf, spares: VecDeque::with_capacity(SPARES) }
    }

    /// Makes room for the next read when fewer than [`MIN_READ`] bytes are free: room for at least
    /// [`MIN_READ`] bytes and for the rest of any frame of up to [`READ_BUFFER`] bytes (the decoder makes room
    /// for a larger one itself), with what is left of a frame moved to the front. The memory is, by preference,
    /// this buffer's own (every message cut from it dropped), then an earlier one's (likewise), and only then
    /// new.
    pub fn make_room(&mut self) {
        let len = self.buf.len();
        if self.buf.capacity() - len >= MIN_READ {
            return;
        }
        let want = READ_BUFFER.max(len + MIN_READ);
        let ours = self.is_given();
        if ours && self.buf.try_reclaim(want - len) {
            return;
        }
        let mut next = match self.spares.iter_mut().position(|s| s.try_reclaim(want)) {
            Some(i) => self.spares.remove(i).unwrap_or_default(),
            None => BytesMut::with_capacity(want),
        };
        next.extend_from_slice(&self.buf);
        self.given = span(&next);
        let mut old = core::mem::replace(&mut self.buf, next);
        if !ours {
            // Grown for a large frame: not kept, nor reused in place.
            return;
        }
        old.clear();
        if self.spares.len() == SPARES {
            // The oldest goes: its messages keep it alive as long as they need it.
            self.spares.pop_front();
        }
        self.spares.push_back(old);
    }

    /// True while the buffer is still in the memory `make_room` gave it (the decoder did not move it to a larger
    /// allocation for a large frame).
    fn is_given(&self) -> bool {
        let at = self.buf.as_ptr() as usize;
        (self.given.0..=self.given.1).contains(&at)
    }
}

/// The addresses `buf`'s memory spans, from its start to the end of its capacity.
fn span(buf: &BytesMut) -> (usize, usize) {
    let at = buf.as_ptr() as usize;
    (at, at + buf.capacity())
}

impl Deref for ReadBuffer {
    type Target = BytesMut;

    fn deref(&self) -> &BytesMut {
        &self.buf
    }
}

impl DerefMut for ReadBuffer {
    fn deref_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;

    #[test]
    fn grows_only_when_nearly_full_and_reuses_a_released_buffer() {
        let mut buf = ReadBuffer::new();
        let base = buf.as_ptr();
        buf.extend_from_slice(&[b'x'; READ_BUFFER - MIN_READ]);
        buf.make_room();
        assert_eq!((buf.as_ptr(), buf.capacity()), (base, READ_BUFFER), "room enough: no change");
        buf.extend_from_slice(b"x");
        // Everything read was cut off the front; while a cut message lives, room means another buffer.
        let held = buf.split().freeze();
        buf.make_room();
        assert_ne!(buf.as_ptr(), base);
        assert!(buf.capacity() >= READ_BUFFER);
        drop(held);
        // Once it is dropped, the same buffer is reused in place.
        let mut buf = ReadBuffer::new();
        let base = buf.as_ptr();
        buf.extend_from_slice(&[b'x'; READ_BUFFER - 1]);
        drop(buf.split().freeze());
        buf.make_room();
        assert_eq!((buf.as_ptr(), buf.capacity()), (base, READ_BUFFER));
    }

    #[test]
    fn an_earlier_buffer_is_reused_once_its_messages_are_gone_and_a_partial_frame_moves_along() {
        let mut buf = ReadBuffer::new();
        let first = buf.as_ptr();
        buf.extend_from_slice(&[b'a'; READ_BUFFER - 2]);
        buf.extend_from_slice(b"pa");
        let held = buf.split_to(READ_BUFFER - 2).freeze();
        buf.make_room();
        let second = buf.as_ptr();
        assert_ne!(second, first);
        assert_eq!(&buf[..], b"pa", "the partial frame moves to the new buffer");
        // The first buffer's message is gone: the next buffer is the first one again.
        drop(held);
        buf.extend_from_slice(&[b'b'; READ_BUFFER - 2]);
        let held = buf.split_to(READ_BUFFER).freeze();
        buf.make_room();
        assert_eq!(buf.as_ptr(), first);
        // Held messages pin their buffers; past the spares, new ones are taken and the oldest are let go.
        let mut pinned = vec![held];
        for _ in 0..SPARES + 2 {
            let room = buf.capacity() - buf.len();
            buf.extend_from_slice(&vec![b'c'; room]);
            pinned.push(buf.split().freeze());
            buf.make_room();
            assert!(pinned.iter().all(|p| p.as_ptr() != buf.as_ptr()));
        }
        assert_eq!(buf.spares.len(), SPARES);
    }

    #[test]
    fn spares_are_reused_whatever_is_left_of_a_frame() {
        let mut buf = ReadBuffer::new();
        let mut seen = std::collections::HashSet::new();
        // Full reads, each ending inside a frame of a different length; each read's messages dropped after
        // the next read (as a consumer a read behind does).
        let mut held = None;
        for left in (1..200).map(|i| (i * 7919) % 3000 + 1) {
            let room = buf.capacity() - buf.len();
            buf.extend_from_slice(&vec![b'e'; room]);
            let whole = buf.len() - left;
            let read = buf.split_to(whole).freeze();
            buf.make_room();
            assert!(buf.capacity() - buf.len() >= MIN_READ && buf.capacity() >= READ_BUFFER);
            assert_eq!(buf.len(), left, "what is left of the frame moved along");
            seen.insert(buf.as_ptr() as usize);
            held = Some(read);
        }
        drop(held);
        assert!(seen.len() <= SPARES + 1, "{} buffers for 200 reads", seen.len());
    }

    #[test]
    fn a_buffer_grown_for_a_large_frame_is_not_kept() {
        let mut buf = ReadBuffer::new();
        buf.extend_from_slice(&[b'a'; 100]);
        // As the decoder does for a frame over READ_BUFFER whose start is held by nobody else.
        buf.reserve(4 * READ_BUFFER);
        let large = buf.as_ptr();
        let room = buf.capacity() - buf.len();
        buf.extend_from_slice(&vec![b'b'; room]);
        let held = buf.split().freeze();
        buf.make_room();
        assert!(buf.spares.is_empty(), "the large buffer went");
        assert_ne!(buf.as_ptr(), large);
        drop(held);
        // The usual one that replaced it is kept and reused like any other.
        let room = buf.capacity() - buf.len();
        buf.extend_from_slice(&vec![b'c'; room]);
        let held = buf.split().freeze();
        buf.make_room();
        assert_eq!(buf.spares.len(), 1);
        drop(held);
        // Nor is a large buffer reused in place once its messages are gone.
        let mut buf = ReadBuffer::new();
        buf.reserve(4 * READ_BUFFER);
        let large = buf.as_ptr();
        let room = buf.capacity() - 10;
        buf.extend_from_slice(&vec![b'd'; room]);
        drop(buf.split_to(room - 10).freeze());
        buf.make_room();
        assert_ne!(buf.as_ptr(), large);
        assert_eq!((&buf[..], buf.capacity() < 2 * READ_BUFFER), (&b"dddddddddd"[..], true));
        assert!(buf.spares.is_empty());
    }
}
