//! The reactor's own buffering, accept, connect and close code driven through the in-memory
//! transport, with faults injected at every point of the syscall seam (S2–S7, S11, S14, S24,
//! S27) and time moved by hand (S8, S9).

use std::io;
use std::time::Duration;

use evdrive_reactor::testing::Harness;
use evdrive_reactor::{CloseKind, CloseReason, ConnConfig, Cx, ListenOptions, Protocol, TimerId};
use proptest::prelude::*;

/// What the handlers saw, in order.
#[derive(Default, Debug)]
struct Log {
    opened: usize,
    closed: Vec<CloseKind>,
    eofs: usize,
    timers: Vec<u64>,
    drained: usize,
    high_water: usize,
}

/// Echoes, and records every callback.
struct Echo;

impl Protocol<Log> for Echo {
    fn on_open(&mut self, cx: &mut Cx<'_, Log>) {
        cx.app().opened += 1;
    }
    fn on_data(&mut self, cx: &mut Cx<'_, Log>, data: &[u8]) -> usize {
        cx.write(data);
        data.len()
    }
    fn on_high_water(&mut self, cx: &mut Cx<'_, Log>) {
        cx.app().high_water += 1;
    }
    fn on_drained(&mut self, cx: &mut Cx<'_, Log>) {
        cx.app().drained += 1;
    }
    fn on_timer(&mut self, cx: &mut Cx<'_, Log>, timer: TimerId) {
        cx.app().timers.push(timer.tag());
    }
    fn on_eof(&mut self, cx: &mut Cx<'_, Log>) {
        cx.app().eofs += 1;
        cx.close();
    }
    fn on_close(&mut self, cx: &mut Cx<'_, Log>, reason: CloseReason) {
        cx.app().closed.push(reason.kind());
    }
}

fn echo_harness(
    conn: ConnConfig,
) -> io::Result<(Harness<Log>, evdrive_reactor::testing::MemListener)> {
    let mut h = Harness::new(Log::default())?;
    let opts = ListenOptions::default().with_conn(conn);
    let l = h.listen(opts, |_, _| Echo);
    Ok((h, l))
}

#[test]
fn short_writes_and_eintr_keep_every_byte_in_order() -> io::Result<()> {
    let (mut h, l) = echo_harness(ConnConfig::default())?;
    let peer = l.connect();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    peer.set_read_chunk(Some(777));
    peer.set_write_budget(Some(0));
    peer.inject_eintr(3);
    peer.send(&data);
    h.settle()?;
    let mut got = Vec::new();
    // The kernel accepts a little at a time; every grant is a writable edge.
    for step in 0..10_000 {
        if got.len() == data.len() {
            break;
        }
        peer.set_write_budget(Some(1 + step % 5000));
        if step % 7 == 0 {
            peer.inject_eintr(1);
        }
        h.settle()?;
        got.extend(peer.take_received());
    }
    assert!(got == data, "{} bytes back of {}", got.len(), data.len());
    Ok(())
}

#[test]
fn backpressure_pauses_reading_and_drains() -> io::Result<()> {
    let conn = ConnConfig::default()
        .with_high_water(1000)
        .with_low_water(100);
    let (mut h, l) = echo_harness(conn)?;
    let peer = l.connect();
    peer.set_write_budget(Some(0));
    peer.set_read_chunk(Some(500));
    peer.send(&vec![7u8; 50_000]);
    h.settle()?;
    // Reading stopped soon after the queue passed the high-water mark.
    assert_eq!(h.app().high_water, 1);
    assert!(
        peer.unread_len() > 40_000,
        "kept reading: {}",
        peer.unread_len()
    );
    let snap = h.reactor().connections();
    assert!(snap[0].paused);
    // The peer reads everything: reading resumes without any new input edge.
    peer.set_write_budget(None);
    h.settle()?;
    assert_eq!(peer.take_received().len(), 50_000);
    assert_eq!(h.app().drained, 1);
    assert_eq!(peer.unread_len(), 0);
    Ok(())
}

#[test]
fn hard_cap_closes_slow_consumer() -> io::Result<()> {
    struct Flood;
    impl Protocol<Log> for Flood {
        fn on_data(&mut self, cx: &mut Cx<'_, Log>, data: &[u8]) -> usize {
            for _ in 0..100 {
                cx.write(&[1u8; 1000]);
            }
            data.len()
        }
        fn on_close(&mut self, cx: &mut Cx<'_, Log>, reason: CloseReason) {
            cx.app().closed.push(reason.kind());
        }
    }
    let mut h = Harness::new(Log::default())?;
    let opts = ListenOptions::default().with_conn(ConnConfig::default().with_max_output(10_000));
    let l = h.listen(opts, |_, _| Flood);
    let peer = l.connect();
    peer.set_write_budget(Some(0));
    peer.send(b"go");
    h.settle()?;
    assert_eq!(h.app().closed, vec![CloseKind::SlowConsumer]);
    assert!(peer.was_aborted());
    Ok(())
}

#[test]
fn reset_and_half_close_map_to_reasons() -> io::Result<()> {
    let (mut h, l) = echo_harness(ConnConfig::default())?;
    let a = l.connect();
    let b = l.connect();
    h.settle()?;
    a.reset();
    b.send(b"bye");
    b.shutdown_write();
    h.settle()?;
    // b: echo flushed, FIN sent, then closed since the peer's FIN is in.
    assert_eq!(b.take_received(), b"bye");
    assert!(b.fin_received());
    assert!(b.is_closed() && a.is_closed());
    let mut closed = h.app().closed.clone();
    closed.sort();
    assert_eq!(closed, vec![CloseKind::PeerClosed, CloseKind::Reset]);
    Ok(())
}

#[test]
fn graceful_close_waits_for_peer_fin_then_linger() -> io::Result<()> {
    struct CloseAfterWrite;
    impl Protocol<Log> for CloseAfterWrite {
        fn on_data(&mut self, cx: &mut Cx<'_, Log>, data: &[u8]) -> usize {
            cx.write(b"last words");
            cx.close();
            data.len()
        }
        fn on_close(&mut self, cx: &mut Cx<'_, Log>, reason: CloseReason) {
            cx.app().closed.push(reason.kind());
        }
    }
    let mut h = Harness::new(Log::default())?;
    let opts = ListenOptions::default()
        .with_conn(ConnConfig::default().with_linger_timeout(Duration::from_secs(2)));
    let l = h.listen(opts, |_, _| CloseAfterWrite);
    let peer = l.connect();
    peer.set_write_budget(Some(4));
    peer.send(b"x");
    h.settle()?;
    assert!(!peer.fin_received(), "FIN before the queued bytes");
    peer.set_write_budget(None);
    h.settle()?;
    assert_eq!(peer.take_received(), b"last words");
    assert!(peer.fin_received());
    assert!(
        !peer.is_closed(),
        "closed before the peer's FIN or the linger timeout"
    );
    // Input arriving now is read and discarded (never an RST from unread data).
    peer.send(b"ignored");
    h.settle()?;
    assert_eq!(peer.unread_len(), 0);
    h.advance(Duration::from_millis(1999))?;
    assert!(!peer.is_closed());
    h.advance(Duration::from_millis(1))?;
    assert!(peer.is_closed() && !peer.was_aborted());
    assert_eq!(h.app().closed, vec![CloseKind::Local]);
    Ok(())
}

#[test]
fn connect_verdicts_come_from_so_error() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let cfg = ConnConfig::default().with_connect_timeout(Duration::from_millis(500));
    let (_, ok) = h.connect(Echo, cfg.clone());
    let (_, refused) = h.connect(Echo, cfg.clone());
    let (_, unreachable) = h.connect(Echo, cfg.clone());
    let (_, silent) = h.connect(Echo, cfg.clone());
    // A wake-up before the handshake completes is not a verdict.
    ok.spurious_wakeup();
    h.settle()?;
    assert_eq!(h.app().opened, 0);
    ok.complete_connect(Ok(()));
    refused.complete_connect(Err(libc::ECONNREFUSED));
    unreachable.complete_connect(Err(libc::EHOSTUNREACH));
    h.settle()?;
    assert_eq!(h.app().opened, 1);
    ok.send(b"hi");
    h.settle()?;
    assert_eq!(ok.take_received(), b"hi");
    h.advance(Duration::from_millis(499))?;
    assert!(!silent.is_closed());
    h.advance(Duration::from_millis(1))?;
    let mut closed = h.app().closed.clone();
    closed.sort();
    assert_eq!(
        closed,
        vec![
            CloseKind::Unreachable,
            CloseKind::Refused,
            CloseKind::ConnectTimeout
        ]
    );
    Ok(())
}

#[test]
fn accept_filters_transient_errors_and_backs_off_on_emfile() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let opts = ListenOptions::default().with_backoff_min(Duration::from_millis(100));
    let l = h.listen(opts, |_, _| Echo);
    l.inject_accept_error(libc::ECONNABORTED);
    l.inject_accept_error(libc::EPROTO);
    l.inject_accept_error(libc::EINTR);
    let first = l.connect();
    h.settle()?;
    assert_eq!(h.app().opened, 1, "transient errors must not stop the loop");
    let _ = first;
    // Out of descriptors: the pending client is accepted and closed (told at once), and the
    // listener pauses instead of spinning.
    l.inject_accept_error(libc::EMFILE);
    let shed = l.connect();
    h.settle()?;
    assert!(shed.is_closed(), "a client left hanging in the backlog");
    let waiting = l.connect();
    h.settle()?;
    assert!(!waiting.is_closed());
    assert_eq!(l.pending(), 1, "accepted during the back-off");
    h.advance(Duration::from_millis(100))?;
    assert_eq!(l.pending(), 0);
    assert_eq!(h.app().opened, 2);
    let stats = h.reactor().stats().clone();
    assert_eq!(stats.accept_errors.aborted, 1);
    assert_eq!(stats.accept_errors.proto, 1);
    assert_eq!(stats.accept_errors.interrupted, 1);
    assert_eq!(stats.accept_errors.emfile, 1);
    assert_eq!(stats.accept_shed, 1);
    Ok(())
}

#[test]
fn first_byte_and_idle_timeouts_on_the_harness_clock() -> io::Result<()> {
    let conn = ConnConfig::default()
        .with_first_byte_timeout(Some(Duration::from_millis(200)))
        .with_idle_timeout(Some(Duration::from_millis(1000)));
    let (mut h, l) = echo_harness(conn)?;
    let silent = l.connect();
    let talker = l.connect();
    h.settle()?;
    talker.send(b"a");
    h.advance(Duration::from_millis(199))?;
    assert!(!silent.fin_received());
    h.advance(Duration::from_millis(1))?;
    assert!(
        silent.fin_received(),
        "silent peer not closed at the first-byte timeout"
    );
    // The talker keeps talking: traffic pushes its idle deadline without timer operations.
    for _ in 0..5 {
        h.advance(Duration::from_millis(600))?;
        talker.send(b"b");
        h.settle()?;
    }
    assert!(!talker.fin_received());
    h.advance(Duration::from_millis(999))?;
    assert!(!talker.fin_received());
    h.advance(Duration::from_millis(1))?;
    assert!(talker.fin_received());
    // Both closes are graceful: they end when the peers answer with their FIN.
    assert!(h.app().closed.is_empty());
    silent.shutdown_write();
    talker.shutdown_write();
    h.settle()?;
    assert_eq!(
        h.app().closed,
        vec![CloseKind::IdleTimeout, CloseKind::IdleTimeout]
    );
    Ok(())
}

#[test]
fn heartbeat_beats_and_drops_a_silent_peer() -> io::Result<()> {
    struct Beat;
    impl Protocol<Log> for Beat {
        fn on_open(&mut self, cx: &mut Cx<'_, Log>) {
            cx.set_heartbeat(Duration::from_millis(100), Duration::from_millis(350));
        }
        fn on_data(&mut self, _cx: &mut Cx<'_, Log>, data: &[u8]) -> usize {
            data.len()
        }
        fn on_timer(&mut self, cx: &mut Cx<'_, Log>, timer: TimerId) {
            assert_eq!(timer.tag(), TimerId::HEARTBEAT);
            cx.write(b"PING\n");
        }
        fn on_close(&mut self, cx: &mut Cx<'_, Log>, reason: CloseReason) {
            cx.app().closed.push(reason.kind());
        }
    }
    let mut h = Harness::new(Log::default())?;
    let l = h.listen(ListenOptions::default(), |_, _| Beat);
    let peer = l.connect();
    h.settle()?;
    for _ in 0..3 {
        h.advance(Duration::from_millis(100))?;
    }
    assert_eq!(peer.take_received(), b"PING\nPING\nPING\n");
    peer.send(b"pong");
    h.settle()?;
    h.advance(Duration::from_millis(300))?;
    assert!(!peer.fin_received());
    h.advance(Duration::from_millis(100))?;
    assert!(peer.fin_received());
    peer.shutdown_write();
    h.settle()?;
    assert_eq!(h.app().closed, vec![CloseKind::IdleTimeout]);
    Ok(())
}

#[test]
fn user_timers_never_fire_early_and_die_with_the_connection() -> io::Result<()> {
    struct Timed;
    impl Protocol<Log> for Timed {
        fn on_open(&mut self, cx: &mut Cx<'_, Log>) {
            cx.set_timer(Duration::from_millis(50), 1);
            let t = cx.set_timer(Duration::from_millis(60), 2).unwrap();
            cx.cancel_timer(t);
            cx.set_timer(Duration::from_millis(5000), 3);
        }
        fn on_data(&mut self, cx: &mut Cx<'_, Log>, data: &[u8]) -> usize {
            cx.abort();
            data.len()
        }
        fn on_timer(&mut self, cx: &mut Cx<'_, Log>, timer: TimerId) {
            cx.app().timers.push(timer.tag());
        }
    }
    let mut h = Harness::new(Log::default())?;
    let l = h.listen(ListenOptions::default(), |_, _| Timed);
    let peer = l.connect();
    h.settle()?;
    h.advance(Duration::from_millis(49))?;
    assert!(h.app().timers.is_empty());
    h.advance(Duration::from_millis(1))?;
    assert_eq!(h.app().timers, vec![1]);
    h.advance(Duration::from_millis(100))?;
    assert_eq!(h.app().timers, vec![1]);
    peer.send(b"x");
    h.settle()?;
    assert_eq!(
        h.reactor().timers_armed(),
        0,
        "timers outlived their connection"
    );
    Ok(())
}

#[test]
fn read_budget_serves_others_and_resumes_without_an_edge() -> io::Result<()> {
    /// Counts bytes per connection index, writes nothing.
    struct Sink;
    impl Protocol<Vec<usize>> for Sink {
        fn on_data(&mut self, cx: &mut Cx<'_, Vec<usize>>, data: &[u8]) -> usize {
            let i = cx.id().index();
            let counts = cx.app();
            counts.resize(counts.len().max(i + 1), 0);
            counts[i] += data.len();
            data.len()
        }
    }
    let mut h = Harness::new(Vec::new())?;
    let l = h.listen(ListenOptions::default(), |_, _| Sink);
    let a = l.connect();
    let b = l.connect();
    h.turn()?; // accepts both

    // More than one turn's read budget (`READ_BYTES_PER_TURN`, 1 MiB).
    let big = 4 << 20;
    a.send(&vec![1u8; big]);
    b.send(b"quick");
    h.turn()?;
    // b (slot 2; the listener is slot 0) was served in the same turn although a (slot 1) had
    // more queued than one turn's budget.
    assert_eq!(h.app()[2], 5);
    assert!(a.unread_len() > 0, "the read budget did not stop a");
    // Every read was full, so no new edge will come for a: only the ready list finishes it.
    h.settle()?;
    assert_eq!(a.unread_len(), 0);
    assert_eq!(h.app()[1], big);
    Ok(())
}

#[test]
fn input_limit_closes_only_the_offender() -> io::Result<()> {
    struct Hoard;
    impl Protocol<Log> for Hoard {
        fn on_data(&mut self, _cx: &mut Cx<'_, Log>, _data: &[u8]) -> usize {
            0
        }
        fn on_close(&mut self, cx: &mut Cx<'_, Log>, reason: CloseReason) {
            cx.app().closed.push(reason.kind());
        }
    }
    let mut h = Harness::new(Log::default())?;
    let opts = ListenOptions::default().with_conn(ConnConfig::default().with_max_input(1000));
    let l = h.listen(opts, |_, _| Hoard);
    let bad = l.connect();
    let good = l.connect();
    bad.send(&[0u8; 1001]);
    good.send(&[0u8; 999]);
    bad.shutdown_write();
    h.settle()?;
    assert_eq!(h.app().closed, vec![CloseKind::Protocol]);
    assert!(!good.is_closed());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// However the input is split and however little the "kernel" takes per write, echo returns
    /// exactly its input (S3).
    #[test]
    fn echo_is_exact_under_arbitrary_splits_and_short_writes(
        data in proptest::collection::vec(any::<u8>(), 0..20_000),
        cuts in proptest::collection::vec(1usize..4096, 1..20),
        budgets in proptest::collection::vec(0usize..3000, 1..20),
        chunk in 1usize..5000,
    ) {
        let (mut h, l) = echo_harness(ConnConfig::default()).unwrap();
        let peer = l.connect();
        peer.set_read_chunk(Some(chunk));
        let mut sent = 0;
        let mut got = Vec::new();
        let mut i = 0;
        while sent < data.len() || got.len() < data.len() {
            if sent < data.len() {
                let n = cuts[i % cuts.len()].min(data.len() - sent);
                peer.send(&data[sent..sent + n]);
                sent += n;
            }
            let budget = budgets[i % budgets.len()];
            peer.set_write_budget(Some(if sent == data.len() { budget.max(1) } else { budget }));
            h.settle().unwrap();
            got.extend(peer.take_received());
            i += 1;
            prop_assert!(i < 100_000, "no progress");
        }
        prop_assert!(got == data, "{} bytes back of {}", got.len(), data.len());
    }
}

#[test]
fn write_stall_kills_a_stopped_reader_not_a_slow_one() -> io::Result<()> {
    /// Sends a large response on the first byte.
    struct Big;
    impl Protocol<Log> for Big {
        fn on_data(&mut self, cx: &mut Cx<'_, Log>, data: &[u8]) -> usize {
            let _ = cx.write_vec(vec![9u8; 1 << 20]);
            data.len()
        }
        fn on_close(&mut self, cx: &mut Cx<'_, Log>, reason: CloseReason) {
            cx.app().closed.push(reason.kind());
        }
    }
    let mut h = Harness::new(Log::default())?;
    let opts = ListenOptions::default().with_conn(
        ConnConfig::default()
            .with_write_stall_timeout(Some(Duration::from_millis(500)))
            .with_idle_timeout(Some(Duration::from_secs(60))),
    );
    let l = h.listen(opts, |_, _| Big);
    let slow = l.connect();
    let stopped = l.connect();
    slow.set_write_budget(Some(0));
    stopped.set_write_budget(Some(0));
    slow.send(b"?");
    stopped.send(b"?");
    h.settle()?;
    let mut got = 0;
    // The slow reader takes a little every 400 ms: always within the stall timeout.
    for _ in 0..30 {
        h.advance(Duration::from_millis(400))?;
        slow.set_write_budget(Some(30_000));
        h.settle()?;
        got += slow.take_received().len();
        slow.set_write_budget(Some(0));
    }
    assert!(
        stopped.was_aborted(),
        "a reader that stopped was not closed"
    );
    assert!(!slow.is_closed(), "a slow but live reader was killed");
    assert_eq!(got, 30 * 30_000);
    assert_eq!(h.app().closed, vec![CloseKind::TimedOut]);
    Ok(())
}

#[test]
fn linger_bounds_a_close_whose_flush_never_finishes() -> io::Result<()> {
    let conn = ConnConfig::default().with_linger_timeout(Duration::from_secs(1));
    let (mut h, l) = echo_harness(conn)?;
    let peer = l.connect();
    peer.set_write_budget(Some(0));
    peer.send(b"stuck");
    h.settle()?;
    let id = h.reactor().connections()[0].id;
    h.reactor().cx().close_conn(id, CloseReason::Local);
    h.settle()?;
    h.advance(Duration::from_millis(999))?;
    assert!(!peer.is_closed());
    h.advance(Duration::from_millis(1))?;
    assert!(peer.is_closed());
    assert_eq!(h.app().closed, vec![CloseKind::Local]);
    Ok(())
}

/// A peer whose kernel hands over one byte per read takes one turn per byte (every short read
/// ends the turn, as on a real socket); the harness must tell that slow progress from a loop
/// that never rests. Regression: a fuzz input with a 1-byte read chunk and 10 KB queued.
#[test]
fn one_byte_reads_settle_however_many_turns_they_take() -> io::Result<()> {
    let (mut h, l) = echo_harness(ConnConfig::default())?;
    let peer = l.connect();
    peer.set_read_chunk(Some(1));
    let data: Vec<u8> = (0..25_000u32).map(|i| (i % 253) as u8).collect();
    peer.send(&data);
    h.settle()?;
    let got = peer.take_received();
    assert!(got == data, "{} bytes back of {}", got.len(), data.len());
    Ok(())
}
