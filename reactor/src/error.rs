//! Why a connection ended, and the crate's error type.

use std::fmt;
use std::io;

/// Why a connection ended. Every opened connection (and every outgoing connection attempt)
/// ends with exactly one of these, handed to [`Protocol::on_close`](crate::Protocol::on_close).
///
/// The errno values a dying TCP connection reports each map to a variant of their own, so a
/// handler can tell a peer that reset (crashed and rebooted) from one that vanished (timed out
/// or unreachable) from one that simply said goodbye (S6, S7).
#[derive(Debug)]
pub enum CloseReason {
    /// The peer closed its side (end of stream) and the connection was then closed.
    PeerClosed,
    /// The peer reset the connection (`ECONNRESET`): typically it crashed and rebooted, or it
    /// closed with unread data.
    Reset,
    /// A write hit a connection the peer had already reset (`EPIPE`).
    BrokenPipe,
    /// The kernel gave up on the peer (`ETIMEDOUT`): retransmissions or keepalive probes went
    /// unanswered.
    TimedOut,
    /// A router reported the peer's host or network unreachable (`EHOSTUNREACH`,
    /// `ENETUNREACH`).
    Unreachable,
    /// The peer refused the connection (`ECONNREFUSED`): nothing listens on that port.
    Refused,
    /// An outgoing connection did not complete within its connect timeout.
    ConnectTimeout,
    /// The peer sent nothing within the first-byte timeout, or nothing at all within the idle
    /// timeout (S24).
    IdleTimeout,
    /// The connection's queued output passed its hard cap (or the loop-wide budget): the peer
    /// does not read fast enough (S21).
    SlowConsumer,
    /// The peer broke the protocol (or the input buffer limit); the text says how.
    Protocol(Box<str>),
    /// The handler (or the owner of the reactor) closed the connection gracefully.
    Local,
    /// The handler closed the connection abortively (RST).
    Aborted,
    /// The reactor shut down.
    Shutdown,
    /// Any other I/O error.
    Io(io::Error),
    /// The connection was linked to another ([`LoopCx::link`](crate::LoopCx::link)), which
    /// ended first with a reason of this kind: a forwarder's client hears why its upstream went.
    LinkClosed(CloseKind),
}

/// The variant of a [`CloseReason`] without its payload, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum CloseKind {
    PeerClosed,
    Reset,
    BrokenPipe,
    TimedOut,
    Unreachable,
    Refused,
    ConnectTimeout,
    IdleTimeout,
    SlowConsumer,
    Protocol,
    Local,
    Aborted,
    Shutdown,
    Io,
    LinkClosed,
}

impl CloseKind {
    /// Every kind, in declaration order (the index used by counters).
    pub const ALL: [CloseKind; 15] = [
        CloseKind::PeerClosed,
        CloseKind::Reset,
        CloseKind::BrokenPipe,
        CloseKind::TimedOut,
        CloseKind::Unreachable,
        CloseKind::Refused,
        CloseKind::ConnectTimeout,
        CloseKind::IdleTimeout,
        CloseKind::SlowConsumer,
        CloseKind::Protocol,
        CloseKind::Local,
        CloseKind::Aborted,
        CloseKind::Shutdown,
        CloseKind::Io,
        CloseKind::LinkClosed,
    ];
}

impl CloseReason {
    /// Maps an I/O error from a socket to the reason it stands for.
    pub fn from_io(e: io::Error) -> CloseReason {
        match e.raw_os_error() {
            Some(libc::ECONNRESET) => CloseReason::Reset,
            Some(libc::EPIPE) => CloseReason::BrokenPipe,
            Some(libc::ETIMEDOUT) => CloseReason::TimedOut,
            Some(libc::EHOSTUNREACH) | Some(libc::ENETUNREACH) => CloseReason::Unreachable,
            Some(libc::ECONNREFUSED) => CloseReason::Refused,
            _ => match e.kind() {
                io::ErrorKind::ConnectionReset => CloseReason::Reset,
                io::ErrorKind::BrokenPipe => CloseReason::BrokenPipe,
                io::ErrorKind::TimedOut => CloseReason::TimedOut,
                io::ErrorKind::ConnectionRefused => CloseReason::Refused,
                _ => CloseReason::Io(e),
            },
        }
    }

    /// A protocol violation with a message for the log.
    pub fn protocol(msg: impl Into<Box<str>>) -> CloseReason {
        CloseReason::Protocol(msg.into())
    }

    /// The variant without its payload.
    pub fn kind(&self) -> CloseKind {
        match self {
            CloseReason::PeerClosed => CloseKind::PeerClosed,
            CloseReason::Reset => CloseKind::Reset,
            CloseReason::BrokenPipe => CloseKind::BrokenPipe,
            CloseReason::TimedOut => CloseKind::TimedOut,
            CloseReason::Unreachable => CloseKind::Unreachable,
            CloseReason::Refused => CloseKind::Refused,
            CloseReason::ConnectTimeout => CloseKind::ConnectTimeout,
            CloseReason::IdleTimeout => CloseKind::IdleTimeout,
            CloseReason::SlowConsumer => CloseKind::SlowConsumer,
            CloseReason::Protocol(_) => CloseKind::Protocol,
            CloseReason::Local => CloseKind::Local,
            CloseReason::Aborted => CloseKind::Aborted,
            CloseReason::Shutdown => CloseKind::Shutdown,
            CloseReason::Io(_) => CloseKind::Io,
            CloseReason::LinkClosed(_) => CloseKind::LinkClosed,
        }
    }

    /// Whether the connection ended in an orderly way (no error, no timeout, no violation).
    pub fn is_clean(&self) -> bool {
        matches!(
            self,
            CloseReason::PeerClosed | CloseReason::Local | CloseReason::Shutdown
        )
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("closed by peer"),
            CloseReason::Reset => f.write_str("reset by peer"),
            CloseReason::BrokenPipe => f.write_str("broken pipe"),
            CloseReason::TimedOut => f.write_str("timed out"),
            CloseReason::Unreachable => f.write_str("peer unreachable"),
            CloseReason::Refused => f.write_str("connection refused"),
            CloseReason::ConnectTimeout => f.write_str("connect timed out"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::SlowConsumer => f.write_str("slow consumer"),
            CloseReason::Protocol(msg) => write!(f, "protocol error: {msg}"),
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::Aborted => f.write_str("aborted locally"),
            CloseReason::Shutdown => f.write_str("reactor shut down"),
            CloseReason::Io(e) => write!(f, "I/O error: {e}"),
            CloseReason::LinkClosed(kind) => write!(f, "linked connection ended: {kind:?}"),
        }
    }
}

/// Errors of the reactor's own operations (as opposed to a connection's end).
#[derive(Debug)]
pub enum Error {
    /// A system call failed.
    Io(io::Error),
    /// The reactor has stopped; the value could not be delivered.
    Stopped,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Stopped => f.write_str("the reactor has stopped"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// The reactor's result type.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_maps_to_distinct_reasons() {
        let k = |errno| CloseReason::from_io(io::Error::from_raw_os_error(errno)).kind();
        assert_eq!(k(libc::ECONNRESET), CloseKind::Reset);
        assert_eq!(k(libc::EPIPE), CloseKind::BrokenPipe);
        assert_eq!(k(libc::ETIMEDOUT), CloseKind::TimedOut);
        assert_eq!(k(libc::EHOSTUNREACH), CloseKind::Unreachable);
        assert_eq!(k(libc::ENETUNREACH), CloseKind::Unreachable);
        assert_eq!(k(libc::ECONNREFUSED), CloseKind::Refused);
        assert_eq!(k(libc::EIO), CloseKind::Io);
    }

    #[test]
    fn kinds_are_in_declaration_order() {
        for (i, k) in CloseKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }
}
