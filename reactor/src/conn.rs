//! The state the reactor keeps for one connection.

use std::fmt;
use std::rc::Rc;

use timers::{Tick, TimerKey};

use crate::outbuf::OutQueue;
use crate::stream::Stream;
use crate::{CloseReason, ConnConfig, Protocol};

/// Names a connection of one reactor. Carries a generation, so an id kept after its connection
/// closed never reaches a later connection that reused the slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl ConnId {
    /// The slot index (also the mio token).
    pub fn index(&self) -> usize {
        self.index as usize
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Outgoing, waiting for the connect verdict.
    Connecting,
    /// Established; input goes to the handler.
    Open,
    /// Graceful close: input is discarded, output is flushed, then `SHUT_WR`, then the peer's
    /// end of stream (or the linger timeout) ends it.
    Closing,
    /// Finished: removed and reported at the end of the turn.
    Dead,
}

/// A periodic handler timer plus a read-idle timeout (S13).
#[derive(Debug)]
pub(crate) struct Heartbeat {
    /// The wheel entry of the next beat.
    pub(crate) key: TimerKey,
    pub(crate) interval: std::time::Duration,
    pub(crate) read_idle: std::time::Duration,
}

/// One connection's slot.
pub(crate) struct Conn<App> {
    /// The protocol handler; `None` only while one of its callbacks runs.
    pub(crate) handler: Option<Box<dyn Protocol<App>>>,
    /// The socket, behind the syscall seam.
    pub(crate) stream: Stream,
    /// Generation of this slot's occupant (see [`ConnId`]).
    pub(crate) generation: u32,
    pub(crate) state: State,
    /// Unconsumed input: only the tail of an unfinished frame. Empty (no allocation) otherwise.
    pub(crate) input: InBuf,
    /// Output waiting for the kernel. Empty (no allocation) when idle.
    pub(crate) output: OutQueue,
    /// Limits and timeouts, shared with the listener that accepted the connection.
    pub(crate) config: Rc<ConnConfig>,
    /// The handler asked to stop reading.
    pub(crate) paused_by_user: bool,
    /// Output passed the high-water mark; reading stops until it drains below low water.
    pub(crate) paused_by_output: bool,
    /// The peer sent end of stream.
    pub(crate) eof: bool,
    /// We sent FIN (`shutdown(SHUT_WR)`); no more writes.
    pub(crate) write_shut: bool,
    /// The handler asked for a half-close once output is flushed.
    pub(crate) shut_requested: bool,
    /// On the list of connections to flush at the end of this turn.
    pub(crate) dirty: bool,
    /// On the list of connections to serve next turn without waiting for an edge.
    pub(crate) ready: bool,
    /// At least one byte arrived (the first-byte timeout is over).
    pub(crate) got_byte: bool,
    /// A graceful close has sent its FIN and armed the linger timeout.
    pub(crate) lingering: bool,
    /// The timer of the connection's current phase: connect timeout while connecting,
    /// first-byte timeout until the first byte, linger timeout while closing. The phases never
    /// overlap, so one slot serves all three.
    pub(crate) phase_timer: Option<TimerKey>,
    /// The idle and write-stall timeouts in one lazily re-armed timer: when it fires it checks
    /// `last_activity` and the output queue's progress tick, and re-arms for whichever is due
    /// next, so traffic costs no timer operation.
    pub(crate) watchdog: Option<TimerKey>,
    /// State few connections need, boxed so the others pay one pointer.
    pub(crate) extras: Option<Box<Extras>>,
    /// When the connection was created.
    pub(crate) created: Tick,
    /// Last tick with traffic either way.
    pub(crate) last_activity: Tick,
    /// Bytes received.
    pub(crate) bytes_in: u64,
    /// Bytes the kernel accepted.
    pub(crate) bytes_out: u64,
}

/// A connection's unconsumed input: one pointer while empty, which is nearly always (S25).
#[derive(Debug, Default)]
// The box is the point: an empty `Option<Box<_>>` is 8 bytes, a `Vec` 24, in every slot.
#[allow(clippy::box_collection)]
pub(crate) struct InBuf(Option<Box<Vec<u8>>>);

impl InBuf {
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |v| v.len())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Drops the kept bytes and their memory.
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }

    pub(crate) fn extend_from_slice(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.0
                .get_or_insert_with(Box::default)
                .extend_from_slice(data);
        }
    }

    /// Takes the kept bytes out (to offer them to the handler).
    pub(crate) fn take(&mut self) -> Vec<u8> {
        self.0.take().map(|b| *b).unwrap_or_default()
    }

    /// Keeps `bytes` (nothing, and no allocation, if empty).
    pub(crate) fn set(&mut self, bytes: Vec<u8>) {
        self.0 = (!bytes.is_empty()).then(|| Box::new(bytes));
    }
}

/// The rarely used part of a connection's state.
#[derive(Debug, Default)]
pub(crate) struct Extras {
    /// Why the connection is closing; the first reason given wins.
    pub(crate) reason: Option<CloseReason>,
    /// Timers armed by the handler with their tags, cancelled when the connection ends.
    pub(crate) user_timers: Vec<(TimerKey, u64)>,
    /// The application heartbeat.
    pub(crate) heartbeat: Option<Heartbeat>,
    /// Last tick a byte was received (the heartbeat's read-idle check).
    pub(crate) last_read: Tick,
}

impl<App> fmt::Debug for Conn<App> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("state", &self.state)
            .field("input", &self.input.len())
            .field("output", &self.output.len())
            .finish_non_exhaustive()
    }
}

impl<App> Conn<App> {
    pub(crate) fn new(
        handler: Box<dyn Protocol<App>>,
        stream: Stream,
        generation: u32,
        state: State,
        config: Rc<ConnConfig>,
        now: Tick,
    ) -> Self {
        Conn {
            handler: Some(handler),
            stream,
            generation,
            state,
            input: InBuf::default(),
            output: OutQueue::default(),
            config,
            paused_by_user: false,
            paused_by_output: false,
            eof: false,
            write_shut: false,
            shut_requested: false,
            dirty: false,
            ready: false,
            got_byte: false,
            lingering: false,
            phase_timer: None,
            watchdog: None,
            extras: None,
            created: now,
            last_activity: now,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// The extras, created on first use.
    pub(crate) fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// Records why the connection ends, unless a reason was given before.
    pub(crate) fn set_reason(&mut self, reason: CloseReason) {
        let extras = self.extras();
        if extras.reason.is_none() {
            extras.reason = Some(reason);
        }
    }

    /// Whether input should be read from the socket now.
    pub(crate) fn wants_read(&self) -> bool {
        match self.state {
            State::Open => !self.eof && !self.paused_by_user && !self.paused_by_output,
            // A closing connection reads (and discards) until the peer's end of stream, so that
            // unread input never turns the final close into an RST (S14).
            State::Closing => !self.eof,
            State::Connecting | State::Dead => false,
        }
    }

    /// Whether the handler may still queue output.
    pub(crate) fn accepts_writes(&self) -> bool {
        matches!(self.state, State::Open | State::Connecting)
            && !self.write_shut
            && !self.shut_requested
    }
}

#[cfg(test)]
mod tests {
    /// The slot of an idle connection is the bulk of its memory (S25); keep it small.
    #[test]
    fn idle_connection_slot_stays_small() {
        let size = std::mem::size_of::<crate::core::Source<()>>();
        eprintln!(
            "slot {size} conn {} extras {} timer entry {}",
            std::mem::size_of::<super::Conn<()>>(),
            std::mem::size_of::<super::Extras>(),
            std::mem::size_of::<crate::timer::TimerEntry>()
        );
        assert!(size <= 160, "a connection slot grew to {size} bytes");
    }
}
