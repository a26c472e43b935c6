//! Output held in the reactor's turn buffer (a connection's small writes of one turn, when it
//! had nothing queued) reaches the peer whatever happens to the connection in that turn: sent
//! by the end-of-turn flush, partly sent, written between turns, not flushed because it is
//! still connecting, or written by a closing handler in the turn's last settle round. Each
//! test makes other connections write in the turns after, so a range that outlived its turn
//! would send their bytes instead (S3, S15).

use std::io;
use std::time::Duration;

use evdrive_reactor::testing::{Harness, MemListener, MemPeer};
use evdrive_reactor::{CloseReason, ConnConfig, ConnId, Cx, ListenOptions, Protocol};

/// The accepted connections, in order, and what the chain below aborts.
#[derive(Default, Debug)]
struct App {
    opened: Vec<ConnId>,
    /// `Chain` connection k aborts `chain[k + 1]` when it closes; the last writes to `late`.
    chain: Vec<ConnId>,
    late: Option<ConnId>,
}

/// Echoes each read; a read starting with `>` is also sent to every other connection between
/// two echo writes of its own, so the writes of the turn interleave.
struct Echo;

impl Protocol<App> for Echo {
    fn on_open(&mut self, cx: &mut Cx<'_, App>) {
        let id = cx.id();
        cx.app().opened.push(id);
    }
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        let me = cx.id();
        if data.first() == Some(&b'>') {
            let others: Vec<ConnId> = cx
                .app()
                .opened
                .iter()
                .copied()
                .filter(|&c| c != me)
                .collect();
            for (i, &half) in data
                .chunks(data.len().div_ceil(2))
                .collect::<Vec<_>>()
                .iter()
                .enumerate()
            {
                cx.write(half);
                for &o in &others {
                    cx.send_to(o, format!("[{i}]").as_bytes());
                }
            }
        } else {
            cx.write(data);
        }
        data.len()
    }
    fn on_close(&mut self, cx: &mut Cx<'_, App>, _reason: CloseReason) {
        let me = cx.id();
        let app = cx.app();
        let Some(k) = app.chain.iter().position(|&c| c == me) else {
            return;
        };
        match (app.chain.get(k + 1).copied(), app.late) {
            (Some(next), _) => {
                cx.abort_conn(next, CloseReason::Local);
            }
            (None, Some(late)) => {
                cx.send_to(late, b"late news");
            }
            (None, None) => {}
        }
    }
}

fn harness() -> io::Result<(Harness<App>, MemListener)> {
    let mut h = Harness::new(App::default())?;
    let l = h.listen(ListenOptions::default(), |_, _| Echo);
    Ok((h, l))
}

/// Accepts `n` peers; returns them with their connection ids, in order.
fn accept(h: &mut Harness<App>, l: &MemListener, n: usize) -> io::Result<Vec<(ConnId, MemPeer)>> {
    let peers: Vec<MemPeer> = (0..n).map(|_| l.connect()).collect();
    h.settle()?;
    let ids = h.app().opened.clone();
    assert_eq!(ids.len(), n);
    Ok(ids.into_iter().zip(peers).collect())
}

/// Other connections' traffic, which reuses the turn buffer.
fn chatter(h: &mut Harness<App>, peers: &[(ConnId, MemPeer)]) -> io::Result<()> {
    for (_, p) in peers {
        p.send(b"0123456789abcdef");
    }
    h.settle()?;
    for (_, p) in peers {
        assert_eq!(p.take_received(), b"0123456789abcdef");
    }
    Ok(())
}

#[test]
fn interleaved_writes_to_two_connections_each_leave_in_one_write() -> io::Result<()> {
    let (mut h, l) = harness()?;
    let peers = accept(&mut h, &l, 2)?;
    let (a, b) = (&peers[0].1, &peers[1].1);
    let (a_calls, b_calls) = (a.write_calls(), b.write_calls());
    a.send(b">hello world");
    h.settle()?;
    assert_eq!(a.take_received(), b">hello world");
    assert_eq!(b.take_received(), b"[0][1]");
    // S15: one write each for everything the turn gave them.
    assert_eq!(
        (a.write_calls() - a_calls, b.write_calls() - b_calls),
        (1, 1)
    );
    Ok(())
}

#[test]
fn a_short_write_keeps_the_rest_for_the_writable_edge() -> io::Result<()> {
    let (mut h, l) = harness()?;
    let peers = accept(&mut h, &l, 3)?;
    let slow = &peers[0].1;
    slow.set_write_budget(Some(4));
    slow.send(b"a reply of some length");
    h.settle()?;
    assert_eq!(slow.take_received(), b"a re");
    chatter(&mut h, &peers[1..])?;
    slow.set_write_budget(None);
    h.settle()?;
    assert_eq!(slow.take_received(), b"ply of some length");
    Ok(())
}

#[test]
fn writes_between_turns_go_out_with_the_next_turn() -> io::Result<()> {
    let (mut h, l) = harness()?;
    let peers = accept(&mut h, &l, 2)?;
    let (id, p) = (peers[0].0, &peers[0].1);
    let calls = p.write_calls();
    assert!(h.reactor().cx().send_to(id, b"from outside, "));
    // The next turn first settles that write (queued at the last turn's tick), then adds the
    // echo to it; the other connection's echo reuses the turn buffer.
    p.send(b"then the echo");
    peers[1].1.send(b"other");
    h.settle()?;
    assert_eq!(p.take_received(), b"from outside, then the echo");
    assert_eq!(p.write_calls() - calls, 1);
    assert_eq!(peers[1].1.take_received(), b"other");
    Ok(())
}

#[test]
fn a_write_while_connecting_is_sent_once_connected() -> io::Result<()> {
    let (mut h, l) = harness()?;
    let peers = accept(&mut h, &l, 2)?;
    // One written between turns, one from a task inside a turn: that turn's flush passes the
    // connection by, and its bytes must survive the turn buffer's reuse.
    let (early, early_peer) = h.connect(Echo, ConnConfig::default());
    let (in_turn, in_turn_peer) = h.connect(Echo, ConnConfig::default());
    assert!(h
        .reactor()
        .cx()
        .send_to(early, b"queued before the connect"));
    h.reactor().cx().schedule(Duration::ZERO, move |cx| {
        assert!(cx.send_to(in_turn, b"queued in a turn before the connect"));
    });
    h.settle()?;
    chatter(&mut h, &peers)?;
    for out in [&early_peer, &in_turn_peer] {
        assert!(out.take_received().is_empty());
        out.complete_connect(Ok(()));
    }
    h.settle()?;
    assert_eq!(early_peer.take_received(), b"queued before the connect");
    assert_eq!(
        in_turn_peer.take_received(),
        b"queued in a turn before the connect"
    );
    Ok(())
}

#[test]
fn a_write_in_the_last_settle_round_is_sent_next_turn() -> io::Result<()> {
    // Connection k's close aborts k + 1 in the next settle round of the same turn, and the
    // last one's close writes to `late`. With as many links as the turn has settle rounds
    // (eight), that write comes in the last round and waits for the next turn; every length
    // up to twelve is tried, so the case is met whatever the exact limit.
    for links in 1..=12 {
        let (mut h, l) = harness()?;
        let peers = accept(&mut h, &l, links + 2)?;
        h.app().chain = peers[..links].iter().map(|(id, _)| *id).collect();
        h.app().late = Some(peers[links].0);
        let first = h.app().chain[0];
        h.reactor().cx().abort_conn(first, CloseReason::Local);
        h.settle()?;
        assert!(peers[..links].iter().all(|(_, p)| p.is_closed()));
        assert_eq!(
            peers[links].1.take_received(),
            b"late news",
            "{links} links"
        );
        chatter(&mut h, &peers[links..])?;
    }
    Ok(())
}
