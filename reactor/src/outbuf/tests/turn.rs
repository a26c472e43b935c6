//! Ranges of the turn buffer: a reply sent from the range leaves nothing behind; a short
//! write, a second connection's bytes in between, or a turn that ends before the flush move
//! the range into a queue of its own, and no byte is lost, repeated or reordered.

use super::*;
use proptest::prelude::*;

/// A writer that takes everything and counts its calls.
fn taking_all<'a>(
    out: &'a mut Vec<u8>,
    calls: &'a mut usize,
) -> impl FnMut(&[IoSlice<'_>], &[BorrowedFd<'_>]) -> io::Result<usize> + 'a {
    move |iov, _| {
        *calls += 1;
        let mut n = 0;
        for s in iov {
            out.extend_from_slice(s);
            n += s.len();
        }
        Ok(n)
    }
}

#[test]
fn a_reply_sent_from_the_turn_buffer_leaves_nothing_behind() {
    let sp = &mut Spare::default();
    let mut q = OutQueue::default();
    q.push_slice(b"pong", sp, 7);
    assert!(matches!(q, OutQueue::Turn { start: 0, len: 4 }));
    assert_eq!((q.len(), q.progress(7)), (4, Some(7)));
    assert_eq!(sp.turn.capacity(), TURN_CAPACITY);
    let (mut out, mut calls) = (Vec::new(), 0);
    let (state, n) = q.flush(sp, &7, taking_all(&mut out, &mut calls)).unwrap();
    assert_eq!((state, n, calls), (Flushed::All, 4, 1));
    assert_eq!(out, b"pong");
    assert!(q.is_empty() && q.progress(7).is_none());
    // No queue was made, so none went to the stock.
    assert!(sp.stock.queues.is_empty());
    sp.end_turn();
    assert!(!sp.turn_in_use());
    assert_eq!(sp.turn.capacity(), TURN_CAPACITY);
}

#[test]
fn a_short_write_moves_the_rest_of_a_range_into_a_queue() {
    let sp = &mut Spare::default();
    let mut q = OutQueue::default();
    q.push_slice(b"hello ", sp, 3);
    q.push_slice(b"world", sp, 3);
    assert!(matches!(q, OutQueue::Turn { start: 0, len: 11 }));
    let mut out = Vec::new();
    let (state, n) = q.flush(sp, &4, short_writer(&mut out, 4)).unwrap();
    assert_eq!((state, n), (Flushed::Blocked, 4));
    assert!(matches!(q, OutQueue::Queued(_)));
    // Bytes went out: the stall clock starts again at the flush's tick.
    assert_eq!((q.len(), q.progress(9)), (7, Some(4)));
    // The turn ends and the next one reuses the buffer: the queue has its own copy.
    sp.end_turn();
    let mut other = OutQueue::default();
    other.push_slice(b"XXXXXXXXXXXXXXXX", sp, 5);
    let (state, _) = q.flush(sp, &5, short_writer(&mut out, 100)).unwrap();
    assert_eq!(state, Flushed::All);
    assert_eq!(out, b"hello world");
    assert!(q.is_empty());
}

#[test]
fn a_range_that_would_block_keeps_its_tick() {
    let sp = &mut Spare::default();
    let mut q = OutQueue::default();
    q.push_slice(b"data", sp, 3);
    let (state, n) = q
        .flush(sp, &3, |_, _| Err(io::ErrorKind::WouldBlock.into()))
        .unwrap();
    assert_eq!((state, n), (Flushed::Blocked, 0));
    assert_eq!((q.len(), q.progress(8)), (4, Some(3)));
}

#[test]
fn two_connections_interleaving_writes_in_one_turn_each_send_once_in_order() {
    let sp = &mut Spare::default();
    let (mut a, mut b) = (OutQueue::default(), OutQueue::default());
    a.push_slice(b"a1 ", sp, 0);
    b.push_slice(b"b1 ", sp, 0);
    // `a`'s range is no longer the last: it moves into a queue of its own, with the write.
    a.push_slice(b"a2 ", sp, 0);
    assert!(matches!(a, OutQueue::Queued(_)));
    // `b`'s range is still the last one: it grows.
    b.push_slice(b"b2 ", sp, 0);
    assert!(matches!(b, OutQueue::Turn { start: 3, len: 6 }));
    a.push_slice(b"a3", sp, 0);
    b.push_slice(b"b3", sp, 0);
    for (q, expected) in [(&mut a, &b"a1 a2 a3"[..]), (&mut b, &b"b1 b2 b3"[..])] {
        let (mut out, mut calls) = (Vec::new(), 0);
        let (state, _) = q.flush(sp, &0, taking_all(&mut out, &mut calls)).unwrap();
        // S15: everything one turn gave a connection leaves in one write.
        assert_eq!((state, calls), (Flushed::All, 1));
        assert_eq!(out, expected);
    }
}

#[test]
fn a_range_not_flushed_in_its_turn_is_settled_before_the_buffer_is_reused() {
    let sp = &mut Spare::default();
    let mut q = OutQueue::default();
    q.push_slice(b"for later", sp, 11);
    // The end of the turn (a connecting connection, or the settle rounds ran out).
    q.settle(sp, 11);
    sp.end_turn();
    assert!(matches!(q, OutQueue::Queued(_)));
    assert_eq!((q.len(), q.progress(12)), (9, Some(11)));
    // The next turn overwrites the buffer.
    let mut other = OutQueue::default();
    other.push_slice(b"something else", sp, 12);
    q.push_slice(b"!", sp, 12);
    let mut out = Vec::new();
    q.flush(sp, &12, short_writer(&mut out, 100)).unwrap();
    assert_eq!(out, b"for later!");
}

#[test]
fn chunks_and_descriptors_move_a_range_into_a_queue_first() {
    let sp = &mut Spare::default();
    let mut q = OutQueue::default();
    q.push_slice(b"head ", sp, 0);
    q.push_shared(Shared::from(&b"shared "[..]), sp, 0);
    let file = std::fs::File::open("/dev/null").unwrap();
    q.push_with_fds(b"fd".to_vec(), vec![OwnedFd::from(file)], sp, 0);
    assert_eq!((q.len(), q.fds_queued()), (14, 1));
    let mut seen_at = Vec::new();
    let mut out = Vec::new();
    while !q.is_empty() {
        q.flush(sp, &0, |iov, fds| {
            if !fds.is_empty() {
                seen_at.push(out.len());
            }
            let mut n = 0;
            for s in iov {
                out.extend_from_slice(s);
                n += s.len();
            }
            Ok(n)
        })
        .unwrap();
    }
    assert_eq!(out, b"head shared fd");
    // The descriptor went with its first byte, after the range's bytes.
    assert_eq!(seen_at, [12]);
}

#[test]
fn the_turn_buffer_never_grows_past_its_capacity() {
    let sp = &mut Spare::default();
    let mut queues: Vec<OutQueue> = (0..40).map(|_| OutQueue::default()).collect();
    for q in &mut queues {
        q.push_slice(&[1; 3000], sp, 0);
    }
    assert_eq!(sp.turn.capacity(), TURN_CAPACITY);
    let in_turn = queues
        .iter()
        .filter(|q| matches!(q, OutQueue::Turn { .. }))
        .count();
    assert_eq!(in_turn, TURN_CAPACITY / 3000);
    assert!(queues.iter().all(|q| q.len() == 3000));
}

/// One step of the model below.
#[derive(Debug, Clone)]
enum Op {
    /// `push_slice` (the handler's copy) of `len` bytes on queue `q`.
    Slice(usize, usize),
    /// `push_copy` (the rest of a write-through).
    Copy(usize, usize),
    /// `push_vec`.
    Vec(usize, usize),
    /// `push_shared`.
    Shared(usize, usize),
    /// A flush of queue `q` whose kernel takes at most `budget` bytes per call (0: would
    /// block).
    Flush(usize, usize),
    /// The end of a turn: what is left in the turn buffer is settled, then it is cleared.
    EndTurn,
}

fn op() -> impl Strategy<Value = Op> {
    let q = 0..3usize;
    prop_oneof![
        6 => (q.clone(), 0..200usize).prop_map(|(q, n)| Op::Slice(q, n)),
        1 => (q.clone(), 0..40_000usize).prop_map(|(q, n)| Op::Slice(q, n)),
        1 => (q.clone(), 1..5_000usize).prop_map(|(q, n)| Op::Copy(q, n)),
        1 => (q.clone(), 1..300usize).prop_map(|(q, n)| Op::Vec(q, n)),
        1 => (q.clone(), 1..300usize).prop_map(|(q, n)| Op::Shared(q, n)),
        3 => (q, 0..500usize).prop_map(|(q, n)| Op::Flush(q, n)),
        2 => Just(Op::EndTurn),
    ]
}

proptest! {
    /// Whatever the mix of writes, short writes and turn ends over three queues sharing one
    /// turn buffer, each queue sends exactly what it was given, in order; its length is what
    /// it still holds; and every range lies within the turn buffer's bytes.
    #[test]
    fn ranges_and_queues_send_every_byte_once_in_order(
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let sp = &mut Spare::default();
        let mut queues: Vec<OutQueue> = (0..3).map(|_| OutQueue::default()).collect();
        let mut given: Vec<Vec<u8>> = vec![Vec::new(); 3];
        let mut sent: Vec<Vec<u8>> = vec![Vec::new(); 3];
        let mut next = 0u8;
        let mut bytes = |n: usize| -> Vec<u8> {
            (0..n).map(|_| { next = next.wrapping_add(1); next }).collect()
        };
        for (tick, op) in ops.into_iter().enumerate() {
            let now = tick as Tick;
            match op {
                Op::Slice(i, n) => {
                    let b = bytes(n);
                    queues[i].push_slice(&b, sp, now);
                    given[i].extend_from_slice(&b);
                }
                Op::Copy(i, n) => {
                    let b = bytes(n);
                    queues[i].push_copy(&b, sp, now);
                    given[i].extend_from_slice(&b);
                }
                Op::Vec(i, n) => {
                    let b = bytes(n);
                    given[i].extend_from_slice(&b);
                    queues[i].push_vec(b, sp, now);
                }
                Op::Shared(i, n) => {
                    let b = bytes(n);
                    given[i].extend_from_slice(&b);
                    queues[i].push_shared(Shared::from(b), sp, now);
                }
                Op::Flush(i, budget) => {
                    let before = queues[i].len();
                    let (state, n) = queues[i]
                        .flush(sp, &now, short_writer(&mut sent[i], budget))
                        .unwrap();
                    prop_assert_eq!(queues[i].len(), before - n);
                    prop_assert_eq!(state == Flushed::All, queues[i].is_empty());
                }
                Op::EndTurn => {
                    for q in &mut queues {
                        q.settle(sp, now);
                    }
                    sp.end_turn();
                }
            }
            prop_assert!(sp.turn.capacity() <= TURN_CAPACITY);
            for i in 0..3 {
                prop_assert_eq!(queues[i].len(), given[i].len() - sent[i].len());
                if let OutQueue::Turn { start, len } = queues[i] {
                    prop_assert!(len > 0 && (start + len) as usize <= sp.turn.len());
                    prop_assert_eq!(queues[i].progress(now), Some(now));
                }
            }
        }
        for i in 0..3 {
            queues[i].flush(sp, &0, short_writer(&mut sent[i], usize::MAX)).unwrap();
            prop_assert!(queues[i].is_empty());
            prop_assert_eq!(&sent[i], &given[i]);
        }
    }
}
