//! Rejecting a client at the connection limit (S23, [`AtLimit::Reject`]): accept it, queue the
//! listener's goodbye, and close gracefully, as Redis answers "max number of clients reached".
//!
//! # Implementation notes
//! A rejected client gets a connection slot of its own with a handler that discards input, so
//! the goodbye goes out through the ordinary flush and the close is the ordinary graceful one:
//! FIN after the goodbye, input read and discarded until the client's end of stream (closing
//! with unread input would send RST and could destroy the goodbye before the client reads it),
//! bounded by a linger of at most [`REJECT_LINGER`], so a client that never closes cannot hold
//! the descriptor. These slots are not connections to an operator: they count in
//! `Stats::rejected` when the client is accepted and in the gauge `Stats::rejecting` while the
//! goodbye drains, never in `open`, `accepted` or `closed` (as Redis keeps its
//! `rejected_connections` apart from the clients it served), and not against the limit, so
//! `accepted = closed + open` holds through a rejection burst.
//!
//! Rejecting cannot spin: each rejection is one accept of the listener's per-turn budget, and a
//! flood is held to [`MAX_REJECTING`] slots at once; past that a client is told at once (one
//! write of the goodbye, FIN, close) with no slot. Accepting needs a descriptor: at `EMFILE`
//! the accept fails and the spare-descriptor logic of the `accept` module tells the clients.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use crate::core::conn::{Phase, WriteHalf};
use crate::core::listener::PeerName;
use crate::core::Core;
use crate::transport::Stream;
use crate::{AtLimit, CloseReason, ConnConfig, Cx, Protocol};

/// The longest a rejected client may keep its slot after the goodbye and FIN went out.
const REJECT_LINGER: Duration = Duration::from_secs(1);

/// The most rejected clients being told at once; past it a client is told without a slot.
const MAX_REJECTING: usize = 64;

/// The settings of a rejected client's slot: `base` with a linger of at most [`REJECT_LINGER`]
/// and none of the timeouts of an open connection.
pub(super) fn config(base: &ConnConfig) -> ConnConfig {
    let mut config = base.clone();
    config.linger_timeout = base.linger_timeout.min(REJECT_LINGER);
    config.first_byte_timeout = None;
    config.idle_timeout = None;
    config
}

/// The handler of a rejected client: its input is read and dropped.
struct Rejected;

impl<App> Protocol<App> for Rejected {
    fn on_data(&mut self, _cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        data.len()
    }
}

impl<App> Core<App> {
    /// Tells a client accepted at the connection limit by listener `index` that it is not
    /// served: its goodbye, then a graceful close.
    pub(super) fn reject(&mut self, index: usize, mut stream: Stream, peer: Option<SocketAddr>) {
        let Some(l) = self.listener(index) else {
            return;
        };
        let AtLimit::Reject(goodbye) = &l.policy else {
            return;
        };
        let bytes = goodbye.render(peer);
        let who = PeerName(peer);
        let config = Rc::clone(&l.reject_conn);
        self.stats.rejected += 1;
        log::debug!("rejecting {who}: at the connection limit");
        if self.stats.rejecting >= MAX_REJECTING as u64 {
            // Too many being told already: one write (a socket's empty send buffer takes a
            // goodbye whole), FIN, and the descriptor closes now.
            if !bytes.is_empty() {
                let _ = stream.write_vectored(&[IoSlice::new(&bytes)]);
            }
            let _ = stream.shutdown_write();
            return;
        }
        let phase = Phase::Open {
            first_byte: None,
            write: WriteHalf::Open,
        };
        match self.insert_conn(stream, Box::new(Rejected), config, phase) {
            Ok(id) => {
                let slot = id.index as usize;
                if let Some(conn) = self.conn_at(slot) {
                    conn.rejected = true;
                }
                // `insert_conn` counted the slot as open: it is a rejected client's instead.
                self.stats.open -= 1;
                self.stats.rejecting += 1;
                if !bytes.is_empty() {
                    let _ = self.queue(id, bytes, Vec::len, |q, sp, b, now| q.push_vec(b, sp, now));
                }
                self.close(slot, CloseReason::Local);
            }
            Err(e) => log::debug!("registering a rejected client {who}: {e}"),
        }
    }
}
