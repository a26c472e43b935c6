//! Timers not tied to any connection, from the loop-wide context, on the harness clock (S9):
//! a fixed-rate task stays on its grid over 1,000 periods however late each run is; a
//! fixed-delay task counts each period from the run before.

use std::io;
use std::time::Duration;

use evdrive_reactor::testing::Harness;

/// Uneven steps of the harness clock, each shorter than the period: the loop gets to each run
/// late by a different amount, as a loop busy with other work (or a slow callback) would.
const STEPS_MS: [u64; 7] = [37, 61, 2, 89, 13, 71, 44];

/// Times (since the harness started) at which the task ran.
type Runs = Vec<Duration>;

fn since_start(h: &mut Harness<Runs>, start: std::time::Instant) -> Duration {
    h.reactor().now() - start
}

#[test]
fn fixed_rate_has_no_drift_over_a_thousand_periods() -> io::Result<()> {
    let period = Duration::from_millis(100);
    let mut h = Harness::new(Runs::new())?;
    let start = h.reactor().now();
    h.reactor().cx().every_fixed_rate(period, move |cx| {
        let at = cx.now() - start;
        cx.app().push(at);
        true
    });
    let mut step = 0;
    while h.app().len() < 1000 {
        h.advance(Duration::from_millis(STEPS_MS[step % STEPS_MS.len()]))?;
        step += 1;
    }
    let end = since_start(&mut h, start);
    let runs = h.app().clone();
    // One run per period elapsed, exactly: no drift, no run lost, none doubled.
    assert_eq!(runs.len() as u128, end.as_millis() / period.as_millis());
    for (i, at) in runs.iter().enumerate() {
        let due = period * (i as u32 + 1);
        // Never early, and late only by the step that carried the clock past its time:
        // lateness does not accumulate from one run to the next.
        assert!(*at >= due, "run {} at {at:?}, before {due:?}", i + 1);
        assert!(
            *at < due + Duration::from_millis(89),
            "run {} at {at:?}: drifted from {due:?}",
            i + 1
        );
    }
    Ok(())
}

#[test]
fn fixed_rate_skips_periods_missed_entirely_and_stays_on_the_grid() -> io::Result<()> {
    let period = Duration::from_millis(100);
    let mut h = Harness::new(Runs::new())?;
    let start = h.reactor().now();
    h.reactor().cx().every_fixed_rate(period, move |cx| {
        let at = cx.now() - start;
        cx.app().push(at);
        true
    });
    // 350 ms in one step: one late run (due at 100), not three in a burst.
    h.advance(Duration::from_millis(350))?;
    assert_eq!(h.app().len(), 1);
    h.advance(Duration::from_millis(49))?;
    assert_eq!(
        h.app().len(),
        1,
        "ran before the grid's next point (400 ms)"
    );
    h.advance(Duration::from_millis(1))?;
    let ms = |n| Duration::from_millis(n);
    assert_eq!(*h.app(), vec![ms(350), ms(400)]);
    Ok(())
}

#[test]
fn fixed_delay_counts_each_period_from_the_run_before() -> io::Result<()> {
    let delay = Duration::from_millis(100);
    let mut h = Harness::new(Runs::new())?;
    let start = h.reactor().now();
    let task = h.reactor().cx().every_fixed_delay(delay, move |cx| {
        let at = cx.now() - start;
        cx.app().push(at);
        true
    });
    let mut step = 0;
    while h.app().len() < 50 {
        h.advance(Duration::from_millis(STEPS_MS[step % STEPS_MS.len()]))?;
        step += 1;
    }
    let runs = h.app().clone();
    assert!(runs[0] >= delay);
    for pair in runs.windows(2) {
        assert!(
            pair[1] - pair[0] >= delay,
            "runs {pair:?} closer than the delay"
        );
    }
    // The lateness added up: the 50th run is well past 50 periods.
    assert!(runs[49] > delay * 50, "{:?}", runs[49]);
    // Cancelled by id: no more runs.
    assert!(h.reactor().cx().cancel(task));
    h.advance(Duration::from_secs(1))?;
    assert_eq!(h.app().len(), 50);
    Ok(())
}

#[test]
fn every_is_fixed_rate_and_cancel_stops_it() -> io::Result<()> {
    let mut h = Harness::new(Runs::new())?;
    let start = h.reactor().now();
    let task = h
        .reactor()
        .cx()
        .every(Duration::from_millis(10), move |cx| {
            let at = cx.now() - start;
            cx.app().push(at);
            true
        });
    for _ in 0..10 {
        h.advance(Duration::from_millis(7))?;
    }
    let ms = |n| Duration::from_millis(n);
    // Due at 10, 20, …, 70; the clock reached them at 14, 21, 35, 42, 56, 63, 70.
    assert_eq!(
        *h.app(),
        vec![ms(14), ms(21), ms(35), ms(42), ms(56), ms(63), ms(70)]
    );
    assert!(h.reactor().cx().cancel(task));
    assert!(!h.reactor().cx().cancel(task), "cancelled twice");
    h.advance(ms(100))?;
    assert_eq!(h.app().len(), 7);
    Ok(())
}
