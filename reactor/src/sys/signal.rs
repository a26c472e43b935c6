//! Signals as readable bytes on a pipe (S31).
//!
//! # Implementation notes
//! The handler may only call async-signal-safe functions, so it does one thing: write the signal
//! number as one byte to a non-blocking pipe whose read end the reactor watches like any socket.
//! If the pipe is full the byte is dropped, which is harmless: the reactor drains the pipe and
//! a signal already queued there will be seen.
//!
//! Signal dispositions are process-wide, so the pipe is too: its write end is a process-wide
//! atomic the handler reads, and one [`SignalPipe`] at most exists at a time ([`CATCHER`]). A
//! second installation is refused before it changes anything, instead of pointing the handlers
//! at a new pipe while the old one, dropped later, resets them under the new owner's feet.
//!
//! Installation is all or nothing. The [`SignalPipe`] is built before the first handler is
//! installed and records each disposition it replaces as it goes; if one `sigaction` fails (an
//! uncatchable signal such as `SIGSTOP`, a number out of range), returning the error drops the
//! half-built pipe, and its `Drop` puts back what it recorded. So no handler is ever left
//! writing to a descriptor number the pipe no longer owns. Dropping restores the dispositions
//! that were in force before, not `SIG_DFL`: a program that ignored `SIGHUP`, or had a handler
//! of its own, gets it back.
//!
//! The restore happens in reverse order of installation, so a signal listed twice ends with the
//! disposition it had before the first installation. The write end is forgotten only after
//! every handler is restored, and closed after that (fields drop after `Drop::drop`), so a
//! handler never sees a closed descriptor number.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The pipe's write end, read by the signal handler; -1 while no pipe is installed.
static SIGNAL_WRITE_FD: AtomicI32 = AtomicI32::new(-1);

/// Whether a [`SignalPipe`] exists in this process: one catcher per process.
static CATCHER: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signo: libc::c_int) {
    let fd = SIGNAL_WRITE_FD.load(Ordering::Acquire);
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

/// Both ends of the signal pipe; dropping it restores the dispositions it replaced.
///
/// # Invariant
/// While it exists, [`CATCHER`] is set and [`SIGNAL_WRITE_FD`] holds `_write`'s number; every
/// signal in `previous` has [`on_signal`] as its handler.
pub(crate) struct SignalPipe {
    /// The end the reactor registers for readability.
    pub(crate) read: OwnedFd,
    /// Kept open so the handler's writes have somewhere to go.
    _write: OwnedFd,
    /// Each signal whose handler points at this pipe, with the disposition it had before, in
    /// order of installation; restored in reverse on drop.
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl fmt::Debug for SignalPipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let signals: Vec<libc::c_int> = self.previous.iter().map(|&(sig, _)| sig).collect();
        f.debug_struct("SignalPipe")
            .field("read", &self.read)
            .field("signals", &signals)
            .finish()
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        // 1. Put back every replaced disposition, last installed first.
        for (sig, old) in self.previous.iter().rev() {
            // SAFETY: `old` is what sigaction(2) reported for `sig`, so it is a valid
            // disposition for it; the old value is not wanted.
            unsafe { libc::sigaction(*sig, old, std::ptr::null_mut()) };
        }
        // 2. Only now that no handler points here, forget the write end (it closes after this
        //    body) and free the catcher slot.
        SIGNAL_WRITE_FD.store(-1, Ordering::Release);
        CATCHER.store(false, Ordering::Release);
    }
}

/// Creates the pipe and points the handlers of `signals` at it, all or none.
///
/// # Errors
/// `AlreadyExists` if a [`SignalPipe`] already exists in this process; the error of `pipe2`;
/// the error of the first `sigaction` that fails (`EINVAL` for `SIGKILL`, `SIGSTOP` or a number
/// out of range), after every handler installed so far has been restored.
pub(crate) fn install_signal_pipe(signals: &[libc::c_int]) -> io::Result<SignalPipe> {
    // 1. Claim the process's one catcher slot, or change nothing.
    if CATCHER
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "signals are already caught in this process: one reactor per process catches \
             signals; drop it before catching them again",
        ));
    }
    // 2. The pipe. From here on, dropping `pipe` undoes everything, the claim included.
    let mut fds = [0 as libc::c_int; 2];
    if let Err(e) = super::syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC)) {
        CATCHER.store(false, Ordering::Release);
        return Err(e);
    }
    // SAFETY: pipe2 just returned these two descriptors and nothing else owns them.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    SIGNAL_WRITE_FD.store(write.as_raw_fd(), Ordering::Release);
    let mut pipe = SignalPipe {
        read,
        _write: write,
        previous: Vec::with_capacity(signals.len()),
    };
    // 3. The handlers, each replaced disposition recorded before the next is tried.
    for &sig in signals {
        // SAFETY: an all-zero sigaction is valid; we fill the handler and flags. SA_RESTART makes
        // interrupted slow calls in other threads resume instead of failing with EINTR.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: `action.sa_mask` is a valid sigset_t owned by us.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: all-zero is valid storage for sigaction(2) to fill in.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // On failure `pipe` drops here and restores the handlers already installed.
        super::syscall!(sigaction(sig, &action, &mut old))?;
        pipe.previous.push((sig, old));
    }
    Ok(pipe)
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
///
/// # Errors
/// `EINVAL` if one of `signals` is not a signal number (the mask is then left as it was);
/// otherwise the error of `pthread_sigmask`, which none of its uses here can cause.
pub fn block_signals(signals: &[libc::c_int], block: bool) -> io::Result<()> {
    // SAFETY: an all-zero sigset_t is valid storage for sigemptyset to initialise.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t owned by us.
    unsafe { libc::sigemptyset(&mut set) };
    for &sig in signals {
        // SAFETY: as above.
        if unsafe { libc::sigaddset(&mut set, sig) } == -1 {
            // Not a signal number: refuse rather than leave it out of the mask unnoticed.
            return Err(io::Error::last_os_error());
        }
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
