//! Introspection: the counters of `Reactor::stats` and the per-connection snapshots of
//! `Reactor::connections` follow a small scripted scenario step by step.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use evdrive_tests::{connect, connect_with, expect_eof, observe, set_recv_buffer, Server, WAIT};
use reactor::{CloseKind, CloseReason, ConnConfig, ConnSnapshot, Cx, ListenOptions, Protocol};

/// Output the `!` request queues: far more than the client's and the server's socket buffers
/// hold, so most of it stays in the reactor's queue.
const FLOOD: usize = 1024 * 1024;

/// Echoes, except that a lone `!` asks for [`FLOOD`] bytes of output.
struct EchoOrFlood;

impl<App> Protocol<App> for EchoOrFlood {
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        if data == b"!" {
            let _ = cx.write_vec(vec![b'x'; FLOOD]);
        } else {
            cx.write(data);
        }
        data.len()
    }
}

/// The snapshot of one connection, found by the client's address (the server's peer).
fn snapshot_of(snaps: &[ConnSnapshot], client: SocketAddr) -> &ConnSnapshot {
    snaps
        .iter()
        .find(|s| s.peer == Some(client))
        .unwrap_or_else(|| panic!("no snapshot for {client}: {snaps:#?}"))
}

/// S9, S21, S25 (operator view): three connections go through traffic, backpressure and three
/// different ends; after each step `stats()` (accepted, open, bytes in/out, turns, longest
/// turn, timers armed, queued bytes, closes by reason) and `connections()` (peer, age, idle,
/// queued, paused, timers, state) say exactly what happened.
#[test]
fn stats_and_snapshots_follow_a_scripted_scenario() -> io::Result<()> {
    evdrive_tests::init_log();
    let (watch, mut observer) = observe();
    let opts = ListenOptions::default()
        // Accepted sockets inherit a small send buffer: the flood stays in the reactor's queue.
        .with_send_buffer_size(Some(16 * 1024))
        .with_conn(ConnConfig::default().with_idle_timeout(Some(Duration::from_secs(60))));
    let server = Server::listen(|| (), opts, move |_, _| watch.wrap(EchoOrFlood))?;

    // 1. Client A sends five bytes and gets them back; client B connects and stays silent.
    let mut a = connect(server.addr())?;
    let a_id = observer.wait_open(&[]);
    a.write_all(b"hello")?;
    let mut echo = [0u8; 5];
    a.read_exact(&mut echo)?;
    assert_eq!(&echo, b"hello");
    let b = connect(server.addr())?;
    let b_id = observer.wait_open(&[a_id]);
    let (a_addr, b_addr) = (a.local_addr()?, b.local_addr()?);

    let (stats, snaps, timers) =
        server.with(|r| (r.stats().clone(), r.connections(), r.timers_armed()));
    assert_eq!(stats.accepted, 2);
    assert_eq!(stats.open, 2);
    assert_eq!(stats.bytes_in, 5);
    assert_eq!(stats.bytes_out, 5);
    assert!(stats.turns >= 2, "{stats:?}");
    assert!(stats.longest_turn > Duration::ZERO, "{stats:?}");
    // One idle timer per connection, nothing else.
    assert_eq!(stats.timers_armed, 2);
    assert_eq!(timers, 2);
    assert_eq!(stats.queued_bytes, 0);
    assert_eq!(stats.closed_total(), 0);
    assert_eq!(snaps.len(), 2);
    let sa = snapshot_of(&snaps, a_addr);
    assert_eq!(sa.id, a_id);
    assert_eq!((sa.bytes_in, sa.bytes_out, sa.queued), (5, 5, 0), "{sa}");
    assert_eq!((sa.state, sa.paused, sa.timers), ("open", false, 1), "{sa}");
    assert!(sa.idle <= sa.age, "{sa}");
    let sb = snapshot_of(&snaps, b_addr);
    assert_eq!(sb.id, b_id);
    assert_eq!((sb.bytes_in, sb.bytes_out, sb.queued), (0, 0, 0), "{sb}");
    assert_eq!((sb.state, sb.paused, sb.timers), ("open", false, 1), "{sb}");
    // No traffic at all: idle since it was created.
    assert_eq!(sb.idle, sb.age, "{sb}");

    // 2. Client C asks for a flood and reads nothing: output queues, reading pauses, and the
    // loop-wide queued bytes are this connection's.
    let mut c = connect_with(server.addr(), |fd| set_recv_buffer(fd, 16 * 1024))?;
    let c_id = observer.wait_open(&[a_id, b_id]);
    let c_addr = c.local_addr()?;
    c.write_all(b"!")?;
    let (queued_total, sc) = server
        .wait_for(WAIT, move |r| {
            let snaps = r.connections();
            let sc = snaps.iter().find(|s| s.peer == Some(c_addr))?.clone();
            (sc.paused && sc.queued > 0).then(|| (r.stats().queued_bytes, sc))
        })
        .expect("the flood never queued");
    assert_eq!(queued_total, sc.queued as u64, "{sc}");
    assert!(sc.queued > ConnConfig::default().high_water, "{sc}");
    assert_eq!(sc.queued as u64 + sc.bytes_out, FLOOD as u64, "{sc}");
    assert_eq!(sc.bytes_in, 1, "{sc}");

    // 3. Three different ends: A's client leaves, the server closes B gracefully, and C (which
    // reads nothing) is aborted.
    drop(a);
    assert_eq!(observer.wait_close(a_id), CloseKind::PeerClosed);
    server.with(move |r| r.cx().close_conn(b_id, CloseReason::Local));
    let mut b = b;
    expect_eof(&mut b)?;
    drop(b);
    assert_eq!(observer.wait_close(b_id), CloseKind::Local);
    server.with(move |r| r.cx().abort_conn(c_id, CloseReason::Aborted));
    assert_eq!(observer.wait_close(c_id), CloseKind::Aborted);
    drop(c);

    let (stats, snaps) = server.with(|r| (r.stats().clone(), r.connections()));
    assert!(snaps.is_empty(), "{snaps:#?}");
    assert_eq!(stats.accepted, 3);
    assert_eq!(stats.open, 0);
    assert_eq!(stats.closed_by(CloseKind::PeerClosed), 1);
    assert_eq!(stats.closed_by(CloseKind::Local), 1);
    assert_eq!(stats.closed_by(CloseKind::Aborted), 1);
    assert_eq!(stats.closed_total(), 3);
    assert_eq!(stats.bytes_in, 6);
    assert!(stats.bytes_out >= 5 + sc.bytes_out, "{stats:?}");
    assert_eq!(stats.queued_bytes, 0);
    assert_eq!(stats.timers_armed, 0);
    server.shutdown(Duration::from_secs(1))?;
    observer.assert_closed_once();
    Ok(())
}
