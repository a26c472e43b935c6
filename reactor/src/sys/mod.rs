//! Every call into the operating system, each wrapped once.
//!
//! The rest of the crate never writes `unsafe` nor calls into libc (it uses libc's constants
//! only, such as errno values): it calls the small functions here,
//! which take borrowed descriptors, return `io::Result`, retry `EINTR` themselves (S2) and turn
//! the errno values that are expected outcomes into `Ok` (`EINPROGRESS` from `connect`).
//!
//! It is also the one home of `unsafe` in the workspace (a test, `unsafe_only_in_sys`, keeps it
//! so): the public items here are the safe calls that test and bench code need beside the
//! reactor's own (`poll`, raw sockets and integer options, timer descriptors; with the
//! `testing` feature, a counting allocator, signal dispositions, sending many descriptors).
//!
//! # Implementation notes
//! The `syscall!` macro turns the C convention (`-1` and `errno`) into `io::Result`.
//! `connect` is the one call that must *not* be retried on `EINTR`: the connection attempt goes
//! on in the background, and a second `connect` would fail with `EALREADY`. It is handled like
//! `EINPROGRESS` (wait for writability) instead.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

mod addr;
pub mod alloc_count;
mod clock;
mod disposition;
mod fd_send;
mod inherit;
pub mod poll;
mod process;
mod raw_socket;
mod signal;
mod sockopt;
mod timerfd;
mod udp;
mod unix;

pub(crate) use addr::{from_sockaddr, to_sockaddr};
pub(crate) use clock::monotonic_ns;
pub use disposition::{disposition, flag_raised, raise, set_disposition, Disposition};
pub use fd_send::send_with_fds;
pub use inherit::is_cloexec;
pub(crate) use inherit::*;
pub use process::{
    clock_ticks_per_sec, enter_net_namespace, pidfd_open, reap_any_children, reap_children,
    user_ids, ChildStatus,
};
pub use raw_socket::{
    bind_socket, connect_socket, int_option, listen_socket, set_int_option, set_linger_option,
    tcp_socket,
};
pub use signal::block_signals;
pub(crate) use signal::{install_signal_pipe, read_signal_pipe, SignalPipe};
pub use sockopt::Keepalive;
pub use timerfd::{timerfd_create, timerfd_drain, timerfd_set};
pub use udp::MAX_BATCH;
pub(crate) use udp::{recv_batch, recv_one, send_batch, send_one, RecvMeta};
pub(crate) use unix::*;
pub use unix::{PeerCredentials, MAX_FDS};

/// Signal numbers for [`crate::Reactor::catch_signals`].
pub use libc::{SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
pub(crate) use sockopt::*;

/// Calls a libc function, turning `-1` into the thread's `errno` as an `io::Error`.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: every caller passes descriptors it borrows for the duration of the call and
        // pointers to memory it owns, with the lengths of that memory.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// Runs `f` again while it fails with `EINTR` (S2: slow calls are interrupted by signals).
/// Inlined, with the error number compared directly: it wraps every message's `recv` and
/// `send`.
#[inline]
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            other => return other,
        }
    }
}

/// Creates a non-blocking, close-on-exec socket.
pub(crate) fn socket(domain: libc::c_int, ty: libc::c_int) -> io::Result<OwnedFd> {
    let fd = syscall!(socket(
        domain,
        ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        0
    ))?;
    // SAFETY: `socket` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds a socket to an address.
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: &std::net::SocketAddr) -> io::Result<()> {
    let (storage, len) = to_sockaddr(addr);
    syscall!(bind(
        fd.as_raw_fd(),
        (&storage as *const libc::sockaddr_storage).cast(),
        len
    ))
    .map(drop)
}

/// Marks a socket as listening with the given backlog (S23).
pub(crate) fn listen(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    syscall!(listen(fd.as_raw_fd(), backlog)).map(drop)
}

/// Starts a non-blocking connect. `Ok(true)`: connected at once (a local peer may accept
/// immediately); `Ok(false)`: in progress, wait for writability and read the verdict with
/// [`take_error`]. `EINTR` is treated as in progress and the call is never re-issued (S2, S4).
pub(crate) fn connect(fd: BorrowedFd<'_>, addr: &std::net::SocketAddr) -> io::Result<bool> {
    let (storage, len) = to_sockaddr(addr);
    connect_once(|| {
        syscall!(connect(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len
        ))
    })
}

/// Issues `connect` once (an `FnOnce`: it cannot be issued twice) and reads its outcome:
/// success is `Ok(true)`; `EINPROGRESS`, and `EINTR` (the attempt goes on in the background,
/// and a second call would fail with `EALREADY`), are `Ok(false)`; anything else is the error.
fn connect_once(issue: impl FnOnce() -> io::Result<libc::c_int>) -> io::Result<bool> {
    match issue() {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINPROGRESS) | Some(libc::EINTR)
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Reads into `buf`; `Ok(0)` is end of stream. Inlined: every message's read.
#[inline]
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| {
        syscall!(recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)).map(|n| n as usize)
    })
}

/// `recv` returning what the call itself returned: the bytes read, `0` at end of stream, or
/// `-1` with `errno` set, for a caller whose common case is one test (bytes came). The caller
/// reads `errno` right after, before anything else can change it.
#[inline]
pub(crate) fn recv_raw(fd: BorrowedFd<'_>, buf: &mut [u8]) -> isize {
    // SAFETY: `fd` is borrowed for the call; `buf` is memory this function borrows mutably,
    // passed with its length.
    unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) }
}

/// Copies queued input into `buf` without consuming it (S22: `MSG_PEEK`).
pub(crate) fn peek(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| {
        syscall!(recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK
        ))
        .map(|n| n as usize)
    })
}

/// The most iovecs one `sendmsg` takes on Linux (`IOV_MAX`).
pub(crate) const IOV_MAX: usize = 1024;

/// Gather write with `MSG_NOSIGNAL`: a peer that reset the connection makes this return
/// `EPIPE` instead of raising SIGPIPE, whatever the process's signal disposition (S6, S15).
pub(crate) fn sendmsg(fd: BorrowedFd<'_>, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is a valid empty message; the fields set below point at `bufs`,
    // which outlives the call. `IoSlice` is guaranteed ABI-compatible with `iovec`.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(IOV_MAX) as _;
    retry(|| {
        syscall!(sendmsg(
            fd.as_raw_fd(),
            &msg,
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT
        ))
        .map(|n| n as usize)
    })
}

/// Writes one buffer with `MSG_NOSIGNAL` (S6). For a single buffer this is cheaper for the
/// kernel than `sendmsg`, which first copies the message header and imports the iovec array.
/// Inlined: every small message's write.
#[inline]
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    retry(|| {
        syscall!(send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT
        ))
        .map(|n| n as usize)
    })
}

/// `send` with `MSG_NOSIGNAL` returning what the call itself returned: the bytes taken, or
/// `-1` with `errno` set, for a caller whose one question is whether all of `buf` went
/// (every reply's flush compares the value with the length, one test for every outcome).
/// Anything else is turned into a result by [`send_outcome`], called right after, before
/// anything else can change `errno`.
#[inline]
pub(crate) fn send_raw(fd: BorrowedFd<'_>, buf: &[u8]) -> isize {
    const FLAGS: libc::c_int = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
    // SAFETY: `fd` is borrowed for the call; `buf` is memory this function borrows, passed
    // with its length.
    unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), FLAGS) }
}

/// What [`send_raw`]'s return value `sent` means: the bytes taken, or the error in `errno`
/// (read here, so this must follow the call with no other call between). After `EINTR` the
/// write is made again, as [`send`] does.
#[cold]
pub(crate) fn send_outcome(fd: BorrowedFd<'_>, buf: &[u8], sent: isize) -> io::Result<usize> {
    if sent >= 0 {
        return Ok(sent as usize);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINTR) {
        return send(fd, buf);
    }
    Err(e)
}

/// Half-closes the sending side: the peer reads end of stream once queued data is delivered.
pub(crate) fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    syscall!(shutdown(fd.as_raw_fd(), libc::SHUT_WR)).map(drop)
}

/// How many bytes wait in the receive queue (S22: `ioctl(FIONREAD)`).
pub(crate) fn bytes_readable(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    syscall!(ioctl(
        fd.as_raw_fd(),
        libc::FIONREAD,
        &mut n as *mut libc::c_int
    ))?;
    Ok(n as usize)
}

/// The peer's address; `ENOTCONN` while a connect is still in progress (S4).
pub(crate) fn getpeername(fd: BorrowedFd<'_>) -> io::Result<std::net::SocketAddr> {
    // SAFETY: sockaddr_storage is plain data; all zeros is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    syscall!(getpeername(
        fd.as_raw_fd(),
        (&mut storage as *mut libc::sockaddr_storage).cast(),
        &mut len
    ))?;
    from_sockaddr(&storage)
}

/// The local address of a socket.
pub(crate) fn getsockname(fd: BorrowedFd<'_>) -> io::Result<std::net::SocketAddr> {
    // SAFETY: sockaddr_storage is plain data; all zeros is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    syscall!(getsockname(
        fd.as_raw_fd(),
        (&mut storage as *mut libc::sockaddr_storage).cast(),
        &mut len
    ))?;
    from_sockaddr(&storage)
}

/// The descriptor limit of this process (`RLIMIT_NOFILE`): (soft, hard).
///
/// # Errors
/// The `getrlimit` error (none is expected on Linux).
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Sets the soft descriptor limit of this process (`RLIMIT_NOFILE`), keeping the hard one.
/// Tests use it to provoke `EMFILE` (S27).
///
/// # Errors
/// `EINVAL` if `soft` is above the hard limit, or another `setrlimit` error.
pub fn set_nofile_limit(soft: u64) -> io::Result<()> {
    let (_, hard) = nofile_limit()?;
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    syscall!(setrlimit(libc::RLIMIT_NOFILE, &lim)).map(drop)
}

/// Opens `/dev/null`, used as the spare descriptor an exhausted listener can give back.
pub(crate) fn open_devnull() -> io::Result<OwnedFd> {
    let fd = syscall!(open(
        c"/dev/null".as_ptr(),
        libc::O_RDONLY | libc::O_CLOEXEC
    ))?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Waits until one of `fds` is readable or `timeout` passes (`None`: no limit), with
/// `poll(2)`. Returns one flag per descriptor; all `false` on timeout or `EINTR`. For driving a
/// reactor from a foreign loop (watch [`crate::Reactor`]'s descriptor beside others).
///
/// # Errors
/// A `poll` error other than `EINTR` (e.g. `EINVAL` for too many descriptors).
pub fn poll_readable(
    fds: &[BorrowedFd<'_>],
    timeout: Option<std::time::Duration>,
) -> io::Result<Vec<bool>> {
    use poll::{PollFd, POLLERR, POLLHUP, POLLIN};
    let mut pollfds: Vec<PollFd<'_>> = fds.iter().map(|&fd| PollFd::new(fd, POLLIN)).collect();
    match poll::poll(&mut pollfds, timeout) {
        Ok(_) => Ok(pollfds
            .iter()
            .map(|p| p.revents() & (POLLIN | POLLHUP | POLLERR) != 0)
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(vec![false; fds.len()]),
        Err(e) => Err(e),
    }
}

/// The errno values an accept loop skips (S5): the connection died between readiness and
/// `accept`, a signal interrupted the call, or a firewall rule refused it.
pub(crate) fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNABORTED) | Some(libc::EPROTO) | Some(libc::EINTR) | Some(libc::EPERM)
    )
}

/// The errno values that mean "out of descriptors or kernel memory" (S27): the listener must
/// back off instead of spinning.
pub(crate) fn is_resource_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// S2, S4: a connect interrupted by a signal is in progress, like `EINPROGRESS`, and is
    /// issued exactly once; other errors are reported as they are.
    #[test]
    fn connect_treats_eintr_as_in_progress_and_issues_once() {
        for (result, expected) in [
            (Ok(0), Some(true)),
            (Err(libc::EINPROGRESS), Some(false)),
            (Err(libc::EINTR), Some(false)),
            (Err(libc::ECONNREFUSED), None),
            (Err(libc::ENETUNREACH), None),
        ] {
            let mut calls = 0;
            let outcome = connect_once(|| {
                calls += 1;
                result.map_err(io::Error::from_raw_os_error)
            });
            assert_eq!(calls, 1);
            match (outcome, expected) {
                (Ok(connected), Some(want)) => assert_eq!(connected, want, "{result:?}"),
                (Err(e), None) => assert_eq!(e.raw_os_error(), result.err(), "{result:?}"),
                (outcome, _) => panic!("{result:?} gave {outcome:?}"),
            }
        }
    }

    /// S4: over a real socket, a connect to a loopback listener is either done at once or
    /// in progress, and its verdict is then read from `SO_ERROR`, not from a second connect.
    #[test]
    fn connect_to_a_listener_completes_or_is_in_progress() -> io::Result<()> {
        use std::os::fd::AsFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let fd = socket(libc::AF_INET, libc::SOCK_STREAM)?;
        let connected = connect(fd.as_fd(), &listener.local_addr()?)?;
        if !connected {
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            };
            syscall!(poll(&mut pfd, 1, 5_000))?;
            assert!(pfd.revents & libc::POLLOUT != 0);
        }
        assert!(take_error(fd.as_fd())?.is_none());
        assert_eq!(getpeername(fd.as_fd())?, listener.local_addr()?);
        Ok(())
    }

    /// A number that is no signal is refused with `EINVAL` before the mask is touched, instead
    /// of being left out of the mask while the call reports success.
    #[test]
    fn block_signals_refuses_what_is_not_a_signal() {
        let e = block_signals(&[libc::SIGUSR2, 9999], true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }

    /// Deliveries of `SIGURG` to [`count_signal`].
    static SIGNALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    extern "C" fn count_signal(_: libc::c_int) {
        SIGNALS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether thread `tid` of this process is asleep (state `S` in its `stat`).
    fn is_asleep(tid: libc::pid_t) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"));
        // The state follows the parenthesised name, which may itself hold spaces.
        stat.ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('S')))
            .unwrap_or(false)
    }

    /// S2: a real signal interrupts a blocking `recv` (its handler is installed without
    /// `SA_RESTART`, so the kernel does not restart the call): `retry` calls `recv` again
    /// instead of returning `EINTR`, and the bytes sent afterwards arrive.
    #[test]
    fn retry_carries_a_call_through_a_real_signal() -> io::Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        // SAFETY: an all-zero sigaction is valid; the handler only touches an atomic.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = 0;
        // SAFETY: `action` is initialised; SIGURG is ignored by default and used by no other
        // test of this crate.
        syscall!(sigaction(libc::SIGURG, &action, std::ptr::null_mut()))?;

        let (mut ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn({
            let calls = std::sync::Arc::clone(&calls);
            move || {
                // SAFETY: gettid and pthread_self have no preconditions.
                let _ = tid_tx.send((unsafe { libc::gettid() }, unsafe { libc::pthread_self() }));
                let mut buf = [0u8; 4];
                let n = retry(|| {
                    calls.fetch_add(1, SeqCst);
                    syscall!(recv(
                        theirs.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0
                    ))
                })?;
                Ok::<_, io::Error>(buf[..n as usize].to_vec())
            }
        });
        let (tid, thread) = tid_rx.recv().expect("the reader started");
        // Signal the reader whenever it sleeps until `recv` was called a second time: only an
        // interrupted call is retried. (A signal that lands before `recv` just runs the handler.)
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while calls.load(SeqCst) < 2 && !reader.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "recv was never retried"
            );
            if is_asleep(tid) {
                // SAFETY: the thread is not joined yet, so its id is still valid.
                unsafe { libc::pthread_kill(thread, libc::SIGURG) };
            }
            std::thread::yield_now();
        }
        if reader.is_finished() {
            let early = reader.join().expect("the reader did not panic");
            panic!("recv returned {early:?} before any byte was sent: EINTR was not retried");
        }
        assert!(SIGNALS.load(SeqCst) > 0);
        std::io::Write::write_all(&mut ours, b"late")?;
        let got = reader.join().expect("the reader did not panic")?;
        assert_eq!(got, b"late");
        assert!(calls.load(SeqCst) >= 2, "recv returned without a retry");
        Ok(())
    }
}
