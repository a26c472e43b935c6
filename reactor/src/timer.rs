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
    /// Queued output has stayed above the soft output limit since this was armed.
    SoftOutput,
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
    /// A UDP socket's timer (S30).
    Udp(crate::UdpId, crate::core::udp::UdpTimer),
}

/// Whole ticks (milliseconds) in `d`, rounded up, saturating at `Tick::MAX`: a timeout of any
/// length, `Duration::MAX` included, becomes a tick count that never ends early and never wraps.
pub(crate) fn ticks_ceil(d: Duration) -> Tick {
    // In 64-bit steps (every turn converts two readings): a part of a millisecond adds one.
    let rest = u64::from(d.subsec_nanos() % 1_000_000 != 0);
    ticks_floor(d).saturating_add(rest)
}

/// Whole ticks in `d`, rounded down, saturating at `Tick::MAX`.
pub(crate) fn ticks_floor(d: Duration) -> Tick {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

/// Milliseconds since the reactor started: the wheel's tick.
///
/// A test harness can stop the clock and move it by hand ([`Clock::set_manual`]), so timers
/// are tested without waiting and without a real clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
    /// The monotonic clock's reading at the start, in nanoseconds (`sys::monotonic_ns`): time
    /// since the start is one subtraction, cheaper than `Instant`'s (`None`: that clock could
    /// not be read, and `Instant` serves).
    origin_ns: Option<u64>,
    /// A clock set by hand: `elapsed` is this instead of real time.
    manual: Option<Duration>,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let start = Instant::now();
        Clock {
            start,
            origin_ns: crate::sys::monotonic_ns(),
            manual: None,
        }
    }

    /// Stops real time: from now on the clock reads `at` until set again.
    pub(crate) fn set_manual(&mut self, at: Duration) {
        self.manual = Some(at);
    }

    /// Time since the start: the hand-set time, or the monotonic clock read now.
    #[inline]
    pub(crate) fn elapsed(&self) -> Duration {
        if let Some(at) = self.manual {
            return at;
        }
        match (self.origin_ns, crate::sys::monotonic_ns()) {
            (Some(origin), Some(now)) => Duration::from_nanos(now.saturating_sub(origin)),
            _ => self.elapsed_by_instant(),
        }
    }

    /// [`elapsed`](Self::elapsed) where the monotonic clock could not be read (never seen):
    /// out of line, so that every turn's reading does not make room for it.
    #[cold]
    #[inline(never)]
    fn elapsed_by_instant(&self) -> Duration {
        self.start.elapsed()
    }

    /// The clock's reading as an instant (the start plus `elapsed`; a hand-set clock that ran
    /// past what `Instant` can hold stays at the start).
    pub(crate) fn instant(&self) -> Instant {
        match self.manual {
            None => Instant::now(),
            Some(at) => self.start.checked_add(at).unwrap_or(self.start),
        }
    }

    /// The current tick, rounded down: what the wheel is polled with, so a timer fires only
    /// once its tick has fully begun.
    pub(crate) fn now(&self) -> Tick {
        ticks_floor(self.elapsed())
    }

    /// The current tick, rounded up: the stamp of an event, so that a deadline counted from it
    /// can never come before the event's time plus the timeout.
    pub(crate) fn now_ceil(&self) -> Tick {
        ticks_ceil(self.elapsed())
    }

    /// The first tick not earlier than `delay` from now (rounded up, so never early;
    /// `Tick::MAX` for a delay past the wheel's range).
    pub(crate) fn deadline_after(&self, delay: Duration) -> Tick {
        match self.elapsed().checked_add(delay) {
            Some(at) => ticks_ceil(at),
            None => Tick::MAX,
        }
    }

    /// How long from now until `tick` begins (zero if it has).
    pub(crate) fn until(&self, tick: Tick) -> Duration {
        Duration::from_millis(tick).saturating_sub(self.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_conversions_round_the_safe_way_and_saturate() {
        assert_eq!(ticks_ceil(Duration::ZERO), 0);
        assert_eq!(ticks_ceil(Duration::from_micros(1)), 1);
        assert_eq!(ticks_ceil(Duration::from_millis(300)), 300);
        assert_eq!(ticks_ceil(Duration::from_micros(300_001)), 301);
        assert_eq!(ticks_ceil(Duration::MAX), Tick::MAX);
        assert_eq!(ticks_floor(Duration::MAX), Tick::MAX);
        let mut clock = Clock::new();
        clock.set_manual(Duration::from_micros(10_900));
        assert_eq!(clock.now(), 10);
        assert_eq!(clock.now_ceil(), 11);
        assert_eq!(clock.deadline_after(Duration::from_millis(300)), 311);
        assert_eq!(clock.deadline_after(Duration::MAX), Tick::MAX);
        clock.set_manual(Duration::MAX);
        assert_eq!(clock.deadline_after(Duration::from_secs(1)), Tick::MAX);
        assert_eq!(clock.instant(), clock.start);
    }

    /// The 64-bit conversions agree with exact 128-bit arithmetic everywhere, saturation
    /// included: sub-millisecond parts, every power of two of seconds, and the edge where
    /// milliseconds stop fitting in a tick.
    #[test]
    fn tick_conversions_agree_with_exact_arithmetic() {
        let exact = |d: Duration, ceil: bool| -> Tick {
            let nanos = d.as_nanos();
            let ms = nanos / 1_000_000 + u128::from(ceil && nanos % 1_000_000 != 0);
            Tick::try_from(ms).unwrap_or(Tick::MAX)
        };
        let edge = u64::MAX / 1000;
        let mut secs: Vec<u64> = (0..64).map(|b| 1u64 << b).collect();
        secs.extend([0, 1, edge - 1, edge, edge + 1, u64::MAX - 1, u64::MAX]);
        for s in secs {
            for n in [
                0,
                1,
                999_999,
                1_000_000,
                1_000_001,
                551_615_999,
                999_999_999,
            ] {
                let d = Duration::new(s, n);
                assert_eq!(ticks_floor(d), exact(d, false), "{d:?}");
                assert_eq!(ticks_ceil(d), exact(d, true), "{d:?}");
            }
        }
    }
}
