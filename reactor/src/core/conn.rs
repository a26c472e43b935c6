//! The state the reactor keeps for one connection.

use std::fmt;
use std::rc::Rc;

use timers::{Tick, TimerKey};

use crate::core::WRITE_THROUGH_MIN;
use crate::outbuf::OutQueue;
use crate::transport::Stream;
use crate::{CloseReason, ConnConfig};

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

/// Where a connection is in its life. Each phase carries the timer that bounds it, so a
/// phase's timer cannot outlive the phase, and the transitions are the `match`es of the `core`
/// modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Outgoing, waiting for the connect verdict, bounded by the connect timeout. Output may be
    /// queued already and is sent once open.
    Connecting {
        timer: Option<TimerKey>,
        write: WriteHalf,
    },
    /// Established; input goes to the handler. `first_byte` is the first-byte timeout, armed
    /// until the first byte arrives.
    Open {
        first_byte: Option<TimerKey>,
        write: WriteHalf,
    },
    /// Graceful close: input is discarded, output is flushed, then `SHUT_WR` (`fin_sent`), then
    /// the peer's end of stream (or the linger timeout) ends it.
    Closing {
        linger: Option<TimerKey>,
        fin_sent: bool,
    },
    /// Finished: removed and reported at the end of the turn.
    Dead,
}

/// The sending half of a connection that is not closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteHalf {
    /// Writes are taken.
    Open,
    /// The handler asked for a half-close: FIN goes once the queued output is flushed.
    ShutRequested,
    /// FIN was sent (`shutdown(SHUT_WR)`).
    Shut,
}

/// A periodic handler timer plus a read-idle timeout (S13).
#[derive(Debug)]
pub(crate) struct Heartbeat {
    /// The wheel entry of the next beat.
    pub(super) key: TimerKey,
    pub(super) interval: std::time::Duration,
    pub(super) read_idle: std::time::Duration,
}

/// [`Conn::paused_by_user`]'s bit.
const PAUSED_BY_USER: u8 = 1;
/// [`Conn::paused_by_output`]'s bit.
const PAUSED_BY_OUTPUT: u8 = 2;
/// [`Conn::linked`]'s bit.
const LINKED: u8 = 4;
/// [`Conn::set_paused_by_link`]'s bit.
const PAUSED_BY_LINK: u8 = 8;
/// [`Conn::eof`]'s bit.
const EOF: u8 = 16;
/// [`Conn::carries_fds`]'s bit, fixed for the connection's life.
const CARRIES_FDS: u8 = 32;
/// Set while the phase is anything but open with writes taken and no first-byte timer
/// (`Phase::Open { first_byte: None, write: WriteHalf::Open }`), kept by
/// [`Conn::set_phase`] and [`Conn::update_phase`]: so that [`Conn::is_plain`], asked for
/// every message, tests the phase with the flags, in one byte.
const UNUSUAL_PHASE: u8 = 64;

/// The [`UNUSUAL_PHASE`] bit of a phase.
fn phase_bit(phase: &Phase) -> u8 {
    match phase {
        Phase::Open {
            first_byte: None,
            write: WriteHalf::Open,
        } => 0,
        _ => UNUSUAL_PHASE,
    }
}

/// One connection's slot.
pub(crate) struct Conn {
    /// The socket, behind the syscall seam.
    pub(super) stream: Stream,
    /// Generation of this slot's occupant (see [`ConnId`]).
    pub(super) generation: u32,
    /// Where the connection is in its life, with the data of that phase. Private, so that
    /// every change goes through [`set_phase`](Self::set_phase) or
    /// [`update_phase`](Self::update_phase), which keep [`UNUSUAL_PHASE`] in step.
    phase: Phase,
    /// Unconsumed input: only the tail of an unfinished frame. Empty (no allocation) otherwise.
    pub(super) input: InBuf,
    /// Output waiting for the kernel. Empty (no allocation) when idle.
    pub(super) output: OutQueue,
    /// Limits and timeouts, shared with the listener that accepted the connection.
    pub(super) config: Rc<ConnConfig>,
    /// What stops or diverts reading, one bit each ([`PAUSED_BY_USER`], [`PAUSED_BY_OUTPUT`],
    /// [`LINKED`], [`PAUSED_BY_LINK`], [`EOF`], [`CARRIES_FDS`]), and whether the phase is an
    /// unusual one ([`UNUSUAL_PHASE`]): in one byte, so that whether to read, asked before
    /// every read, is one test in the common case (none set).
    flags: u8,
    /// On the list of connections with traffic this turn (`Net::dirty`), which the end of the
    /// turn flushes and stamps: listed once however often it reads and writes.
    pub(super) dirty: bool,
    /// Both output limits are at least `WRITE_THROUGH_MIN`, so no small write to an empty
    /// queue can pass either (`Net::queue_small` then compares nothing). From the config the
    /// connection was made with: its output limits never change after.
    pub(super) small_writes_fit: bool,
    /// On the list of connections to serve next turn without waiting for an edge.
    pub(super) ready: bool,
    /// A client rejected at the connection limit, being told (S23): outside the limit's count
    /// and the close counters.
    pub(super) rejected: bool,
    /// The idle and write-stall timeouts in one lazily re-armed timer: when it fires it checks
    /// `last_activity` and the output queue's progress tick, and re-arms for whichever is due
    /// next, so traffic costs no timer operation.
    pub(super) watchdog: Option<TimerKey>,
    /// State few connections need, boxed so the others pay one pointer.
    pub(super) extras: Option<Box<Extras>>,
    /// When the connection was created.
    pub(super) created: Tick,
    /// Bytes received.
    pub(super) bytes_in: u64,
    /// Bytes the kernel accepted.
    pub(super) bytes_out: u64,
}

/// A connection's unconsumed input: one pointer while empty, which is nearly always (S25).
#[derive(Debug, Default)]
// The box is the point: an empty `Option<Box<_>>` is 8 bytes, a `Vec` 24, in every slot.
#[allow(clippy::box_collection)]
pub(crate) struct InBuf(Option<Box<Vec<u8>>>);

impl InBuf {
    pub(super) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |v| v.len())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Drops the kept bytes and their memory.
    pub(super) fn clear(&mut self) {
        self.0 = None;
    }

    pub(super) fn extend_from_slice(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.0
                .get_or_insert_with(Box::default)
                .extend_from_slice(data);
        }
    }

    /// Takes the kept bytes out (to offer them to the handler).
    pub(super) fn take(&mut self) -> Vec<u8> {
        self.0.take().map(|b| *b).unwrap_or_default()
    }

    /// Keeps `bytes` (nothing, and no allocation, if empty).
    pub(super) fn set(&mut self, bytes: Vec<u8>) {
        self.0 = (!bytes.is_empty()).then(|| Box::new(bytes));
    }
}

/// The rarely used part of a connection's state.
#[derive(Debug, Default)]
pub(crate) struct Extras {
    /// Why the connection is closing; the first reason given wins.
    pub(super) reason: Option<CloseReason>,
    /// Timers armed by the handler with their tags, cancelled when the connection ends.
    pub(super) user_timers: Vec<(TimerKey, u64)>,
    /// The application heartbeat.
    pub(super) heartbeat: Option<Heartbeat>,
    /// Last tick a byte was received (the heartbeat's read-idle check).
    pub(super) last_read: Tick,
    /// The connection this one is linked to (`core::link`), while `Conn::linked` is set.
    pub(super) link: Option<crate::ConnId>,
    /// Armed while queued output is above the soft output limit (S21).
    pub(super) soft_output: Option<TimerKey>,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("phase", &self.phase)
            .field("input", &self.input.len())
            .field("output", &self.output.len())
            .finish_non_exhaustive()
    }
}

impl Conn {
    pub(super) fn new(
        stream: Stream,
        generation: u32,
        phase: Phase,
        config: Rc<ConnConfig>,
        now: Tick,
    ) -> Self {
        let flags = if stream.carries_fds() { CARRIES_FDS } else { 0 } | phase_bit(&phase);
        Conn {
            stream,
            generation,
            phase,
            input: InBuf::default(),
            output: OutQueue::default(),
            small_writes_fit: config.soft_output.min(config.max_output) >= WRITE_THROUGH_MIN,
            config,
            flags,
            dirty: false,
            ready: false,
            rejected: false,
            watchdog: None,
            extras: None,
            created: now,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// The extras, created on first use.
    pub(super) fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// Puts the connection on `dirty`, the turn's list of connections with traffic
    /// (`Net::dirty`), unless it is there already; `index` is its slot's.
    #[inline]
    pub(super) fn list_traffic(&mut self, dirty: &mut Vec<usize>, index: usize) {
        if !self.dirty {
            self.dirty = true;
            dirty.push(index);
        }
    }

    /// Records why the connection ends, unless a reason was given before.
    pub(super) fn set_reason(&mut self, reason: CloseReason) {
        let extras = self.extras();
        if extras.reason.is_none() {
            extras.reason = Some(reason);
        }
    }

    /// The handler asked to stop reading.
    #[inline]
    pub(super) fn paused_by_user(&self) -> bool {
        self.flags & PAUSED_BY_USER != 0
    }

    /// Sets or clears [`paused_by_user`](Self::paused_by_user).
    #[inline]
    pub(super) fn set_paused_by_user(&mut self, on: bool) {
        if on {
            self.flags |= PAUSED_BY_USER;
        } else {
            self.flags &= !PAUSED_BY_USER;
        }
    }

    /// Output passed the high-water mark; reading stops until it drains below low water.
    #[inline]
    pub(super) fn paused_by_output(&self) -> bool {
        self.flags & PAUSED_BY_OUTPUT != 0
    }

    /// Sets or clears [`paused_by_output`](Self::paused_by_output).
    #[inline]
    pub(super) fn set_paused_by_output(&mut self, on: bool) {
        if on {
            self.flags |= PAUSED_BY_OUTPUT;
        } else {
            self.flags &= !PAUSED_BY_OUTPUT;
        }
    }

    /// Joined to another connection (`core::link`): input goes to the other's output, and this
    /// connection's own water marks pause the other's reading instead of its own.
    #[inline]
    pub(super) fn linked(&self) -> bool {
        self.flags & LINKED != 0
    }

    /// Sets or clears [`linked`](Self::linked).
    #[inline]
    pub(super) fn set_linked(&mut self, on: bool) {
        if on {
            self.flags |= LINKED;
        } else {
            self.flags &= !LINKED;
        }
    }

    /// Marks the connection linked, with the other connection's output above its high-water
    /// mark: reading stops until that output drains to its low-water mark (S21 across a link).
    #[inline]
    pub(super) fn set_paused_by_link(&mut self, on: bool) {
        if on {
            self.flags |= PAUSED_BY_LINK;
        } else {
            self.flags &= !PAUSED_BY_LINK;
        }
    }

    /// The transport can carry descriptors (a Unix-domain socket, S29): only then does a read
    /// ask for them. Asked of the transport once, so a TCP read pays nothing for descriptor
    /// passing; a flag bit, so that a plain connection's test covers it.
    #[inline]
    pub(super) fn carries_fds(&self) -> bool {
        self.flags & CARRIES_FDS != 0
    }

    /// The peer sent end of stream.
    #[inline]
    pub(super) fn eof(&self) -> bool {
        self.flags & EOF != 0
    }

    /// Sets or clears [`eof`](Self::eof).
    #[inline]
    pub(super) fn set_eof(&mut self, on: bool) {
        if on {
            self.flags |= EOF;
        } else {
            self.flags &= !EOF;
        }
    }

    /// Whether input should be read from the socket now.
    #[inline]
    pub(super) fn wants_read(&self) -> bool {
        match self.phase {
            // A linked connection's own output is fed by the other side, so its high water
            // pauses the other's reading, not its own (`paused_by_link` on the other).
            Phase::Open { .. } => {
                let f = self.flags;
                f == 0
                    || (f & (EOF | PAUSED_BY_USER | PAUSED_BY_LINK) == 0
                        && f & (PAUSED_BY_OUTPUT | LINKED) != PAUSED_BY_OUTPUT)
            }
            // A closing connection reads (and discards) until the peer's end of stream, so that
            // unread input never turns the final close into an RST (S14).
            Phase::Closing { .. } => !self.eof(),
            Phase::Connecting { .. } | Phase::Dead => false,
        }
    }

    /// Whether nothing about the connection asks more of a read than every message's path:
    /// open with writes taken, no first-byte timer, none of the read flags (pauses, link, end
    /// of stream, descriptor passing), no extras, no kept input. Then it
    /// [`wants_read`](Self::wants_read), [`accepts_writes`](Self::accepts_writes), and a read's
    /// bytes go straight to the handler. Computed from the state each time, so it cannot
    /// disagree with it; its tests are the cheap ones, one per part.
    #[inline]
    pub(super) fn is_plain(&self) -> bool {
        debug_assert_eq!(
            self.flags & UNUSUAL_PHASE,
            phase_bit(&self.phase),
            "{:?}",
            self.phase
        );
        // The phase's test is the flags' (`UNUSUAL_PHASE`).
        self.flags == 0 && self.extras.is_none() && self.input.is_empty()
    }

    /// Whether the connection is open with writes taken and nothing asks more of a flush than
    /// every message's: no pause by its output (no water mark to watch) and no extras (no
    /// soft-limit timer to cancel). Kept input and the other read flags do not matter here.
    #[inline]
    pub(super) fn is_plain_writer(&self) -> bool {
        self.flags & (UNUSUAL_PHASE | PAUSED_BY_OUTPUT) == 0 && self.extras.is_none()
    }

    /// Where the connection is in its life.
    #[inline]
    pub(super) fn phase(&self) -> Phase {
        self.phase
    }

    /// Moves the connection to `phase`.
    #[inline]
    pub(super) fn set_phase(&mut self, phase: Phase) {
        self.update_phase(|p| *p = phase);
    }

    /// Changes the phase's data in place through `f` (a timer taken out or set, the write
    /// half shut), keeping [`UNUSUAL_PHASE`] in step.
    #[inline]
    pub(super) fn update_phase<R>(&mut self, f: impl FnOnce(&mut Phase) -> R) -> R {
        let result = f(&mut self.phase);
        self.flags = (self.flags & !UNUSUAL_PHASE) | phase_bit(&self.phase);
        result
    }

    /// Whether queued output is above the high-water mark, so reading should wait for the
    /// flush (S21). A linked connection's output is the other direction's (`core::link`).
    #[inline]
    pub(super) fn above_high_water(&self) -> bool {
        self.output.len() > self.config.high_water && !self.linked()
    }

    /// Whether the handler may still queue output.
    #[inline]
    pub(super) fn accepts_writes(&self) -> bool {
        // The usual phase (open, writes taken) answers with the flags; every write asks.
        self.flags & UNUSUAL_PHASE == 0
            || matches!(
                self.phase,
                Phase::Open {
                    write: WriteHalf::Open,
                    ..
                } | Phase::Connecting {
                    write: WriteHalf::Open,
                    ..
                }
            )
    }

    #[inline]
    pub(super) fn is_connecting(&self) -> bool {
        matches!(self.phase, Phase::Connecting { .. })
    }

    #[inline]
    pub(super) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    #[inline]
    pub(super) fn is_dead(&self) -> bool {
        matches!(self.phase, Phase::Dead)
    }

    /// The phase's name, for snapshots.
    pub(super) fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Connecting { .. } => "connecting",
            Phase::Open { .. } => "open",
            Phase::Closing { .. } => "closing",
            Phase::Dead => "dead",
        }
    }

    /// The timer bounding the current phase, if armed.
    pub(super) fn phase_timer(&self) -> Option<TimerKey> {
        match self.phase {
            Phase::Connecting { timer, .. } => timer,
            Phase::Open { first_byte, .. } => first_byte,
            Phase::Closing { linger, .. } => linger,
            Phase::Dead => None,
        }
    }

    /// Takes the timer bounding the current phase out of it (to cancel it).
    pub(super) fn take_phase_timer(&mut self) -> Option<TimerKey> {
        self.update_phase(|phase| match phase {
            Phase::Connecting { timer, .. } => timer.take(),
            Phase::Open { first_byte, .. } => first_byte.take(),
            Phase::Closing { linger, .. } => linger.take(),
            Phase::Dead => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An open connection with nothing special about it, over a transport that reads nothing.
    fn plain_conn() -> Conn {
        let stream = Stream::Other(Box::new(crate::transport::Detached));
        let phase = Phase::Open {
            first_byte: None,
            write: WriteHalf::Open,
        };
        Conn::new(stream, 1, phase, Rc::new(ConnConfig::default()), 0)
    }

    /// `is_plain` stands for every test of a read's common path: when it holds, the tests it
    /// replaces pass, and each thing that asks more of a read makes it false.
    #[test]
    fn plain_means_every_read_check_passes() {
        let conn = plain_conn();
        assert!(conn.is_plain());
        assert!(conn.wants_read() && conn.accepts_writes() && conn.is_open());
        assert!(!conn.is_connecting() && !conn.linked() && conn.input.is_empty());

        let key = timers::Wheel::new().insert(10, ());
        let phases = [
            Phase::Open {
                first_byte: Some(key),
                write: WriteHalf::Open,
            },
            Phase::Open {
                first_byte: None,
                write: WriteHalf::ShutRequested,
            },
            Phase::Open {
                first_byte: None,
                write: WriteHalf::Shut,
            },
            Phase::Connecting {
                timer: None,
                write: WriteHalf::Open,
            },
            Phase::Closing {
                linger: None,
                fin_sent: false,
            },
            Phase::Dead,
        ];
        for phase in phases {
            let mut conn = plain_conn();
            conn.set_phase(phase);
            assert!(!conn.is_plain(), "{phase:?}");
            assert!(!conn.is_plain_writer(), "{phase:?}");
        }
        for bit in [
            PAUSED_BY_USER,
            PAUSED_BY_OUTPUT,
            LINKED,
            PAUSED_BY_LINK,
            EOF,
        ] {
            let mut conn = plain_conn();
            conn.flags = bit;
            assert!(!conn.is_plain(), "flag {bit}");
        }
        // Back to the usual phase, the connection is plain again.
        let mut conn = plain_conn();
        conn.set_phase(Phase::Open {
            first_byte: Some(key),
            write: WriteHalf::Open,
        });
        assert!(!conn.is_plain() && !conn.is_plain_writer());
        assert_eq!(conn.take_phase_timer(), Some(key));
        assert!(
            conn.is_plain() && conn.is_plain_writer(),
            "first-byte timer taken"
        );
        let mut conn = plain_conn();
        conn.flags = CARRIES_FDS;
        assert!(conn.wants_read(), "descriptor passing stops no read");
        let mut conn = plain_conn();
        conn.extras();
        assert!(!conn.is_plain(), "extras");
        let mut conn = plain_conn();
        conn.input.extend_from_slice(b"GET");
        assert!(!conn.is_plain(), "kept input");
    }

    /// The slot of an idle connection, with its handler's and its activity stamp's entries
    /// beside it, is the bulk of its memory (S25); keep it small.
    #[test]
    fn idle_connection_slot_stays_small() {
        let slot = std::mem::size_of::<crate::core::Source<()>>();
        let handler = std::mem::size_of::<Option<Box<dyn crate::Protocol<()>>>>();
        let stamp = std::mem::size_of::<timers::Tick>();
        let size = slot + handler + stamp;
        eprintln!(
            "slot {slot} handler {handler} activity {stamp} conn {} extras {} timer entry {}",
            std::mem::size_of::<super::Conn>(),
            std::mem::size_of::<super::Extras>(),
            std::mem::size_of::<crate::timer::TimerEntry>()
        );
        // 120 + 16 + 8 today: a slot that grows past a multiple of 8 is a choice to make here.
        assert!(size <= 144, "a connection slot grew to {size} bytes");
    }
}
