//! Unix-domain connections' extras: listening and connecting on a Unix address, peer
//! credentials, descriptors queued with bytes, and a connection's descriptor leaving the
//! reactor (`detach`) or entering it (`adopt`) (S28, S29).
//!
//! # Implementation notes
//! A detached connection ends like any other, through [`Net::kill`] with
//! [`CloseReason::Detached`], so `on_close` still runs exactly once; its slot keeps a
//! [`Detached`] transport, so nothing the end of the turn does to it can reach the descriptor
//! that now lives elsewhere. The descriptor is deregistered from the poller first: otherwise
//! its events would keep arriving under a token a later connection reuses. Output still queued
//! cannot follow the descriptor, so detaching waits until it is flushed (`WouldBlock`).

use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use crate::core::conn::{Phase, WriteHalf};
use crate::core::connect::apply_conn_options;
use crate::core::{Core, Net};
use crate::transport::{self, Detached, Stream};
use crate::{sys, CloseReason, ConnConfig, ConnId, Protocol};

impl<App> Net<App> {
    /// The credentials of a Unix connection's peer (S29).
    pub(crate) fn peer_credentials(&self, id: ConnId) -> io::Result<sys::PeerCredentials> {
        self.conn_ref(id)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?
            .stream
            .peer_credentials()
    }

    /// Queues `data` with descriptors sent along with its first byte (S29). Hands both back if
    /// the connection does not take writes, cannot carry descriptors, or there are too many.
    pub(crate) fn queue_fds(
        &mut self,
        id: ConnId,
        data: Vec<u8>,
        fds: Vec<OwnedFd>,
    ) -> Result<(), (Vec<u8>, Vec<OwnedFd>)> {
        let fits = fds.len() <= sys::MAX_FDS && !data.is_empty();
        if !fits || !self.conn_ref(id).is_some_and(|c| c.stream.carries_fds()) {
            return Err((data, fds));
        }
        self.queue(
            id,
            (data, fds),
            |(d, _)| d.len(),
            |q, sp, (d, f), now| q.push_with_fds(d, f, sp, now),
        )
    }

    /// Takes a connection's descriptor out of the reactor without closing it (S29). The
    /// connection ends with [`CloseReason::Detached`] at the end of the turn.
    ///
    /// `WouldBlock` while output is queued; `NotConnected` unless the connection is open.
    pub(crate) fn detach(&mut self, id: ConnId) -> io::Result<OwnedFd> {
        let index = id.index as usize;
        let conn = self
            .conn_mut(id)
            .filter(|c| c.is_open())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        if !conn.output.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "output still queued: detach once it is flushed",
            ));
        }
        let mut stream: Stream =
            std::mem::replace(&mut conn.stream, Stream::Other(Box::new(Detached)));
        if let Err(e) = stream.deregister(&self.registry) {
            log::debug!("deregistering #{index} to detach it: {e}");
        }
        let Some(fd) = stream.into_fd() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this connection has no descriptor",
            ));
        };
        self.kill(index, CloseReason::Detached);
        Ok(fd)
    }
}

impl<App> Core<App> {
    /// Makes a connection of a connected stream socket made elsewhere (S29): it is open at once
    /// and its handler gets `on_open`.
    pub(crate) fn adopt(
        &mut self,
        fd: OwnedFd,
        handler: Box<dyn Protocol<App>>,
        config: Rc<ConnConfig>,
    ) -> io::Result<ConnId> {
        let stream = transport::adopt(fd)?;
        apply_conn_options(&stream, &config);
        let phase = Phase::Open {
            first_byte: None,
            write: WriteHalf::Open,
        };
        let id = self.insert_conn(stream, handler, config, phase)?;
        log::debug!("adopted {id}");
        self.arm_watchdog(id.index as usize);
        self.call(id.index as usize, |h, cx| h.on_open(cx));
        // Bytes may have queued before registration raised its edge.
        self.mark_ready(id.index as usize);
        Ok(id)
    }
}
