//! Reading and delivery: the read loop with its per-turn budget, handing bytes to the handler
//! (from the shared scratch buffer, keeping only an unfinished frame's tail), and the peer's end
//! of stream (S3, S11, S16, S25).
//!
//! # Implementation notes
//! With edge-triggered readiness a connection is read until `WouldBlock`, a short read, a pause,
//! or its share of the turn (`READ_BYTES_PER_TURN`); in the last case it goes on the ready
//! list, because no new edge will announce what is still queued. A pass starts with a read of
//! `READ_SIZE` and takes the whole shared buffer (`READ_SIZE_MAX`) only after a full read and
//! where the handler can write it all back at once (nothing queued, not linked: the
//! write-through of `write.rs`), so that a read adds at most `READ_SIZE` to a queue (S21).
//! A read lists its connection on the turn's dirty list, and activity is stamped with the
//! clock read after the turn's flush (rounded up, see `Net::stamp_flushed`), not with the
//! turn's start: a byte that arrives after the turn began must not shorten the idle timeout
//! counted from it.
//!
//! Every message's read (an event that says only "input", on a plain TCP connection, and a
//! read that does not fill `READ_SIZE`) is decided in line by `serve_event` from the event
//! and `recv`'s own return value; everything else, including what that read returns when it
//! is not a message, goes through the general loop of `serve_conn`, which handles every case.

use std::io;
use std::os::fd::AsFd;

use crate::core::conn::Phase;
use crate::core::{Core, Net, ReadBuf, READ_BYTES_PER_TURN, READ_SIZE, READ_SIZE_MAX};
use crate::sys;
use crate::transport::{Readiness, Stream};
use crate::{CloseReason, ConnId, Cx};

impl<App> Net<App> {
    /// The handler stops reading from `id` until [`resume_reading`](Self::resume_reading).
    /// Returns whether the connection exists.
    pub(crate) fn pause_reading(&mut self, id: ConnId) -> bool {
        let Some(conn) = self.conn_mut(id) else {
            return false;
        };
        conn.set_paused_by_user(true);
        true
    }

    /// Resumes reading from `id`. Input kept while paused, and whatever queued in the kernel
    /// meanwhile, is served from the ready list: no edge will announce it.
    pub(crate) fn resume_reading(&mut self, id: ConnId) -> bool {
        let Some(conn) = self.conn_mut(id) else {
            return false;
        };
        if conn.paused_by_user() {
            conn.set_paused_by_user(false);
            self.mark_ready(id.index as usize);
        }
        true
    }
}

impl<App> Core<App> {
    /// Reads from a connection until `WouldBlock`, end of stream, a pause, or the per-turn
    /// budget, without stopping at a short read (its callers, the ready list, have no new edge
    /// coming).
    pub(crate) fn read(&mut self, index: usize, scratch: &mut ReadBuf) {
        self.serve_conn(index, None, scratch);
    }

    /// Serves a poller's event on `index`. Returns `false` if `index` is not a connection.
    ///
    /// Every message's case is decided here, in line, before anything else: input and nothing
    /// else to hear (no end of stream, no error, and a writable edge only with nothing queued),
    /// on a plain connection (see `Conn::is_plain`) over TCP, and a read shorter than
    /// `READ_SIZE`, so nothing more waits. Its bytes go straight to the handler. Whatever else
    /// the read returns (end of stream, an error, a full buffer) goes on out of line, and any
    /// other event takes [`serve_conn`](Self::serve_conn).
    #[inline(always)]
    pub(crate) fn serve_event(
        &mut self,
        index: usize,
        event: &mio::event::Event,
        scratch: &mut ReadBuf,
    ) -> bool {
        if let Some(conn) = self.net.sources.conn_mut(index) {
            let plain_read = event.is_readable()
                && !event.is_read_closed()
                && !event.is_error()
                && conn.is_plain()
                && (!event.is_writable() || conn.output.is_empty());
            if plain_read {
                if let Stream::Tcp(tcp) = &conn.stream {
                    let got = sys::recv_raw(tcp.as_fd(), &mut scratch[..READ_SIZE]);
                    if got > 0 && got < READ_SIZE as isize {
                        let n = got as usize;
                        // As in the read loop below: counted, listed for the stamp, delivered.
                        conn.bytes_in += n as u64;
                        self.net.stats.bytes_in += n as u64;
                        conn.list_traffic(&mut self.net.dirty, index);
                        let generation = conn.generation;
                        self.deliver_plain(index, generation, &scratch[..n]);
                    } else {
                        self.plain_read_other(index, got, scratch);
                    }
                    return true;
                }
            }
        }
        self.serve_conn(index, Some(Readiness::from(event)), scratch)
    }

    /// What follows [`serve_event`](Self::serve_event)'s read when it was not every message's
    /// (`got` is what `recv` returned): end of stream, an error (`errno`, read first), or a
    /// full read, delivered by the read loop, which goes on reading.
    #[inline(never)]
    fn plain_read_other(&mut self, index: usize, got: isize, scratch: &mut ReadBuf) {
        if got < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => {}
                // Nothing was read, and no edge will come for what waits: read again.
                io::ErrorKind::Interrupted => self.read(index, scratch),
                _ => self.read_failed(index, e),
            }
            return;
        }
        if got == 0 {
            self.on_eof(index);
            return;
        }
        // Readable and nothing else, as the event said; the read is made.
        let ready = Readiness {
            readable: true,
            writable: false,
            read_closed: false,
            error: false,
        };
        self.serve_conn_from(index, Some(ready), scratch, Some(got as usize));
    }

    /// A read from the connection at `index` failed with `e`: it is killed with the reason.
    fn read_failed(&mut self, index: usize, e: io::Error) {
        let reason = CloseReason::from_io(e);
        log::debug!("read from #{index}: {reason}");
        self.kill(index, reason);
    }

    /// Serves a connection's readiness: `ready` from the poller, or `None` for the ready list
    /// (read everything: no edge will come). With the poller's readiness it first settles a
    /// connect or flushes on writability, then reads until `WouldBlock`, end of stream, a
    /// pause, or the per-turn budget. Returns `false` if `index` is not a connection.
    ///
    /// Every event that is not every message's ([`serve_event`](Self::serve_event)) and every
    /// read of the ready list begins here: the slot is looked up once for the checks and the
    /// first read (and again only after something that may have changed it: a callback, a
    /// connect, a flush).
    #[inline(always)]
    pub(crate) fn serve_conn(
        &mut self,
        index: usize,
        ready: Option<Readiness>,
        scratch: &mut ReadBuf,
    ) -> bool {
        self.serve_conn_from(index, ready, scratch, None)
    }

    /// [`serve_conn`](Self::serve_conn), where `first` is the length of a read already made
    /// into `scratch` (of `READ_SIZE`, on a plain connection), taken as the loop's first.
    #[inline(always)]
    fn serve_conn_from(
        &mut self,
        index: usize,
        ready: Option<Readiness>,
        scratch: &mut ReadBuf,
        mut first: Option<usize>,
    ) -> bool {
        let Some(mut conn) = self.net.sources.conn_mut(index) else {
            return false;
        };
        // The peer's FIN or an error is already reported (or no edge will come at all): read
        // to the end instead of stopping at a short read.
        let mut drain_all = true;
        // The common case answers every question below at once (see `is_plain`): the
        // connection is open with writes taken, it reads, and its bytes go straight to the
        // handler. Asked again whenever the slot may have changed.
        let mut plain = conn.is_plain();
        if let Some(ready) = ready {
            drain_all = ready.read_closed || ready.error;
            let readable = ready.readable || drain_all;
            let connecting = !plain && conn.is_connecting();
            // Most edges say "writable" while nothing waits: only a queue or a pending FIN
            // gives the flush work (asked first: nearly always there is none).
            if connecting
                || (!conn.output.is_empty() || !(plain || conn.accepts_writes())) && ready.writable
            {
                self.serve_write_edge(index, connecting);
                if !readable {
                    return true;
                }
                // The slot again, after the connect's verdict or the flush.
                conn = match self.net.sources.conn_mut(index) {
                    Some(conn) if !connecting || conn.is_open() => conn,
                    _ => return true,
                };
                plain = conn.is_plain();
            } else if !readable {
                return true;
            }
        }
        // What this connection may still read this turn (fairness): each read is charged its
        // length, but at least `READ_SIZE`, so short reads too are bounded in number.
        let mut left = READ_BYTES_PER_TURN;
        // The first read of a pass takes `READ_SIZE`: nearly every pass ends with it (a message
        // smaller than that), and a fixed size keeps that path short. Only a read that filled
        // it makes the next one larger (below), as an adaptive receive buffer grows.
        let mut size = READ_SIZE;
        loop {
            if !plain && !conn.wants_read() {
                return true;
            }
            let buf = &mut scratch[..size];
            // Descriptors (S29) arrive only on a Unix connection, into a list kept for them.
            let result = if let Some(n) = first.take() {
                Ok(n)
            } else if !plain && conn.carries_fds() {
                conn.stream.read_with_fds(buf, &mut self.net.fds_in)
            } else {
                conn.stream.read(buf)
            };
            let n = match result {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) => {
                    self.read_failed(index, e);
                    return true;
                }
            };
            if n == 0 {
                self.on_eof(index);
                return true;
            }
            // With edge-triggered readiness a short read means the queue was empty a moment
            // ago, and any byte arriving later raises a new edge: one recv saved per message.
            // (Decided before the delivery, so that `size` is not kept across the callback.)
            let short = n < size && !drain_all;
            // Counted here; the activity is stamped once the turn's reads are done.
            conn.bytes_in += n as u64;
            self.net.stats.bytes_in += n as u64;
            // Listed for the stamp at the end of the turn (see `Net::dirty`); an answer written
            // in the callback then finds it listed.
            conn.list_traffic(&mut self.net.dirty, index);
            if plain {
                let generation = conn.generation;
                self.deliver_plain(index, generation, &scratch[..n]);
            } else {
                // A byte ends the first-byte timeout, the open phase's timer (a closing
                // connection's timer is its linger timeout, which stays).
                let first_byte = matches!(
                    conn.phase(),
                    Phase::Open {
                        first_byte: Some(_),
                        ..
                    }
                );
                if conn.extras.is_some() {
                    self.net.touched_reads.push(index);
                }
                let with_fds = conn.carries_fds() && !self.net.fds_in.is_empty();
                if first_byte {
                    self.end_phase_timer(index);
                }
                if with_fds {
                    let fds = std::mem::take(&mut self.net.fds_in);
                    self.deliver_fds(index, fds);
                }
                self.deliver(index, &scratch[..n]);
            }
            if short {
                return true;
            }
            // The slot again for the next read: the callback may have changed it.
            conn = match self.net.sources.conn_mut(index) {
                Some(conn) => conn,
                None => return true,
            };
            // Backpressure as soon as a read's output passes the high-water mark, not only at
            // the end-of-turn flush: the ready list resumes reading if the flush drains it.
            // (After a short read no read follows, and the flush applies the water marks.)
            if conn.above_high_water() {
                self.mark_ready(index);
                return true;
            }
            plain = conn.is_plain();
            left = left.saturating_sub(n.max(READ_SIZE));
            if left == 0 {
                break;
            }
            // A large read only into an empty queue, and never on a link, whose reads go to
            // the other connection's queue (`core::link`).
            size = if conn.output.is_empty() && !conn.linked() {
                READ_SIZE_MAX
            } else {
                READ_SIZE
            }
            .min(left);
        }
        // Budget spent with data perhaps still queued: no new edge will come for it.
        self.mark_ready(index);
        true
    }

    /// Hands a plain connection's read to its handler: what `deliver` does in its common
    /// case, without looking the slot up again (`generation` is the connection's). A handler
    /// whose callback is running (never the case from the loop) drops the bytes, as in
    /// `deliver`.
    #[inline(always)]
    fn deliver_plain(&mut self, index: usize, generation: u32, data: &[u8]) {
        let id = ConnId {
            index: index as u32,
            generation,
        };
        if let Some(mut handler) = self.net.handlers.get_mut(index).and_then(Option::take) {
            let n = data.len();
            let consumed = handler.on_data(&mut Cx::new(self, id), data);
            self.put_handler(index, handler);
            if consumed < n || !self.net.replacements.is_empty() {
                // A handler that claims more than it was given consumed it all.
                self.after_read_delivery(index, &data[consumed.min(n)..]);
            }
        }
    }

    /// The connect verdict or the flush a writable edge asks for, before the edge's read.
    /// Out of line: inlined, the flush's registers were spilled on every message's path.
    #[inline(never)]
    fn serve_write_edge(&mut self, index: usize, connecting: bool) {
        if connecting {
            self.finish_connect(index);
        } else {
            self.flush(index);
        }
    }

    /// Hands bytes to the handler: the kept tail of an unfinished frame followed by `new`.
    /// Keeps what the handler did not consume, within the input limit (S11, S16).
    pub(crate) fn deliver(&mut self, index: usize, new: &[u8]) {
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        if !conn.is_open() {
            return;
        }
        if conn.linked() {
            self.forward(index, new);
            return;
        }
        if conn.input.is_empty() {
            if new.is_empty() {
                return;
            }
            // Nothing kept: the handler reads straight from `new` (the read loop has its own
            // copy of this for fresh reads).
            let id = ConnId {
                index: index as u32,
                generation: conn.generation,
            };
            let (consumed, swaps) = self.offer(index, id, new);
            if consumed < new.len() {
                self.keep_unconsumed(index, &new[consumed..], swaps);
            }
            return;
        }
        let id = ConnId {
            index: index as u32,
            generation: conn.generation,
        };
        conn.input.extend_from_slice(new);
        let input = conn.input.take();
        let (consumed, swaps) = self.offer(index, id, &input);
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        if conn.is_open() && consumed < input.len() {
            let mut input = input;
            input.drain(..consumed);
            conn.input.set(input);
        }
        self.after_delivery(index, swaps);
    }

    /// Runs the handler's `on_data` on `data`, then installs a successor it asked for (what
    /// [`Core::call`] does after every callback). Returns what it consumed (all of `data` if
    /// its callback is already running) and the count of replacements just before the
    /// installation: only that installation can replace this connection's handler (it is out
    /// of its slot while it runs), so a later comparison with the count says whether it did,
    /// whatever other connections' handlers were replaced in callbacks nested in this one.
    fn offer(&mut self, index: usize, id: ConnId, data: &[u8]) -> (usize, u64) {
        let Some(mut handler) = self.take_handler(index) else {
            return (data.len(), self.net.swaps());
        };
        let consumed = handler.on_data(&mut Cx::new(self, id), data);
        self.put_handler(index, handler);
        let swaps = self.net.swaps();
        self.install_replacement(index, id);
        (consumed.min(data.len()), swaps)
    }

    /// What follows a read's delivery straight to the handler when the handler asked for a
    /// successor or left bytes unconsumed (`rest`, an unfinished frame's start): the successor
    /// takes over, then the bytes are kept. The connection's id is read from its slot again
    /// (a slot outlives every callback) rather than kept across the callback by every message.
    /// The count of replacements is read here too, before the successor is installed: only
    /// that installation can replace this connection's handler (it is out of its slot while
    /// it runs), so replacements of other connections' handlers in nested callbacks are not
    /// mistaken for this one's.
    /// Cold: marked so, the test that leads here is a branch the common case skips.
    #[cold]
    #[inline(never)]
    fn after_read_delivery(&mut self, index: usize, rest: &[u8]) {
        let swaps = self.net.swaps();
        let Some(id) = self.id_at(index) else {
            return;
        };
        self.install_replacement(index, id);
        if !rest.is_empty() {
            self.keep_unconsumed(index, rest, swaps);
        }
    }

    /// Keeps what the handler left of bytes offered straight from the read (an unfinished
    /// frame's start), then does what follows every delivery.
    fn keep_unconsumed(&mut self, index: usize, rest: &[u8], swaps: u64) {
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        if conn.is_open() {
            conn.input.extend_from_slice(rest);
        }
        self.after_delivery(index, swaps);
    }

    /// After a delivery that left input kept: offers it to a handler that replaced the one
    /// called (`swaps` is the count of replacements before the call), or closes the
    /// connection if it is over the input limit.
    fn after_delivery(&mut self, index: usize, swaps: u64) {
        let swapped = self.net.swaps() != swaps;
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        // The handler was replaced during the call: what it left unconsumed is the new
        // protocol's first input, offered now because no new edge will come for it.
        if swapped && !conn.input.is_empty() && conn.is_open() {
            self.deliver(index, &[]);
            return;
        }
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        if conn.input.len() > conn.config.max_input {
            let limit = conn.config.max_input;
            self.close(
                index,
                CloseReason::protocol(format!("unconsumed input over {limit} bytes")),
            );
        }
    }

    /// Hands received descriptors to the handler, just before the bytes they came with (S29).
    /// A connection no longer open drops them, which closes them.
    fn deliver_fds(&mut self, index: usize, fds: Vec<std::os::fd::OwnedFd>) {
        if self.conn_at(index).is_some_and(|c| c.is_open()) {
            self.call(index, |h, cx| h.on_fds(cx, fds));
        }
    }

    /// The peer sent end of stream.
    pub(crate) fn on_eof(&mut self, index: usize) {
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        conn.set_eof(true);
        match conn.phase() {
            // A closing connection whose FIN is out is done; otherwise the flush ends it once
            // the output is out.
            Phase::Closing { fin_sent, .. } => {
                if fin_sent {
                    self.kill(index, CloseReason::PeerClosed);
                }
            }
            Phase::Open { .. } => {
                if !self.link_eof(index) {
                    self.call(index, |h, cx| h.on_eof(cx));
                }
            }
            Phase::Connecting { .. } | Phase::Dead => {}
        }
    }
}
