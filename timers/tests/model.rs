//! Model check: random sequences of operations on a `Wheel`, compared step by step with a
//! plain reference that keeps every timer in a `BTreeMap` (`evdrive_timers::fuzz::Checked`, the same
//! reference the fuzz target drives from bytes; here the operations are structured, so proptest
//! shrinks a failure to a short readable sequence).

use evdrive_timers::fuzz::{Checked, BOUNDARIES, RANGE, SHARED};
use evdrive_timers::Tick;
use proptest::prelude::*;

/// A deadline or a `now`, relative to the wheel's current tick where that makes sense.
#[derive(Clone, Debug)]
enum When {
    /// This many ticks before `elapsed()` (cut at 0).
    Past(Tick),
    /// `elapsed()` itself.
    Now,
    /// A few ticks ahead: many timers share a deadline.
    Near(Tick),
    /// Exactly on or next to a slot or level boundary ahead.
    Boundary(usize, i8),
    /// Up to a few days ahead.
    Later(Tick),
    /// Beyond the levels' range.
    Beyond(Tick),
    /// Around `u64::MAX / 2`, far beyond the range.
    Huge(i32),
    /// The last tick.
    Max,
    /// One of a few absolute ticks, so timers armed at different times share deadlines.
    Shared(usize),
}

impl When {
    fn resolve(&self, elapsed: Tick) -> Tick {
        match *self {
            When::Past(d) => elapsed.saturating_sub(d),
            When::Now => elapsed,
            When::Near(d) | When::Later(d) | When::Beyond(d) => elapsed.saturating_add(d),
            When::Boundary(i, delta) => {
                elapsed.saturating_add_signed(BOUNDARIES[i] as i64 + i64::from(delta))
            }
            When::Huge(delta) => (u64::MAX / 2).saturating_add_signed(i64::from(delta)),
            When::Max => u64::MAX,
            When::Shared(i) => SHARED[i],
        }
    }
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        1 => (0..200u64).prop_map(When::Past),
        1 => Just(When::Now),
        4 => (1..100u64).prop_map(When::Near),
        2 => (0..BOUNDARIES.len(), -1..=1i8).prop_map(|(i, d)| When::Boundary(i, d)),
        2 => (1..400_000_000u64).prop_map(When::Later),
        1 => (RANGE..4 * RANGE).prop_map(When::Beyond),
        1 => (-1_000..1_000i32).prop_map(When::Huge),
        1 => Just(When::Max),
        1 => (0..SHARED.len()).prop_map(When::Shared),
    ]
}

fn slack() -> impl Strategy<Value = Tick> {
    prop_oneof![
        Just(0),
        1..100u64,
        1..100_000u64,
        (1..RANGE),
        Just(u64::MAX)
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Insert(When),
    InsertWithSlack(When, Tick),
    /// Picks a key among all ever handed out, live or stale.
    Cancel(usize),
    Reset(usize, When),
    /// Polls until `None`.
    Sweep(When),
    /// One poll, as a loop does before arming or cancelling timers in between.
    PollOne(When),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => when().prop_map(Op::Insert),
        2 => (when(), slack()).prop_map(|(w, s)| Op::InsertWithSlack(w, s)),
        2 => any::<usize>().prop_map(Op::Cancel),
        3 => (any::<usize>(), when()).prop_map(|(k, w)| Op::Reset(k, w)),
        3 => when().prop_map(Op::Sweep),
        2 => when().prop_map(Op::PollOne),
    ]
}

/// Applies the operations to a wheel in lockstep with the reference (the same checks the fuzz
/// target runs), then checks stale keys and fires everything left at the end of time.
fn run(ops: Vec<Op>) {
    let mut checked = Checked::new();
    for op in ops {
        let elapsed = checked.elapsed();
        match op {
            Op::Insert(w) => checked.insert(w.resolve(elapsed), 0),
            Op::InsertWithSlack(w, slack) => checked.insert(w.resolve(elapsed), slack),
            Op::Cancel(k) => checked.cancel(k),
            Op::Reset(k, w) => checked.reset(k, w.resolve(elapsed)),
            Op::Sweep(w) => checked.sweep(w.resolve(elapsed)),
            Op::PollOne(w) => checked.poll_one(w.resolve(elapsed)),
        }
    }
    checked.finish();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn wheel_matches_the_reference(ops in prop::collection::vec(op(), 1..200)) {
        run(ops);
    }
}
