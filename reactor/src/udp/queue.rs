//! The bounded queue of datagrams waiting for a UDP socket to become writable.
//!
//! Datagrams keep their boundaries and their order: each entry is one whole datagram and its
//! destination, sent whole or not at all.

use std::collections::VecDeque;
use std::net::SocketAddr;

/// Datagrams waiting for writability, bounded by count and bytes.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    /// Whole datagrams and their destinations (`None`: the connected peer), oldest first.
    items: VecDeque<(Box<[u8]>, Option<SocketAddr>)>,
    /// Bytes of all queued datagrams, kept for the byte bound.
    bytes: usize,
}

impl SendQueue {
    /// Queues a copy of `data` if it fits within `max_count` datagrams and `max_bytes` bytes.
    /// Returns whether it was queued.
    pub(crate) fn push(
        &mut self,
        data: &[u8],
        to: Option<SocketAddr>,
        max_count: usize,
        max_bytes: usize,
    ) -> bool {
        let fits = self.items.len() < max_count
            && self
                .bytes
                .checked_add(data.len())
                .is_some_and(|b| b <= max_bytes);
        if fits {
            self.bytes += data.len();
            self.items.push_back((data.into(), to));
        }
        fits
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Datagrams waiting.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The oldest `max` datagrams, for one batch send, written into `out`.
    pub(crate) fn front<'a>(&'a self, max: usize, out: &mut Vec<(&'a [u8], Option<SocketAddr>)>) {
        out.clear();
        out.extend(self.items.iter().take(max).map(|(d, to)| (&d[..], *to)));
    }

    /// Removes the oldest `n` datagrams (sent or dropped); returns their bytes.
    pub(crate) fn pop(&mut self, n: usize) -> u64 {
        let mut bytes = 0;
        for _ in 0..n {
            if let Some((d, _)) = self.items.pop_front() {
                self.bytes -= d.len();
                bytes += d.len() as u64;
            }
        }
        bytes
    }

    /// Drops everything; returns how many datagrams were queued.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.items.len();
        self.items.clear();
        self.bytes = 0;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_by_count_and_bytes_and_keeps_order() {
        let mut q = SendQueue::default();
        assert!(q.push(b"a", None, 2, 3));
        assert!(q.push(b"bc", None, 2, 3));
        assert!(!q.push(b"d", None, 2, 3), "count bound");
        q.pop(1);
        assert!(!q.push(b"de", None, 2, 3), "byte bound");
        assert!(q.push(b"d", None, 2, 3));
        let mut out = Vec::new();
        q.front(8, &mut out);
        let got: Vec<&[u8]> = out.iter().map(|(d, _)| *d).collect();
        assert_eq!(got, vec![&b"bc"[..], &b"d"[..]]);
        assert_eq!(q.clear(), 2);
        assert!(q.is_empty());
    }
}
