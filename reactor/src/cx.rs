//! The context handed to every handler callback.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use crate::conn::State;
use crate::core::Core;
use crate::timer::{ConnTimer, TimerEntry};
use crate::{CloseReason, ConnConfig, ConnId, Protocol, Shared, SocketRef, Stats, TaskId, TimerId};

/// What a handler can do while one of its callbacks runs: reach the shared user state, write to
/// its own or any other connection, arm timers, close, connect.
///
/// Writes are queued and flushed once at the end of the loop turn with one gather write per
/// connection (S15); a `Cx` never blocks.
///
/// A `Cx` handed to a callback that is not about one connection (a signal handler, a posted
/// closure) has no current connection: the methods about "this connection" then do nothing and
/// return `false`/`None`.
pub struct Cx<'a, App> {
    core: &'a mut Core<App>,
    id: ConnId,
}

impl<App> std::fmt::Debug for Cx<'_, App> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cx").field("conn", &self.id).finish()
    }
}

/// The id of "no connection", for contexts outside connection callbacks.
pub(crate) const NO_CONN: ConnId = ConnId {
    index: u32::MAX,
    generation: 0,
};

impl<'a, App> Cx<'a, App> {
    pub(crate) fn new(core: &'a mut Core<App>, id: ConnId) -> Self {
        Cx { core, id }
    }

    /// The user state shared by every handler of this reactor.
    pub fn app(&mut self) -> &mut App {
        &mut self.core.app
    }

    /// This connection.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Queues a copy of `data` on this connection. Returns `false` if the connection no longer
    /// takes writes (closing, half-closed, or gone).
    pub fn write(&mut self, data: &[u8]) -> bool {
        self.core
            .queue(self.id, data.len(), |q, now| q.push_slice(data, now))
    }

    /// Queues an owned buffer on this connection without copying it.
    pub fn write_vec(&mut self, data: Vec<u8>) -> bool {
        let len = data.len();
        self.core
            .queue(self.id, len, |q, now| q.push_vec(data, now))
    }

    /// Queues a shared buffer on this connection without copying it (S16).
    pub fn write_shared(&mut self, data: &Shared) -> bool {
        self.core.queue(self.id, data.len(), |q, now| {
            q.push_shared(data.clone(), now)
        })
    }

    /// Queues a copy of `data` on another connection.
    pub fn send_to(&mut self, conn: ConnId, data: &[u8]) -> bool {
        self.core
            .queue(conn, data.len(), |q, now| q.push_slice(data, now))
    }

    /// Queues a shared buffer on another connection: the way to broadcast one message to many
    /// connections with one allocation (S16).
    pub fn send_shared_to(&mut self, conn: ConnId, data: &Shared) -> bool {
        self.core
            .queue(conn, data.len(), |q, now| q.push_shared(data.clone(), now))
    }

    /// Bytes queued on this connection and not yet accepted by the kernel.
    pub fn queued(&self) -> usize {
        self.queued_on(self.id)
    }

    /// Bytes queued on any connection.
    pub fn queued_on(&self, conn: ConnId) -> usize {
        self.core.conn_ref(conn).map_or(0, |c| c.output.len())
    }

    /// Whether a connection exists and is open (not closing).
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.core
            .conn_ref(conn)
            .is_some_and(|c| c.state == State::Open)
    }

    /// Closes this connection gracefully: flush what is queued, send FIN, wait for the peer's
    /// end of stream (bounded by the linger timeout), then close (S14).
    pub fn close(&mut self) {
        self.close_with(CloseReason::Local);
    }

    /// Closes this connection gracefully, reporting `reason` (e.g. a protocol error).
    pub fn close_with(&mut self, reason: CloseReason) {
        self.close_conn(self.id, reason);
    }

    /// Closes any connection gracefully.
    pub fn close_conn(&mut self, conn: ConnId, reason: CloseReason) {
        if self.core.conn_ref(conn).is_some() {
            self.core.close(conn.index as usize, reason);
        }
    }

    /// Closes this connection at once with RST, dropping queued output. For misbehaving peers
    /// only: a normal close is graceful (S17).
    pub fn abort(&mut self) {
        self.abort_conn(self.id, CloseReason::Aborted);
    }

    /// Aborts any connection with RST.
    pub fn abort_conn(&mut self, conn: ConnId, reason: CloseReason) {
        if self.core.conn_ref(conn).is_some() {
            self.core.abort(conn.index as usize, reason);
        }
    }

    /// Half-closes: once queued output is flushed, send FIN. Reading goes on.
    pub fn shutdown_write(&mut self) {
        let index = self.id.index as usize;
        if let Some(conn) = self.core.conn_mut(self.id) {
            conn.shut_requested = true;
            self.core.mark_dirty(index);
        }
    }

    /// Stops reading from this connection until [`resume_reading`](Self::resume_reading).
    pub fn pause_reading(&mut self) {
        if let Some(conn) = self.core.conn_mut(self.id) {
            conn.paused_by_user = true;
        }
    }

    /// Resumes reading. Input kept while paused is offered again on the next turn.
    pub fn resume_reading(&mut self) {
        let index = self.id.index as usize;
        if let Some(conn) = self.core.conn_mut(self.id) {
            if conn.paused_by_user {
                conn.paused_by_user = false;
                self.core.mark_ready(index);
            }
        }
    }

    /// Arms a one-shot timer on this connection; [`Protocol::on_timer`] gets its id when it
    /// fires. Never fires early; cancelled automatically when the connection ends.
    pub fn set_timer(&mut self, after: Duration, tag: u64) -> Option<TimerId> {
        self.core.conn_ref(self.id)?;
        let key = self
            .core
            .arm(after, TimerEntry::Conn(self.id, ConnTimer::User));
        self.core
            .conn_mut(self.id)?
            .extras()
            .user_timers
            .push((key, tag));
        Some(TimerId { key, tag })
    }

    /// Cancels a timer armed with [`set_timer`](Self::set_timer). Returns whether it was armed.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        let Some(extras) = self
            .core
            .conn_mut(self.id)
            .and_then(|c| c.extras.as_deref_mut())
        else {
            return false;
        };
        let before = extras.user_timers.len();
        extras.user_timers.retain(|(k, _)| *k != timer.key);
        if extras.user_timers.len() == before {
            return false;
        }
        self.core.wheel.cancel(timer.key).is_some()
    }

    /// Arms an application heartbeat (S13), replacing any previous one: every `interval`,
    /// [`Protocol::on_timer`] runs with a timer whose tag is [`TimerId::HEARTBEAT`] (send your
    /// ping there), and if nothing at all was received for `read_idle` the connection is closed
    /// with [`CloseReason::IdleTimeout`]. TCP keepalive (see [`crate::SocketRef::set_keepalive`])
    /// notices a vanished host; a heartbeat also notices a hung peer application.
    pub fn set_heartbeat(&mut self, interval: Duration, read_idle: Duration) -> bool {
        self.cancel_heartbeat();
        if self.core.conn_ref(self.id).is_none() {
            return false;
        }
        let key = self
            .core
            .arm(interval, TimerEntry::Conn(self.id, ConnTimer::Heartbeat));
        let now = self.core.now;
        let Some(conn) = self.core.conn_mut(self.id) else {
            return false;
        };
        let extras = conn.extras();
        extras.last_read = now;
        extras.heartbeat = Some(crate::conn::Heartbeat {
            key,
            interval,
            read_idle,
        });
        true
    }

    /// Stops the heartbeat armed with [`set_heartbeat`](Self::set_heartbeat).
    pub fn cancel_heartbeat(&mut self) {
        if let Some(hb) = self
            .core
            .conn_mut(self.id)
            .and_then(|c| c.extras.as_deref_mut())
            .and_then(|x| x.heartbeat.take())
        {
            self.core.wheel.cancel(hb.key);
        }
    }

    /// Changes this connection's idle timeout (`None`: none).
    pub fn set_idle_timeout(&mut self, idle: Option<Duration>) {
        let index = self.id.index as usize;
        let Some(conn) = self.core.conn_mut(self.id) else {
            return;
        };
        if conn.config.idle_timeout == idle {
            return;
        }
        let mut config = (*conn.config).clone();
        config.idle_timeout = idle;
        conn.config = Rc::new(config);
        // A longer timeout is found lazily when the watchdog fires; a shorter one moves it now.
        self.core.arm_watchdog(index);
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.core.conn_ref(self.id)?.stream.peer_addr().ok()
    }

    /// The local address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.core.conn_ref(self.id)?.stream.local_addr().ok()
    }

    /// Socket options of this connection (S20).
    pub fn socket(&self) -> Option<SocketRef<'_>> {
        Some(SocketRef::new(self.core.conn_ref(self.id)?.stream.fd()?))
    }

    /// Bytes waiting in the kernel's receive queue (`FIONREAD`, S22).
    pub fn bytes_readable(&self) -> io::Result<usize> {
        self.socket()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?
            .bytes_readable()
    }

    /// Copies queued input without consuming it (`MSG_PEEK`, S22).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?
            .peek(buf)
    }

    /// Opens an outgoing connection served by `handler` (S4). It gets `on_open` once connected,
    /// or `on_close` with the precise reason if the attempt fails or times out.
    pub fn connect(
        &mut self,
        addr: SocketAddr,
        handler: impl Protocol<App> + 'static,
        config: ConnConfig,
    ) -> io::Result<ConnId> {
        self.core.connect(addr, Box::new(handler), Rc::new(config))
    }

    /// The reactor's clock: real time, or the test harness's clock (which only the harness's
    /// `advance` moves). Deadlines that must agree with the reactor's timers are measured on it.
    pub fn now(&self) -> std::time::Instant {
        self.core.clock.instant()
    }

    /// Runs `f` once, `after` from now, inside the loop (not tied to any connection).
    pub fn schedule(
        &mut self,
        after: Duration,
        f: impl FnOnce(&mut Cx<'_, App>) + 'static,
    ) -> TaskId {
        self.core
            .schedule_task(after, crate::task::TaskKind::Once(Box::new(f)))
    }

    /// Runs `f` every `interval` until it returns `false` or is cancelled: the building block
    /// of heartbeats and periodic sweeps (S13).
    pub fn every(
        &mut self,
        interval: Duration,
        f: impl FnMut(&mut Cx<'_, App>) -> bool + 'static,
    ) -> TaskId {
        self.core.schedule_task(
            interval,
            crate::task::TaskKind::Repeat(Box::new(f), interval),
        )
    }

    /// Cancels a closure scheduled with [`schedule`](Self::schedule) or
    /// [`every`](Self::every). Returns whether it was still scheduled.
    pub fn cancel(&mut self, task: TaskId) -> bool {
        self.core.cancel_task(task)
    }

    /// Starts a graceful shutdown of the whole reactor (see [`crate::Reactor::shutdown`]).
    pub fn shutdown_reactor(&mut self, grace: Duration) {
        self.core.begin_shutdown(grace);
    }

    /// A snapshot of every connection of this reactor.
    pub fn connections(&self) -> Vec<crate::ConnSnapshot> {
        self.core.snapshot()
    }

    /// Aborts every connection and makes the reactor's `run` return at the end of this turn.
    pub fn stop_reactor_now(&mut self) {
        self.core.stop_now();
    }

    /// The reactor's counters.
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }
}
