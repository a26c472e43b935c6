//! The output queue's unit tests: short writes keep order, an emptied queue goes back to a
//! bounded stock, small writes coalesce, a would-block keeps the queue, descriptors stay with
//! their bytes, and ranges of the turn buffer behave as queues of their own whatever happens
//! to them (sent, partly sent, interleaved, or not flushed in their turn).

use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;

use super::spare::{SPARE_CAPACITY, SPARE_QUEUES, TURN_CAPACITY};
use super::*;

mod turn;

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
    let sp = &mut Spare::default();
    q.push_slice(b"hello ", sp, 0);
    q.push_shared(Shared::from(&b"shared "[..]), sp, 0);
    q.push_vec(vec![b'x'; 10_000], sp, 0);
    q.push_slice(b"end", sp, 0);
    let expected: Vec<u8> = [&b"hello shared "[..], &[b'x'; 10_000], b"end"].concat();
    let mut out = Vec::new();
    loop {
        let (state, _) = q.flush(sp, &1, short_writer(&mut out, 7)).unwrap();
        if state == Flushed::All {
            break;
        }
    }
    assert_eq!(out, expected);
    assert_eq!(q.len(), 0);
    assert!(q.is_empty(), "an empty queue holds memory");
}

/// The queue a [`OutQueue::Queued`] holds, by address.
fn boxed(q: &OutQueue) -> *const Queued {
    match q {
        OutQueue::Queued(b) => &**b as *const Queued,
        other => panic!("not a queue of its own: {other:?}"),
    }
}

#[test]
fn an_emptied_queue_is_reused_and_the_stock_is_bounded() {
    let sp = &mut Spare::default();
    let mut q = OutQueue::default();
    q.push_copy(b"ping", sp, 0);
    let first = boxed(&q);
    let mut out = Vec::new();
    q.flush(sp, &0, short_writer(&mut out, 100)).unwrap();
    assert!(q.is_empty() && sp.stock.queues.len() == 1);
    q.push_copy(b"pong", sp, 1);
    assert_eq!(boxed(&q), first);
    assert_eq!(
        (q.len(), q.progress(9), sp.stock.queues.len()),
        (4, Some(1), 0)
    );
    q.flush(sp, &1, short_writer(&mut out, 100)).unwrap();
    assert_eq!(out, b"pingpong");
    // A buffer grown past the bound is not kept; nor is a queue beyond the stock's size.
    q.push_vec(vec![0; SPARE_CAPACITY + 1], sp, 2);
    q.flush(sp, &2, short_writer(&mut out, usize::MAX)).unwrap();
    match &sp.stock.queues[0].head {
        Chunk::Owned(v) => assert_eq!(v.capacity(), 0),
        Chunk::Shared(_) => panic!("a stocked queue keeps a shared chunk"),
    }
    for _ in 0..SPARE_QUEUES + 10 {
        sp.stock.put(Box::new(Queued {
            head: Chunk::Owned(Vec::new()),
            rest: VecDeque::new(),
            offset: 0,
            len: 0,
            progress: 0,
            sent: 0,
            fds: VecDeque::new(),
        }));
    }
    assert_eq!(sp.stock.queues.len(), SPARE_QUEUES);
}

#[test]
fn small_writes_coalesce_into_one_chunk() {
    let sp = &mut Spare::default();
    // In the turn buffer: one range, however many writes.
    let mut q = OutQueue::default();
    for _ in 0..100 {
        q.push_slice(b"abc", sp, 0);
    }
    assert!(matches!(q, OutQueue::Turn { start: 0, len: 300 }));
    // In a queue of its own: one chunk.
    let mut q = OutQueue::default();
    for _ in 0..100 {
        q.push_copy(b"abc", sp, 0);
    }
    match &q {
        OutQueue::Queued(b) => assert!(b.rest.is_empty()),
        other => panic!("not a queue of its own: {other:?}"),
    }
    assert_eq!(q.len(), 300);
}

#[test]
fn would_block_leaves_queue_intact() {
    let mut q = OutQueue::default();
    let sp = &mut Spare::default();
    q.push_slice(b"data", sp, 0);
    let (state, n) = q
        .flush(sp, &0, |_, _| Err(io::ErrorKind::WouldBlock.into()))
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
            let sp = &mut Spare::default();
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
                    q.push_with_fds(data, vec![fd], sp, 0);
                } else {
                    q.push_vec(data, sp, 0);
                }
                queued += len as u64;
            }
            let mut sent = 0u64;
            let mut seen = Vec::new();
            let mut round = 0;
            while !q.is_empty() {
                let budget = budgets[round % budgets.len()];
                round += 1;
                let (_, _) = q.flush(sp, &0, |iov, fds| {
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
