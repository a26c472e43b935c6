//! Writing: queueing output on any connection, the end-of-turn flush with one gather write per
//! connection, and backpressure by the connection's own queue (S3, S15, S21).
//!
//! # Implementation notes
//! Output is only queued during a turn; the connection is marked dirty and flushed once at the
//! end of the turn (or on a writable edge), so a handler that writes many times costs one
//! `sendmsg`. A short write keeps the unsent tail in place. Above the high-water mark reading
//! pauses and the handler hears `on_high_water`; at or below low water reading resumes (through
//! the ready list, since no edge will come for input that queued meanwhile) and `on_drained`
//! runs. Past the hard output limit a connection is aborted at once; above the soft limit the
//! `timeouts` module's soft-output timer runs, cancelled when a flush brings the queue back
//! down. Once the queue is empty, the `close` module moves a pending FIN along.
//!
//! One exception to "queue, then flush at the end of the turn": a single write of at least
//! `WRITE_THROUGH_MIN` bytes to an open connection with nothing queued is written at once,
//! straight from the caller's slice (for an echo, the shared read buffer), and only the part
//! the kernel did not take is copied into the queue. Streaming a read at a time then costs no
//! copy and no allocation. Small writes never take this path, so many small writes of one turn
//! still leave in one gather write (S15); a large write costs the system call it would have
//! cost at the end of the turn, and nothing queued before it is overtaken.

use std::io::{self, IoSlice};
use std::os::fd::AsFd;

use timers::Tick;

use crate::core::conn::{Conn, Phase, WriteHalf};
use crate::core::{Core, Net};
use crate::outbuf::{Flushed, OutQueue, Spare};
use crate::sys;
use crate::transport::Stream;
use crate::{CloseReason, ConnId};

/// The smallest single write sent at once when nothing is queued (see the module's notes):
/// large enough that a handler's small writes of one turn are never split into several
/// system calls.
pub(crate) const WRITE_THROUGH_MIN: usize = 16 * 1024;

impl<App> Net<App> {
    pub(crate) fn mark_dirty(&mut self, index: usize) {
        if let Some(conn) = self.conn_at(index) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(index);
            }
        }
    }

    /// Queues a copy of a small write (below `WRITE_THROUGH_MIN`): every handler's reply
    /// passes here. Returns `false` if the connection does not exist or no longer takes writes.
    ///
    /// The common case is decided first, and all of it before anything changes: no loop-wide
    /// budget, an open connection with nothing queued, bytes that stay within both output
    /// limits (so neither the abort nor the soft-limit timer can follow) and fit the turn
    /// buffer. They become the connection's range of the turn buffer, copied last, so that
    /// nothing is kept in registers across the copy. Anything else takes
    /// [`queue`](Self::queue), out of line.
    #[inline(always)]
    pub(crate) fn queue_small(&mut self, id: ConnId, data: &[u8]) -> bool {
        debug_assert!(data.len() < WRITE_THROUGH_MIN);
        let index = id.index as usize;
        let len = data.len();
        let common = self.limits.output_budget.is_none() && len != 0;
        let Some(conn) = self.sources.conn_mut(index) else {
            return self.queue_small_slow(id, data);
        };
        if !(common
            && conn.generation == id.generation
            && conn.accepts_writes()
            && conn.output.is_empty()
            && (conn.small_writes_fit
                || (len <= conn.config.soft_output && len <= conn.config.max_output)))
        {
            return self.queue_small_slow(id, data);
        }
        if !conn.dirty {
            // A full list grows on the other path: no call (to grow it) on this one.
            if self.dirty.len() == self.dirty.capacity() {
                return self.queue_small_slow(id, data);
            }
            self.dirty.push(index);
            conn.dirty = true;
        }
        // Marked dirty without a range if the buffer is full: the other path queues the bytes
        // and finds it marked already.
        let Some((start, bytes)) = self.spare.turn.claim(len) else {
            return self.queue_small_slow(id, data);
        };
        self.queued_total += len;
        conn.output.start_turn(start, len);
        bytes.copy_from_slice(data);
        true
    }

    /// [`queue_small`](Self::queue_small) past its common case.
    #[inline(never)]
    fn queue_small_slow(&mut self, id: ConnId, data: &[u8]) -> bool {
        self.queue(
            id,
            data,
            |d| d.len(),
            |q, sp, d, now| q.push_slice(d, sp, now),
        )
        .is_ok()
    }

    /// Queues output on a connection through `push`, which returns the bytes then queued;
    /// the value comes back if the connection does not exist or no longer takes writes (it is
    /// then returned in `Err`).
    /// Passing the hard cap aborts the connection as a slow consumer; the bytes are then
    /// dropped with the rest of its output, and the call still succeeds.
    #[inline]
    pub(crate) fn queue<T>(
        &mut self,
        id: ConnId,
        value: T,
        len: impl FnOnce(&T) -> usize,
        push: impl FnOnce(&mut OutQueue, &mut Spare, T, Tick) -> usize,
    ) -> Result<(), T> {
        let now = self.now;
        let index = id.index as usize;
        let incoming = len(&value);
        // The loop-wide budget, if any, is enforced before the bytes are queued.
        if self.limits.output_budget.is_some() {
            match self.conn_mut(id) {
                Some(conn) if conn.accepts_writes() => {}
                _ => return Err(value),
            }
            if !self.make_room(index, incoming) {
                return Err(value);
            }
        }
        // One lookup of the slot for the rest: this is every write's path.
        let conn = match self.sources.conn_mut(index) {
            Some(conn) if conn.generation == id.generation => conn,
            _ => return Err(value),
        };
        if !conn.accepts_writes() {
            return Err(value);
        }
        // The queue remembers `now` as its progress tick when it becomes non-empty: stall time
        // counts from the moment output started waiting.
        let after = push(&mut conn.output, &mut self.spare, value, now);
        self.queued_total += incoming;
        if after > conn.config.max_output {
            self.stats.slow_consumers += 1;
            self.abort(index, CloseReason::SlowConsumer);
            return Ok(());
        }
        let over_soft = after > conn.config.soft_output;
        let newly_dirty = !conn.dirty;
        conn.dirty = true;
        if over_soft {
            self.track_soft_output(index);
        }
        if newly_dirty {
            self.dirty.push(index);
        }
        Ok(())
    }

    /// Queues a large write (at least `WRITE_THROUGH_MIN` bytes) on `id`, out of line: it
    /// goes out at once if nothing is queued, without a copy (see the module's notes), and
    /// only what the kernel did not take is queued. Returns `false` if the connection does not
    /// exist or no longer takes writes. (A method of its own rather than of the handler's
    /// context, so that a small write's path keeps the context in registers.)
    #[inline(never)]
    pub(crate) fn send_large(&mut self, id: ConnId, data: &[u8]) -> bool {
        match self.write_large_now(id, data) {
            Some(rest) => self
                .queue(
                    id,
                    rest,
                    |d| d.len(),
                    |q, sp, d, now| q.push_copy(d, sp, now),
                )
                .is_ok(),
            None => true,
        }
    }

    /// Writes `data` (at least `WRITE_THROUGH_MIN` bytes) to the connection `id` names at
    /// once if it is open and nothing is queued (see the module's notes). Returns the part still to queue, or
    /// `None` when nothing is left to do (all written, or a write error ended the connection:
    /// like an abort while queueing, the bytes are dropped with the connection).
    #[inline(never)]
    pub(crate) fn write_large_now<'d>(&mut self, id: ConnId, data: &'d [u8]) -> Option<&'d [u8]> {
        let index = id.index as usize;
        let conn = match self.sources.conn_mut(index) {
            Some(conn) if conn.generation == id.generation => conn,
            _ => return Some(data),
        };
        let open = matches!(
            conn.phase(),
            Phase::Open {
                write: WriteHalf::Open,
                ..
            }
        );
        if !open || !conn.output.is_empty() {
            return Some(data);
        }
        let written = match taken(conn.stream.write_vectored(&[IoSlice::new(data)])) {
            Ok(n) => n,
            Err(e) => {
                self.write_failed(index, e);
                return None;
            }
        };
        if written > 0 {
            conn.bytes_out += written as u64;
            self.stats.bytes_out += written as u64;
            conn.list_traffic(&mut self.dirty, index);
        }
        let rest = &data[written..];
        (!rest.is_empty()).then_some(rest)
    }

    /// Moves every range of the turn buffer still waiting into a queue of its own, then
    /// clears the buffer: at the end of a turn (what the settle rounds left on the dirty list)
    /// and at the start of one (writes made between turns), so a range never outlives the
    /// turn, and its tick, it was queued in.
    ///
    /// Every range waits on the dirty list: a write marks its connection dirty, and a flush
    /// that takes it off sends the range, moves what is left into a queue, or settles it
    /// (connecting). Only a dead connection keeps a stale range, which nothing sends.
    pub(crate) fn settle_turn_output(&mut self) {
        if !self.spare.turn_in_use() {
            return;
        }
        for &index in &self.dirty {
            if let Some(conn) = self.sources.conn_mut(index) {
                if !conn.is_dead() {
                    conn.output.settle(&mut self.spare, self.now);
                }
            }
        }
        self.spare.end_turn();
    }

    /// Writes what a connection has queued, in one lookup of its slot (which also takes it off
    /// the dirty list when `undirty`). Returns what the flush must decide next, or `None` if
    /// there is nothing to decide: the connection is not writable, a write error killed it, or
    /// (nearly every flush) the queue is empty, no water mark or soft limit was crossed and no
    /// FIN waits.
    #[inline(always)]
    fn write_out(&mut self, index: usize, undirty: bool) -> Option<AfterWrite> {
        let conn = self.sources.conn_mut(index)?;
        if undirty {
            conn.dirty = false;
        }
        // Nearly every flush: open and writable, nothing to look at after the write but the
        // bytes left (one test of the flags and one of the extras), and one range of the turn
        // buffer, which the kernel takes whole. Only that is decided here; anything else the
        // `send` returns goes on out of line.
        // (TCP only: `send`'s own return value is compared with the length, one test for
        // every outcome. Other transports take the general path below.)
        if conn.is_plain_writer() {
            if let (Some(bytes), Stream::Tcp(tcp)) =
                (conn.output.turn_bytes(&self.spare), &conn.stream)
            {
                let len = bytes.len();
                let sent = sys::send_raw(tcp.as_fd(), bytes);
                if sent == len as isize {
                    conn.output.turn_sent();
                    self.queued_total -= len;
                    conn.bytes_out += len as u64;
                    self.stats.bytes_out += len as u64;
                    if !undirty {
                        conn.list_traffic(&mut self.dirty, index);
                    }
                    return None;
                }
                let result = sys::send_outcome(tcp.as_fd(), bytes, sent);
                return self.turn_send_short(index, undirty, result);
            }
        }
        if !conn.is_plain_writer()
            && !matches!(conn.phase(), Phase::Open { .. } | Phase::Closing { .. })
        {
            // Connecting or dead, not flushed this turn: a connecting one keeps its bytes for
            // after the connect, out of the turn buffer (a dead one's are never sent, only
            // measured).
            conn.output.settle(&mut self.spare, self.now);
            return None;
        }
        // Bytes still queued after the flush: none unless the kernel took less than offered.
        let mut queued = 0;
        // Not asked first whether anything is queued: the flush asks (a range of the turn
        // buffer first, nearly every flush's), and an empty queue costs it only additions of 0.
        {
            let crate::core::conn::Conn { stream, output, .. } = conn;
            match output.flush(&mut self.spare, &self.now, |iov, fds| match (iov, fds) {
                ([one], []) => stream.send(one),
                (_, []) => stream.write_vectored(iov),
                _ => stream.write_with_fds(iov, fds),
            }) {
                Ok((flushed, written)) => {
                    self.queued_total -= written;
                    // Counted without a test: adding nothing is cheaper than asking.
                    conn.bytes_out += written as u64;
                    self.stats.bytes_out += written as u64;
                    // Listed for the stamp (see `Net::dirty`), unless the end of the turn is
                    // flushing it from its list, which it stamps after the flush.
                    if !undirty && written > 0 {
                        conn.list_traffic(&mut self.dirty, index);
                    }
                    if flushed == Flushed::Blocked {
                        queued = conn.output.len();
                    }
                }
                Err(e) => {
                    self.write_failed(index, e);
                    return None;
                }
            }
        }
        decide_after_write(conn, queued)
    }

    /// A write to the connection at `index` failed with `e`: it is killed with the reason.
    fn write_failed(&mut self, index: usize, e: io::Error) {
        let reason = CloseReason::from_io(e);
        log::debug!("write to #{index}: {reason}");
        self.kill(index, reason);
    }

    /// The end of [`write_out`](Self::write_out)'s fast path when the kernel did not take the
    /// whole range (`result` is what `send` returned): the rest moves into a queue of its own,
    /// or an error ends the connection.
    #[cold]
    #[inline(never)]
    fn turn_send_short(
        &mut self,
        index: usize,
        undirty: bool,
        result: io::Result<usize>,
    ) -> Option<AfterWrite> {
        let conn = self.sources.conn_mut(index)?;
        let written = match taken(result) {
            Ok(n) => n,
            Err(e) => {
                self.write_failed(index, e);
                return None;
            }
        };
        conn.output
            .turn_partly_sent(written, &mut self.spare, self.now);
        self.queued_total -= written;
        conn.bytes_out += written as u64;
        self.stats.bytes_out += written as u64;
        if !undirty && written > 0 {
            conn.list_traffic(&mut self.dirty, index);
        }
        let queued = conn.output.len();
        decide_after_write(conn, queued)
    }
}

/// A write's result with `WouldBlock` as nothing taken: bytes taken, or the error that ends
/// the connection.
fn taken(result: io::Result<usize>) -> io::Result<usize> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        other => other,
    }
}

/// What a flush that left `queued` bytes must still decide, or `None` if nothing (nearly
/// every flush: the queue is empty, no water mark or soft limit was crossed and no FIN
/// waits).
#[inline(always)]
fn decide_after_write(conn: &Conn, queued: usize) -> Option<AfterWrite> {
    // Asked again rather than kept across the write, which the flush does not change:
    // kept, the answers were spilled to the stack around every message's `send`.
    if queued == 0
        && (conn.is_plain_writer()
            || matches!(
                conn.phase(),
                Phase::Open {
                    write: WriteHalf::Open,
                    ..
                }
            ) && !conn.paused_by_output()
                && conn.extras.is_none())
    {
        // Water::Same, no soft-limit timer to cancel (it lives in the extras), nothing
        // waiting on the peer, no FIN pending.
        return None;
    }
    let config = &conn.config;
    let water = match (conn.is_open(), conn.paused_by_output()) {
        (true, false) if queued > config.high_water => Water::High,
        (true, true) if queued <= config.low_water => Water::Drained,
        _ => Water::Same,
    };
    let back_below_soft = queued <= config.soft_output
        && conn
            .extras
            .as_ref()
            .is_some_and(|x| x.soft_output.is_some());
    Some(AfterWrite {
        queued,
        back_below_soft,
        water,
        stall: config.write_stall_timeout.is_some(),
        // A FIN waits for the queue to empty (checked here: most flushes have none).
        fin_pending: matches!(
            conn.phase(),
            Phase::Closing { .. }
                | Phase::Open {
                    write: WriteHalf::ShutRequested,
                    ..
                }
        ),
    })
}

/// What a flush decides after writing.
struct AfterWrite {
    /// Bytes still queued.
    queued: usize,
    /// The output fell to the soft limit or below while its timer was armed.
    back_below_soft: bool,
    /// Whether the queue crossed a water mark.
    water: Water,
    /// The connection has a write-stall timeout.
    stall: bool,
    /// A half-close or graceful close waits for the queue to empty.
    fin_pending: bool,
}

/// A crossing of the water marks (S21).
pub(super) enum Water {
    Same,
    /// Above high water: stop reading.
    High,
    /// Back at or below low water: read again.
    Drained,
}

impl<App> Core<App> {
    /// Writes queued output, then applies the water marks and moves a close or half-close
    /// along.
    pub(crate) fn flush(&mut self, index: usize) {
        self.flush_as(index, false);
    }

    /// [`flush`](Self::flush) for the end of the turn: also takes the connection off the
    /// dirty list, in the same look-up of its slot.
    pub(crate) fn flush_dirty(&mut self, index: usize) {
        self.flush_as(index, true);
    }

    /// Flushes every connection of a dirty list taken off `Net::dirty`, taking each off the
    /// list. A function of its own, so the loop's registers are not shared with the rest of
    /// the end of the turn.
    #[inline(never)]
    pub(crate) fn flush_all(&mut self, dirty: &[usize]) {
        for &index in dirty {
            self.flush_dirty(index);
        }
    }

    /// Inlined into both: the end-of-turn flush is every message's path.
    #[inline(always)]
    fn flush_as(&mut self, index: usize, undirty: bool) {
        if let Some(after) = self.write_out(index, undirty) {
            self.after_write(index, after);
        }
    }

    /// What follows a write that crossed a mark, left output queued or had a FIN waiting:
    /// out of line, as few flushes get here.
    #[inline(never)]
    fn after_write(&mut self, index: usize, after: AfterWrite) {
        if after.back_below_soft {
            self.track_soft_output(index);
        }

        // Backpressure (S21): decided by our own queue, not by guessing kernel space.
        match self.link_water(index, after.water) {
            Water::Same => {}
            Water::High => {
                if let Some(conn) = self.conn_at(index) {
                    conn.set_paused_by_output(true);
                }
                self.call(index, |h, cx| h.on_high_water(cx));
            }
            Water::Drained => {
                if let Some(conn) = self.conn_at(index) {
                    conn.set_paused_by_output(false);
                }
                // Input may have queued up while paused, with no new edge to announce it.
                self.mark_ready(index);
                self.call(index, |h, cx| h.on_drained(cx));
            }
        }

        if after.queued > 0 {
            // Output is waiting on the peer: the watchdog must cover the write-stall deadline.
            if after.stall {
                self.arm_watchdog(index);
            }
            return;
        }
        if after.fin_pending {
            self.flushed(index);
        }
    }
}
