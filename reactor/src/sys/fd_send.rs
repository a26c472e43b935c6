//! Sending any number of descriptors in one message, for the test of a receiver's limit (S29):
//! a peer that sends more than [`super::MAX_FDS`] (which the reactor never does) must make the
//! receiver report the truncation, not lose descriptors silently.
//!
//! The reactor never calls it: its own sending is
//! [`super::sendmsg_fds`], with a fixed buffer for at most [`super::MAX_FDS`].

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// Sends `bytes` (blocking, flags 0) with every descriptor of `fds` (`SCM_RIGHTS`) on the
/// Unix stream socket `fd`, however many; returns the bytes sent.
///
/// # Errors
/// The `sendmsg` error; `InvalidInput` when `bytes` or `fds` is empty (descriptors need a
/// byte to travel with; without descriptors, use a plain write) or `fds` would not fit a
/// control message length.
pub fn send_with_fds(
    fd: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    let payload = u32::try_from(fds.len() * std::mem::size_of::<RawFd>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    if bytes.is_empty() || fds.is_empty() {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: CMSG_SPACE is arithmetic on its argument only.
    let space = unsafe { libc::CMSG_SPACE(payload) } as usize;
    // u64 words: aligned for `cmsghdr` on Linux.
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty message; the fields set below point at
    // `iov` and `cbuf`, which outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `cbuf` holds CMSG_SPACE(payload) bytes (or more), 8-aligned; the header written
    // through CMSG_FIRSTHDR (non-null: the buffer is at least one header long) and the
    // `fds.len()` descriptors written at CMSG_DATA stay within it. `sendmsg` only reads.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as _;
        let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
        for (i, f) in fds.iter().enumerate() {
            data.add(i).write_unaligned(f.as_raw_fd());
        }
    }
    super::syscall!(sendmsg(fd.as_raw_fd(), &msg, 0)).map(|n| n as usize)
}
