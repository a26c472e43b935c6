//! The part of the reactor that handlers reach through their contexts: every source, the timer
//! wheel, the user state, and the operations on connections, one module per part of a
//! connection's life.
//!
//! | module | part of the life | owns |
//! |---|---|---|
//! | `conn` | one connection's state: its [`Phase`](conn::Phase), buffers and counters | |
//! | `connect` | opening: accepted or outgoing, the connect verdict (S4) | `Connecting → Open` |
//! | `read` | reading and delivery to the handler, end of stream | input, pauses |
//! | `replace` | switching a live connection's handler after the callback that asked | the successor |
//! | `write` | queueing output, the end-of-turn flush, backpressure (S15, S21) | output |
//! | `close` | graceful close, abort, half-close, removal and `on_close` (S14, S17) | `Closing`, `Dead` |
//! | `link` | two connections joined: bytes, backpressure, end of stream and errors cross (S14, S21) | |
//! | `timeouts` | every timer a connection can have: arming and firing (S8, S24) | timer keys |
//! | `accept`, `listener`, `reject` | the accept loop, back-off, the spare descriptor, the policy at the connection limit (S5, S23, S27) | listeners |
//! | `limits`, `tasks`, `snapshot` | loop-wide limits, scheduled closures, introspection | |
//! | `sources` | descriptors and `mio` sources the user registers, and their callbacks | user sources |
//! | `slots` | finding a connection: its slot by index or id, its handler and activity stamp | |
//!
//! # Implementation notes
//! A handler is taken out of its slot while one of its callbacks runs ([`Core::call`]), so the
//! callback can hold `&mut Core` and reach every other connection's output queue. Nothing in
//! here removes a slot except `finalize`, which runs at the end of a turn; a callback therefore
//! always finds its slot when it returns.
//!
//! The user state sits beside the rest ([`Core`] is `app` plus [`Net`]), so a handler can hold
//! `&mut App` and queue output on other connections at the same time: operations that run no
//! handler (queueing, closing, aborting) are methods of `Net`.
//!
//! A connection's life is one [`Phase`](conn::Phase): `Connecting → Open → Closing →
//! Dead`. Every way out (error, timeout, close, abort) ends in `kill`, which queues the slot for
//! `finalize`: the one place that calls `on_close`, so it runs exactly once.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use slab::Slab;

use self::table::Table;
use timers::{Tick, TimerKey, Wheel};

use crate::core::conn::Conn;
use crate::core::listener::Listener;
use crate::stats::Stats;
use crate::timer::{Clock, TimerEntry};
use crate::transport::{Injected, Readiness, Registration};
use crate::{ConnId, Cx, Protocol};

pub(crate) mod accept;
mod close;
pub(crate) mod conn;
mod connect;
mod export;
mod handover;
pub(crate) mod limits;
mod link;
pub(crate) mod listener;
mod read;
mod reject;
mod replace;
mod slots;
pub(crate) mod snapshot;
pub(crate) mod sources;
mod table;
pub(crate) mod tasks;
mod timeouts;
pub(crate) mod udp;
mod write;

pub(crate) use write::WRITE_THROUGH_MIN;

/// The most one read takes from a connection: the size of the reactor's one read buffer
/// (S16), and so the most fresh bytes one [`on_data`](crate::Protocol::on_data) is offered.
///
/// A read this large is made only after a read that filled [`READ_SIZE`], and only while the
/// connection has nothing queued and is not linked, where a handler that writes the whole read
/// back sends it at once from the read buffer (the write-through, see `WRITE_THROUGH_MIN`): a
/// stream then moves in fewer, larger system calls, up to four times fewer than with
/// [`READ_SIZE`] when the peer keeps the socket full. The buffer is one per reactor, so its
/// size costs nothing per connection.
pub const READ_SIZE_MAX: usize = 256 * 1024;

/// The size of a pass's first read, and the most one read takes while the connection has
/// output queued or is linked: what a read can add to a queue that is below its high-water
/// mark (S21), as a copy or a forwarded read, is one `READ_SIZE`.
pub const READ_SIZE: usize = 64 * 1024;

/// The most one connection reads in one turn before the others are served (fairness): then it
/// goes on the ready list and is served next turn without waiting for a new edge. Each read is
/// charged its length but at least [`READ_SIZE`], so a turn makes at most sixteen reads of a
/// connection, fewer where they are larger (four of [`READ_SIZE_MAX`] after the first), however
/// little each returns (a connection read to the end after its peer's FIN goes on past short
/// reads).
///
/// Each time the budget runs out, the next poll is a zero-timeout `epoll_wait` that only the
/// budget causes (the C server, which reads with no budget, makes none). A larger budget buys
/// those back at the other connections' expense: with one streamer beside 50 ping-pong
/// connections, their p99 latency was 4.3–5.0 ms at 1 MiB, 5.9–7.5 ms at 2 MiB and 8.7–10.5 ms
/// at 4 MiB per turn (in 64 KiB reads), and the streamer was no faster (BENCHMARKS.md, issue
/// 17's streaming system calls).
pub const READ_BYTES_PER_TURN: usize = 1024 * 1024;

/// The reactor's one read buffer (S16), of a fixed size so that a read's length needs no
/// bounds check on every message's path.
pub(crate) type ReadBuf = [u8; READ_SIZE_MAX];

/// How often one turn repeats its flush and close steps when closing handlers write to other
/// connections (which then need a flush, whose errors close more). Anything left goes next turn.
const SETTLE_ROUNDS: usize = 8;

/// A slot of the reactor's slab; its key is the mio token.
pub(crate) enum Source<App> {
    /// Boxed: listeners are few, and the slab's element size is set by the largest variant.
    Listener(Box<Listener<App>>),
    Conn(Conn),
    /// A UDP socket (S30); boxed like listeners, for the slab's element size.
    Udp(Box<udp::UdpSource<App>>),
    /// The read end of the signal pipe.
    Signals,
    /// The cross-thread waker of the [`Handle`](crate::Handle) mailbox.
    Waker,
    /// A descriptor or `mio` source registered by the user (boxed, as listeners are).
    User(Box<sources::UserSlot<App>>),
    /// A free slot of the table, holding the next free index (`table.rs`): never handed out
    /// by the table's look-ups.
    Free(usize),
}

/// The reactor's own sources, which the loop serves itself.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Internal {
    Signals,
    Waker,
}

/// Which of the reactor's own sources a poll reported ready.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Own {
    pub(crate) signals: bool,
    pub(crate) waker: bool,
}

/// Everything a callback can reach: the user state and the rest of the loop.
pub(crate) struct Core<App> {
    /// The user's state, shared by all handlers.
    app: App,
    /// Everything else; reachable while `app` is borrowed.
    net: Net<App>,
}

/// The loop without the user state: sources, timers and the per-turn lists.
pub(crate) struct Net<App> {
    /// For registering new sockets from inside callbacks.
    registry: mio::Registry,
    /// Listeners, connections and internal sources; the key is the mio token.
    sources: Table<App>,
    /// Each connection's protocol handler, at its slot's key (`None` for other sources, free
    /// slots, and while one of the handler's callbacks runs). Kept beside the slots rather
    /// than in them: a handler goes back after its callback without a look-up of the slot.
    handlers: Vec<Option<Box<dyn Protocol<App>>>>,
    /// Each connection's last traffic either way, at its slot's key: a tick rounded up from
    /// the clock read after the transfer, so that a timeout counted from it can never end
    /// before its time has passed. Beside the slots, so the end of the turn stamps the
    /// connections with traffic without a look-up of each slot.
    activity: Vec<Tick>,
    /// Every timeout of the reactor (S8, S9).
    wheel: Wheel<TimerEntry>,
    /// Turns time into ticks; set by hand in the test harness.
    clock: Clock,
    /// The tick at the start of the current turn's dispatch (rounded down): what timers are
    /// polled with. Activity is stamped with the clock read at the event instead.
    now: Tick,
    /// The clock's reading at the start of the current turn (time since its start), which
    /// the loop measures the turn from.
    turn_started: Duration,
    /// Connections with traffic this turn: written to (flushed once at the turn's end, S15),
    /// read from, or written by a flush of their own. Each is listed once (`Conn::dirty`), and
    /// the end of the turn flushes them, then stamps their activity with one clock reading
    /// taken after the flush (`Net::stamp_flushed`): one list for both, so that a connection
    /// that reads and answers in one turn is listed once. A connection that only read costs
    /// the end of the turn a flush that finds nothing queued.
    dirty: Vec<usize>,
    /// Sources to serve next turn without waiting for an edge (read budget spent, reading
    /// resumed, accept budget spent).
    ready: Vec<usize>,
    /// Connections to remove and report at the end of this turn.
    dead: Vec<usize>,
    /// Connections with extras (a read timeout's `last_read`) that read since the last stamp,
    /// perhaps more than once.
    touched_reads: Vec<usize>,
    /// Readiness raised by transports without a descriptor, one entry per edge.
    injected: Injected,
    /// Reused buffers the per-turn lists are swapped into while they are served.
    ready_buf: Vec<usize>,
    dirty_buf: Vec<usize>,
    dead_buf: Vec<usize>,
    injected_buf: Vec<usize>,
    expired: Vec<(TimerKey, TimerEntry)>,
    /// Generation for the next connection (see [`ConnId`]).
    next_generation: u32,
    stats: Stats,
    /// Set once a shutdown has begun: no new connections, run() returns when all are closed.
    shutting_down: bool,
    /// Set when the loop must return at the end of this turn (abortive stop).
    stop_now: bool,
    /// Closures scheduled on the wheel.
    tasks: Slab<tasks::Task<App>>,
    /// Loop-wide limits (connections, output budget).
    limits: crate::Limits,
    /// Output bytes queued across all connections, kept for the output budget.
    queued_total: usize,
    /// Emptied output queues kept for reuse, so traffic allocates nothing per message.
    spare: crate::outbuf::Spare,
    /// Some listener is paused at the connection limit.
    listeners_at_limit: bool,
    /// The successors running callbacks asked for, by connection (`replace.rs`), each
    /// installed when its connection's callback returns. Usually empty; more than one only
    /// when callbacks nest (a connection adopted or connected in a callback gets `on_open`
    /// at once).
    replacements: Vec<(ConnId, Box<dyn Protocol<App>>)>,
    /// Handlers replaced so far (`replace.rs`).
    swaps: u64,
    /// Descriptors received with the bytes of one read (S29), handed on at once; reused so
    /// that a read costs no list of its own.
    fds_in: Vec<std::os::fd::OwnedFd>,
}

impl<App> Deref for Core<App> {
    type Target = Net<App>;
    fn deref(&self) -> &Net<App> {
        &self.net
    }
}

impl<App> DerefMut for Core<App> {
    fn deref_mut(&mut self) -> &mut Net<App> {
        &mut self.net
    }
}

impl<App> fmt::Debug for Net<App> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Net")
            .field("sources", &self.sources.len())
            .field("timers", &self.wheel.len())
            .finish_non_exhaustive()
    }
}

impl<App> Core<App> {
    pub(crate) fn new(app: App, registry: mio::Registry) -> Self {
        Core {
            app,
            net: Net {
                registry,
                sources: Table::new(),
                handlers: Vec::new(),
                activity: Vec::new(),
                touched_reads: Vec::new(),
                wheel: Wheel::new(),
                clock: Clock::new(),
                now: 0,
                turn_started: Duration::ZERO,
                dirty: Vec::new(),
                ready: Vec::new(),
                dead: Vec::new(),
                injected: Injected::default(),
                ready_buf: Vec::new(),
                dirty_buf: Vec::new(),
                dead_buf: Vec::new(),
                injected_buf: Vec::new(),
                expired: Vec::new(),
                next_generation: 0,
                stats: Stats::default(),
                shutting_down: false,
                stop_now: false,
                tasks: Slab::new(),
                limits: crate::Limits::default(),
                queued_total: 0,
                spare: crate::outbuf::Spare::default(),
                listeners_at_limit: false,
                replacements: Vec::new(),
                swaps: 0,
                fds_in: Vec::new(),
            },
        }
    }

    /// The user state.
    pub(crate) fn app(&mut self) -> &mut App {
        &mut self.app
    }

    /// The user state and the rest of the loop, borrowed apart.
    pub(crate) fn split(&mut self) -> (&mut App, &mut Net<App>) {
        (&mut self.app, &mut self.net)
    }

    /// Runs `f` with the connection's handler taken out of its slot and a context for it.
    /// Returns `None` if there is no such connection or its handler is already running.
    pub(crate) fn call<R>(
        &mut self,
        index: usize,
        f: impl FnOnce(&mut dyn Protocol<App>, &mut Cx<'_, App>) -> R,
    ) -> Option<R> {
        let id = self.id_at(index)?;
        let mut handler = self.take_handler(index)?;
        let result = f(&mut *handler, &mut Cx::new(self, id));
        self.put_handler(index, handler);
        self.install_replacement(index, id);
        Some(result)
    }

    /// Starts a turn, once the wait has ended: reads the clock for the tick the timers are
    /// polled with, and for the turn's length.
    pub(crate) fn begin_turn(&mut self) {
        // Writes made between turns were queued at the last turn's tick.
        self.net.settle_turn_output();
        let at = self.clock.elapsed();
        self.now = crate::timer::ticks_floor(at);
        self.turn_started = at;
        self.stats.turns += 1;
    }

    /// Serves the sources left ready last turn (budget spent, reading resumed): no edge will
    /// come for them. Every turn asks, and nearly every turn has none: that answer is inlined.
    #[inline]
    pub(crate) fn serve_ready(&mut self, scratch: &mut ReadBuf) {
        if !self.ready.is_empty() {
            self.serve_ready_list(scratch);
        }
    }

    /// [`serve_ready`](Self::serve_ready) with sources to serve.
    #[inline(never)]
    fn serve_ready_list(&mut self, scratch: &mut ReadBuf) {
        std::mem::swap(&mut self.net.ready, &mut self.net.ready_buf);
        for i in 0..self.ready_buf.len() {
            let index = self.ready_buf[i];
            match self.sources.get_mut(index) {
                Some(Source::Conn(conn)) => {
                    conn.ready = false;
                    // Offer input kept while reading was paused, then read what queued meanwhile.
                    self.deliver(index, &[]);
                    self.read(index, scratch);
                }
                Some(Source::Listener(l)) => {
                    l.ready = false;
                    self.accept(index);
                }
                Some(Source::Udp(_)) => self.udp_from_ready_list(index),
                _ => {}
            }
        }
        self.ready_buf.clear();
    }

    /// Serves the readiness that transports without a descriptor queued, one entry per edge.
    /// Every turn asks; only the test harness's transports queue any, so the empty answer is
    /// inlined.
    #[inline]
    pub(crate) fn serve_injected(&mut self, scratch: &mut ReadBuf) {
        if !self.net.injected.borrow().is_empty() {
            self.serve_injected_list(scratch);
        }
    }

    /// [`serve_injected`](Self::serve_injected) with edges queued.
    #[inline(never)]
    fn serve_injected_list(&mut self, scratch: &mut ReadBuf) {
        std::mem::swap(
            &mut *self.net.injected.borrow_mut(),
            &mut self.net.injected_buf,
        );
        for i in 0..self.injected_buf.len() {
            let index = self.injected_buf[i];
            let ready = match self.net.sources.get_mut(index) {
                Some(Source::Conn(conn)) => conn.stream.take_readiness(),
                // A listener's edge only says "accept": its readiness carries nothing else.
                Some(Source::Listener(l)) => l
                    .socket
                    .take_readiness()
                    .then(crate::transport::Readiness::default),
                Some(Source::Udp(_)) => {
                    self.udp_injected(index);
                    None
                }
                _ => None,
            };
            if let Some(ready) = ready {
                // Only listeners and connections queue readiness.
                let _ = self.dispatch(index, ready, scratch);
            }
        }
        self.injected_buf.clear();
    }

    /// Serves a poll's readiness events, in order. Returns which of the reactor's own sources
    /// (signals, waker) were among them, for the loop to serve after the others.
    ///
    /// Every message's path starts here: the per-event work is inlined into this loop, so the
    /// large frame it needs is set up once per poll rather than once per event (about 15
    /// instructions per ping-pong message).
    pub(crate) fn dispatch_events(&mut self, events: &mio::Events, scratch: &mut ReadBuf) -> Own {
        let mut own = Own::default();
        for event in events {
            let index = event.token().0;
            // Connections first: every message's path, with no look-up of its own. The
            // readiness is built from the event only where it is needed (an event that is not
            // every message's, and the other sources) rather than kept across the connection's
            // read and callback, which cost the connection about 8 instructions per message.
            if self.serve_event(index, event, scratch) {
                continue;
            }
            match self.serve_other(index, Readiness::from(event)) {
                Some(Internal::Signals) => own.signals = true,
                Some(Internal::Waker) => own.waker = true,
                None => {}
            }
        }
        own
    }

    /// Serves one listener or connection that became ready (from the ready list or an
    /// injected edge). Returns the reactor's own source (signals, waker) behind `index` for
    /// the loop to serve, if it is one.
    pub(crate) fn dispatch(
        &mut self,
        index: usize,
        ready: Readiness,
        scratch: &mut ReadBuf,
    ) -> Option<Internal> {
        if self.serve_conn(index, Some(ready), scratch) {
            return None;
        }
        self.serve_other(index, ready)
    }

    /// Serves a source that is not a connection: a listener, a UDP socket, a user's source,
    /// or one of the reactor's own, which it returns for the loop to serve.
    fn serve_other(&mut self, index: usize, ready: Readiness) -> Option<Internal> {
        match self.sources.get(index) {
            Some(Source::Listener(_)) => self.accept(index),
            Some(Source::Conn(_)) => {} // served by `serve_conn`
            Some(Source::Udp(_)) => self.udp_ready(index, ready),
            Some(Source::User(_)) => self.serve_user_source(index, ready),
            Some(Source::Signals) => return Some(Internal::Signals),
            Some(Source::Waker) => return Some(Internal::Waker),
            // The table never hands out a free slot.
            Some(Source::Free(_)) | None => {}
        }
        None
    }

    /// Fires the expired timers, collected first so that timers armed by their callbacks wait
    /// for the next turn even when already due. Every turn asks, and most have none due: the
    /// first poll of the wheel is inlined, the rest is not.
    #[inline]
    pub(crate) fn fire_due(&mut self) {
        // None due: nothing checks the stamps this turn, and the end of the turn stamps this
        // turn's traffic with one clock reading taken after the flush (later, so never early).
        if let Some(first) = self.net.wheel.poll(self.now) {
            self.fire_expired(first);
        }
    }

    /// [`fire_due`](Self::fire_due) once a timer is due.
    #[inline(never)]
    fn fire_expired(&mut self, first: (TimerKey, TimerEntry)) {
        let now = self.now;
        self.net.expired.push(first);
        while let Some(expired) = self.net.wheel.poll(now) {
            self.net.expired.push(expired);
        }
        // The reads of this turn count before any idle check.
        self.stamp_touched();
        for i in 0..self.expired.len() {
            let (key, entry) = self.expired[i];
            self.fire(key, entry);
        }
        self.expired.clear();
    }

    /// Flushes what was written this turn, then removes what finished. Closing handlers may
    /// write to others, so this repeats a few times. Returns the clock's reading that stamped
    /// the turn's traffic (as time since the clock's start), if there was any: the loop
    /// measures the turn with it.
    pub(crate) fn end_turn(&mut self) -> Option<Duration> {
        let mut reading = None;
        // Each step only when it has work (most turns: a flush, nothing to remove), and the
        // rounds end as soon as neither list has any.
        for _ in 0..SETTLE_ROUNDS {
            if !self.dirty.is_empty() {
                // The list is taken out while it is walked (its spare takes the writes the
                // flushes make), so the walk reads it through a local iterator, not `self`
                // after every call.
                let spare = std::mem::take(&mut self.net.dirty_buf);
                let dirty = std::mem::replace(&mut self.net.dirty, spare);
                self.flush_all(&dirty);
                // Every connection with traffic this round is on the list (see `Net::dirty`):
                // its activity is stamped now, after its last transfer of the round.
                reading = Some(self.net.stamp_flushed(&dirty));
                self.net.dirty_buf = dirty;
                self.net.dirty_buf.clear();
            }
            if !self.dead.is_empty() {
                std::mem::swap(&mut self.net.dead, &mut self.net.dead_buf);
                for i in 0..self.dead_buf.len() {
                    let index = self.dead_buf[i];
                    self.finalize(index);
                }
                self.dead_buf.clear();
            }
            if self.dirty.is_empty() && self.dead.is_empty() {
                break;
            }
        }
        self.net.settle_turn_output();
        self.net.stamp_reads_at(reading);
        self.net.stats.queued_bytes = self.queued_total as u64;
        self.net.stats.timers_armed = self.wheel.len() as u64;
        reading
    }

    /// Fires one expired timer.
    fn fire(&mut self, key: TimerKey, entry: TimerEntry) {
        match entry {
            TimerEntry::Conn(id, kind) => self.fire_conn(key, id, kind),
            TimerEntry::ListenerResume(index) => self.resume_listener(index as usize),
            TimerEntry::Task(index) => self.run_task(index as usize),
            TimerEntry::ShutdownDeadline => self.shutdown_deadline(),
            TimerEntry::Udp(id, kind) => self.fire_udp(key, id, kind),
        }
    }
}

impl<App> Net<App> {
    /// The counters.
    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    pub(crate) fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    /// Timers armed in the wheel.
    pub(crate) fn timers_armed(&self) -> usize {
        self.wheel.len()
    }

    /// The registry, for sources the reactor adds itself (signals, the waker).
    pub(crate) fn registry(&self) -> &mio::Registry {
        &self.registry
    }

    /// Adds an internal source (signals, the waker) and returns its token.
    pub(crate) fn add_internal(&mut self, source: Source<App>) -> usize {
        self.sources.insert(source)
    }

    /// Stops the clock at `at` (the test harness moves it by hand).
    #[allow(dead_code)] // used by `reactor::testing` only
    pub(crate) fn set_manual_clock(&mut self, at: Duration) {
        self.clock.set_manual(at);
    }

    /// How long the current turn has run, by `ended` (the clock's reading as time since its
    /// start, or its reading now).
    pub(crate) fn turn_length(&self, ended: Option<Duration>) -> Duration {
        ended
            .unwrap_or_else(|| self.clock.elapsed())
            .saturating_sub(self.turn_started)
    }

    /// The clock's reading as an instant.
    pub(crate) fn instant(&self) -> std::time::Instant {
        self.clock.instant()
    }

    /// How long from now until the next timer, if any.
    pub(crate) fn until_next_timer(&self) -> Option<Duration> {
        self.wheel.next_deadline().map(|t| self.clock.until(t))
    }

    /// Whether the next turn has work without any new event.
    pub(crate) fn has_pending_work(&self) -> bool {
        !self.ready.is_empty()
            || !self.dirty.is_empty()
            || !self.dead.is_empty()
            || !self.injected.borrow().is_empty()
    }

    /// What is pending, for a harness that reports a loop that never rests.
    #[allow(dead_code)] // used by `reactor::testing` only
    pub(crate) fn pending_summary(&self) -> String {
        format!(
            "{} ready, {} dirty, {} dead, {} edges queued",
            self.ready.len(),
            self.dirty.len(),
            self.dead.len(),
            self.injected.borrow().len()
        )
    }

    /// Whether a shutdown has begun.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Whether `run` should return now: a shutdown has ended every connection, rejected
    /// client's slot and UDP socket.
    pub(crate) fn is_finished(&self) -> bool {
        let s = &self.stats;
        self.stop_now || (self.shutting_down && s.open + s.rejecting + s.udp_sockets == 0)
    }

    /// Registers a new source at `index`.
    fn registration(&self, index: usize) -> Registration<'_> {
        Registration {
            registry: &self.registry,
            token: mio::Token(index),
            injected: &self.injected,
        }
    }

    /// Puts a listener or connection on the ready list, served next turn without waiting
    /// for an edge (once, however often it is asked).
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
}
