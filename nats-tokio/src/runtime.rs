//! The few things the driver task needs from an async runtime: dial, a socket, a timer, spawn. Everything
//! else (the protocol, the client API, the waiting) is runtime-free.
//!
//! A [`Socket`] works through `&self`, so one socket is shared: the driver task reads and writes it with
//! wakers, and a caller's task may write a small latency-sensitive batch to it directly (non-blocking,
//! [`Socket::try_write_vectored`]) instead of waking the driver.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
pub(crate) use nats_client::seam::Timer;

/// A connected byte stream that the driver owns (a shared socket, or TLS over one).
pub(crate) trait ByteStream: Send + Unpin + 'static {
    // Read through here only by TLS: the driver reads plain sockets with `Socket::poll_read_buf`.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>>;
    /// Sends what the stream holds back (TLS ciphertext). Plain sockets hold nothing.
    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A runtime's TCP socket, used through shared references.
pub(crate) trait Socket: Send + Sync + 'static {
    /// Reads onto the end of `buf` (its spare capacity).
    fn poll_read_buf(&self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>>;
    /// Reads into `buf`.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    /// Writes some of `bufs`, or registers the task for when the socket can take more.
    fn poll_write_vectored(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>>;
    /// Writes what the socket takes now, without a waker (`WouldBlock` when it is full).
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
}

impl<S: Socket> ByteStream for Arc<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        (**self).poll_read(cx, buf)
    }

    fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        (**self).poll_write_vectored(cx, bufs)
    }
}

/// A maker of boxed timers of one runtime.
pub(crate) type Timers = Arc<dyn Fn(Instant) -> Box<dyn Timer> + Send + Sync>;

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Spawns tasks on one runtime, from anywhere.
pub(crate) type Spawner = Arc<dyn Fn(BoxFuture<()>) + Send + Sync>;

/// An async runtime.
pub(crate) trait Runtime: Send + Sync + 'static {
    type Socket: Socket;
    type Timer: Timer;
    fn connect(host_port: String, timeout: Duration) -> BoxFuture<io::Result<Arc<Self::Socket>>>;
    fn timer(deadline: Instant) -> Self::Timer;
    /// Makes this runtime's timers for code outside the driver task, which may run on another executor or
    /// none (a timer of the client's is polled wherever its user polls it).
    fn timers() -> Timers {
        Arc::new(|deadline| Box::new(Self::timer(deadline)))
    }
    fn spawn(task: impl Future<Output = ()> + Send + 'static);
    /// Spawns on this runtime for code outside the driver task (callback subscriptions), which may be called
    /// from another executor's task or from no runtime at all.
    fn spawner() -> Spawner {
        Arc::new(|task| Self::spawn(task))
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connect timed out")
}

/// Tries `op` until it does not say `WouldBlock`, waiting for readiness with `ready` in between. Both runtimes
/// clear a stale readiness when the operation finds nothing to do, so the loop ends.
#[cfg(any(feature = "tokio", feature = "smol"))]
fn poll_io<T>(
    cx: &mut Context<'_>,
    mut ready: impl FnMut(&mut Context<'_>) -> Poll<io::Result<()>>,
    mut op: impl FnMut() -> io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return Poll::Ready(done),
        }
        if let Err(e) = std::task::ready!(ready(cx)) {
            return Poll::Ready(Err(e));
        }
    }
}

/// Reads into `buf`'s spare capacity through a plain `read`: the space is zeroed first (there is no safe
/// way to read into uninitialised memory), at most 16 KiB of it, so a read that finds nothing costs little.
#[cfg(any(feature = "smol", feature = "tls"))]
pub(crate) fn read_into_spare(
    buf: &mut BytesMut,
    read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
) -> io::Result<usize> {
    let start = buf.len();
    let want = (buf.capacity() - start).clamp(1, 16 * 1024);
    buf.resize(start + want, 0);
    let result = read(&mut buf[start..]);
    buf.truncate(start + *result.as_ref().unwrap_or(&0));
    result
}

#[cfg(feature = "tokio")]
pub(crate) mod tokio_rt {
    use super::*;
    use tokio::net::TcpStream;

    /// tokio.
    pub(crate) struct Tokio;

    /// Whether the poller is edge-triggered (epoll, kqueue): there, readiness may be cleared after a read that
    /// did not fill the room. Windows' poller re-arms a socket only after a real `WouldBlock`.
    const EDGE_TRIGGERED: bool = cfg!(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ));

    /// One read. On an edge-triggered poller, a read that does not fill the room has drained the socket: its
    /// readiness is cleared at once, as tokio's own `poll_read` does there (an arrival after the read sets it
    /// again), so the next poll waits for data instead of finding none with one more system call, once per
    /// message in a request/reply exchange.
    fn read_draining(sock: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
        if !EDGE_TRIGGERED {
            return sock.try_read_buf(buf);
        }
        let room = buf.capacity() - buf.len();
        let mut got = 0;
        let read = sock.try_io(tokio::io::Interest::READABLE, || {
            got = sock.try_read_buf(buf)?;
            if got > 0 && got < room {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(got)
            }
        });
        match read {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
            other => other,
        }
    }

    impl Socket for TcpStream {
        fn poll_read_buf(&self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
            // `try_read_buf` reads into the spare capacity as it is: nothing to clear first.
            poll_io(cx, |cx| self.poll_read_ready(cx), || read_draining(self, buf))
        }

        fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            poll_io(cx, |cx| self.poll_read_ready(cx), || self.try_read(buf))
        }

        fn poll_write_vectored(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
            poll_io(cx, |cx| self.poll_write_ready(cx), || self.try_write_vectored(bufs))
        }

        fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            TcpStream::try_write_vectored(self, bufs)
        }
    }

    /// tokio's sleep, movable.
    pub(crate) struct TokioTimer(Pin<Box<tokio::time::Sleep>>);

    impl Timer for TokioTimer {
        fn reset(&mut self, deadline: Instant) {
            self.0.as_mut().reset(deadline.into());
        }

        fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            self.0.as_mut().poll(cx)
        }
    }

    impl Runtime for Tokio {
        type Socket = TcpStream;
        type Timer = TokioTimer;

        fn connect(host_port: String, timeout: Duration) -> BoxFuture<io::Result<Arc<TcpStream>>> {
            Box::pin(async move {
                let stream =
                    tokio::time::timeout(timeout, TcpStream::connect(host_port)).await.map_err(|_| timed_out())??;
                stream.set_nodelay(true)?;
                Ok(Arc::new(stream))
            })
        }

        fn timer(deadline: Instant) -> Self::Timer {
            TokioTimer(Box::pin(tokio::time::sleep_until(deadline.into())))
        }

        /// A tokio timer is made inside the runtime (its time driver): the one connecting now, captured, so
        /// that it can be made and polled from any thread.
        fn timers() -> Timers {
            let handle = tokio::runtime::Handle::current();
            Arc::new(move |deadline| {
                let _inside = handle.enter();
                Box::new(Self::timer(deadline))
            })
        }

        fn spawn(task: impl Future<Output = ()> + Send + 'static) {
            tokio::spawn(task);
        }

        /// `tokio::spawn` needs to be called inside the runtime: the one connecting now is captured instead.
        fn spawner() -> Spawner {
            let handle = tokio::runtime::Handle::current();
            Arc::new(move |task| drop(handle.spawn(task)))
        }
    }
}

#[cfg(feature = "smol")]
pub(crate) mod smol_rt {
    use std::io::{Read, Write};

    use super::*;
    use smol::Async;

    /// smol.
    pub(crate) struct Smol;

    type SmolSocket = Async<std::net::TcpStream>;

    impl Socket for SmolSocket {
        fn poll_read_buf(&self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
            poll_io(cx, |cx| self.poll_readable(cx), || read_into_spare(buf, |b| self.get_ref().read(b)))
        }

        fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            poll_io(cx, |cx| self.poll_readable(cx), || self.get_ref().read(buf))
        }

        fn poll_write_vectored(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
            poll_io(cx, |cx| self.poll_writable(cx), || self.get_ref().write_vectored(bufs))
        }

        fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.get_ref().write_vectored(bufs)
        }
    }

    /// smol's timer, movable.
    pub(crate) struct SmolTimer(smol::Timer);

    impl Timer for SmolTimer {
        fn reset(&mut self, deadline: Instant) {
            self.0.set_at(deadline);
        }

        fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            Pin::new(&mut self.0).poll(cx).map(|_| ())
        }
    }

    impl Runtime for Smol {
        type Socket = SmolSocket;
        type Timer = SmolTimer;

        fn connect(host_port: String, timeout: Duration) -> BoxFuture<io::Result<Arc<SmolSocket>>> {
            Box::pin(async move {
                let connect = async { smol::net::TcpStream::connect(host_port).await.map(Some) };
                let deadline = async {
                    smol::Timer::after(timeout).await;
                    Ok(None)
                };
                let stream = smol::future::or(connect, deadline).await?.ok_or_else(timed_out)?;
                stream.set_nodelay(true)?;
                Ok(Arc::<SmolSocket>::from(stream))
            })
        }

        fn timer(deadline: Instant) -> Self::Timer {
            SmolTimer(smol::Timer::at(deadline))
        }

        fn spawn(task: impl Future<Output = ()> + Send + 'static) {
            smol::spawn(task).detach();
        }
    }
}
