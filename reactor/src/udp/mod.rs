//! UDP sockets in the reactor (S30): a datagram source beside the stream connections.
//!
//! A bound socket ([`LoopCx::bind_udp`](crate::LoopCx::bind_udp)) hands every datagram and its
//! sender to a [`Datagrams`] handler, which replies with [`UdpCx::send_to`]. A connected socket
//! ([`LoopCx::connect_udp`](crate::LoopCx::connect_udp)) talks to one peer, and gets what only a
//! connected socket gets: the kernel's asynchronous errors. A datagram to a closed port brings
//! back an ICMP port unreachable, and the socket's next operation fails with `ECONNREFUSED`;
//! the reactor closes it with [`CloseReason::Refused`].
//!
//! # Reading
//! Each socket reads into its own buffer of [`UdpConfig::batch`] slots of
//! [`UdpConfig::max_datagram`] bytes (default 16 × 65,536: the largest UDP payload fits whole),
//! with one `recvmmsg` per batch, or one `recvmsg` per datagram with a batch of 1. A datagram
//! longer than its slot is cut by the kernel; the reactor sees `MSG_TRUNC`, counts it
//! ([`UdpStats::truncated`]), logs it at debug level and calls [`Datagrams::on_truncated`]
//! instead of `on_datagram`, so a cut datagram is never passed on as if whole. Reads are
//! bounded per turn (fairness): when the budget is spent the socket goes on the ready list and
//! is read again next turn without waiting for a new edge.
//!
//! # Sending
//! A send goes to the kernel at once, or, with [`UdpConfig::batch_sends`], the sends made while
//! a read batch is delivered go out together in one `sendmmsg` after it. When a send would
//! block (`EAGAIN`: the socket's send buffer
//! is full), the datagram is queued within [`UdpConfig::max_queued`] datagrams and
//! [`UdpConfig::max_queued_bytes`] bytes and sent, in order and with `sendmmsg`, when the socket
//! is writable again; past the bound, or always with [`SendPolicy::Drop`], it is dropped and
//! counted ([`UdpStats::dropped`]). Every datagram handed to a send is either sent whole, in
//! order, or counted as dropped.
//!
//! # Shutdown
//! A graceful shutdown ([`Reactor::shutdown`](crate::Reactor::shutdown), SIGINT or SIGTERM
//! with a grace) ends UDP sockets as it ends connections: from its start a socket reads and
//! delivers nothing and takes no new send (`NotConnected`); the datagrams already queued go
//! out as the kernel takes them, then the socket closes and its handler's `on_close` gets
//! [`CloseReason::Shutdown`], once. What is still queued when
//! the grace ends is dropped and counted; a socket bound once the shutdown began gets its
//! `on_open`, then drains at once. The loop's `run` returns once every connection and
//! every UDP socket has closed. [`Stats`](crate::Stats) counts the sockets open and the
//! datagrams in, out and dropped across them; [`LoopCx::udp_sockets`](crate::LoopCx::udp_sockets)
//! lists them.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::{CloseReason, TimerId};

mod cx;
pub(crate) mod queue;
mod snapshot;
pub(crate) mod socket;

pub use cx::UdpCx;
pub use snapshot::UdpSnapshot;

/// Names a UDP socket of one reactor; like [`ConnId`](crate::ConnId) it carries a generation,
/// so a stale id never reaches a later socket in the same slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl fmt::Debug for UdpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "udp#{}.{}", self.index, self.generation)
    }
}

/// What to do with a datagram the kernel cannot take now (`EAGAIN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SendPolicy {
    /// Queue it (within the bound) and send it when the socket is writable.
    #[default]
    Queue,
    /// Drop it and count it: for traffic where late is worse than lost.
    Drop,
}

/// What became of a datagram handed to a send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The kernel took it.
    Now,
    /// Queued behind others or because the kernel would block; sent in order later.
    Queued,
    /// Dropped and counted: the queue was full, or the policy is [`SendPolicy::Drop`].
    Dropped,
    /// Gathered with the other replies of the read batch being delivered, and sent with them
    /// in one `sendmmsg` once the batch is delivered ([`UdpConfig::batch_sends`]); if the
    /// kernel then would block, queued or dropped and counted as any send.
    Batched,
}

/// How a UDP socket reads, queues and times out.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UdpConfig {
    /// The largest datagram read whole; longer ones are truncated and reported.
    pub max_datagram: usize,
    /// Datagrams read per system call (`recvmmsg`); 1 reads with one `recvmsg` each.
    pub batch: usize,
    /// Batch reads per turn before the socket yields to others (fairness).
    pub reads_per_turn: usize,
    /// Most datagrams waiting for writability.
    pub max_queued: usize,
    /// Most bytes waiting for writability.
    pub max_queued_bytes: usize,
    /// What happens to a datagram the kernel cannot take now.
    pub policy: SendPolicy,
    /// Closes the socket with [`CloseReason::IdleTimeout`] after this long without a datagram
    /// in or out.
    pub idle_timeout: Option<Duration>,
    /// Gathers the datagrams sent while a read batch is delivered (the replies, typically) and
    /// sends them after the batch with one `sendmmsg` instead of one `sendto` each.
    pub batch_sends: bool,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            max_datagram: 65_536,
            batch: 16,
            reads_per_turn: 16,
            max_queued: 1024,
            max_queued_bytes: 1 << 20,
            policy: SendPolicy::Queue,
            idle_timeout: None,
            batch_sends: false,
        }
    }
}

impl UdpConfig {
    /// The defaults: 64 KiB datagrams, batches of 16, a queue of 1,024 datagrams or 1 MiB.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the largest datagram read whole (at least 1 byte).
    pub fn with_max_datagram(mut self, bytes: usize) -> Self {
        self.max_datagram = bytes.max(1);
        self
    }

    /// Sets the datagrams read per system call, 1 to
    /// [`MAX_BATCH`](crate::sys::MAX_BATCH); 1 reads with `recvmsg` instead of `recvmmsg`.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.clamp(1, crate::sys::MAX_BATCH);
        self
    }

    /// Sets the batch reads per turn (at least 1).
    pub fn with_reads_per_turn(mut self, reads: usize) -> Self {
        self.reads_per_turn = reads.max(1);
        self
    }

    /// Bounds the send queue by datagrams and bytes.
    pub fn with_queue(mut self, max_queued: usize, max_queued_bytes: usize) -> Self {
        self.max_queued = max_queued;
        self.max_queued_bytes = max_queued_bytes;
        self
    }

    /// Sets what happens to a datagram the kernel cannot take now.
    pub fn with_policy(mut self, policy: SendPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Gathers the replies of a read batch into one `sendmmsg` (see
    /// [`batch_sends`](Self::batch_sends)).
    pub fn with_batch_sends(mut self, on: bool) -> Self {
        self.batch_sends = on;
        self
    }

    /// Sets the idle timeout (`None`: none).
    pub fn with_idle_timeout(mut self, idle: Option<Duration>) -> Self {
        self.idle_timeout = idle;
        self
    }
}

/// A UDP socket's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UdpStats {
    /// Datagrams received, truncated ones included.
    pub received: u64,
    /// Bytes received (of truncated datagrams, what was read).
    pub bytes_received: u64,
    /// Datagrams the kernel took for sending.
    pub sent: u64,
    /// Bytes the kernel took for sending.
    pub bytes_sent: u64,
    /// Datagrams dropped: queue full, the drop policy, or a send error.
    pub dropped: u64,
    /// Datagrams longer than the read buffer, cut by the kernel and reported.
    pub truncated: u64,
    /// Send errors other than `EAGAIN` (each also counted in `dropped`).
    pub send_errors: u64,
    /// Receive errors other than `EAGAIN`.
    pub recv_errors: u64,
    /// Datagrams queued now.
    pub queued: u64,
    /// Receive system calls that returned datagrams.
    pub recv_calls: u64,
    /// Send system calls that the kernel took datagrams from (one per `sendto`, one per
    /// `sendmmsg` however many it took).
    pub send_calls: u64,
}

/// The handler of a UDP socket: datagrams in, replies through [`UdpCx::send_to`].
///
/// Callbacks run inside the loop, like [`Protocol`](crate::Protocol)'s: never concurrently, and
/// `on_close` exactly once for a socket that was opened.
pub trait Datagrams<App> {
    /// The socket is registered and ready.
    fn on_open(&mut self, cx: &mut UdpCx<'_, App>) {
        let _ = cx;
    }

    /// A whole datagram arrived from `from` (the connected peer on a connected socket).
    fn on_datagram(&mut self, cx: &mut UdpCx<'_, App>, data: &[u8], from: SocketAddr);

    /// A datagram longer than [`UdpConfig::max_datagram`] arrived and was cut: `head` is what
    /// was read, the rest is lost. Counted and logged whatever this does; ignored by default.
    fn on_truncated(&mut self, cx: &mut UdpCx<'_, App>, head: &[u8], from: SocketAddr) {
        let _ = (cx, head, from);
    }

    /// The socket's send queue emptied after a send had to wait.
    fn on_writable(&mut self, cx: &mut UdpCx<'_, App>) {
        let _ = cx;
    }

    /// An error that does not end the socket (on a bound socket: every error). Ignored by
    /// default (it is counted in [`UdpStats`]).
    fn on_error(&mut self, cx: &mut UdpCx<'_, App>, error: io::Error) {
        let _ = (cx, error);
    }

    /// A timer armed with [`UdpCx::set_timer`] fired.
    fn on_timer(&mut self, cx: &mut UdpCx<'_, App>, timer: TimerId) {
        let _ = (cx, timer);
    }

    /// The socket was closed: by the handler ([`CloseReason::Local`]), by the peer's ICMP error
    /// on a connected socket ([`CloseReason::Refused`], [`CloseReason::Unreachable`]), by
    /// the idle timeout, or by the reactor's shutdown ([`CloseReason::Shutdown`]: a graceful
    /// one sends what was queued within its grace first; no other callback runs once it began).
    fn on_close(&mut self, app: &mut App, reason: CloseReason) {
        let _ = (app, reason);
    }
}
