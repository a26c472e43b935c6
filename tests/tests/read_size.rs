//! How much one read takes, and one connection per turn (S16, S21, fairness). A read takes up
//! to `READ_SIZE_MAX` (256 KiB) while the connection has nothing queued, so a streaming echo
//! reads and writes through in large pieces; while output is queued, or the connection is
//! linked, it takes at most `READ_SIZE` (64 KiB), so what a read can add above the high-water
//! mark stays one small read. However large its reads, a connection moves at most
//! `READ_BYTES_PER_TURN` (1 MiB) per turn before the others are served. Counted on the
//! in-memory transport, whose reads return all that is waiting up to the buffer's length.

use std::io;

use reactor::testing::Harness;
use reactor::{Cx, ListenOptions, Protocol, READ_BYTES_PER_TURN, READ_SIZE, READ_SIZE_MAX};

/// Records the length of every delivery and consumes it.
struct Sizes {
    /// Bytes to write back after each delivery (nothing for 0).
    reply: usize,
}

impl Protocol<Vec<usize>> for Sizes {
    fn on_data(&mut self, cx: &mut Cx<'_, Vec<usize>>, data: &[u8]) -> usize {
        cx.app().push(data.len());
        if self.reply > 0 {
            cx.write(&vec![b'r'; self.reply]);
        }
        data.len()
    }
}

fn harness(reply: usize) -> io::Result<(Harness<Vec<usize>>, reactor::testing::MemPeer)> {
    let mut h = Harness::new(Vec::new())?;
    let listener = h.listen(ListenOptions::default(), move |_, _| Sizes { reply });
    let peer = listener.connect();
    h.settle()?;
    Ok((h, peer))
}

#[test]
fn the_sizes_are_what_the_docs_say() {
    assert_eq!(READ_SIZE_MAX, 256 * 1024);
    assert_eq!(READ_SIZE, 64 * 1024);
    assert_eq!(READ_BYTES_PER_TURN, 1024 * 1024);
}

/// Nothing queued: each read takes up to 256 KiB.
#[test]
fn reads_are_large_while_nothing_is_queued() -> io::Result<()> {
    let (mut h, peer) = harness(0)?;
    let waiting = 2 * READ_SIZE_MAX + 1000;
    peer.send(&vec![7; waiting]);
    h.turn()?;
    assert_eq!(h.app().as_slice(), &[READ_SIZE_MAX, READ_SIZE_MAX, 1000]);
    Ok(())
}

/// Output queued (the handler's reply waits for the end of the turn): the next reads take at
/// most 64 KiB each.
#[test]
fn reads_are_small_while_output_is_queued() -> io::Result<()> {
    let (mut h, peer) = harness(10)?;
    let waiting = READ_SIZE_MAX + 3 * READ_SIZE;
    peer.send(&vec![7; waiting]);
    h.turn()?;
    // The first read found nothing queued; its reply then stays queued for the turn.
    assert_eq!(
        h.app().as_slice(),
        &[READ_SIZE_MAX, READ_SIZE, READ_SIZE, READ_SIZE]
    );
    assert_eq!(peer.take_received().len(), 4 * 10);
    Ok(())
}

/// A connection with more waiting than 1 MiB moves 1 MiB in a turn and the rest in the next
/// ones, without a new edge (it waits on the ready list).
#[test]
fn a_turn_reads_at_most_the_byte_budget_from_one_connection() -> io::Result<()> {
    let (mut h, peer) = harness(0)?;
    let waiting = READ_BYTES_PER_TURN + READ_SIZE_MAX + 5;
    peer.send(&vec![7; waiting]);
    h.turn()?;
    let first: usize = h.app().iter().sum();
    assert_eq!(first, READ_BYTES_PER_TURN);
    assert_eq!(peer.unread_len(), waiting - READ_BYTES_PER_TURN);
    h.turn()?;
    let all: usize = h.app().iter().sum();
    assert_eq!(all, waiting);
    assert!(h.app().iter().all(|&n| n <= READ_SIZE_MAX));
    Ok(())
}
