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
    pub(crate) fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |q| q.len)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    /// The tick the queue last made progress (or became non-empty); `None` when empty.
    pub(crate) fn progress(&self) -> Option<Tick> {
        self.inner.as_ref().map(|q| q.progress)
    }

    /// Queues `chunk`, appending small owned bytes to the last owned chunk instead.
    fn push(&mut self, chunk: Chunk, now: Tick) {
        let add = chunk.bytes().len();
        if add == 0 {
            return;
        }
        let Some(q) = self.inner.as_mut() else {
            self.inner = Some(Box::new(Queued {
                head: chunk,
                rest: VecDeque::new(),
                offset: 0,
                len: add,
                progress: now,
                sent: 0,
                fds: VecDeque::new(),
            }));
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

    /// Queues a copy of `data`.
    pub(crate) fn push_slice(&mut self, data: &[u8], now: Tick) {
        if data.is_empty() {
            return;
        }
        if let Some(q) = self.inner.as_mut() {
            let last = q.rest.back_mut().unwrap_or(&mut q.head);
            if let Chunk::Owned(last) = last {
                if data.len() < COALESCE_BELOW || last.capacity() - last.len() >= data.len() {
                    last.extend_from_slice(data);
                    q.len += data.len();
                    return;
                }
            }
        }
        self.push(Chunk::Owned(data.to_vec()), now);
    }

    /// Queues an owned buffer without copying it.
    pub(crate) fn push_vec(&mut self, data: Vec<u8>, now: Tick) {
        self.push(Chunk::Owned(data), now);
    }

    /// Queues `data` with descriptors that go with its first byte (S29). `data` must not be
    /// empty: descriptors travel with a byte.
    pub(crate) fn push_with_fds(&mut self, data: Vec<u8>, fds: Vec<OwnedFd>, now: Tick) {
        debug_assert!(!data.is_empty());
        let at = self.inner.as_ref().map_or(0, |q| q.sent + q.len as u64);
        self.push(Chunk::Owned(data), now);
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
    pub(crate) fn push_shared(&mut self, data: Shared, now: Tick) {
        self.push(Chunk::Shared(data), now);
    }

    /// Drops everything queued and frees the queue's memory.
    pub(crate) fn clear(&mut self) {
        self.inner = None;
    }

    /// Hands queued bytes to `write` (one gather write per call) until the queue is empty or the
    /// writer takes less than offered. Returns what happened and how many bytes were written.
    /// `WouldBlock` counts as blocked; other errors are returned (`EINTR` never reaches here:
    /// the transport retries it).
    pub(crate) fn flush(
        &mut self,
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
                // The common case, one chunk: no iovec array to fill.
                write(&[head], &fds)
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
            self.consume(n);
            total += n;
            if n < offered {
                return Ok((Flushed::Blocked, total));
            }
        }
        Ok((Flushed::All, total))
    }

    /// Marks `n` bytes from the front as sent; frees the queue when it empties.
    fn consume(&mut self, mut n: usize) {
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
            // Free the queue: an idle connection holds nothing (S25).
            self.inner = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `limit` bytes per call and records them.
    fn short_writer<'a>(
        out: &'a mut Vec<u8>,
        limit: usize,
    ) -> impl FnMut(&[IoSlice<'_>], &[BorrowedFd<'_>]) -> io::Result<usize> + 'a {
        move |iov, _| {
            let mut left = limit;
            for s in iov {
                let take = s.len().min(left);
                out.extend_from_slice(&s[..take]);
                left -= take;
                if left == 0 {
                    break;
                }
            }
            if limit - left == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(limit - left)
        }
    }

    #[test]
    fn short_writes_keep_order_and_free_memory() {
        let mut q = OutQueue::default();
        q.push_slice(b"hello ", 0);
        q.push_shared(Shared::from(&b"shared "[..]), 0);
        q.push_vec(vec![b'x'; 10_000], 0);
        q.push_slice(b"end", 0);
        let expected: Vec<u8> = [&b"hello shared "[..], &[b'x'; 10_000], b"end"].concat();
        let mut out = Vec::new();
        loop {
            let (state, _) = q.flush(1, short_writer(&mut out, 7)).unwrap();
            if state == Flushed::All {
                break;
            }
        }
        assert_eq!(out, expected);
        assert_eq!(q.len(), 0);
        assert!(q.inner.is_none(), "an empty queue holds memory");
    }

    #[test]
    fn small_writes_coalesce_into_one_chunk() {
        let mut q = OutQueue::default();
        for _ in 0..100 {
            q.push_slice(b"abc", 0);
        }
        assert!(q.inner.as_ref().unwrap().rest.is_empty());
        assert_eq!(q.len(), 300);
    }

    #[test]
    fn would_block_leaves_queue_intact() {
        let mut q = OutQueue::default();
        q.push_slice(b"data", 0);
        let (state, n) = q
            .flush(0, |_, _| Err(io::ErrorKind::WouldBlock.into()))
            .unwrap();
        assert_eq!((state, n), (Flushed::Blocked, 0));
        assert_eq!(q.len(), 4);
    }

    /// Descriptors go with the first byte they were queued with, once, whatever the write
    /// budgets, and never with bytes queued before them (S29).
    mod fds {
        use super::*;
        use proptest::prelude::*;
        use std::os::fd::AsRawFd;

        proptest! {
            #[test]
            fn descriptors_stay_attached_to_their_bytes(
                pieces in proptest::collection::vec((1usize..300, any::<bool>()), 1..20),
                budgets in proptest::collection::vec(1usize..200, 1..50),
            ) {
                let mut q = OutQueue::default();
                // Where each batch was queued: byte position and the raw descriptor it carries.
                let mut expected = Vec::new();
                let mut queued = 0u64;
                let mut keep = Vec::new();
                for (i, &(len, with_fd)) in pieces.iter().enumerate() {
                    let data = vec![i as u8; len];
                    if with_fd {
                        let file = std::fs::File::open("/dev/null").unwrap();
                        let fd = OwnedFd::from(file);
                        expected.push((queued, fd.as_raw_fd()));
                        // Keep the number alive: a clone stays open, so the raw number is unique.
                        keep.push(fd.try_clone().unwrap());
                        q.push_with_fds(data, vec![fd], 0);
                    } else {
                        q.push_vec(data, 0);
                    }
                    queued += len as u64;
                }
                let mut sent = 0u64;
                let mut seen = Vec::new();
                let mut round = 0;
                while !q.is_empty() {
                    let budget = budgets[round % budgets.len()];
                    round += 1;
                    let (_, _) = q.flush(0, |iov, fds| {
                        let offered: usize = iov.iter().map(|s| s.len()).sum();
                        let n = offered.min(budget);
                        // Every fifth call the kernel takes nothing.
                        if round % 5 == 0 {
                            return Err(io::ErrorKind::WouldBlock.into());
                        }
                        for fd in fds {
                            seen.push((sent, fd.as_raw_fd()));
                        }
                        sent += n as u64;
                        Ok(n)
                    }).unwrap();
                    prop_assert!(round < 100_000, "no progress");
                }
                prop_assert_eq!(seen, expected);
                prop_assert_eq!(q.fds_queued(), 0);
            }
        }
    }
}
