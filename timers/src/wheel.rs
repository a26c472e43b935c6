//! The wheel itself: filing, cancelling, resetting and expiring timers.

use slab::Slab;
use std::num::NonZeroU32;

use crate::entry::{fire_tick, Entry, Home, NIL};
use crate::level::{level_for, slot_for, Level, LEVELS, RANGE};
use crate::list::List;
use crate::{Tick, TimerKey};

/// Values with deadlines, handed back once their deadline has passed.
///
/// The wheel has no clock: the caller says what time it is by passing a [`Tick`] to
/// [`poll`](Wheel::poll), and the wheel never looks at any other clock, so tests need none.
///
/// # Contract
///
/// - **Never early.** `poll(now)` hands back a timer only if its deadline is `<= now`.
/// - **At most one tick late.** A zero-slack timer comes out of the first `poll(now)` with
///   `now >= deadline`; with 1 ms ticks and a caller that rounds the current time down, that is
///   at most one tick after the deadline, plus the caller's own latency.
/// - **Slack.** A timer armed with [`insert_with_slack`](Wheel::insert_with_slack) fires at one
///   tick chosen inside `deadline ..= deadline + slack`, and comes out of the first poll that
///   reaches that tick.
/// - **Past deadlines.** A timer armed (or reset) at or before [`elapsed`](Wheel::elapsed) is
///   due at once and comes out of the next poll.
/// - **Far deadlines.** Deadlines beyond the covered range (about 2.2 years of 1 ms ticks) are
///   kept, filed again when they come within range, and fire on time like any other.
/// - **Order.** Timers come out in non-decreasing order of the tick they became due at: their
///   deadline (the chosen tick, with slack), or `elapsed()` at the moment they were armed if that
///   was later. Timers due at the same tick come out in the order they were armed, where a
///   [`reset`](Wheel::reset) counts as arming again.
/// - **Stale keys.** A [`TimerKey`] whose timer fired or was cancelled matches nothing: `cancel`
///   and `get` give `None`, `reset` gives `false`, and no other timer is touched.
///
/// # Examples
///
/// ```
/// use evdrive_timers::Wheel;
///
/// let mut wheel = Wheel::new();
/// let idle = wheel.insert(30_000, "idle timeout");
/// wheel.insert(5, "retry");
///
/// // Activity on the connection: push its idle timeout back.
/// assert!(wheel.reset(idle, 40_000));
///
/// assert_eq!(wheel.next_deadline(), Some(5));
/// assert_eq!(wheel.poll(4), None);
/// assert_eq!(wheel.poll(5).map(|(_, v)| v), Some("retry"));
/// assert_eq!(wheel.poll(5), None);
///
/// assert_eq!(wheel.cancel(idle), Some("idle timeout"));
/// assert!(wheel.is_empty());
/// ```
#[derive(Debug)]
pub struct Wheel<T> {
    /// Every armed timer. A slab gives entries stable indices for the list links and reuses the
    /// room of fired and cancelled timers, so a wheel whose number of timers stays bounded stops
    /// allocating after warm-up.
    entries: Slab<Entry<T>>,
    /// Level `l` holds the timers that fire in the current `64^(l+1)`-tick block but not in the
    /// current `64^l`-tick slot. Boxed so that moving a `Wheel` moves a pointer, not 3 KiB.
    levels: Box<[Level; LEVELS]>,
    /// Timers whose tick has come (it is `<= elapsed`), waiting to be handed out by `poll`, in
    /// the order they became due.
    due: List,
    /// Timers whose tick lies outside the `RANGE`-tick block holding `elapsed`: too far away for
    /// any level. They are filed into the levels when `elapsed` reaches their block.
    far: List,
    /// Not later than the earliest tick in `far` (`Tick::MAX` when `far` is empty). Cancelling a
    /// far timer leaves it alone, so it may be early; walking `far` makes it exact again.
    far_min: Tick,
    /// The tick the wheel has advanced to. Invariant: an entry is in `due` exactly when its
    /// tick is at or before `elapsed`; any other entry is in the slot `level_for` and `slot_for`
    /// name for it seen from `elapsed`, or in `far` when its tick lies in a later `RANGE` block.
    elapsed: Tick,
    /// The generation given to the next armed timer, so that keys of freed entries go stale.
    generation: u32,
}

/// The next thing the wheel must do when time reaches `deadline`.
#[derive(Clone, Copy, Debug)]
enum Expiration {
    /// Empty `slot` of `level`: fire its due entries and cascade the rest to lower levels.
    Slot {
        level: usize,
        slot: usize,
        deadline: Tick,
    },
    /// `elapsed` enters the block of the earliest far entry: file far entries into the levels.
    Far { deadline: Tick },
}

impl Expiration {
    fn deadline(self) -> Tick {
        match self {
            Expiration::Slot { deadline, .. } | Expiration::Far { deadline } => deadline,
        }
    }
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
            entries: Slab::with_capacity(capacity),
            levels: Box::new(std::array::from_fn(|_| Level::new())),
            due: List::EMPTY,
            far: List::EMPTY,
            far_min: Tick::MAX,
            elapsed: 0,
            generation: 0,
        }
    }

    /// The tick the wheel has advanced to.
    ///
    /// After a [`poll`](Wheel::poll) that returned `None` this is the larger of its `now` and
    /// the tick before the call. While timers are still being handed out it may lag behind
    /// `now`: it is then the tick of the last batch of timers that became due.
    pub fn elapsed(&self) -> Tick {
        self.elapsed
    }

    /// Number of armed timers, including those due but not yet handed out.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Arms a timer that fires at `deadline` (a deadline not after `elapsed()` fires on the next
    /// poll).
    ///
    /// O(1); allocates only when the wheel holds more timers than ever before.
    ///
    /// # Panics
    ///
    /// If the wheel already holds `u32::MAX - 1` timers.
    pub fn insert(&mut self, deadline: Tick, value: T) -> TimerKey {
        self.insert_with_slack(deadline, 0, value)
    }

    /// Arms a timer that may fire anywhere in `deadline ..= deadline + slack`.
    ///
    /// The wheel picks the tick in that window that is a multiple of the largest power of two,
    /// so timers with overlapping windows fire together: an idle timeout of 30 s with 1 s of
    /// slack shares its wake-up with every other idle timeout armed in the same second or so.
    /// The window ends at `Tick::MAX`.
    ///
    /// # Panics
    ///
    /// If the wheel already holds `u32::MAX - 1` timers.
    pub fn insert_with_slack(&mut self, deadline: Tick, slack: Tick, value: T) -> TimerKey {
        // Generations skip zero, so that a key has a niche and `Option<TimerKey>` stays 8 bytes.
        self.generation = self.generation.wrapping_add(1).max(1);
        let generation = self.generation;
        let slack = slack.min(u32::MAX as Tick);
        let when = fire_tick(deadline, slack);
        let index = self.entries.insert(Entry {
            value,
            when,
            lead: (when - deadline) as u32,
            slack: slack as u32,
            generation,
            prev: NIL,
            next: NIL,
            home: Home::Far,
        });
        assert!(
            index < NIL as usize,
            "a timer wheel holds at most u32::MAX - 1 timers"
        );
        let index = index as u32;
        self.file(index);
        TimerKey {
            index,
            generation: NonZeroU32::new(generation).expect("generations skip zero"),
        }
    }

    /// The index of the live entry `key` names, if any.
    fn live(&self, key: TimerKey) -> Option<u32> {
        self.entries
            .get(key.index as usize)
            .filter(|e| e.generation == key.generation.get())
            .map(|_| key.index)
    }

    /// Disarms a timer and hands its value back; `None` for a stale key.
    ///
    /// O(1).
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let index = self.live(key)?;
        self.unlink(index);
        Some(self.entries.remove(index as usize).value)
    }

    /// Moves a timer to a new deadline (keeping its slack); `false` for a stale key.
    ///
    /// O(1). The key stays valid. For the order among timers due at the same tick, a reset
    /// counts as arming the timer anew.
    pub fn reset(&mut self, key: TimerKey, deadline: Tick) -> bool {
        let Some(index) = self.live(key) else {
            return false;
        };
        self.unlink(index);
        let entry = &mut self.entries[index as usize];
        entry.when = fire_tick(deadline, Tick::from(entry.slack));
        entry.lead = (entry.when - deadline) as u32;
        self.file(index);
        true
    }

    /// The value of an armed timer.
    pub fn get(&self, key: TimerKey) -> Option<&T> {
        self.live(key)
            .map(|index| &self.entries[index as usize].value)
    }

    /// The deadline of an armed timer, as given to `insert` or the last `reset`.
    pub fn deadline(&self, key: TimerKey) -> Option<Tick> {
        self.live(key).map(|index| {
            let entry = &self.entries[index as usize];
            entry.when - Tick::from(entry.lead)
        })
    }

    /// A tick before which nothing fires; never later than the earliest deadline.
    ///
    /// A loop that sleeps until this tick and then calls [`poll`](Wheel::poll) fires every
    /// timer on time. It is exact for timers in the lowest occupied level, which covers every
    /// timer due within the next 64 ticks. For a timer further away it may be earlier: it is
    /// then the tick at which the wheel must move that timer's slot down a level (cascade), and
    /// the poll at that tick hands out nothing but brings the next answer closer. Such early
    /// wake-ups are few: at most one per level on the way down to a timer. For a timer armed
    /// with slack it is the tick chosen inside its window, which is never before its deadline.
    ///
    /// `Some(elapsed())` while due timers wait to be handed out; `None` for an empty wheel.
    ///
    /// O(levels).
    pub fn next_deadline(&self) -> Option<Tick> {
        // No timer at all: what the scan of the levels below would find, without the scan (a
        // loop asks before every wait).
        if self.entries.is_empty() {
            return None;
        }
        if !self.due.is_empty() {
            return Some(self.elapsed);
        }
        self.next_expiration().map(Expiration::deadline)
    }

    /// Hands back one timer whose deadline is `<= now`, or `None` when none is left (the wheel
    /// has then advanced to `now`).
    ///
    /// Call it in a loop until it returns `None`; timers may be armed, reset and cancelled
    /// between calls. A `now` before [`elapsed`](Wheel::elapsed) counts as `elapsed()`. The
    /// order of the timers is described on [`Wheel`].
    ///
    /// Each call costs O(levels) plus O(1) per timer it moves down a level; time without timers
    /// costs nothing, however long.
    pub fn poll(&mut self, now: Tick) -> Option<(TimerKey, T)> {
        // No timer at all (so none due, every level and the far list empty): step 3 below at
        // once, without visiting the levels (a loop polls every turn).
        if self.entries.is_empty() {
            self.elapsed = self.elapsed.max(now);
            return None;
        }
        loop {
            // 1. Timers already due go first, in the order they became due.
            if let Some(index) = self.due.pop_front(&mut self.entries) {
                let entry = self.entries.remove(index as usize);
                return Some((
                    TimerKey {
                        index,
                        generation: NonZeroU32::new(entry.generation)
                            .expect("generations skip zero"),
                    },
                    entry.value,
                ));
            }
            // 2. Nothing due: visit the next slot (or the far list) if its time has come.
            match self.next_expiration() {
                Some(expiration) if expiration.deadline() <= now => self.expire(expiration),
                // 3. Nothing left up to `now`: the wheel stands at `now`. The invariant holds,
                //    because every level's next slot starts after `now`.
                _ => {
                    self.elapsed = self.elapsed.max(now);
                    return None;
                }
            }
        }
    }

    /// An iterator over every timer whose deadline is `<= now`, built on
    /// [`poll`](Wheel::poll).
    ///
    /// Timers the iterator was not asked for stay in the wheel: dropping it early loses nothing,
    /// the rest come out of the next poll. When it has returned `None`, the wheel stands at
    /// `now`.
    ///
    /// ```
    /// let mut wheel = evdrive_timers::Wheel::new();
    /// for (deadline, name) in [(30, "c"), (10, "a"), (20, "b"), (40, "d")] {
    ///     wheel.insert(deadline, name);
    /// }
    /// let fired: Vec<_> = wheel.advance(30).map(|(_, name)| name).collect();
    /// assert_eq!(fired, ["a", "b", "c"]);
    /// assert_eq!(wheel.elapsed(), 30);
    /// ```
    pub fn advance(&mut self, now: Tick) -> Expired<'_, T> {
        Expired { wheel: self, now }
    }

    /// The next slot (or far block) to visit, and the tick at which to visit it.
    fn next_expiration(&self) -> Option<Expiration> {
        // A level's slots all lie inside the current slot of the level above, so the lowest
        // occupied level holds the earliest slot, and every level comes before the far list.
        for (level, l) in self.levels.iter().enumerate() {
            if let Some((slot, deadline)) = l.next_expiration(level, self.elapsed) {
                return Some(Expiration::Slot {
                    level,
                    slot,
                    deadline,
                });
            }
        }
        if self.far.is_empty() {
            return None;
        }
        // The start of the block holding the earliest far timer: from there on it is in range.
        Some(Expiration::Far {
            deadline: self.far_min & !(RANGE - 1),
        })
    }

    /// Moves the wheel to the expiration's tick and files every entry of its list again: the
    /// ones whose tick has come go to `due`, the others to a lower level (or the far list).
    fn expire(&mut self, expiration: Expiration) {
        debug_assert!(expiration.deadline() >= self.elapsed);
        self.elapsed = expiration.deadline();
        let list = match expiration {
            // A level-0 slot spans one tick, the one just reached: all of it is due. Hand the
            // whole list over without visiting its entries.
            Expiration::Slot { level: 0, slot, .. } => {
                let list = self.levels[0].take(slot);
                self.due.append(&mut self.entries, list);
                return;
            }
            Expiration::Slot { level, slot, .. } => self.levels[level].take(slot),
            Expiration::Far { .. } => {
                // The walk below finds the exact minimum of what stays far.
                self.far_min = Tick::MAX;
                self.far.take()
            }
        };
        let mut index = list.head();
        while index != NIL {
            // Read the link first: filing rewrites it.
            let next = self.entries[index as usize].next;
            self.file(index);
            index = next;
        }
    }

    /// Links an unlinked entry into the list its tick calls for, seen from `elapsed`.
    fn file(&mut self, index: u32) {
        let when = self.entries[index as usize].when;
        if when <= self.elapsed {
            self.due.push_back(&mut self.entries, index);
            return;
        }
        match level_for(self.elapsed, when) {
            Some(level) => {
                self.levels[level].push(&mut self.entries, level, slot_for(when, level), index)
            }
            None => {
                self.far.push_back(&mut self.entries, index);
                self.far_min = self.far_min.min(when);
                self.entries[index as usize].home = Home::Far;
            }
        }
    }

    /// Unlinks a linked entry from whichever list holds it.
    fn unlink(&mut self, index: u32) {
        let entry = &self.entries[index as usize];
        // By the invariant on `elapsed`, an entry whose tick has come is in `due`; its `home`
        // may still name the level-0 slot it was handed over from.
        if entry.when <= self.elapsed {
            self.due.unlink(&mut self.entries, index);
            return;
        }
        match entry.home {
            Home::Slot { level, slot } => {
                self.levels[level as usize].unlink(&mut self.entries, slot as usize, index)
            }
            Home::Far => {
                self.far.unlink(&mut self.entries, index);
                if self.far.is_empty() {
                    self.far_min = Tick::MAX;
                }
            }
        }
    }
}

/// The timers whose deadline has passed, handed out one by one; made by
/// [`Wheel::advance`].
#[derive(Debug)]
pub struct Expired<'a, T> {
    /// The wheel the timers come from.
    wheel: &'a mut Wheel<T>,
    /// The tick the caller advances the wheel to.
    now: Tick,
}

impl<T> Iterator for Expired<'_, T> {
    type Item = (TimerKey, T);

    fn next(&mut self) -> Option<Self::Item> {
        self.wheel.poll(self.now)
    }
}

#[cfg(test)]
mod tests;
