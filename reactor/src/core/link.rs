//! Linked connections: two connections joined so that the reactor itself moves every byte
//! read from one onto the other's output, with backpressure, end of stream and errors crossing
//! the link (S14, S21). A forwarder (a TCP proxy) is one `link` call between its client and its
//! upstream.
//!
//! # What a link does
//! - **Bytes**: input read from A is queued on B's output without calling A's handler (and
//!   the other way round). Nothing is kept in A's input buffer.
//! - **Backpressure**: when B's output passes its high-water mark, A stops reading; A reads
//!   again once B's output drains to its low-water mark. B's own reading is not paused by its
//!   own output (that is the other direction's business), so the two directions are
//!   independent and each holds at most its high-water mark plus one read (64 KiB) in memory,
//!   whatever the speeds of the two ends.
//! - **End of stream**: A's peer FIN becomes a half-close of B (`SHUT_WR` once everything A sent
//!   is flushed to B's peer). The pair is closed once both directions are done: both peers sent
//!   FIN and both FINs went out. Nothing is discarded on the way: unlike a graceful close, a
//!   half-close keeps reading.
//! - **Errors**: when one side ends before that (reset, timeout, refused or timed-out connect,
//!   a close by its handler), the other is closed gracefully with
//!   [`CloseReason::LinkClosed`] naming the kind of the first one's reason, so its handler sees
//!   why.
//!
//! Linked handlers hear `on_open`, `on_timer` and `on_close`; `on_data`, `on_eof`,
//! `on_high_water` and `on_drained` are the link's.
//!
//! # Implementation notes
//! The link is one bit in each `Conn` (`linked`, tested on the hot path) and the other's id in
//! the boxed extras. The reading, writing and closing modules each call here once: `forward`
//! from delivery, `link_water` from the flush's water-mark step, `link_eof` from end of stream,
//! `link_progress` after a half-close's FIN, `unlink` from `kill`.

use crate::core::conn::{Phase, WriteHalf};
use crate::core::write::Water;
use crate::core::{Net, Source};
use crate::{CloseReason, ConnId};

impl<App> Net<App> {
    /// Links `a` and `b` (see the module doc). Input either kept unconsumed is passed on at once,
    /// and an end of stream either already had becomes a half-close of the other. Returns
    /// `false` (and links nothing) if either does not exist, is closing, is already linked, or
    /// if they are the same connection.
    pub(crate) fn link(&mut self, a: ConnId, b: ConnId) -> bool {
        let linkable = |net: &Self, id: ConnId| {
            net.conn_ref(id).is_some_and(|c| {
                !c.linked() && matches!(c.phase(), Phase::Open { .. } | Phase::Connecting { .. })
            })
        };
        if a == b || !linkable(self, a) || !linkable(self, b) {
            return false;
        }
        for (this, other) in [(a, b), (b, a)] {
            if let Some(conn) = self.conn_mut(this) {
                conn.set_linked(true);
                conn.extras().link = Some(other);
            }
        }
        for (this, other) in [(a, b), (b, a)] {
            let kept = self
                .conn_mut(this)
                .map(|c| c.input.take())
                .unwrap_or_default();
            if !kept.is_empty() {
                self.forward(this.index as usize, &kept);
            }
            if self.conn_ref(this).is_some_and(|c| c.eof()) {
                self.request_shutdown_write(other);
            }
        }
        true
    }

    /// The connection linked to the one at `index`, if it is linked.
    fn linked_to(&mut self, index: usize) -> Option<ConnId> {
        let conn = self.conn_at(index)?;
        if !conn.linked() {
            return None;
        }
        conn.extras.as_ref()?.link
    }

    /// Queues input of a linked connection on the other's output and stops reading it if that
    /// output passed its high-water mark. Returns `false` if the connection is not linked (the
    /// handler gets the bytes).
    pub(super) fn forward(&mut self, index: usize, data: &[u8]) -> bool {
        let Some(other) = self.linked_to(index) else {
            return false;
        };
        // What the other's socket takes at once needs no copy into its queue.
        let data = &data[self.write_through(other, data)..];
        if data.is_empty() {
            return true;
        }
        // Refused only when the other no longer takes writes, which happens only once it is
        // closing (this side is then closed with it) or half-closed after this side's end of
        // stream (no more input comes).
        if self
            .queue(
                other,
                data,
                |d| d.len(),
                // What the socket did not take would most likely not go at the end of the
                // turn either: a queue of its own, not the turn buffer.
                |q, sp, d, now| q.push_copy(d, sp, now),
            )
            .is_err()
        {
            log::debug!("#{index}: {} bytes for closed link {other}", data.len());
            return true;
        }
        let over = self
            .conn_mut(other)
            .is_some_and(|c| c.output.len() > c.config.high_water);
        if over {
            // The flush of `other` hears the drain (`link_water`) and resumes this side.
            if let Some(c) = self.conn_mut(other) {
                c.set_paused_by_output(true);
            }
            if let Some(c) = self.conn_at(index) {
                c.set_paused_by_link(true);
            }
        }
        true
    }

    /// Writes `data` straight to `id`'s socket if nothing is queued before it, and returns
    /// how many bytes were sent (all of them if the write failed and killed the connection).
    ///
    /// Streaming through a link, the other side's queue is usually empty when a read arrives;
    /// copying each 64 KiB read into the queue only to write it out at the end of the turn
    /// costs an allocation and a copy per read, which is most of a forwarder's work besides
    /// the system calls. A write that the kernel takes only in part leaves the rest to be
    /// queued, and the flush then goes on as usual.
    fn write_through(&mut self, id: ConnId, data: &[u8]) -> usize {
        let index = id.index as usize;
        let conn = match self.sources.get_mut(index) {
            Some(Source::Conn(conn)) if conn.generation == id.generation => conn,
            _ => return 0,
        };
        if data.is_empty() || !conn.is_open() || !conn.accepts_writes() || !conn.output.is_empty() {
            return 0;
        }
        match conn.stream.write_vectored(&[std::io::IoSlice::new(data)]) {
            Ok(n) => {
                conn.bytes_out += n as u64;
                self.stats.bytes_out += n as u64;
                if n > 0 {
                    conn.list_traffic(&mut self.dirty, index);
                }
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => {
                let reason = CloseReason::from_io(e);
                log::debug!("write to #{index}: {reason}");
                self.kill(index, reason);
                data.len()
            }
        }
    }

    /// The flush of a linked connection crossed a water mark: pause or resume the other side,
    /// whose reading feeds this output. Returns what is left for the handler (nothing, if linked).
    pub(super) fn link_water(&mut self, index: usize, water: Water) -> Water {
        let Some(other) = self.linked_to(index) else {
            return water;
        };
        let (high, resume) = match water {
            Water::Same => return Water::Same,
            Water::High => (true, false),
            Water::Drained => (false, true),
        };
        if let Some(c) = self.conn_at(index) {
            c.set_paused_by_output(high);
        }
        if let Some(c) = self.conn_mut(other) {
            c.set_paused_by_link(high);
        }
        if resume {
            // Input may have queued in the kernel meanwhile, with no edge to announce it.
            self.mark_ready(other.index as usize);
        }
        Water::Same
    }

    /// End of stream on a linked connection: everything it sent is already on the other's
    /// output, so half-close the other (FIN once that output is flushed). Returns `false` if
    /// the connection is not linked (the handler hears `on_eof`).
    pub(super) fn link_eof(&mut self, index: usize) -> bool {
        let Some(other) = self.linked_to(index) else {
            return false;
        };
        self.request_shutdown_write(other);
        self.link_progress(index);
        true
    }

    /// A half-close moved on (a FIN went out, or an end of stream arrived): once both
    /// directions of the pair are done, close both. Both peers have sent FIN and both of ours
    /// are out, so the closes end at once, reporting [`CloseReason::PeerClosed`].
    pub(super) fn link_progress(&mut self, index: usize) {
        let Some(other) = self.linked_to(index) else {
            return;
        };
        let done = |net: &mut Self, i: usize| {
            net.conn_at(i).is_some_and(|c| {
                c.eof()
                    && matches!(
                        c.phase(),
                        Phase::Open {
                            write: WriteHalf::Shut,
                            ..
                        }
                    )
            })
        };
        let o = other.index as usize;
        if self.conn_mut(other).is_some() && done(self, index) && done(self, o) {
            self.close(index, CloseReason::Local);
            self.close(o, CloseReason::Local);
        }
    }

    /// The connection at `index` just ended (`kill`): undo the link and close the other side
    /// gracefully, telling it why.
    pub(super) fn unlink(&mut self, index: usize) {
        let Some(other) = self.linked_to(index) else {
            return;
        };
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        conn.set_linked(false);
        let kind = conn
            .extras
            .as_mut()
            .and_then(|x| {
                x.link = None;
                x.reason.as_ref().map(|r| r.kind())
            })
            .unwrap_or(crate::CloseKind::Local);
        let Some(peer) = self.conn_mut(other) else {
            return;
        };
        peer.set_linked(false);
        peer.set_paused_by_link(false);
        if let Some(x) = peer.extras.as_mut() {
            x.link = None;
        }
        // A pair that finished is already closing; `close` then keeps its first reason.
        self.close(other.index as usize, CloseReason::LinkClosed(kind));
    }
}
