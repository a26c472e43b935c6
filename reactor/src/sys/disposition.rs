//! Reading and setting signal dispositions directly, for the tests of the signal catcher (S6,
//! S31): what a signal's disposition is, putting `SIG_DFL` or `SIG_IGN` back, installing a
//! foreign handler to check that the catcher keeps it, raising a signal.
//!
//! Installing an arbitrary handler cannot be made safe (it must be async-signal-safe, which no
//! type says), so the one foreign handler offered is this module's own [`Disposition::Flag`],
//! which only stores to an atomic: [`flag_raised`] tells whether it ran.
//!
//! The reactor itself never calls these: dispositions belong to the program, and the reactor
//! sets them only through [`crate::Reactor::catch_signals`]. They are for a program (or a test)
//! that must know, or restore, what a signal does.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// One flag per signal number, set by [`flag_handler`].
static FLAGS: [AtomicBool; 65] = [const { AtomicBool::new(false) }; 65];

/// The handler of [`Disposition::Flag`]: marks its signal as seen, nothing else.
extern "C" fn flag_handler(sig: libc::c_int) {
    if let Some(flag) = usize::try_from(sig).ok().and_then(|s| FLAGS.get(s)) {
        flag.store(true, Ordering::SeqCst);
    }
}

/// The address of [`flag_handler`] as `sigaction` stores it.
fn flag_address() -> libc::sighandler_t {
    flag_handler as *const () as libc::sighandler_t
}

/// What the process does on a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// `SIG_DFL`: the signal's default action (terminate, for most).
    Default,
    /// `SIG_IGN`: the signal is discarded.
    Ignore,
    /// This module's handler, which sets the signal's flag ([`flag_raised`]).
    Flag,
    /// Another handler (the reactor's catcher, or one a library installed), by address.
    Other(usize),
}

/// The current disposition of `sig`.
///
/// # Errors
/// `EINVAL` for a signal number out of range.
pub fn disposition(sig: libc::c_int) -> io::Result<Disposition> {
    // SAFETY: all-zero is valid storage for sigaction(2) to fill in.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // A null new action only reads the current one into `old`, which is ours and writable.
    super::syscall!(sigaction(sig, std::ptr::null(), &mut old))?;
    Ok(match old.sa_sigaction {
        libc::SIG_DFL => Disposition::Default,
        libc::SIG_IGN => Disposition::Ignore,
        h if h == flag_address() => Disposition::Flag,
        h => Disposition::Other(h),
    })
}

/// Sets the disposition of `sig` to `SIG_DFL`, `SIG_IGN` or the flag handler (with an empty
/// mask and no flags).
///
/// # Errors
/// `EINVAL` for a number out of range or a signal that cannot be caught (`SIGKILL`,
/// `SIGSTOP`), and for [`Disposition::Other`], which cannot be installed from here.
pub fn set_disposition(sig: libc::c_int, to: Disposition) -> io::Result<()> {
    let handler = match to {
        Disposition::Default => libc::SIG_DFL,
        Disposition::Ignore => libc::SIG_IGN,
        Disposition::Flag => flag_address(),
        Disposition::Other(_) => return Err(io::ErrorKind::InvalidInput.into()),
    };
    // SAFETY: all-zero is a valid sigaction (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    // `action` is ours for the call; the handler is SIG_DFL, SIG_IGN or `flag_handler`, which
    // only stores to an atomic (async-signal-safe).
    super::syscall!(sigaction(sig, &action, std::ptr::null_mut())).map(drop)
}

/// Whether the flag handler has run for `sig` since the process started.
pub fn flag_raised(sig: libc::c_int) -> bool {
    usize::try_from(sig)
        .ok()
        .and_then(|s| FLAGS.get(s))
        .is_some_and(|f| f.load(Ordering::SeqCst))
}

/// Raises `sig` in the calling thread; its handler has run when this returns.
///
/// # Errors
/// `EINVAL` for a number out of range.
pub fn raise(sig: libc::c_int) -> io::Result<()> {
    // SAFETY: no pointer is passed; raise(3) has no precondition beyond a signal number, and
    // returns nonzero (with errno set) on failure.
    match unsafe { libc::raise(sig) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}
