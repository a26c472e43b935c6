//! The wheel against a reference model, driven by arbitrary bytes (feature `fuzz`).
//!
//! [`model`] reads its input as a script of operations on a [`Wheel`] — insert (with or without
//! slack), cancel, reset, one poll, a sweep of polls — and checks after every step that the
//! wheel agrees with a plain reference keeping every timer in a `BTreeMap`: nothing fires early,
//! nothing fires late, zero-slack timers fire in deadline order (ties in the order they were
//! armed), stale keys match nothing, and `next_deadline` never sleeps past a deadline. The fuzz
//! target `timer_wheel` is one call to it; the crate's tests replay the inputs it found.
//!
//! ```
//! // Insert at tick 5, insert at a slot boundary, sweep to tick 100.
//! evdrive_timers::fuzz::model(&[0, 2, 5, 0, 3, 1, 1, 4, 2, 100]);
//! ```

use std::collections::BTreeMap;

use crate::{Tick, TimerKey, Wheel};

/// Ticks covered by the wheel's six levels of 64 slots.
pub const RANGE: Tick = 1 << 36;

/// Deadlines on or next to slot and level boundaries, relative to the wheel's tick.
pub const BOUNDARIES: [Tick; 8] = [
    63,
    64,
    4_095,
    4_096,
    262_144,
    16_777_216,
    1 << 30,
    RANGE - 1,
];

/// Absolute ticks, so timers armed at different times share deadlines.
pub const SHARED: [Tick; 5] = [100, 5_000, 70_000, RANGE + 3, u64::MAX / 2];

/// Reads script bytes; zeros past the end.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// `n` bytes as a big-endian number.
    fn number(&mut self, n: usize) -> u64 {
        (0..n).fold(0, |acc, _| (acc << 8) | u64::from(self.byte()))
    }

    /// A tick relative to `elapsed`, read from a kind byte and its parameters.
    fn when(&mut self, elapsed: Tick) -> Tick {
        match self.byte() % 9 {
            // In the past.
            0 => elapsed.saturating_sub(self.number(1)),
            1 => elapsed,
            // A few ticks ahead: many timers share a deadline.
            2 => elapsed.saturating_add(1 + self.number(1) % 100),
            3 => {
                let b = BOUNDARIES[usize::from(self.byte()) % BOUNDARIES.len()];
                let delta = i64::from(self.byte() % 3) - 1;
                elapsed.saturating_add_signed(b as i64 + delta)
            }
            // Up to days ahead.
            4 => elapsed.saturating_add(1 + self.number(4) % 400_000_000),
            // Beyond the levels' range.
            5 => elapsed.saturating_add(RANGE + self.number(5) % (3 * RANGE)),
            6 => (u64::MAX / 2).saturating_add_signed(i64::from(self.number(2) as i16)),
            7 => u64::MAX,
            _ => SHARED[usize::from(self.byte()) % SHARED.len()],
        }
    }

    /// A slack: none, small, large, or unbounded.
    fn slack(&mut self) -> Tick {
        match self.byte() % 5 {
            0 => 0,
            1 => 1 + self.number(1) % 100,
            2 => 1 + self.number(3) % 100_000,
            3 => 1 + self.number(5) % RANGE,
            _ => u64::MAX,
        }
    }
}

/// What the reference knows about one timer it armed.
#[derive(Debug)]
struct Timer {
    key: TimerKey,
    deadline: Tick,
    slack: Tick,
    /// The tick it became due at for ordering: its deadline, or the wheel's tick when it was
    /// armed if that was later.
    due: Tick,
    /// When it was last armed (inserted or reset), counting armings.
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
        let armed = self.armings;
        self.live.insert(
            id,
            Timer {
                key,
                deadline,
                slack,
                due,
                armed,
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
        assert_eq!(timer.key, key, "fired under another key");
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

    /// Checks everything the wheel reports against the reference.
    fn check(&self, wheel: &Wheel<u64>) {
        assert_eq!(wheel.len(), self.live.len());
        assert_eq!(wheel.is_empty(), self.live.is_empty());
        let next = wheel.next_deadline();
        assert_eq!(next.is_some(), !self.live.is_empty());
        if let Some(next) = next {
            let latest = self.live.values().map(Timer::latest).min().unwrap_or(0);
            assert!(next >= wheel.elapsed(), "next deadline in the past");
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

    /// The id and key of one of the timers ever armed, picked by `pick`.
    fn pick(&self, pick: usize) -> Option<(u64, TimerKey)> {
        if self.keys.is_empty() {
            return None;
        }
        let id = pick % self.keys.len();
        Some((id as u64, self.keys[id]))
    }
}

/// A wheel driven in lockstep with the reference: every operation is applied to both and
/// checked, so a fuzz script (see [`model`]) and a property test of structured operations drive
/// the same checks.
///
/// ```
/// use evdrive_timers::fuzz::Checked;
/// let mut c = Checked::new();
/// c.insert(10, 0);
/// c.insert(5_000, 100);
/// c.sweep(20);
/// c.finish();
/// ```
#[derive(Default)]
pub struct Checked {
    wheel: Wheel<u64>,
    model: Model,
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("live", &self.model.live.len())
            .finish_non_exhaustive()
    }
}

impl Checked {
    /// An empty wheel at tick 0 and an empty reference.
    pub fn new() -> Self {
        Checked::default()
    }

    /// The wheel's tick.
    pub fn elapsed(&self) -> Tick {
        self.wheel.elapsed()
    }

    /// Arms a timer at `deadline` with `slack`.
    pub fn insert(&mut self, deadline: Tick, slack: Tick) {
        self.model.arm(&mut self.wheel, deadline, slack);
        self.model.check(&self.wheel);
    }

    /// Cancels one of the timers ever armed (live or stale), picked by `pick`.
    pub fn cancel(&mut self, pick: usize) {
        if let Some((id, key)) = self.model.pick(pick) {
            let expected = self.model.live.remove(&id).map(|_| id);
            assert_eq!(self.wheel.cancel(key), expected);
            assert_eq!(self.wheel.cancel(key), None, "cancelled twice");
        }
        self.model.check(&self.wheel);
    }

    /// Resets one of the timers ever armed (live or stale), picked by `pick`, to `deadline`.
    pub fn reset(&mut self, pick: usize, deadline: Tick) {
        let elapsed = self.wheel.elapsed();
        if let Some((id, key)) = self.model.pick(pick) {
            let live = self.model.live.contains_key(&id);
            assert_eq!(self.wheel.reset(key, deadline), live);
            self.model.armings += 1;
            let armed = self.model.armings;
            if let Some(timer) = self.model.live.get_mut(&id) {
                timer.deadline = deadline;
                timer.due = deadline.max(elapsed);
                timer.armed = armed;
            }
        }
        self.model.check(&self.wheel);
    }

    /// Polls until nothing is due at `now`, checking each timer handed out and that nothing
    /// that had to fire by `now` is left.
    pub fn sweep(&mut self, now: Tick) {
        let elapsed = self.wheel.elapsed();
        let mut elapsed_before = elapsed;
        while let Some((key, id)) = self.wheel.poll(now) {
            self.model.fired(key, id, now, elapsed_before);
            elapsed_before = self.wheel.elapsed();
        }
        let now = now.max(elapsed);
        assert_eq!(self.wheel.elapsed(), now);
        for timer in self.model.live.values() {
            assert!(
                timer.latest() > now,
                "fired late or never: {timer:?} at {now}"
            );
        }
        self.model.check(&self.wheel);
    }

    /// Polls once at `now`.
    pub fn poll_one(&mut self, now: Tick) {
        let elapsed = self.wheel.elapsed();
        match self.wheel.poll(now) {
            Some((key, id)) => self.model.fired(key, id, now, elapsed),
            None => assert_eq!(self.wheel.elapsed(), now.max(elapsed)),
        }
        self.model.check(&self.wheel);
    }

    /// Checks that stale keys match nothing, then fires everything left at the end of time.
    pub fn finish(mut self) {
        for (id, &key) in self.model.keys.iter().enumerate() {
            if !self.model.live.contains_key(&(id as u64)) {
                assert_eq!(self.wheel.get(key), None, "a stale key matched");
                assert!(!self.wheel.reset(key, 0), "a stale key was reset");
            }
        }
        let elapsed = self.wheel.elapsed();
        while let Some((key, id)) = self.wheel.poll(u64::MAX) {
            self.model.fired(key, id, u64::MAX, elapsed);
        }
        assert!(
            self.model.live.is_empty() && self.wheel.is_empty(),
            "timers lost"
        );
    }
}

/// Runs the operations scripted by `data` on a fresh [`Wheel`] and a reference model, checking
/// they agree after every step, then fires everything left at the end of time.
///
/// Each operation is a byte (modulo 6: insert, insert with slack, cancel, reset, sweep, one
/// poll) followed by its parameters: a tick kind and its bytes (in the past, now, near, on a
/// level boundary, days ahead, beyond the levels, around `u64::MAX / 2`, the last tick, or one
/// of a few shared ticks), a slack, or a byte picking one of the timers ever armed.
///
/// # Panics
///
/// If the wheel and the model disagree: a timer fired early, late, twice, out of order or
/// under another key, a stale key matched, or a count or a deadline is wrong.
pub fn model(data: &[u8]) {
    let mut s = Bytes(data);
    let mut checked = Checked::new();
    while !s.0.is_empty() {
        let elapsed = checked.elapsed();
        match s.byte() % 6 {
            0 => {
                let deadline = s.when(elapsed);
                checked.insert(deadline, 0);
            }
            1 => {
                let deadline = s.when(elapsed);
                let slack = s.slack();
                checked.insert(deadline, slack);
            }
            2 => checked.cancel(usize::from(s.byte())),
            3 => {
                let pick = s.byte();
                let deadline = s.when(elapsed);
                checked.reset(usize::from(pick), deadline);
            }
            4 => {
                let now = s.when(elapsed);
                checked.sweep(now);
            }
            _ => {
                let now = s.when(elapsed);
                checked.poll_one(now);
            }
        }
    }
    checked.finish();
}
