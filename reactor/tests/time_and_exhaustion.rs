//! Timeouts measured from the event, durations of any size, and the listener's spare
//! descriptor under exhaustion, on the in-memory harness and its hand-moved clock (S8, S24,
//! S27).

use std::io;
use std::time::Duration;

use evdrive_reactor::testing::Harness;
use evdrive_reactor::{CloseKind, CloseReason, ConnConfig, Cx, ListenOptions, Protocol, TimerId};

/// What the handlers saw.
#[derive(Default, Debug)]
struct Log {
    opened: usize,
    closed: Vec<CloseKind>,
    timers: usize,
}

/// Reads and answers nothing, so only the peer's bytes count as activity.
struct Sink;

impl Protocol<Log> for Sink {
    fn on_open(&mut self, cx: &mut Cx<'_, Log>) {
        cx.app().opened += 1;
    }
    fn on_data(&mut self, _cx: &mut Cx<'_, Log>, data: &[u8]) -> usize {
        data.len()
    }
    fn on_timer(&mut self, cx: &mut Cx<'_, Log>, _timer: TimerId) {
        cx.app().timers += 1;
    }
    fn on_close(&mut self, cx: &mut Cx<'_, Log>, reason: CloseReason) {
        cx.app().closed.push(reason.kind());
    }
}

const MS: Duration = Duration::from_millis(1);

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// A byte read at 10.9 ms starts a 300 ms idle timeout that must not end before 310.9 ms: the
/// activity is the read's time, not the turn's tick rounded down.
#[test]
fn idle_timeout_is_never_early_at_sub_tick_offsets() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let conn = ConnConfig::default().with_idle_timeout(Some(Duration::from_millis(300)));
    let l = h.listen(ListenOptions::default().with_conn(conn), |_, _| Sink);
    let peer = l.connect();
    h.settle()?;
    h.advance(us(10_900))?;
    peer.send(b"x");
    h.settle()?;
    h.advance(us(299_900))?;
    assert_eq!(h.now(), us(310_800));
    assert!(
        !peer.fin_received(),
        "closed at 310.8 ms, 299.9 ms after the byte"
    );
    h.advance(us(1_100))?;
    assert!(peer.fin_received(), "still open at 311.9 ms");
    peer.shutdown_write();
    h.settle()?;
    assert_eq!(h.app().closed, vec![CloseKind::IdleTimeout]);
    Ok(())
}

/// A byte read in the turn whose tick the idle deadline falls on counts before the watchdog
/// checks: the turn's reads are stamped before its timers fire (the end-of-turn stamp alone
/// would come too late, and the connection would be closed with a byte just read).
#[test]
fn a_read_in_the_turn_of_the_idle_deadline_keeps_the_connection_open() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let conn = ConnConfig::default().with_idle_timeout(Some(Duration::from_millis(300)));
    let l = h.listen(ListenOptions::default().with_conn(conn), |_, _| Sink);
    let peer = l.connect();
    h.settle()?;
    assert_eq!(h.app().opened, 1);
    // The byte waits in the connection until the turn at 300 ms, which reads it (step 3)
    // and then finds the idle deadline due (step 4).
    peer.send(b"x");
    h.advance(300 * MS)?;
    assert!(
        !peer.fin_received() && h.app().closed.is_empty(),
        "closed by the idle timeout in the turn that read a byte: {:?}",
        h.app().closed
    );
    // The timeout now counts from that byte.
    h.advance(299 * MS)?;
    assert!(!peer.fin_received(), "closed 299 ms after the byte");
    h.advance(2 * MS)?;
    assert!(peer.fin_received(), "still open 301 ms after the byte");
    peer.shutdown_write();
    h.settle()?;
    assert_eq!(h.app().closed, vec![CloseKind::IdleTimeout]);
    Ok(())
}

/// Every timeout and timer at `Duration::MAX`: nothing panics, nothing wraps into the past and
/// fires, and nothing re-arms itself every turn (`settle` fails on a loop that never rests).
#[test]
fn huge_durations_neither_panic_nor_wrap_nor_spin() -> io::Result<()> {
    struct Greedy;
    impl Protocol<Log> for Greedy {
        fn on_open(&mut self, cx: &mut Cx<'_, Log>) {
            cx.app().opened += 1;
            assert!(cx.set_timer(Duration::MAX, 1).is_some());
            assert!(cx.set_heartbeat(Duration::MAX, Duration::MAX));
            cx.schedule(Duration::MAX, |cx| cx.app().timers += 100);
            cx.every(Duration::MAX, |cx| {
                cx.app().timers += 1000;
                true
            });
        }
        fn on_data(&mut self, cx: &mut Cx<'_, Log>, data: &[u8]) -> usize {
            cx.write(data);
            data.len()
        }
        fn on_timer(&mut self, cx: &mut Cx<'_, Log>, _timer: TimerId) {
            cx.app().timers += 1;
        }
        fn on_close(&mut self, cx: &mut Cx<'_, Log>, reason: CloseReason) {
            cx.app().closed.push(reason.kind());
        }
    }
    let mut h = Harness::new(Log::default())?;
    let conn = ConnConfig::default()
        .with_first_byte_timeout(Some(Duration::MAX))
        .with_idle_timeout(Some(Duration::MAX))
        .with_write_stall_timeout(Some(Duration::MAX))
        .with_connect_timeout(Duration::MAX)
        .with_linger_timeout(Duration::MAX);
    let l = h.listen(
        ListenOptions::default()
            .with_conn(conn.clone())
            .with_backoff_min(Duration::MAX)
            .with_backoff_max(Duration::MAX),
        |_, _| Greedy,
    );
    let peer = l.connect();
    // Output that stalls: the write-stall deadline is armed too.
    peer.set_write_budget(Some(0));
    h.advance(us(700_300))?;
    peer.send(b"hello");
    h.settle()?;
    let (_, out) = h.connect(Greedy, conn);
    let armed = h.reactor().timers_armed();
    for _ in 0..5 {
        h.advance(Duration::from_secs(3600 * 24 * 365))?;
    }
    assert_eq!(
        h.reactor().timers_armed(),
        armed,
        "a timer fired or re-armed"
    );
    assert_eq!(h.app().timers, 0, "a timer at Duration::MAX fired");
    assert!(h.app().closed.is_empty(), "closed: {:?}", h.app().closed);
    assert!(!peer.fin_received() && !out.is_closed());
    // A back-off of Duration::MAX pauses the listener without wrapping either.
    l.inject_accept_error(libc::EMFILE);
    let late = l.connect();
    h.advance(Duration::from_secs(3600))?;
    assert!(
        late.is_closed(),
        "the spare descriptor did not shed the client"
    );
    assert_eq!(h.app().opened, 1);
    Ok(())
}

/// On `EMFILE` the listener sheds at most its per-turn budget of pending clients with its spare
/// descriptor; when the spare cannot be reserved again, the back-off timer retries until it can,
/// and shedding works again.
#[test]
fn emfile_shedding_is_bounded_and_a_lost_spare_is_reserved_again() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let opts = ListenOptions::default()
        .with_accepts_per_turn(4)
        .with_backoff_min(100 * MS);
    let l = h.listen(opts, |_, _| Sink);
    l.fail_spare_reserve(2);
    let shed = |h: &mut Harness<Log>| h.reactor().stats().accept_shed;

    // A flood meets EMFILE: four are shed this turn, the rest wait; the spare is not back.
    l.inject_accept_error(libc::EMFILE);
    let flood: Vec<_> = (0..10).map(|_| l.connect()).collect();
    h.settle()?;
    assert_eq!(shed(&mut h), 4, "shedding is bounded per turn");
    assert_eq!(flood.iter().filter(|p| p.is_closed()).count(), 4);
    assert_eq!(l.pending(), 6);

    // The back-off ends: the reserve fails once more, accepting goes on.
    h.advance(100 * MS)?;
    assert_eq!(l.pending(), 0);
    assert_eq!(h.app().opened, 6);

    // Without a spare, EMFILE can shed nobody: the client waits in the backlog.
    l.inject_accept_error(libc::EMFILE);
    let waiting = l.connect();
    h.settle()?;
    assert_eq!(shed(&mut h), 4);
    assert!(!waiting.is_closed());

    // The next back-off reserves the spare again, and the waiting client is accepted.
    h.advance(100 * MS)?;
    assert_eq!(h.app().opened, 7);

    // Shedding works again.
    l.inject_accept_error(libc::EMFILE);
    let told = l.connect();
    h.settle()?;
    assert_eq!(shed(&mut h), 5);
    assert!(told.is_closed());
    Ok(())
}

/// The reactor's clock on the loop-wide context is the harness's clock.
#[test]
fn loop_context_now_follows_the_harness_clock() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let start = h.reactor().cx().now();
    h.advance(us(1_500))?;
    assert_eq!(h.reactor().cx().now() - start, us(1_500));
    assert_eq!(h.reactor().now() - start, us(1_500));
    Ok(())
}
