//! Timer descriptors (`timerfd`), for a loop that must wake more finely than epoll's whole
//! milliseconds: a load generator's rate limit of 20,000 messages per second wakes every
//! 50 µs. The reactor's own timers do not need them (its wheel rounds to its tick).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Creates a non-blocking, close-on-exec monotonic timer descriptor, disarmed.
///
/// # Errors
/// `EMFILE` and the like.
pub fn timerfd_create() -> io::Result<OwnedFd> {
    let fd = super::syscall!(timerfd_create(
        libc::CLOCK_MONOTONIC,
        libc::TFD_NONBLOCK | libc::TFD_CLOEXEC
    ))?;
    // SAFETY: `timerfd_create` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Arms `timer` to expire once, `after` from now (relative). A zero duration is raised to one
/// nanosecond, since zero would disarm the timer.
///
/// # Errors
/// `EBADF` or `EINVAL` for a descriptor that is not a timer.
pub fn timerfd_set(timer: BorrowedFd<'_>, after: Duration) -> io::Result<()> {
    let after = after.max(Duration::from_nanos(1));
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: after.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_nsec: after.subsec_nanos() as libc::c_long,
        },
    };
    // `spec` lives across the call; the old value is not wanted (null).
    super::syscall!(timerfd_settime(
        timer.as_raw_fd(),
        0,
        &spec,
        std::ptr::null_mut()
    ))
    .map(drop)
}

/// Consumes the expirations of `timer` so that it can fire again; none yet (`WouldBlock`) is
/// not an error.
///
/// # Errors
/// `EBADF` for a descriptor that is not a timer.
pub fn timerfd_drain(timer: BorrowedFd<'_>) -> io::Result<()> {
    let mut count = 0u64;
    // `count` is the 8-byte buffer a timer read requires, ours for the call.
    match super::syscall!(read(
        timer.as_raw_fd(),
        (&mut count as *mut u64).cast(),
        std::mem::size_of::<u64>()
    )) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}
