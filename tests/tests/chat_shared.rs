//! S16: a chat broadcast is one reference-counted chunk queued on every member, not a copy per
//! member. Measured with a counting allocator: the bytes this thread allocates while the room
//! relays one long line to many members stay near one copy of the line, where a copy per
//! member would be many times more.
//!
//! The allocator counts per thread, so tests running beside this one do not disturb it; the
//! in-memory harness runs the reactor on the test's own thread.

use std::io;

use protocols::chat::{conn_config, ChatConn, ChatRoom, SNIFF_GRACE};
use reactor::sys::alloc_count::CountingAlloc;
use reactor::testing::{Harness, MemPeer};
use reactor::{ConnConfig, ListenOptions};

/// The system allocator, counting the bytes each thread asks for.
#[global_allocator]
static COUNTING: CountingAlloc = CountingAlloc::new();

/// Bytes this thread allocated (and reallocated to) so far.
fn allocated() -> usize {
    CountingAlloc::thread_bytes() as usize
}

/// S16: 64 members; one sends an 8 KiB line while every member's socket is full, so the relayed
/// line stays queued on all 63 others. Relaying it allocates less than 8 copies of the line (a
/// copy per member would be 63); once the sockets drain, every other member receives it.
#[test]
fn a_broadcast_is_one_chunk_shared_by_every_member() -> io::Result<()> {
    const MEMBERS: usize = 64;
    const LINE: usize = 8 * 1024;
    let mut h = Harness::new(ChatRoom::new())?;
    let opts = ListenOptions::default().with_conn(conn_config(ConnConfig::default()));
    let listener = h.listen(opts, |_, _| ChatConn::new());
    let members: Vec<MemPeer> = (0..MEMBERS).map(|_| listener.connect()).collect();
    // Accepted, then greeted once the grace for a browser's request has passed.
    h.settle()?;
    h.advance(SNIFF_GRACE)?;
    // A first line makes the sender known to the others (`* guest1 joined`).
    members[0].send(b"here\n");
    h.settle()?;
    for m in &members {
        m.take_received();
        // The kernel takes nothing: what is relayed stays in the reactor's queues.
        m.set_write_budget(Some(0));
    }

    let text = "x".repeat(LINE);
    members[0].send(format!("{text}\n").as_bytes());
    let before = allocated();
    h.settle()?;
    let relayed = allocated() - before;
    eprintln!("relaying allocated {relayed} bytes");
    assert!(
        relayed < 8 * LINE,
        "relaying one {LINE}-byte line to {} members allocated {relayed} bytes",
        MEMBERS - 1
    );

    for m in &members {
        m.set_write_budget(None);
    }
    h.settle()?;
    let expected = format!("<guest1> {text}\r\n");
    for (i, m) in members.iter().enumerate().skip(1) {
        let got = String::from_utf8_lossy(&m.take_received()).into_owned();
        assert!(
            got == expected,
            "member {i} got {} bytes, not the {} of the line: {:?}…{:?}",
            got.len(),
            expected.len(),
            &got[..got.len().min(20)],
            &got[got.len().saturating_sub(40)..]
        );
    }
    assert!(
        members[0].take_received().is_empty(),
        "no echo to the sender"
    );
    Ok(())
}
