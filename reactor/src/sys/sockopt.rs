//! Socket options, one small function per option (S19, S20).
//!
//! Each setter documents when the option is worth setting; the typed public view is
//! [`crate::SocketRef`].

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Sets an integer-valued socket option.
pub(super) fn set_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    super::syscall!(setsockopt(
        fd.as_raw_fd(),
        level,
        name,
        (&value as *const libc::c_int).cast(),
        std::mem::size_of::<libc::c_int>() as libc::socklen_t
    ))
    .map(drop)
}

/// Reads an integer-valued socket option.
pub(super) fn get_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    super::syscall!(getsockopt(
        fd.as_raw_fd(),
        level,
        name,
        (&mut value as *mut libc::c_int).cast(),
        &mut len
    ))?;
    Ok(value)
}

/// `SO_REUSEADDR`: lets a restarted server bind its port while old connections sit in
/// TIME-WAIT (S18). Must be set before `bind`.
pub(crate) fn set_reuseaddr(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, on as _)
}

/// `SO_REUSEPORT`: several sockets (one per reactor thread) listen on one port and the kernel
/// spreads connections among them (S12). Must be set before `bind`.
pub(crate) fn set_reuseport(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, on as _)
}

/// `TCP_NODELAY`: send small segments at once instead of waiting for Nagle's algorithm. Right
/// for request/response protocols whose writes are already coalesced per loop turn (S15).
pub(crate) fn set_nodelay(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, on as _)
}

/// Reads `TCP_NODELAY`.
pub(crate) fn nodelay(fd: BorrowedFd<'_>) -> io::Result<bool> {
    get_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY).map(|v| v != 0)
}

/// TCP keepalive probing parameters (S13): the kernel's defaults wait two hours before the
/// first probe, far too long to notice a vanished peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe (`TCP_KEEPIDLE`).
    pub idle: Duration,
    /// Time between probes (`TCP_KEEPINTVL`).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped with `ETIMEDOUT` (`TCP_KEEPCNT`).
    pub count: u32,
}

/// `SO_KEEPALIVE` with `TCP_KEEPIDLE`/`TCP_KEEPINTVL`/`TCP_KEEPCNT`; `None` turns probing off.
pub(crate) fn set_keepalive(fd: BorrowedFd<'_>, ka: Option<Keepalive>) -> io::Result<()> {
    let Some(ka) = ka else {
        return set_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 0);
    };
    let secs = |d: Duration| d.as_secs().clamp(1, i32::MAX as u64) as libc::c_int;
    set_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(ka.idle))?;
    set_int(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPINTVL,
        secs(ka.interval),
    )?;
    set_int(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPCNT,
        ka.count.max(1) as _,
    )?;
    set_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)
}

/// Reads `SO_KEEPALIVE` and, when it is on, `TCP_KEEPIDLE`/`TCP_KEEPINTVL`/`TCP_KEEPCNT`.
pub(crate) fn keepalive(fd: BorrowedFd<'_>) -> io::Result<Option<Keepalive>> {
    if get_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE)? == 0 {
        return Ok(None);
    }
    let secs = |name| get_int(fd, libc::IPPROTO_TCP, name).map(|v| Duration::from_secs(v as u64));
    Ok(Some(Keepalive {
        idle: secs(libc::TCP_KEEPIDLE)?,
        interval: secs(libc::TCP_KEEPINTVL)?,
        count: get_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT)? as u32,
    }))
}

/// `SO_SNDBUF`. Set before `connect`/`listen` to matter for window negotiation (S19). Linux
/// doubles the value for its own bookkeeping (S21), and reading it back shows the doubled size.
pub(crate) fn set_send_buffer_size(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    set_int(
        fd,
        libc::SOL_SOCKET,
        libc::SO_SNDBUF,
        bytes.min(i32::MAX as usize) as _,
    )
}

/// Reads `SO_SNDBUF`.
pub(crate) fn send_buffer_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    get_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF).map(|v| v as usize)
}

/// `SO_RCVBUF`. Set before `connect`/`listen`: the window scale is fixed at the handshake (S19).
pub(crate) fn set_recv_buffer_size(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    set_int(
        fd,
        libc::SOL_SOCKET,
        libc::SO_RCVBUF,
        bytes.min(i32::MAX as usize) as _,
    )
}

/// Reads `SO_RCVBUF`.
pub(crate) fn recv_buffer_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    get_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF).map(|v| v as usize)
}

/// `SO_LINGER`. `Some(ZERO)` makes `close` send RST and drop queued data: only for the explicit
/// abortive close, never as a habit (S17). `None` restores the normal graceful close.
///
/// A nonzero linger makes `close` block (even on a non-blocking socket) until the data is sent
/// or the time has passed, so the reactor never sets one and the public options do not offer
/// it: its graceful close is bounded by its own linger timer instead (S8, S14). The kernel
/// counts whole seconds; a nonzero time is rounded *up* ([`linger_seconds`]), never down to the
/// zero that would mean a reset.
pub(crate) fn set_linger(fd: BorrowedFd<'_>, linger: Option<Duration>) -> io::Result<()> {
    let value = libc::linger {
        l_onoff: linger.is_some() as _,
        l_linger: linger.map_or(0, linger_seconds),
    };
    super::syscall!(setsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_LINGER,
        (&value as *const libc::linger).cast(),
        std::mem::size_of::<libc::linger>() as libc::socklen_t
    ))
    .map(drop)
}

/// The whole seconds `SO_LINGER` takes for `d`: rounded up, so that only a zero duration gives
/// zero (an abortive close), and saturated at `c_int::MAX`.
fn linger_seconds(d: Duration) -> libc::c_int {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    secs.min(libc::c_int::MAX as u64) as libc::c_int
}

/// Reads `SO_LINGER`: `None` when off, else the time in whole seconds (zero: abortive close).
pub(crate) fn linger(fd: BorrowedFd<'_>) -> io::Result<Option<Duration>> {
    // SAFETY: `linger` is plain data; all zeros is a valid value.
    let mut value: libc::linger = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::linger>() as libc::socklen_t;
    super::syscall!(getsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_LINGER,
        (&mut value as *mut libc::linger).cast(),
        &mut len
    ))?;
    Ok((value.l_onoff != 0).then(|| Duration::from_secs(value.l_linger.max(0) as u64)))
}

/// `TCP_DEFER_ACCEPT`: the kernel completes `accept` only once the client has sent data (or the
/// timeout passed), so silent connects never reach the loop (S24).
pub(crate) fn set_defer_accept(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
    set_int(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_DEFER_ACCEPT,
        timeout.as_secs().min(i32::MAX as u64) as _,
    )
}

/// `TCP_QUICKACK`: acknowledge at once instead of delaying ACKs. Linux clears it again on its
/// own, so it is set after reads where latency matters.
pub(crate) fn set_quickack(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int(fd, libc::IPPROTO_TCP, libc::TCP_QUICKACK, on as _)
}

/// `TCP_CORK`: hold partial segments until uncorked, to send a header and a body as full
/// segments without coalescing them in user space.
pub(crate) fn set_cork(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int(fd, libc::IPPROTO_TCP, libc::TCP_CORK, on as _)
}

/// `TCP_MAXSEG`: caps the segment size; set before `connect`.
pub(crate) fn set_maxseg(fd: BorrowedFd<'_>, bytes: u32) -> io::Result<()> {
    set_int(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_MAXSEG,
        bytes.min(i32::MAX as u32) as _,
    )
}

/// `SO_RCVLOWAT`: readiness is reported only once this many bytes are queued.
pub(crate) fn set_recv_lowat(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    set_int(
        fd,
        libc::SOL_SOCKET,
        libc::SO_RCVLOWAT,
        bytes.clamp(1, i32::MAX as usize) as _,
    )
}

/// Reads and clears the pending socket error (`SO_ERROR`): the only reliable verdict of a
/// non-blocking connect (S4). Some systems report the error as the call's own failure, others in
/// the value; both come back as `Ok(Some(error))`.
pub(crate) fn take_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    match get_int(fd, libc::SOL_SOCKET, libc::SO_ERROR) {
        Ok(0) => Ok(None),
        Ok(errno) => Ok(Some(io::Error::from_raw_os_error(errno))),
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => Err(e),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => Err(e),
        Err(e) => Ok(Some(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn linger_seconds_round_up_and_saturate() {
        assert_eq!(linger_seconds(Duration::ZERO), 0);
        assert_eq!(linger_seconds(Duration::from_nanos(1)), 1);
        assert_eq!(linger_seconds(Duration::from_millis(999)), 1);
        assert_eq!(linger_seconds(Duration::from_secs(1)), 1);
        assert_eq!(linger_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(linger_seconds(Duration::MAX), libc::c_int::MAX);
    }

    /// S17: a sub-second linger used to truncate to zero, turning the close it asked to be
    /// graceful into a reset. Read back from a real socket, it is one second.
    #[test]
    fn a_sub_second_linger_is_not_a_reset() -> io::Result<()> {
        let fd = crate::sys::socket(libc::AF_INET, libc::SOCK_STREAM)?;
        set_linger(fd.as_fd(), Some(Duration::from_millis(500)))?;
        assert_eq!(linger(fd.as_fd())?, Some(Duration::from_secs(1)));
        set_linger(fd.as_fd(), Some(Duration::ZERO))?;
        assert_eq!(linger(fd.as_fd())?, Some(Duration::ZERO));
        set_linger(fd.as_fd(), None)?;
        assert_eq!(linger(fd.as_fd())?, None);
        Ok(())
    }
}
