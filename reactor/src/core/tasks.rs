//! Closures the reactor runs later: scheduled on the timer wheel (once or periodically), or
//! posted from other threads through a [`Handle`](crate::Handle).

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
    Repeat(RepeatFn<App>, Duration),
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
        let key = self.arm(after, TimerEntry::Task(index as u32));
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
            TaskKind::Repeat(mut f, every) => {
                let again = f(&mut LoopCx::new(self));
                let task = &mut self.net.tasks[index];
                if again && !task.cancelled {
                    task.kind = Some(TaskKind::Repeat(f, every));
                    let key = self.arm(every, TimerEntry::Task(index as u32));
                    self.net.tasks[index].key = Some(key);
                } else {
                    self.net.tasks.remove(index);
                }
            }
        }
    }
}
