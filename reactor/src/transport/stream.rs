//! A connection's transport as a closed set: TCP and Unix-domain sockets by value, anything
//! else (the in-memory test transport, the stand-in of a detached connection) behind one boxed
//! arm.
//!
//! Every message crosses this seam twice (a read and a write). As a `Box<dyn Transport>` each
//! crossing was an indirect call the compiler could not see through; with the production
//! transports as variants, the TCP read and write are direct calls inlined into the read loop
//! and the flush. The boxed arm keeps the seam open for transports the reactor does not know,
//! and costs the production path only its match arm.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use mio::Registry;

use super::tcp::TcpConn;
use super::unix::UnixConn;
use super::{Readiness, Registration, Transport};
use crate::sys;

/// A connection's transport.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpConn),
    Unix(UnixConn),
    /// Any other transport, through the trait object.
    Other(Box<dyn Transport>),
}

/// Calls the [`Transport`] method `$m` of whichever transport the stream holds (by its trait
/// path for the sockets: their own inherent methods of the same names must not be picked).
macro_rules! each {
    ($self:expr, $m:ident($($arg:expr),*)) => {
        match $self {
            Stream::Tcp(s) => Transport::$m(s $(, $arg)*),
            Stream::Unix(s) => Transport::$m(s $(, $arg)*),
            Stream::Other(s) => s.$m($($arg),*),
        }
    };
}

/// The [`Transport`] methods, each passed to the transport the stream holds (see
/// [`Transport`] for what each does). Inherent, so callers need not import the trait.
impl Stream {
    /// The descriptor itself, taken out without closing it (`None`: the transport has none).
    pub(crate) fn into_fd(self) -> Option<OwnedFd> {
        match self {
            Stream::Tcp(s) => Some(s.0),
            Stream::Unix(s) => Some(s.into_owned_fd()),
            Stream::Other(s) => s.into_fd(),
        }
    }

    pub(crate) fn register(&mut self, at: Registration<'_>) -> io::Result<()> {
        each!(self, register(at))
    }

    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        each!(self, fd())
    }

    /// TCP first: a TCP connection's reads outside every message's case (which
    /// `Core::serve_event` makes itself, with `sys::recv_raw`) are one test of the variant.
    #[inline]
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => Transport::read(s, buf),
            other => other.read_other(buf),
        }
    }

    /// [`read`](Self::read) on any transport but TCP.
    fn read_other(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, read(buf))
    }

    #[inline]
    pub(crate) fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each!(self, write_vectored(bufs))
    }

    /// Writes one buffer: for TCP `send` itself, with no iovec array to build and no
    /// transport to choose beyond the first arm (a queue of one chunk; a plain connection's
    /// reply in the turn buffer is sent by `Net::write_out` itself, with `sys::send_raw`).
    #[inline]
    pub(crate) fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => sys::send(s.as_fd(), buf),
            _ => self.send_other(buf),
        }
    }

    /// [`send`](Self::send) through any other transport, out of line.
    #[inline(never)]
    fn send_other(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        each!(self, shutdown_write())
    }

    pub(crate) fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        each!(self, take_error())
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        each!(self, peer_addr())
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        each!(self, local_addr())
    }

    pub(crate) fn set_abortive(&mut self) -> io::Result<()> {
        each!(self, set_abortive())
    }

    pub(crate) fn take_readiness(&mut self) -> Option<Readiness> {
        each!(self, take_readiness())
    }

    pub(crate) fn carries_fds(&self) -> bool {
        each!(self, carries_fds())
    }

    pub(crate) fn read_with_fds(
        &mut self,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
    ) -> io::Result<usize> {
        each!(self, read_with_fds(buf, fds))
    }

    pub(crate) fn write_with_fds(
        &mut self,
        bufs: &[IoSlice<'_>],
        fds: &[BorrowedFd<'_>],
    ) -> io::Result<usize> {
        each!(self, write_with_fds(bufs, fds))
    }

    pub(crate) fn peer_credentials(&self) -> io::Result<sys::PeerCredentials> {
        each!(self, peer_credentials())
    }

    pub(crate) fn check_connected(&self) -> io::Result<()> {
        each!(self, check_connected())
    }

    pub(crate) fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        each!(self, deregister(registry))
    }
}
