//! How much one read takes, and one connection per turn (S16, S21, fairness). A pass over a
//! connection starts with a read of `READ_SIZE` (64 KiB); after a read that filled it, reads
//! take up to `READ_SIZE_MAX` (256 KiB) while the connection has nothing queued, so a streaming
//! echo reads and writes through in large pieces; while output is queued they stay at
//! `READ_SIZE`, so what a read can add above the high-water mark stays one small read. However
//! large or small its reads, a connection is charged at least `READ_SIZE` a read and moves at
//! most `READ_BYTES_PER_TURN` (1 MiB) per turn before the others are served. Counted on the
//! in-memory transport, whose reads return all that is waiting up to the buffer's length.

use std::io;

use reactor::testing::{Harness, MemPeer};
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

fn harness(reply: usize) -> io::Result<(Harness<Vec<usize>>, MemPeer)> {
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

/// Nothing queued: the first read takes 64 KiB and, as it filled, the next ones up to 256 KiB.
#[test]
fn reads_grow_after_a_full_read_while_nothing_is_queued() -> io::Result<()> {
    let (mut h, peer) = harness(0)?;
    peer.send(&vec![7; READ_SIZE + READ_SIZE_MAX + 1000]);
    h.turn()?;
    assert_eq!(h.app().as_slice(), &[READ_SIZE, READ_SIZE_MAX, 1000]);
    Ok(())
}

/// A pass that ends short starts the next one small again: the size is not remembered.
#[test]
fn each_pass_starts_with_a_small_read() -> io::Result<()> {
    let (mut h, peer) = harness(0)?;
    peer.send(&vec![7; READ_SIZE + 10]);
    h.turn()?;
    peer.send(&vec![7; READ_SIZE + 10]);
    h.turn()?;
    assert_eq!(h.app().as_slice(), &[READ_SIZE, 10, READ_SIZE, 10]);
    Ok(())
}

/// Output queued (the handler's reply waits for the end of the turn): reads stay at 64 KiB.
#[test]
fn reads_stay_small_while_output_is_queued() -> io::Result<()> {
    let (mut h, peer) = harness(10)?;
    peer.send(&vec![7; 4 * READ_SIZE]);
    h.turn()?;
    assert_eq!(h.app().as_slice(), &[READ_SIZE; 4]);
    assert_eq!(peer.take_received().len(), 4 * 10);
    Ok(())
}

/// A connection with more waiting than 1 MiB moves exactly 1 MiB in a turn and the rest in the
/// next ones, without a new edge (it waits on the ready list).
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

/// Reads that each return little (here 10 bytes, after the peer's FIN, when the loop goes on
/// past short reads) are charged `READ_SIZE` each: sixteen a turn, and the rest later.
#[test]
fn short_reads_are_bounded_in_number_per_turn() -> io::Result<()> {
    let (mut h, peer) = harness(0)?;
    peer.set_read_chunk(Some(10));
    peer.send(&vec![7; 1000]);
    peer.shutdown_write();
    h.turn()?;
    let per_turn = READ_BYTES_PER_TURN / READ_SIZE;
    assert_eq!(h.app().as_slice(), vec![10; per_turn].as_slice());
    h.settle()?;
    assert_eq!(h.app().iter().sum::<usize>(), 1000);
    Ok(())
}
