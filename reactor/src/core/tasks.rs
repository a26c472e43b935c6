//! Closures the reactor runs later: scheduled on the timer wheel (once or periodically), or
//! posted from other threads through a [`Handle`](crate::Handle).
//!
//! # Implementation notes
//! A periodic closure keeps its pace ([`Pace`]). At a fixed delay the next run is armed from
//! the clock read when the closure returns, so lateness accumulates (a 100 ms period that
//! fires 1.2 ms late each time averages 101.2 ms). At a fixed rate the task keeps the time its
//! next run is *due* as a `Duration` since the clock's start and adds the period to it, never
//! to the time it actually ran: the n-th run is due at `start + n·period` exactly, rounded up
//! to the wheel's millisecond only when armed, so rounding does not accumulate either. A run
//! so late that whole periods passed skips them (no burst of catch-up runs) and stays on the
//! grid.

use std::time::Duration;

use timers::TimerKey;

use crate::core::Core;
use crate::timer::TimerEntry;
use crate::LoopCx;

/// Names a closure scheduled with [`LoopCx::schedule`] or [`LoopCx::every`], for cancelling it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskId {
    index: u32,
    generation: u32,
}

/// A one-shot closure.
pub(crate) type OnceFn<App> = Box<dyn FnOnce(&mut LoopCx<'_, App>)>;
/// A periodic closure; returning `false` stops it.
pub(crate) type RepeatFn<App> = Box<dyn FnMut(&mut LoopCx<'_, App>) -> bool>;

pub(crate) enum TaskKind<App> {
    Once(OnceFn<App>),
    Repeat(RepeatFn<App>, Duration, Pace),
}

/// How a periodic closure's next run is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pace {
    /// The period counts from the end of each run.
    Delay,
    /// Runs are due on the grid `start + n·period`; `due` is the next one, since the clock's
    /// start (`None`: past the clock's range, never).
    Rate { due: Option<Duration> },
}

/// The next point of the grid `due + k·period` (k ≥ 1) strictly after `now`, or `None` when it
/// is past what a `Duration` holds. A zero period runs again at once (next turn), as a zero
/// delay does.
fn next_on_grid(due: Duration, period: Duration, now: Duration) -> Option<Duration> {
    let next = due.checked_add(period)?;
    if next > now || period.is_zero() {
        return Some(next.max(now));
    }
    // Late by whole periods: skip them, staying on the grid.
    let late = (now - next).as_nanos();
    let p = period.as_nanos();
    let skip = late / p + 1;
    let ahead = u64::try_from(skip.checked_mul(p)?).ok()?;
    next.checked_add(Duration::from_nanos(ahead))
}

/// A scheduled closure's slot.
pub(crate) struct Task<App> {
    /// `None` only while the closure runs.
    kind: Option<TaskKind<App>>,
    generation: u32,
    /// The wheel entry that will run it next.
    key: Option<TimerKey>,
    /// Cancelled while running (a periodic task cancelling itself).
    cancelled: bool,
}

impl<App> Core<App> {
    /// Schedules `kind` to run `after` from now.
    pub(crate) fn schedule_task(&mut self, after: Duration, kind: TaskKind<App>) -> TaskId {
        self.net.next_generation = self.net.next_generation.wrapping_add(1);
        let generation = self.net.next_generation;
        let index = self.net.tasks.insert(Task {
            kind: Some(kind),
            generation,
            key: None,
            cancelled: false,
        });
        let entry = TimerEntry::Task(index as u32);
        let key = match &mut self.net.tasks[index].kind {
            Some(TaskKind::Repeat(_, _, Pace::Rate { due })) => {
                // The grid starts now: the first run is due one period from now.
                let first = self.net.clock.elapsed().checked_add(after);
                *due = first;
                self.net.arm_at(first, entry)
            }
            _ => self.arm(after, entry),
        };
        self.net.tasks[index].key = Some(key);
        TaskId {
            index: index as u32,
            generation,
        }
    }

    /// Cancels a scheduled closure. Returns whether it was still scheduled.
    pub(crate) fn cancel_task(&mut self, id: TaskId) -> bool {
        let index = id.index as usize;
        let Some(task) = self.net.tasks.get_mut(index) else {
            return false;
        };
        if task.generation != id.generation || task.cancelled {
            return false;
        }
        if let Some(key) = task.key.take() {
            self.net.wheel.cancel(key);
        }
        if task.kind.is_some() {
            self.net.tasks.remove(index);
        } else {
            // It is running now (a periodic task stopping itself): drop it when it returns.
            task.cancelled = true;
        }
        true
    }

    /// Runs the scheduled closure in slot `index` (its timer fired).
    pub(crate) fn run_task(&mut self, index: usize) {
        let Some(task) = self.net.tasks.get_mut(index) else {
            return;
        };
        task.key = None;
        let Some(kind) = task.kind.take() else {
            return;
        };
        match kind {
            TaskKind::Once(f) => {
                self.net.tasks.remove(index);
                f(&mut LoopCx::new(self));
            }
            TaskKind::Repeat(mut f, every, pace) => {
                let again = f(&mut LoopCx::new(self));
                let task = &mut self.net.tasks[index];
                if again && !task.cancelled {
                    let entry = TimerEntry::Task(index as u32);
                    let (key, pace) = match pace {
                        Pace::Delay => (self.arm(every, entry), pace),
                        Pace::Rate { due } => {
                            let now = self.net.clock.elapsed();
                            let next = due.and_then(|due| next_on_grid(due, every, now));
                            (self.net.arm_at(next, entry), Pace::Rate { due: next })
                        }
                    };
                    let task = &mut self.net.tasks[index];
                    task.kind = Some(TaskKind::Repeat(f, every, pace));
                    task.key = Some(key);
                } else {
                    self.net.tasks.remove(index);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_grid_advances_by_whole_periods_and_skips_missed_ones() {
        // On time or a little late: the next point of the grid.
        assert_eq!(next_on_grid(ms(100), ms(100), ms(100)), Some(ms(200)));
        assert_eq!(next_on_grid(ms(100), ms(100), ms(199)), Some(ms(200)));
        // Exactly on the next point: it is due now, so the one after.
        assert_eq!(next_on_grid(ms(100), ms(100), ms(200)), Some(ms(300)));
        // Late by whole periods: skipped, still on the grid.
        assert_eq!(next_on_grid(ms(100), ms(100), ms(450)), Some(ms(500)));
        // Sub-millisecond periods keep their exact sum.
        let p = Duration::from_micros(333);
        assert_eq!(
            next_on_grid(p * 2, p, p * 2),
            Some(Duration::from_micros(999))
        );
        // Zero period: at once. Past the range: never.
        assert_eq!(next_on_grid(ms(5), Duration::ZERO, ms(9)), Some(ms(9)));
        assert_eq!(next_on_grid(ms(5), Duration::MAX, ms(9)), None);
    }
}
