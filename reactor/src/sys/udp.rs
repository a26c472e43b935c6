//! Datagram calls: one datagram at a time (`recvmsg`, `sendto`) and many per system call
//! (`recvmmsg`, `sendmmsg`), S30.
//!
//! # Implementation notes
//! Every receive goes through `recvmsg`/`recvmmsg` rather than `recvfrom`, because only they
//! report `MSG_TRUNC` in the message flags: a datagram longer than its buffer is cut by the
//! kernel, and the flag is the one way to know it was (the rest is gone). The batch calls build
//! their header arrays on the stack, one entry per slot, each pointing into the caller's buffer
//! and its own `sockaddr_storage`; nothing is allocated per call.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::{from_sockaddr, retry, syscall, to_sockaddr};

/// The most datagrams one batch call moves; the arrays of one call live on the stack.
pub const MAX_BATCH: usize = 32;

/// What the kernel said about one received datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes copied into the slot.
    pub len: usize,
    /// The datagram was longer than its slot and was cut (`MSG_TRUNC`): the rest is lost.
    pub truncated: bool,
    /// The sender (`None` if the kernel gave no address, as for some connected sockets).
    pub from: Option<SocketAddr>,
}

/// Decodes a sender address the kernel may have left empty.
fn sender(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    if len == 0 {
        None
    } else {
        from_sockaddr(storage).ok()
    }
}

/// Receives one datagram into `buf` with `recvmsg`, reporting truncation.
pub(crate) fn recv_one(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<RecvMeta> {
    // SAFETY: sockaddr_storage and msghdr are plain data; all zeros is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    retry(|| {
        // SAFETY: as above, zeroed msghdr is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut storage as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        // The header points at `storage` and `iov` (which points into `buf`), all alive and
        // exclusively borrowed for the call.
        let n = syscall!(recvmsg(fd.as_raw_fd(), &mut msg, 0))?;
        Ok(RecvMeta {
            len: n as usize,
            truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
            from: sender(&storage, msg.msg_namelen),
        })
    })
}

/// Receives up to `metas.len()` (at most [`MAX_BATCH`]) datagrams with one `recvmmsg`, the
/// `i`-th into `buf[i * slot..(i + 1) * slot]`. Returns how many arrived (at least one; none
/// is `WouldBlock`).
pub(crate) fn recv_batch(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    slot: usize,
    metas: &mut [RecvMeta],
) -> io::Result<usize> {
    let count = metas.len().min(MAX_BATCH).min(buf.len() / slot.max(1));
    if count == 0 {
        return Ok(0);
    }
    // SAFETY: these are plain C structs; all zeros is a valid value for each.
    let mut storages: [libc::sockaddr_storage; MAX_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
    let base = buf.as_mut_ptr();
    for (i, iov) in iovs.iter_mut().enumerate().take(count) {
        *iov = libc::iovec {
            // In bounds: count * slot <= buf.len().
            iov_base: base.wrapping_add(i * slot).cast(),
            iov_len: slot,
        };
    }
    for i in 0..count {
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = (&mut storages[i] as *mut libc::sockaddr_storage).cast();
        h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        h.msg_iov = &mut iovs[i];
        h.msg_iovlen = 1;
    }
    let n = retry(|| {
        // Every header points at its own storage and iovec, each iovec at its own disjoint
        // `slot` bytes of `buf`; all outlive the call. MSG_DONTWAIT: never block even if the
        // descriptor were blocking; no timeout pointer.
        syscall!(recvmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut()
        ))
    })? as usize;
    for i in 0..n {
        metas[i] = RecvMeta {
            len: hdrs[i].msg_len as usize,
            truncated: hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            from: sender(&storages[i], hdrs[i].msg_hdr.msg_namelen),
        };
    }
    Ok(n)
}

/// Sends one datagram, to `to` or (with `None`) to the connected peer.
pub(crate) fn send_one(
    fd: BorrowedFd<'_>,
    data: &[u8],
    to: Option<&SocketAddr>,
) -> io::Result<usize> {
    retry(|| match to {
        Some(addr) => {
            let (storage, len) = to_sockaddr(addr);
            syscall!(sendto(
                fd.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_NOSIGNAL,
                (&storage as *const libc::sockaddr_storage).cast(),
                len
            ))
            .map(|n| n as usize)
        }
        None => syscall!(send(
            fd.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_NOSIGNAL
        ))
        .map(|n| n as usize),
    })
}

/// Sends up to [`MAX_BATCH`] datagrams with one `sendmmsg`. Returns how many the kernel took
/// (at least one); an error means the first one failed.
pub(crate) fn send_batch(
    fd: BorrowedFd<'_>,
    msgs: &[(&[u8], Option<SocketAddr>)],
) -> io::Result<usize> {
    let count = msgs.len().min(MAX_BATCH);
    if count == 0 {
        return Ok(0);
    }
    // SAFETY: these are plain C structs; all zeros is a valid value for each.
    let mut storages: [libc::sockaddr_storage; MAX_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
    for (i, (data, to)) in msgs.iter().take(count).enumerate() {
        iovs[i] = libc::iovec {
            // The kernel only reads through this pointer (sendmmsg).
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        if let Some(addr) = to {
            let (storage, len) = to_sockaddr(addr);
            storages[i] = storage;
            hdrs[i].msg_hdr.msg_namelen = len;
        }
    }
    for i in 0..count {
        let h = &mut hdrs[i].msg_hdr;
        if h.msg_namelen != 0 {
            h.msg_name = (&mut storages[i] as *mut libc::sockaddr_storage).cast();
        }
        h.msg_iov = &mut iovs[i];
        h.msg_iovlen = 1;
    }
    retry(|| {
        // Every header points at its own address (or none) and iovec, each iovec at a datagram
        // the caller borrows for the call; the kernel only reads them.
        syscall!(sendmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_NOSIGNAL
        ))
    })
    .map(|n| n as usize)
}
