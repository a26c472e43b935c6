//! What the reactor files in its timer wheel, and the clock that turns time into ticks.

use std::time::{Duration, Instant};

use timers::{Tick, TimerKey};

use crate::ConnId;

/// Names a timer armed by a handler with [`Cx::set_timer`](crate::Cx::set_timer); handed back to
/// [`Protocol::on_timer`](crate::Protocol::on_timer) when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    pub(crate) key: TimerKey,
    pub(crate) tag: u64,
}

impl TimerId {
    /// The tag of heartbeat timers armed with [`Cx::set_heartbeat`](crate::Cx::set_heartbeat).
    pub const HEARTBEAT: u64 = u64::MAX;

    /// The value the handler passed when it armed the timer.
    pub fn tag(&self) -> u64 {
        self.tag
    }
}

/// The kinds of timer a connection can have armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnTimer {
    /// Connect timeout (outgoing) or first-byte timeout (accepted).
    Open,
    /// The bound on a graceful close.
    Linger,
    /// The idle and write-stall timeouts, checked lazily.
    Watchdog,
    Heartbeat,
    /// A handler timer; its tag is kept with the connection, so wheel entries stay small.
    User,
}

/// One entry of the reactor's wheel.
#[derive(Clone, Copy, Debug)]
pub(crate) enum TimerEntry {
    Conn(ConnId, ConnTimer),
    /// A scheduled closure is due (index into the task slab).
    Task(u32),
    /// A listener's back-off ended: accept again (its slab index).
    ListenerResume(u32),
    /// The shutdown deadline passed: abort what is left.
    ShutdownDeadline,
}

/// Milliseconds since the reactor started: the wheel's tick.
///
/// A test harness can stop the clock and move it by hand ([`Clock::set_manual`]), so timers
/// are tested without waiting and without a real clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
    /// A clock set by hand: `elapsed` is this instead of real time.
    manual: Option<Duration>,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            start: Instant::now(),
            manual: None,
        }
    }

    /// Stops real time: from now on the clock reads `at` until set again.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn set_manual(&mut self, at: Duration) {
        self.manual = Some(at);
    }

    /// Time since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.manual.unwrap_or_else(|| self.start.elapsed())
    }

    /// The clock's reading as an instant: real time, or the start plus the time set by hand.
    pub(crate) fn instant(&self) -> Instant {
        self.start + self.elapsed()
    }

    /// The current tick (rounded down).
    pub(crate) fn now(&self) -> Tick {
        self.elapsed().as_millis() as Tick
    }

    /// The first tick not earlier than `delay` from now (rounded up, so never early).
    pub(crate) fn deadline_after(&self, delay: Duration) -> Tick {
        let at = self.elapsed() + delay;
        let ms = at.as_millis() as Tick;
        if Duration::from_millis(ms) < at {
            ms + 1
        } else {
            ms
        }
    }

    /// How long from now until `tick` begins (zero if it has).
    pub(crate) fn until(&self, tick: Tick) -> Duration {
        Duration::from_millis(tick).saturating_sub(self.elapsed())
    }
}
