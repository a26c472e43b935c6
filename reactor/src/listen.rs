//! Listeners as handles: listen or adopt a listening socket, then pause, resume, close it and
//! read its address and counters by [`ListenerId`], from any context.
//!
//! A listener paused here leaves new clients in the kernel's backlog (they are neither
//! accepted nor refused until it resumes or closes); one closed here is gone, while the
//! connections it accepted go on.

use std::io;
use std::net::SocketAddr;

use crate::{ListenOptions, ListenerId, ListenerStats, LoopCx, Protocol};

impl<App> LoopCx<'_, App> {
    /// Listens on `addr` with the reactor's accept loop; `factory` makes the handler of each
    /// accepted connection. `SO_REUSEADDR` is always set, and the options of `opts` that must
    /// come before `bind` or `listen` (buffer sizes, `SO_REUSEPORT`, the backlog) are applied
    /// there (S18, S19). The bound address (useful with port 0) is
    /// [`listener_addr`](Self::listener_addr).
    ///
    /// # Errors
    /// Any error of `socket`, the options, `bind` or `listen` (e.g. `EADDRINUSE`), or of the
    /// registration with the poller.
    pub fn listen<P, F>(
        &mut self,
        addr: SocketAddr,
        opts: ListenOptions,
        factory: F,
    ) -> io::Result<ListenerId>
    where
        P: Protocol<App> + 'static,
        F: FnMut(&mut App, SocketAddr) -> P + 'static,
    {
        let socket = crate::transport::tcp::listen(addr, &opts)?;
        let id = self.add_tcp_listener(socket, opts, factory)?;
        log::info!("listening on {}", self.listener_addr(id)?);
        Ok(id)
    }

    /// Serves a listening socket made elsewhere (inherited from a parent process, bound by
    /// other code) with the reactor's accept loop. The socket is made non-blocking and from
    /// then on belongs to the reactor, which closes it with
    /// [`close_listener`](Self::close_listener) or when dropped.
    ///
    /// The socket is already bound and listening, so the options of `opts` that only take
    /// effect before `bind` or `listen` (`SO_REUSEADDR`, `SO_REUSEPORT`, the backlog, the
    /// buffer sizes inherited by accepted sockets) are not applied: set them on the socket
    /// before it is bound. The rest (connection settings, accept budget, back-off, the
    /// `TCP_DEFER_ACCEPT` and per-connection options) apply as for [`listen`](Self::listen).
    /// (A Unix-domain listener is adopted with
    /// [`adopt_unix_listener`](Self::adopt_unix_listener).)
    ///
    /// # Errors
    /// Making the socket non-blocking, reading its address, or registering it failed.
    pub fn adopt_listener<P, F>(
        &mut self,
        listener: std::net::TcpListener,
        opts: ListenOptions,
        factory: F,
    ) -> io::Result<ListenerId>
    where
        P: Protocol<App> + 'static,
        F: FnMut(&mut App, SocketAddr) -> P + 'static,
    {
        listener.set_nonblocking(true)?;
        let socket = mio::net::TcpListener::from_std(listener);
        let id = self.add_tcp_listener(socket, opts, factory)?;
        log::info!(
            "serving the adopted listener on {}",
            self.listener_addr(id)?
        );
        Ok(id)
    }

    fn add_tcp_listener<P, F>(
        &mut self,
        socket: mio::net::TcpListener,
        opts: ListenOptions,
        factory: F,
    ) -> io::Result<ListenerId>
    where
        P: Protocol<App> + 'static,
        F: FnMut(&mut App, SocketAddr) -> P + 'static,
    {
        self.core_mut().add_listener(
            Box::new(socket),
            crate::core::listener::Factory::addressed(factory),
            &opts,
        )
    }

    /// The TCP address a listener is bound to (a Unix-domain listener's path or name is in
    /// its [`ListenerStats::local_addr`](crate::ListenerStats)).
    ///
    /// # Errors
    /// `Unsupported` for a Unix-domain listener; `NotFound` if the listener was closed (or never belonged to this reactor).
    pub fn listener_addr(&self, id: ListenerId) -> io::Result<SocketAddr> {
        self.listener_stats(id)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no {id}")))?
            .local_addr
            .tcp()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("{id} is a Unix-domain listener: no IP address"),
                )
            })
    }

    /// A listener's address and counters (`None` if it was closed).
    pub fn listener_stats(&self, id: ListenerId) -> Option<ListenerStats> {
        self.core_ref().listener_stats(id)
    }

    /// Stops accepting on a listener until [`resume_listener`](Self::resume_listener): new
    /// clients wait in the kernel's backlog (and are refused by the kernel once it is full).
    /// Returns whether the listener exists.
    pub fn pause_listener(&mut self, id: ListenerId) -> bool {
        self.core_mut().pause_listener(id)
    }

    /// Accepts again on a paused listener, beginning with the clients that queued meanwhile.
    /// Returns whether the listener exists.
    pub fn resume_listener(&mut self, id: ListenerId) -> bool {
        self.core_mut().unpause_listener(id)
    }

    /// Closes a listener: its socket is closed at once, and clients still in its backlog are
    /// refused by the kernel. Connections it accepted are not touched. Returns whether it
    /// existed.
    pub fn close_listener(&mut self, id: ListenerId) -> bool {
        self.core_mut().close_listener(id)
    }
}
