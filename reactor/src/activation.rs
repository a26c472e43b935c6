//! Sockets inherited from a parent process: systemd-style socket activation
//! ([`listen_fds`]), and the descriptors a restart hands over ([`crate::restart`]), both as
//! [`Inherited`] sockets whose kind is read from the kernel, ready to adopt.
//!
//! # The activation contract
//! A service manager (systemd, or `systemd-socket-activate` for a try) binds and listens on
//! the sockets itself, then starts the program with them open from descriptor 3 on and three
//! environment variables:
//!
//! | variable | value |
//! |---|---|
//! | `LISTEN_PID` | the pid of the process meant to take them; another process ignores them (they were inherited by accident) |
//! | `LISTEN_FDS` | how many descriptors: 3, 4, … `3 + LISTEN_FDS - 1` |
//! | `LISTEN_FDNAMES` | optional: their names, separated by `:` (a `.socket` unit's `FileDescriptorName=`, `--fdname` of `systemd-socket-activate`) |
//!
//! [`listen_fds`] reads them as `sd_listen_fds` does: it takes the descriptors, marks them
//! close-on-exec and removes the three variables, so that a program started later neither
//! inherits the descriptors nor believes it was activated. Each is then classified with
//! `getsockopt` (`SO_DOMAIN`, `SO_TYPE`, `SO_ACCEPTCONN`) into a [`SocketKind`], and the
//! caller adopts it with [`LoopCx::adopt_listener`](crate::LoopCx::adopt_listener) (TCP) or
//! [`LoopCx::adopt_unix_listener`](crate::LoopCx::adopt_unix_listener) (Unix-domain), after
//! [`Inherited::into_tcp_listener`] or [`Inherited::into_unix_listener`], which refuse a
//! socket of another kind with a clear error.
//!
//! A unit pair for a server on port 7007:
//!
//! ```text
//! # echo.socket
//! [Socket]
//! ListenStream=127.0.0.1:7007
//! FileDescriptorName=listen
//!
//! [Install]
//! WantedBy=sockets.target
//!
//! # echo.service
//! [Service]
//! ExecStart=/usr/local/bin/evdrive echo
//! ```
//!
//! Or without systemd running: `systemd-socket-activate -l 127.0.0.1:7007 --fdname=listen
//! evdrive echo`.
//!
//! # Implementation notes
//! Removing environment variables is not thread-safe in a process whose other threads read
//! the environment, so [`listen_fds`] belongs at start-up, before threads are spawned (as
//! `sd_listen_fds` does). The numbers are taken once per process (a second call finds the
//! variables gone and returns nothing).

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use crate::sys;

/// The first descriptor socket activation passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// What kind of socket an inherited descriptor is, read from the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketKind {
    /// A listening TCP socket (IPv4 or IPv6): adopt with `adopt_listener`.
    TcpListener,
    /// A listening Unix-domain stream socket: adopt with `adopt_unix_listener`.
    UnixListener,
    /// A UDP socket (IPv4 or IPv6).
    Udp,
    /// A stream socket that is not listening (a connection): adopt with `adopt_stream`.
    Stream,
    /// Anything else: another family or type, or not a socket at all.
    Other,
}

impl fmt::Display for SocketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SocketKind::TcpListener => "a listening TCP socket",
            SocketKind::UnixListener => "a listening Unix-domain socket",
            SocketKind::Udp => "a UDP socket",
            SocketKind::Stream => "a connected stream socket",
            SocketKind::Other => "not a socket this reactor serves",
        })
    }
}

/// A socket inherited from a parent process, with its name (if the parent gave one) and
/// its kind.
#[derive(Debug)]
pub struct Inherited {
    /// The descriptor, close-on-exec.
    fd: OwnedFd,
    /// `LISTEN_FDNAMES`' entry, or the name a restart's predecessor gave it.
    name: Option<String>,
    /// Read from the kernel when the descriptor was taken.
    kind: SocketKind,
}

impl Inherited {
    /// Classifies `fd` (`SO_DOMAIN`, `SO_TYPE`, `SO_ACCEPTCONN`). A descriptor that is not a
    /// socket is [`SocketKind::Other`], not an error, so the caller can say what it got.
    pub fn new(fd: OwnedFd, name: Option<String>) -> Self {
        let kind = classify(&fd);
        Inherited { fd, name, kind }
    }

    /// The name the parent gave it (`LISTEN_FDNAMES`, or the hand-over's), if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What kind of socket it is.
    pub fn kind(&self) -> SocketKind {
        self.kind
    }

    /// The descriptor, whatever its kind.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// A second descriptor of the same socket (close-on-exec), e.g. one per reactor thread.
    ///
    /// # Errors
    /// The error of `fcntl(F_DUPFD_CLOEXEC)` (out of descriptors).
    pub fn try_clone(&self) -> io::Result<Inherited> {
        Ok(Inherited {
            fd: self.fd.try_clone()?,
            name: self.name.clone(),
            kind: self.kind,
        })
    }

    /// The listening TCP socket, for [`LoopCx::adopt_listener`](crate::LoopCx::adopt_listener).
    ///
    /// # Errors
    /// `InvalidInput`, naming the descriptor and what it is, for any other kind.
    pub fn into_tcp_listener(self) -> io::Result<std::net::TcpListener> {
        self.expect(SocketKind::TcpListener).map(Into::into)
    }

    /// The listening Unix-domain socket, for
    /// [`LoopCx::adopt_unix_listener`](crate::LoopCx::adopt_unix_listener).
    ///
    /// # Errors
    /// `InvalidInput`, naming the descriptor and what it is, for any other kind.
    pub fn into_unix_listener(self) -> io::Result<std::os::unix::net::UnixListener> {
        self.expect(SocketKind::UnixListener).map(Into::into)
    }

    /// The UDP socket.
    ///
    /// # Errors
    /// `InvalidInput`, naming the descriptor and what it is, for any other kind.
    pub fn into_udp_socket(self) -> io::Result<std::net::UdpSocket> {
        self.expect(SocketKind::Udp).map(Into::into)
    }

    fn expect(self, want: SocketKind) -> io::Result<OwnedFd> {
        if self.kind == want {
            return Ok(self.fd);
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "inherited descriptor {}{} is {}, not {want}",
                self.fd.as_raw_fd(),
                self.name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default(),
                self.kind
            ),
        ))
    }
}

/// Reads the kind of socket `fd` is.
fn classify(fd: &OwnedFd) -> SocketKind {
    let fd = fd.as_fd();
    let (Ok(domain), Ok(ty)) = (sys::socket_domain(fd), sys::socket_type(fd)) else {
        return SocketKind::Other;
    };
    let ip = domain == libc::AF_INET || domain == libc::AF_INET6;
    let listening = || sys::is_listening(fd).unwrap_or(false);
    match (ty, ip, domain == libc::AF_UNIX) {
        (libc::SOCK_STREAM, true, _) if listening() => SocketKind::TcpListener,
        (libc::SOCK_STREAM, _, true) if listening() => SocketKind::UnixListener,
        (libc::SOCK_STREAM, true, _) | (libc::SOCK_STREAM, _, true) => SocketKind::Stream,
        (libc::SOCK_DGRAM, true, _) => SocketKind::Udp,
        _ => SocketKind::Other,
    }
}

/// The sockets a service manager passed to this process (see the module doc), or none if it
/// was not socket-activated (`LISTEN_PID` unset or another process's pid: the variables are
/// then left as they are, as `sd_listen_fds` does). The three variables are removed once read
/// for this process.
///
/// # Errors
/// `InvalidData` if `LISTEN_FDS` or `LISTEN_PID` is not a number, or the names do not match
/// the count; the error of taking a descriptor (`EBADF`: the parent did not pass it).
pub fn listen_fds() -> io::Result<Vec<Inherited>> {
    let var = |name| std::env::var(name).ok();
    let parsed = parse_env(
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDS").as_deref(),
        var("LISTEN_FDNAMES").as_deref(),
        std::process::id(),
    );
    let names = match parsed {
        Ok(None) => return Ok(Vec::new()),
        Ok(Some(names)) => names,
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    };
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    let mut inherited = Vec::with_capacity(names.len());
    for (raw, name) in (LISTEN_FDS_START..).zip(names) {
        let fd = sys::take_inherited(raw)
            .map_err(|e| io::Error::new(e.kind(), format!("LISTEN_FDS descriptor {raw}: {e}")))?;
        inherited.push(Inherited::new(fd, name));
    }
    if !inherited.is_empty() {
        log::info!(
            "socket activation: {}",
            inherited
                .iter()
                .map(|i| format!("{} ({})", i.name().unwrap_or("unnamed"), i.kind()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(inherited)
}

/// The names of the descriptors the variables pass to process `me` (one entry per
/// descriptor, `None` where unnamed), `None` if they are not for `me`.
fn parse_env(
    pid: Option<&str>,
    fds: Option<&str>,
    names: Option<&str>,
    me: u32,
) -> Result<Option<Vec<Option<String>>>, String> {
    let Some(pid) = pid else {
        return Ok(None);
    };
    let pid: u32 = pid
        .trim()
        .parse()
        .map_err(|_| format!("LISTEN_PID={pid}: not a pid"))?;
    if pid != me {
        return Ok(None);
    }
    let count: usize = match fds {
        None => return Ok(None),
        Some(n) => n
            .trim()
            .parse()
            .map_err(|_| format!("LISTEN_FDS={n}: not a count"))?,
    };
    // Far more than any manager passes; keeps the numbers in range of a descriptor.
    if count > 4096 {
        return Err(format!("LISTEN_FDS={count}: too many descriptors"));
    }
    let names: Vec<Option<String>> = match names {
        None => vec![None; count],
        Some(list) => {
            let names: Vec<Option<String>> = list
                .split(':')
                .map(|n| (!n.is_empty()).then(|| n.to_string()))
                .collect();
            if names.len() != count {
                return Err(format!(
                    "LISTEN_FDNAMES names {} descriptors, LISTEN_FDS says {count}",
                    names.len()
                ));
            }
            names
        }
    };
    Ok(Some(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_for_another_process_are_ignored() {
        assert_eq!(parse_env(Some("41"), Some("2"), None, 42), Ok(None));
        assert_eq!(parse_env(None, Some("2"), None, 42), Ok(None));
        assert_eq!(parse_env(Some("42"), None, None, 42), Ok(None));
    }

    #[test]
    fn names_match_the_count() {
        assert_eq!(
            parse_env(Some("42"), Some("2"), Some("web:admin"), 42),
            Ok(Some(vec![Some("web".into()), Some("admin".into())]))
        );
        assert_eq!(
            parse_env(Some("42"), Some("2"), None, 42),
            Ok(Some(vec![None, None]))
        );
        assert!(parse_env(Some("42"), Some("2"), Some("web"), 42).is_err());
        assert!(parse_env(Some("42"), Some("x"), None, 42).is_err());
        assert!(parse_env(Some("me"), Some("1"), None, 42).is_err());
    }

    #[test]
    fn sockets_are_classified_by_the_kernel() -> io::Result<()> {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
        let client = std::net::TcpStream::connect(tcp.local_addr()?)?;
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let file = std::fs::File::open("/dev/null")?;
        let kind = |fd: OwnedFd| Inherited::new(fd, None).kind();
        assert_eq!(kind(tcp.try_clone()?.into()), SocketKind::TcpListener);
        assert_eq!(kind(client.into()), SocketKind::Stream);
        assert_eq!(kind(udp.into()), SocketKind::Udp);
        assert_eq!(kind(file.into()), SocketKind::Other);
        let wrong = Inherited::new(tcp.into(), Some("web".into())).into_udp_socket();
        let e = wrong.expect_err("a TCP listener is not a UDP socket");
        assert!(
            e.to_string().contains("(web) is a listening TCP socket"),
            "{e}"
        );
        Ok(())
    }
}
