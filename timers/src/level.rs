//! One level of the wheel: 64 slots, each a list of entries, and a bitmap of the slots in use.
//!
//! # Implementation notes
//!
//! Level `l` splits time into slots of `64^l` ticks. Seen from the wheel's current tick
//! (`elapsed`), level `l` holds the timers that fire inside the same `64^(l + 1)`-tick block as
//! `elapsed` but not inside the same `64^l`-tick slot: exactly the timers whose tick differs
//! from `elapsed` first in bits `6l .. 6l + 6`. [`level_for`] finds that level with one XOR and
//! one count of leading zeros, and [`slot_for`] reads the slot from those six bits.
//!
//! Because every timer of a level fires after `elapsed` but inside the current block, every
//! occupied slot of a level lies after the slot holding `elapsed`, and a slot's start is the
//! first tick at which one of its timers can fire. The next slot to visit is found by rotating
//! the occupied bitmap so that the slot after the current one is bit 0 and counting trailing
//! zeros: O(1), however many empty ticks lie in between.

use slab::Slab;

use crate::entry::{Entry, Home};
use crate::list::List;
use crate::Tick;

/// Bits of a tick that pick a slot inside one level.
pub(crate) const SLOT_BITS: u32 = 6;

/// Slots per level: 64, so that one `u64` holds a level's occupied bitmap.
pub(crate) const SLOTS: usize = 1 << SLOT_BITS;

/// Levels in the wheel. Six levels of 64 slots cover `64^6 = 2^36` ticks: about 2.2 years at
/// 1 ms a tick. Timers further away than that wait in the far list.
pub(crate) const LEVELS: usize = 6;

/// Ticks covered by all levels together: a timer whose tick lies in the same `RANGE`-aligned
/// block as `elapsed` sits in a level, any other in the far list.
pub(crate) const RANGE: Tick = 1 << (SLOT_BITS as usize * LEVELS);

/// Ticks covered by one slot of `level`: `64^level`.
pub(crate) const fn slot_range(level: usize) -> Tick {
    1 << (SLOT_BITS as usize * level)
}

/// Ticks covered by all 64 slots of `level`: `64^(level + 1)`.
pub(crate) const fn level_range(level: usize) -> Tick {
    1 << (SLOT_BITS as usize * (level + 1))
}

/// The level that holds a timer firing at `when`, seen from `elapsed < when`, or `None` when
/// `when` lies beyond the block the levels cover (the timer goes to the far list).
pub(crate) fn level_for(elapsed: Tick, when: Tick) -> Option<usize> {
    // The highest bit in which the two ticks differ names the level; or-ing in the slot mask
    // maps differences inside the lowest six bits to level 0.
    let masked = (elapsed ^ when) | (SLOTS as Tick - 1);
    let significant = 63 - masked.leading_zeros() as usize;
    let level = significant / SLOT_BITS as usize;
    (level < LEVELS).then_some(level)
}

/// The slot of `level` that holds a timer firing at `when`.
pub(crate) fn slot_for(when: Tick, level: usize) -> usize {
    ((when >> (SLOT_BITS as usize * level)) as usize) & (SLOTS - 1)
}

/// One level: its slot lists and the bitmap of the non-empty ones.
#[derive(Debug)]
pub(crate) struct Level {
    /// Bit `s` is set exactly when `slots[s]` is non-empty, so the next occupied slot is one
    /// rotate and one trailing-zeros count away instead of a scan of 64 lists.
    occupied: u64,
    /// The entries of each slot, in the order they were filed.
    slots: [List; SLOTS],
}

impl Level {
    /// A level with every slot empty.
    pub(crate) fn new() -> Self {
        Level {
            occupied: 0,
            slots: [List::EMPTY; SLOTS],
        }
    }

    /// Files entry `index` in `slot` of this level (number `level`).
    pub(crate) fn push<T>(
        &mut self,
        entries: &mut Slab<Entry<T>>,
        level: usize,
        slot: usize,
        index: u32,
    ) {
        self.slots[slot].push_back(entries, index);
        self.occupied |= 1 << slot;
        entries[index as usize].home = Home::Slot {
            level: level as u8,
            slot: slot as u8,
        };
    }

    /// Unlinks entry `index` from `slot`, clearing the slot's bit if it empties.
    pub(crate) fn unlink<T>(&mut self, entries: &mut Slab<Entry<T>>, slot: usize, index: u32) {
        let list = &mut self.slots[slot];
        list.unlink(entries, index);
        if list.is_empty() {
            self.occupied &= !(1 << slot);
        }
    }

    /// Empties `slot` and returns its detached list.
    pub(crate) fn take(&mut self, slot: usize) -> List {
        self.occupied &= !(1 << slot);
        self.slots[slot].take()
    }

    /// The first occupied slot after the one holding `elapsed`, and the tick it starts at; this
    /// level is number `level`.
    pub(crate) fn next_expiration(&self, level: usize, elapsed: Tick) -> Option<(usize, Tick)> {
        if self.occupied == 0 {
            return None;
        }
        // Rotate so that bit 0 is the slot after the current one; the current slot itself comes
        // last, though it is never occupied (its timers would sit on a lower level).
        let current = slot_for(elapsed, level);
        let start = (current + 1) % SLOTS;
        let slot =
            (self.occupied.rotate_right(start as u32).trailing_zeros() as usize + start) % SLOTS;
        debug_assert!(
            slot > current,
            "level {level}: slot {slot} is not after {current}"
        );
        // Every timer of this level fires inside the level-sized block holding `elapsed`, and
        // the block never straddles the end of `Tick`, so this sum cannot overflow.
        let block_start = elapsed & !(level_range(level) - 1);
        Some((slot, block_start + slot as Tick * slot_range(level)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(slot_range(0), 1);
        assert_eq!(level_range(0), 64);
        assert_eq!(slot_range(1), 64);
        assert_eq!(level_range(1), 4096);
        assert_eq!(level_range(LEVELS - 1), RANGE);
        assert_eq!(RANGE, 68_719_476_736);
    }

    #[test]
    fn level_boundaries_seen_from_zero() {
        assert_eq!(level_for(0, 1), Some(0));
        assert_eq!(level_for(0, 63), Some(0));
        assert_eq!(level_for(0, 64), Some(1));
        assert_eq!(level_for(0, 4095), Some(1));
        assert_eq!(level_for(0, 4096), Some(2));
        assert_eq!(level_for(0, 262_143), Some(2));
        assert_eq!(level_for(0, 262_144), Some(3));
        assert_eq!(level_for(0, 16_777_215), Some(3));
        assert_eq!(level_for(0, 16_777_216), Some(4));
        assert_eq!(level_for(0, 1_073_741_823), Some(4));
        assert_eq!(level_for(0, 1_073_741_824), Some(5));
        assert_eq!(level_for(0, RANGE - 1), Some(5));
        assert_eq!(level_for(0, RANGE), None);
        assert_eq!(level_for(0, u64::MAX / 2), None);
        assert_eq!(level_for(0, u64::MAX), None);
    }

    #[test]
    fn level_depends_on_the_blocks_not_the_distance() {
        // One tick away but across a level-1 boundary: level 1, whose slot 1 starts at 64.
        assert_eq!(level_for(63, 64), Some(1));
        assert_eq!(slot_for(64, 1), 1);
        // Across the end of the covered block: the far list, however close.
        assert_eq!(level_for(RANGE - 1, RANGE), None);
        // Inside the last block of `Tick`.
        assert_eq!(level_for(u64::MAX - 1, u64::MAX), Some(0));
        assert_eq!(level_for(u64::MAX - RANGE + 1, u64::MAX), Some(5));
    }

    #[test]
    fn slots() {
        assert_eq!(slot_for(0, 0), 0);
        assert_eq!(slot_for(63, 0), 63);
        assert_eq!(slot_for(64, 0), 0);
        assert_eq!(slot_for(4095, 1), 63);
        assert_eq!(slot_for(4096, 1), 0);
        assert_eq!(slot_for(4096, 2), 1);
        assert_eq!(slot_for(RANGE - 1, LEVELS - 1), 63);
        assert_eq!(slot_for(u64::MAX, 0), 63);
    }

    fn entry(when: Tick) -> Entry<()> {
        Entry {
            value: (),
            when,
            lead: 0,
            slack: 0,
            generation: 0,
            prev: crate::entry::NIL,
            next: crate::entry::NIL,
            home: Home::Far,
        }
    }

    #[test]
    fn next_expiration_finds_the_first_slot_after_the_current_one() {
        let mut entries = Slab::new();
        let mut level = Level::new();
        assert_eq!(level.next_expiration(1, 0), None);
        let a = entries.insert(entry(3 * 64 + 5)) as u32;
        let b = entries.insert(entry(40 * 64)) as u32;
        level.push(&mut entries, 1, 40, b);
        level.push(&mut entries, 1, 3, a);
        assert_eq!(level.next_expiration(1, 70), Some((3, 192)));
        assert_eq!(level.next_expiration(1, 4096 + 70), Some((3, 4096 + 192)));
        level.unlink(&mut entries, 3, a);
        assert_eq!(level.next_expiration(1, 70), Some((40, 2560)));
        assert_eq!(level.take(40).head(), b);
        assert_eq!(level.next_expiration(1, 70), None);
    }

    #[test]
    fn next_expiration_at_the_top_of_tick() {
        let mut entries = Slab::new();
        let mut level = Level::new();
        let a = entries.insert(entry(u64::MAX)) as u32;
        level.push(&mut entries, 0, 63, a);
        assert_eq!(
            level.next_expiration(0, u64::MAX - 10),
            Some((63, u64::MAX))
        );
    }
}
