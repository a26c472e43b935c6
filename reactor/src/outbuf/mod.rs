//! A connection's output queue: chunks waiting for the kernel, flushed with gather writes.
//!
//! ```text
//!   offset
//!   v
//! [ ####......... ] [ shared chunk ] [ owned chunk ]   -> one sendmsg, many iovecs
//!   ^^^^ already sent
//! ```
//!
//! A short write only moves `offset` forward: the unsent tail is never copied (S3). Small writes
//! made during one loop turn are appended to the last owned chunk, so a handler that writes a
//! header and a body separately still sends one iovec (S15). Shared chunks are reference
//! counted, so one broadcast buffer sits in many queues without a copy (S16). An empty queue
//! holds no allocation at all (S25).
//!
//! Descriptors queued with bytes (S29) are kept beside the chunks, each batch at the position
//! of its first byte in the queue. A gather write never crosses a batch's position: the write
//! that starts there carries the batch (and is sent as one `sendmsg` with `SCM_RIGHTS`), the
//! one before stops short of it. The batch leaves the queue as soon as a write carrying it
//! took a byte, so a short write never sends it twice.
//!
//! # Implementation notes
//! A queue that empties hands its box, and the buffer of its first chunk, to the reactor's
//! [`Spare`] stock instead of freeing them, and the next queue that fills takes them back: an
//! echo or a request/reply exchange allocates nothing per message, while an idle connection
//! still owns nothing. The stock is small and bounded (`SPARE_QUEUES` boxes, none keeping more
//! than `SPARE_CAPACITY` bytes), so it costs at most a few hundred KiB per reactor.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use timers::Tick;

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

/// How many emptied queues the reactor keeps for reuse: enough for every connection served in
/// one busy turn of a few hundred, small enough to be negligible beside them.
const SPARE_QUEUES: usize = 256;

/// The largest chunk buffer kept in the stock: a queue that grew a larger one frees it.
const SPARE_CAPACITY: usize = 2 * COALESCE_BELOW;

/// The reactor's stock of emptied queues, reused by the next queue that fills, so steady
/// traffic allocates nothing (S25 still holds: only the reactor owns them).
#[derive(Debug, Default)]
pub(crate) struct Spare {
    // Boxes, not values: a connection's queue is a box, and moving it in and out of the stock
    // is what saves the allocation.
    #[allow(clippy::vec_box)]
    queues: Vec<Box<Queued>>,
}

impl Spare {
    /// A queue holding `head`, from the stock when it has one.
    fn take(&mut self, head: Chunk, now: Tick) -> Box<Queued> {
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
    #[inline(always)]
    fn take_copy(&mut self, data: &[u8], now: Tick) -> Box<Queued> {
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
    fn put(&mut self, mut q: Box<Queued>) {
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

/// The output queue of one connection: one pointer while empty (S25).
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    /// `None` while nothing is queued, so an idle connection pays 8 bytes and no allocation.
    inner: Option<Box<Queued>>,
}

/// What is queued, boxed so that the connection slot stays small.
#[derive(Debug)]
struct Queued {
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

/// What one flush achieved.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// The queue is empty.
    All,
    /// The kernel took less than offered: wait for writability.
    Blocked,
}

impl OutQueue {
    /// Bytes waiting to be sent.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |q| q.len)
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    /// The tick the queue last made progress (or became non-empty); `None` when empty.
    pub(crate) fn progress(&self) -> Option<Tick> {
        self.inner.as_ref().map(|q| q.progress)
    }

    /// Queues `chunk`, appending small owned bytes to the last owned chunk instead.
    fn push(&mut self, chunk: Chunk, spare: &mut Spare, now: Tick) {
        let add = chunk.bytes().len();
        if add == 0 {
            return;
        }
        let Some(q) = self.inner.as_mut() else {
            self.inner = Some(spare.take(chunk, now));
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

    /// Queues a copy of `data`. Every small write passes here: inlined into the caller.
    #[inline(always)]
    pub(crate) fn push_slice(&mut self, data: &[u8], spare: &mut Spare, now: Tick) {
        if data.is_empty() {
            return;
        }
        let Some(q) = self.inner.as_mut() else {
            // Empty here: a swap, not an assignment, which would call the drop of `None`.
            if let Some(old) = self.inner.replace(spare.take_copy(data, now)) {
                drop(old);
            }
            return;
        };
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

    /// Queues an owned buffer without copying it.
    pub(crate) fn push_vec(&mut self, data: Vec<u8>, spare: &mut Spare, now: Tick) {
        self.push(Chunk::Owned(data), spare, now);
    }

    /// Queues `data` with descriptors that go with its first byte (S29). `data` must not be
    /// empty: descriptors travel with a byte.
    pub(crate) fn push_with_fds(
        &mut self,
        data: Vec<u8>,
        fds: Vec<OwnedFd>,
        spare: &mut Spare,
        now: Tick,
    ) {
        debug_assert!(!data.is_empty());
        let at = self.inner.as_ref().map_or(0, |q| q.sent + q.len as u64);
        self.push(Chunk::Owned(data), spare, now);
        if let Some(q) = self.inner.as_mut() {
            if !fds.is_empty() {
                q.fds.push_back((at, fds));
            }
        }
    }

    /// Descriptors queued and not yet sent.
    #[cfg(test)]
    pub(crate) fn fds_queued(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |q| q.fds.iter().map(|(_, f)| f.len()).sum())
    }

    /// Queues a shared buffer without copying it.
    pub(crate) fn push_shared(&mut self, data: Shared, spare: &mut Spare, now: Tick) {
        self.push(Chunk::Shared(data), spare, now);
    }

    /// Drops everything queued and frees the queue's memory.
    pub(crate) fn clear(&mut self) {
        self.inner = None;
    }

    /// Hands queued bytes to `write` (one gather write per call) until the queue is empty or the
    /// writer takes less than offered. Returns what happened and how many bytes were written.
    /// `WouldBlock` counts as blocked; other errors are returned (`EINTR` never reaches here:
    /// the transport retries it).
    #[inline(always)]
    pub(crate) fn flush(
        &mut self,
        spare: &mut Spare,
        now: Tick,
        mut write: impl FnMut(&[IoSlice<'_>], &[BorrowedFd<'_>]) -> io::Result<usize>,
    ) -> io::Result<(Flushed, usize)> {
        let Some(q) = self.inner.as_mut() else {
            return Ok((Flushed::All, 0));
        };
        if !q.fds.is_empty() || !q.rest.is_empty() {
            return self.flush_chunks(spare, now, write);
        }
        // The common case, one chunk and no descriptors (every TCP queue): one write of the
        // head, with no batch positions or byte limits to work out, inlined into the caller.
        let head = IoSlice::new(&q.head.bytes()[q.offset..]);
        let offered = head.len();
        let n = match write(&[head], &[]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((Flushed::Blocked, 0)),
            Err(e) => return Err(e),
        };
        if n == offered {
            if let Some(q) = self.inner.take() {
                spare.put(q);
            }
            return Ok((Flushed::All, n));
        }
        if n > 0 {
            q.progress = now;
        }
        self.consume(n, spare);
        Ok((Flushed::Blocked, n))
    }

    /// [`flush`](Self::flush) of several chunks or of descriptors.
    #[inline(never)]
    fn flush_chunks(
        &mut self,
        spare: &mut Spare,
        now: Tick,
        mut write: impl FnMut(&[IoSlice<'_>], &[BorrowedFd<'_>]) -> io::Result<usize>,
    ) -> io::Result<(Flushed, usize)> {
        let mut total = 0;
        while let Some(q) = self.inner.as_mut() {
            // Descriptors: this write carries the batch at its start, and stops short of the
            // next batch, so every batch goes with the byte it was queued with.
            let (carry, limit) = match q.fds.front() {
                None => (false, usize::MAX),
                Some(&(at, _)) if at == q.sent => (
                    true,
                    q.fds
                        .get(1)
                        .map_or(usize::MAX, |&(next, _)| (next - q.sent) as usize),
                ),
                Some(&(at, _)) => (false, (at - q.sent) as usize),
            };
            // No allocation unless descriptors go with this write.
            let fds: Vec<BorrowedFd<'_>> = match q.fds.front() {
                Some((_, batch)) if carry => batch.iter().map(|f| f.as_fd()).collect(),
                _ => Vec::new(),
            };
            let head_bytes = &q.head.bytes()[q.offset..];
            let head = IoSlice::new(&head_bytes[..head_bytes.len().min(limit)]);
            let mut offered = head.len();
            let result = if q.rest.is_empty() || offered == limit {
                // The common case, one chunk: no iovec array to fill, and when it all goes
                // (nothing after it), no chunk bookkeeping either.
                match write(&[head], &fds) {
                    Ok(n) if n == offered && n == q.len => {
                        drop(fds);
                        if let Some(q) = self.inner.take() {
                            spare.put(q);
                        }
                        return Ok((Flushed::All, total + n));
                    }
                    other => other,
                }
            } else {
                let mut iov = [IoSlice::new(&[]); IOV_BATCH];
                iov[0] = head;
                let mut n_iov = 1;
                for chunk in q.rest.iter().take(IOV_BATCH - 1) {
                    let take = chunk.bytes().len().min(limit - offered);
                    iov[n_iov] = IoSlice::new(&chunk.bytes()[..take]);
                    offered += take;
                    n_iov += 1;
                    if offered == limit {
                        break;
                    }
                }
                write(&iov[..n_iov], &fds)
            };
            drop(fds);
            let n = match result {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((Flushed::Blocked, total))
                }
                Err(e) => return Err(e),
            };
            if n > 0 {
                q.progress = now;
                if carry {
                    // Sent with this write's first byte: dropping our copies closes them.
                    q.fds.pop_front();
                }
            }
            self.consume(n, spare);
            total += n;
            if n < offered {
                return Ok((Flushed::Blocked, total));
            }
        }
        Ok((Flushed::All, total))
    }

    /// Marks `n` bytes from the front as sent; stocks the queue when it empties.
    fn consume(&mut self, mut n: usize, spare: &mut Spare) {
        let Some(q) = self.inner.as_mut() else {
            return;
        };
        debug_assert!(n <= q.len);
        n = n.min(q.len);
        q.len -= n;
        q.sent += n as u64;
        while n > 0 {
            let head_left = q.head.bytes().len() - q.offset;
            if n < head_left {
                q.offset += n;
                return;
            }
            n -= head_left;
            q.offset = 0;
            match q.rest.pop_front() {
                Some(next) => q.head = next,
                None => break,
            }
        }
        if q.len == 0 {
            // Give the queue back: an idle connection holds nothing (S25).
            if let Some(q) = self.inner.take() {
                spare.put(q);
            }
        }
    }
}

#[cfg(test)]
mod tests;
