//! The few socket calls that neither std nor mio offer.
//!
//! Every function here is one system call (or one option), named after it, returning
//! `io::Result`. `EINTR` is retried inside, so callers never see it.

use std::io;
use std::mem;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Runs a libc call and turns `-1` into the last OS error.
macro_rules! syscall {
    ($fn: ident ( $($arg: expr),* $(,)* ) ) => {{
        // SAFETY: every caller passes descriptors it owns and pointers to live, correctly sized
        // values; the call's own contract is stated at each call site.
        let res = unsafe { libc::$fn($($arg, )*) };
        if res == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

/// Sets `SO_LINGER` to "on, 0 seconds": closing the socket then sends a RST and frees the port
/// at once instead of leaving it in `TIME-WAIT`.
///
/// # Errors
///
/// Whatever `setsockopt` reports, e.g. `EBADF` for a closed descriptor.
pub fn set_linger_zero(fd: RawFd) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // `linger` lives across the call and its size is passed with it.
    syscall!(setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_LINGER,
        &linger as *const libc::linger as *const libc::c_void,
        mem::size_of::<libc::linger>() as libc::socklen_t,
    ))
    .map(drop)
}

/// Storage for either kind of socket address, as the kernel wants it.
fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: `sockaddr_storage` is plain old data; all zeroes is a valid (unspecified) value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is larger than and suitably aligned for `sockaddr_in`.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in).write(sin)
            };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: `sockaddr_storage` is larger than and suitably aligned for `sockaddr_in6`.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in6).write(sin6)
            };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
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
    let owned = bound_socket(source, dest, 0)?;
    let (addr, len) = to_sockaddr(dest);
    match syscall!(connect(
        owned.as_raw_fd(),
        &addr as *const _ as *const libc::sockaddr,
        len
    )) {
        Ok(_) => {}
        // An interrupted blocking connect goes on in the background; wait for it.
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return wait_connected(owned),
        Err(e) => return Err(e),
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
    let owned = bound_socket(source, dest, libc::SOCK_NONBLOCK)?;
    let (addr, len) = to_sockaddr(dest);
    match syscall!(connect(
        owned.as_raw_fd(),
        &addr as *const _ as *const libc::sockaddr,
        len
    )) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        // A non-blocking connect interrupted before it started goes on like EINPROGRESS.
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from(owned))
}

/// Waits up to `timeout_ms` (-1: without end) until at least one of `fds` is writable or has an
/// error, and returns how many are; each entry's `revents` says which.
///
/// # Errors
///
/// Whatever `poll` reports other than `EINTR` (on which it returns 0).
pub fn poll_writable(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    for p in fds.iter_mut() {
        p.events = libc::POLLOUT;
        p.revents = 0;
    }
    // `fds` is a live, exclusively borrowed slice of `pollfd` whose length is passed with it.
    match syscall!(poll(
        fds.as_mut_ptr(),
        fds.len() as libc::nfds_t,
        timeout_ms
    )) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// A TCP socket of `dest`'s family (with `flags` such as `SOCK_NONBLOCK`), bound to `source`
/// when given.
fn bound_socket(
    source: Option<IpAddr>,
    dest: SocketAddr,
    flags: libc::c_int,
) -> io::Result<OwnedFd> {
    let domain = match dest {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let fd = syscall!(socket(
        domain,
        libc::SOCK_STREAM | libc::SOCK_CLOEXEC | flags,
        0
    ))?;
    // SAFETY: `socket` just returned this descriptor and nothing else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    if let Some(ip) = source {
        // `IP_BIND_ADDRESS_NO_PORT` defers the port choice to `connect`, which then may reuse a
        // port that is busy towards another destination.
        let one: libc::c_int = 1;
        syscall!(setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            &one as *const libc::c_int as *const libc::c_void,
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        ))?;
        let (addr, len) = to_sockaddr(SocketAddr::new(ip, 0));
        syscall!(bind(fd, &addr as *const _ as *const libc::sockaddr, len))?;
    }
    Ok(owned)
}

/// Finishes a connect that `EINTR` interrupted: poll for writability, then read `SO_ERROR`.
fn wait_connected(fd: OwnedFd) -> io::Result<TcpStream> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    loop {
        match syscall!(poll(&mut pfd, 1, -1)) {
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
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        syscall!(setrlimit(libc::RLIMIT_NOFILE, &lim))?;
    }
    Ok(lim.rlim_cur)
}

/// Clock ticks per second, the unit of the CPU times in `/proc/PID/stat` (`sysconf(_SC_CLK_TCK)`;
/// 100 on Linux when the call fails, as it never does).
pub fn clock_ticks_per_sec() -> u64 {
    syscall!(sysconf(libc::_SC_CLK_TCK))
        .ok()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
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
    let fd = syscall!(timerfd_create(
        libc::CLOCK_MONOTONIC,
        libc::TFD_NONBLOCK | libc::TFD_CLOEXEC
    ))?;
    // SAFETY: `timerfd_create` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Arms `timer` to expire once, `after` from now (`timerfd_settime`, relative). A zero
/// duration is raised to one nanosecond, since zero would disarm the timer.
///
/// # Errors
///
/// `EBADF` or `EINVAL` for a descriptor that is not a timer.
pub fn timerfd_set(timer: &OwnedFd, after: std::time::Duration) -> io::Result<()> {
    let after = after.max(std::time::Duration::from_nanos(1));
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: after.as_secs() as libc::time_t,
            tv_nsec: after.subsec_nanos() as libc::c_long,
        },
    };
    // `spec` lives across the call; the old value is not wanted.
    syscall!(timerfd_settime(
        timer.as_raw_fd(),
        0,
        &spec,
        std::ptr::null_mut()
    ))
    .map(drop)
}

/// Consumes the expirations of `timer` so that it can fire again; `WouldBlock` (none yet)
/// is not an error.
///
/// # Errors
///
/// `EBADF` for a closed descriptor.
pub fn timerfd_drain(timer: &OwnedFd) -> io::Result<()> {
    let mut count = 0u64;
    // `count` is the 8-byte buffer a timer read requires.
    match syscall!(read(
        timer.as_raw_fd(),
        &mut count as *mut u64 as *mut libc::c_void,
        mem::size_of::<u64>()
    )) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        set_linger_zero(client.as_raw_fd())?;
        Ok(())
    }

    #[test]
    fn timerfd_fires_after_its_delay() -> io::Result<()> {
        let timer = timerfd_create()?;
        timerfd_set(&timer, std::time::Duration::from_micros(200))?;
        let mut pfd = libc::pollfd {
            fd: timer.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        assert_eq!(syscall!(poll(&mut pfd, 1, 1000))?, 1);
        timerfd_drain(&timer)?;
        timerfd_drain(&timer)?; // nothing left: still fine
        Ok(())
    }
}
