//! Model check: random sequences of operations on a `Wheel`, compared step by step with a
//! plain reference that keeps every timer in a `BTreeMap`.

use std::collections::BTreeMap;

use proptest::prelude::*;
use timers::{Tick, TimerKey, Wheel};

/// Ticks covered by the wheel's six levels of 64 slots.
const RANGE: Tick = 1 << 36;

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

const BOUNDARIES: [Tick; 8] = [
    63,
    64,
    4_095,
    4_096,
    262_144,
    16_777_216,
    1 << 30,
    RANGE - 1,
];
const SHARED: [Tick; 5] = [100, 5_000, 70_000, RANGE + 3, u64::MAX / 2];

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

/// What the reference knows about one timer it armed.
#[derive(Debug)]
struct Timer {
    key: TimerKey,
    deadline: Tick,
    slack: Tick,
    /// The tick it became due at for ordering: its deadline, or `elapsed()` when it was armed
    /// if that was later.
    due: Tick,
    /// When it was last armed (inserted or reset), counting operations.
    armed: u64,
}

impl Timer {
    /// The last tick it may fire at.
    fn latest(&self) -> Tick {
        self.deadline.saturating_add(self.slack)
    }
}

/// The reference: live timers by id, and the keys of every id ever handed out.
#[derive(Default)]
struct Model {
    live: BTreeMap<u64, Timer>,
    keys: Vec<TimerKey>,
    armings: u64,
    /// `(due, armed)` of the last zero-slack timer that fired: they must come out in order.
    last_fired: Option<(Tick, u64)>,
}

impl Model {
    fn arm(&mut self, wheel: &mut Wheel<u64>, deadline: Tick, slack: Tick) {
        let id = self.keys.len() as u64;
        let key = wheel.insert_with_slack(deadline, slack, id);
        self.armings += 1;
        let due = deadline.max(wheel.elapsed());
        self.live.insert(
            id,
            Timer {
                key,
                deadline,
                slack,
                due,
                armed: self.armings,
            },
        );
        self.keys.push(key);
    }

    /// Checks one value handed out by `poll(now)` that started at `elapsed_before`.
    fn fired(&mut self, key: TimerKey, id: u64, now: Tick, elapsed_before: Tick) {
        let timer = self
            .live
            .remove(&id)
            .expect("fired a timer that is not armed");
        assert_eq!(timer.key, key);
        assert!(
            timer.deadline <= now.max(elapsed_before),
            "fired early: {timer:?} at {now}"
        );
        if timer.slack == 0 {
            let order = (timer.due, timer.armed);
            if let Some(last) = self.last_fired {
                assert!(last < order, "out of order: {last:?} then {order:?}");
            }
            self.last_fired = Some(order);
        }
    }

    fn check(&self, wheel: &Wheel<u64>) {
        assert_eq!(wheel.len(), self.live.len());
        assert_eq!(wheel.is_empty(), self.live.is_empty());
        let next = wheel.next_deadline();
        assert_eq!(next.is_some(), !self.live.is_empty());
        if let Some(next) = next {
            let latest = self.live.values().map(Timer::latest).min().unwrap();
            assert!(next >= wheel.elapsed());
            assert!(
                next <= latest.max(wheel.elapsed()),
                "sleeps past a deadline: {next}"
            );
        }
        for (&id, timer) in &self.live {
            assert_eq!(wheel.get(timer.key), Some(&id));
            assert_eq!(wheel.deadline(timer.key), Some(timer.deadline));
        }
    }
}

fn run(ops: Vec<Op>) {
    let mut wheel = Wheel::new();
    let mut model = Model::default();
    for op in ops {
        let elapsed = wheel.elapsed();
        match op {
            Op::Insert(w) => model.arm(&mut wheel, w.resolve(elapsed), 0),
            Op::InsertWithSlack(w, slack) => model.arm(&mut wheel, w.resolve(elapsed), slack),
            Op::Cancel(k) if !model.keys.is_empty() => {
                let id = (k % model.keys.len()) as u64;
                let key = model.keys[id as usize];
                let expected = model.live.remove(&id).map(|_| id);
                assert_eq!(wheel.cancel(key), expected);
                assert_eq!(wheel.cancel(key), None);
            }
            Op::Reset(k, w) if !model.keys.is_empty() => {
                let id = (k % model.keys.len()) as u64;
                let key = model.keys[id as usize];
                let deadline = w.resolve(elapsed);
                let live = model.live.contains_key(&id);
                assert_eq!(wheel.reset(key, deadline), live);
                if let Some(timer) = model.live.get_mut(&id) {
                    model.armings += 1;
                    timer.deadline = deadline;
                    timer.due = deadline.max(elapsed);
                    timer.armed = model.armings;
                }
            }
            Op::Cancel(_) | Op::Reset(..) => {}
            Op::Sweep(w) => {
                let now = w.resolve(elapsed);
                let mut elapsed_before = elapsed;
                while let Some((key, id)) = wheel.poll(now) {
                    model.fired(key, id, now, elapsed_before);
                    elapsed_before = wheel.elapsed();
                }
                let now = now.max(elapsed);
                assert_eq!(wheel.elapsed(), now);
                // Nothing that had to fire by `now` is left.
                for timer in model.live.values() {
                    assert!(
                        timer.latest() > now,
                        "fired late or never: {timer:?} at {now}"
                    );
                }
            }
            Op::PollOne(w) => {
                let now = w.resolve(elapsed);
                match wheel.poll(now) {
                    Some((key, id)) => model.fired(key, id, now, elapsed),
                    None => assert_eq!(wheel.elapsed(), now.max(elapsed)),
                }
            }
        }
        model.check(&wheel);
    }
    // Stale keys match nothing, and the end of time fires everything left.
    for (id, &key) in model.keys.iter().enumerate() {
        if !model.live.contains_key(&(id as u64)) {
            assert_eq!(wheel.get(key), None);
            assert!(!wheel.reset(key, 0));
        }
    }
    let elapsed = wheel.elapsed();
    while let Some((key, id)) = wheel.poll(u64::MAX) {
        model.fired(key, id, u64::MAX, elapsed);
    }
    assert!(model.live.is_empty() && wheel.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn wheel_matches_the_reference(ops in prop::collection::vec(op(), 1..200)) {
        run(ops);
    }
}
