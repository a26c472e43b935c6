//! The part of the reactor that handlers reach through [`Cx`]: every source, the timer wheel,
//! the user state, and the operations on connections (queue, flush, close, fire timers).
//!
//! # Implementation notes
//! A handler is taken out of its slot while one of its callbacks runs ([`Core::call`]), so the
//! callback can hold `&mut Core` and reach every other connection's output queue. Nothing in
//! here removes a slot except [`Core::finalize`], which runs at the end of a turn; a callback
//! therefore always finds its slot when it returns.
//!
//! A connection's life is `Connecting → Open → Closing → Dead`. Every way out (error, timeout,
//! close, abort) ends in [`Core::kill`], which queues the slot for `finalize`: the one place that
//! calls `on_close`, so it runs exactly once.

use std::io;
use std::rc::Rc;
use std::time::Duration;

use mio::{Interest, Token};
use slab::Slab;
use timers::{Tick, TimerKey, Wheel};

use crate::conn::{Conn, State};
use crate::listener::Listener;
use crate::outbuf::OutQueue;
use crate::stats::Stats;
use crate::stream::Stream;
use crate::timer::{Clock, ConnTimer, TimerEntry};
use crate::{sys, CloseReason, ConnConfig, ConnId, Cx, Protocol};

/// How many reads one connection gets per turn before others are served (fairness); it is then
/// put on the ready list and served next turn without waiting for a new edge.
pub(crate) const READS_PER_TURN: usize = 16;

/// A slot of the reactor's slab; its key is the mio token.
pub(crate) enum Source<App> {
    /// Boxed: listeners are few, and the slab's element size is set by the largest variant.
    Listener(Box<Listener<App>>),
    Conn(Conn<App>),
    /// The read end of the signal pipe.
    Signals,
    /// The cross-thread waker of the [`Handle`](crate::Handle) mailbox.
    Waker,
}

/// Everything a callback can reach.
pub(crate) struct Core<App> {
    /// The user's state, shared by all handlers.
    pub(crate) app: App,
    /// For registering new sockets from inside callbacks.
    pub(crate) registry: mio::Registry,
    /// Listeners, connections and internal sources; the key is the mio token.
    pub(crate) sources: Slab<Source<App>>,
    /// Every timeout of the reactor (S8, S9).
    pub(crate) wheel: Wheel<TimerEntry>,
    pub(crate) clock: Clock,
    /// The tick at the start of the current turn's dispatch.
    pub(crate) now: Tick,
    /// Connections written to during this turn, flushed once at its end (S15).
    pub(crate) dirty: Vec<usize>,
    /// Sources to serve next turn without waiting for an edge (read budget spent, reading
    /// resumed, accept budget spent).
    pub(crate) ready: Vec<usize>,
    /// Connections to remove and report at the end of this turn.
    pub(crate) dead: Vec<usize>,
    /// Generation for the next connection (see [`ConnId`]).
    pub(crate) next_generation: u32,
    pub(crate) stats: Stats,
    /// Set once a shutdown has begun: no new connections, run() returns when all are closed.
    pub(crate) shutting_down: bool,
    /// Set when the loop must return at the end of this turn (abortive stop).
    pub(crate) stop_now: bool,
    /// Closures scheduled on the wheel.
    pub(crate) tasks: Slab<crate::task::Task<App>>,
    /// Loop-wide limits (connections, output budget).
    pub(crate) limits: crate::Limits,
    /// Output bytes queued across all connections, kept for the output budget.
    pub(crate) queued_total: usize,
    /// Some listener is paused at the connection limit.
    pub(crate) listeners_at_limit: bool,
}

impl<App> Core<App> {
    /// The connection at a slab index.
    pub(crate) fn conn_at(&mut self, index: usize) -> Option<&mut Conn<App>> {
        match self.sources.get_mut(index) {
            Some(Source::Conn(c)) => Some(c),
            _ => None,
        }
    }

    /// The connection an id names, if it still exists.
    pub(crate) fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn<App>> {
        self.conn_at(id.index as usize)
            .filter(|c| c.generation == id.generation)
    }

    pub(crate) fn conn_ref(&self, id: ConnId) -> Option<&Conn<App>> {
        match self.sources.get(id.index as usize) {
            Some(Source::Conn(c)) if c.generation == id.generation => Some(c),
            _ => None,
        }
    }

    fn id_at(&self, index: usize) -> Option<ConnId> {
        match self.sources.get(index) {
            Some(Source::Conn(c)) => Some(ConnId {
                index: index as u32,
                generation: c.generation,
            }),
            _ => None,
        }
    }

    /// Runs `f` with the connection's handler taken out of its slot and a context for it.
    /// Returns `None` if there is no such connection or its handler is already running.
    pub(crate) fn call<R>(
        &mut self,
        index: usize,
        f: impl FnOnce(&mut dyn Protocol<App>, &mut Cx<'_, App>) -> R,
    ) -> Option<R> {
        let id = self.id_at(index)?;
        let mut handler = self.conn_at(index)?.handler.take()?;
        let result = f(&mut *handler, &mut Cx::new(self, id));
        // Slots are only removed by `finalize`, never during a callback.
        if let Some(conn) = self.conn_at(index) {
            conn.handler = Some(handler);
        }
        Some(result)
    }

    /// Arms a timer `delay` from now.
    pub(crate) fn arm(&mut self, delay: Duration, entry: TimerEntry) -> TimerKey {
        let deadline = self.clock.deadline_after(delay);
        self.wheel.insert(deadline, entry)
    }

    pub(crate) fn mark_dirty(&mut self, index: usize) {
        if let Some(conn) = self.conn_at(index) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(index);
            }
        }
    }

    pub(crate) fn mark_ready(&mut self, index: usize) {
        match self.sources.get_mut(index) {
            Some(Source::Conn(conn)) if !conn.ready => {
                conn.ready = true;
                self.ready.push(index);
            }
            Some(Source::Listener(l)) if !l.ready => {
                l.ready = true;
                self.ready.push(index);
            }
            _ => {}
        }
    }

    /// Queues output on a connection through `push`. Returns `false` if the connection does not
    /// exist or no longer takes writes. Passing the hard cap aborts it as a slow consumer.
    pub(crate) fn queue(
        &mut self,
        id: ConnId,
        incoming: usize,
        push: impl FnOnce(&mut OutQueue, Tick),
    ) -> bool {
        let now = self.now;
        let index = id.index as usize;
        match self.conn_mut(id) {
            Some(conn) if conn.accepts_writes() => {}
            _ => return false,
        }
        // The loop-wide budget is enforced before the bytes are queued.
        if !self.make_room(index, incoming) {
            return false;
        }
        let Some(conn) = self.conn_mut(id) else {
            return false;
        };
        let before = conn.output.len();
        // The queue remembers `now` as its progress tick when it becomes non-empty: stall time
        // counts from the moment output started waiting.
        push(&mut conn.output, now);
        let after = conn.output.len();
        let over = after > conn.config.max_output;
        self.queued_total += after - before;
        if over {
            self.stats.slow_consumers += 1;
            self.abort(index, CloseReason::SlowConsumer);
            return false;
        }
        self.mark_dirty(index);
        true
    }

    /// Starts a graceful close: stop delivering input, flush, `SHUT_WR`, wait for the peer's end
    /// of stream or the linger timeout (S14, S17). The first reason given is the one reported.
    pub(crate) fn close(&mut self, index: usize, reason: CloseReason) {
        let Some(Source::Conn(conn)) = self.sources.get_mut(index) else {
            return;
        };
        match conn.state {
            State::Closing | State::Dead => {}
            State::Connecting => self.kill(index, reason),
            State::Open => {
                let reason = match reason {
                    CloseReason::Local if conn.eof => CloseReason::PeerClosed,
                    other => other,
                };
                conn.set_reason(reason);
                conn.state = State::Closing;
                conn.input.clear();
                // The linger timeout bounds the whole close, flush included, so a peer that
                // never reads cannot hold the connection open. It replaces a first-byte timer.
                if let Some(key) = conn.phase_timer.take() {
                    self.wheel.cancel(key);
                }
                conn.lingering = true;
                let id = ConnId {
                    index: index as u32,
                    generation: conn.generation,
                };
                let linger = conn.config.linger_timeout;
                let key = self.arm(linger, TimerEntry::Conn(id, ConnTimer::Linger));
                if let Some(conn) = self.conn_at(index) {
                    conn.phase_timer = Some(key);
                }
                // The flush at the end of the turn moves the close along.
                self.mark_dirty(index);
            }
        }
    }

    /// Closes at once with RST (`SO_LINGER` 0), dropping queued output (S17).
    pub(crate) fn abort(&mut self, index: usize, reason: CloseReason) {
        let Some(Source::Conn(conn)) = self.sources.get_mut(index) else {
            return;
        };
        if conn.state == State::Dead {
            return;
        }
        if let Err(e) = conn.stream.set_abortive() {
            log::debug!("SO_LINGER 0 on #{index}: {e}");
        }
        self.queued_total -= conn.output.len();
        conn.output.clear();
        self.kill(index, reason);
    }

    /// Marks a connection finished; `finalize` removes it at the end of the turn.
    pub(crate) fn kill(&mut self, index: usize, reason: CloseReason) {
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        if conn.state == State::Dead {
            return;
        }
        conn.set_reason(reason);
        conn.state = State::Dead;
        conn.input.clear();
        self.dead.push(index);
    }

    /// Writes queued output, then moves a graceful close along and applies the water marks.
    pub(crate) fn flush(&mut self, index: usize) {
        let now = self.now;
        let Some(Source::Conn(conn)) = self.sources.get_mut(index) else {
            return;
        };
        if matches!(conn.state, State::Connecting | State::Dead) {
            return;
        }
        if !conn.output.is_empty() {
            let Conn { stream, output, .. } = conn;
            match output.flush(now, |iov| stream.write_vectored(iov)) {
                Ok((_, written)) => {
                    self.queued_total -= written;
                    if written > 0 {
                        conn.bytes_out += written as u64;
                        conn.last_activity = now;
                        self.stats.bytes_out += written as u64;
                    }
                }
                Err(e) => {
                    let reason = CloseReason::from_io(e);
                    log::debug!("write to #{index}: {reason}");
                    self.kill(index, reason);
                    return;
                }
            }
        }
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        let queued = conn.output.len();
        let config = Rc::clone(&conn.config);

        // Backpressure (S21): decided by our own queue, not by guessing kernel space.
        if conn.state == State::Open {
            if !conn.paused_by_output && queued > config.high_water {
                conn.paused_by_output = true;
                self.call(index, |h, cx| h.on_high_water(cx));
            } else if conn.paused_by_output && queued <= config.low_water {
                conn.paused_by_output = false;
                // Input may have queued up while paused, with no new edge to announce it.
                self.mark_ready(index);
                self.call(index, |h, cx| h.on_drained(cx));
            }
        }

        let Some(conn) = self.conn_at(index) else {
            return;
        };
        if queued > 0 {
            // Output is waiting on the peer: the watchdog must cover the write-stall deadline.
            if config.write_stall_timeout.is_some() {
                self.arm_watchdog(index);
            }
            return;
        }

        // Everything is out: a pending half-close or graceful close can send its FIN.
        let closing = conn.state == State::Closing;
        if (closing || conn.shut_requested) && !conn.write_shut {
            conn.write_shut = true;
            if let Err(e) = conn.stream.shutdown_write() {
                log::debug!("shutdown(SHUT_WR) on #{index}: {e}");
                let reason = CloseReason::from_io(e);
                self.kill(index, reason);
                return;
            }
        }
        // A graceful close whose FIN is out (just now, or earlier by a half-close) waits for
        // the peer's end of stream, bounded by the linger timer armed when the close began.
        if closing {
            if conn.eof {
                self.kill(index, CloseReason::Local);
            } else {
                // The peer's FIN may already be queued behind unread input.
                self.mark_ready(index);
            }
        }
    }

    /// (Re-)arms the watchdog for the earlier of the idle deadline (open connections with an
    /// idle timeout) and the write-stall deadline (queued output with a stall timeout), or
    /// disarms it when neither applies. Moving an armed watchdog is O(1).
    pub(crate) fn arm_watchdog(&mut self, index: usize) {
        let Some(Source::Conn(conn)) = self.sources.get_mut(index) else {
            return;
        };
        let ms = |d: Duration| d.as_millis() as Tick;
        let idle_due = match (conn.state, conn.config.idle_timeout) {
            (State::Open, Some(idle)) => Some(conn.last_activity + ms(idle)),
            _ => None,
        };
        let stall_due = match (conn.state, conn.output.progress()) {
            (State::Dead, _) | (_, None) => None,
            (_, Some(progress)) => conn.config.write_stall_timeout.map(|t| progress + ms(t)),
        };
        let due = match (idle_due, stall_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
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

    /// The peer sent end of stream.
    pub(crate) fn on_eof(&mut self, index: usize) {
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        conn.eof = true;
        match conn.state {
            State::Closing => {
                if conn.write_shut {
                    self.kill(index, CloseReason::PeerClosed);
                }
                // Otherwise the flush kills it once the output is out.
            }
            State::Open => {
                self.call(index, |h, cx| h.on_eof(cx));
            }
            State::Connecting | State::Dead => {}
        }
    }

    /// Hands bytes to the handler: the kept tail of an unfinished frame followed by `new`.
    /// Keeps what the handler did not consume, within the input limit (S11, S16).
    pub(crate) fn deliver(&mut self, index: usize, new: &[u8]) {
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        if conn.state != State::Open {
            return;
        }
        if conn.input.is_empty() {
            if new.is_empty() {
                return;
            }
            // The common case: nothing kept, the handler reads straight from the scratch buffer.
            let consumed = self
                .call(index, |h, cx| h.on_data(cx, new))
                .unwrap_or(new.len())
                .min(new.len());
            let rest = &new[consumed..];
            let Some(conn) = self.conn_at(index) else {
                return;
            };
            if !rest.is_empty() && conn.state == State::Open {
                conn.input.extend_from_slice(rest);
            }
        } else {
            conn.input.extend_from_slice(new);
            let input = conn.input.take();
            let consumed = self
                .call(index, |h, cx| h.on_data(cx, &input))
                .unwrap_or(input.len())
                .min(input.len());
            let Some(conn) = self.conn_at(index) else {
                return;
            };
            if conn.state == State::Open && consumed < input.len() {
                let mut input = input;
                input.drain(..consumed);
                conn.input.set(input);
            }
        }
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        if conn.input.len() > conn.config.max_input {
            let limit = conn.config.max_input;
            self.close(
                index,
                CloseReason::protocol(format!("unconsumed input over {limit} bytes")),
            );
        }
    }

    /// Reads from a connection until `WouldBlock`, end of stream, a pause, or the per-turn
    /// budget. `drain_all` forbids stopping at a short read (needed when no new edge will come:
    /// ready-list service, or the peer's FIN already reported).
    pub(crate) fn read(&mut self, index: usize, scratch: &mut [u8], drain_all: bool) {
        let now = self.now;
        for _ in 0..READS_PER_TURN {
            let Some(Source::Conn(conn)) = self.sources.get_mut(index) else {
                return;
            };
            if !conn.wants_read() {
                return;
            }
            let n = match conn.stream.read(scratch) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let reason = CloseReason::from_io(e);
                    log::debug!("read from #{index}: {reason}");
                    self.kill(index, reason);
                    return;
                }
            };
            if n == 0 {
                self.on_eof(index);
                return;
            }
            conn.bytes_in += n as u64;
            conn.last_activity = now;
            if let Some(extras) = conn.extras.as_deref_mut() {
                extras.last_read = now;
            }
            self.stats.bytes_in += n as u64;
            if !conn.got_byte {
                conn.got_byte = true;
                // While open, the phase timer is the first-byte timeout (a closing connection's
                // is its linger timeout, which stays).
                if conn.state == State::Open {
                    if let Some(key) = conn.phase_timer.take() {
                        self.wheel.cancel(key);
                    }
                }
            }
            self.deliver(index, &scratch[..n]);
            // Backpressure as soon as this read's output passes the high-water mark, not only
            // at the end-of-turn flush: the ready list resumes reading if the flush drains it.
            if let Some(conn) = self.conn_at(index) {
                if conn.output.len() > conn.config.high_water {
                    self.mark_ready(index);
                    return;
                }
            }
            // With edge-triggered readiness a short read means the queue was empty a moment
            // ago, and any byte arriving later raises a new edge: one recv saved per message.
            if n < scratch.len() && !drain_all {
                return;
            }
        }
        // Budget spent with data perhaps still queued: no new edge will come for it.
        self.mark_ready(index);
    }

    /// Judges a non-blocking connect on writability: `SO_ERROR`, then `getpeername` (S4).
    pub(crate) fn finish_connect(&mut self, index: usize) {
        let Some(Source::Conn(conn)) = self.sources.get_mut(index) else {
            return;
        };
        if conn.state != State::Connecting {
            return;
        }
        match conn.stream.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => {
                let reason = CloseReason::from_io(e);
                log::debug!("connect #{index}: {reason}");
                self.kill(index, reason);
                return;
            }
        }
        match conn.stream.peer_addr() {
            Ok(_) => {}
            // Spurious wake-up: the handshake is still under way.
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => return,
            Err(e) => {
                self.kill(index, CloseReason::from_io(e));
                return;
            }
        }
        conn.state = State::Open;
        if let Some(key) = conn.phase_timer.take() {
            self.wheel.cancel(key);
        }
        let config = Rc::clone(&conn.config);
        apply_conn_options(&conn.stream, &config);
        conn.last_activity = self.now;
        let has_output = !conn.output.is_empty();
        self.stats.connected += 1;
        self.arm_watchdog(index);
        self.call(index, |h, cx| h.on_open(cx));
        if has_output {
            self.mark_dirty(index);
        }
    }

    /// Adds a connection slot, registers its socket and arms its opening timers.
    pub(crate) fn insert_conn(
        &mut self,
        stream: Stream,
        handler: Box<dyn Protocol<App>>,
        config: Rc<ConnConfig>,
        state: State,
    ) -> io::Result<ConnId> {
        let entry = self.sources.vacant_entry();
        let index = entry.key();
        let mut stream = stream;
        if let Some(source) = stream.source() {
            self.registry.register(
                source,
                Token(index),
                Interest::READABLE | Interest::WRITABLE,
            )?;
        }
        self.next_generation = self.next_generation.wrapping_add(1);
        let generation = self.next_generation;
        let open_timeout = match state {
            State::Connecting => Some(config.connect_timeout),
            _ => config.first_byte_timeout,
        };
        entry.insert(Source::Conn(Conn::new(
            handler, stream, generation, state, config, self.now,
        )));
        let id = ConnId {
            index: index as u32,
            generation,
        };
        if let Some(timeout) = open_timeout {
            let key = self.arm(timeout, TimerEntry::Conn(id, ConnTimer::Open));
            if let Some(conn) = self.conn_at(index) {
                conn.phase_timer = Some(key);
            }
        }
        self.stats.open += 1;
        Ok(id)
    }

    /// Starts an outgoing connection; the handler later gets `on_open`, or `on_close` with the
    /// precise reason (S4). Errors before any attempt (no descriptor left) are returned.
    pub(crate) fn connect(
        &mut self,
        addr: std::net::SocketAddr,
        handler: Box<dyn Protocol<App>>,
        config: Rc<ConnConfig>,
    ) -> io::Result<ConnId> {
        let domain = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let fd = sys::socket(domain, libc::SOCK_STREAM)?;
        {
            use std::os::fd::AsFd;
            if let Some(n) = config.send_buffer_size {
                sys::set_send_buffer_size(fd.as_fd(), n)?;
            }
            if let Some(n) = config.recv_buffer_size {
                sys::set_recv_buffer_size(fd.as_fd(), n)?;
            }
        }
        let attempt = {
            use std::os::fd::AsFd;
            sys::connect(fd.as_fd(), &addr)
        };
        let stream = Stream::Tcp(mio::net::TcpStream::from_std(std::net::TcpStream::from(fd)));
        // An immediate success is judged like a later one: registration reports writability at
        // once, and `finish_connect` reads the verdict.
        let id = self.insert_conn(stream, handler, config, State::Connecting)?;
        if let Err(e) = attempt {
            self.kill(id.index as usize, CloseReason::from_io(e));
        }
        Ok(id)
    }

    /// Removes a dead connection and reports it to its handler: the one place `on_close` runs.
    pub(crate) fn finalize(&mut self, index: usize) {
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        if conn.state != State::Dead {
            return;
        }
        let Some(Source::Conn(mut conn)) = self.sources.try_remove(index) else {
            return;
        };
        let mut extras = conn.extras.take().map(|b| *b).unwrap_or_default();
        for key in [conn.phase_timer.take(), conn.watchdog.take()]
            .into_iter()
            .flatten()
            .chain(extras.user_timers.drain(..).map(|(key, _)| key))
            .chain(extras.heartbeat.take().map(|h| h.key))
        {
            self.wheel.cancel(key);
        }
        let reason = extras.reason.take().unwrap_or(CloseReason::Local);
        self.queued_total -= conn.output.len();
        self.stats.open -= 1;
        self.connection_released();
        self.stats.closed[reason.kind() as usize] += 1;
        log::debug!(
            "#{index} closed: {reason} (in {} B, out {} B)",
            conn.bytes_in,
            conn.bytes_out
        );
        let id = ConnId {
            index: index as u32,
            generation: conn.generation,
        };
        let handler = conn.handler.take();
        // Close the descriptor before the handler hears of it.
        drop(conn);
        if let Some(mut handler) = handler {
            handler.on_close(&mut Cx::new(self, id), reason);
        }
    }

    /// Fires one expired timer.
    pub(crate) fn fire(&mut self, key: TimerKey, entry: TimerEntry) {
        match entry {
            TimerEntry::Conn(id, kind) => self.fire_conn(key, id, kind),
            TimerEntry::ListenerResume(index) => self.resume_listener(index as usize),
            TimerEntry::Task(index) => self.run_task(index as usize),
            TimerEntry::ShutdownDeadline => {
                let open: Vec<usize> = self
                    .sources
                    .iter()
                    .filter(|(_, s)| matches!(s, Source::Conn(_)))
                    .map(|(i, _)| i)
                    .collect();
                if !open.is_empty() {
                    log::warn!(
                        "shutdown deadline passed: aborting {} connections",
                        open.len()
                    );
                }
                for index in open {
                    self.abort(index, CloseReason::Shutdown);
                }
            }
        }
    }

    fn fire_conn(&mut self, key: TimerKey, id: ConnId, kind: ConnTimer) {
        let now = self.now;
        let index = id.index as usize;
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        match kind {
            ConnTimer::Open => {
                conn.phase_timer = None;
                match conn.state {
                    State::Connecting => self.kill(index, CloseReason::ConnectTimeout),
                    State::Open if !conn.got_byte => self.close(index, CloseReason::IdleTimeout),
                    _ => {}
                }
            }
            ConnTimer::Linger => {
                conn.phase_timer = None;
                self.kill(index, CloseReason::Local);
            }
            ConnTimer::Watchdog => {
                conn.watchdog = None;
                let ms = |d: Duration| d.as_millis() as Tick;
                if let (Some(progress), Some(stall)) =
                    (conn.output.progress(), conn.config.write_stall_timeout)
                {
                    if now >= progress + ms(stall) {
                        log::debug!("#{index}: no write progress for {stall:?}");
                        self.abort(index, CloseReason::TimedOut);
                        return;
                    }
                }
                if let (State::Open, Some(idle)) = (conn.state, conn.config.idle_timeout) {
                    if now >= conn.last_activity + ms(idle) {
                        self.close(index, CloseReason::IdleTimeout);
                    }
                }
                // Traffic since arming moved the deadlines: re-arm lazily for the next one.
                self.arm_watchdog(index);
            }
            ConnTimer::Heartbeat => {
                let Some(extras) = conn.extras.as_deref_mut() else {
                    return;
                };
                let Some(hb) = extras.heartbeat.as_ref() else {
                    return;
                };
                if hb.key != key || conn.state != State::Open {
                    return;
                }
                let (interval, read_idle) = (hb.interval, hb.read_idle);
                if now.saturating_sub(extras.last_read) >= read_idle.as_millis() as Tick {
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
                let timer = crate::TimerId {
                    key,
                    tag: crate::TimerId::HEARTBEAT,
                };
                self.call(index, |h, cx| h.on_timer(cx, timer));
            }
            ConnTimer::User => {
                let Some(extras) = conn.extras.as_deref_mut() else {
                    return;
                };
                let Some(at) = extras.user_timers.iter().position(|(k, _)| *k == key) else {
                    return;
                };
                let (_, tag) = extras.user_timers.swap_remove(at);
                if conn.state == State::Dead {
                    return;
                }
                let timer = crate::TimerId { key, tag };
                self.call(index, |h, cx| h.on_timer(cx, timer));
            }
        }
    }

    /// Aborts every connection and makes `run` return at the end of this turn.
    pub(crate) fn stop_now(&mut self) {
        let conns: Vec<usize> = self
            .sources
            .iter()
            .filter(|(_, s)| matches!(s, Source::Conn(_)))
            .map(|(i, _)| i)
            .collect();
        for index in conns {
            self.abort(index, CloseReason::Shutdown);
        }
        self.shutting_down = true;
        self.stop_now = true;
    }

    /// Begins a graceful shutdown: stop accepting, close every connection gracefully, and abort
    /// what is left after `grace`.
    pub(crate) fn begin_shutdown(&mut self, grace: Duration) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        let mut listeners = Vec::new();
        let mut conns = Vec::new();
        for (index, source) in self.sources.iter() {
            match source {
                Source::Listener(_) => listeners.push(index),
                Source::Conn(_) => conns.push(index),
                _ => {}
            }
        }
        log::info!(
            "shutting down: {} connections to close within {grace:?}",
            conns.len()
        );
        for index in listeners {
            self.sources.remove(index);
        }
        for index in conns {
            self.close(index, CloseReason::Shutdown);
        }
        self.arm(grace, TimerEntry::ShutdownDeadline);
    }
}

/// Applies the per-connection socket options of `config` to a connected stream.
pub(crate) fn apply_conn_options(stream: &Stream, config: &ConnConfig) {
    let Some(fd) = stream.fd() else {
        return;
    };
    if config.nodelay {
        if let Err(e) = sys::set_nodelay(fd, true) {
            log::debug!("TCP_NODELAY: {e}");
        }
    }
    if let Some(ka) = config.keepalive {
        if let Err(e) = sys::set_keepalive(fd, Some(ka)) {
            log::debug!("SO_KEEPALIVE: {e}");
        }
    }
}
