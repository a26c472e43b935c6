//! Blocking clients, raw sockets with chosen options, test patterns and end-of-stream checks.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use reactor::sys::poll::{poll, PollFd};
use std::time::{Duration, Instant};

use crate::*;

/// Connects to `addr` with read and write timeouts of [`WAIT`].
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(WAIT))?;
    stream.set_write_timeout(Some(WAIT))?;
    Ok(stream)
}

/// Connects to `addr` after `configure` set options on the new socket (those that must come
/// before `connect`, such as `SO_RCVBUF`); read and write timeouts are [`WAIT`].
pub fn connect_with(
    addr: SocketAddr,
    configure: impl FnOnce(BorrowedFd<'_>) -> io::Result<()>,
) -> io::Result<TcpStream> {
    let fd = tcp_socket()?;
    configure(fd.as_fd())?;
    connect_socket(fd, addr)
}

/// A new, unconnected IPv4 TCP socket.
pub fn tcp_socket() -> io::Result<OwnedFd> {
    reactor::sys::tcp_socket(&localhost(), false)
}

/// The C form of an IPv4 address, for tests that build their own socket calls.
pub fn sockaddr_in(addr: SocketAddr) -> io::Result<libc::sockaddr_in> {
    let SocketAddr::V4(v4) = addr else {
        return Err(io::Error::new(io::ErrorKind::Unsupported, "IPv4 only"));
    };
    Ok(libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(v4.ip().octets()),
        },
        sin_zero: [0; 8],
    })
}

/// Connects a socket made by [`tcp_socket`] to an IPv4 `addr` (blocking); read and write
/// timeouts are [`WAIT`]. Connecting allocates no descriptor, so sockets made earlier can
/// connect when the process has none left.
pub fn connect_socket(fd: OwnedFd, addr: SocketAddr) -> io::Result<TcpStream> {
    sockaddr_in(addr)?; // IPv4 only
    let stream = TcpStream::from(fd);
    // `false` on a blocking socket: a connect interrupted by a signal goes on in the
    // background; wait for it instead of issuing it again (S2).
    if !reactor::sys::connect_socket(stream.as_fd(), &addr)? {
        if !wait_ready(stream.as_fd(), libc::POLLOUT, WAIT)? {
            return Err(io::ErrorKind::TimedOut.into());
        }
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
    }
    stream.set_read_timeout(Some(WAIT))?;
    stream.set_write_timeout(Some(WAIT))?;
    Ok(stream)
}

/// Sets an integer socket option.
pub fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    reactor::sys::set_int_option(fd, level, name, value)
}

/// `SO_RCVBUF` on a client socket (set it before connecting, see [`connect_with`]).
pub fn set_recv_buffer(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, bytes as libc::c_int)
}

/// `SO_LINGER` with a zero timeout: closing the socket then sends RST instead of FIN.
pub fn set_linger_zero(stream: &TcpStream) -> io::Result<()> {
    reactor::sys::set_linger_option(stream.as_fd(), Some(Duration::ZERO))
}

/// Closes `stream` abortively: the peer gets RST.
pub fn reset(stream: TcpStream) -> io::Result<()> {
    set_linger_zero(&stream)?;
    drop(stream);
    Ok(())
}

/// The byte at position `i` of the test pattern. Its period, 251, is prime, so it never lines
/// up with power-of-two buffer sizes: a lost, repeated or reordered chunk shows.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// `len` bytes of the test pattern starting at position `from`.
pub fn pattern(from: u64, len: usize) -> Vec<u8> {
    (from..from + len as u64).map(pattern_byte).collect()
}

/// Checks a stream against the test pattern as it arrives, without keeping it.
#[derive(Debug, Default)]
pub struct PatternCheck {
    /// Bytes checked so far.
    pub pos: u64,
}

impl PatternCheck {
    /// Checks the next bytes of the stream.
    ///
    /// # Panics
    /// At the first byte that differs from the pattern.
    pub fn check(&mut self, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            let at = self.pos + i as u64;
            assert_eq!(b, pattern_byte(at), "byte {at} differs from the pattern");
        }
        self.pos += bytes.len() as u64;
    }
}

/// Reads until end of stream (each read bounded by the socket's read timeout) and returns what
/// arrived. A read timeout is an error, so a peer that never closes fails the test.
pub fn read_to_eof(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all)?;
    Ok(all)
}

/// Reads and expects end of stream right away (no data).
pub fn expect_eof(stream: &mut TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 64];
    match stream.read(&mut buf)? {
        0 => Ok(()),
        n => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected end of stream, got {n} bytes"),
        )),
    }
}

/// Whether `e` means the peer reset the connection.
pub fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Waits up to `limit` for `fd` to report `events` (`libc::POLLIN`, `libc::POLLOUT`, …) and
/// returns whether it did.
pub fn wait_ready(fd: BorrowedFd<'_>, events: libc::c_short, limit: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = [PollFd::new(fd, events)];
        match poll(&mut pfd, Some(left)) {
            Ok(n) => return Ok(n > 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A listening socket on 127.0.0.1 (port 0) with the given `listen` backlog, which
/// `std::net::TcpListener` does not let one choose. A listener that never accepts and whose
/// queue is full makes Linux drop new SYNs: a connect to it hangs until it times out, with no
/// packet leaving the machine.
pub fn listen_with_backlog(backlog: libc::c_int) -> io::Result<std::net::TcpListener> {
    let fd = tcp_socket()?;
    reactor::sys::bind_socket(fd.as_fd(), &localhost())?;
    reactor::sys::listen_socket(fd.as_fd(), backlog)?;
    Ok(std::net::TcpListener::from(fd))
}

/// An address on 127.0.0.1 where nothing listens (a port just bound and released).
pub fn closed_port() -> io::Result<SocketAddr> {
    let l = std::net::TcpListener::bind(localhost())?;
    l.local_addr()
}
