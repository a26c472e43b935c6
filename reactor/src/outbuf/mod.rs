//! A connection's output queue: chunks waiting for the kernel, flushed with gather writes.
//!
//! ```text
//!   offset
//!   v
//! [ ####......... ] [ shared chunk ] [ owned chunk ]   -> one sendmsg, many iovecs
//!   ^^^^ already sent
//! ```
//!
//! A short write only moves `offset` forward: the unsent tail is never copied again (S3).
//! Small writes made during one loop turn are appended to the last owned chunk, so a handler
//! that writes a header and a body separately still sends one iovec (S15). Shared chunks are
//! reference counted, so one broadcast buffer sits in many queues without a copy (S16). An
//! empty queue holds no allocation at all (S25).
//!
//! Descriptors queued with bytes (S29) are kept beside the chunks, each batch at the position
//! of its first byte in the queue. A gather write never crosses a batch's position: the write
//! that starts there carries the batch (and is sent as one `sendmsg` with `SCM_RIGHTS`), the
//! one before stops short of it. The batch leaves the queue as soon as a write carrying it
//! took a byte, so a short write never sends it twice.
//!
//! # Implementation notes
//! A queue is in one of three states ([`OutQueue`]): empty; a range of the reactor's turn
//! buffer ([`Spare`], `spare.rs`), where this turn's first small write to a connection with
//! nothing queued is appended; or a queue of its own. The range is the common case of a
//! request/reply exchange: one reply per turn, all of it taken by the end-of-turn flush, so
//! the queue is empty again without a queue ever being made. Anything else moves the range
//! into a queue of its own (a copy of a few bytes): a second write once another connection's
//! bytes follow the range, a chunk, descriptors, a short write, or a range the turn's flush
//! did not send (see `Net::settle_turn_output`). A queue that empties goes back to the
//! reactor's bounded stock, and the next queue that fills takes it from there: steady traffic
//! allocates nothing, while an idle connection still owns nothing.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use timers::Tick;

mod flush;
mod spare;

pub(crate) use flush::Flushed;
pub(crate) use spare::Spare;

/// A reference-counted, immutable byte buffer that can be queued on many connections at once
/// without copying (S16).
///
/// ```
/// use evdrive_reactor::Shared;
/// let line = Shared::from(&b"hello everyone\n"[..]);
/// let again = line.clone(); // a reference count, not a copy
/// assert_eq!(&line[..], &again[..]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shared(Rc<[u8]>);

impl Shared {
    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Deref for Shared {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Shared {
    fn from(v: Vec<u8>) -> Self {
        Shared(v.into())
    }
}

impl From<&[u8]> for Shared {
    fn from(v: &[u8]) -> Self {
        Shared(v.into())
    }
}

/// One queued piece of output.
#[derive(Debug)]
enum Chunk {
    Owned(Vec<u8>),
    Shared(Shared),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(s) => s,
        }
    }
}

/// Below this size a write is appended to the previous owned chunk instead of queued as a
/// chunk of its own: copying a few bytes is cheaper than another iovec and allocation.
const COALESCE_BELOW: usize = 4096;

/// How many iovecs one flush hands to one `sendmsg`: far below `IOV_MAX`, so the array fits on
/// the stack; a longer queue is flushed by further calls in the same flush.
const IOV_BATCH: usize = 64;

/// The output queue of one connection: 16 bytes and no allocation while empty (S25).
#[derive(Debug, Default)]
pub(crate) enum OutQueue {
    /// Nothing queued.
    #[default]
    Empty,
    /// This turn's bytes, `len` (never 0) from `start` in the reactor's turn buffer. They
    /// were queued at the turn's tick, so that is the queue's progress tick. (A start and a
    /// length, not two ends: their sum cannot overflow, so taking the slice checks one bound.)
    Turn { start: u32, len: u32 },
    /// A queue of its own, boxed so that the connection slot stays small.
    Queued(Box<Queued>),
}

/// What is queued, when it is more than a range of the turn buffer.
#[derive(Debug)]
pub(crate) struct Queued {
    /// The first chunk, kept inline so the common case (one chunk per turn) needs no deque
    /// allocation; it may be partly sent.
    head: Chunk,
    /// Chunks after the first, in order.
    rest: VecDeque<Chunk>,
    /// Bytes of `head` already accepted by the kernel.
    offset: usize,
    /// Bytes queued and not yet sent, over all chunks.
    len: usize,
    /// The tick the queue last made progress (or became non-empty): the write-stall clock.
    progress: Tick,
    /// Bytes sent since the queue was made: the position of `head[offset]`.
    sent: u64,
    /// Descriptors to send, each batch with the position of the byte it goes with, in order.
    fds: VecDeque<(u64, Vec<OwnedFd>)>,
}

impl OutQueue {
    /// Bytes waiting to be sent.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            OutQueue::Empty => 0,
            OutQueue::Turn { len, .. } => *len as usize,
            OutQueue::Queued(q) => q.len,
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, OutQueue::Empty)
    }

    /// The tick the queue last made progress (or became non-empty); `None` when empty. `now`
    /// is the current turn's tick: bytes in the turn buffer were queued at it.
    pub(crate) fn progress(&self, now: Tick) -> Option<Tick> {
        match self {
            OutQueue::Empty => None,
            OutQueue::Turn { .. } => Some(now),
            OutQueue::Queued(q) => Some(q.progress),
        }
    }

    /// Moves bytes held in the turn buffer into a queue of their own, before the turn buffer
    /// is cleared or when more than one range can hold. `now` is the turn's tick, at which
    /// they were queued.
    #[cold]
    pub(crate) fn settle(&mut self, spare: &mut Spare, now: Tick) {
        if let OutQueue::Turn { start, len } = *self {
            let start = start as usize;
            *self = OutQueue::Queued(spare.take_range(start, start + len as usize, now));
        }
    }

    /// The queue of its own, after moving a range of the turn buffer into one; `None` if
    /// empty.
    fn queued(&mut self, spare: &mut Spare, now: Tick) -> Option<&mut Queued> {
        self.settle(spare, now);
        match self {
            OutQueue::Queued(q) => Some(q),
            _ => None,
        }
    }

    /// Queues `chunk`, appending small owned bytes to the last owned chunk instead.
    fn push(&mut self, chunk: Chunk, spare: &mut Spare, now: Tick) {
        let add = chunk.bytes().len();
        if add == 0 {
            return;
        }
        let Some(q) = self.queued(spare, now) else {
            *self = OutQueue::Queued(spare.stock.take(chunk, now));
            return;
        };
        q.len += add;
        let last = q.rest.back_mut().unwrap_or(&mut q.head);
        if let (Chunk::Owned(last), Chunk::Owned(new)) = (last, &chunk) {
            if new.len() < COALESCE_BELOW || last.capacity() - last.len() >= new.len() {
                last.extend_from_slice(new);
                return;
            }
        }
        q.rest.push_back(chunk);
    }

    /// Makes an empty queue this turn's range of `len` bytes (not 0) from `start` in the turn
    /// buffer (claimed with `TurnBuf::claim`).
    #[inline(always)]
    pub(crate) fn start_turn(&mut self, start: usize, len: usize) {
        debug_assert!(len != 0);
        // Empty here: a swap, not an assignment, which would call the drop of the old value.
        let old = std::mem::replace(
            self,
            OutQueue::Turn {
                start: start as u32,
                len: len as u32,
            },
        );
        debug_assert!(old.is_empty());
        std::mem::forget(old);
    }

    /// Queues a copy of `data`; returns the bytes now queued. Every small write that is not
    /// the common case of `Net::queue_small` passes here: inlined into the caller, where each
    /// way through it knows the length it leaves.
    ///
    /// The first write of a turn to an empty queue is appended to the turn buffer, and so are
    /// further writes while this queue's range is the last one in it; the rest goes to a
    /// queue of its own.
    #[inline(always)]
    pub(crate) fn push_slice(&mut self, data: &[u8], spare: &mut Spare, now: Tick) -> usize {
        match self {
            // An empty write makes no range; the room test is the one the append repeats,
            // so it is made once.
            OutQueue::Empty if !data.is_empty() && data.len() <= spare.turn_room() => {
                let start = spare.turn.append(data) as u32;
                let len = data.len() as u32;
                // Empty here: a swap, not an assignment, which would call the drop of the old
                // value; forgetting an empty queue leaks nothing.
                let old = std::mem::replace(self, OutQueue::Turn { start, len });
                debug_assert!(old.is_empty());
                std::mem::forget(old);
                return data.len();
            }
            OutQueue::Turn { start, len }
                if (*start + *len) as usize == spare.turn.len()
                    && data.len() <= spare.turn_room() =>
            {
                spare.turn.append(data);
                *len += data.len() as u32;
                return *len as usize;
            }
            OutQueue::Queued(q) => {
                let last = q.rest.back_mut().unwrap_or(&mut q.head);
                if let Chunk::Owned(last) = last {
                    if data.len() < COALESCE_BELOW || last.capacity() - last.len() >= data.len() {
                        last.extend_from_slice(data);
                        q.len += data.len();
                        return q.len;
                    }
                }
            }
            _ => {}
        }
        self.push_slice_slow(data, spare, now)
    }

    /// [`push_slice`](Self::push_slice) when the bytes go to a queue of their own (or the
    /// turn buffer is not allocated yet).
    #[inline(never)]
    fn push_slice_slow(&mut self, data: &[u8], spare: &mut Spare, now: Tick) -> usize {
        if data.is_empty() {
            return self.len();
        }
        if self.is_empty() && spare.turn.capacity() == 0 {
            // The reactor's first write: the turn buffer is made, once.
            spare.allocate_turn();
            if data.len() <= spare.turn_room() {
                spare.turn.append(data);
                *self = OutQueue::Turn {
                    start: 0,
                    len: data.len() as u32,
                };
                return data.len();
            }
        }
        self.push_copy(data, spare, now)
    }

    /// Queues a copy of `data` in a queue of its own, never in the turn buffer: for the part
    /// of a large write the kernel did not take at once, which a flush at the end of the turn
    /// would most likely not send either. Returns the bytes now queued.
    pub(crate) fn push_copy(&mut self, data: &[u8], spare: &mut Spare, now: Tick) -> usize {
        if !data.is_empty() {
            self.copy_into_queue(data, spare, now);
        }
        self.len()
    }

    /// [`push_copy`](Self::push_copy) of bytes that are not empty.
    fn copy_into_queue(&mut self, data: &[u8], spare: &mut Spare, now: Tick) {
        match self.queued(spare, now) {
            None => *self = OutQueue::Queued(spare.stock.take_copy(data, now)),
            Some(q) => {
                let last = q.rest.back_mut().unwrap_or(&mut q.head);
                if let Chunk::Owned(last) = last {
                    if data.len() < COALESCE_BELOW || last.capacity() - last.len() >= data.len() {
                        last.extend_from_slice(data);
                        q.len += data.len();
                        return;
                    }
                }
                self.push(Chunk::Owned(data.to_vec()), spare, now);
            }
        }
    }

    /// Queues an owned buffer without copying it; returns the bytes now queued.
    pub(crate) fn push_vec(&mut self, data: Vec<u8>, spare: &mut Spare, now: Tick) -> usize {
        self.push(Chunk::Owned(data), spare, now);
        self.len()
    }

    /// Queues `data` with descriptors that go with its first byte (S29); returns the bytes
    /// now queued. `data` must not be empty: descriptors travel with a byte.
    pub(crate) fn push_with_fds(
        &mut self,
        data: Vec<u8>,
        fds: Vec<OwnedFd>,
        spare: &mut Spare,
        now: Tick,
    ) -> usize {
        debug_assert!(!data.is_empty());
        let at = match self.queued(spare, now) {
            Some(q) => q.sent + q.len as u64,
            None => 0,
        };
        self.push(Chunk::Owned(data), spare, now);
        if let OutQueue::Queued(q) = self {
            if !fds.is_empty() {
                q.fds.push_back((at, fds));
            }
        }
        self.len()
    }

    /// Descriptors queued and not yet sent.
    #[cfg(test)]
    pub(crate) fn fds_queued(&self) -> usize {
        match self {
            OutQueue::Queued(q) => q.fds.iter().map(|(_, f)| f.len()).sum(),
            _ => 0,
        }
    }

    /// Queues a shared buffer without copying it; returns the bytes now queued.
    pub(crate) fn push_shared(&mut self, data: Shared, spare: &mut Spare, now: Tick) -> usize {
        self.push(Chunk::Shared(data), spare, now);
        self.len()
    }

    /// Drops everything queued and frees the queue's memory.
    pub(crate) fn clear(&mut self) {
        *self = OutQueue::Empty;
    }
}

#[cfg(test)]
mod tests;
