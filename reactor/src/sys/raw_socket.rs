//! Plain sockets with the calls std does not offer, for test clients and load generators: a
//! socket configured *before* `connect` or `bind` (a receive buffer, a source address without
//! a port), a listener with a chosen backlog, any integer option read or set.
//!
//! Each function is one call on a borrowed descriptor, so nothing here can touch a descriptor
//! the caller does not hold. The reactor's own sockets do not use these: it has its typed
//! options ([`crate::SocketRef`]).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// A new, unconnected, close-on-exec TCP socket of `addr`'s family (IPv4 or IPv6),
/// non-blocking if `nonblocking`.
///
/// # Errors
/// The `socket` error (`EMFILE` when the process has no descriptor left).
pub fn tcp_socket(addr: &SocketAddr, nonblocking: bool) -> io::Result<OwnedFd> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let flags = libc::SOCK_CLOEXEC | if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    let fd = super::syscall!(socket(domain, libc::SOCK_STREAM | flags, 0))?;
    // SAFETY: `socket` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds `fd` to `addr` (port 0: the kernel chooses).
///
/// # Errors
/// The `bind` error: `EADDRINUSE`, `EADDRNOTAVAIL`, `EINVAL` for a socket already bound.
pub fn bind_socket(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    super::bind(fd, addr)
}

/// Marks a bound (or unbound: the kernel then picks a port) socket as listening with
/// `backlog`, which `std::net::TcpListener` does not let one choose.
///
/// # Errors
/// The `listen` error (`EADDRINUSE`, `EOPNOTSUPP` for a socket that cannot listen).
pub fn listen_socket(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    super::listen(fd, backlog)
}

/// Issues `connect` once: `Ok(true)` when connected, `Ok(false)` when the connection goes on in
/// the background (`EINPROGRESS` on a non-blocking socket, or `EINTR`, after which a second
/// call would fail with `EALREADY`): wait for writability, then read `SO_ERROR`
/// (`TcpStream::take_error`) for the verdict.
///
/// # Errors
/// The `connect` error: `ECONNREFUSED`, `EADDRNOTAVAIL` when no source port is left, …
pub fn connect_socket(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<bool> {
    super::connect(fd, addr)
}

/// Sets an integer-valued socket option (`setsockopt` with a `c_int`).
///
/// # Errors
/// The `setsockopt` error: `ENOPROTOOPT` for an unknown option, `EINVAL` for a bad value.
pub fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    super::sockopt::set_int(fd, level, name, value)
}

/// Reads an integer-valued socket option (`getsockopt` with a `c_int`).
///
/// # Errors
/// The `getsockopt` error: `ENOPROTOOPT` for an unknown option.
pub fn int_option(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> io::Result<i32> {
    super::sockopt::get_int(fd, level, name)
}

/// Sets `SO_LINGER`: `None` off, `Some(Duration::ZERO)` makes `close` send RST (an abortive
/// close that leaves no TIME-WAIT), a longer time makes `close` block until the data is sent
/// or the time (rounded up to whole seconds) has passed.
///
/// # Errors
/// The `setsockopt` error (`EBADF`, `ENOTSOCK`).
pub fn set_linger_option(fd: BorrowedFd<'_>, linger: Option<Duration>) -> io::Result<()> {
    super::sockopt::set_linger(fd, linger)
}
