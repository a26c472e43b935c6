//! The event loop itself.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Token};

use crate::core::{Core, Source};
use crate::handle::{Handle, Inbox, Mailbox, Posted};
use crate::stats::Stats;
use crate::sys::{self, SignalPipe};
use crate::{ConnConfig, ConnId, ListenOptions, ListenerId, LoopCx, Protocol};

/// How many mio events one poll returns at most.
const EVENTS_CAPACITY: usize = 1024;

type SignalCallback<App> = Box<dyn FnMut(&mut LoopCx<'_, App>, i32)>;

/// Signals delivered as events (S31).
struct Signals<App> {
    pipe: SignalPipe,
    /// SIGINT/SIGTERM begin a graceful shutdown with this grace period; a second one stops at
    /// once.
    shutdown_grace: Option<Duration>,
    callback: Option<SignalCallback<App>>,
    /// Reused buffer for signal numbers read from the pipe.
    received: Vec<i32>,
}

/// A single-threaded event loop running non-blocking sockets, timers and signals, with
/// pluggable protocol handlers (see [`Protocol`]) and user state `App` that every handler
/// reaches as `&mut App` through its [`Cx`](crate::Cx).
///
/// # One turn
/// 1. The poll timeout comes from the timer wheel's next deadline (S9), or is zero when work is
///    pending (a connection whose read budget ran out, a resumed reader).
/// 2. `poll` waits for readiness; `EINTR` just ends the wait (S2).
/// 3. Ready sources are served: first those left on the ready list last turn, then the poller's
///    events, then readiness queued by transports without a descriptor (the in-memory one of
///    `testing`; empty otherwise): accept, connect verdict, flush on writability, read.
/// 4. Expired timers fire.
/// 5. Every connection written to during the turn is flushed once, with one gather write (S15).
/// 6. Connections that finished are removed and their handlers get `on_close`.
///
/// The work of a turn grows with the ready sources and the timers due, never with the number
/// of connections. `ARCHITECTURE.md` in the repository walks through the same steps in the code.
///
/// # Edge-triggered readiness
/// Sockets are registered once for reading and writing, edge-triggered, and never re-registered
/// (no `epoll_ctl` in steady state). A source is read until `WouldBlock`, a short read, or its
/// per-turn budget; in the last case it is put on a ready list and served on the next turn
/// without waiting for a new edge. Spurious wake-ups are harmless: a read that would block ends
/// the step.
///
/// # Example
/// ```
/// use evdrive_reactor::{Cx, ListenOptions, Protocol, Reactor};
/// use std::io::{Read, Write};
/// use std::time::Duration;
///
/// struct Echo;
/// impl<App> Protocol<App> for Echo {
///     fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
///         cx.write(data);
///         data.len()
///     }
/// }
///
/// let mut reactor = Reactor::new(())?;
/// let listener = reactor.listen("127.0.0.1:0".parse().unwrap(), ListenOptions::default(), |_, _| Echo)?;
/// let addr = reactor.listener_addr(listener)?;
/// let mut client = std::net::TcpStream::connect(addr)?;
/// client.write_all(b"ping")?;
/// let mut reply = [0u8; 4];
/// let mut got = 0;
/// while got < 4 {
///     reactor.turn(Some(Duration::from_millis(10)))?;
///     client.set_nonblocking(true)?;
///     if let Ok(n) = client.read(&mut reply[got..]) { got += n; }
/// }
/// assert_eq!(&reply, b"ping");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Reactor<App: 'static> {
    poll: mio::Poll,
    events: Events,
    /// The one read buffer every connection reads into (S16).
    scratch: Box<crate::core::ReadBuf>,
    pub(crate) core: Core<App>,
    signals: Option<Signals<App>>,
    /// The queue behind every [`Handle`], created by the first call to [`Reactor::handle`].
    mailbox: Option<Arc<Mailbox<App>>>,
    /// Reused queue the posted closures are swapped into.
    posted: VecDeque<Posted<App>>,
}

impl<App: 'static> Drop for Reactor<App> {
    fn drop(&mut self) {
        // Posts from now on fail with `Stopped` instead of waiting forever.
        if let Some(mailbox) = &self.mailbox {
            let mut inbox = mailbox.queue.lock().unwrap_or_else(|e| e.into_inner());
            inbox.closed = true;
            inbox.posted.clear();
        }
    }
}

impl<App> std::fmt::Debug for Reactor<App> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("core", &*self.core)
            .finish_non_exhaustive()
    }
}

impl<App: 'static> Reactor<App> {
    /// Creates a reactor owning the user state `app`.
    ///
    /// # Errors
    /// The poll instance cannot be created (e.g. `EMFILE`).
    pub fn new(app: App) -> io::Result<Self> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        Ok(Reactor {
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            // Built on the heap: 256 KiB is too much for a small thread's stack.
            scratch: vec![0; crate::READ_SIZE_MAX]
                .into_boxed_slice()
                .try_into()
                .expect("a buffer of READ_SIZE_MAX bytes"),
            core: Core::new(app, registry),
            signals: None,
            mailbox: None,
            posted: VecDeque::new(),
        })
    }

    /// The user state.
    pub fn app(&mut self) -> &mut App {
        self.core.app()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        self.core.stats()
    }

    /// The reactor's clock (real time, or the test harness's hand-moved clock).
    pub fn now(&self) -> Instant {
        self.core.instant()
    }

    /// Sets the loop-wide limits (connection count, output budget).
    pub fn set_limits(&mut self, limits: crate::Limits) {
        self.core.set_limits(limits);
    }

    /// The loop-wide limits in force.
    pub fn limits(&self) -> &crate::Limits {
        self.core.limits()
    }

    /// A snapshot of every connection (peer, age, idle time, queued bytes, timers).
    pub fn connections(&self) -> Vec<crate::ConnSnapshot> {
        self.core.snapshot()
    }

    /// Every UDP socket as it stands (they are not connections, so not in
    /// [`connections`](Self::connections)).
    pub fn udp_sockets(&self) -> Vec<crate::UdpSnapshot> {
        self.core.udp_snapshot()
    }

    /// Timers armed in the wheel (reactor timeouts and handler timers).
    pub fn timers_armed(&self) -> usize {
        self.core.timers_armed()
    }

    /// The loop-wide context, for acting on the loop and on connections by id from outside a
    /// callback (embedding code, tests).
    pub fn cx(&mut self) -> LoopCx<'_, App> {
        LoopCx::new(&mut self.core)
    }

    /// Listens on `addr`; `factory` makes the handler of each accepted connection. Returns the
    /// listener's id; its bound address (useful with port 0) is
    /// [`listener_addr`](Self::listener_addr). `SO_REUSEADDR` is always set (S18). See
    /// [`LoopCx::listen`], and [`LoopCx::pause_listener`] and its neighbours for what the id
    /// does.
    ///
    /// # Errors
    /// Any error of `socket`, the options, `bind` or `listen` (e.g. `EADDRINUSE`), or of the
    /// registration with the poller.
    pub fn listen<P, F>(
        &mut self,
        addr: SocketAddr,
        opts: ListenOptions,
        factory: F,
    ) -> io::Result<ListenerId>
    where
        P: Protocol<App> + 'static,
        F: FnMut(&mut App, SocketAddr) -> P + 'static,
    {
        self.cx().listen(addr, opts, factory)
    }

    /// Listens on a Unix-domain socket (S28); see [`LoopCx::listen_unix`].
    ///
    /// # Errors
    /// As [`LoopCx::listen_unix`]: a live server on the path, a file that is not a socket, or a
    /// system call's error.
    pub fn listen_unix<P, F>(
        &mut self,
        addr: &crate::UnixAddr,
        opts: crate::UnixListenOptions,
        factory: F,
    ) -> io::Result<ListenerId>
    where
        P: Protocol<App> + 'static,
        F: FnMut(&mut App) -> P + 'static,
    {
        self.cx().listen_unix(addr, opts, factory)
    }

    /// Serves a listening Unix-domain socket made elsewhere (S28); see
    /// [`LoopCx::adopt_unix_listener`]. Its socket file is left to whoever bound it.
    ///
    /// # Errors
    /// As [`LoopCx::adopt_unix_listener`].
    pub fn adopt_unix_listener<P, F>(
        &mut self,
        listener: std::os::unix::net::UnixListener,
        opts: ListenOptions,
        factory: F,
    ) -> io::Result<ListenerId>
    where
        P: Protocol<App> + 'static,
        F: FnMut(&mut App) -> P + 'static,
    {
        self.cx().adopt_unix_listener(listener, opts, factory)
    }

    /// Makes a connection of a connected socket made elsewhere (S29); see
    /// [`LoopCx::adopt_stream`].
    ///
    /// # Errors
    /// As [`LoopCx::adopt_stream`].
    pub fn adopt_stream(
        &mut self,
        fd: std::os::fd::OwnedFd,
        handler: impl Protocol<App> + 'static,
        config: ConnConfig,
    ) -> io::Result<ConnId> {
        self.cx().adopt_stream(fd, handler, config)
    }

    /// Serves a listening socket made elsewhere; see [`LoopCx::adopt_listener`].
    ///
    /// # Errors
    /// As [`LoopCx::adopt_listener`].
    pub fn adopt_listener<P, F>(
        &mut self,
        listener: std::net::TcpListener,
        opts: ListenOptions,
        factory: F,
    ) -> io::Result<ListenerId>
    where
        P: Protocol<App> + 'static,
        F: FnMut(&mut App, SocketAddr) -> P + 'static,
    {
        self.cx().adopt_listener(listener, opts, factory)
    }

    /// The TCP address a listener is bound to (a Unix-domain listener's path or name is in
    /// its [`ListenerStats::local_addr`](crate::ListenerStats)).
    ///
    /// # Errors
    /// `Unsupported` for a Unix-domain listener; `NotFound` if the listener was closed.
    pub fn listener_addr(&self, id: ListenerId) -> io::Result<SocketAddr> {
        self.core
            .listener_stats(id)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no {id}")))?
            .local_addr
            .tcp()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("{id} is a Unix-domain listener: no IP address"),
                )
            })
    }

    /// Opens an outgoing connection served by `handler` (S4); see [`LoopCx::connect`].
    ///
    /// # Errors
    /// As [`LoopCx::connect`]: only what fails before any attempt.
    pub fn connect(
        &mut self,
        addr: SocketAddr,
        handler: impl Protocol<App> + 'static,
        config: ConnConfig,
    ) -> io::Result<ConnId> {
        self.cx().connect(addr, handler, config)
    }

    /// Delivers signals as events (S31). With `shutdown_grace`, SIGINT and SIGTERM begin a
    /// graceful shutdown with that grace period and a second one stops at once. `callback`, if
    /// given, runs for every signal in `signals` inside the loop (never in signal context).
    ///
    /// Signal dispositions are process-wide, so one reactor per process catches signals, and
    /// only once. Installation is all or nothing, and dropping the reactor puts back the
    /// dispositions that were in force before the call.
    ///
    /// # Errors
    /// `AlreadyExists` if signals are already caught in this process (by this reactor or
    /// another); `EINVAL` for a signal that cannot be caught (`SIGKILL`, `SIGSTOP`) or a number
    /// out of range; the errors of `pipe2` and of registering the pipe. On any error every
    /// disposition is as it was before the call.
    pub fn catch_signals(
        &mut self,
        signals: &[i32],
        shutdown_grace: Option<Duration>,
        callback: Option<SignalCallback<App>>,
    ) -> io::Result<()> {
        let mut all = signals.to_vec();
        if shutdown_grace.is_some() {
            all.extend([libc::SIGINT, libc::SIGTERM]);
        }
        all.sort_unstable();
        all.dedup();
        let pipe = sys::install_signal_pipe(&all)?;
        let index = self.core.add_internal(Source::Signals);
        self.core.registry().register(
            &mut mio::unix::SourceFd(&pipe.read.as_fd().as_raw_fd()),
            Token(index),
            Interest::READABLE,
        )?;
        self.signals = Some(Signals {
            pipe,
            shutdown_grace,
            callback,
            received: Vec::new(),
        });
        Ok(())
    }

    /// Begins a graceful shutdown: listeners close, every connection is closed gracefully (its
    /// queued output flushed, FIN sent, the peer's FIN awaited), and whatever is still open after
    /// `grace` is aborted. [`run`](Self::run) returns once no connection is left.
    ///
    /// This is the way to end a reactor with open connections: dropping it instead closes
    /// every socket at once (queued output is lost) and runs no further callbacks, so handlers
    /// get no `on_close`.
    pub fn shutdown(&mut self, grace: Duration) {
        self.core.begin_shutdown(grace);
    }

    /// Whether a shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.core.is_shutting_down()
    }

    /// Whether [`run`](Self::run) would return now.
    pub fn is_finished(&self) -> bool {
        self.core.is_finished()
    }

    /// How long the loop may sleep before its next timer, if it has one (for a foreign loop
    /// that watches [`AsRawFd::as_raw_fd`] and calls [`turn`](Self::turn) with zero).
    pub fn next_timeout(&self) -> Option<Duration> {
        if self.has_pending_work() {
            return Some(Duration::ZERO);
        }
        self.core.until_next_timer()
    }

    pub(crate) fn has_pending_work(&self) -> bool {
        self.core.has_pending_work()
    }

    /// Runs until a shutdown has finished (or a second shutdown signal).
    ///
    /// # Errors
    /// `poll` failed with something other than `EINTR`.
    pub fn run(&mut self) -> io::Result<()> {
        while !self.is_finished() {
            self.turn(None)?;
        }
        Ok(())
    }

    /// Runs one turn, waiting at most `max_wait` (`None`: until an event or the next timer).
    ///
    /// # Errors
    /// `poll` failed with something other than `EINTR`.
    pub fn turn(&mut self, max_wait: Option<Duration>) -> io::Result<()> {
        // 1. Sleep no longer than the next timer, and not at all with work pending.
        let timeout = match self.next_timeout() {
            Some(t) => Some(max_wait.map_or(t, |m| m.min(t))),
            None => max_wait,
        };

        // 2. Wait. EINTR only ends the wait early; a signal shows up through its pipe.
        if let Err(e) = self.poll.poll(&mut self.events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        self.core.begin_turn();

        // 3a. Sources left ready last turn (budget spent, reading resumed): no edge will come.
        self.core.serve_ready(&mut self.scratch);

        // 3b. Readiness events from the poller; the reactor's own sources (signals, waker)
        // after the others of the same poll.
        let own = self.core.dispatch_events(&self.events, &mut self.scratch);
        if own.signals {
            self.handle_signals();
        }
        if own.waker {
            self.run_posted();
        }

        // 3c. Readiness queued by transports without a descriptor, one entry per edge (empty
        // for sockets).
        self.core.serve_injected(&mut self.scratch);

        // 4. Expired timers.
        self.core.fire_due();

        // 5 and 6. Flush what was written this turn, then remove what finished.
        let ended = self.core.end_turn();

        let spent = self.core.turn_length(ended);
        let stats = self.core.stats_mut();
        if spent > stats.longest_turn {
            stats.longest_turn = spent;
        }
        Ok(())
    }

    /// A handle for posting work into this reactor from other threads (created on first use).
    ///
    /// # Errors
    /// The waker (an eventfd) cannot be created or registered.
    pub fn handle(&mut self) -> io::Result<Handle<App>> {
        if self.mailbox.is_none() {
            let index = self.core.add_internal(Source::Waker);
            let waker = mio::Waker::new(self.poll.registry(), Token(index))?;
            self.mailbox = Some(Arc::new(Mailbox {
                queue: Mutex::new(Inbox {
                    posted: VecDeque::new(),
                    closed: false,
                }),
                waker,
            }));
        }
        Ok(Handle {
            mailbox: Arc::clone(self.mailbox.as_ref().expect("created above")),
        })
    }

    /// Runs every closure posted through a [`Handle`], in order.
    fn run_posted(&mut self) {
        let Some(mailbox) = &self.mailbox else {
            return;
        };
        {
            let mut inbox = mailbox.queue.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut inbox.posted, &mut self.posted);
        }
        while let Some(f) = self.posted.pop_front() {
            f(&mut LoopCx::new(&mut self.core));
        }
    }

    /// Reads the signal pipe and acts on each signal.
    fn handle_signals(&mut self) {
        let Some(signals) = self.signals.as_mut() else {
            return;
        };
        let mut received = std::mem::take(&mut signals.received);
        if let Err(e) = sys::read_signal_pipe(signals.pipe.read.as_fd(), &mut received) {
            log::warn!("reading the signal pipe: {e}");
        }
        for &sig in &received {
            let grace = self.signals.as_ref().and_then(|s| s.shutdown_grace);
            if let (Some(grace), true) = (grace, sig == libc::SIGINT || sig == libc::SIGTERM) {
                if self.core.is_shutting_down() {
                    log::warn!("signal {sig} during shutdown: stopping now");
                    self.stop_now();
                } else {
                    log::info!("signal {sig}: shutting down gracefully");
                    self.core.begin_shutdown(grace);
                }
            }
            if let Some(mut cb) = self.signals.as_mut().and_then(|s| s.callback.take()) {
                cb(&mut LoopCx::new(&mut self.core), sig);
                if let Some(s) = self.signals.as_mut() {
                    s.callback = Some(cb);
                }
            }
        }
        received.clear();
        if let Some(s) = self.signals.as_mut() {
            s.received = received;
        }
    }

    /// Aborts every connection and makes `run` return at the end of this turn.
    pub fn stop_now(&mut self) {
        self.core.stop_now();
    }
}

impl<App> AsFd for Reactor<App> {
    /// The poll descriptor: readable when the reactor has events to handle, for embedding in a
    /// foreign loop.
    fn as_fd(&self) -> BorrowedFd<'_> {
        // The registry holds the poll descriptor itself (the epoll instance).
        self.poll.registry().as_fd()
    }
}

impl<App> AsRawFd for Reactor<App> {
    /// The poll descriptor: readable when the reactor has events to handle, for embedding in a
    /// foreign loop.
    fn as_raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }
}
