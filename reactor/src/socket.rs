//! A typed view of a connection's socket options (S19, S20, S22).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use crate::sys::{self, Keepalive};

/// Socket options of one connection, reached through [`Cx::socket`](crate::Cx::socket).
///
/// Each setter wraps one `setsockopt` and says when the option is worth it.
#[derive(Clone, Copy, Debug)]
pub struct SocketRef<'a> {
    fd: BorrowedFd<'a>,
}

impl<'a> SocketRef<'a> {
    pub(crate) fn new(fd: BorrowedFd<'a>) -> Self {
        SocketRef { fd }
    }

    /// `TCP_NODELAY`: send small segments immediately (no Nagle delay).
    ///
    /// # Errors
    /// The `setsockopt` error; none is expected on a live connection.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        sys::set_nodelay(self.fd, on)
    }

    /// Reads `TCP_NODELAY`.
    ///
    /// # Errors
    /// The `getsockopt` error; none is expected on a live connection.
    pub fn nodelay(&self) -> io::Result<bool> {
        sys::nodelay(self.fd)
    }

    /// `SO_KEEPALIVE` with `TCP_KEEPIDLE`/`INTVL`/`CNT` (S13): the kernel probes an idle peer and
    /// the connection ends with [`TimedOut`](crate::CloseReason::TimedOut) if it vanished.
    /// `None` turns probing off.
    ///
    /// # Errors
    /// `EINVAL` for a time above the kernel's maximum (32,767 s) or a count above 127 (zero is
    /// raised to one); `SO_KEEPALIVE` is set last, so after an error it is as it was, though
    /// some of the parameters may have changed.
    pub fn set_keepalive(&self, keepalive: Option<Keepalive>) -> io::Result<()> {
        sys::set_keepalive(self.fd, keepalive)
    }

    /// Reads `SO_KEEPALIVE` and, when it is on, the probing parameters (in whole seconds, as
    /// the kernel keeps them); `None` when probing is off.
    ///
    /// # Errors
    /// The `getsockopt` error; none is expected on a live connection.
    pub fn keepalive(&self) -> io::Result<Option<Keepalive>> {
        sys::keepalive(self.fd)
    }

    /// `SO_SNDBUF`. For bulk transfer it wants at least three segments (S19); Linux doubles the
    /// value for its bookkeeping (S21).
    ///
    /// # Errors
    /// The `setsockopt` error; none is expected on a live connection (a size above
    /// `net.core.wmem_max` is capped, not refused).
    pub fn set_send_buffer_size(&self, bytes: usize) -> io::Result<()> {
        sys::set_send_buffer_size(self.fd, bytes)
    }

    /// Reads `SO_SNDBUF` (as the kernel doubled it).
    ///
    /// # Errors
    /// The `getsockopt` error; none is expected on a live connection.
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        sys::send_buffer_size(self.fd)
    }

    /// `SO_RCVBUF`. On an established connection it no longer changes the window scale.
    ///
    /// # Errors
    /// The `setsockopt` error; none is expected on a live connection (a size above
    /// `net.core.rmem_max` is capped, not refused).
    pub fn set_recv_buffer_size(&self, bytes: usize) -> io::Result<()> {
        sys::set_recv_buffer_size(self.fd, bytes)
    }

    /// Reads `SO_RCVBUF`.
    ///
    /// # Errors
    /// The `getsockopt` error; none is expected on a live connection.
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        sys::recv_buffer_size(self.fd)
    }

    /// `TCP_QUICKACK`: acknowledge at once (Linux clears it again by itself).
    ///
    /// # Errors
    /// The `setsockopt` error; none is expected on a live connection.
    pub fn set_quickack(&self, on: bool) -> io::Result<()> {
        sys::set_quickack(self.fd, on)
    }

    /// `TCP_CORK`: hold partial segments until uncorked.
    ///
    /// # Errors
    /// The `setsockopt` error; none is expected on a live connection.
    pub fn set_cork(&self, on: bool) -> io::Result<()> {
        sys::set_cork(self.fd, on)
    }

    /// `TCP_MAXSEG`: cap the segment size.
    ///
    /// # Errors
    /// `EINVAL` for a size below 88 or above 32,767 bytes.
    pub fn set_maxseg(&self, bytes: u32) -> io::Result<()> {
        sys::set_maxseg(self.fd, bytes)
    }

    /// `SO_RCVLOWAT`: report readability only once this many bytes are queued.
    ///
    /// # Errors
    /// The `setsockopt` error; none is expected on a live connection (the value is clamped to
    /// 1…`i32::MAX`).
    pub fn set_recv_lowat(&self, bytes: usize) -> io::Result<()> {
        sys::set_recv_lowat(self.fd, bytes)
    }

    /// `SO_LINGER` with a zero time, or off: with `true`, closing the socket sends RST and
    /// drops whatever is still queued (an abortive close); `false` restores the normal close.
    /// Prefer [`Cx::abort`](crate::Cx::abort), which does this and closes at once; never make
    /// it a habit (S17).
    ///
    /// A nonzero linger is deliberately not offered: it makes `close` block, even on a
    /// non-blocking socket, until the data is acknowledged or the time runs out, and that would
    /// stall the whole loop. A graceful close ([`Cx::close`](crate::Cx::close)) flushes and
    /// waits for the peer's end of stream without blocking, bounded by
    /// [`ConnConfig::linger_timeout`](crate::ConnConfig::linger_timeout) (S14).
    ///
    /// # Errors
    /// The `setsockopt` error; none is expected on a live connection.
    pub fn set_abortive_close(&self, on: bool) -> io::Result<()> {
        sys::set_linger(self.fd, on.then_some(Duration::ZERO))
    }

    /// Reads `SO_LINGER`: `None` when off (the normal close), `Some(ZERO)` for an abortive
    /// close. (A nonzero time can only come from outside this library.)
    ///
    /// # Errors
    /// The `getsockopt` error; none is expected on a live connection.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        sys::linger(self.fd)
    }

    /// Bytes waiting in the receive queue (`FIONREAD`, S22).
    ///
    /// # Errors
    /// The `ioctl` error; none is expected on a live connection.
    pub fn bytes_readable(&self) -> io::Result<usize> {
        sys::bytes_readable(self.fd)
    }

    /// Copies queued input into `buf` without consuming it (`MSG_PEEK`, S22).
    ///
    /// # Errors
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) if nothing is queued; a pending socket error
    /// such as `ECONNRESET`. `Ok(0)` means the peer's end of stream is next.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::peek(self.fd, buf)
    }
}

/// The connection's descriptor, for an option this type does not wrap (or to read one back).
/// It is borrowed for the callback only; the reactor owns it and closes it.
impl AsFd for SocketRef<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd
    }
}
