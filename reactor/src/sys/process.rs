//! Reaping of child processes (S31).

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
            -1 if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
            -1 => break,
            pid => reaped.push(ChildStatus { pid, status }),
        }
    }
    reaped
}
