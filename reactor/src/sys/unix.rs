//! Unix-domain sockets: addresses (a path, or on Linux an abstract name), peer credentials
//! (`SO_PEERCRED`) and descriptor passing (`SCM_RIGHTS`) (S28, S29).
//!
//! # Implementation notes
//! Received descriptors are made close-on-exec by the kernel (`MSG_CMSG_CLOEXEC`), so no
//! window exists in which a concurrent `fork`+`exec` could inherit them, and each becomes an
//! [`OwnedFd`] before anything else can fail, so none leaks. A control message the kernel had
//! to cut short (`MSG_CTRUNC`: more descriptors than the buffer holds, or the receiver at its
//! descriptor limit) has lost descriptors for good; it is reported as an error, never passed
//! on as if whole. At most [`MAX_FDS`] descriptors travel with one message.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::{retry, syscall};

/// The most descriptors one message carries, each way (Linux's own limit is 253,
/// `SCM_MAX_FD`).
pub const MAX_FDS: usize = 32;

/// A Unix-domain socket's peer, as the kernel recorded it when the connection was made
/// (`SO_PEERCRED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCredentials {
    /// The peer's process id (0 if the peer is in another pid namespace the kernel cannot map).
    pub pid: i32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

/// Fills a `sockaddr_un` for a path (`abstract_name == false`) or an abstract name (the bytes
/// after the leading NUL). Fails with `InvalidInput` if the name does not fit or a path holds a
/// NUL byte.
pub(crate) fn sockaddr_un(
    name: &[u8],
    abstract_name: bool,
) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain data; all zeros is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let start = usize::from(abstract_name);
    // A path needs its terminating NUL to fit; an abstract name is counted by the length.
    let room = addr.sun_path.len() - start - usize::from(!abstract_name);
    if name.len() > room || (!abstract_name && (name.is_empty() || name.contains(&0))) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "Unix socket name empty, too long, or holding a NUL byte",
        ));
    }
    for (dst, &b) in addr.sun_path[start..].iter_mut().zip(name) {
        *dst = b as libc::c_char;
    }
    let base = std::mem::size_of::<libc::sa_family_t>();
    let len = base + start + name.len() + usize::from(!abstract_name);
    Ok((addr, len as libc::socklen_t))
}

/// Binds a Unix-domain socket.
pub(crate) fn bind_unix(fd: BorrowedFd<'_>, name: &[u8], abstract_name: bool) -> io::Result<()> {
    let (addr, len) = sockaddr_un(name, abstract_name)?;
    syscall!(bind(
        fd.as_raw_fd(),
        (&addr as *const libc::sockaddr_un).cast(),
        len
    ))
    .map(drop)
}

/// Starts a non-blocking connect on a Unix-domain socket. A local connect is decided at once:
/// `Ok(true)` when connected, `Ok(false)` when interrupted (the verdict then comes on
/// writability, as for TCP); `ECONNREFUSED` (nothing listens), `ENOENT`, and `EAGAIN` (the
/// listener's backlog is full) are errors.
pub(crate) fn connect_unix(
    fd: BorrowedFd<'_>,
    name: &[u8],
    abstract_name: bool,
) -> io::Result<bool> {
    let (addr, len) = sockaddr_un(name, abstract_name)?;
    super::connect_once(|| {
        syscall!(connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len
        ))
    })
}

/// The credentials of a connected Unix-domain socket's peer (`SO_PEERCRED`).
pub(crate) fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<PeerCredentials> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    syscall!(getsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_PEERCRED,
        (&mut cred as *mut libc::ucred).cast(),
        &mut len
    ))?;
    Ok(PeerCredentials {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// Whether a Unix-domain socket is connected: `ENOTCONN` while a connect is under way (S4).
pub(crate) fn unix_connected(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: sockaddr_un is plain data; all zeros is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    syscall!(getpeername(
        fd.as_raw_fd(),
        (&mut addr as *mut libc::sockaddr_un).cast(),
        &mut len
    ))
    .map(drop)
}

/// The address family of a socket (`SO_DOMAIN`): `AF_UNIX`, `AF_INET`, `AF_INET6`.
pub(crate) fn socket_domain(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    syscall!(getsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_DOMAIN,
        (&mut domain as *mut libc::c_int).cast(),
        &mut len
    ))?;
    Ok(domain)
}

/// Sets `O_NONBLOCK` on a descriptor (one adopted from elsewhere may be blocking).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = syscall!(fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
    if flags & libc::O_NONBLOCK == 0 {
        syscall!(fcntl(
            fd.as_raw_fd(),
            libc::F_SETFL,
            flags | libc::O_NONBLOCK
        ))?;
    }
    Ok(())
}

/// Room for the control message of [`MAX_FDS`] descriptors, aligned for `cmsghdr`.
#[repr(C)]
union CmsgBuf {
    _align: libc::cmsghdr,
    bytes: [u8; 256],
}

/// The control-buffer length for `n` descriptors.
fn cmsg_space(n: usize) -> usize {
    // SAFETY: CMSG_SPACE is arithmetic on its argument only.
    unsafe { libc::CMSG_SPACE((n * std::mem::size_of::<RawFd>()) as u32) as usize }
}

/// Gather write carrying `fds` (`SCM_RIGHTS`) with the first byte, `MSG_NOSIGNAL` as
/// [`super::sendmsg`]. The descriptors go with this call's bytes or not at all: on an error
/// nothing was sent.
pub(crate) fn sendmsg_fds(
    fd: BorrowedFd<'_>,
    bufs: &[io::IoSlice<'_>],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many descriptors for one message",
        ));
    }
    let mut cbuf = CmsgBuf { bytes: [0; 256] };
    let space = cmsg_space(fds.len());
    debug_assert!(space <= 256);
    // SAFETY: an all-zero msghdr is a valid empty message; the fields set below point at
    // `bufs` and `cbuf`, which outlive the call. `IoSlice` is ABI-compatible with `iovec`.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(super::IOV_MAX) as _;
    if !fds.is_empty() {
        // SAFETY: `cbuf` is `space` bytes or more, aligned for `cmsghdr` by the union; the
        // header written by CMSG_FIRSTHDR/CMSG_DATA stays inside it (`space` is
        // CMSG_SPACE of the payload), and the payload is `fds.len()` descriptors.
        unsafe {
            msg.msg_control = cbuf.bytes.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len =
                libc::CMSG_LEN((fds.len() * std::mem::size_of::<RawFd>()) as u32) as _;
            let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
            for (i, f) in fds.iter().enumerate() {
                data.add(i).write_unaligned(f.as_raw_fd());
            }
        }
    }
    retry(|| {
        syscall!(sendmsg(
            fd.as_raw_fd(),
            &msg,
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT
        ))
        .map(|n| n as usize)
    })
}

/// Reads into `buf`, appending any descriptors that came with the bytes to `fds` as owned,
/// close-on-exec descriptors. `Ok(0)` is end of stream. A truncated control message
/// (`MSG_CTRUNC`) closes what did arrive and fails with `InvalidData`: descriptors were lost.
pub(crate) fn recvmsg_fds(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    let mut cbuf = CmsgBuf { bytes: [0; 256] };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty message; the fields set below point at
    // `iov` (and through it `buf`) and `cbuf`, which outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: taking the address of the union's byte array is always valid.
    msg.msg_control = unsafe { cbuf.bytes.as_mut_ptr().cast() };
    msg.msg_controllen = cmsg_space(MAX_FDS) as _;
    let n = retry(|| {
        syscall!(recvmsg(
            fd.as_raw_fd(),
            &mut msg,
            libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT
        ))
        .map(|n| n as usize)
    })?;
    let before = fds.len();
    // SAFETY: the kernel filled `msg_control` up to `msg_controllen`; CMSG_FIRSTHDR and
    // CMSG_NXTHDR walk only headers inside that length, and each SCM_RIGHTS payload is
    // `cmsg_len - CMSG_LEN(0)` bytes of descriptors the kernel just installed in this
    // process, owned by nobody else, so each becomes an `OwnedFd` once.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let payload = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..payload / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        // What did arrive is closed: the message is incomplete and cannot be passed on.
        fds.truncate(before);
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "descriptors lost: control message truncated (MSG_CTRUNC)",
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn descriptors_travel_with_bytes_and_arrive_cloexec() -> io::Result<()> {
        let (a, b) = UnixStream::pair()?;
        let file = std::fs::File::open("/dev/null")?;
        let n = sendmsg_fds(a.as_fd(), &[io::IoSlice::new(b"hi")], &[file.as_fd()])?;
        assert_eq!(n, 2);
        let mut buf = [0; 8];
        let mut fds = Vec::new();
        let n = recvmsg_fds(b.as_fd(), &mut buf, &mut fds)?;
        assert_eq!(&buf[..n], b"hi");
        assert_eq!(fds.len(), 1);
        let flags = syscall!(fcntl(fds[0].as_raw_fd(), libc::F_GETFD))?;
        assert!(
            flags & libc::FD_CLOEXEC != 0,
            "received descriptor not close-on-exec"
        );
        Ok(())
    }

    #[test]
    fn credentials_are_our_own_over_a_pair() -> io::Result<()> {
        let (a, _b) = UnixStream::pair()?;
        let cred = peer_credentials(a.as_fd())?;
        assert_eq!(cred.pid as u32, std::process::id());
        // SAFETY: getuid cannot fail and touches no memory.
        assert_eq!(cred.uid, unsafe { libc::getuid() });
        Ok(())
    }

    #[test]
    fn names_that_do_not_fit_are_refused() {
        assert!(sockaddr_un(&[b'x'; 200], false).is_err());
        assert!(sockaddr_un(b"a\0b", false).is_err());
        assert!(sockaddr_un(b"", false).is_err());
        assert!(sockaddr_un(b"name", true).is_ok());
    }
}
