//! The few socket calls that neither std nor mio offer, over the reactor's `sys` module (where
//! every system call of the workspace is wrapped once).
//!
//! Each function is one call (or one option) on a descriptor the caller holds, returning
//! `io::Result`; `EINTR` is retried inside, so callers never see it.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use reactor::sys::poll::{poll, PollFd, POLLOUT};

/// Sets `SO_LINGER` to "on, 0 seconds": closing the socket then sends a RST and frees the port
/// at once instead of leaving it in `TIME-WAIT`.
///
/// # Errors
///
/// Whatever `setsockopt` reports, e.g. `ENOTSOCK`.
pub fn set_linger_zero(fd: BorrowedFd<'_>) -> io::Result<()> {
    reactor::sys::set_linger_option(fd, Some(Duration::ZERO))
}

/// Opens a TCP socket, binds it to `source` (port chosen by the kernel) when given, and connects
/// it to `dest`, blocking until the handshake completes.
///
/// Binding a source address is how one client reaches past the 28,232 ports that a single
/// source/destination pair offers: 127.0.0.2, 127.0.0.3, … are all loopback addresses.
///
/// # Errors
///
/// `EADDRNOTAVAIL` when the source has no free port left, `ECONNREFUSED` when nothing listens,
/// and whatever else `socket`, `bind` or `connect` report.
pub fn connect_from(source: Option<IpAddr>, dest: SocketAddr) -> io::Result<TcpStream> {
    let owned = bound_socket(source, dest, false)?;
    // `false` on a blocking socket: an interrupted connect goes on in the background.
    if !reactor::sys::connect_socket(owned.as_fd(), &dest)? {
        return wait_connected(owned);
    }
    Ok(TcpStream::from(owned))
}

/// Like [`connect_from`], but the socket is non-blocking and the call returns as soon as the
/// handshake has started: many connects can then be in flight at once, so a server that is slow
/// to accept (its backlog full, its SYNs retried after a second) holds up one of them, not all.
/// Poll the socket for writability ([`poll_writable`]), then read its `SO_ERROR`
/// (`TcpStream::take_error`) to learn how the connect ended.
///
/// # Errors
///
/// As [`connect_from`], for what fails at once (`EADDRNOTAVAIL`, a refusal already known).
pub fn connect_start(source: Option<IpAddr>, dest: SocketAddr) -> io::Result<TcpStream> {
    let owned = bound_socket(source, dest, true)?;
    // Connected at once, or in progress (EINPROGRESS, or EINTR before it started).
    reactor::sys::connect_socket(owned.as_fd(), &dest)?;
    Ok(TcpStream::from(owned))
}

/// Waits (without end when `timeout` is `None`) until at least one of `fds` is writable or has
/// an error, and returns one flag per descriptor; all `false` when a signal interrupted the
/// wait.
///
/// # Errors
///
/// Whatever `poll` reports other than `EINTR`.
pub fn poll_writable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<PollFd<'_>> = fds.iter().map(|&fd| PollFd::new(fd, POLLOUT)).collect();
    match poll(&mut pfds, timeout) {
        Ok(_) => Ok(pfds.iter().map(|p| p.revents() != 0).collect()),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(vec![false; fds.len()]),
        Err(e) => Err(e),
    }
}

/// A TCP socket of `dest`'s family, non-blocking if asked, bound to `source` when given.
fn bound_socket(
    source: Option<IpAddr>,
    dest: SocketAddr,
    nonblocking: bool,
) -> io::Result<OwnedFd> {
    let owned = reactor::sys::tcp_socket(&dest, nonblocking)?;
    if let Some(ip) = source {
        // `IP_BIND_ADDRESS_NO_PORT` defers the port choice to `connect`, which then may reuse a
        // port that is busy towards another destination.
        reactor::sys::set_int_option(
            owned.as_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            1,
        )?;
        reactor::sys::bind_socket(owned.as_fd(), &SocketAddr::new(ip, 0))?;
    }
    Ok(owned)
}

/// Finishes a connect that `EINTR` interrupted: poll for writability, then read `SO_ERROR`.
fn wait_connected(fd: OwnedFd) -> io::Result<TcpStream> {
    loop {
        let mut pfd = [PollFd::new(fd.as_fd(), POLLOUT)];
        match poll(&mut pfd, None) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let stream = TcpStream::from(fd);
    match stream.take_error()? {
        Some(e) => Err(e),
        None => Ok(stream),
    }
}

/// Raises this process's soft limit on open descriptors to its hard limit, returning the new
/// soft limit.
///
/// # Errors
///
/// Whatever `getrlimit` or `setrlimit` report.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let (soft, hard) = reactor::sys::nofile_limit()?;
    if soft < hard {
        reactor::sys::set_nofile_limit(hard)?;
        return Ok(hard);
    }
    Ok(soft)
}

/// Clock ticks per second, the unit of the CPU times in `/proc/PID/stat` (`sysconf(_SC_CLK_TCK)`;
/// 100 on Linux when the call fails, as it never does).
pub fn clock_ticks_per_sec() -> u64 {
    reactor::sys::clock_ticks_per_sec()
}

/// Creates a non-blocking monotonic timer descriptor (`timerfd_create`).
///
/// The event loop needs it because epoll's own timeout counts whole milliseconds: a rate
/// limit of 20,000 messages per second must wake every 50 µs.
///
/// # Errors
///
/// `EMFILE` and the like.
pub fn timerfd_create() -> io::Result<OwnedFd> {
    reactor::sys::timerfd_create()
}

/// Arms `timer` to expire once, `after` from now (`timerfd_settime`, relative). A zero
/// duration is raised to one nanosecond, since zero would disarm the timer.
///
/// # Errors
///
/// `EBADF` or `EINVAL` for a descriptor that is not a timer.
pub fn timerfd_set(timer: &OwnedFd, after: Duration) -> io::Result<()> {
    reactor::sys::timerfd_set(timer.as_fd(), after)
}

/// Consumes the expirations of `timer` so that it can fire again; `WouldBlock` (none yet)
/// is not an error.
///
/// # Errors
///
/// `EBADF` for a closed descriptor.
pub fn timerfd_drain(timer: &OwnedFd) -> io::Result<()> {
    reactor::sys::timerfd_drain(timer.as_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor::sys::poll::POLLIN;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn connect_from_binds_the_source_address() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let source: IpAddr = "127.0.0.2".parse().unwrap();
        let mut client = connect_from(Some(source), listener.local_addr()?)?;
        let (mut server, peer) = listener.accept()?;
        assert_eq!(peer.ip(), source);
        client.write_all(b"ping")?;
        let mut buf = [0; 4];
        server.read_exact(&mut buf)?;
        assert_eq!(&buf, b"ping");
        set_linger_zero(client.as_fd())?;
        Ok(())
    }

    #[test]
    fn timerfd_fires_after_its_delay() -> io::Result<()> {
        let timer = timerfd_create()?;
        timerfd_set(&timer, Duration::from_micros(200))?;
        let mut pfd = [PollFd::new(timer.as_fd(), POLLIN)];
        assert_eq!(poll(&mut pfd, Some(Duration::from_millis(1000)))?, 1);
        timerfd_drain(&timer)?;
        timerfd_drain(&timer)?; // nothing left: still fine
        Ok(())
    }
}
