//! The transport seam: the one narrow interface through which a connection or a listener
//! reaches the operating system.
//!
//! Reading, gather writing, half-closing, the connect verdict, addresses, registration with the
//! poller and accepting all go through [`Transport`] (a connected stream) and [`Acceptor`] (a
//! listening end). The buffering, backpressure, close, connect and accept logic of the rest of
//! the crate is written against these traits only; a connection holds its transport as a
//! [`Stream`], an enum whose TCP and Unix arms are called directly (see [`stream`]). TCP implements them in [`tcp`], which also
//! creates its sockets; the in-memory
//! transport of `reactor::testing` implements them in its own module, so the same code runs
//! over it and no production method carries a branch for it. Unix-domain stream sockets are
//! one more implementation, in [`unix`], which adds descriptor passing and peer credentials
//! (S28, S29) through methods the others leave at their defaults.
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

use crate::{sys, ListenAddr};

mod stream;
pub(crate) mod tcp;
pub(crate) mod unix;

pub(crate) use stream::Stream;

/// What a readiness event says about a source.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Readiness {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The peer's FIN (or a reset) arrived.
    pub(crate) read_closed: bool,
    pub(crate) error: bool,
}

impl From<&mio::event::Event> for Readiness {
    /// What a poller's event says.
    #[inline]
    fn from(event: &mio::event::Event) -> Self {
        Readiness {
            readable: event.is_readable(),
            writable: event.is_writable(),
            read_closed: event.is_read_closed(),
            error: event.is_error(),
        }
    }
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
    /// Whether descriptors can travel with the bytes (`SCM_RIGHTS`, S29).
    fn carries_fds(&self) -> bool {
        false
    }
    /// Reads into `buf`, appending descriptors that came with the bytes to `fds`. A
    /// transport that cannot carry descriptors just reads.
    fn read_with_fds(&mut self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        let _ = fds;
        self.read(buf)
    }
    /// One gather write carrying `fds` with its first byte; on an error nothing was sent.
    fn write_with_fds(
        &mut self,
        bufs: &[IoSlice<'_>],
        fds: &[BorrowedFd<'_>],
    ) -> io::Result<usize> {
        let _ = (bufs, fds);
        Err(io::ErrorKind::Unsupported.into())
    }
    /// The peer's credentials (`SO_PEERCRED`), for a Unix-domain connection.
    fn peer_credentials(&self) -> io::Result<sys::PeerCredentials> {
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Whether the connect completed: `ENOTCONN` while under way (S4). By default, whether the
    /// peer's address can be read.
    fn check_connected(&self) -> io::Result<()> {
        self.peer_addr().map(drop)
    }
    /// Stops readiness delivery, before the descriptor leaves the reactor.
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        let _ = registry;
        Ok(())
    }
    /// The descriptor itself, taken out without closing it (`None`: the transport has none).
    fn into_fd(self: Box<Self>) -> Option<OwnedFd> {
        None
    }
}

/// A stream over a descriptor made elsewhere (inherited, or received with `SCM_RIGHTS`): a
/// Unix-domain or TCP socket, made non-blocking.
pub(crate) fn adopt(fd: OwnedFd) -> io::Result<Stream> {
    use std::os::fd::AsFd;
    sys::set_nonblocking(fd.as_fd())?;
    match sys::socket_domain(fd.as_fd())? {
        libc::AF_UNIX => Ok(Stream::Unix(unix::UnixConn::from_fd(fd))),
        libc::AF_INET | libc::AF_INET6 => Ok(Stream::Tcp(tcp::TcpConn(fd))),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a TCP or Unix-domain stream socket",
        )),
    }
}

/// What stands in a connection's slot once its descriptor left the reactor: every call fails
/// with `NotConnected`.
#[derive(Debug)]
pub(crate) struct Detached;

impl Transport for Detached {
    fn register(&mut self, _: Registration<'_>) -> io::Result<()> {
        Err(io::ErrorKind::NotConnected.into())
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::NotConnected.into())
    }
    fn write_vectored(&mut self, _: &[IoSlice<'_>]) -> io::Result<usize> {
        Err(io::ErrorKind::NotConnected.into())
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        Ok(None)
    }
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Err(io::ErrorKind::NotConnected.into())
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Err(io::ErrorKind::NotConnected.into())
    }
    fn set_abortive(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The accepting end of a listener.
pub(crate) trait Acceptor: fmt::Debug {
    /// Starts delivering readiness for `at.token` (edge-triggered, reading).
    fn register(&mut self, at: Registration<'_>) -> io::Result<()>;
    /// Accepts one pending connection, with the client's address (`None`: it has none, as a
    /// Unix-domain client).
    fn accept(&mut self) -> io::Result<(Stream, Option<SocketAddr>)>;
    /// Whether a client waits in the backlog, without accepting it.
    fn has_pending(&self) -> bool;
    /// The bound address.
    fn local_addr(&self) -> io::Result<ListenAddr>;
    /// Reserves a spare descriptor, released to accept and close clients when descriptors run
    /// out (S27).
    fn reserve_spare(&mut self) -> io::Result<OwnedFd> {
        sys::open_devnull()
    }
    /// Whether this acceptor pushed an edge onto the [`Injected`] queue since last asked.
    fn take_readiness(&mut self) -> bool {
        false
    }
    /// The listening socket's descriptor, to export it for a restart (`None`: it has none).
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// Stops delivering readiness. Closing the descriptor is not enough once another process
    /// holds the same socket (a restart's successor): epoll forgets a registration only when
    /// the socket itself is closed.
    fn deregister(&mut self, _registry: &mio::Registry) -> io::Result<()> {
        Ok(())
    }
    /// Leaves the socket file (if the acceptor made one) in place when dropped: a successor
    /// serves the same socket through it.
    fn keep_file(&mut self) {}
}
