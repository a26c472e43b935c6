//! The connections lent apart from the user state ([`Conns`], from [`LoopCx::split`](super::LoopCx::split)): the
//! by-id operations a handler needs while it also holds `&mut App`, as a chat room broadcasts
//! to its member list.

use std::time::Duration;

use super::Conns;
use crate::core::WRITE_THROUGH_MIN;
use crate::{CloseReason, ConnId, ConnStats, Shared, TimerId};

impl<'a, App> Conns<'a, App> {
    /// Queues a copy of `data` on `conn`. Returns `false` if it does not exist or no longer
    /// takes writes (closing, half-closed).
    #[inline]
    pub fn send_to(&mut self, conn: ConnId, data: &[u8]) -> bool {
        if data.len() >= WRITE_THROUGH_MIN {
            return self.net.send_large(conn, data);
        }
        self.net.queue_small(conn, data)
    }

    /// Queues an owned buffer on `conn` without copying it.
    ///
    /// # Errors
    /// Hands the buffer back if the connection does not exist or no longer takes writes.
    pub fn send_vec_to(&mut self, conn: ConnId, data: Vec<u8>) -> Result<(), Vec<u8>> {
        self.net.queue(
            conn,
            data,
            |d| d.len(),
            |q, sp, d, now| q.push_vec(d, sp, now),
        )
    }

    /// Queues a shared buffer on `conn`: the way to broadcast one message to many connections
    /// with one allocation (S16). Returns `false` as [`send_to`](Self::send_to) does.
    pub fn send_shared_to(&mut self, conn: ConnId, data: &Shared) -> bool {
        self.net
            .queue(
                conn,
                data,
                |d| d.len(),
                |q, sp, d, now| q.push_shared(d.clone(), sp, now),
            )
            .is_ok()
    }

    /// Bytes queued on `conn` and not yet accepted by the kernel (0 if it does not exist).
    pub fn queued_on(&self, conn: ConnId) -> usize {
        self.net.queued_on(conn)
    }

    /// Whether `conn` exists and is open (not connecting, closing or closed).
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.net.is_open(conn)
    }

    /// Closes `conn` gracefully, reporting `reason` (see [`Cx::close`](crate::Cx::close)). Returns whether it
    /// existed.
    ///
    /// From this call on, input that arrives on `conn` is read and discarded, never delivered:
    /// to pass on everything the peer still sends, use
    /// [`shutdown_write_conn`](Self::shutdown_write_conn) instead and close at its end of
    /// stream.
    pub fn close_conn(&mut self, conn: ConnId, reason: CloseReason) -> bool {
        self.net.close_conn(conn, reason)
    }

    /// Aborts `conn` with RST, dropping its queued output (see [`Cx::abort`](crate::Cx::abort)). Returns whether
    /// it existed.
    pub fn abort_conn(&mut self, conn: ConnId, reason: CloseReason) -> bool {
        self.net.abort_conn(conn, reason)
    }

    /// Half-closes `conn` once its queued output is flushed (see [`Cx::shutdown_write`](crate::Cx::shutdown_write)): its
    /// FIN goes after every queued byte, and its input keeps being delivered to its handler
    /// until the peer's end of stream ([`Protocol::on_eof`](crate::Protocol::on_eof)). Returns `false` if it does not
    /// exist or was no longer writable.
    pub fn shutdown_write_conn(&mut self, conn: ConnId) -> bool {
        self.net.request_shutdown_write(conn)
    }

    /// Stops reading from `conn` until [`resume_reading_conn`](Self::resume_reading_conn).
    /// Returns whether it exists.
    pub fn pause_reading_conn(&mut self, conn: ConnId) -> bool {
        self.net.pause_reading(conn)
    }

    /// Resumes reading from `conn`; input kept while paused is offered again on the next turn.
    /// Returns whether it exists.
    pub fn resume_reading_conn(&mut self, conn: ConnId) -> bool {
        self.net.resume_reading(conn)
    }

    /// Arms a one-shot timer on `conn`: when it fires, `conn`'s handler gets it in
    /// [`Protocol::on_timer`](crate::Protocol::on_timer), whoever armed it (see [`Cx::set_timer`](crate::Cx::set_timer)). `None` if `conn` does
    /// not exist.
    pub fn set_timer_conn(&mut self, conn: ConnId, after: Duration, tag: u64) -> Option<TimerId> {
        self.net.set_user_timer(conn, after, tag)
    }

    /// Cancels a timer armed on `conn`. Returns whether it was armed.
    pub fn cancel_timer_conn(&mut self, conn: ConnId, timer: TimerId) -> bool {
        self.net.cancel_user_timer(conn, timer)
    }

    /// The counters of `conn` (bytes in and out, queued, age, idle), or `None` if it does not
    /// exist.
    pub fn conn_stats(&self, conn: ConnId) -> Option<ConnStats> {
        self.net.conn_stats(conn)
    }
}
