//! One armed timer as the wheel stores it, and the rule that picks the tick a timer with slack
//! fires at.

use crate::Tick;

/// The index of no entry: the end of a list.
pub(crate) const NIL: u32 = u32::MAX;

/// Which list holds an entry whose tick is still ahead of the wheel.
///
/// Once an entry's tick is at or before the wheel's `elapsed`, the entry is in the due list,
/// whatever its `Home` says: emptying a level-0 slot hands its whole list to the due list in
/// O(1), without visiting (and so without updating) its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Home {
    /// A slot of a level: the entry fires when the wheel reaches that slot or a lower level's
    /// slot it cascades into.
    Slot {
        /// The level, `0..LEVELS`.
        level: u8,
        /// The slot inside the level, `0..SLOTS`.
        slot: u8,
    },
    /// The far list: the entry's tick lies outside the range the levels cover right now.
    Far,
}

/// One armed timer, stored in the wheel's slab and linked into exactly one list.
#[derive(Debug)]
pub(crate) struct Entry<T> {
    /// The caller's value, handed back when the timer fires or is cancelled.
    pub(crate) value: T,
    /// The tick the timer fires at, chosen by [`fire_tick`] from the deadline and `slack`. The
    /// wheel files the entry by this tick, never by the deadline.
    pub(crate) when: Tick,
    /// How many ticks after the deadline `when` lies (at most `slack`): the deadline the caller
    /// asked for is `when - lead`. Stored as a difference so an entry stays small.
    pub(crate) lead: u32,
    /// How many ticks late the timer may fire; `reset` keeps it. Slack is capped at `u32::MAX`
    /// ticks (49 days at 1 ms), far beyond any use of it.
    pub(crate) slack: u32,
    /// The generation of the key handed out for this entry: a key whose generation differs is
    /// stale and matches nothing.
    pub(crate) generation: u32,
    /// The previous entry in the same list, or [`NIL`] at the head.
    pub(crate) prev: u32,
    /// The next entry in the same list, or [`NIL`] at the tail.
    pub(crate) next: u32,
    /// The list holding the entry while its tick is ahead, so that unlinking it can fix that
    /// list's ends (and the level's occupied bit) in O(1) without searching.
    pub(crate) home: Home,
}

/// The tick a timer with `deadline` and `slack` fires at: the tick inside
/// `deadline ..= deadline + slack` with the most trailing zero bits.
///
/// Timers whose windows overlap a common multiple of a large power of two all pick that
/// multiple, so thousands of idle timeouts armed a few milliseconds apart fire in one wake-up
/// instead of thousands. Such a multiple is also the start of a slot on as many levels as
/// possible. With zero slack this is `deadline` itself; the window is cut at `Tick::MAX`.
pub(crate) fn fire_tick(deadline: Tick, slack: Tick) -> Tick {
    if slack == 0 || deadline == 0 {
        return deadline;
    }
    let last = deadline.saturating_add(slack);
    // `deadline - 1` and `last` share the bits above the highest bit where they differ; `last`
    // has that bit set and `deadline - 1` has it clear. Keeping the shared bits and that bit,
    // and clearing the ones below, gives the only multiple of `2^bit` in the window, and no
    // multiple of `2^(bit + 1)` lies in it.
    let differ = (deadline - 1) ^ last;
    let bit = 63 - differ.leading_zeros();
    last & !((1u64 << bit) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_slack_fires_at_the_deadline() {
        for deadline in [0, 1, 2, 63, 64, 65, 4095, 4096, u64::MAX / 2, u64::MAX] {
            assert_eq!(fire_tick(deadline, 0), deadline);
        }
    }

    #[test]
    fn slack_picks_the_coarsest_tick_in_the_window() {
        assert_eq!(fire_tick(5, 10), 8);
        assert_eq!(fire_tick(1000, 1000), 1024);
        assert_eq!(fire_tick(1, 1), 2);
        assert_eq!(fire_tick(3, 1), 4);
        assert_eq!(fire_tick(5, 1), 6);
        assert_eq!(fire_tick(1024, 5000), 4096);
        assert_eq!(fire_tick(0, 100), 0);
        assert_eq!(fire_tick(u64::MAX - 3, 100), u64::MAX - 3);
        assert_eq!(fire_tick(u64::MAX - 5, 100), u64::MAX - 3);
        assert_eq!(fire_tick(1, u64::MAX), 1 << 63);
    }

    #[test]
    fn nearby_deadlines_share_a_tick() {
        // Idle timeouts of 30 s with 1 s of slack, armed over 300 ms: one tick for all.
        let ticks: std::collections::BTreeSet<Tick> = (0..300)
            .map(|armed| fire_tick(30_000 + armed, 1_000))
            .collect();
        assert_eq!(ticks.len(), 1);
    }

    #[test]
    fn the_tick_stays_inside_the_window() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            // xorshift: a spread of deadlines and slacks of every magnitude.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let deadline = x >> (x % 64);
            let slack = x.rotate_left(17) >> (x.rotate_left(5) % 64);
            let tick = fire_tick(deadline, slack);
            assert!(tick >= deadline && tick <= deadline.saturating_add(slack));
        }
    }
}
