//! The reactor's output storage shared by its connections: the turn buffer that this turn's
//! first small writes are appended to, and the stock of emptied queues.
//!
//! # Implementation notes
//! Most connections are given one small reply per turn, and the end-of-turn flush sends all
//! of it. Such a reply is appended to one per-reactor buffer, and the connection's queue only
//! records where (`OutQueue::Turn`): no queue is taken from the stock and none is given back.
//! The buffer is cleared when the turn ends; whatever a range still holds then (a short
//! write, a connection not flushed) has been moved into a queue of its own before. It is
//! allocated once, at the first write, and never grows: a write that does not fit takes a
//! queue from the stock instead, so the buffer keeps `TURN_CAPACITY` bytes at most.
//!
//! A queue that empties hands its box, and the buffer of its first chunk, to the stock
//! instead of freeing them, and the next queue that fills takes them back. The stock is small
//! and bounded (`SPARE_QUEUES` boxes, none keeping more than `SPARE_CAPACITY` bytes).

use std::collections::VecDeque;

use timers::Tick;

use super::{Chunk, Queued, COALESCE_BELOW, IOV_BATCH};

/// How many emptied queues the reactor keeps for reuse: enough for every connection served in
/// one busy turn of a few hundred, small enough to be negligible beside them.
pub(super) const SPARE_QUEUES: usize = 256;

/// The largest chunk buffer kept in the stock: a queue that grew a larger one frees it.
pub(super) const SPARE_CAPACITY: usize = 2 * COALESCE_BELOW;

/// The turn buffer's size: a turn's replies to a few hundred connections (ping-pong of 50
/// connections uses about 3 KiB, 16-deep pipelining about 30 KiB). Writes beyond it in one turn
/// take queues from the stock, as all writes would without the turn buffer.
pub(super) const TURN_CAPACITY: usize = 64 * 1024;

/// The reactor's turn buffer and its stock of emptied queues, so steady traffic allocates
/// nothing (S25 still holds: only the reactor owns them).
#[derive(Debug, Default)]
pub(crate) struct Spare {
    /// This turn's small writes to connections that had nothing queued, each connection's at
    /// the range its `OutQueue::Turn` records.
    pub(crate) turn: TurnBuf,
    /// Emptied queues for reuse.
    pub(super) stock: Stock,
}

/// The turn buffer: `TURN_CAPACITY` bytes allocated at the reactor's first write (none
/// before), of which the first `len` hold this turn's ranges.
///
/// A fixed block and a length of its own rather than a `Vec` that is only appended to while
/// the bytes fit: the length is advanced before the bytes are copied, so the copy is the last
/// thing an append does, and the write that made it keeps nothing across the call to
/// `memcpy` (every small write's path).
#[derive(Debug, Default)]
pub(crate) struct TurnBuf {
    bytes: Box<[u8]>,
    len: usize,
}

impl TurnBuf {
    /// The bytes in use.
    #[inline(always)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The buffer's size: 0 before its first use, then `TURN_CAPACITY` for good.
    #[inline(always)]
    pub(super) fn capacity(&self) -> usize {
        self.bytes.len()
    }

    /// Appends `data`, which must fit (see `Spare::turn_room`); returns where it starts.
    #[inline(always)]
    pub(super) fn append(&mut self, data: &[u8]) -> usize {
        let start = self.len;
        let end = start + data.len();
        self.len = end;
        self.bytes[start..end].copy_from_slice(data);
        start
    }

    /// Takes the next `n` bytes for a range, if they fit: where they start, and the bytes to
    /// fill (last, so the caller keeps nothing across the copy).
    #[inline(always)]
    pub(crate) fn claim(&mut self, n: usize) -> Option<(usize, &mut [u8])> {
        let start = self.len;
        let bytes = self.bytes.get_mut(start..start.checked_add(n)?)?;
        self.len = start + n;
        Some((start, bytes))
    }

    /// The range `start..end` of the bytes in use.
    #[inline(always)]
    pub(super) fn range(&self, start: usize, end: usize) -> &[u8] {
        debug_assert!(end <= self.len);
        &self.bytes[start..end]
    }
}

/// Emptied queues kept for reuse, at most `SPARE_QUEUES`.
#[derive(Debug, Default)]
pub(super) struct Stock {
    // Boxes, not values: a connection's queue is a box, and moving it in and out of the stock
    // is what saves the allocation.
    #[allow(clippy::vec_box)]
    pub(super) queues: Vec<Box<Queued>>,
}

impl Spare {
    /// Whether some range may still point into the turn buffer.
    #[inline]
    pub(crate) fn turn_in_use(&self) -> bool {
        self.turn.len != 0
    }

    /// Forgets the turn buffer's bytes. Every range into it must have been flushed or moved
    /// into a queue first (`OutQueue::settle`), except those of dead connections, whose
    /// queues are only ever measured, never sent.
    #[inline]
    pub(crate) fn end_turn(&mut self) {
        self.turn.len = 0;
    }

    /// Room left in the turn buffer (none before its first use).
    #[inline(always)]
    pub(super) fn turn_room(&self) -> usize {
        self.turn.bytes.len() - self.turn.len
    }

    /// Allocates the turn buffer (once per reactor).
    #[cold]
    pub(super) fn allocate_turn(&mut self) {
        if self.turn.bytes.is_empty() {
            self.turn.bytes = vec![0; TURN_CAPACITY].into_boxed_slice();
        }
    }

    /// A queue holding a copy of the turn buffer's `start..end`.
    pub(super) fn take_range(&mut self, start: usize, end: usize, now: Tick) -> Box<Queued> {
        self.stock.take_copy(self.turn.range(start, end), now)
    }
}

impl Stock {
    /// A queue holding `head`, from the stock when it has one.
    pub(super) fn take(&mut self, head: Chunk, now: Tick) -> Box<Queued> {
        let len = head.bytes().len();
        match self.queues.pop() {
            Some(mut q) => {
                q.head = head;
                q.len = len;
                q.progress = now;
                q
            }
            None => Box::new(Queued {
                head,
                rest: VecDeque::new(),
                offset: 0,
                len,
                progress: now,
                sent: 0,
                fds: VecDeque::new(),
            }),
        }
    }

    /// A queue holding a copy of `data`, reusing a stocked buffer when there is one.
    pub(super) fn take_copy(&mut self, data: &[u8], now: Tick) -> Box<Queued> {
        if let Some(mut q) = self.queues.pop() {
            if let Chunk::Owned(v) = &mut q.head {
                v.extend_from_slice(data);
                q.len = data.len();
                q.progress = now;
                return q;
            }
            self.queues.push(q);
        }
        self.take(Chunk::Owned(data.to_vec()), now)
    }

    /// Stocks an emptied queue (or frees it when the stock is full).
    #[inline(always)]
    pub(super) fn put(&mut self, mut q: Box<Queued>) {
        if self.queues.len() >= SPARE_QUEUES {
            return;
        }
        q.offset = 0;
        q.len = 0;
        q.sent = 0;
        // Descriptors still queued were sent with the bytes that emptied the queue, or belong
        // to a queue being dropped: either way closing our copies is right.
        if !q.fds.is_empty() {
            q.fds.clear();
        }
        match &mut q.head {
            Chunk::Owned(v) if v.capacity() <= SPARE_CAPACITY => v.clear(),
            _ => q.head = Chunk::Owned(Vec::new()),
        }
        if q.rest.capacity() > IOV_BATCH {
            q.rest = VecDeque::new();
        }
        self.queues.push(q);
    }
}
