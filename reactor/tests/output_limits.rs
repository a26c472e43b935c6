//! The hard and soft output limits (S21) on the harness clock: past the hard limit a
//! connection is aborted at once; above the soft limit it is aborted only once its output has
//! stayed there for the whole soft period, as Redis's `client-output-buffer-limit` does.

use std::io;
use std::time::Duration;

use evdrive_reactor::testing::{Harness, MemPeer};
use evdrive_reactor::{CloseKind, CloseReason, ConnConfig, Cx, ListenOptions, Protocol};

const HARD: usize = 10_000;
const SOFT: usize = 3_000;
const SOFT_FOR: Duration = Duration::from_secs(1);
/// Bytes queued per byte received.
const REPLY: usize = 1_000;

/// Queues [`REPLY`] bytes for every byte received; records how connections end.
struct Producer;

impl Protocol<Vec<CloseKind>> for Producer {
    fn on_data(&mut self, cx: &mut Cx<'_, Vec<CloseKind>>, data: &[u8]) -> usize {
        for _ in data {
            cx.write(&[7u8; REPLY]);
        }
        data.len()
    }
    fn on_close(&mut self, cx: &mut Cx<'_, Vec<CloseKind>>, reason: CloseReason) {
        cx.app().push(reason.kind());
    }
}

/// A harness with one producer listener and a connected peer that reads nothing.
fn producer() -> io::Result<(Harness<Vec<CloseKind>>, MemPeer)> {
    let mut h = Harness::new(Vec::new())?;
    let config = ConnConfig::default().with_output_limits(HARD, SOFT, SOFT_FOR);
    let l = h.listen(ListenOptions::default().with_conn(config), |_, _| Producer);
    let peer = l.connect();
    peer.set_write_budget(Some(0));
    h.settle()?;
    Ok((h, peer))
}

/// S21: output above the soft limit for less than the soft period is kept: the peer catches up
/// in time and its connection stays. Above it again, the period counts afresh from the new
/// crossing, and once it has passed in full the connection is aborted as a slow consumer.
#[test]
fn above_the_soft_limit_for_less_than_the_period_is_kept_for_the_period_dropped() -> io::Result<()>
{
    let (mut h, peer) = producer()?;

    // 1. Above soft for 900 ms, then the peer reads everything: kept.
    peer.send(&[1; 5]);
    h.settle()?;
    h.advance(SOFT_FOR - Duration::from_millis(100))?;
    assert!(h.app().is_empty(), "{:?}", h.app());
    peer.set_write_budget(None);
    h.settle()?;
    assert_eq!(peer.take_received().len(), 5 * REPLY);
    h.advance(2 * SOFT_FOR)?;
    assert!(
        h.app().is_empty(),
        "dropped after catching up: {:?}",
        h.app()
    );

    // 2. Stops reading again, above soft: the period starts at this crossing.
    peer.set_write_budget(Some(0));
    peer.send(&[1; 5]);
    h.settle()?;
    h.advance(SOFT_FOR - Duration::from_millis(1))?;
    assert!(h.app().is_empty(), "dropped early: {:?}", h.app());
    h.advance(Duration::from_millis(1))?;
    assert_eq!(h.app().as_slice(), [CloseKind::SlowConsumer]);
    assert!(peer.was_aborted());
    assert_eq!(h.reactor().stats().slow_consumers, 1);
    Ok(())
}

/// S21: output at the soft limit exactly never arms the timer; output past the hard limit is
/// aborted at once, with no time passing.
#[test]
fn at_the_soft_limit_is_kept_past_the_hard_limit_is_dropped_at_once() -> io::Result<()> {
    let (mut h, peer) = producer()?;
    peer.send(&[1; SOFT / REPLY]);
    h.settle()?;
    h.advance(10 * SOFT_FOR)?;
    assert!(h.app().is_empty(), "{:?}", h.app());
    assert_eq!(h.reactor().stats().timers_armed, 0);

    peer.send(&[1; (HARD - SOFT) / REPLY + 1]);
    h.settle()?;
    assert_eq!(h.app().as_slice(), [CloseKind::SlowConsumer]);
    assert!(peer.was_aborted());
    Ok(())
}

/// Replies to its first few inputs with one byte, and to every later one with `len` bytes at
/// once; records how connections end.
struct OneReply {
    len: usize,
    small_left: usize,
}

impl Protocol<Vec<CloseKind>> for OneReply {
    fn on_data(&mut self, cx: &mut Cx<'_, Vec<CloseKind>>, data: &[u8]) -> usize {
        let len = match self.small_left {
            0 => self.len,
            _ => {
                self.small_left -= 1;
                1
            }
        };
        cx.write(&vec![7u8; len]);
        data.len()
    }
    fn on_close(&mut self, cx: &mut Cx<'_, Vec<CloseKind>>, reason: CloseReason) {
        cx.app().push(reason.kind());
    }
}

/// S21: the limits hold for a small write into an empty queue too (the common case of a
/// write, decided apart): after a few one-byte replies have gone (so the reactor's per-turn
/// buffers are in use, as in steady traffic), one reply over the soft limit arms the soft
/// period, and one over the hard limit is dropped at once.
#[test]
fn one_small_write_into_an_empty_queue_meets_both_limits() -> io::Result<()> {
    const SMALL: usize = 4;
    for (len, hard_passed) in [(SOFT + 1, false), (HARD + 1, true)] {
        let mut h = Harness::new(Vec::new())?;
        let config = ConnConfig::default().with_output_limits(HARD, SOFT, SOFT_FOR);
        let l = h.listen(ListenOptions::default().with_conn(config), move |_, _| {
            OneReply {
                len,
                small_left: SMALL,
            }
        });
        let peer = l.connect();
        h.settle()?;
        for _ in 0..SMALL {
            peer.send(b"x");
            h.settle()?;
            assert_eq!(peer.take_received(), [7]);
        }
        peer.set_write_budget(Some(0));
        peer.send(b"y");
        h.settle()?;
        if hard_passed {
            assert_eq!(h.app().as_slice(), [CloseKind::SlowConsumer]);
            assert!(peer.was_aborted());
            continue;
        }
        assert!(h.app().is_empty(), "{:?}", h.app());
        h.advance(SOFT_FOR + Duration::from_millis(100))?;
        assert_eq!(h.app().as_slice(), [CloseKind::SlowConsumer]);
        assert!(peer.was_aborted());
    }
    Ok(())
}
