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
//! are told at once instead of hanging in the backlog. The accept loop itself lives in the
//! core's `accept` module, the socket setup in the TCP transport; this one holds the
//! listener's state.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::Duration;

use crate::transport::Acceptor;
use crate::{AtLimit, ConnConfig, ListenOptions, Protocol, UnixAddr};

/// Names a listener of one reactor ([`LoopCx::listen`](crate::LoopCx::listen),
/// [`LoopCx::adopt_listener`](crate::LoopCx::adopt_listener), their Unix-domain
/// counterparts): pause, resume, close it, read its
/// address and counters. Carries a generation, so a kept id never reaches a later listener in
/// the same slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl fmt::Debug for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listener#{}.{}", self.index, self.generation)
    }
}

impl fmt::Display for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Where a listener is bound: an IP address and port, or a Unix-domain path or abstract name
/// (S28). A Unix socket has no IP address, so a listener's address is this rather than a
/// `SocketAddr` with a made-up value.
///
/// Displayed as the command line takes it: `127.0.0.1:8080`, `unix:/run/svc.sock`,
/// `unix:@svc`, and parsed back from the same forms:
///
/// ```
/// use evdrive_reactor::{ListenAddr, UnixAddr};
/// let tcp: ListenAddr = "127.0.0.1:8080".parse().unwrap();
/// assert_eq!(tcp.tcp(), Some("127.0.0.1:8080".parse().unwrap()));
/// let name: ListenAddr = "unix:@svc".parse().unwrap();
/// assert_eq!(name.unix(), Some(&UnixAddr::parse("@svc")));
/// assert_eq!(name.to_string(), "unix:@svc");
/// assert!("unix:".parse::<ListenAddr>().is_err());
/// assert!("localhost".parse::<ListenAddr>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// A TCP listener's bound address (the real port when bound to port 0).
    Tcp(SocketAddr),
    /// A Unix-domain listener's path or abstract name.
    Unix(UnixAddr),
}

impl ListenAddr {
    /// The TCP address, if this is a TCP listener.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Tcp(a) => Some(*a),
            ListenAddr::Unix(_) => None,
        }
    }

    /// The Unix-domain address, if this is a Unix-domain listener.
    pub fn unix(&self) -> Option<&UnixAddr> {
        match self {
            ListenAddr::Tcp(_) => None,
            ListenAddr::Unix(a) => Some(a),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(a) => write!(f, "unix:{a}"),
        }
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    /// Parses the form [`Display`](fmt::Display) writes: `HOST:PORT`, `unix:PATH` or
    /// `unix:@NAME`, so a program's `--listen` option can take any listener address.
    ///
    /// # Errors
    /// A message naming the accepted forms when `s` is none of them (including `unix:` with no
    /// path or name).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("unix:") {
            Some("") | Some("@") => Err("unix: needs a path or @name".into()),
            Some(rest) => Ok(ListenAddr::Unix(UnixAddr::parse(rest))),
            None => s
                .parse()
                .map(ListenAddr::Tcp)
                .map_err(|e| format!("{e}: expected HOST:PORT, unix:PATH or unix:@NAME")),
        }
    }
}

/// How log lines name an accepted client: its address, or, for a Unix-domain listener's client
/// (which has none: the accept loop gets `None`), words saying so rather than a made-up
/// `0.0.0.0:0`.
#[derive(Clone, Copy)]
pub(crate) struct PeerName(pub(crate) Option<SocketAddr>);

impl fmt::Display for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("a Unix-domain client"),
        }
    }
}

/// One listener's counters ([`LoopCx::listener_stats`](crate::LoopCx::listener_stats)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerStats {
    /// The bound address: TCP, or a Unix-domain path or abstract name (S28).
    pub local_addr: ListenAddr,
    /// Connections accepted and served (clients rejected at the limit are counted in
    /// [`Stats::rejected`](crate::Stats::rejected) only).
    pub accepted: u64,
    /// Failed accepts, of every kind (a client gone before `accept`, descriptors exhausted…).
    pub accept_errors: u64,
    /// How many times accepting stopped at the reactor's connection limit.
    pub paused_by_limit: u64,
    /// Paused by [`LoopCx::pause_listener`](crate::LoopCx::pause_listener).
    pub paused: bool,
}

/// Makes the handler of each accepted connection: from the client's address (a TCP
/// listener's), or from nothing (a Unix-domain listener's: its clients have no address, and
/// none is made up for them).
pub(crate) enum Factory<App> {
    /// A TCP listener's (or the in-memory one's): its clients always have an address.
    Addressed(MakeFrom<App>),
    /// A Unix-domain listener's.
    Anonymous(Make<App>),
}

/// Makes a handler from the client's address.
type MakeFrom<App> = Box<dyn FnMut(&mut App, SocketAddr) -> Box<dyn Protocol<App>>>;

/// Makes a handler from nothing.
type Make<App> = Box<dyn FnMut(&mut App) -> Box<dyn Protocol<App>>>;

impl<App> Factory<App> {
    /// Wraps a factory that takes the client's address.
    pub(crate) fn addressed<P, F>(mut factory: F) -> Self
    where
        P: Protocol<App> + 'static,
        F: FnMut(&mut App, SocketAddr) -> P + 'static,
    {
        Factory::Addressed(Box::new(move |app: &mut App, peer| {
            Box::new(factory(app, peer)) as Box<_>
        }))
    }

    /// Wraps a factory that takes no address.
    pub(crate) fn anonymous<P, F>(mut factory: F) -> Self
    where
        P: Protocol<App> + 'static,
        F: FnMut(&mut App) -> P + 'static,
    {
        Factory::Anonymous(Box::new(move |app: &mut App| {
            Box::new(factory(app)) as Box<_>
        }))
    }

    /// The handler for a client from `peer`; `None` if this factory needs an address and the
    /// client has none (no transport accepts so: TCP clients always have one).
    pub(crate) fn make(
        &mut self,
        app: &mut App,
        peer: Option<SocketAddr>,
    ) -> Option<Box<dyn Protocol<App>>> {
        match (self, peer) {
            (Factory::Addressed(make), Some(peer)) => Some(make(app, peer)),
            (Factory::Addressed(_), None) => None,
            (Factory::Anonymous(make), _) => Some(make(app)),
        }
    }
}

/// A listening socket's slot.
pub(crate) struct Listener<App> {
    /// Generation of this slot's occupant (see [`ListenerId`]).
    pub(super) generation: u32,
    /// Paused by the user: no accept until resumed (clients wait in the backlog).
    pub(super) held: bool,
    /// Counters for [`ListenerStats`].
    pub(super) accepted: u64,
    pub(super) accept_errors: u64,
    pub(super) paused_by_limit: u64,
    /// The accepting end, behind the transport seam.
    pub(super) socket: Box<dyn Acceptor>,
    pub(super) local_addr: ListenAddr,
    pub(super) factory: Factory<App>,
    /// Settings shared by every connection this listener accepts.
    pub(super) conn: Rc<ConnConfig>,
    pub(super) accepts_per_turn: usize,
    pub(super) backoff_min: Duration,
    pub(super) backoff_max: Duration,
    /// The next back-off period.
    pub(super) backoff: Duration,
    /// Accepting is suspended until the back-off timer fires.
    pub(super) paused: bool,
    /// On the ready list.
    pub(super) ready: bool,
    /// Failed accepts in the current exhaustion episode (0: not in one). One log line opens an
    /// episode and one closes it, never a line per failure.
    pub(super) episode_failures: u64,
    /// Paused at the reactor's connection limit; resumed when a connection closes.
    pub(super) at_limit: bool,
    /// What to do with new clients at the connection limit.
    pub(super) policy: AtLimit,
    /// Settings of a rejected client's slot: the listener's, with a short linger and no
    /// timeouts of the opening phase (the `reject` module).
    pub(super) reject_conn: Rc<ConnConfig>,
    /// A descriptor held in reserve, released to accept-and-close clients when descriptors run
    /// out. `None` while it could not be reserved again; the back-off timer retries.
    pub(super) spare: Option<OwnedFd>,
    /// The failure to reserve the spare was logged (once, until it is reserved again).
    pub(super) spare_failure_logged: bool,
}

impl<App> Listener<App> {
    pub(super) fn new(
        mut socket: Box<dyn Acceptor>,
        factory: Factory<App>,
        opts: &ListenOptions,
        generation: u32,
    ) -> io::Result<Self> {
        let local_addr = socket.local_addr()?;
        let spare = match socket.reserve_spare() {
            Ok(fd) => Some(fd),
            Err(e) => {
                log::warn!("listener {local_addr}: no spare descriptor in reserve: {e}");
                None
            }
        };
        Ok(Listener {
            generation,
            held: false,
            accepted: 0,
            accept_errors: 0,
            paused_by_limit: 0,
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
            policy: opts.at_limit.clone(),
            reject_conn: Rc::new(super::reject::config(&opts.conn)),
            spare_failure_logged: spare.is_none(),
            spare,
        })
    }
}
