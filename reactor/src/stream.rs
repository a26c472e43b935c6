//! The syscall seam: the one narrow interface through which connection logic touches a socket.
//!
//! Reading, gather writing, half-closing and the connect verdict all go through [`Stream`]. The
//! buffering, backpressure, close and connect logic in the rest of the crate is written against
//! these methods only, so the in-memory transport of [`crate::testing`] (behind the `testing`
//! feature), which injects faults (short writes, `WouldBlock`, `EINTR`, `ECONNRESET`, any
//! `SO_ERROR`), stands in for the socket and the same code runs.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};

use crate::sys;

/// A connected (or connecting) byte stream.
#[derive(Debug)]
pub(crate) enum Stream {
    /// A TCP socket.
    Tcp(mio::net::TcpStream),
    /// One end of an in-memory pipe driven by a test harness.
    #[cfg(feature = "testing")]
    Mem(crate::testing::MemStream),
}

impl Stream {
    /// The descriptor, for socket options (`None` for in-memory streams).
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Stream::Tcp(s) => Some(s.as_fd()),
            #[cfg(feature = "testing")]
            Stream::Mem(_) => None,
        }
    }

    /// The mio source to register (`None`: readiness comes from elsewhere).
    pub(crate) fn source(&mut self) -> Option<&mut dyn mio::event::Source> {
        match self {
            Stream::Tcp(s) => Some(s),
            #[cfg(feature = "testing")]
            Stream::Mem(_) => None,
        }
    }

    /// Reads into `buf`; `Ok(0)` is end of stream.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => sys::recv(s.as_fd(), buf),
            #[cfg(feature = "testing")]
            Stream::Mem(m) => m.read(buf),
        }
    }

    /// One gather write (`sendmsg` with `MSG_NOSIGNAL`; plain `send` for a single buffer).
    pub(crate) fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) if bufs.len() == 1 => sys::send(s.as_fd(), &bufs[0]),
            Stream::Tcp(s) => sys::sendmsg(s.as_fd(), bufs),
            #[cfg(feature = "testing")]
            Stream::Mem(m) => m.write_vectored(bufs),
        }
    }

    /// Sends FIN after the queued data.
    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => sys::shutdown_write(s.as_fd()),
            #[cfg(feature = "testing")]
            Stream::Mem(m) => m.shutdown_write(),
        }
    }

    /// The pending socket error (the connect verdict, S4).
    pub(crate) fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => sys::take_error(s.as_fd()),
            #[cfg(feature = "testing")]
            Stream::Mem(m) => m.take_error(),
        }
    }

    /// The peer's address; `ENOTCONN` while not connected.
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Tcp(s) => sys::getpeername(s.as_fd()),
            #[cfg(feature = "testing")]
            Stream::Mem(m) => m.peer_addr(),
        }
    }

    /// The local address.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Tcp(s) => sys::getsockname(s.as_fd()),
            #[cfg(feature = "testing")]
            Stream::Mem(m) => m.local_addr(),
        }
    }

    /// Arranges for the coming close to send RST and drop queued data (S17).
    pub(crate) fn set_abortive(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => sys::set_linger(s.as_fd(), Some(std::time::Duration::ZERO)),
            #[cfg(feature = "testing")]
            Stream::Mem(m) => m.set_abortive(),
        }
    }
}
