//! The buffer a driver reads into and hands to [`Connection::handle_read`](super::Connection::handle_read): one
//! policy for every driver, so that what the allocation tests count is what the clients do.

use bytes::BytesMut;

/// A read buffer's initial capacity, and what it grows by when nearly full.
pub const READ_BUFFER: usize = 64 * 1024;
/// Room below which a read buffer grows before the next read.
pub const MIN_READ: usize = 4 * 1024;

/// A fresh read buffer of [`READ_BUFFER`] bytes.
pub fn read_buffer() -> BytesMut {
    BytesMut::with_capacity(READ_BUFFER)
}

/// Makes room for the next read when fewer than [`MIN_READ`] bytes are free. Once every message cut from the
/// buffer is dropped, its allocation is reused in place (no allocation); else a fresh one is taken and the
/// messages still held keep the old one alive.
pub fn make_room(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < MIN_READ {
        buf.reserve(READ_BUFFER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_only_when_nearly_full_and_reuses_a_released_buffer() {
        let mut buf = read_buffer();
        let base = buf.as_ptr();
        buf.extend_from_slice(&[b'x'; READ_BUFFER - MIN_READ]);
        make_room(&mut buf);
        assert_eq!((buf.as_ptr(), buf.capacity()), (base, READ_BUFFER), "room enough: no change");
        buf.extend_from_slice(b"x");
        // Everything read was cut off the front; while a cut message lives, room means a new allocation.
        let held = buf.split().freeze();
        make_room(&mut buf);
        assert_ne!(buf.as_ptr(), base);
        assert!(buf.capacity() >= READ_BUFFER);
        drop(held);
        // Once it is dropped, the next buffer taken that way is reused in place.
        let mut buf = read_buffer();
        let base = buf.as_ptr();
        buf.extend_from_slice(&[b'x'; READ_BUFFER - 1]);
        drop(buf.split().freeze());
        make_room(&mut buf);
        assert_eq!((buf.as_ptr(), buf.capacity()), (base, READ_BUFFER));
    }
}
