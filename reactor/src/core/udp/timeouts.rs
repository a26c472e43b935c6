//! A UDP socket's timers: the idle timeout, checked lazily against the last activity, and the
//! handler's own timers, each with its tag (S8 for sockets as for connections).

use std::time::Duration;

use timers::TimerKey;

use super::super::{Core, Net};
use crate::timer::{ticks_ceil, TimerEntry};
use crate::udp::UdpId;
use crate::{CloseReason, TimerId};

/// The kinds of timer a UDP socket can have armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UdpTimer {
    /// The idle timeout, checked lazily against the last activity.
    Idle,
    /// A handler timer; its tag is kept with the socket.
    User,
}

impl<App> Net<App> {
    /// Records activity for the idle timeout (the clock read once per call, after the I/O).
    pub(super) fn touched_udp(&mut self, index: usize) {
        let at = self.clock.now_ceil();
        if let Some(u) = self.udp_at(index) {
            u.last_activity = at;
        }
    }
}

impl<App> Core<App> {
    /// Arms a handler timer on a socket.
    pub(crate) fn set_udp_timer(
        &mut self,
        id: UdpId,
        after: Duration,
        tag: u64,
    ) -> Option<TimerId> {
        self.udp_mut(id)?;
        let key = self.arm(after, TimerEntry::Udp(id, UdpTimer::User));
        self.udp_mut(id)?.user_timers.push((key, tag));
        Some(TimerId { key, tag })
    }

    /// Cancels a handler timer. Returns whether it was armed.
    pub(crate) fn cancel_udp_timer(&mut self, id: UdpId, timer: TimerId) -> bool {
        let Some(u) = self.udp_mut(id) else {
            return false;
        };
        let before = u.user_timers.len();
        u.user_timers.retain(|(k, _)| *k != timer.key);
        if u.user_timers.len() == before {
            return false;
        }
        self.wheel.cancel(timer.key).is_some()
    }

    /// A UDP socket's timer fired.
    pub(crate) fn fire_udp(&mut self, key: TimerKey, id: UdpId, kind: UdpTimer) {
        let index = id.index as usize;
        let now = self.now;
        let Some(u) = self.udp_mut(id) else { return };
        match kind {
            UdpTimer::Idle => {
                u.idle = None;
                let Some(idle) = u.config.idle_timeout else {
                    return;
                };
                let due = u.last_activity.saturating_add(ticks_ceil(idle));
                if due <= now {
                    self.kill_udp(index, CloseReason::IdleTimeout);
                } else {
                    let delay = Duration::from_millis(due - now);
                    let key = self.arm(delay, TimerEntry::Udp(id, UdpTimer::Idle));
                    if let Some(u) = self.udp_at(index) {
                        u.idle = Some(key);
                    }
                }
            }
            UdpTimer::User => {
                let Some(pos) = u.user_timers.iter().position(|(k, _)| *k == key) else {
                    return;
                };
                let (_, tag) = u.user_timers.swap_remove(pos);
                self.call_udp(index, |h, cx| h.on_timer(cx, TimerId { key, tag }));
            }
        }
    }
}
