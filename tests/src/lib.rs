//! Helpers shared by the end-to-end tests of the reactor.
//!
//! The tests run a real [`Reactor`] on a background thread ([`Server`]) and drive it with
//! blocking clients over 127.0.0.1. Handlers are wrapped in [`Observed`], which reports every
//! callback of interest to the test thread as an [`Event`]; an [`Observer`] waits for those
//! events with a deadline and checks at the end that every connection was closed exactly once.
//!
//! Every wait here is bounded: clients get read and write timeouts of [`WAIT`], and every
//! `wait_*` function takes or uses a deadline, so a broken reactor fails a test instead of
//! hanging it.
//!
//! ```no_run
//! use evdrive_tests::{connect, observe, Server};
//! use protocols::echo::Echo;
//! use std::io::{Read, Write};
//!
//! let (watch, mut observer) = observe();
//! let server = Server::listen(|| (), Default::default(), move |_, _| watch.wrap(Echo))?;
//! let mut client = connect(server.addr())?;
//! client.write_all(b"ping")?;
//! let mut reply = [0; 4];
//! client.read_exact(&mut reply)?;
//! assert_eq!(&reply, b"ping");
//! drop(client);
//! server.shutdown(std::time::Duration::from_secs(1))?;
//! observer.assert_closed_once();
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![doc(test(attr(deny(warnings))))]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reactor::{CloseKind, CloseReason, ConnId, Cx, ListenOptions, Protocol, Reactor, TimerId};

/// The longest any single wait of a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// Turns on the reactor's log output (`RUST_LOG=debug cargo test …`), once per process.
pub fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// A closure run on the reactor thread.
type Job<App> = Box<dyn FnOnce(&mut Reactor<App>) + Send>;

/// Something for the reactor thread to do.
enum Command<App: 'static> {
    /// Run a closure on the reactor between two turns.
    Run(Job<App>),
    /// Leave the loop at once and drop the reactor (its sockets close without `on_close`).
    Stop,
    /// Run a closure on the reactor when the loop ends, before the reactor is dropped.
    AtExit(Job<App>),
}

/// A reactor running on a thread of its own.
///
/// The reactor is not `Send`, so it is built on that thread: the user state comes from a
/// closure, and so does the setup (listeners, connects). The thread embeds the reactor in a
/// loop of its own: it `poll`s the reactor's descriptor together with a wake-up socket and turns
/// the reactor only when it has events or a timer is due. The test thread can therefore run
/// closures on the reactor ([`with`](Self::with)) without adding turns to its statistics, and
/// an idle reactor costs no turn at all.
///
/// Dropping a `Server` stops the thread (as [`stop`](Self::stop) does).
pub struct Server<App: 'static> {
    /// The address the setup returned (the listener's, usually).
    addr: SocketAddr,
    /// Work for the reactor thread.
    commands: Sender<Command<App>>,
    /// Written to after every command, so the reactor thread leaves `poll`.
    wake: UnixStream,
    /// The reactor thread; `None` once joined.
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl<App> std::fmt::Debug for Server<App> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl<App: 'static> Server<App> {
    /// Starts a reactor whose user state is `app()` and runs `setup` on it before its first
    /// turn; `setup` returns the address the test should know (e.g. a listener's).
    pub fn start<A, S>(app: A, setup: S) -> io::Result<Self>
    where
        A: FnOnce() -> App + Send + 'static,
        S: FnOnce(&mut Reactor<App>) -> io::Result<SocketAddr> + Send + 'static,
    {
        let (commands, inbox) = mpsc::channel::<Command<App>>();
        let (wake, wake_rx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("reactor".into())
            .spawn(move || {
                let mut reactor = match Reactor::new(app()) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(e);
                    }
                };
                match setup(&mut reactor) {
                    Ok(addr) => {
                        let _ = ready_tx.send(Ok(addr));
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(e);
                    }
                }
                drive(&mut reactor, &inbox, &wake_rx)
            })?;
        let addr = match ready_rx.recv_timeout(WAIT) {
            Ok(result) => result?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the reactor thread did not start",
                ))
            }
        };
        Ok(Server {
            addr,
            commands,
            wake,
            thread: Some(thread),
        })
    }

    /// Starts a reactor with one listener on 127.0.0.1, port 0, whose connections get handlers
    /// from `factory`.
    pub fn listen<A, F, P>(app: A, opts: ListenOptions, factory: F) -> io::Result<Self>
    where
        A: FnOnce() -> App + Send + 'static,
        F: FnMut(&mut App, SocketAddr) -> P + Send + 'static,
        P: Protocol<App> + 'static,
    {
        Self::start(app, move |reactor| {
            let id = reactor.listen(localhost(), opts, factory)?;
            reactor.listener_addr(id)
        })
    }

    /// The address `setup` returned.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs `f` on the reactor thread between two turns and returns its result.
    ///
    /// # Panics
    /// If the reactor thread has ended or does not answer within [`WAIT`].
    pub fn with<R, F>(&self, f: F) -> R
    where
        R: Send + 'static,
        F: FnOnce(&mut Reactor<App>) -> R + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Run(Box::new(move |reactor| {
            let _ = tx.send(f(reactor));
        })));
        rx.recv_timeout(WAIT)
            .expect("the reactor thread did not answer")
    }

    /// The reactor's counters.
    pub fn stats(&self) -> reactor::Stats {
        self.with(|r| r.stats().clone())
    }

    /// Calls `f` on the reactor until it returns `Some`, for at most `limit`; `None` if it never
    /// did. For conditions with no event of their own (a counter reaching a value).
    pub fn wait_for<R, F>(&self, limit: Duration, f: F) -> Option<R>
    where
        R: Send + 'static,
        F: Fn(&mut Reactor<App>) -> Option<R> + Send + Clone + 'static,
    {
        wait_until(limit, || self.with(f.clone()))
    }

    /// Begins a graceful shutdown with `grace` and waits for the reactor to finish it; every
    /// connection still open gets `on_close` with [`CloseReason::Shutdown`] (or the reason it
    /// was already closing with).
    pub fn shutdown(mut self, grace: Duration) -> io::Result<()> {
        self.send(Command::Run(Box::new(move |r| r.shutdown(grace))));
        self.join()
    }

    /// Like [`shutdown`](Self::shutdown), then runs `f` on the finished reactor (to read its
    /// user state and counters after every `on_close` ran) and returns its result.
    pub fn shutdown_then<R, F>(mut self, grace: Duration, f: F) -> io::Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Reactor<App>) -> R + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        self.send(Command::AtExit(Box::new(move |reactor| {
            let _ = tx.send(f(reactor));
        })));
        self.send(Command::Run(Box::new(move |r| r.shutdown(grace))));
        self.join()?;
        rx.recv_timeout(WAIT)
            .map_err(|_| io::Error::other("the reactor thread ended without running the closure"))
    }

    /// Stops the reactor at once and drops it: its sockets are closed without `on_close`.
    pub fn stop(mut self) -> io::Result<()> {
        self.send(Command::Stop);
        self.join()
    }

    fn send(&self, command: Command<App>) {
        if self.commands.send(command).is_ok() {
            let _ = (&self.wake).write(&[1]);
        }
    }

    fn join(&mut self) -> io::Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // Bounded: the thread leaves its loop within one turn of a command.
        let deadline = Instant::now() + WAIT;
        while !thread.is_finished() {
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the reactor thread did not finish",
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl<App: 'static> Drop for Server<App> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.send(Command::Stop);
            if let Err(e) = self.join() {
                if !std::thread::panicking() {
                    panic!("stopping the reactor thread: {e}");
                }
            }
        }
    }
}

/// The reactor thread's loop: wait on the reactor's descriptor and the wake-up socket, run
/// commands, and turn the reactor when it has events or a due timer.
fn drive<App>(
    reactor: &mut Reactor<App>,
    inbox: &Receiver<Command<App>>,
    wake: &UnixStream,
) -> io::Result<()> {
    let mut at_exit = Vec::new();
    let result = drive_until_done(reactor, inbox, wake, &mut at_exit);
    for f in at_exit {
        f(reactor);
    }
    result
}

/// The loop of [`drive`]; closures to run at its end are collected in `at_exit`.
fn drive_until_done<App>(
    reactor: &mut Reactor<App>,
    inbox: &Receiver<Command<App>>,
    wake: &UnixStream,
    at_exit: &mut Vec<Job<App>>,
) -> io::Result<()> {
    loop {
        // 1. Commands first: they may stop the loop or start a shutdown.
        while let Ok(command) = inbox.try_recv() {
            match command {
                Command::Run(f) => f(reactor),
                Command::AtExit(f) => at_exit.push(f),
                Command::Stop => return Ok(()),
            }
        }
        if reactor.is_finished() {
            return Ok(());
        }
        // 2. Sleep until the reactor has events, its next timer is due, or a command comes.
        // The timeout is rounded up to whole milliseconds so a timer is never polled early.
        let timeout = match reactor.next_timeout() {
            None => -1,
            Some(t) => t.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
        };
        let mut fds = [
            libc::pollfd {
                fd: reactor.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd structures for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // 3. Empty the wake-up socket; the commands themselves are in the channel.
        if fds[1].revents != 0 {
            let mut sink = [0u8; 64];
            while matches!((&*wake).read(&mut sink), Ok(n) if n > 0) {}
        }
        // 4. Turn only for the reactor's own reasons, so that commands add no turns.
        if n == 0 || fds[0].revents != 0 {
            reactor.turn(Some(Duration::ZERO))?;
        }
    }
}

/// 127.0.0.1 with port 0: a fresh port chosen by the kernel.
pub fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Calls `f` until it returns `Some`, for at most `limit`, pausing briefly between calls.
/// For conditions that have no event to wait on.
pub fn wait_until<R>(limit: Duration, mut f: impl FnMut() -> Option<R>) -> Option<R> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(r) = f() {
            return Some(r);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A callback a handler wrapped in [`Observed`] received, as reported to the test thread.
#[derive(Debug)]
pub enum Event {
    /// `on_open`.
    Open(ConnId),
    /// `on_high_water`, with the bytes queued at that moment.
    HighWater(ConnId, usize),
    /// `on_drained`, with the bytes queued at that moment.
    Drained(ConnId, usize),
    /// `on_timer`, with the timer's tag and the moment it fired.
    Timer(ConnId, u64, Instant),
    /// `on_eof`.
    Eof(ConnId),
    /// `on_close`, with the reason's kind and its text (which names a protocol error's cause
    /// or an I/O error's errno).
    Close(ConnId, CloseKind, String),
}

impl Event {
    /// The connection the event is about.
    pub fn conn(&self) -> ConnId {
        match self {
            Event::Open(c)
            | Event::HighWater(c, _)
            | Event::Drained(c, _)
            | Event::Timer(c, _, _)
            | Event::Eof(c)
            | Event::Close(c, _, _) => *c,
        }
    }

    /// The close reason's kind, if this is a close.
    pub fn close_kind(&self) -> Option<CloseKind> {
        match self {
            Event::Close(_, kind, _) => Some(*kind),
            _ => None,
        }
    }
}

/// The sending side of an observation: wraps handlers so that they report their callbacks.
#[derive(Clone, Debug)]
pub struct Watch {
    events: Sender<Event>,
}

impl Watch {
    /// Wraps `inner` so that its callbacks are reported.
    pub fn wrap<P>(&self, inner: P) -> Observed<P> {
        Observed {
            inner,
            events: self.events.clone(),
        }
    }
}

/// Creates a [`Watch`] for the reactor side and an [`Observer`] for the test side.
pub fn observe() -> (Watch, Observer) {
    let (events, rx) = mpsc::channel();
    (
        Watch { events },
        Observer {
            rx,
            seen: Vec::new(),
        },
    )
}

/// A handler that forwards every callback to `inner` and reports it as an [`Event`].
/// Reports are sent after `inner` ran (before it, for `on_close`).
#[derive(Debug)]
pub struct Observed<P> {
    /// The handler doing the work.
    pub inner: P,
    events: Sender<Event>,
}

impl<P> Observed<P> {
    fn report(&self, event: Event) {
        let _ = self.events.send(event);
    }
}

impl<App, P: Protocol<App>> Protocol<App> for Observed<P> {
    fn on_open(&mut self, cx: &mut Cx<'_, App>) {
        self.report(Event::Open(cx.id()));
        self.inner.on_open(cx);
    }

    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        self.inner.on_data(cx, data)
    }

    fn on_high_water(&mut self, cx: &mut Cx<'_, App>) {
        self.report(Event::HighWater(cx.id(), cx.queued()));
        self.inner.on_high_water(cx);
    }

    fn on_drained(&mut self, cx: &mut Cx<'_, App>) {
        self.report(Event::Drained(cx.id(), cx.queued()));
        self.inner.on_drained(cx);
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, App>, timer: TimerId) {
        self.report(Event::Timer(cx.id(), timer.tag(), Instant::now()));
        self.inner.on_timer(cx, timer);
    }

    fn on_eof(&mut self, cx: &mut Cx<'_, App>) {
        self.report(Event::Eof(cx.id()));
        self.inner.on_eof(cx);
    }

    fn on_close(&mut self, cx: &mut Cx<'_, App>, reason: CloseReason) {
        let id = cx.id();
        let (kind, text) = (reason.kind(), reason.to_string());
        self.inner.on_close(cx, reason);
        self.report(Event::Close(id, kind, text));
    }
}

/// The receiving side of an observation: every [`Event`] reported so far, and waits for more.
#[derive(Debug)]
pub struct Observer {
    rx: Receiver<Event>,
    /// Every event received, in order.
    seen: Vec<Event>,
}

impl Observer {
    /// Every event received so far (call [`poll`](Self::poll) first to take in new ones).
    pub fn seen(&self) -> &[Event] {
        &self.seen
    }

    /// Takes in the events reported so far without waiting.
    pub fn poll(&mut self) -> &[Event] {
        while let Ok(e) = self.rx.try_recv() {
            self.seen.push(e);
        }
        &self.seen
    }

    /// Waits up to `limit` for an event matching `pred` (among those already seen, too) and
    /// returns its position in [`seen`](Self::seen).
    ///
    /// # Panics
    /// If none arrives in time; the message lists what did arrive.
    pub fn wait_for(&mut self, limit: Duration, pred: impl Fn(&Event) -> bool) -> usize {
        self.try_wait_for(limit, pred).unwrap_or_else(|| {
            panic!(
                "no matching event within {limit:?}; events seen: {:#?}",
                self.seen
            )
        })
    }

    /// Like [`wait_for`](Self::wait_for), but returns `None` instead of panicking.
    pub fn try_wait_for(
        &mut self,
        limit: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<usize> {
        if let Some(i) = self.seen.iter().position(&pred) {
            return Some(i);
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(e) => {
                    let hit = pred(&e);
                    self.seen.push(e);
                    if hit {
                        return Some(self.seen.len() - 1);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None
                }
            }
        }
    }

    /// Waits for the close of `conn` and returns its reason's kind.
    pub fn wait_close(&mut self, conn: ConnId) -> CloseKind {
        let i = self.wait_for(WAIT, |e| matches!(e, Event::Close(c, ..) if *c == conn));
        self.seen[i].close_kind().expect("a close event")
    }

    /// Waits for the next `on_open` not yet returned by an earlier call and returns its
    /// connection. Opens are handed out in the order they happened.
    pub fn wait_open(&mut self, already: &[ConnId]) -> ConnId {
        let i = self.wait_for(
            WAIT,
            |e| matches!(e, Event::Open(c) if !already.contains(c)),
        );
        self.seen[i].conn()
    }

    /// Waits for the first close of any connection and returns it and its reason's kind.
    pub fn wait_any_close(&mut self) -> (ConnId, CloseKind) {
        let i = self.wait_for(WAIT, |e| matches!(e, Event::Close(..)));
        (self.seen[i].conn(), self.seen[i].close_kind().unwrap())
    }

    /// The close reasons seen so far, by connection.
    pub fn closes(&mut self) -> Vec<(ConnId, CloseKind)> {
        self.poll();
        self.seen
            .iter()
            .filter_map(|e| e.close_kind().map(|k| (e.conn(), k)))
            .collect()
    }

    /// Checks that every connection that was reported at all (opened, or only closed: a failed
    /// connect) got exactly one `on_close`, and that nothing was reported after it. Call it
    /// once the reactor has shut down.
    ///
    /// # Panics
    /// On a connection with no close, two closes, or an event after its close.
    pub fn assert_closed_once(&mut self) {
        self.poll();
        let mut closes: HashMap<ConnId, usize> = HashMap::new();
        for e in &self.seen {
            let closed = closes.entry(e.conn()).or_default();
            assert_eq!(*closed, 0, "{e:?} after {:?} was closed", e.conn());
            if let Event::Close(..) = e {
                *closed += 1;
            }
        }
        for (conn, n) in closes {
            assert_eq!(
                n, 1,
                "{conn:?} was closed {n} times; events: {:#?}",
                self.seen
            );
        }
    }
}

/// Connects to `addr` with read and write timeouts of [`WAIT`].
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(WAIT))?;
    stream.set_write_timeout(Some(WAIT))?;
    Ok(stream)
}

/// Connects to `addr` after `configure` set options on the new socket (those that must come
/// before `connect`, such as `SO_RCVBUF`); read and write timeouts are [`WAIT`].
pub fn connect_with(
    addr: SocketAddr,
    configure: impl FnOnce(BorrowedFd<'_>) -> io::Result<()>,
) -> io::Result<TcpStream> {
    let fd = tcp_socket()?;
    configure(fd.as_fd())?;
    connect_socket(fd, addr)
}

/// A new, unconnected IPv4 TCP socket.
pub fn tcp_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `socket` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The C form of an IPv4 address, for the tests that call `connect`/`bind` on raw sockets.
pub fn sockaddr_in(addr: SocketAddr) -> io::Result<libc::sockaddr_in> {
    let SocketAddr::V4(v4) = addr else {
        return Err(io::Error::new(io::ErrorKind::Unsupported, "IPv4 only"));
    };
    Ok(libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(v4.ip().octets()),
        },
        sin_zero: [0; 8],
    })
}

/// Connects a socket made by [`tcp_socket`] to an IPv4 `addr` (blocking); read and write
/// timeouts are [`WAIT`]. Connecting allocates no descriptor, so sockets made earlier can
/// connect when the process has none left.
pub fn connect_socket(fd: OwnedFd, addr: SocketAddr) -> io::Result<TcpStream> {
    let sin = sockaddr_in(addr)?;
    let stream = TcpStream::from(fd);
    // SAFETY: `sin` is a valid sockaddr_in and the length matches it.
    let rc = unsafe {
        libc::connect(
            stream.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
        // A connect interrupted by a signal goes on in the background: wait for it instead
        // of issuing it again (S2).
        if !wait_ready(stream.as_fd(), libc::POLLOUT, WAIT)? {
            return Err(io::ErrorKind::TimedOut.into());
        }
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
    }
    stream.set_read_timeout(Some(WAIT))?;
    stream.set_write_timeout(Some(WAIT))?;
    Ok(stream)
}

/// Sets an integer socket option.
pub fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for the duration of the call and the length matches it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `SO_RCVBUF` on a client socket (set it before connecting, see [`connect_with`]).
pub fn set_recv_buffer(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, bytes as libc::c_int)
}

/// `SO_LINGER` with a zero timeout: closing the socket then sends RST instead of FIN.
pub fn set_linger_zero(stream: &TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a valid struct linger for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Closes `stream` abortively: the peer gets RST.
pub fn reset(stream: TcpStream) -> io::Result<()> {
    set_linger_zero(&stream)?;
    drop(stream);
    Ok(())
}

/// The byte at position `i` of the test pattern. Its period, 251, is prime, so it never lines
/// up with power-of-two buffer sizes: a lost, repeated or reordered chunk shows.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// `len` bytes of the test pattern starting at position `from`.
pub fn pattern(from: u64, len: usize) -> Vec<u8> {
    (from..from + len as u64).map(pattern_byte).collect()
}

/// Checks a stream against the test pattern as it arrives, without keeping it.
#[derive(Debug, Default)]
pub struct PatternCheck {
    /// Bytes checked so far.
    pub pos: u64,
}

impl PatternCheck {
    /// Checks the next bytes of the stream.
    ///
    /// # Panics
    /// At the first byte that differs from the pattern.
    pub fn check(&mut self, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            let at = self.pos + i as u64;
            assert_eq!(b, pattern_byte(at), "byte {at} differs from the pattern");
        }
        self.pos += bytes.len() as u64;
    }
}

/// Reads until end of stream (each read bounded by the socket's read timeout) and returns what
/// arrived. A read timeout is an error, so a peer that never closes fails the test.
pub fn read_to_eof(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all)?;
    Ok(all)
}

/// Reads and expects end of stream right away (no data).
pub fn expect_eof(stream: &mut TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 64];
    match stream.read(&mut buf)? {
        0 => Ok(()),
        n => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected end of stream, got {n} bytes"),
        )),
    }
}

/// Whether `e` means the peer reset the connection.
pub fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Waits up to `limit` for `fd` to report `events` (`libc::POLLIN`, `libc::POLLOUT`, …) and
/// returns whether it did.
pub fn wait_ready(fd: BorrowedFd<'_>, events: libc::c_short, limit: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        };
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: `pfd` is a valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(n > 0);
    }
}

/// A listening socket on 127.0.0.1 (port 0) with the given `listen` backlog, which
/// `std::net::TcpListener` does not let one choose. A listener that never accepts and whose
/// queue is full makes Linux drop new SYNs: a connect to it hangs until it times out, with no
/// packet leaving the machine.
pub fn listen_with_backlog(backlog: libc::c_int) -> io::Result<std::net::TcpListener> {
    let fd = tcp_socket()?;
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sin` is a valid sockaddr_in and the length matches it.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain listen(2) on a socket we own.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(std::net::TcpListener::from(fd))
}

/// An address on 127.0.0.1 where nothing listens (a port just bound and released).
pub fn closed_port() -> io::Result<SocketAddr> {
    let l = std::net::TcpListener::bind(localhost())?;
    l.local_addr()
}

/// The environment variable naming the one test a child process started by
/// [`run_in_child`] is to run.
const CHILD_TEST_ENV: &str = "EVDRIVE_CHILD_TEST";

/// Runs the ignored test `name` of this test binary in a child process of its own, and fails
/// with the child's output unless it passes. For tests of process-wide state (signal
/// dispositions, children, descriptor limits) that would disturb the tests running beside them
/// in this process. The test `name` starts with `if !is_child(NAME) { return }`.
pub fn run_in_child(name: &str) -> io::Result<()> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_TEST_ENV, name)
        .stdin(std::process::Stdio::null())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} failed in its child process ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // A filter that matched nothing would pass too: make sure the test ran.
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run in its child process:\n{stdout}"
    );
    Ok(())
}

/// Whether this process is the child [`run_in_child`] started for test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var_os(CHILD_TEST_ENV).is_some_and(|v| v == name)
}

/// Runs `attempt` up to `attempts` times until it is conclusive (`Some`) and returns that.
///
/// For tests of a client that must keep a pace (a byte every 50 ms against a 200 ms idle
/// timeout): on a loaded machine the client itself can be kept from running for longer than the
/// timeout, and then a close is the right answer, not a failure. Such an attempt measures its
/// own longest gap and returns `None` when the gap broke its premise; a close *without* such a
/// gap is a failure, which the attempt reports by panicking or with an error.
///
/// # Panics
/// If no attempt was conclusive, naming `what`.
pub fn until_conclusive<T>(
    what: &str,
    attempts: usize,
    mut attempt: impl FnMut() -> io::Result<Option<T>>,
) -> io::Result<T> {
    for i in 0..attempts {
        if let Some(result) = attempt()? {
            return Ok(result);
        }
        eprintln!(
            "{what}: attempt {} inconclusive (the client lost its pace)",
            i + 1
        );
    }
    panic!("{what}: the machine kept the client from its pace in all {attempts} attempts");
}

/// The `evdrive` command-line binary, built on first use with the cargo, profile and target
/// directory running the calling test (a test binary at `<target>/<profile>/deps/NAME-HASH`
/// finds it at `<target>/<profile>/evdrive`). The tests crate is not the binary's package, so
/// cargo does not build it for them.
///
/// # Panics
/// If the test does not run from a cargo target directory or the build fails.
pub fn evdrive_binary() -> &'static std::path::Path {
    static BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test's own path");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("the test runs from <target>/<profile>/deps");
        let target_dir = profile_dir.parent().expect("a target directory");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(name) => name,
            None => panic!("no profile directory in {}", exe.display()),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--quiet", "-p", "evdrive", "--bin", "evdrive"])
            .args(["--profile", profile])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build");
        assert!(status.success(), "cargo build -p evdrive: {status}");
        let binary = profile_dir.join("evdrive");
        assert!(binary.exists(), "no binary at {}", binary.display());
        binary
    })
}
