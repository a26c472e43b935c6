//! `poll(2)` over borrowed descriptors, for code that drives sockets without a reactor: test
//! clients, a foreign loop beside a reactor, load generators.
//!
//! [`PollFd`] has the layout of `struct pollfd` (it is `repr(transparent)` over it) and
//! borrows its descriptor, so the kernel never sees a descriptor that was closed while it
//! waited, and a slice of them goes to the kernel as it is, without a copy.

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

pub use libc::{POLLERR, POLLHUP, POLLIN, POLLOUT};

/// One descriptor to watch, the events wanted and, after [`poll`], the events that happened.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct PollFd<'fd> {
    raw: libc::pollfd,
    _fd: PhantomData<BorrowedFd<'fd>>,
}

impl<'fd> PollFd<'fd> {
    /// Watches `fd` for `events` ([`POLLIN`], [`POLLOUT`], or both; 0 watches only for
    /// [`POLLHUP`] and [`POLLERR`], which are always reported).
    pub fn new(fd: BorrowedFd<'fd>, events: libc::c_short) -> Self {
        PollFd {
            raw: libc::pollfd {
                fd: fd.as_raw_fd(),
                events,
                revents: 0,
            },
            _fd: PhantomData,
        }
    }

    /// The events that happened at the last [`poll`] (0: none).
    pub fn revents(&self) -> libc::c_short {
        self.raw.revents
    }
}

/// Waits until one of `fds` has one of its events or `timeout` passes (`None`: no limit), and
/// returns how many have; each entry's [`PollFd::revents`] says which. The timeout is rounded
/// up to whole milliseconds, so a short wait never becomes a busy loop. `EINTR` is returned,
/// not retried: the caller decides whether the wait goes on.
///
/// # Errors
/// The `poll` error: `Interrupted` when a signal came, `EINVAL` for too many descriptors.
pub fn poll(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = timeout.map_or(-1, |t| {
        t.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
    });
    // `PollFd` is `repr(transparent)` over `pollfd`, so the slice is an array of `pollfd` of
    // the length passed; each descriptor is borrowed for longer than the call.
    let n = super::syscall!(poll(
        fds.as_mut_ptr().cast::<libc::pollfd>(),
        fds.len() as libc::nfds_t,
        ms
    ))?;
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn poll_reports_which_descriptor_is_ready() -> io::Result<()> {
        let (mut a, b) = UnixStream::pair()?;
        let (_c, d) = UnixStream::pair()?;
        a.write_all(b"x")?;
        let mut fds = [
            PollFd::new(b.as_fd(), POLLIN),
            PollFd::new(d.as_fd(), POLLIN),
        ];
        assert_eq!(poll(&mut fds, Some(Duration::from_secs(5)))?, 1);
        assert_ne!(fds[0].revents() & POLLIN, 0);
        assert_eq!(fds[1].revents(), 0);
        let mut idle = [PollFd::new(d.as_fd(), POLLIN)];
        assert_eq!(poll(&mut idle, Some(Duration::from_millis(1)))?, 0);
        Ok(())
    }
}
