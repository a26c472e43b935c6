//! The contexts handed to callbacks, by scope: [`LoopCx`] reaches the whole loop (user state,
//! any connection by id, timers and closures not tied to a connection, listen and connect,
//! stats, shutdown); [`Cx`] is one connection's context and dereferences to the loop's, so
//! every loop-wide call works from a handler too.
//!
//! # Implementation notes
//! Contexts only ask the core to act (queue, close, arm a timer); the core's modules own every
//! change of a connection's state. [`LoopCx::split`] lends the user state and the other
//! connections apart ([`Conns`]), which the core allows because queueing and closing never run
//! a handler.

use std::io;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::core::tasks::{Pace, TaskKind};
use crate::core::{Core, Net};

mod conns;
mod unix;
use crate::{
    CloseReason, ConnConfig, ConnId, ConnStats, Protocol, Shared, SocketRef, Stats, TaskId, TimerId,
};

/// The loop-wide context: what closures, signal callbacks, posted work and embedding code get
/// ([`Reactor::cx`](crate::Reactor::cx)), and what every [`Cx`] dereferences to.
///
/// Everything here names its connection by [`ConnId`]; a call about a connection that no longer
/// exists does nothing and says so in its return value.
pub struct LoopCx<'a, App> {
    core: &'a mut Core<App>,
}

/// The context of one connection's callback: this connection's operations, plus everything of
/// [`LoopCx`] through `Deref`.
///
/// Writes are queued and flushed once at the end of the loop turn with one gather write per
/// connection (S15); a context never blocks.
pub struct Cx<'a, App> {
    lp: LoopCx<'a, App>,
    id: ConnId,
}

/// The connections of the loop, lent apart from the user state by [`LoopCx::split`], so a
/// handler can walk its own data while it writes to others (a broadcast).
pub struct Conns<'a, App> {
    net: &'a mut Net<App>,
}

impl<App> std::fmt::Debug for LoopCx<'_, App> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopCx").finish_non_exhaustive()
    }
}

impl<App> std::fmt::Debug for Cx<'_, App> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cx").field("conn", &self.id).finish()
    }
}

impl<App> std::fmt::Debug for Conns<'_, App> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conns").finish_non_exhaustive()
    }
}

impl<'a, App> Deref for Cx<'a, App> {
    type Target = LoopCx<'a, App>;
    fn deref(&self) -> &LoopCx<'a, App> {
        &self.lp
    }
}

impl<App> DerefMut for Cx<'_, App> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.lp
    }
}

impl<'a, App> LoopCx<'a, App> {
    pub(crate) fn new(core: &'a mut Core<App>) -> Self {
        LoopCx { core }
    }

    /// The core, for the loop-wide calls defined beside their feature (user sources, UDP
    /// sockets).
    pub(crate) fn core_mut(&mut self) -> &mut Core<App> {
        self.core
    }

    /// The core, read-only.
    pub(crate) fn core_ref(&self) -> &Core<App> {
        self.core
    }

    fn conns(&mut self) -> Conns<'_, App> {
        Conns {
            net: self.core.split().1,
        }
    }

    /// The user state shared by every handler of this reactor.
    pub fn app(&mut self) -> &mut App {
        self.core.app()
    }

    /// The user state and the connections, borrowed apart: hold `&mut App` (a member list)
    /// while writing to other connections.
    ///
    /// ```
    /// use evdrive_reactor::{ConnId, Cx, Protocol};
    ///
    /// /// Sends every line to every member of the room (the user state).
    /// struct Member;
    /// impl Protocol<Vec<ConnId>> for Member {
    ///     fn on_data(&mut self, cx: &mut Cx<'_, Vec<ConnId>>, data: &[u8]) -> usize {
    ///         let (members, mut conns) = cx.split();
    ///         for &id in members.iter() {
    ///             conns.send_to(id, data);
    ///         }
    ///         data.len()
    ///     }
    /// }
    /// # let _ = Member;
    /// ```
    pub fn split(&mut self) -> (&mut App, Conns<'_, App>) {
        let (app, net) = self.core.split();
        (app, Conns { net })
    }

    /// The reactor's clock: real time, or the test harness's hand-moved clock.
    pub fn now(&self) -> Instant {
        self.core.instant()
    }

    /// Queues a copy of `data` on `conn`; see [`Conns::send_to`].
    #[inline]
    pub fn send_to(&mut self, conn: ConnId, data: &[u8]) -> bool {
        self.conns().send_to(conn, data)
    }

    /// Queues an owned buffer on `conn` without copying it.
    ///
    /// # Errors
    /// Hands the buffer back if the connection does not exist or no longer takes writes.
    pub fn send_vec_to(&mut self, conn: ConnId, data: Vec<u8>) -> Result<(), Vec<u8>> {
        self.conns().send_vec_to(conn, data)
    }

    /// Queues a shared buffer on `conn` without copying it (S16); see
    /// [`Conns::send_shared_to`].
    pub fn send_shared_to(&mut self, conn: ConnId, data: &Shared) -> bool {
        self.conns().send_shared_to(conn, data)
    }

    /// Bytes queued on `conn`; see [`Conns::queued_on`].
    pub fn queued_on(&self, conn: ConnId) -> usize {
        self.core.queued_on(conn)
    }

    /// Whether `conn` exists and is open; see [`Conns::is_open`].
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.core.is_open(conn)
    }

    /// Closes `conn` gracefully; see [`Conns::close_conn`].
    pub fn close_conn(&mut self, conn: ConnId, reason: CloseReason) -> bool {
        self.conns().close_conn(conn, reason)
    }

    /// Aborts `conn` with RST; see [`Conns::abort_conn`].
    pub fn abort_conn(&mut self, conn: ConnId, reason: CloseReason) -> bool {
        self.conns().abort_conn(conn, reason)
    }

    /// Half-closes `conn`; see [`Conns::shutdown_write_conn`].
    pub fn shutdown_write_conn(&mut self, conn: ConnId) -> bool {
        self.conns().shutdown_write_conn(conn)
    }

    /// Pauses reading from `conn`; see [`Conns::pause_reading_conn`].
    pub fn pause_reading_conn(&mut self, conn: ConnId) -> bool {
        self.conns().pause_reading_conn(conn)
    }

    /// Resumes reading from `conn`; see [`Conns::resume_reading_conn`].
    pub fn resume_reading_conn(&mut self, conn: ConnId) -> bool {
        self.conns().resume_reading_conn(conn)
    }

    /// Links two connections, `a` and `b`: from now on the reactor moves every byte read from
    /// one onto the other's output, without calling their handlers' `on_data`. The way to
    /// write a forwarder (a proxy's client and upstream); either may still be connecting.
    ///
    /// - **Backpressure crosses the link** (S21): when `b`'s output passes its high-water mark,
    ///   `a` stops reading until that output drains to its low-water mark, and the other way
    ///   round; each direction holds at most its high-water mark plus one read in memory.
    /// - **End of stream is a half-close** (S14): `a`'s peer FIN becomes a FIN to `b`'s peer
    ///   once everything `a` sent is flushed; reading goes on both ways. Once both peers sent
    ///   FIN and both FINs went out, both close with [`CloseReason::PeerClosed`]. Nothing is
    ///   discarded, unlike a graceful [`close_conn`](Self::close_conn) of the other side
    ///   (which stops reading, so input arriving meanwhile is thrown away).
    /// - **Errors cross too**: if one ends first (reset, timeout, refused connect, a close by
    ///   its handler), the other is closed gracefully with [`CloseReason::LinkClosed`] naming
    ///   the kind of the first one's reason.
    ///
    /// Input either kept unconsumed is passed on at once. Linked handlers still hear
    /// `on_open`, `on_timer` and `on_close`; `on_data`, `on_eof`, `on_high_water` and
    /// `on_drained` are the link's.
    ///
    /// Returns `false`, linking nothing, if either connection does not exist, is closing or
    /// already linked, or if `a == b`.
    ///
    /// ```
    /// use evdrive_reactor::{ConnConfig, Cx, Protocol};
    /// use std::net::SocketAddr;
    ///
    /// /// A client of a TCP forwarder: connects upstream and links the two.
    /// struct Client(SocketAddr);
    /// struct Upstream;
    /// impl Protocol<()> for Upstream {
    ///     fn on_data(&mut self, _: &mut Cx<'_, ()>, data: &[u8]) -> usize { data.len() }
    /// }
    /// impl Protocol<()> for Client {
    ///     fn on_open(&mut self, cx: &mut Cx<'_, ()>) {
    ///         let me = cx.id();
    ///         match cx.connect(self.0, Upstream, ConnConfig::new()) {
    ///             Ok(up) => { cx.link(me, up); }
    ///             Err(_) => cx.close(),
    ///         }
    ///     }
    ///     // Never called once linked.
    ///     fn on_data(&mut self, _: &mut Cx<'_, ()>, data: &[u8]) -> usize { data.len() }
    /// }
    /// # let _ = Client("127.0.0.1:1".parse().unwrap());
    /// ```
    pub fn link(&mut self, a: ConnId, b: ConnId) -> bool {
        self.core.link(a, b)
    }

    /// Arms a timer on `conn`, fired in its handler's [`Protocol::on_timer`]; see
    /// [`Conns::set_timer_conn`].
    pub fn set_timer_conn(&mut self, conn: ConnId, after: Duration, tag: u64) -> Option<TimerId> {
        self.conns().set_timer_conn(conn, after, tag)
    }

    /// Cancels a timer armed on `conn`; see [`Conns::cancel_timer_conn`].
    pub fn cancel_timer_conn(&mut self, conn: ConnId, timer: TimerId) -> bool {
        self.conns().cancel_timer_conn(conn, timer)
    }

    /// The counters of `conn`; see [`Conns::conn_stats`].
    pub fn conn_stats(&self, conn: ConnId) -> Option<ConnStats> {
        self.core.conn_stats(conn)
    }

    /// Opens an outgoing connection served by `handler` (S4). It gets `on_open` once connected,
    /// or `on_close` with the precise reason if the attempt fails or times out.
    ///
    /// # Errors
    /// Only what fails before any attempt: creating the socket (e.g. `EMFILE`), setting its
    /// buffer sizes, or registering it. A refused or timed-out connect is reported through
    /// `on_close` instead.
    pub fn connect(
        &mut self,
        addr: SocketAddr,
        handler: impl Protocol<App> + 'static,
        config: ConnConfig,
    ) -> io::Result<ConnId> {
        self.core.connect(addr, Box::new(handler), Rc::new(config))
    }

    /// Runs `f` once, `after` from now, inside the loop (not tied to any connection).
    pub fn schedule(
        &mut self,
        after: Duration,
        f: impl FnOnce(&mut LoopCx<'_, App>) + 'static,
    ) -> TaskId {
        self.core.schedule_task(after, TaskKind::Once(Box::new(f)))
    }

    /// Runs `f` every `period` at a fixed rate until it returns `false` or is cancelled: the
    /// building block of heartbeats and periodic sweeps (S9, S13). The same as
    /// [`every_fixed_rate`](Self::every_fixed_rate).
    pub fn every(
        &mut self,
        period: Duration,
        f: impl FnMut(&mut LoopCx<'_, App>) -> bool + 'static,
    ) -> TaskId {
        self.every_fixed_rate(period, f)
    }

    /// Runs `f` at a fixed rate: the n-th run is due `n·period` after this call, however long
    /// each run takes and however late the loop got to it, so the period does not drift (a
    /// 100 ms period averages 100 ms). A run is never early; if the loop was so late that
    /// whole periods passed, they are skipped rather than run in a burst. Stops when `f`
    /// returns `false` or the task is [cancelled](Self::cancel).
    ///
    /// ```
    /// use evdrive_reactor::Reactor;
    /// use std::time::Duration;
    ///
    /// let mut reactor = Reactor::new(0u32)?;
    /// // Ten ticks of 1 ms, not tied to any connection, then stop the loop.
    /// reactor.cx().every_fixed_rate(Duration::from_millis(1), |cx| {
    ///     *cx.app() += 1;
    ///     if *cx.app() == 10 {
    ///         cx.shutdown_reactor(Duration::ZERO);
    ///     }
    ///     *cx.app() < 10
    /// });
    /// reactor.run()?;
    /// assert_eq!(*reactor.app(), 10);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn every_fixed_rate(
        &mut self,
        period: Duration,
        f: impl FnMut(&mut LoopCx<'_, App>) -> bool + 'static,
    ) -> TaskId {
        let kind = TaskKind::Repeat(Box::new(f), period, Pace::Rate { due: None });
        self.core.schedule_task(period, kind)
    }

    /// Runs `f` with a fixed delay between runs: each next run is due `delay` after the
    /// previous one returned, so lateness adds up over time (the period averages a little more
    /// than `delay`). For "at least this long between two runs". Stops as
    /// [`every_fixed_rate`](Self::every_fixed_rate) does.
    pub fn every_fixed_delay(
        &mut self,
        delay: Duration,
        f: impl FnMut(&mut LoopCx<'_, App>) -> bool + 'static,
    ) -> TaskId {
        let kind = TaskKind::Repeat(Box::new(f), delay, Pace::Delay);
        self.core.schedule_task(delay, kind)
    }

    /// Cancels a closure scheduled with [`schedule`](Self::schedule) or one of the `every`
    /// calls. Returns whether it was still scheduled.
    pub fn cancel(&mut self, task: TaskId) -> bool {
        self.core.cancel_task(task)
    }

    /// Starts a graceful shutdown of the whole reactor (see [`crate::Reactor::shutdown`]).
    pub fn shutdown_reactor(&mut self, grace: Duration) {
        self.core.begin_shutdown(grace);
    }

    /// Whether a shutdown has begun (see [`crate::Reactor::is_shutting_down`]): a handler
    /// that reconnects somewhere should stop trying.
    pub fn is_shutting_down(&self) -> bool {
        self.core.is_shutting_down()
    }

    /// Aborts every connection and makes the reactor's `run` return at the end of this turn.
    pub fn stop_reactor_now(&mut self) {
        self.core.stop_now();
    }

    /// A snapshot of every connection of this reactor.
    pub fn connections(&self) -> Vec<crate::ConnSnapshot> {
        self.core.snapshot()
    }

    /// The reactor's counters.
    pub fn stats(&self) -> &Stats {
        self.core.stats()
    }
}

impl<'a, App> Cx<'a, App> {
    pub(crate) fn new(core: &'a mut Core<App>, id: ConnId) -> Self {
        Cx {
            lp: LoopCx::new(core),
            id,
        }
    }

    /// This connection.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Queues a copy of `data` on this connection. Returns `false` if the connection no longer
    /// takes writes (closing, half-closed, or gone).
    #[inline]
    pub fn write(&mut self, data: &[u8]) -> bool {
        let id = self.id;
        self.lp.send_to(id, data)
    }

    /// Queues an owned buffer on this connection without copying it.
    ///
    /// # Errors
    /// Hands the buffer back if the connection no longer takes writes.
    pub fn write_vec(&mut self, data: Vec<u8>) -> Result<(), Vec<u8>> {
        let id = self.id;
        self.lp.send_vec_to(id, data)
    }

    /// Queues a shared buffer on this connection without copying it (S16).
    pub fn write_shared(&mut self, data: &Shared) -> bool {
        let id = self.id;
        self.lp.send_shared_to(id, data)
    }

    /// Bytes queued on this connection and not yet accepted by the kernel.
    pub fn queued(&self) -> usize {
        self.lp.queued_on(self.id)
    }

    /// Closes this connection gracefully: flush what is queued, send FIN, wait for the peer's
    /// end of stream (bounded by the linger timeout), then close (S14).
    ///
    /// Input that arrives after this call, and input kept unconsumed, is discarded: the socket
    /// is still read (so unread bytes never turn the close into an RST) but nothing more
    /// reaches [`Protocol::on_data`]. A handler that must see everything the peer still sends
    /// (a forwarder passing on an end of stream) calls [`shutdown_write`](Self::shutdown_write)
    /// instead and closes from [`Protocol::on_eof`], which is what the default `on_eof` does.
    pub fn close(&mut self) {
        self.close_with(CloseReason::Local);
    }

    /// Closes this connection gracefully, reporting `reason` (e.g. a protocol error).
    pub fn close_with(&mut self, reason: CloseReason) {
        let id = self.id;
        self.lp.close_conn(id, reason);
    }

    /// Closes this connection at once with RST, dropping queued output. For misbehaving peers
    /// only: a normal close is graceful (S17).
    pub fn abort(&mut self) {
        let id = self.id;
        self.lp.abort_conn(id, CloseReason::Aborted);
    }

    /// Half-closes: once every queued byte is flushed, send FIN (`shutdown(SHUT_WR)`). Reading
    /// goes on: input keeps being delivered to [`Protocol::on_data`] until the peer's end of
    /// stream, then [`Protocol::on_eof`] runs (by default it closes, which completes at once
    /// since the FIN is out). Writes after this call are refused. This is the graceful close
    /// that loses no input ("drain"): see [`close`](Self::close) for the one that discards it.
    pub fn shutdown_write(&mut self) {
        let id = self.id;
        self.lp.shutdown_write_conn(id);
    }

    /// Stops reading from this connection until [`resume_reading`](Self::resume_reading).
    pub fn pause_reading(&mut self) {
        let id = self.id;
        self.lp.pause_reading_conn(id);
    }

    /// Resumes reading. Input kept while paused is offered again on the next turn.
    pub fn resume_reading(&mut self) {
        let id = self.id;
        self.lp.resume_reading_conn(id);
    }

    /// Arms a one-shot timer on this connection; [`Protocol::on_timer`] gets its id when it
    /// fires. Never fires early; cancelled automatically when the connection ends.
    pub fn set_timer(&mut self, after: Duration, tag: u64) -> Option<TimerId> {
        let id = self.id;
        self.lp.set_timer_conn(id, after, tag)
    }

    /// Cancels a timer armed with [`set_timer`](Self::set_timer). Returns whether it was armed.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        let id = self.id;
        self.lp.cancel_timer_conn(id, timer)
    }

    /// Arms an application heartbeat (S13), replacing any previous one: every `interval`,
    /// [`Protocol::on_timer`] runs with a timer whose tag is [`TimerId::HEARTBEAT`] (send your
    /// ping there), and if nothing at all was received for `read_idle` the connection is closed
    /// with [`CloseReason::IdleTimeout`]. TCP keepalive (see [`crate::SocketRef::set_keepalive`])
    /// notices a vanished host; a heartbeat also notices a hung peer application.
    pub fn set_heartbeat(&mut self, interval: Duration, read_idle: Duration) -> bool {
        self.lp.core.set_heartbeat(self.id, interval, read_idle)
    }

    /// Stops the heartbeat armed with [`set_heartbeat`](Self::set_heartbeat).
    pub fn cancel_heartbeat(&mut self) {
        self.lp.core.cancel_heartbeat(self.id);
    }

    /// Replaces this connection's handler with `handler` once the running callback returns:
    /// the protocol changes mid-stream (an HTTP request upgraded to WebSocket).
    ///
    /// After the callback returns, the old handler is dropped without
    /// [`on_close`](Protocol::on_close) (the connection goes on), the new one gets
    /// [`on_open`](Protocol::on_open), and then every input byte the old one did not consume
    /// (from [`on_data`](Protocol::on_data)'s return value), such as bytes that followed an
    /// upgrade request in the same read. `on_close` still runs exactly once, to the handler in
    /// the slot when the connection ends. The last request of a callback wins.
    ///
    /// Returns `false`, dropping `handler` unused, if the connection is not open (closing, or
    /// gone); a connection that starts closing later in the same callback also drops it.
    pub fn replace_handler(&mut self, handler: Box<dyn Protocol<App>>) -> bool {
        self.lp.core.request_replacement(self.id, handler)
    }

    /// Changes this connection's idle timeout (`None`: none).
    pub fn set_idle_timeout(&mut self, idle: Option<Duration>) {
        self.lp.core.set_idle_timeout(self.id, idle);
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.lp.core.peer_addr(self.id)
    }

    /// The local address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.lp.core.local_addr(self.id)
    }

    /// Socket options of this connection (S20); `None` if it is gone or has no descriptor.
    pub fn socket(&self) -> Option<SocketRef<'_>> {
        Some(SocketRef::new(self.lp.core.conn_fd(self.id)?))
    }

    /// Bytes waiting in the kernel's receive queue (`FIONREAD`, S22).
    ///
    /// # Errors
    /// `NotConnected` if the connection is gone or has no descriptor; otherwise the `ioctl`'s.
    pub fn bytes_readable(&self) -> io::Result<usize> {
        self.socket()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?
            .bytes_readable()
    }

    /// Copies queued input without consuming it (`MSG_PEEK`, S22).
    ///
    /// # Errors
    /// `NotConnected` if the connection is gone or has no descriptor; otherwise the `recv`'s.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?
            .peek(buf)
    }
}
