//! Reaping of child processes (S31).
//!
//! A `SIGCHLD` says that some child changed state, not which, and the kernel merges signals
//! that arrive while one is pending: one signal may stand for several exits. So reaping is a
//! loop of non-blocking `waitpid` calls, run from the reactor's signal callback.
//!
//! Which children it waits for matters. `waitpid(-1)` reaps *any* child of the process,
//! including one that a [`std::process::Child`] elsewhere in the program owns: that owner's
//! `wait` then fails with `ECHILD`, or, once the number is reused, waits for a stranger. So the
//! form to use is [`reap_children`], which waits only for the process ids the program
//! registered (the ones it spawned for the reactor to reap); [`reap_any_children`] is the
//! `-1` loop, for a program that owns every child it has (a pre-forking server, say).

/// How a reaped child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildStatus {
    /// The child's process id.
    pub pid: i32,
    /// The raw wait status (decode with `WIFEXITED` and friends, or compare with 0 for success).
    pub status: i32,
}

/// What one `waitpid(pid, WNOHANG)` found.
enum Wait {
    /// A child exited and is reaped now.
    Reaped(ChildStatus),
    /// The child is still running (or, for `-1`, no child has exited yet).
    Running,
    /// No such child: never ours, or already reaped (`ECHILD`), or another error.
    NoChild,
}

/// One `waitpid(pid, WNOHANG)`, retried on `EINTR`.
fn wait_nohang(pid: libc::pid_t) -> Wait {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the duration of the call.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        match rc {
            0 => return Wait::Running,
            -1 if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
            -1 => return Wait::NoChild,
            pid => return Wait::Reaped(ChildStatus { pid, status }),
        }
    }
}

/// Reaps those of `pids` that have exited, with one `waitpid(pid, WNOHANG)` each (S31), and
/// returns their statuses; children still running, and ids that are not (or no longer)
/// children of this process, are skipped. Ids of zero or below, which `waitpid` would read as
/// "any child" or a process group, are skipped too.
///
/// Call it from a `SIGCHLD` callback ([`crate::Reactor::catch_signals`]) with the ids of the
/// children the program spawned for this purpose, and forget the ids it returns: a reaped id
/// may be reused by the system for another process. Children owned elsewhere (by a
/// [`std::process::Child`] that will `wait` for them) are left alone.
pub fn reap_children(pids: &[i32]) -> Vec<ChildStatus> {
    pids.iter()
        .filter(|&&pid| pid > 0)
        .filter_map(|&pid| match wait_nohang(pid) {
            Wait::Reaped(child) => Some(child),
            Wait::Running | Wait::NoChild => None,
        })
        .collect()
}

/// Reaps every child of the process that has exited, looping `waitpid(-1, WNOHANG)` until none
/// is left (S31).
///
/// Only for a program that owns every child it has: this also reaps the children that a
/// [`std::process::Child`] elsewhere owns (a library's, a test harness's), whose `wait` then
/// fails. Otherwise use [`reap_children`] with the ids the program registered.
pub fn reap_any_children() -> Vec<ChildStatus> {
    let mut reaped = Vec::new();
    while let Wait::Reaped(child) = wait_nohang(-1) {
        reaped.push(child);
    }
    reaped
}

/// The real user and group ids of this process (`getuid`, `getgid`), as `SO_PEERCRED` reports
/// them to a Unix socket's peer ([`crate::PeerCredentials`]).
pub fn user_ids() -> (u32, u32) {
    // SAFETY: getuid and getgid cannot fail, take no argument and touch no memory.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// Moves the calling thread (only it) into the network namespace that `ns` refers to (an open
/// `/run/netns/NAME` or `/proc/PID/ns/net`), with `setns(CLONE_NEWNET)`. Sockets the thread
/// opens afterwards live in that namespace.
///
/// # Errors
/// `EPERM` without `CAP_SYS_ADMIN`, `EINVAL` when `ns` is not a network namespace.
pub fn enter_net_namespace(ns: std::os::fd::BorrowedFd<'_>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    super::syscall!(setns(ns.as_raw_fd(), libc::CLONE_NEWNET)).map(drop)
}

/// Clock ticks per second, the unit of the CPU times in `/proc/PID/stat`
/// (`sysconf(_SC_CLK_TCK)`; 100, Linux's value, if the call fails, as it does not).
pub fn clock_ticks_per_sec() -> u64 {
    super::syscall!(sysconf(libc::_SC_CLK_TCK))
        .ok()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// A descriptor that becomes readable once process `pid` exits (`pidfd_open`, Linux 5.3 and
/// later): a program that must wait for a child with a deadline polls it, or registers it with
/// the reactor ([`LoopCx::add_fd`](crate::LoopCx::add_fd)), instead of asking again and again
/// whether the child is gone. Reaping stays with the child's owner.
///
/// # Errors
/// `InvalidInput` for a pid beyond `pid_t`; otherwise the system call's: `ESRCH` when no such
/// process exists, `ENOSYS` on an older kernel.
pub fn pidfd_open(pid: u32) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `pidfd_open` takes a pid and flags by value and touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is the new descriptor just returned, which nothing else owns; descriptor
    // numbers fit a `c_int`, as the kernel returned it through one.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}
