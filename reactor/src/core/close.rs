//! Closing: graceful close, abort, half-close, the reactor's shutdown, and the removal that
//! reports a connection's end (S14, S17).
//!
//! # Implementation notes
//! A graceful close moves the connection to [`Phase::Closing`]: input is discarded, the output
//! is flushed, FIN goes once it is out (the step in [`Net::flushed`]), and the peer's end of
//! stream or the linger timer (armed by the `timeouts` module, bounding the whole close) ends
//! it. An abort drops the output and sets `SO_LINGER` 0 so the kernel sends RST. Either way the
//! connection ends in [`Net::kill`], which queues it for [`Core::finalize`] at the end of the
//! turn: the one place that removes a slot and calls `on_close`.

use std::time::Duration;

use crate::core::conn::{Phase, WriteHalf};
use crate::core::{Core, Net, Source};
use crate::timer::TimerEntry;
use crate::{CloseReason, ConnId, Cx};

impl<App> Net<App> {
    /// Starts a graceful close: stop delivering input, flush, `SHUT_WR`, wait for the peer's end
    /// of stream or the linger timeout (S14, S17). The first reason given is the one reported.
    pub(crate) fn close(&mut self, index: usize, reason: CloseReason) {
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        let fin_sent = match conn.phase() {
            Phase::Closing { .. } | Phase::Dead => return,
            Phase::Connecting { .. } => return self.kill(index, reason),
            Phase::Open { write, .. } => write == WriteHalf::Shut,
        };
        let reason = match reason {
            CloseReason::Local if conn.eof() => CloseReason::PeerClosed,
            other => other,
        };
        conn.set_reason(reason);
        // The first-byte timer ends with the open phase; the linger timer bounds the close.
        self.end_phase_timer(index);
        if let Some(conn) = self.conn_at(index) {
            conn.set_phase(Phase::Closing {
                linger: None,
                fin_sent,
            });
            conn.input.clear();
        }
        self.arm_linger(index);
        // The flush at the end of the turn moves the close along.
        self.mark_dirty(index);
    }

    /// Closes the connection `id` names gracefully; returns whether it existed.
    pub(crate) fn close_conn(&mut self, id: ConnId, reason: CloseReason) -> bool {
        if self.conn_ref(id).is_none() {
            return false;
        }
        self.close(id.index as usize, reason);
        true
    }

    /// Aborts the connection `id` names; returns whether it existed.
    pub(crate) fn abort_conn(&mut self, id: ConnId, reason: CloseReason) -> bool {
        if self.conn_ref(id).is_none() {
            return false;
        }
        self.abort(id.index as usize, reason);
        true
    }

    /// Closes at once with RST (`SO_LINGER` 0), dropping queued output (S17).
    pub(crate) fn abort(&mut self, index: usize, reason: CloseReason) {
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        if conn.is_dead() {
            return;
        }
        if let Err(e) = conn.stream.set_abortive() {
            log::debug!("SO_LINGER 0 on #{index}: {e}");
        }
        let dropped = conn.output.len();
        conn.output.clear();
        self.queued_total -= dropped;
        self.kill(index, reason);
    }

    /// Marks a connection finished; `finalize` removes it at the end of the turn.
    pub(crate) fn kill(&mut self, index: usize, reason: CloseReason) {
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        if conn.is_dead() {
            return;
        }
        conn.set_reason(reason);
        // The old phase's timer ends with it; the others go when the slot is removed.
        self.end_phase_timer(index);
        if let Some(conn) = self.conn_at(index) {
            conn.set_phase(Phase::Dead);
            conn.input.clear();
        }
        self.dead.push(index);
        self.unlink(index);
    }

    /// Asks for a half-close: FIN once the queued output is flushed. Reading goes on.
    /// Returns whether the connection exists and was still writable.
    pub(crate) fn request_shutdown_write(&mut self, id: ConnId) -> bool {
        let index = id.index as usize;
        let Some(conn) = self.conn_mut(id) else {
            return false;
        };
        let requested = conn.update_phase(|phase| match phase {
            Phase::Open { write, .. } | Phase::Connecting { write, .. }
                if *write == WriteHalf::Open =>
            {
                *write = WriteHalf::ShutRequested;
                true
            }
            _ => false,
        });
        if !requested {
            return false;
        }
        self.mark_dirty(index);
        true
    }

    /// The output queue is empty: a pending half-close or graceful close sends its FIN, and a
    /// graceful close whose FIN is out waits for the peer's end of stream.
    pub(crate) fn flushed(&mut self, index: usize) {
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        let send_fin = conn.update_phase(|phase| match phase {
            Phase::Open { write, .. } if *write == WriteHalf::ShutRequested => {
                *write = WriteHalf::Shut;
                true
            }
            Phase::Closing { fin_sent, .. } if !*fin_sent => {
                *fin_sent = true;
                true
            }
            _ => false,
        });
        if send_fin {
            if let Err(e) = conn.stream.shutdown_write() {
                log::debug!("shutdown(SHUT_WR) on #{index}: {e}");
                self.kill(index, CloseReason::from_io(e));
                return;
            }
            self.link_progress(index);
        }
        // A graceful close whose FIN is out (just now, or earlier by a half-close) waits for
        // the peer's end of stream, bounded by the linger timer armed when the close began.
        if let Some(conn) = self.conn_at(index) {
            if matches!(conn.phase(), Phase::Closing { .. }) {
                if conn.eof() {
                    self.kill(index, CloseReason::Local);
                } else {
                    // The peer's FIN may already be queued behind unread input.
                    self.mark_ready(index);
                }
            }
        }
    }

    /// Aborts every connection, closes every UDP socket, and makes `run` return at the end of
    /// this turn.
    pub(crate) fn stop_now(&mut self) {
        for index in self.all_conns() {
            self.abort(index, CloseReason::Shutdown);
        }
        self.end_all_udp();
        self.shutting_down = true;
        self.stop_now = true;
    }

    /// Begins a graceful shutdown: stop accepting, close every connection gracefully, drain
    /// every UDP socket (`core/udp.rs`), and abort or close what is left after `grace`.
    pub(crate) fn begin_shutdown(&mut self, grace: Duration) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        let listeners: Vec<usize> = self
            .sources
            .iter()
            .filter(|(_, s)| matches!(s, Source::Listener(_)))
            .map(|(i, _)| i)
            .collect();
        let conns = self.all_conns();
        log::info!(
            "shutting down: {} connections to close within {grace:?}",
            conns.len()
        );
        for index in listeners {
            self.sources.try_remove(index);
        }
        for index in conns {
            self.close(index, CloseReason::Shutdown);
        }
        self.drain_all_udp();
        self.arm(grace, TimerEntry::ShutdownDeadline);
    }

    /// The shutdown's grace period is over: abort what is left, close the UDP sockets still
    /// draining.
    pub(crate) fn shutdown_deadline(&mut self) {
        self.end_all_udp();
        let open = self.all_conns();
        if !open.is_empty() {
            log::warn!(
                "shutdown deadline passed: aborting {} connections",
                open.len()
            );
        }
        for index in open {
            self.abort(index, CloseReason::Shutdown);
        }
    }
}

impl<App> Core<App> {
    /// Removes a dead connection and reports it to its handler: the one place `on_close` runs.
    pub(crate) fn finalize(&mut self, index: usize) {
        if self.finalize_udp(index) {
            return;
        }
        if !self.conn_at(index).is_some_and(|c| c.is_dead()) {
            return;
        }
        let Some(Source::Conn(mut conn)) = self.net.sources.try_remove(index) else {
            return;
        };
        self.net.cancel_conn_timers(&mut conn);
        let reason = conn
            .extras
            .as_deref_mut()
            .and_then(|x| x.reason.take())
            .unwrap_or(CloseReason::Local);
        self.net.queued_total -= conn.output.len();
        // A rejected client's slot was never a connection (see `Stats::rejecting`).
        if conn.rejected {
            self.net.stats.rejecting -= 1;
        } else {
            self.net.stats.open -= 1;
            self.net.stats.closed[reason.kind() as usize] += 1;
        }
        self.connection_released();
        log::debug!(
            "#{index} closed: {reason} (in {} B, out {} B)",
            conn.bytes_in,
            conn.bytes_out
        );
        let id = ConnId {
            index: index as u32,
            generation: conn.generation,
        };
        let handler = self.net.handlers.get_mut(index).and_then(Option::take);
        // Close the descriptor before the handler hears of it.
        drop(conn);
        if let Some(mut handler) = handler {
            handler.on_close(&mut Cx::new(self, id), reason);
        }
    }
}
