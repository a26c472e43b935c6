//! Unix-domain stream sockets behind the transport seam (S28), with descriptor passing and
//! peer credentials (S29).
//!
//! # Implementation notes
//! Binding a path that exists is the delicate part. A socket file left by a dead server makes
//! `bind` fail with `EADDRINUSE` forever, so it must go; but removing a live server's file would
//! steal its address from every future client. The file is probed first: a connect that is
//! refused (`ECONNREFUSED`) means nobody listens, and only then is the file removed and bound
//! again; a connect that succeeds (or finds the backlog full) means a live server, a clear
//! `AddrInUse` error. A file that is not a socket is never touched. The listener remembers the
//! device and inode of the file it created and removes it when dropped (a graceful shutdown
//! drops its listeners) only if the path still names that file: a newer server that replaced
//! it keeps its socket. An adopted listener's file was made by someone else, and is theirs to
//! remove.
//!
//! A Unix connection has no IP address: `peer_addr` and `local_addr` fail, the accept loop gets
//! `None` for the client's address (the Unix listener's factory takes none, and a rejected
//! client's [`Goodbye`](crate::Goodbye) is made from `None`), and the listener itself reports
//! its real path or abstract name ([`ListenAddr::Unix`]).

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mio::Interest;

use super::{Acceptor, Registration, Stream, Transport};
use crate::{sys, ConnConfig, ListenAddr, UnixAddr, UnixListenOptions};

fn no_ip() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "a Unix-domain socket has no IP address",
    )
}

/// One Unix-domain stream connection.
#[derive(Debug)]
pub(crate) struct UnixConn(mio::net::UnixStream);

impl UnixConn {
    pub(crate) fn from_fd(fd: OwnedFd) -> Self {
        UnixConn(mio::net::UnixStream::from_std(
            std::os::unix::net::UnixStream::from(fd),
        ))
    }

    /// The descriptor, taken out without closing it.
    pub(crate) fn into_owned_fd(self) -> OwnedFd {
        self.0.into()
    }
}

/// Starts a connect to `addr` (decided at once for a local socket). Returns the stream and the
/// outcome of the attempt, as TCP's `connect` does.
pub(crate) fn connect(
    addr: &UnixAddr,
    config: &ConnConfig,
) -> io::Result<(Stream, io::Result<bool>)> {
    let fd = sys::socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
    if let Some(n) = config.send_buffer_size {
        sys::set_send_buffer_size(fd.as_fd(), n)?;
    }
    if let Some(n) = config.recv_buffer_size {
        sys::set_recv_buffer_size(fd.as_fd(), n)?;
    }
    let (name, abstract_name) = addr.raw();
    let attempt = sys::connect_unix(fd.as_fd(), name, abstract_name);
    Ok((Stream::Unix(UnixConn::from_fd(fd)), attempt))
}

impl Transport for UnixConn {
    fn register(&mut self, at: Registration<'_>) -> io::Result<()> {
        at.registry.register(
            &mut self.0,
            at.token,
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.0.as_fd())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::recv(self.0.as_fd(), buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match bufs {
            [one] => sys::send(self.0.as_fd(), one),
            _ => sys::sendmsg(self.0.as_fd(), bufs),
        }
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        sys::shutdown_write(self.0.as_fd())
    }

    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        sys::take_error(self.0.as_fd())
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Err(no_ip())
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Err(no_ip())
    }

    fn set_abortive(&mut self) -> io::Result<()> {
        // No RST on a Unix socket: closing drops the queued data either way.
        Ok(())
    }

    fn carries_fds(&self) -> bool {
        true
    }

    fn read_with_fds(&mut self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        sys::recvmsg_fds(self.0.as_fd(), buf, fds)
    }

    fn write_with_fds(
        &mut self,
        bufs: &[IoSlice<'_>],
        fds: &[BorrowedFd<'_>],
    ) -> io::Result<usize> {
        sys::sendmsg_fds(self.0.as_fd(), bufs, fds)
    }

    fn peer_credentials(&self) -> io::Result<sys::PeerCredentials> {
        sys::peer_credentials(self.0.as_fd())
    }

    fn check_connected(&self) -> io::Result<()> {
        sys::unix_connected(self.0.as_fd())
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        registry.deregister(&mut self.0)
    }

    fn into_fd(self: Box<Self>) -> Option<OwnedFd> {
        Some((*self).into_owned_fd())
    }
}

/// The socket file a listener created, to remove on drop if it is still that file.
#[derive(Debug)]
struct OwnFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// A listening Unix-domain socket.
#[derive(Debug)]
pub(crate) struct UnixAcceptor {
    socket: mio::net::UnixListener,
    /// Where it is bound, for the listener's stats and log lines.
    addr: UnixAddr,
    /// The file to remove when the listener goes (`None` for an abstract name).
    file: Option<OwnFile>,
}

impl Drop for UnixAcceptor {
    fn drop(&mut self) {
        let Some(own) = &self.file else {
            return;
        };
        // Only the file this listener created: a newer server may have replaced it.
        match std::fs::symlink_metadata(&own.path) {
            Ok(m) if m.dev() == own.dev && m.ino() == own.ino => {
                if let Err(e) = std::fs::remove_file(&own.path) {
                    log::warn!("removing {}: {e}", own.path.display());
                }
            }
            _ => log::debug!("{} is no longer our socket; left alone", own.path.display()),
        }
    }
}

/// Clears the way for binding `path`: nothing there, or a stale socket file (removed). A live
/// server's socket is `AddrInUse`; a file that is not a socket is `AlreadyExists`.
fn clear_stale(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    let probe = sys::socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
    match sys::connect_unix(probe.as_fd(), path.as_os_str().as_bytes(), false) {
        // Someone answers (or their backlog is full): a live server.
        Ok(_) => Err(live(path)),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Err(live(path)),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            log::info!("{}: stale socket file, replaced", path.display());
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
        // Removed meanwhile.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

fn live(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("{}: a server is listening there", path.display()),
    )
}

/// Creates a listening socket on `addr`: a stale socket file is replaced, a live one refused,
/// the mode applied between `bind` and `listen` (S28).
pub(crate) fn listen(addr: &UnixAddr, opts: &UnixListenOptions) -> io::Result<UnixAcceptor> {
    let fd = sys::socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
    let (name, abstract_name) = addr.raw();
    if let Some(path) = addr.as_path() {
        clear_stale(path)?;
    }
    sys::bind_unix(fd.as_fd(), name, abstract_name)?;
    let mut acceptor = UnixAcceptor {
        socket: mio::net::UnixListener::from_std(std::os::unix::net::UnixListener::from(fd)),
        addr: addr.clone(),
        file: None,
    };
    if let Some(path) = addr.as_path() {
        // From here on the file is ours: dropping the acceptor on a later error removes it.
        let meta = std::fs::symlink_metadata(path)?;
        acceptor.file = Some(OwnFile {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        });
        if let Some(mode) = opts.mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    sys::listen(acceptor.socket.as_fd(), opts.listen.backlog)?;
    Ok(acceptor)
}

/// Serves a listening socket bound elsewhere (S28): made non-blocking, its address read back
/// for the listener's stats. The reactor did not create its socket file, so it never removes it
/// (`file` stays `None`): the file belongs to whoever bound the socket.
pub(crate) fn adopt(listener: std::os::unix::net::UnixListener) -> io::Result<UnixAcceptor> {
    use std::os::linux::net::SocketAddrExt;

    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let addr = if let Some(path) = bound.as_pathname() {
        UnixAddr::Path(path.to_path_buf())
    } else if let Some(name) = bound.as_abstract_name() {
        UnixAddr::Abstract(name.to_vec())
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an unbound Unix socket cannot be served: no client could reach it",
        ));
    };
    Ok(UnixAcceptor {
        socket: mio::net::UnixListener::from_std(listener),
        addr,
        file: None,
    })
}

impl Acceptor for UnixAcceptor {
    fn register(&mut self, at: Registration<'_>) -> io::Result<()> {
        at.registry
            .register(&mut self.socket, at.token, Interest::READABLE)
    }

    fn accept(&mut self) -> io::Result<(Stream, Option<SocketAddr>)> {
        self.socket
            .accept()
            .map(|(s, _)| (Stream::Unix(UnixConn(s)), None))
    }

    fn has_pending(&self) -> bool {
        sys::poll_readable(&[self.socket.as_fd()], Some(std::time::Duration::ZERO))
            .map_or(true, |r| r[0])
    }

    fn local_addr(&self) -> io::Result<ListenAddr> {
        Ok(ListenAddr::Unix(self.addr.clone()))
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.socket.as_fd())
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        registry.deregister(&mut self.socket)
    }

    fn keep_file(&mut self) {
        self.file = None;
    }
}
