//! The address of a Unix-domain socket, and the options of a Unix-domain listener (S28).
//!
//! A Unix-domain address is a filesystem path or, on Linux, an abstract name (no file; it
//! vanishes with the last socket bound to it). It is its own type rather than a variant of
//! `SocketAddr`, so that nothing can mistake it for an IP address: a Unix connection's
//! [`Cx::peer_addr`](crate::Cx::peer_addr) is `None`, and who the peer is comes from
//! [`Cx::peer_credentials`](crate::Cx::peer_credentials).

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::ListenOptions;

/// Where a Unix-domain socket lives.
///
/// ```
/// use evdrive_reactor::UnixAddr;
/// assert_eq!(UnixAddr::parse("@svc"), UnixAddr::Abstract(b"svc".to_vec()));
/// assert_eq!(UnixAddr::parse("/run/svc.sock").to_string(), "/run/svc.sock");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    /// A socket file at this path.
    Path(PathBuf),
    /// A Linux abstract name (written `@name`): no file, no permissions, gone with its socket.
    Abstract(Vec<u8>),
}

impl UnixAddr {
    /// `@name` is an abstract name, anything else a path (the convention of `ss` and `socat`).
    pub fn parse(s: &str) -> UnixAddr {
        match s.strip_prefix('@') {
            Some(name) => UnixAddr::Abstract(name.as_bytes().to_vec()),
            None => UnixAddr::Path(PathBuf::from(s)),
        }
    }

    /// The path, for a socket file.
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            UnixAddr::Path(p) => Some(p),
            UnixAddr::Abstract(_) => None,
        }
    }

    /// The name's bytes and whether it is abstract, as the system call layer takes them.
    pub(crate) fn raw(&self) -> (&[u8], bool) {
        match self {
            UnixAddr::Path(p) => (p.as_os_str().as_bytes(), false),
            UnixAddr::Abstract(n) => (n, true),
        }
    }
}

impl From<&Path> for UnixAddr {
    fn from(p: &Path) -> Self {
        UnixAddr::Path(p.to_path_buf())
    }
}

impl From<PathBuf> for UnixAddr {
    fn from(p: PathBuf) -> Self {
        UnixAddr::Path(p)
    }
}

impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddr::Path(p) => write!(f, "{}", p.display()),
            UnixAddr::Abstract(n) => write!(f, "@{}", Path::new(OsStr::from_bytes(n)).display()),
        }
    }
}

/// How to listen on a Unix-domain socket: the listener's settings plus the socket file's mode.
///
/// # Implementation notes
/// The mode is applied with `chmod` right after `bind` and before `listen`: no client can
/// connect before the mode is right (connecting needs `listen`), and the process umask is left
/// alone (changing it would race with every other thread creating files).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct UnixListenOptions {
    /// Backlog, accept budget, back-off and the settings of accepted connections. The TCP-only
    /// options (`SO_REUSEPORT`, `TCP_DEFER_ACCEPT`) are ignored.
    pub listen: ListenOptions,
    /// Permission bits for the socket file (e.g. `0o660`); `None` leaves what the umask gave.
    /// Ignored for abstract names, which have no file.
    pub mode: Option<u32>,
}

impl UnixListenOptions {
    /// The defaults: `ListenOptions::default()`, the umask's mode.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the listener's settings.
    pub fn with_listen(mut self, listen: ListenOptions) -> Self {
        self.listen = listen;
        self
    }

    /// Sets the socket file's permission bits.
    pub fn with_mode(mut self, mode: Option<u32>) -> Self {
        self.mode = mode;
        self
    }
}

impl From<ListenOptions> for UnixListenOptions {
    fn from(listen: ListenOptions) -> Self {
        UnixListenOptions { listen, mode: None }
    }
}
