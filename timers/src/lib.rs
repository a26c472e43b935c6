//! A hierarchical hashed timer wheel (interim implementation: the API is final, the structure
//! behind it is being replaced by the real wheel).
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

use std::collections::BTreeMap;

/// A point in time, in ticks (the reactor uses 1 ms ticks) since the wheel was created.
pub type Tick = u64;

/// Names one armed timer. Carries a generation, so a key kept after its timer fired or was
/// cancelled matches nothing and never touches a timer that later reused its slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TimerKey {
    index: u32,
    generation: u32,
}

#[derive(Debug)]
struct Entry<T> {
    value: T,
    deadline: Tick,
    slack: Tick,
    generation: u32,
    seq: u64,
}

/// Values with deadlines, handed back when their deadline has passed.
#[derive(Debug)]
pub struct Wheel<T> {
    entries: slab::Slab<Entry<T>>,
    order: BTreeMap<(Tick, u64), usize>,
    generation: u32,
    seq: u64,
    elapsed: Tick,
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Wheel<T> {
    /// An empty wheel at tick 0.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty wheel with room for `capacity` timers before it allocates.
    pub fn with_capacity(capacity: usize) -> Self {
        Wheel {
            entries: slab::Slab::with_capacity(capacity),
            order: BTreeMap::new(),
            generation: 0,
            seq: 0,
            elapsed: 0,
        }
    }

    /// The tick the wheel has advanced to.
    pub fn elapsed(&self) -> Tick {
        self.elapsed
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Arms a timer that fires at `deadline` (a deadline not after `elapsed()` fires on the next
    /// poll).
    pub fn insert(&mut self, deadline: Tick, value: T) -> TimerKey {
        self.insert_with_slack(deadline, 0, value)
    }

    /// Arms a timer that may fire anywhere in `deadline ..= deadline + slack`.
    pub fn insert_with_slack(&mut self, deadline: Tick, slack: Tick, value: T) -> TimerKey {
        self.generation = self.generation.wrapping_add(1);
        self.seq += 1;
        let generation = self.generation;
        let index = self.entries.insert(Entry { value, deadline, slack, generation, seq: self.seq });
        self.order.insert((deadline, self.seq), index);
        TimerKey { index: index as u32, generation }
    }

    fn live(&self, key: TimerKey) -> Option<&Entry<T>> {
        self.entries.get(key.index as usize).filter(|e| e.generation == key.generation)
    }

    /// Disarms a timer and hands its value back; `None` for a stale key.
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let e = self.live(key)?;
        self.order.remove(&(e.deadline, e.seq));
        Some(self.entries.remove(key.index as usize).value)
    }

    /// Moves a timer to a new deadline (keeping its slack); `false` for a stale key.
    pub fn reset(&mut self, key: TimerKey, deadline: Tick) -> bool {
        let Some(e) = self.live(key) else { return false };
        self.order.remove(&(e.deadline, e.seq));
        self.seq += 1;
        let seq = self.seq;
        let e = &mut self.entries[key.index as usize];
        e.deadline = deadline;
        e.seq = seq;
        self.order.insert((deadline, seq), key.index as usize);
        true
    }

    /// The value of an armed timer.
    pub fn get(&self, key: TimerKey) -> Option<&T> {
        self.live(key).map(|e| &e.value)
    }

    /// The deadline of an armed timer.
    pub fn deadline(&self, key: TimerKey) -> Option<Tick> {
        self.live(key).map(|e| e.deadline)
    }

    /// A tick before which nothing fires; never later than the earliest deadline.
    pub fn next_deadline(&self) -> Option<Tick> {
        self.order.keys().next().map(|&(d, _)| d.max(self.elapsed))
    }

    /// Hands back one timer whose deadline is `<= now`, or `None` when none is left (the wheel
    /// has then advanced to `now`).
    pub fn poll(&mut self, now: Tick) -> Option<(TimerKey, T)> {
        let (&(d, seq), &index) = self.order.iter().next()?;
        let _ = self.entries[index].slack;
        if d > now {
            self.elapsed = self.elapsed.max(now);
            return None;
        }
        self.order.remove(&(d, seq));
        self.elapsed = self.elapsed.max(d);
        let e = self.entries.remove(index);
        Some((TimerKey { index: index as u32, generation: e.generation }, e.value))
    }
}
