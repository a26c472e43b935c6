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

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::rc::Rc;

/// A reference-counted, immutable byte buffer that can be queued on many connections at once
/// without copying (S16).
///
/// ```
/// use reactor::Shared;
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

/// The output queue of one connection.
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    /// Chunks in order; the first may be partly sent.
    chunks: VecDeque<Chunk>,
    /// Bytes of the first chunk already accepted by the kernel.
    offset: usize,
    /// Bytes queued and not yet sent, over all chunks.
    len: usize,
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
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a copy of `data`.
    pub(crate) fn push_slice(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        if let Some(Chunk::Owned(last)) = self.chunks.back_mut() {
            if data.len() < COALESCE_BELOW || last.capacity() - last.len() >= data.len() {
                last.extend_from_slice(data);
                return;
            }
        }
        self.chunks.push_back(Chunk::Owned(data.to_vec()));
    }

    /// Queues an owned buffer without copying it.
    pub(crate) fn push_vec(&mut self, data: Vec<u8>) {
        if data.len() < COALESCE_BELOW {
            return self.push_slice(&data);
        }
        self.len += data.len();
        self.chunks.push_back(Chunk::Owned(data));
    }

    /// Queues a shared buffer without copying it.
    pub(crate) fn push_shared(&mut self, data: Shared) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        self.chunks.push_back(Chunk::Shared(data));
    }

    /// Drops everything queued and frees the queue's memory.
    pub(crate) fn clear(&mut self) {
        *self = OutQueue::default();
    }

    /// Hands queued bytes to `write` (one gather write per call) until the queue is empty or the
    /// writer takes less than offered. Returns what happened and how many bytes were written.
    /// `Interrupted` is retried; `WouldBlock` counts as blocked; other errors are returned.
    pub(crate) fn flush(
        &mut self,
        mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<(Flushed, usize)> {
        let mut total = 0;
        while self.len > 0 {
            let mut iov = [IoSlice::new(&[]); IOV_BATCH];
            let mut n_iov = 0;
            let mut offered = 0;
            for (i, chunk) in self.chunks.iter().take(IOV_BATCH).enumerate() {
                let bytes = chunk.bytes();
                let bytes = if i == 0 { &bytes[self.offset..] } else { bytes };
                iov[i] = IoSlice::new(bytes);
                offered += bytes.len();
                n_iov = i + 1;
            }
            let n = match write(&iov[..n_iov]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((Flushed::Blocked, total))
                }
                Err(e) => return Err(e),
            };
            self.consume(n);
            total += n;
            if n < offered {
                return Ok((Flushed::Blocked, total));
            }
        }
        // Free the deque's own buffer too: an idle connection holds nothing (S25).
        self.clear();
        Ok((Flushed::All, total))
    }

    /// Marks `n` bytes from the front as sent.
    fn consume(&mut self, mut n: usize) {
        debug_assert!(n <= self.len);
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let first_len = self.chunks[0].bytes().len() - self.offset;
            if n >= first_len {
                n -= first_len;
                self.offset = 0;
                self.chunks.pop_front();
            } else {
                self.offset += n;
                n = 0;
            }
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
    ) -> impl FnMut(&[IoSlice<'_>]) -> io::Result<usize> + 'a {
        move |iov| {
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
        q.push_slice(b"hello ");
        q.push_shared(Shared::from(&b"shared "[..]));
        q.push_vec(vec![b'x'; 10_000]);
        q.push_slice(b"end");
        let expected: Vec<u8> = [&b"hello shared "[..], &[b'x'; 10_000], b"end"].concat();
        let mut out = Vec::new();
        loop {
            let (state, _) = q.flush(short_writer(&mut out, 7)).unwrap();
            if state == Flushed::All {
                break;
            }
        }
        assert_eq!(out, expected);
        assert_eq!(q.len(), 0);
        assert_eq!(q.chunks.capacity(), 0);
    }

    #[test]
    fn small_writes_coalesce_into_one_chunk() {
        let mut q = OutQueue::default();
        for _ in 0..100 {
            q.push_slice(b"abc");
        }
        assert_eq!(q.chunks.len(), 1);
        assert_eq!(q.len(), 300);
    }

    #[test]
    fn would_block_leaves_queue_intact() {
        let mut q = OutQueue::default();
        q.push_slice(b"data");
        let (state, n) = q.flush(|_| Err(io::ErrorKind::WouldBlock.into())).unwrap();
        assert_eq!((state, n), (Flushed::Blocked, 0));
        assert_eq!(q.len(), 4);
    }
}
