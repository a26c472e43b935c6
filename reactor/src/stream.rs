//! The syscall seam: the one narrow interface through which connection logic touches a socket.
//!
//! Reading, gather writing, half-closing and the connect verdict all go through [`Stream`]. The
//! buffering, backpressure, close and connect logic in the rest of the crate is written against
//! these methods only, so a transport that injects faults (short writes, `WouldBlock`, `EINTR`,
//! `ECONNRESET`, any `SO_ERROR`) can stand in for the socket and the same code runs.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};

use crate::sys;

/// A connected (or connecting) byte stream.
#[derive(Debug)]
pub(crate) enum Stream {
    /// A TCP socket.
    Tcp(mio::net::TcpStream),
}

impl Stream {
    /// The descriptor, for socket options.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
        }
    }

    /// The mio source to register.
    pub(crate) fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Tcp(s) => s,
        }
    }

    /// Reads into `buf`; `Ok(0)` is end of stream.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::recv(self.fd(), buf)
    }

    /// One gather write (`sendmsg` with `MSG_NOSIGNAL`).
    pub(crate) fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        sys::sendmsg(self.fd(), bufs)
    }

    /// Sends FIN after the queued data.
    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        sys::shutdown_write(self.fd())
    }

    /// The pending socket error (the connect verdict, S4).
    pub(crate) fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        sys::take_error(self.fd())
    }

    /// The peer's address; `ENOTCONN` while not connected.
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        sys::getpeername(self.fd())
    }

    /// The local address.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::getsockname(self.fd())
    }

    /// Arranges for the coming close to send RST and drop queued data (S17).
    pub(crate) fn set_abortive(&mut self) -> io::Result<()> {
        sys::set_linger(self.fd(), Some(std::time::Duration::ZERO))
    }
}
