//! Signals as readable bytes on a pipe (S31), and reaping of children.
//!
//! # Implementation notes
//! The handler may only call async-signal-safe functions, so it does one thing: write the signal
//! number as one byte to a non-blocking pipe whose read end the reactor watches like any socket.
//! If the pipe is full the byte is dropped, which is harmless: the reactor drains the pipe and
//! a signal already queued there will be seen. The write end is a process-wide atomic because
//! signal dispositions are process-wide too: one reactor per process receives signals.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The pipe's write end, read by the signal handler; -1 while no pipe is installed.
static SIGNAL_WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signo: libc::c_int) {
    let fd = SIGNAL_WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signo as u8;
        let saved = errno();
        // SAFETY: write(2) is async-signal-safe; `byte` lives on this stack for the call.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        set_errno(saved);
    }
}

fn errno() -> libc::c_int {
    // SAFETY: __errno_location always returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn set_errno(value: libc::c_int) {
    // SAFETY: __errno_location always returns this thread's errno slot.
    unsafe { *libc::__errno_location() = value };
}

/// Both ends of the signal pipe; dropping it restores the default dispositions.
#[derive(Debug)]
pub(crate) struct SignalPipe {
    /// The end the reactor registers for readability.
    pub(crate) read: OwnedFd,
    /// Kept open so the handler's writes have somewhere to go.
    _write: OwnedFd,
    /// The signals whose handlers point at this pipe, restored on drop.
    signals: Vec<libc::c_int>,
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        SIGNAL_WRITE_FD.store(-1, Ordering::Relaxed);
        for &sig in &self.signals {
            // SAFETY: SIG_DFL is always a valid disposition.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
}

/// Creates the pipe and points the handlers of `signals` at it.
pub(crate) fn install_signal_pipe(signals: &[libc::c_int]) -> io::Result<SignalPipe> {
    let mut fds = [0 as libc::c_int; 2];
    super::syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
    // SAFETY: pipe2 just returned these two descriptors and nothing else owns them.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    SIGNAL_WRITE_FD.store(write.as_raw_fd(), Ordering::Relaxed);
    for &sig in signals {
        // SAFETY: an all-zero sigaction is valid; we fill the handler and flags. SA_RESTART makes
        // interrupted slow calls in other threads resume instead of failing with EINTR.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: `action.sa_mask` is a valid sigset_t owned by us.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        super::syscall!(sigaction(sig, &action, std::ptr::null_mut()))?;
    }
    Ok(SignalPipe {
        read,
        _write: write,
        signals: signals.to_vec(),
    })
}

/// Reads every queued signal number from the pipe into `out`.
pub(crate) fn read_signal_pipe(fd: BorrowedFd<'_>, out: &mut Vec<i32>) -> io::Result<()> {
    let mut buf = [0u8; 64];
    loop {
        match super::syscall!(read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())) {
            Ok(0) => return Ok(()),
            Ok(n) => out.extend(buf[..n as usize].iter().map(|&b| b as i32)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Blocks `signals` in the calling thread (threads spawned afterwards inherit the mask), so that
/// the thread running the reactor is the one the kernel delivers them to.
pub fn block_signals(signals: &[libc::c_int], block: bool) -> io::Result<()> {
    // SAFETY: an all-zero sigset_t is valid storage for sigemptyset to initialise.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t owned by us.
    unsafe { libc::sigemptyset(&mut set) };
    for &sig in signals {
        // SAFETY: as above.
        unsafe { libc::sigaddset(&mut set, sig) };
    }
    let how = if block {
        libc::SIG_BLOCK
    } else {
        libc::SIG_UNBLOCK
    };
    // SAFETY: `set` is initialised; the old mask is not wanted.
    let rc = unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// How a reaped child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildStatus {
    /// The child's process id.
    pub pid: i32,
    /// The raw wait status (decode with `WIFEXITED` and friends, or compare with 0 for success).
    pub status: i32,
}

/// Reaps every child that has exited, looping `waitpid(-1, WNOHANG)` (S31): one `SIGCHLD` may
/// stand for several children, so a single `wait` is not enough.
pub fn reap_children() -> Vec<ChildStatus> {
    let mut reaped = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the duration of the call.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        match pid {
            0 => break,
            -1 if errno() == libc::EINTR => continue,
            -1 => break,
            pid => reaped.push(ChildStatus { pid, status }),
        }
    }
    reaped
}
