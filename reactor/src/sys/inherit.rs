//! Descriptors received from a parent process (socket activation, a hand-over channel): taking
//! ownership of an inherited number, reading what kind of socket it is, and the channel a
//! restart hands its listeners over.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::{retry, syscall};

/// The inherited numbers already taken: each is taken once, so two owners never close it.
static TAKEN: std::sync::Mutex<Vec<RawFd>> = std::sync::Mutex::new(Vec::new());

/// Takes ownership of descriptor `raw`, inherited from the parent process, and marks it
/// close-on-exec (so a program this one starts does not inherit it by accident).
///
/// The crate calls this only with the numbers an inheritance protocol names (`LISTEN_FDS`,
/// a hand-over channel's variable), after removing the variable that named them; the numbers
/// already taken are remembered and refused.
///
/// # Errors
/// `EBADF` if no descriptor `raw` is open; `AlreadyExists` if it was taken before; the error
/// of `fcntl`.
pub(crate) fn take_inherited(raw: RawFd) -> io::Result<OwnedFd> {
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    if taken.contains(&raw) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("inherited descriptor {raw} was already taken"),
        ));
    }
    let flags = syscall!(fcntl(raw, libc::F_GETFD))?;
    syscall!(fcntl(raw, libc::F_SETFD, flags | libc::FD_CLOEXEC))?;
    taken.push(raw);
    // SAFETY: `raw` is open (F_GETFD succeeded); it was passed by the parent under an
    // inheritance protocol, so no code of this process opened it, and `TAKEN` makes sure it
    // becomes an `OwnedFd` only once.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Clears (or sets) close-on-exec, so that a program started next inherits the descriptor.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flags = syscall!(fcntl(fd.as_raw_fd(), libc::F_GETFD))?;
    let flags = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    syscall!(fcntl(fd.as_raw_fd(), libc::F_SETFD, flags)).map(drop)
}

/// An integer socket option at `SOL_SOCKET`.
fn int_option(fd: BorrowedFd<'_>, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    syscall!(getsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        name,
        (&mut value as *mut libc::c_int).cast(),
        &mut len
    ))?;
    Ok(value)
}

/// The type of a socket (`SO_TYPE`): `SOCK_STREAM`, `SOCK_DGRAM`, `SOCK_SEQPACKET`. `ENOTSOCK`
/// for a descriptor that is not a socket.
pub(crate) fn socket_type(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    int_option(fd, libc::SO_TYPE)
}

/// Whether a socket is listening (`SO_ACCEPTCONN`).
pub(crate) fn is_listening(fd: BorrowedFd<'_>) -> io::Result<bool> {
    int_option(fd, libc::SO_ACCEPTCONN).map(|v| v != 0)
}

/// A connected pair of Unix-domain `SOCK_SEQPACKET` sockets, close-on-exec, blocking: message
/// boundaries are kept, so each message and the descriptors it carries arrive together.
pub(crate) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as RawFd; 2];
    syscall!(socketpair(
        libc::AF_UNIX,
        libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
        0,
        fds.as_mut_ptr()
    ))?;
    // SAFETY: `socketpair` just returned these two descriptors and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends one message on a connected socket, blocking until it is queued.
pub(crate) fn send_blocking(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    retry(|| {
        syscall!(send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL
        ))
        .map(|n| n as usize)
    })
}

/// Whether close-on-exec is set on `fd` (`F_GETFD`): a descriptor without it leaks into every
/// program the process starts.
///
/// # Errors
/// The `fcntl` error (`EBADF`).
pub fn is_cloexec(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let flags = syscall!(fcntl(fd.as_raw_fd(), libc::F_GETFD))?;
    Ok(flags & libc::FD_CLOEXEC != 0)
}
