//! [`FrameEncoder`]: the protocol bytes a driver writes, framed for the server, with as few copies as the
//! masking allows.

use std::io::IoSlice;

use super::frame::{apply_mask, encode_header, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER};

/// Where the mask keys of a masking client come from: one per frame.
pub trait MaskKeys: Send {
    /// The next frame's mask key.
    fn next_key(&mut self) -> [u8; 4];
}

impl<F: FnMut() -> [u8; 4] + Send> MaskKeys for F {
    fn next_key(&mut self) -> [u8; 4] {
        self()
    }
}

/// The payload a masked frame takes at most: the masked copy is made in a buffer of this size, reused.
const MASKED_FRAME: usize = 64 * 1024;

/// The frame being written.
#[derive(Debug)]
enum Current {
    /// Between frames: control frames may go.
    Idle,
    /// An unmasked frame: its header (sent from `sent` on), then `left` payload bytes taken straight from the
    /// caller's slices.
    Open { header: [u8; MAX_HEADER], len: u8, sent: u8, left: usize },
    /// A masked frame, header and masked copy of the payload in `sealed`, sent up to `sent`; the payload
    /// starts at `at`.
    Sealed { sent: usize, at: usize },
}

/// Frames the bytes a driver writes, sans-IO: [`prepare`](Self::prepare) lays out the slices to write next,
/// and [`advance`](Self::advance) is told how many the socket took and answers how many of the caller's own
/// bytes that finished.
///
/// Unmasked (the server agreed to `Nats-No-Masking`), nothing is copied: a frame is a header of its own
/// around the caller's slices as they are, one frame for all the slices offered (a whole batch). Masked,
/// each frame's payload is copied and masked in a buffer of the encoder's, up to 64 KiB a frame: the copy the
/// mask forces, and no other.
///
/// The caller offers the bytes it has not been told are done, in order, every time: a frame once started is
/// finished from them. Control frames (pongs, the closing frame) go out between data frames.
pub struct FrameEncoder {
    keys: Option<Box<dyn MaskKeys>>,
    current: Current,
    /// Whole control frames waiting, sent from `control_sent` on.
    control: Vec<u8>,
    control_sent: usize,
    /// The last `prepare` put control bytes first.
    control_offered: bool,
    sealed: Vec<u8>,
    /// A close frame is queued: no data frame follows it.
    closing: bool,
}

impl std::fmt::Debug for FrameEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameEncoder")
            .field("masked", &self.keys.is_some())
            .field("current", &self.current)
            .field("control", &(self.control.len() - self.control_sent))
            .finish_non_exhaustive()
    }
}

impl FrameEncoder {
    /// An encoder that masks every frame with keys from `keys`, as RFC 6455 asks of clients.
    pub fn masked(keys: impl MaskKeys + 'static) -> Self {
        Self::new(Some(Box::new(keys)))
    }

    /// An encoder that sends frames unmasked: only once the server agreed (`Nats-No-Masking: true`).
    pub fn unmasked() -> Self {
        Self::new(None)
    }

    fn new(keys: Option<Box<dyn MaskKeys>>) -> Self {
        Self {
            keys,
            current: Current::Idle,
            control: Vec::new(),
            control_sent: 0,
            control_offered: false,
            sealed: Vec::new(),
            closing: false,
        }
    }

    /// True when frames are masked.
    pub fn is_masked(&self) -> bool {
        self.keys.is_some()
    }

    /// True while control frames wait to be written.
    pub fn has_control(&self) -> bool {
        self.control_sent < self.control.len()
    }

    /// True while a data frame is half written: the caller must offer the rest of its bytes.
    pub fn in_frame(&self) -> bool {
        !matches!(self.current, Current::Idle)
    }

    /// Queues a pong answering a ping's `payload` (at most 125 bytes; more is cut).
    pub fn queue_pong(&mut self, payload: &[u8]) {
        self.queue_control(OpCode::Pong, payload);
    }

    /// Queues the closing frame: `code` (1000 for a normal close) and `reason`. Nothing is framed after it.
    pub fn queue_close(&mut self, code: u16, reason: &str) {
        if self.closing {
            return;
        }
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        self.queue_control(OpCode::Close, &payload);
        self.closing = true;
    }

    fn queue_control(&mut self, opcode: OpCode, payload: &[u8]) {
        if self.closing {
            return;
        }
        let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
        if self.control_sent == self.control.len() {
            self.control.clear();
            self.control_sent = 0;
        }
        let key = self.keys.as_mut().map(|k| k.next_key());
        let mut header = [0u8; MAX_HEADER];
        let n = encode_header(&mut header, opcode, true, payload.len() as u64, key);
        self.control.extend_from_slice(&header[..n]);
        let at = self.control.len();
        self.control.extend_from_slice(payload);
        if let Some(key) = key {
            apply_mask(key, 0, &mut self.control[at..]);
        }
    }

    /// Fills `out` with the slices to write next and returns how many: waiting control frames (between data
    /// frames), then a data frame around `payload` (the bytes not yet reported done, in order). Nothing when
    /// there is nothing to write. `out` should have room for a few slices more than `payload` has.
    pub fn prepare<'a>(&'a mut self, payload: &'a [IoSlice<'a>], out: &mut [IoSlice<'a>]) -> usize {
        let total: usize = payload.iter().map(|s| s.len()).sum();
        if matches!(self.current, Current::Idle) && total > 0 && !self.closing {
            self.start_frame(payload, total);
        }
        let mut k = 0;
        self.control_offered = false;
        if self.nothing_sent_of_current() && self.has_control() && !out.is_empty() {
            out[k] = IoSlice::new(&self.control[self.control_sent..]);
            k += 1;
            self.control_offered = true;
        }
        match &self.current {
            Current::Idle => {}
            Current::Open { header, len, sent, left } => {
                if sent < len && k < out.len() {
                    out[k] = IoSlice::new(&header[usize::from(*sent)..usize::from(*len)]);
                    k += 1;
                }
                let mut left = *left;
                for slice in payload {
                    if left == 0 || k == out.len() {
                        break;
                    }
                    let take = slice.len().min(left);
                    out[k] = IoSlice::new(&slice[..take]);
                    k += 1;
                    left -= take;
                }
            }
            Current::Sealed { sent, .. } => {
                if k < out.len() {
                    out[k] = IoSlice::new(&self.sealed[*sent..]);
                    k += 1;
                }
            }
        }
        k
    }

    /// True between frames, and when the frame in hand has not begun to go out: control frames may go first.
    fn nothing_sent_of_current(&self) -> bool {
        match self.current {
            Current::Open { sent, .. } => sent == 0,
            Current::Sealed { sent, .. } => sent == 0,
            Current::Idle => true,
        }
    }

    fn start_frame(&mut self, payload: &[IoSlice<'_>], total: usize) {
        match self.keys.as_mut() {
            None => {
                let mut header = [0u8; MAX_HEADER];
                let len = encode_header(&mut header, OpCode::Binary, true, total as u64, None) as u8;
                self.current = Current::Open { header, len, sent: 0, left: total };
            }
            Some(keys) => {
                let key = keys.next_key();
                let take = total.min(MASKED_FRAME);
                let mut header = [0u8; MAX_HEADER];
                let at = encode_header(&mut header, OpCode::Binary, true, take as u64, Some(key));
                self.sealed.clear();
                self.sealed.extend_from_slice(&header[..at]);
                let mut want = take;
                for slice in payload {
                    let piece = &slice[..slice.len().min(want)];
                    self.sealed.extend_from_slice(piece);
                    want -= piece.len();
                    if want == 0 {
                        break;
                    }
                }
                apply_mask(key, 0, &mut self.sealed[at..]);
                self.current = Current::Sealed { sent: 0, at };
            }
        }
    }

    /// `n` bytes of the slices the last [`prepare`](Self::prepare) laid out were written. Returns how many of
    /// them were the caller's payload: the caller's bytes are done up to there.
    pub fn advance(&mut self, mut n: usize) -> usize {
        if self.control_offered {
            let c = n.min(self.control.len() - self.control_sent);
            self.control_sent += c;
            n -= c;
            if self.control_sent == self.control.len() {
                self.control.clear();
                self.control_sent = 0;
                self.control_offered = false;
            } else {
                // Only part of the control frames went: nothing after them did.
                return 0;
            }
        }
        let mut done = 0;
        match &mut self.current {
            Current::Idle => {}
            Current::Open { len, sent, left, .. } => {
                let h = n.min(usize::from(*len - *sent));
                *sent += h as u8;
                n -= h;
                let p = n.min(*left);
                *left -= p;
                done = p;
                if *sent == *len && *left == 0 {
                    self.current = Current::Idle;
                }
            }
            Current::Sealed { sent, at } => {
                let before = sent.saturating_sub(*at);
                *sent = (*sent + n).min(self.sealed.len());
                done = sent.saturating_sub(*at) - before;
                if *sent == self.sealed.len() {
                    self.current = Current::Idle;
                }
            }
        }
        done
    }
}
