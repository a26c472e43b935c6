//! A point-in-time view of a UDP socket, for operators, beside the connections'
//! [`ConnSnapshot`](crate::ConnSnapshot): UDP sockets are not connections, so they have a list
//! of their own ([`LoopCx::udp_sockets`](crate::LoopCx::udp_sockets)).

use std::fmt;
use std::net::SocketAddr;

use super::{UdpId, UdpStats};

/// One UDP socket as it stands.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UdpSnapshot {
    /// Its id.
    pub id: UdpId,
    /// The bound address.
    pub local: Option<SocketAddr>,
    /// The peer of a connected socket (`None` for a bound one).
    pub peer: Option<SocketAddr>,
    /// `open`, `draining` (a graceful shutdown sends what waits, then closes it) or `dead`.
    pub state: &'static str,
    /// Timers armed for it (the idle timeout and handler timers).
    pub timers: usize,
    /// Its counters, [`UdpStats::queued`] as of now.
    pub stats: UdpStats,
}

impl fmt::Display for UdpSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = |a: Option<SocketAddr>| a.map_or_else(|| "-".to_string(), |a| a.to_string());
        write!(
            f,
            "{:<10} {:<22} peer {:<22} {:<8} in {} out {} dropped {} truncated {} queued {} timers {}",
            format!("{:?}", self.id),
            addr(self.local),
            addr(self.peer),
            self.state,
            self.stats.received,
            self.stats.sent,
            self.stats.dropped,
            self.stats.truncated,
            self.stats.queued,
            self.timers
        )
    }
}
