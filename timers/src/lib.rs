//! A hierarchical hashed timer wheel: O(1) insert, cancel and reset, and a poll that never
//! fires a timer early.
//!
//! [`Wheel<T>`] keeps values with a deadline in ticks (the reactor uses 1 ms ticks) and hands
//! each back once the caller's clock passes its deadline. It has no clock of its own: the
//! caller passes the current tick to [`Wheel::poll`], and asks [`Wheel::next_deadline`] how long
//! it may sleep. This is the timing wheel of Varghese and Lauck, "Hashed and Hierarchical Timing
//! Wheels: Data Structures for the Efficient Implementation of a Timer Facility" (SOSP 1987),
//! scheme 7, in the shape the tokio runtime gave it.
//!
//! # Example
//!
//! A whole event loop: sleep until the next deadline, then hand out what is due.
//!
//! ```
//! use evdrive_timers::Wheel;
//!
//! let mut wheel = Wheel::new();
//! wheel.insert(250, "heartbeat");
//! wheel.insert(1_000, "connect timeout");
//! let linger = wheel.insert(5_000, "linger");
//! wheel.cancel(linger);
//!
//! let mut fired = Vec::new();
//! while let Some(deadline) = wheel.next_deadline() {
//!     // A real loop sleeps in epoll_wait until `deadline` (or an event) and reads its clock.
//!     let now = deadline;
//!     while let Some((_key, what)) = wheel.poll(now) {
//!         fired.push((now, what));
//!         if what == "heartbeat" && now < 750 {
//!             wheel.insert(now + 250, "heartbeat");
//!         }
//!     }
//! }
//! assert_eq!(
//!     fired,
//!     [(250, "heartbeat"), (500, "heartbeat"), (750, "heartbeat"), (1_000, "connect timeout")]
//! );
//! ```
//!
//! # Implementation notes
//!
//! **Levels and slots.** The wheel has six levels of 64 slots. A slot of level `l` spans
//! `64^l` ticks, so the whole level spans `64^(l+1)`:
//!
//! | level | one slot          | whole level              |
//! |-------|-------------------|--------------------------|
//! | 0     | 1 tick (1 ms)     | 64 ticks (64 ms)         |
//! | 1     | 64 ticks          | 4,096 ticks (4 s)        |
//! | 2     | 4,096 ticks       | 262,144 ticks (4.4 min)  |
//! | 3     | 262,144 ticks     | 16.8 M ticks (4.7 h)     |
//! | 4     | 16.8 M ticks      | 1.07 G ticks (12.4 days) |
//! | 5     | 1.07 G ticks      | 68.7 G ticks (2.2 years) |
//!
//! A timer goes to the level of the highest six-bit group in which its tick differs from the
//! wheel's current tick, and to the slot that group names: one XOR, one count of leading zeros
//! and a shift, whatever the distance. Timers beyond the top level's block wait in a far list
//! and are filed into the levels when the wheel reaches their block, so no deadline is lost or
//! clipped.
//!
//! **Cascading.** When time reaches the start of an occupied slot, the wheel takes the slot's
//! whole list and files each timer again: timers due at that tick become due, the rest fall to
//! a lower level, where their slot is now finer. A timer moves down at most once per level, so
//! firing it costs O(levels) in all, and time with no timer in it costs nothing: each level
//! keeps an `occupied: u64` bitmap, and the next occupied slot is a rotate and a count of
//! trailing zeros away, so a poll jumps over any empty stretch in O(levels) steps.
//!
//! **Slab and intrusive lists.** Timers live in a slab; each slot is a doubly linked list
//! threaded through the slab entries as indices, and each entry records which list holds it.
//! Cancelling or resetting a timer therefore unlinks it in O(1) without searching its slot, no
//! list node is ever allocated, and the slab reuses the room of fired and cancelled timers: a
//! wheel whose number of timers stays bounded stops allocating after warm-up. A key pairs the
//! slab index with a generation, so a key kept after its timer fired matches nothing, even once
//! another timer reuses the index.
//!
//! **Slack.** A timer armed with slack fires at the tick inside its window that is a multiple
//! of the largest power of two. Nearby windows pick the same tick, so thousands of idle
//! timeouts share a handful of wake-ups.
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
// Every `unsafe` of the workspace lives in the reactor's `sys` module.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod entry;
#[cfg(feature = "fuzz")]
pub mod fuzz;
mod level;
mod list;
mod wheel;

pub use wheel::{Expired, Wheel};

/// A point in time, in ticks (the reactor uses 1 ms ticks) since the wheel was created.
pub type Tick = u64;

/// Names one armed timer. Carries a generation, so a key kept after its timer fired or was
/// cancelled matches nothing and never touches a timer that later reused its slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TimerKey {
    /// The timer's index in the wheel's slab.
    index: u32,
    /// The generation the entry had when this key was handed out; a mismatch means stale.
    /// Never zero, so `Option<TimerKey>` is as small as a key.
    generation: std::num::NonZeroU32,
}
