//! Listeners leaving for a successor process (a restart): a listener's descriptor duplicated
//! for export, and the listener released without touching the shared socket.
//!
//! # Implementation notes
//! An exported descriptor is a second descriptor of the same socket (`F_DUPFD_CLOEXEC`): the
//! successor receives its own, so the socket and its backlog live as long as either process
//! holds one. Releasing a listener must therefore take it out of the poller explicitly: epoll
//! forgets a registration only when the socket itself is closed, which a descriptor held by
//! another process prevents, and the stale registration would keep reporting the successor's
//! clients under a token a later connection reuses.

use std::io;
use std::os::fd::OwnedFd;

use crate::core::listener::ListenerId;
use crate::core::{Net, Source};

impl<App> Net<App> {
    /// Every listener of this reactor, in slot order.
    pub(crate) fn listener_ids(&self) -> Vec<ListenerId> {
        self.sources
            .iter()
            .filter_map(|(index, s)| match s {
                Source::Listener(l) => Some(ListenerId {
                    index: index as u32,
                    generation: l.generation,
                }),
                _ => None,
            })
            .collect()
    }

    /// A new descriptor (close-on-exec) of a listener's socket, which goes on serving here.
    pub(crate) fn export_listener(&self, id: ListenerId) -> io::Result<OwnedFd> {
        let l = match self.sources.get(id.index as usize) {
            Some(Source::Listener(l)) if l.generation == id.generation => l,
            _ => return Err(io::Error::new(io::ErrorKind::NotFound, format!("no {id}"))),
        };
        let fd = l.socket.fd().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{id} has no descriptor"),
            )
        })?;
        fd.try_clone_to_owned()
    }

    /// Stops serving a listener whose socket a successor holds: out of the poller, this
    /// reactor's descriptor closed, its socket file (if it made one) left in place. Returns
    /// whether it existed.
    pub(crate) fn release_listener(&mut self, id: ListenerId) -> bool {
        match self.sources.get_mut(id.index as usize) {
            Some(Source::Listener(l)) if l.generation == id.generation => {
                if let Err(e) = l.socket.deregister(&self.registry) {
                    log::warn!("{id}: deregistering before release: {e}");
                }
                l.socket.keep_file();
            }
            _ => return false,
        }
        self.sources.try_remove(id.index as usize);
        true
    }
}
