//! Finding a connection: its slot by slab index or by [`ConnId`] (whose generation must still
//! match), the handler kept beside the slot, its activity stamp, and the questions the
//! contexts ask about one connection (queued bytes, open, addresses, descriptor).
//!
//! # Implementation notes
//! Every operation on a connection starts with one of these look-ups, so they are small and
//! inlined; an id whose connection is gone finds nothing, and the caller says so in its return
//! value instead of failing (a handler may keep ids of connections that have closed).

use timers::Tick;

use crate::core::conn::Conn;
use crate::core::{Net, Source};
use crate::{ConnId, Protocol};

impl<App> Net<App> {
    /// The connection at a slab index.
    pub(super) fn conn_at(&mut self, index: usize) -> Option<&mut Conn> {
        self.sources.conn_mut(index)
    }

    /// Takes the handler of the connection at `index` out for a callback (`None`: its
    /// callback is running, or there is none).
    #[inline(always)]
    pub(super) fn take_handler(&mut self, index: usize) -> Option<Box<dyn Protocol<App>>> {
        self.handlers.get_mut(index)?.take()
    }

    /// Puts a handler taken out for a callback back. Its connection is still there: slots
    /// are only removed by `finalize`, never during a callback, and nothing fills a handler's
    /// slot while it is out (a successor waits in `Net::replacements` until it is back).
    /// Every message passes here, so what the slot held, always `None`, is not tested for a
    /// drop: it is forgotten (debug builds check it).
    #[inline(always)]
    pub(super) fn put_handler(&mut self, index: usize, handler: Box<dyn Protocol<App>>) {
        if let Some(slot) = self.handlers.get_mut(index) {
            let old = slot.replace(handler);
            debug_assert!(old.is_none(), "a handler's slot was filled while it ran");
            std::mem::forget(old);
        }
    }

    /// The stamp of the last traffic of the connection at `index`.
    pub(super) fn last_activity(&self, index: usize) -> Tick {
        self.activity.get(index).copied().unwrap_or(0)
    }

    /// The connection an id names, if it still exists.
    pub(super) fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conn_at(id.index as usize)
            .filter(|c| c.generation == id.generation)
    }

    /// The connection an id names, if it still exists.
    pub(super) fn conn_ref(&self, id: ConnId) -> Option<&Conn> {
        match self.sources.get(id.index as usize) {
            Some(Source::Conn(c)) if c.generation == id.generation => Some(c),
            _ => None,
        }
    }

    /// Bytes queued on a connection (0 if it does not exist).
    pub(crate) fn queued_on(&self, id: ConnId) -> usize {
        self.conn_ref(id).map_or(0, |c| c.output.len())
    }

    /// Whether a connection exists and is open (not connecting, closing or closed).
    pub(crate) fn is_open(&self, id: ConnId) -> bool {
        self.conn_ref(id).is_some_and(|c| c.is_open())
    }

    /// A connection's peer address.
    pub(crate) fn peer_addr(&self, id: ConnId) -> Option<std::net::SocketAddr> {
        self.conn_ref(id)?.stream.peer_addr().ok()
    }

    /// A connection's local address.
    pub(crate) fn local_addr(&self, id: ConnId) -> Option<std::net::SocketAddr> {
        self.conn_ref(id)?.stream.local_addr().ok()
    }

    /// A connection's descriptor, for socket options (`None` if it has none).
    pub(crate) fn conn_fd(&self, id: ConnId) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.conn_ref(id)?.stream.fd()
    }

    pub(super) fn id_at(&self, index: usize) -> Option<ConnId> {
        match self.sources.get(index) {
            Some(Source::Conn(c)) => Some(ConnId {
                index: index as u32,
                generation: c.generation,
            }),
            _ => None,
        }
    }

    /// Indexes of every connection (for shutdown, which touches them all once).
    pub(super) fn all_conns(&self) -> Vec<usize> {
        self.sources
            .iter()
            .filter(|(_, s)| matches!(s, Source::Conn(_)))
            .map(|(i, _)| i)
            .collect()
    }
}
