//! A single large write to a connection with nothing queued goes out at once, from the caller's
//! slice, and only the unsent tail is queued; small writes of one turn still leave together
//! (S15). Counted on the in-memory transport, where every write call of the reactor is one call
//! of the transport, as it would be one system call on a socket.

use std::io;

use protocols::echo::Echo;
use reactor::testing::Harness;
use reactor::{Cx, ListenOptions, Protocol};

/// Echoes, and records what its write left queued.
struct EchoQueued;

impl Protocol<Vec<usize>> for EchoQueued {
    fn on_data(&mut self, cx: &mut Cx<'_, Vec<usize>>, data: &[u8]) -> usize {
        cx.write(data);
        let queued = cx.queued();
        cx.app().push(queued);
        data.len()
    }
}

/// 64 KiB echoed from one read: written while the handler runs (nothing is queued after its
/// write, so no copy was made), in one write call; the next 64 KiB the same.
#[test]
fn a_large_echo_is_written_at_once_with_nothing_queued() -> io::Result<()> {
    let mut h = Harness::new(Vec::new())?;
    let listener = h.listen(ListenOptions::default(), |_, _| EchoQueued);
    let peer = listener.connect();
    h.settle()?;
    let block: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    for round in 1..=2 {
        peer.send(&block);
        h.turn()?;
        assert_eq!(peer.take_received(), block, "round {round}");
        assert_eq!(peer.write_calls(), round);
        assert_eq!(h.app().as_slice(), vec![0; round].as_slice());
    }
    // A small echo is queued and flushed at the end of the turn, as before.
    peer.send(b"small");
    h.turn()?;
    assert_eq!(peer.take_received(), b"small");
    assert_eq!(h.app().last(), Some(&5));
    Ok(())
}

/// The kernel takes part of a large write: the rest is queued and follows in order once the
/// connection is writable again, ahead of anything written later.
#[test]
fn the_unsent_tail_of_a_large_write_is_queued_in_order() -> io::Result<()> {
    let mut h = Harness::new(())?;
    let listener = h.listen(ListenOptions::default(), |_, _| Echo);
    let peer = listener.connect();
    h.settle()?;
    let block: Vec<u8> = (0..40 * 1024).map(|i| (i % 253) as u8).collect();
    peer.set_write_budget(Some(10_000));
    peer.send(&block);
    h.settle()?;
    assert_eq!(peer.received_len(), 10_000);
    assert_eq!(
        h.reactor().stats().queued_bytes,
        (block.len() - 10_000) as u64
    );
    // A small write behind it waits its turn.
    peer.send(b"tail");
    h.settle()?;
    peer.set_write_budget(None);
    h.settle()?;
    let got = peer.take_received();
    assert_eq!(&got[..block.len()], &block[..]);
    assert_eq!(&got[block.len()..], b"tail");
    Ok(())
}

/// Writes a large reply as many small writes: they are coalesced into one write call (S15).
struct Pieces;

impl<App> Protocol<App> for Pieces {
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        for _ in 0..64 {
            cx.write(&[b'x'; 1024]);
        }
        data.len()
    }
}

/// S15: 64 writes of 1 KiB in one callback leave in one write call: only a single large write
/// is written through.
#[test]
fn many_small_writes_are_still_one_write_call() -> io::Result<()> {
    let mut h = Harness::new(())?;
    let listener = h.listen(ListenOptions::default(), |_, _| Pieces);
    let peer = listener.connect();
    h.settle()?;
    peer.send(b"go");
    h.settle()?;
    assert_eq!(peer.take_received(), vec![b'x'; 64 * 1024]);
    assert_eq!(peer.write_calls(), 1);
    Ok(())
}
