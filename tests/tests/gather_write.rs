//! S15: writes made during one loop turn are coalesced and flushed with one gather write per
//! connection. Counted on the in-memory transport, where every write call of the reactor is
//! one call of the transport (`MemPeer::write_calls`), as it would be one system call on a
//! socket.

use std::io;

use reactor::testing::Harness;
use reactor::{ConnId, Cx, ListenOptions, Protocol, Shared};

/// Writes what it receives to itself in five pieces, by three different calls, and once more
/// to every other connection of the room.
struct Fanout;

impl Protocol<Vec<ConnId>> for Fanout {
    fn on_open(&mut self, cx: &mut Cx<'_, Vec<ConnId>>) {
        let id = cx.id();
        cx.app().push(id);
    }

    fn on_data(&mut self, cx: &mut Cx<'_, Vec<ConnId>>, data: &[u8]) -> usize {
        cx.write(b"<");
        cx.write(data);
        cx.write_vec(b">".to_vec()).expect("the connection is open");
        cx.write_shared(&Shared::from(&b"["[..]));
        cx.write(b"]");
        let me = cx.id();
        let others: Vec<ConnId> = cx.app().iter().copied().filter(|&c| c != me).collect();
        for other in others {
            cx.send_to(other, data);
        }
        data.len()
    }
}

/// S15: two connections receive data in the same turn; each handler writes five pieces to its
/// own connection and one to the other. Each connection gets all six pieces, in order, with one
/// write call; the next turn's writes take one more.
#[test]
fn writes_of_one_turn_leave_in_one_gather_write_per_connection() -> io::Result<()> {
    let mut h = Harness::new(Vec::new())?;
    let listener = h.listen(ListenOptions::default(), |_, _| Fanout);
    let (a, b) = (listener.connect(), listener.connect());
    h.settle()?;
    assert_eq!((a.write_calls(), b.write_calls()), (0, 0));

    // Both inputs are pending before the turn: one turn reads both.
    a.send(b"A");
    b.send(b"B");
    h.turn()?;
    // Whichever handler ran first wrote to the other's queue first.
    let (got_a, got_b) = (a.take_received(), b.take_received());
    assert!(
        (got_a == b"<A>[]B" && got_b == b"A<B>[]") || (got_a == b"B<A>[]" && got_b == b"<B>[]A"),
        "{:?} {:?}",
        String::from_utf8_lossy(&got_a),
        String::from_utf8_lossy(&got_b)
    );
    assert_eq!((a.write_calls(), b.write_calls()), (1, 1));

    a.send(b"x");
    h.settle()?;
    assert_eq!(a.take_received(), b"<x>[]");
    assert_eq!(b.take_received(), b"x");
    assert_eq!((a.write_calls(), b.write_calls()), (2, 2));
    Ok(())
}
