//! TCP behind the transport seam: the socket calls of a connection and a listener, and the
//! creation of both with their options applied at the right moment (S18, S19).

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::Interest;

use super::{Acceptor, Registration, Stream, Transport};
use crate::{sys, ConnConfig, ListenAddr, ListenOptions};

fn domain(addr: &SocketAddr) -> libc::c_int {
    if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

/// Creates a listening socket with every option applied before `bind`/`listen` (S18, S19).
pub(crate) fn listen(addr: SocketAddr, opts: &ListenOptions) -> io::Result<mio::net::TcpListener> {
    let fd = sys::socket(domain(&addr), libc::SOCK_STREAM)?;
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

/// Starts a non-blocking connect to `addr` with the buffer sizes of `config` set first (S19).
/// Returns the stream and the outcome of the attempt (`EINPROGRESS` is `Ok`; the verdict comes
/// later from `SO_ERROR`, S4). Fails only if no socket could be made.
pub(crate) fn connect(
    addr: SocketAddr,
    config: &ConnConfig,
) -> io::Result<(Stream, io::Result<bool>)> {
    let fd = sys::socket(domain(&addr), libc::SOCK_STREAM)?;
    if let Some(n) = config.send_buffer_size {
        sys::set_send_buffer_size(fd.as_fd(), n)?;
    }
    if let Some(n) = config.recv_buffer_size {
        sys::set_recv_buffer_size(fd.as_fd(), n)?;
    }
    let attempt = sys::connect(fd.as_fd(), &addr);
    Ok((Stream::Tcp(TcpConn(fd)), attempt))
}

/// A connection's TCP socket: the descriptor itself (non-blocking), registered by it. Every
/// call on it goes through `sys` with the descriptor, which `OwnedFd` lends inlined; `mio`'s
/// and the standard library's streams each cost a call per `recv` and `send` to get it.
#[derive(Debug)]
pub(crate) struct TcpConn(pub(crate) OwnedFd);

impl AsFd for TcpConn {
    #[inline]
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Transport for TcpConn {
    fn register(&mut self, at: Registration<'_>) -> io::Result<()> {
        at.registry.register(
            &mut SourceFd(&self.0.as_raw_fd()),
            at.token,
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }

    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::recv(self.as_fd(), buf)
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // `send` for one buffer: the common case needs no msghdr.
        match bufs {
            [one] => sys::send(self.as_fd(), one),
            _ => sys::sendmsg(self.as_fd(), bufs),
        }
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        sys::shutdown_write(self.as_fd())
    }

    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        sys::take_error(self.as_fd())
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        sys::getpeername(self.as_fd())
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::getsockname(self.as_fd())
    }

    fn set_abortive(&mut self) -> io::Result<()> {
        sys::set_linger(self.as_fd(), Some(Duration::ZERO))
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        registry.deregister(&mut SourceFd(&self.0.as_raw_fd()))
    }

    fn into_fd(self: Box<Self>) -> Option<std::os::fd::OwnedFd> {
        Some(self.0)
    }
}

impl Acceptor for mio::net::TcpListener {
    fn register(&mut self, at: Registration<'_>) -> io::Result<()> {
        at.registry.register(self, at.token, Interest::READABLE)
    }

    fn accept(&mut self) -> io::Result<(Stream, Option<SocketAddr>)> {
        // Accepted non-blocking and close-on-exec (`accept4`).
        mio::net::TcpListener::accept(self).map(|(s, a)| (Stream::Tcp(TcpConn(s.into())), Some(a)))
    }

    fn has_pending(&self) -> bool {
        sys::poll_readable(&[self.as_fd()], Some(Duration::ZERO)).map_or(true, |r| r[0])
    }

    fn local_addr(&self) -> io::Result<ListenAddr> {
        sys::getsockname(self.as_fd()).map(ListenAddr::Tcp)
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        registry.deregister(self)
    }
}
