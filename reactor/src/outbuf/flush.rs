//! Flushing an output queue: one gather write per call, until the queue is empty or the
//! kernel takes less than offered.
//!
//! # Implementation notes
//! Three paths, cheapest first: a range of the turn buffer (one slice, and when it all goes,
//! nothing to give back); a queue of one chunk and no descriptors (one slice, the queue back
//! to the stock); and, out of line, several chunks or descriptors, where each write stops
//! short of the next batch of descriptors.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd};

use timers::Tick;

use super::{OutQueue, Spare, IOV_BATCH};

/// What one flush achieved.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// The queue is empty.
    All,
    /// The kernel took less than offered: wait for writability.
    Blocked,
}

impl OutQueue {
    /// Hands queued bytes to `write` (one gather write per call) until the queue is empty or the
    /// writer takes less than offered. Returns what happened and how many bytes were written.
    /// `WouldBlock` counts as blocked; other errors are returned (`EINTR` never reaches here:
    /// the transport retries it). What a blocked flush leaves of a range of the turn buffer
    /// moves into a queue of its own. `now`, the tick a blocked queue made progress at, is
    /// passed by reference: only a short write reads it.
    #[inline(always)]
    pub(crate) fn flush(
        &mut self,
        spare: &mut Spare,
        now: &Tick,
        mut write: impl FnMut(&[IoSlice<'_>], &[BorrowedFd<'_>]) -> io::Result<usize>,
    ) -> io::Result<(Flushed, usize)> {
        // This turn's bytes, in the turn buffer: nearly every reply, asked first.
        if let Some(bytes) = self.turn_bytes(spare) {
            let len = bytes.len();
            let n = match write(&[IoSlice::new(bytes)], &[]) {
                Ok(n) if n == len => {
                    self.turn_sent();
                    return Ok((Flushed::All, n));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
            self.turn_partly_sent(n, spare, *now);
            return Ok((Flushed::Blocked, n));
        }
        let q = match self {
            OutQueue::Empty | OutQueue::Turn { .. } => return Ok((Flushed::All, 0)),
            OutQueue::Queued(q) => q,
        };
        if !q.fds.is_empty() || !q.rest.is_empty() {
            return self.flush_chunks(spare, *now, write);
        }
        // One chunk and no descriptors (every TCP queue): one write of the head, with no batch
        // positions or byte limits to work out, inlined into the caller.
        let head = IoSlice::new(&q.head.bytes()[q.offset..]);
        let offered = head.len();
        let n = match write(&[head], &[]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((Flushed::Blocked, 0)),
            Err(e) => return Err(e),
        };
        if n == offered {
            if let OutQueue::Queued(q) = std::mem::take(self) {
                spare.stock.put(q);
            }
            return Ok((Flushed::All, n));
        }
        if n > 0 {
            q.progress = *now;
        }
        self.consume(n, spare);
        Ok((Flushed::Blocked, n))
    }

    /// The bytes of a range of the turn buffer (`None` if the queue holds anything else), for
    /// a caller that sends them itself and then reports with [`turn_sent`](Self::turn_sent)
    /// or [`turn_partly_sent`](Self::turn_partly_sent).
    #[inline(always)]
    pub(crate) fn turn_bytes<'s>(&self, spare: &'s Spare) -> Option<&'s [u8]> {
        match *self {
            OutQueue::Turn { start, len } => {
                let start = start as usize;
                Some(spare.turn.range(start, start + len as usize))
            }
            _ => None,
        }
    }

    /// All of the range [`turn_bytes`](Self::turn_bytes) gave went out: the queue is empty.
    #[inline(always)]
    pub(crate) fn turn_sent(&mut self) {
        debug_assert!(matches!(self, OutQueue::Turn { .. }));
        // A range owns nothing: forgotten, not dropped (which would test for a queue to free).
        std::mem::forget(std::mem::take(self));
    }

    /// Only the first `sent` bytes of the range [`turn_bytes`](Self::turn_bytes) gave went
    /// out (perhaps none): the rest moves into a queue of its own, whose progress tick is
    /// `now` (bytes went out, or were queued this turn). The range is read again here, not
    /// kept across the write by the caller.
    #[cold]
    #[inline(never)]
    pub(crate) fn turn_partly_sent(&mut self, sent: usize, spare: &mut Spare, now: Tick) {
        if let OutQueue::Turn { start, len } = *self {
            let (start, len) = (start as usize, len as usize);
            debug_assert!(sent < len);
            *self = OutQueue::Queued(spare.take_range(start + sent, start + len, now));
        }
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
        while let OutQueue::Queued(q) = self {
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
                        if let OutQueue::Queued(q) = std::mem::take(self) {
                            spare.stock.put(q);
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

    /// Marks `n` bytes from the front of a queue of its own as sent; stocks the queue when it
    /// empties.
    fn consume(&mut self, mut n: usize, spare: &mut Spare) {
        let OutQueue::Queued(q) = self else {
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
            if let OutQueue::Queued(q) = std::mem::take(self) {
                spare.stock.put(q);
            }
        }
    }
}
