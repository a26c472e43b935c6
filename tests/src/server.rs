//! A real reactor on a thread of its own, driven by the test thread between its turns.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reactor::sys::poll::{poll, PollFd, POLLIN};
use reactor::{ListenOptions, Protocol, Reactor};

use crate::*;

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
    /// connection still open gets `on_close` with [`CloseReason::Shutdown`](reactor::CloseReason::Shutdown) (or the reason it
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
        let mut fds = [
            PollFd::new(reactor.as_fd(), POLLIN),
            PollFd::new(wake.as_fd(), POLLIN),
        ];
        let n = match poll(&mut fds, reactor.next_timeout()) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // 3. Empty the wake-up socket; the commands themselves are in the channel.
        if fds[1].revents() != 0 {
            let mut sink = [0u8; 64];
            while matches!((&*wake).read(&mut sink), Ok(n) if n > 0) {}
        }
        // 4. Turn only for the reactor's own reasons, so that commands add no turns.
        if n == 0 || fds[0].revents() != 0 {
            reactor.turn(Some(Duration::ZERO))?;
        }
    }
}
