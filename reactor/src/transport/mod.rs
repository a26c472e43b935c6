//! The transport seam: the one narrow interface through which a connection or a listener
//! reaches the operating system.
//!
//! Reading, gather writing, half-closing, the connect verdict, addresses, registration with the
//! poller and accepting all go through [`Transport`] (a connected stream) and [`Acceptor`] (a
//! listening end). The buffering, backpressure, close, connect and accept logic of the rest of
//! the crate is written against these traits only. TCP implements them in [`tcp`], which also
//! creates its sockets; the in-memory
//! transport of `reactor::testing` implements them in its own module, so the same code runs
//! over it and no production method carries a branch for it. The next transport (Unix-domain
//! stream sockets) is one more implementation.
//!
//! # Implementation notes
//! A transport with no descriptor cannot be watched by `epoll`. It raises readiness instead by
//! pushing its slab index onto the reactor's [`Injected`] queue, once per edge, and hands the
//! edge's [`Readiness`] over when the reactor asks ([`Transport::take_readiness`]). The turn
//! drains that queue after the poller's events, so its cost grows with the edges raised, never
//! with the number of sources. For sockets the queue stays empty.
//!
//! `EINTR` never crosses the seam: the system-call layer retries it for sockets, and any other
//! transport must do the same, so callers handle only `WouldBlock` and real errors.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::rc::Rc;

use mio::{Registry, Token};

use crate::sys;

pub(crate) mod tcp;

/// What a readiness event says about a source.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Readiness {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The peer's FIN (or a reset) arrived.
    pub(crate) read_closed: bool,
    pub(crate) error: bool,
}

/// Slab indexes of sources with readiness raised by their transport rather than by the poller,
/// one entry per edge, drained once per turn.
pub(crate) type Injected = Rc<RefCell<Vec<usize>>>;

/// Where a source is registered: the poller, its token, and the queue for injected readiness.
pub(crate) struct Registration<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) token: Token,
    /// Unused by sockets; a transport without a descriptor keeps a handle to it.
    #[allow(dead_code)]
    pub(crate) injected: &'a Injected,
}

/// A connected (or connecting) byte stream.
///
/// Every method is non-blocking. `EINTR` is retried inside; `WouldBlock` means "try again on
/// the next edge".
pub(crate) trait Transport: fmt::Debug {
    /// Starts delivering readiness for `at.token` (edge-triggered, reading and writing).
    fn register(&mut self, at: Registration<'_>) -> io::Result<()>;
    /// The descriptor, for socket options (`None`: the transport has none).
    fn fd(&self) -> Option<BorrowedFd<'_>>;
    /// Reads into `buf`; `Ok(0)` is end of stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// One gather write.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Sends FIN after the queued data.
    fn shutdown_write(&mut self) -> io::Result<()>;
    /// The pending socket error (the connect verdict, S4).
    fn take_error(&mut self) -> io::Result<Option<io::Error>>;
    /// The peer's address; `ENOTCONN` while not connected.
    fn peer_addr(&self) -> io::Result<SocketAddr>;
    /// The local address.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Arranges for the coming close to send RST and drop queued data (S17).
    fn set_abortive(&mut self) -> io::Result<()>;
    /// The readiness behind an entry this transport pushed onto the [`Injected`] queue.
    fn take_readiness(&mut self) -> Option<Readiness> {
        None
    }
}

/// A connection's transport.
pub(crate) type Stream = Box<dyn Transport>;

/// The accepting end of a listener.
pub(crate) trait Acceptor: fmt::Debug {
    /// Starts delivering readiness for `at.token` (edge-triggered, reading).
    fn register(&mut self, at: Registration<'_>) -> io::Result<()>;
    /// Accepts one pending connection.
    fn accept(&mut self) -> io::Result<(Stream, SocketAddr)>;
    /// Whether a client waits in the backlog, without accepting it.
    fn has_pending(&self) -> bool;
    /// The bound address.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Reserves a spare descriptor, released to accept and close clients when descriptors run
    /// out (S27).
    fn reserve_spare(&mut self) -> io::Result<OwnedFd> {
        sys::open_devnull()
    }
    /// Whether this acceptor pushed an edge onto the [`Injected`] queue since last asked.
    fn take_readiness(&mut self) -> bool {
        false
    }
}
