//! Every timer a connection can have, armed and fired here: the connect timeout, the first-byte
//! timeout, the linger bound on a graceful close, the idle and write-stall watchdog, the
//! application heartbeat, the soft output limit and the handler's own timers (S8, S13, S21,
//! S24).
//!
//! # Implementation notes
//! A timeout never ends early, measured from the event: activity is stamped with the clock
//! read after the transfers and rounded up (`stamp_flushed`: once at the end of each turn,
//! after the flush; and `stamp_touched` before the turn's timers fire when some are due, so
//! before any idle check), durations become ticks rounded up, and every deadline is a
//! saturating sum, so `Duration::MAX` means "never" instead of wrapping into the past. The
//! wheel is polled with the turn's tick rounded down, so a timer fires only once its tick has
//! begun.
//!
//! The idle and write-stall timeouts share one lazily re-armed watchdog: traffic only moves the
//! stamps, and when the watchdog fires it checks them and re-arms for whichever is due next, so
//! traffic costs no timer operation.

use std::time::Duration;

use timers::{Tick, TimerKey};

use crate::core::conn::{Conn, Heartbeat, Phase};
use crate::core::{Core, Net, Source};
use crate::timer::{ticks_ceil, ConnTimer, TimerEntry};
use crate::{CloseReason, ConnId, TimerId};

impl<App> Net<App> {
    /// Arms a timer `delay` from now.
    pub(crate) fn arm(&mut self, delay: Duration, entry: TimerEntry) -> TimerKey {
        let deadline = self.clock.deadline_after(delay);
        self.wheel.insert(deadline, entry)
    }

    /// Arms a timer for the instant `at` (time since the clock's start), rounded up to its
    /// tick so it never fires early; `None` (past the clock's range) never fires.
    pub(crate) fn arm_at(&mut self, at: Option<Duration>, entry: TimerEntry) -> TimerKey {
        let deadline = at.map_or(Tick::MAX, ticks_ceil);
        self.wheel.insert(deadline, entry)
    }

    fn conn_id(&self, index: usize) -> Option<ConnId> {
        self.id_at(index)
    }

    /// Arms the timer that bounds the opening phase: the connect timeout of an outgoing
    /// connection, the first-byte timeout of an accepted one.
    pub(crate) fn arm_opening(&mut self, index: usize) {
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        let timeout = match conn.phase() {
            Phase::Connecting { .. } => Some(conn.config.connect_timeout),
            Phase::Open { .. } => conn.config.first_byte_timeout,
            _ => None,
        };
        let (Some(timeout), Some(id)) = (timeout, self.conn_id(index)) else {
            return;
        };
        let key = self.arm(timeout, TimerEntry::Conn(id, ConnTimer::Open));
        let set = self.conn_at(index).is_some_and(|c| {
            c.update_phase(|phase| match phase {
                Phase::Connecting { timer, .. } => {
                    *timer = Some(key);
                    true
                }
                Phase::Open { first_byte, .. } => {
                    *first_byte = Some(key);
                    true
                }
                _ => false,
            })
        });
        if !set {
            self.wheel.cancel(key);
        }
    }

    /// Stamps the connections with traffic so far this turn (the dirty list, which every
    /// transfer puts its connection on, see `Net::dirty`) with the clock read now, rounded up,
    /// without taking them off it: before the turn's timers fire, so that no idle check misses
    /// this turn's reads. The end of the turn stamps them again after the flush
    /// ([`stamp_flushed`](Self::stamp_flushed)).
    pub(crate) fn stamp_touched(&mut self) {
        if self.dirty.is_empty() && self.touched_reads.is_empty() {
            return;
        }
        let at = self.clock.now_ceil();
        stamp_activity(&mut self.activity, &self.dirty, at);
        self.stamp_reads(at);
    }

    /// Stamps the connections of a dirty list the end of the turn has just flushed with the
    /// clock read now, rounded up: the reading comes after every transfer of theirs, so it is
    /// never earlier than the time a byte arrived or left. One reading per settle round (nearly
    /// always one per turn) instead of one per transfer. Returns the reading, as time since
    /// the clock's start.
    pub(crate) fn stamp_flushed(&mut self, flushed: &[usize]) -> Duration {
        let elapsed = self.clock.elapsed();
        stamp_activity(&mut self.activity, flushed, ticks_ceil(elapsed));
        elapsed
    }

    /// Stamps the read timeouts' `last_read` of the few connections with extras that read
    /// since the last stamp (`Net::touched_reads`), with `at`, or with the clock read now.
    pub(crate) fn stamp_reads_at(&mut self, at: Option<Duration>) {
        if self.touched_reads.is_empty() {
            return;
        }
        let at = ticks_ceil(at.unwrap_or_else(|| self.clock.elapsed()));
        self.stamp_reads(at);
    }

    /// [`stamp_reads_at`](Self::stamp_reads_at) with the tick given.
    fn stamp_reads(&mut self, at: Tick) {
        for i in 0..self.touched_reads.len() {
            let index = self.touched_reads[i];
            if let Some(Source::Conn(conn)) = self.sources.get_mut(index) {
                if let Some(extras) = conn.extras.as_deref_mut() {
                    extras.last_read = at;
                }
            }
        }
        self.touched_reads.clear();
    }

    /// Cancels the timer bounding a connection's current phase: the phase ends, or what it
    /// waited for came (the first byte, the connect verdict).
    pub(crate) fn end_phase_timer(&mut self, index: usize) {
        if let Some(key) = self.conn_at(index).and_then(|c| c.take_phase_timer()) {
            self.wheel.cancel(key);
        }
    }

    /// Arms the linger timer of a connection that just began closing: it bounds the whole
    /// close, flush included, so a peer that never reads cannot hold the connection open.
    pub(crate) fn arm_linger(&mut self, index: usize) {
        let (Some(conn), Some(id)) = (self.sources.get(index), self.conn_id(index)) else {
            return;
        };
        let Source::Conn(conn) = conn else {
            return;
        };
        let linger = conn.config.linger_timeout;
        let key = self.arm(linger, TimerEntry::Conn(id, ConnTimer::Linger));
        let set = self.conn_at(index).is_some_and(|c| {
            c.update_phase(|phase| match phase {
                Phase::Closing { linger, .. } => {
                    *linger = Some(key);
                    true
                }
                _ => false,
            })
        });
        if !set {
            self.wheel.cancel(key);
        }
    }

    /// (Re-)arms the watchdog for the earlier of the idle deadline (open connections with an
    /// idle timeout) and the write-stall deadline (queued output with a stall timeout), or
    /// disarms it when neither applies. Moving an armed watchdog is O(1).
    pub(crate) fn arm_watchdog(&mut self, index: usize) {
        let last_activity = self.last_activity(index);
        let Some(Source::Conn(conn)) = self.sources.get_mut(index) else {
            return;
        };
        let due = watchdog_due(conn, last_activity, self.now);
        let id = ConnId {
            index: index as u32,
            generation: conn.generation,
        };
        let entry = TimerEntry::Conn(id, ConnTimer::Watchdog);
        match (due, conn.watchdog) {
            (None, None) => {}
            (None, Some(key)) => {
                conn.watchdog = None;
                self.wheel.cancel(key);
            }
            (Some(due), Some(key)) => {
                // Only ever move it earlier here; a later deadline is found when it fires.
                if self.wheel.deadline(key).is_none_or(|at| at > due) && !self.wheel.reset(key, due)
                {
                    conn.watchdog = Some(self.wheel.insert(due, entry));
                }
            }
            (Some(due), None) => conn.watchdog = Some(self.wheel.insert(due, entry)),
        }
    }

    /// Arms the soft-output timer of a connection whose queued output is above its soft limit,
    /// or cancels it once the output is at or below (S21): the connection is dropped only if
    /// its output stays above the soft limit for the whole `soft_output_for`. Called when
    /// output is queued past the soft limit and when a flush brings it back down.
    pub(crate) fn track_soft_output(&mut self, index: usize) {
        let Some(Source::Conn(conn)) = self.sources.get_mut(index) else {
            return;
        };
        let over = !conn.is_dead() && conn.output.len() > conn.config.soft_output;
        let armed = conn
            .extras
            .as_ref()
            .is_some_and(|x| x.soft_output.is_some());
        if over == armed {
            return;
        }
        if armed {
            if let Some(key) = conn
                .extras
                .as_deref_mut()
                .and_then(|x| x.soft_output.take())
            {
                self.wheel.cancel(key);
            }
            return;
        }
        let id = ConnId {
            index: index as u32,
            generation: conn.generation,
        };
        let soft_for = conn.config.soft_output_for;
        let key = self.arm(soft_for, TimerEntry::Conn(id, ConnTimer::SoftOutput));
        if let Some(conn) = self.conn_at(index) {
            conn.extras().soft_output = Some(key);
        }
    }

    /// Changes a connection's idle timeout (`None`: none).
    pub(crate) fn set_idle_timeout(&mut self, id: ConnId, idle: Option<Duration>) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if conn.config.idle_timeout == idle {
            return;
        }
        let mut config = (*conn.config).clone();
        config.idle_timeout = idle;
        conn.config = std::rc::Rc::new(config);
        // A longer timeout is found lazily when the watchdog fires; a shorter one moves it now.
        self.arm_watchdog(id.index as usize);
    }

    /// Arms a handler timer on a connection.
    pub(crate) fn set_user_timer(
        &mut self,
        id: ConnId,
        after: Duration,
        tag: u64,
    ) -> Option<TimerId> {
        self.conn_ref(id)?;
        let key = self.arm(after, TimerEntry::Conn(id, ConnTimer::User));
        self.conn_mut(id)?.extras().user_timers.push((key, tag));
        Some(TimerId { key, tag })
    }

    /// Cancels a handler timer. Returns whether it was armed.
    pub(crate) fn cancel_user_timer(&mut self, id: ConnId, timer: TimerId) -> bool {
        let Some(extras) = self.conn_mut(id).and_then(|c| c.extras.as_deref_mut()) else {
            return false;
        };
        let before = extras.user_timers.len();
        extras.user_timers.retain(|(k, _)| *k != timer.key);
        if extras.user_timers.len() == before {
            return false;
        }
        self.wheel.cancel(timer.key).is_some()
    }

    /// Arms an application heartbeat, replacing any previous one.
    pub(crate) fn set_heartbeat(
        &mut self,
        id: ConnId,
        interval: Duration,
        read_idle: Duration,
    ) -> bool {
        self.cancel_heartbeat(id);
        if self.conn_ref(id).is_none() {
            return false;
        }
        let key = self.arm(interval, TimerEntry::Conn(id, ConnTimer::Heartbeat));
        let now = self.clock.now_ceil();
        let Some(conn) = self.conn_mut(id) else {
            return false;
        };
        let extras = conn.extras();
        extras.last_read = now;
        extras.heartbeat = Some(Heartbeat {
            key,
            interval,
            read_idle,
        });
        true
    }

    /// Stops a connection's heartbeat.
    pub(crate) fn cancel_heartbeat(&mut self, id: ConnId) {
        if let Some(hb) = self
            .conn_mut(id)
            .and_then(|c| c.extras.as_deref_mut())
            .and_then(|x| x.heartbeat.take())
        {
            self.wheel.cancel(hb.key);
        }
    }

    /// Cancels every timer of a connection being removed.
    pub(crate) fn cancel_conn_timers(&mut self, conn: &mut Conn) {
        let mut extras = conn.extras.take().map(|b| *b).unwrap_or_default();
        for key in [conn.take_phase_timer(), conn.watchdog.take()]
            .into_iter()
            .flatten()
            .chain(extras.user_timers.drain(..).map(|(key, _)| key))
            .chain(extras.heartbeat.take().map(|h| h.key))
            .chain(extras.soft_output.take())
        {
            self.wheel.cancel(key);
        }
        // The reason stays for `finalize` to report.
        if extras.reason.is_some() {
            conn.extras = Some(Box::new(extras));
        }
    }

    /// Timers armed for a connection (for snapshots).
    pub(crate) fn conn_timers(conn: &Conn) -> usize {
        [conn.phase_timer(), conn.watchdog].iter().flatten().count()
            + conn.extras.as_ref().map_or(0, |x| {
                x.user_timers.len()
                    + x.heartbeat.is_some() as usize
                    + x.soft_output.is_some() as usize
            })
    }
}

/// Stamps each connection of `indices` with `at`. The stamps live beside the slots
/// (`Net::activity`): a store each, no look-up of a slot. A slot freed and taken again since
/// its traffic gets a later stamp than its creation's: later is never early.
fn stamp_activity(activity: &mut [Tick], indices: &[usize], at: Tick) {
    for &index in indices {
        if let Some(stamp) = activity.get_mut(index) {
            *stamp = at;
        }
    }
}

/// When the watchdog must next look at a connection: the earlier of its idle and write-stall
/// deadlines, each a saturating sum rounded up.
fn watchdog_due(conn: &Conn, last_activity: Tick, now: Tick) -> Option<Tick> {
    let idle_due = match (&conn.phase(), conn.config.idle_timeout) {
        (Phase::Open { .. }, Some(idle)) => Some(last_activity.saturating_add(ticks_ceil(idle))),
        _ => None,
    };
    let stall_due = match (&conn.phase(), conn.output.progress(now)) {
        (Phase::Dead, _) | (_, None) => None,
        (_, Some(progress)) => conn
            .config
            .write_stall_timeout
            .map(|t| progress.saturating_add(ticks_ceil(t))),
    };
    match (idle_due, stall_due) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl<App> Core<App> {
    /// Fires one of a connection's timers.
    pub(crate) fn fire_conn(&mut self, key: TimerKey, id: ConnId, kind: ConnTimer) {
        let now = self.now;
        let index = id.index as usize;
        let last_activity = self.last_activity(index);
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        match kind {
            ConnTimer::Open => {
                if conn.phase_timer() != Some(key) {
                    return;
                }
                conn.take_phase_timer();
                match conn.phase() {
                    Phase::Connecting { .. } => self.kill(index, CloseReason::ConnectTimeout),
                    Phase::Open { .. } => self.close(index, CloseReason::IdleTimeout),
                    _ => {}
                }
            }
            ConnTimer::Linger => {
                if conn.phase_timer() != Some(key) {
                    return;
                }
                conn.take_phase_timer();
                self.kill(index, CloseReason::Local);
            }
            ConnTimer::Watchdog => {
                conn.watchdog = None;
                if let (Some(progress), Some(stall)) =
                    (conn.output.progress(now), conn.config.write_stall_timeout)
                {
                    if now >= progress.saturating_add(ticks_ceil(stall)) {
                        log::debug!("#{index}: no write progress for {stall:?}");
                        self.abort(index, CloseReason::TimedOut);
                        return;
                    }
                }
                if let (Phase::Open { .. }, Some(idle)) = (conn.phase(), conn.config.idle_timeout) {
                    if now >= last_activity.saturating_add(ticks_ceil(idle)) {
                        self.close(index, CloseReason::IdleTimeout);
                    }
                }
                // Traffic since arming moved the deadlines: re-arm lazily for the next one.
                self.arm_watchdog(index);
            }
            ConnTimer::Heartbeat => {
                let is_open = conn.is_open();
                let Some(extras) = conn.extras.as_deref_mut() else {
                    return;
                };
                let Some(hb) = extras.heartbeat.as_ref() else {
                    return;
                };
                if hb.key != key || !is_open {
                    return;
                }
                let (interval, read_idle) = (hb.interval, hb.read_idle);
                if now >= extras.last_read.saturating_add(ticks_ceil(read_idle)) {
                    log::debug!("#{index}: nothing received for {read_idle:?}");
                    extras.heartbeat = None;
                    self.close(index, CloseReason::IdleTimeout);
                    return;
                }
                let next = self.arm(interval, TimerEntry::Conn(id, ConnTimer::Heartbeat));
                if let Some(hb) = self
                    .conn_at(index)
                    .and_then(|c| c.extras.as_deref_mut())
                    .and_then(|x| x.heartbeat.as_mut())
                {
                    hb.key = next;
                }
                let timer = TimerId {
                    key,
                    tag: TimerId::HEARTBEAT,
                };
                self.call(index, |h, cx| h.on_timer(cx, timer));
            }
            ConnTimer::SoftOutput => {
                let (queued, soft) = (conn.output.len(), conn.config.soft_output);
                let dead = conn.is_dead();
                let Some(extras) = conn.extras.as_deref_mut() else {
                    return;
                };
                if extras.soft_output != Some(key) {
                    return;
                }
                extras.soft_output = None;
                // Armed while above the soft limit, cancelled on falling below: still above
                // means above for the whole period.
                if !dead && queued > soft {
                    log::debug!("#{index}: {queued} B queued, above {soft} B for too long");
                    self.stats.slow_consumers += 1;
                    self.abort(index, CloseReason::SlowConsumer);
                }
            }
            ConnTimer::User => {
                let dead = conn.is_dead();
                let Some(extras) = conn.extras.as_deref_mut() else {
                    return;
                };
                let Some(at) = extras.user_timers.iter().position(|(k, _)| *k == key) else {
                    return;
                };
                let (_, tag) = extras.user_timers.swap_remove(at);
                if dead {
                    return;
                }
                let timer = TimerId { key, tag };
                self.call(index, |h, cx| h.on_timer(cx, timer));
            }
        }
    }
}
