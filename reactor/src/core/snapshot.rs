//! A point-in-time view of every connection, for operators (e.g. printed on SIGUSR1).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::core::{Net, Source};
use crate::ConnId;

/// One connection as it stands.
#[derive(Clone, Debug)]
pub struct ConnSnapshot {
    /// Its id.
    pub id: ConnId,
    /// The peer's address (`None` while connecting or if the socket already failed).
    pub peer: Option<SocketAddr>,
    /// Time since the connection was created.
    pub age: Duration,
    /// Time since the last traffic either way.
    pub idle: Duration,
    /// Output bytes queued and not yet accepted by the kernel.
    pub queued: usize,
    /// Input bytes kept for an unfinished frame.
    pub buffered: usize,
    /// Whether reading is paused (by the handler or by backpressure).
    pub paused: bool,
    /// `connecting`, `open`, `closing` or `dead`.
    pub state: &'static str,
    /// Timers armed for it (reactor timeouts and handler timers).
    pub timers: usize,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
}

/// One connection's counters, read by id from any context
/// ([`LoopCx::conn_stats`](crate::LoopCx::conn_stats)): cheaper than a whole
/// [`ConnSnapshot`] of every connection, for a handler that watches another connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnStats {
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes the kernel accepted.
    pub bytes_out: u64,
    /// Output bytes queued and not yet accepted by the kernel.
    pub queued: usize,
    /// Time since the connection was created, on the reactor's clock (whole milliseconds).
    pub age: Duration,
    /// Time since the last traffic either way (whole milliseconds; activity is stamped once per
    /// turn, after the turn's transfers).
    pub idle: Duration,
    /// Whether reading is paused (by a handler or by backpressure).
    pub paused: bool,
}

impl fmt::Display for ConnSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let peer = self.peer.map_or_else(|| "-".to_string(), |p| p.to_string());
        write!(
            f,
            "{:<10} {:<22} {:<10} age {:>8.1}s idle {:>8.1}s queued {:>8} buffered {:>8}{} timers {} in {} out {}",
            self.id.to_string(),
            peer,
            self.state,
            self.age.as_secs_f64(),
            self.idle.as_secs_f64(),
            self.queued,
            self.buffered,
            if self.paused { " paused" } else { "" },
            self.timers,
            self.bytes_in,
            self.bytes_out
        )
    }
}

impl<App> Net<App> {
    /// The counters of the connection `id` names, if it still exists.
    pub(crate) fn conn_stats(&self, id: ConnId) -> Option<ConnStats> {
        let c = self.conn_ref(id)?;
        let last_activity = self.last_activity(id.index as usize);
        let now = self.clock.now();
        let ms = |t: u64| Duration::from_millis(now.saturating_sub(t));
        Some(ConnStats {
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            queued: c.output.len(),
            age: ms(c.created),
            idle: ms(last_activity),
            paused: c.paused_by_user() || c.paused_by_output(),
        })
    }

    /// Snapshots every connection.
    pub(crate) fn snapshot(&self) -> Vec<ConnSnapshot> {
        let now = self.clock.now();
        let ms = |t: u64| Duration::from_millis(now.saturating_sub(t));
        self.sources
            .iter()
            .filter_map(|(index, source)| match source {
                Source::Conn(c) => Some(ConnSnapshot {
                    id: ConnId {
                        index: index as u32,
                        generation: c.generation,
                    },
                    peer: c.stream.peer_addr().ok(),
                    age: ms(c.created),
                    idle: ms(self.last_activity(index)),
                    queued: c.output.len(),
                    buffered: c.input.len(),
                    paused: c.paused_by_user() || c.paused_by_output(),
                    state: c.phase_name(),
                    timers: Net::<App>::conn_timers(c),
                    bytes_in: c.bytes_in,
                    bytes_out: c.bytes_out,
                }),
                _ => None,
            })
            .collect()
    }
}
