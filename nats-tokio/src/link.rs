//! The callers' side of the write turn: what the shared state holds of the driver (its socket handle and its
//! state behind the lock), the write policy a command's bytes follow (`Driver::send`), and a caller's own
//! non-blocking write, outside the lock, when no batch of the driver task's is in progress.

use std::future::poll_fn;
use std::io::IoSlice;
use std::sync::{Arc, MutexGuard};
use std::task::{Poll, Waker};

use bytes::Buf;
use nats_client::shared::{Locked, Shared as SharedState, Urgency, DIRECT_WRITE};
use nats_proto::Instant;

use crate::runtime::Socket;

/// What the shared state holds of the driver's socket: a handle for callers' direct writes, when the
/// socket is a plain one.
pub(crate) struct Link(pub(crate) Option<Arc<dyn DirectWrite>>);

/// A socket a caller may write to without the driver.
pub(crate) trait DirectWrite: Send + Sync {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize>;
}

impl<S: Socket> DirectWrite for S {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        Socket::try_write_vectored(self, bufs)
    }
}

/// The shared state, with the driver's socket handle as the transport.
pub(crate) type Shared = SharedState<Link>;
pub(crate) type Guard<'a> = MutexGuard<'a, Locked<Link>>;

/// Writes a caller holding the turn makes, at most, for bytes others wait on that came during its own.
const URGENT_ROUNDS: usize = 4;

/// This driver's state behind the connection's lock: the write turn as a caller holds it, the task's waker and
/// timer, and the publishers waiting for room.
#[derive(Debug, Default)]
pub(crate) struct DriverState {
    /// The write in progress is a caller's, outside the lock: the driver leaves the turn alone until the
    /// caller gives it back.
    pub(crate) caller_writing: bool,
    /// The driver waits for a caller to give the turn back (`caller_write_done`): the caller wakes it then.
    pub(crate) driver_waits_turn: bool,
    /// The driver lets a small batch gather: a publish need not wake it.
    pub(crate) holding: bool,
    /// The driver task, while it waits.
    pub(crate) task_waker: Option<Waker>,
    /// When the driver's timer fires: a command that adds an earlier deadline must wake it.
    pub(crate) timer_at: Option<Instant>,
    /// Publishers waiting for room.
    pub(crate) space_wakers: Vec<Waker>,
}

impl DriverState {
    /// Registers a publisher's task to be woken when there is room again (once per task).
    pub(crate) fn wait_for_room(&mut self, waker: &Waker) {
        if !self.space_wakers.iter().any(|w| w.will_wake(waker)) {
            self.space_wakers.push(waker.clone());
        }
    }
}

impl nats_client::shared::Driver for Link {
    type State = DriverState;
    /// The task waits on its waker, kept in the state.
    type Signals = ();

    fn wake(_shared: &Shared, core: &mut Locked<Link>) {
        if let Some(waker) = core.driver().task_waker.take() {
            waker.wake();
        }
    }

    fn space_freed(_shared: &Shared, core: &mut Locked<Link>) {
        for waker in core.driver().space_wakers.drain(..) {
            waker.wake();
        }
    }

    /// Inlined for its fast path, which is most publishes in a flow: a small batch while the driver lets
    /// publishes gather or writes a batch, or while it is awake anyway, leaves everything as it is.
    #[inline(always)]
    fn send<'a>(shared: &'a Shared, core: Guard<'a>, urgency: Urgency) -> Guard<'a> {
        let state = core.driver_ref();
        if urgency == Urgency::Batch
            && core.conn().transmit_len() < DIRECT_WRITE
            && (state.holding || core.is_writing() || state.task_waker.is_none())
            && !core.is_closed()
        {
            return core;
        }
        send_slow(shared, core, urgency)
    }
}

/// [`Link::send`] when it has something to do: a write of the caller's own, or a wake of the driver.
#[inline(never)]
fn send_slow<'a>(shared: &'a Shared, mut core: Guard<'a>, urgency: Urgency) -> Guard<'a> {
    let unwritten = core.conn().transmit_len();
    let direct_now = urgency == Urgency::Now || unwritten >= DIRECT_WRITE;
    if direct_now && unwritten > 0 && !core.is_writing() && !core.is_closed() {
        if let Some(sock) = core.transport().and_then(|l| l.0.clone()) {
            core = write_direct(shared, core, &sock, urgency == Urgency::Batch);
        }
    }
    // The driver has bytes to write (unless it lets a small batch gather, see `poll_step`), or a deadline
    // earlier than its timer (a request's, a flush's: only commands someone waits on set one, so a publish
    // need not look).
    let earlier = urgency == Urgency::Now
        && core.conn().poll_timeout().is_some_and(|d| core.driver().timer_at.is_none_or(|t| d < t));
    if urgency == Urgency::Now && core.conn().transmit_len() > 0 {
        core.set_urgent();
    }
    // While the driver has a batch in hand it waits for the socket, not for publishes: it takes what
    // waits here as soon as that batch is out.
    let to_write =
        core.conn().transmit_len() > 0 && !core.is_writing() && (!core.driver().holding || urgency == Urgency::Now);
    if to_write || core.is_closed() || earlier {
        if let Some(waker) = core.driver().task_waker.take() {
            waker.wake();
        }
    }
    core
}

/// Waits until no caller is writing to the socket: a caller's write is non-blocking, so the wait is short, and
/// the caller wakes the task when it gives the turn back.
pub(crate) async fn caller_write_done(shared: &Shared) {
    poll_fn(|cx| {
        let mut core = shared.lock();
        if core.driver().caller_writing && core.transport().is_some() {
            core.driver().driver_waits_turn = true;
            core.driver().task_waker = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
}

/// Writes what the core has to send from the calling task, as far as the socket takes it now, outside the lock
/// (holding the write turn: `DriverState::caller_writing`); the rest is handed to the driver (in `Locked::spare`, with
/// the turn). Bytes someone waits for that came during the write go out in the same turn, from this task (a
/// few rounds at most, then the driver takes over). `batch`: a publisher writing its own batch, counted in
/// `Shared::own_writes` so that the driver leaves the flow alone.
fn write_direct<'a>(shared: &'a Shared, mut core: Guard<'a>, sock: &Arc<dyn DirectWrite>, batch: bool) -> Guard<'a> {
    core.set_writing(true);
    core.driver().caller_writing = true;
    if batch {
        shared.count_own_write();
    }
    for _ in 0..URGENT_ROUNDS {
        let mut wire = std::mem::take(core.spare_mut());
        shared.take_unwritten(&mut core, &mut wire);
        drop(core);
        while wire.has_remaining() {
            let mut iov = [IoSlice::new(&[]); 64];
            let n = wire.chunks_vectored(&mut iov);
            match sock.try_write_vectored(&iov[..n]) {
                Ok(written) if written > 0 => wire.advance(written),
                // Full, or failed: the driver carries on (and meets the failure itself).
                _ => break,
            }
        }
        core = shared.lock();
        let current = core.transport().and_then(|l| l.0.as_ref()).is_some_and(|s| Arc::ptr_eq(s, sock));
        if !current {
            // The connection was lost meanwhile (its bytes with it), and the turn with it: a later connection's
            // turn is not ours to give back.
            return core;
        }
        *core.spare_mut() = wire;
        if core.spare().has_remaining() || !core.urgent_left() {
            break;
        }
    }
    core.driver().caller_writing = false;
    let left = core.spare().has_remaining();
    core.set_writing(left);
    let waited = std::mem::take(&mut core.driver().driver_waits_turn);
    if core.is_writing() || core.is_closed() || waited || core.conn().transmit_len() > 0 {
        // The socket is full (the driver carries on with what it did not take), the driver waits for the turn,
        // or bytes came during this write (the driver sends them, or lets them gather if it holds a batch).
        // Nothing else: a driver that only read meanwhile has nothing to do, and waking it would cost a
        // wake-up of the runtime a request (seen on one CPU: an eventfd write and an empty poll per request).
        if let Some(waker) = core.driver().task_waker.take() {
            waker.wake();
        }
    }
    core
}
