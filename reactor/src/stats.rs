//! Counters a reactor keeps about itself, for operators and tests.

use std::io;
use std::time::Duration;

use crate::CloseKind;

/// Accept errors, by errno. The first four are filtered silently (S5); the rest pause the
/// listener (S27).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AcceptErrors {
    /// `ECONNABORTED`: the client reset before `accept` (POSIX).
    pub aborted: u64,
    /// `EPROTO`: the same, as some systems report it.
    pub proto: u64,
    /// `EINTR`: a signal interrupted `accept`.
    pub interrupted: u64,
    /// `EPERM`: a firewall rule refused the connection.
    pub perm: u64,
    /// `EMFILE`: this process is out of descriptors.
    pub emfile: u64,
    /// `ENFILE`: the system is out of descriptors.
    pub enfile: u64,
    /// `ENOBUFS` / `ENOMEM`: the kernel is out of memory.
    pub nomem: u64,
    /// Anything else.
    pub other: u64,
}

impl AcceptErrors {
    pub(crate) fn count(&mut self, e: &io::Error) {
        let slot = match e.raw_os_error() {
            Some(libc::ECONNABORTED) => &mut self.aborted,
            Some(libc::EPROTO) => &mut self.proto,
            Some(libc::EINTR) => &mut self.interrupted,
            Some(libc::EPERM) => &mut self.perm,
            Some(libc::EMFILE) => &mut self.emfile,
            Some(libc::ENFILE) => &mut self.enfile,
            Some(libc::ENOBUFS) | Some(libc::ENOMEM) => &mut self.nomem,
            _ => &mut self.other,
        };
        *slot += 1;
    }
}

/// What a reactor has done since it started.
///
/// # Connections and rejected clients
/// Every accepted connection is in `accepted` and in `open` until it closes, then in `closed`,
/// so for a reactor that only accepts, `accepted = closed_total() + open` holds between turns
/// (outgoing and adopted connections are in `open` and then `closed` too, but not in
/// `accepted`). A client rejected
/// at the connection limit ([`AtLimit::Reject`](crate::AtLimit::Reject)) is not a connection:
/// it is counted once in `rejected` and, while its goodbye drains, in the gauge `rejecting`,
/// never in `accepted`, `open` or `closed`, as Redis keeps `rejected_connections` apart from
/// the clients it served. Descriptors held for clients are `open + rejecting`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: u64,
    /// Outgoing connections established.
    pub connected: u64,
    /// Connections open now, outgoing attempts in progress included (rejected clients being
    /// told are in `rejecting`).
    pub open: u64,
    /// Rejected clients being told now: their goodbye drains, then they close (at most a short
    /// linger). Not connections: not in `open`, not against the connection limit.
    pub rejecting: u64,
    /// Connections closed, indexed by [`CloseKind`] (`closed[kind as usize]`).
    pub closed: [u64; CloseKind::ALL.len()],
    /// Accept errors by errno.
    pub accept_errors: AcceptErrors,
    /// Pending connections accepted and closed at once because descriptors ran out, so their
    /// clients were told instead of left hanging.
    pub accept_shed: u64,
    /// Connections aborted because their output passed the hard cap.
    pub slow_consumers: u64,
    /// Connections aborted to keep the loop-wide output budget.
    pub budget_sheds: u64,
    /// Idle connections closed to admit new ones at the connection limit.
    pub idle_sheds: u64,
    /// Clients accepted at the connection limit only to get their goodbye and be closed
    /// ([`AtLimit::Reject`](crate::AtLimit::Reject)), counted when accepted. They are never
    /// `accepted`, `open` or `closed`; while being told they are in `rejecting`.
    pub rejected: u64,
    /// Output bytes queued across all connections now.
    pub queued_bytes: u64,
    /// Timers armed in the wheel (as of the end of the last turn).
    pub timers_armed: u64,
    /// UDP sockets open now, those draining in a graceful shutdown included (S30). They are
    /// not connections: never in `open`, `accepted` or `closed`.
    pub udp_sockets: u64,
    /// Datagrams received by every UDP socket, truncated ones included (the sum of their
    /// [`UdpStats::received`](crate::UdpStats::received), closed sockets' included).
    pub datagrams_in: u64,
    /// Datagrams the kernel took for sending from every UDP socket.
    pub datagrams_out: u64,
    /// Datagrams handed to a UDP send and never sent: a full queue, the drop policy, a send
    /// error, or still waiting when the socket closed (at the end of a shutdown's grace, say).
    pub datagrams_dropped: u64,
    /// Bytes received, on connections and UDP sockets.
    pub bytes_in: u64,
    /// Bytes the kernel accepted for sending, on connections and UDP sockets.
    pub bytes_out: u64,
    /// Loop turns.
    pub turns: u64,
    /// The longest time one turn spent on work (not waiting in poll).
    pub longest_turn: Duration,
}

impl Stats {
    /// Connections closed for one kind of reason.
    pub fn closed_by(&self, kind: CloseKind) -> u64 {
        self.closed[kind as usize]
    }

    /// Connections closed, all reasons.
    pub fn closed_total(&self) -> u64 {
        self.closed.iter().sum()
    }
}
