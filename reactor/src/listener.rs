//! Listening sockets and the accept loop (S5, S18, S23, S27).
//!
//! # Implementation notes
//! The accept loop drains until `WouldBlock` (the readiness is edge-triggered), but at most
//! `accepts_per_turn` connections per turn; past that the listener goes on the ready list. Errors
//! that mean "this one connection died on the way" are counted and skipped. Errors that mean
//! "out of descriptors or memory" would make a naive loop spin (the pending connection stays in
//! the backlog and the listener stays readable), so the listener pauses for a back-off period
//! armed on the timer wheel, doubling while the condition lasts. A spare descriptor, reserved up
//! front, is given back for a moment so that pending clients can be accepted and closed: they
//! are told at once instead of hanging in the backlog.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use crate::conn::State;
use crate::core::{apply_conn_options, Core, Source};
use crate::stream::Stream;
use crate::timer::TimerEntry;
use crate::{sys, ConnConfig, ListenOptions, Protocol};

/// Makes the handler of each accepted connection.
pub(crate) type Factory<App> = Box<dyn FnMut(&mut App, SocketAddr) -> Box<dyn Protocol<App>>>;

/// The accepting end: a real listening socket, or an in-memory backlog in tests.
pub(crate) enum ListenSocket {
    Tcp(mio::net::TcpListener),
    #[cfg(feature = "testing")]
    Mem(crate::testing::MemBacklog),
}

/// A listening socket's slot.
pub(crate) struct Listener<App> {
    pub(crate) socket: ListenSocket,
    pub(crate) local_addr: SocketAddr,
    pub(crate) factory: Factory<App>,
    /// Settings shared by every connection this listener accepts.
    pub(crate) conn: Rc<ConnConfig>,
    pub(crate) accepts_per_turn: usize,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    /// The next back-off period.
    pub(crate) backoff: Duration,
    /// Accepting is suspended until the back-off timer fires.
    pub(crate) paused: bool,
    /// On the ready list.
    pub(crate) ready: bool,
    /// Failed accepts in the current exhaustion episode (0: not in one). One log line opens an
    /// episode and one closes it, never a line per failure.
    pub(crate) episode_failures: u64,
    /// Paused at the reactor's connection limit; resumed when a connection closes.
    pub(crate) at_limit: bool,
    /// A descriptor held in reserve, released to accept-and-close clients when descriptors run
    /// out.
    pub(crate) spare: Option<OwnedFd>,
}

/// Creates a listening socket with every option applied before `bind`/`listen` (S18, S19).
pub(crate) fn bind(addr: SocketAddr, opts: &ListenOptions) -> io::Result<mio::net::TcpListener> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let fd = sys::socket(domain, libc::SOCK_STREAM)?;
    sys::set_reuseaddr(fd.as_fd(), true)?;
    if opts.reuse_port {
        sys::set_reuseport(fd.as_fd(), true)?;
    }
    if let Some(n) = opts.recv_buffer_size {
        sys::set_recv_buffer_size(fd.as_fd(), n)?;
    }
    if let Some(n) = opts.send_buffer_size {
        sys::set_send_buffer_size(fd.as_fd(), n)?;
    }
    sys::bind(fd.as_fd(), &addr)?;
    sys::listen(fd.as_fd(), opts.backlog)?;
    if let Some(t) = opts.defer_accept {
        sys::set_defer_accept(fd.as_fd(), t)?;
    }
    Ok(mio::net::TcpListener::from_std(
        std::net::TcpListener::from(fd),
    ))
}

impl<App> Listener<App> {
    pub(crate) fn new(
        socket: ListenSocket,
        local_addr: SocketAddr,
        factory: Factory<App>,
        opts: &ListenOptions,
    ) -> io::Result<Self> {
        Ok(Listener {
            local_addr,
            socket,
            factory,
            conn: Rc::new(opts.conn.clone()),
            accepts_per_turn: opts.accepts_per_turn.max(1),
            backoff_min: opts.backoff_min,
            backoff_max: opts.backoff_max.max(opts.backoff_min),
            backoff: opts.backoff_min,
            paused: false,
            ready: false,
            episode_failures: 0,
            at_limit: false,
            spare: sys::open_devnull().ok(),
        })
    }

    /// Whether a client waits in the backlog (the listener is readable), without accepting it.
    fn has_pending(&self) -> bool {
        match &self.socket {
            ListenSocket::Tcp(l) => {
                sys::poll_readable(&[l.as_fd()], Some(Duration::ZERO)).map_or(true, |r| r[0])
            }
            #[cfg(feature = "testing")]
            ListenSocket::Mem(_) => true,
        }
    }

    /// Accepts one pending connection (the accept side of the syscall seam).
    fn accept_one(&self) -> io::Result<(Stream, SocketAddr)> {
        match &self.socket {
            ListenSocket::Tcp(l) => l.accept().map(|(s, a)| (Stream::Tcp(s), a)),
            #[cfg(feature = "testing")]
            ListenSocket::Mem(backlog) => backlog.accept(),
        }
    }
}

impl<App> Core<App> {
    fn listener(&mut self, index: usize) -> Option<&mut Listener<App>> {
        match self.sources.get_mut(index) {
            Some(Source::Listener(l)) => Some(l),
            _ => None,
        }
    }

    /// Accepts until `WouldBlock`, the per-turn budget, or an exhaustion pause.
    pub(crate) fn accept(&mut self, index: usize) {
        let mut accepted = 0;
        loop {
            let Some(l) = self.listener(index) else {
                return;
            };
            if l.paused {
                return;
            }
            if accepted >= l.accepts_per_turn {
                self.mark_ready(index);
                return;
            }
            if self.limits.shed_idle_at_limit
                && self.stats.open as usize >= self.limits.max_connections
                && !self.listener(index).is_some_and(|l| l.has_pending())
            {
                // Nobody is waiting: shedding now would close an idle connection for no
                // newcomer. The next client raises a new edge.
                return;
            }
            if !self.admit_connection() {
                // At the connection limit: leave new clients in the backlog until one closes.
                if let Some(l) = self.listener(index) {
                    l.at_limit = true;
                }
                self.listeners_at_limit = true;
                return;
            }
            let Some(l) = self.listener(index) else {
                return;
            };
            match l.accept_one() {
                Ok((stream, peer)) => {
                    accepted += 1;
                    if l.episode_failures > 0 {
                        log::info!(
                            "listener {}: accepting again after {} failed accepts",
                            l.local_addr,
                            l.episode_failures
                        );
                        l.episode_failures = 0;
                    }
                    l.backoff = l.backoff_min;
                    self.open_accepted(index, stream, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if sys::is_transient_accept_error(&e) => {
                    self.stats.accept_errors.count(&e);
                }
                Err(e) => {
                    self.stats.accept_errors.count(&e);
                    self.exhausted(index, e);
                    return;
                }
            }
        }
    }

    /// Out of descriptors or memory (or an unexpected error): tell pending clients, pause, and
    /// try again after a back-off (S27).
    fn exhausted(&mut self, index: usize, e: io::Error) {
        let mut shed = 0;
        let Some(l) = self.listener(index) else {
            return;
        };
        if l.episode_failures == 0 && !sys::is_resource_error(&e) {
            log::error!(
                "listener {}: unexpected accept error: {e}; pausing accepts with back-off",
                l.local_addr
            );
        } else if l.episode_failures == 0 {
            log::warn!(
                "listener {}: accept failed: {e}; pausing accepts with back-off",
                l.local_addr
            );
        }
        l.episode_failures += 1;
        if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) {
            if let Some(spare) = l.spare.take() {
                drop(spare);
                // Each accepted socket is closed at once, so the one free slot is reused.
                while let Ok((stream, _)) = l.accept_one() {
                    drop(stream);
                    shed += 1;
                }
                l.spare = sys::open_devnull().ok();
            }
        }
        l.paused = true;
        let delay = l.backoff;
        l.backoff = (l.backoff * 2).min(l.backoff_max);
        self.stats.accept_shed += shed;
        self.arm(delay, TimerEntry::ListenerResume(index as u32));
    }

    /// The back-off ended: accept again (no edge will announce what queued meanwhile).
    pub(crate) fn resume_listener(&mut self, index: usize) {
        if let Some(l) = self.listener(index) {
            l.paused = false;
            self.accept(index);
        }
    }

    /// Gives an accepted socket its handler and slot, then calls `on_open`.
    fn open_accepted(&mut self, index: usize, stream: Stream, peer: SocketAddr) {
        let Some(Source::Listener(l)) = self.sources.get_mut(index) else {
            return;
        };
        let handler = (l.factory)(&mut self.app, peer);
        let config = Rc::clone(&l.conn);
        apply_conn_options(&stream, &config);
        match self.insert_conn(stream, handler, config, State::Open) {
            Ok(id) => {
                self.stats.accepted += 1;
                log::debug!("accepted {id} from {peer}");
                self.arm_watchdog(id.index as usize);
                self.call(id.index as usize, |h, cx| h.on_open(cx));
            }
            Err(e) => log::warn!("registering a connection from {peer}: {e}"),
        }
    }
}
