//! Unit tests of the wheel: boundaries, order, wake-ups, stale keys and allocation.

use super::*;
use crate::level::{level_range, LEVELS};

/// Sleeps from one `next_deadline` to the next until `key` fires; returns the tick it fired
/// at and how many wake-ups it took.
fn run_until_fired(wheel: &mut Wheel<u32>, key: TimerKey) -> (Tick, usize) {
    let mut wakeups = 0;
    loop {
        let next = wheel.next_deadline().expect("the timer is still armed");
        wakeups += 1;
        while let Some((fired, _)) = wheel.poll(next) {
            if fired == key {
                return (next, wakeups);
            }
        }
    }
}

const DISTANCES: [Tick; 22] = [
    1,
    2,
    62,
    63,
    64,
    65,
    4_095,
    4_096,
    4_097,
    262_143,
    262_144,
    16_777_216,
    1_073_741_823,
    1_073_741_824,
    RANGE - 1,
    RANGE,
    RANGE + 1,
    2 * RANGE - 1,
    2 * RANGE,
    1_000 * RANGE + 12_345,
    u64::MAX / 2,
    u64::MAX / 2 + 1,
];

#[test]
fn fires_exactly_at_each_boundary_never_early() {
    for start in [0, 1, 63, 64, 4_000, 4_096, RANGE - 3, RANGE + 77] {
        for distance in DISTANCES {
            let mut wheel = Wheel::new();
            assert_eq!(wheel.poll(start), None);
            let deadline = start + distance;
            let key = wheel.insert(deadline, 7);
            assert!(wheel.next_deadline().unwrap() <= deadline);
            // Never early, even when polled one tick before.
            assert_eq!(
                wheel.poll(deadline - 1),
                None,
                "start {start} distance {distance}"
            );
            assert_eq!(wheel.elapsed(), deadline - 1);
            assert_eq!(wheel.next_deadline(), Some(deadline));
            assert_eq!(wheel.poll(deadline), Some((key, 7)));
            assert_eq!(wheel.poll(deadline), None);
            assert!(wheel.is_empty());
        }
    }
}

#[test]
fn sleeping_until_next_deadline_takes_few_wakeups() {
    for distance in DISTANCES {
        let mut wheel = Wheel::new();
        let key = wheel.insert(distance, 1);
        let (at, wakeups) = run_until_fired(&mut wheel, key);
        assert_eq!(at, distance);
        // One wake-up per level on the way down, plus one for leaving the far list.
        assert!(
            wakeups <= LEVELS + 1,
            "distance {distance}: {wakeups} wake-ups"
        );
    }
}

#[test]
fn one_big_jump_fires_everything_in_order() {
    let mut wheel = Wheel::new();
    let mut expected: Vec<(Tick, usize)> =
        DISTANCES.iter().enumerate().map(|(i, &d)| (d, i)).collect();
    for &(deadline, i) in expected.iter().rev() {
        wheel.insert(deadline, i);
    }
    expected.sort();
    let fired: Vec<usize> = wheel.advance(u64::MAX / 2 + 1).map(|(_, i)| i).collect();
    assert_eq!(fired, expected.iter().map(|&(_, i)| i).collect::<Vec<_>>());
    assert_eq!(wheel.elapsed(), u64::MAX / 2 + 1);
}

#[test]
fn the_last_ticks_of_tick() {
    let mut wheel = Wheel::new();
    let a = wheel.insert(u64::MAX, 1);
    let b = wheel.insert(u64::MAX - 1, 2);
    assert_eq!(wheel.poll(u64::MAX - 2), None);
    assert_eq!(wheel.poll(u64::MAX - 1), Some((b, 2)));
    assert_eq!(wheel.poll(u64::MAX - 1), None);
    assert_eq!(wheel.next_deadline(), Some(u64::MAX));
    assert_eq!(wheel.poll(u64::MAX), Some((a, 1)));
    assert_eq!(wheel.poll(u64::MAX), None);
    // A slack window is cut at the end of time.
    wheel.insert_with_slack(u64::MAX, 10, 3);
    assert_eq!(wheel.poll(u64::MAX).map(|(_, v)| v), Some(3));
}

#[test]
fn past_and_present_deadlines_fire_on_the_next_poll() {
    let mut wheel = Wheel::new();
    assert_eq!(wheel.poll(1_000), None);
    wheel.insert(0, 1);
    wheel.insert(1_000, 2);
    wheel.insert(999, 3);
    assert_eq!(wheel.next_deadline(), Some(1_000));
    // In the order they were armed: they all became due at 1,000.
    let fired: Vec<u32> = wheel.advance(0).map(|(_, v)| v).collect();
    assert_eq!(fired, [1, 2, 3]);
    assert_eq!(wheel.elapsed(), 1_000);
}

#[test]
fn now_before_elapsed_counts_as_elapsed() {
    let mut wheel = Wheel::new();
    assert_eq!(wheel.poll(500), None);
    wheel.insert(501, ());
    assert_eq!(wheel.poll(10), None);
    assert_eq!(wheel.elapsed(), 500);
    assert!(wheel.poll(501).is_some());
}

#[test]
fn equal_deadlines_fire_in_arming_order_across_levels() {
    let mut wheel = Wheel::new();
    // Armed at tick 0, far enough to sit on level 2.
    wheel.insert(5_000, 'a');
    let b = wheel.insert(5_000, 'b');
    wheel.insert(4_999, 'x');
    assert_eq!(wheel.poll(4_990), None);
    // Armed close by: straight into level 0, after the two above cascaded down.
    wheel.insert(5_000, 'c');
    // A reset counts as arming again.
    assert!(wheel.reset(b, 5_000));
    let fired: String = wheel.advance(6_000).map(|(_, v)| v).collect();
    assert_eq!(fired, "xacb");
}

#[test]
fn stale_keys_touch_nothing() {
    let mut wheel = Wheel::new();
    let fired = wheel.insert(10, 1);
    let cancelled = wheel.insert(20, 2);
    assert_eq!(wheel.cancel(cancelled), Some(2));
    assert_eq!(wheel.poll(10), Some((fired, 1)));
    // Both indices get reused by new timers.
    let c = wheel.insert(30, 3);
    let d = wheel.insert(40, 4);
    for stale in [fired, cancelled] {
        assert_eq!(wheel.cancel(stale), None);
        assert!(!wheel.reset(stale, 11));
        assert_eq!(wheel.get(stale), None);
        assert_eq!(wheel.deadline(stale), None);
    }
    assert_eq!(wheel.len(), 2);
    assert_eq!(wheel.deadline(c), Some(30));
    assert_eq!(wheel.get(d), Some(&4));
    let fired: Vec<_> = wheel.advance(100).collect();
    assert_eq!(fired, [(c, 3), (d, 4)]);
}

#[test]
fn reset_moves_a_timer_both_ways_and_out_of_due() {
    let mut wheel = Wheel::new();
    let key = wheel.insert(100, ());
    assert!(wheel.reset(key, 5_000_000));
    assert_eq!(wheel.poll(4_999_999), None);
    assert!(wheel.reset(key, 5_000_010));
    assert_eq!(wheel.poll(5_000_009), None);
    // Reset into the past: due now; reset again: no longer due.
    assert!(wheel.reset(key, 1));
    assert_eq!(wheel.next_deadline(), Some(5_000_009));
    assert!(wheel.reset(key, 5_000_100));
    assert_eq!(wheel.poll(5_000_099), None);
    assert_eq!(wheel.deadline(key), Some(5_000_100));
    assert_eq!(wheel.poll(5_000_100), Some((key, ())));
}

#[test]
fn a_cancelled_far_timer_costs_one_early_wakeup() {
    let mut wheel = Wheel::new();
    let near_far = wheel.insert(3 * RANGE + 5, 1);
    let far = wheel.insert(5 * RANGE + 5, 2);
    wheel.cancel(near_far);
    assert_eq!(wheel.next_deadline(), Some(3 * RANGE));
    assert_eq!(wheel.poll(3 * RANGE), None);
    assert_eq!(wheel.next_deadline(), Some(5 * RANGE));
    assert_eq!(run_until_fired(&mut wheel, far).0, 5 * RANGE + 5);
    // Emptying the far list by cancelling forgets its minimum.
    let key = wheel.insert(9 * RANGE, 3);
    wheel.cancel(key);
    assert_eq!(wheel.next_deadline(), None);
}

#[test]
fn slack_collapses_nearby_timeouts_into_one_wakeup() {
    let mut wheel = Wheel::new();
    let mut keys = Vec::new();
    for armed in 0..1_000 {
        assert_eq!(wheel.poll(armed), None);
        keys.push(wheel.insert_with_slack(armed + 30_000, 1_000, armed));
    }
    // Every timeout is reset once, keeping its slack.
    for (armed, &key) in keys.iter().enumerate() {
        assert!(wheel.reset(key, 1_000 + armed as Tick + 30_000));
    }
    let mut wakeups = 0;
    let mut fired = 0;
    while let Some(next) = wheel.next_deadline() {
        wakeups += 1;
        for (key, _) in wheel.advance(next) {
            let deadline = 1_000 + 30_000 + keys.iter().position(|&k| k == key).unwrap();
            assert!((deadline as Tick..=deadline as Tick + 1_000).contains(&next));
            fired += 1;
        }
    }
    assert_eq!(fired, 1_000);
    assert!(wakeups <= 2 * LEVELS, "{wakeups} wake-ups");
}

#[test]
fn steady_state_allocates_nothing() {
    let mut wheel = Wheel::with_capacity(64);
    let capacity = wheel.entries.capacity();
    let mut now = 0;
    for round in 0..10_000u64 {
        let keys: Vec<TimerKey> = (0..64)
            .map(|i| wheel.insert(now + 1 + (i * round) % level_range(2), i))
            .collect();
        for key in keys.iter().step_by(2) {
            wheel.reset(*key, now + 7);
        }
        for key in keys.iter().skip(1).step_by(4) {
            wheel.cancel(*key);
        }
        now += level_range(2);
        while wheel.poll(now).is_some() {}
        assert!(wheel.is_empty());
    }
    assert_eq!(wheel.entries.capacity(), capacity);
}

/// An empty wheel answers at once (no scan of its levels) yet still moves to `now`, so a
/// timer armed after a long empty time is placed from there and fires at its deadline, not
/// before and not a level's width late.
#[test]
fn an_empty_wheel_moves_to_now_and_places_later_timers_from_there() {
    let mut wheel = Wheel::new();
    assert_eq!(wheel.next_deadline(), None);
    let far = 7 * level_range(3) + 12_345;
    assert!(wheel.poll(far).is_none());
    assert_eq!(wheel.elapsed(), far);
    wheel.insert(far + 5, "due");
    assert_eq!(wheel.next_deadline(), Some(far + 5));
    assert!(wheel.poll(far + 4).is_none());
    assert_eq!(wheel.poll(far + 5).map(|(_, v)| v), Some("due"));
    assert!(wheel.is_empty());
}
