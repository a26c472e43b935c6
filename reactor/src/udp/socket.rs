//! The datagram seam: how a UDP source reaches the operating system, and the real socket
//! behind it.
//!
//! The reactor's UDP code is written against [`DatagramTransport`] only; a UDP socket implements
//! it here, and the in-memory datagram pipe of `reactor::testing` implements it there, so the
//! same read loop, send queue and error handling run over both without a branch for either.
//! `EINTR` never crosses the seam (the system-call layer retries it).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use mio::Interest;

use crate::sys::{self, RecvMeta};
use crate::transport::{Readiness, Registration};

/// A bound or connected datagram socket.
pub(crate) trait DatagramTransport: fmt::Debug {
    /// Starts delivering readiness for `at.token` (edge-triggered, reading and writing).
    fn register(&mut self, at: Registration<'_>) -> io::Result<()>;
    /// Receives one datagram into `buf`.
    fn recv_one(&mut self, buf: &mut [u8]) -> io::Result<RecvMeta>;
    /// Receives up to `metas.len()` datagrams, the `i`-th into slot `i` of `slot` bytes.
    fn recv_batch(
        &mut self,
        buf: &mut [u8],
        slot: usize,
        metas: &mut [RecvMeta],
    ) -> io::Result<usize>;
    /// Sends one datagram (`None`: to the connected peer).
    fn send_one(&mut self, data: &[u8], to: Option<SocketAddr>) -> io::Result<usize>;
    /// Sends datagrams in order; returns how many were taken (an error: the first failed).
    fn send_batch(&mut self, msgs: &[(&[u8], Option<SocketAddr>)]) -> io::Result<usize>;
    /// The local address.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// The connected peer; `ENOTCONN` on a bound socket.
    fn peer_addr(&self) -> io::Result<SocketAddr>;
    /// The readiness behind an entry this transport pushed onto the injected queue.
    fn take_readiness(&mut self) -> Option<Readiness> {
        None
    }
}

/// A UDP socket.
#[derive(Debug)]
pub(crate) struct UdpSocket {
    fd: OwnedFd,
}

impl UdpSocket {
    /// A socket bound to `addr` (`SO_REUSEADDR` set first, as for listeners, S18).
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<Self> {
        let fd = sys::socket(domain(&addr), libc::SOCK_DGRAM)?;
        sys::set_reuseaddr(fd.as_fd(), true)?;
        sys::bind(fd.as_fd(), &addr)?;
        Ok(UdpSocket { fd })
    }

    /// A socket connected to `peer` (S30): it sends with `send`, receives only from the peer,
    /// and is told the peer's ICMP errors.
    pub(crate) fn connect(peer: SocketAddr) -> io::Result<Self> {
        let fd = sys::socket(domain(&peer), libc::SOCK_DGRAM)?;
        // A datagram socket's connect only records the peer: it completes at once.
        sys::connect(fd.as_fd(), &peer)?;
        Ok(UdpSocket { fd })
    }
}

impl UdpSocket {
    /// A UDP socket made elsewhere (socket activation, S30), made non-blocking.
    pub(crate) fn adopt(sock: std::net::UdpSocket) -> io::Result<Self> {
        let fd = OwnedFd::from(sock);
        sys::set_nonblocking(fd.as_fd())?;
        Ok(UdpSocket { fd })
    }
}

fn domain(addr: &SocketAddr) -> libc::c_int {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

impl DatagramTransport for UdpSocket {
    fn register(&mut self, at: Registration<'_>) -> io::Result<()> {
        at.registry.register(
            &mut mio::unix::SourceFd(&self.fd.as_raw_fd()),
            at.token,
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    fn recv_one(&mut self, buf: &mut [u8]) -> io::Result<RecvMeta> {
        sys::recv_one(self.fd.as_fd(), buf)
    }

    fn recv_batch(
        &mut self,
        buf: &mut [u8],
        slot: usize,
        metas: &mut [RecvMeta],
    ) -> io::Result<usize> {
        sys::recv_batch(self.fd.as_fd(), buf, slot, metas)
    }

    fn send_one(&mut self, data: &[u8], to: Option<SocketAddr>) -> io::Result<usize> {
        sys::send_one(self.fd.as_fd(), data, to.as_ref())
    }

    fn send_batch(&mut self, msgs: &[(&[u8], Option<SocketAddr>)]) -> io::Result<usize> {
        sys::send_batch(self.fd.as_fd(), msgs)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::getsockname(self.fd.as_fd())
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        sys::getpeername(self.fd.as_fd())
    }
}
