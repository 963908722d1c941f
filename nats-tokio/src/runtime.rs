//! The few things the driver task needs from an async runtime: dial, read, write, a timer, spawn.
//! Everything else (the protocol, the client API, the waiting) is runtime-free.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A connected byte stream.
pub(crate) trait Transport: Send + Unpin + 'static {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>>;
    /// Sends what the stream holds back (TLS ciphertext). Plain sockets hold nothing.
    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A timer that can be moved to a new deadline.
pub(crate) trait Timer: Send + Unpin + 'static {
    fn reset(&mut self, deadline: Instant);
    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// An async runtime.
pub(crate) trait Runtime: Send + Sync + 'static {
    type Stream: Transport;
    type Timer: Timer;
    fn connect(host_port: String, timeout: Duration) -> BoxFuture<io::Result<Self::Stream>>;
    fn timer(deadline: Instant) -> Self::Timer;
    fn boxed_timer(deadline: Instant) -> Box<dyn Timer> {
        Box::new(Self::timer(deadline))
    }
    fn spawn(task: impl Future<Output = ()> + Send + 'static);
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connect timed out")
}

#[cfg(feature = "tokio")]
pub(crate) mod tokio_rt {
    use super::*;
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::TcpStream;

    /// tokio.
    pub(crate) struct Tokio;

    impl Transport for TcpStream {
        fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            let mut buf = ReadBuf::new(buf);
            match Pin::new(self).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        }

        fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
            Pin::new(self).poll_write_vectored(cx, bufs)
        }
    }

    impl Timer for Pin<Box<tokio::time::Sleep>> {
        fn reset(&mut self, deadline: Instant) {
            self.as_mut().reset(deadline.into());
        }

        fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            self.as_mut().poll(cx)
        }
    }

    impl Runtime for Tokio {
        type Stream = TcpStream;
        type Timer = Pin<Box<tokio::time::Sleep>>;

        fn connect(host_port: String, timeout: Duration) -> BoxFuture<io::Result<TcpStream>> {
            Box::pin(async move {
                let stream =
                    tokio::time::timeout(timeout, TcpStream::connect(host_port)).await.map_err(|_| timed_out())??;
                stream.set_nodelay(true)?;
                Ok(stream)
            })
        }

        fn timer(deadline: Instant) -> Self::Timer {
            Box::pin(tokio::time::sleep_until(deadline.into()))
        }

        fn spawn(task: impl Future<Output = ()> + Send + 'static) {
            tokio::spawn(task);
        }
    }
}

#[cfg(feature = "smol")]
pub(crate) mod smol_rt {
    use super::*;
    use smol::io::{AsyncRead, AsyncWrite};
    use smol::net::TcpStream;

    /// smol.
    pub(crate) struct Smol;

    /// smol's stream behind our transport trait.
    pub(crate) struct SmolStream(TcpStream);

    impl Transport for SmolStream {
        fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }

        fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
        }
    }

    impl Timer for smol::Timer {
        fn reset(&mut self, deadline: Instant) {
            self.set_at(deadline);
        }

        fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            Pin::new(self).poll(cx).map(|_| ())
        }
    }

    impl Runtime for Smol {
        type Stream = SmolStream;
        type Timer = smol::Timer;

        fn connect(host_port: String, timeout: Duration) -> BoxFuture<io::Result<SmolStream>> {
            Box::pin(async move {
                let connect = async { TcpStream::connect(host_port).await.map(Some) };
                let deadline = async {
                    smol::Timer::after(timeout).await;
                    Ok(None)
                };
                let stream = smol::future::or(connect, deadline).await?.ok_or_else(timed_out)?;
                stream.set_nodelay(true)?;
                Ok(SmolStream(stream))
            })
        }

        fn timer(deadline: Instant) -> Self::Timer {
            smol::Timer::at(deadline)
        }

        fn spawn(task: impl Future<Output = ()> + Send + 'static) {
            smol::spawn(task).detach();
        }
    }
}
