//! The Unix-domain part of the contexts (S28, S29): listening and connecting on a
//! [`UnixAddr`], adopting a listener made elsewhere, adopting a descriptor as a connection, and a connection's peer credentials,
//! descriptor passing and detaching.

use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use super::{Cx, LoopCx};
use crate::sys::PeerCredentials;
use crate::{ConnConfig, ConnId, ListenOptions, ListenerId, Protocol, UnixAddr, UnixListenOptions};

impl<App> LoopCx<'_, App> {
    /// Listens on a Unix-domain socket (S28): a path, or on Linux an abstract name. `factory`
    /// makes the handler of each accepted connection (a Unix peer has no address worth passing;
    /// ask [`Cx::peer_credentials`] who it is).
    ///
    /// A socket file left by a dead server is replaced; a live server's is never taken. The
    /// file gets `opts.mode` (applied before `listen`, so no client connects earlier) and is
    /// removed when the listener closes (a graceful shutdown, closing it by its id, or dropping
    /// the reactor), if it is still the file this listener created. The listener's id works as
    /// a TCP listener's does; its [`ListenerStats::local_addr`](crate::ListenerStats) is
    /// [`ListenAddr::Unix`](crate::ListenAddr) with `addr`.
    ///
    /// # Errors
    /// `AddrInUse` if a server answers on the path (or the abstract name is taken);
    /// `AlreadyExists` if the path is a file that is not a socket; `InvalidInput` for a name
    /// that does not fit a socket address; any error of `socket`, `bind`, `chmod`, `listen` or
    /// the registration.
    pub fn listen_unix<P, F>(
        &mut self,
        addr: &UnixAddr,
        opts: UnixListenOptions,
        factory: F,
    ) -> io::Result<ListenerId>
    where
        P: Protocol<App> + 'static,
        F: FnMut(&mut App) -> P + 'static,
    {
        let socket = crate::transport::unix::listen(addr, &opts)?;
        let id = self.core.add_listener(
            Box::new(socket),
            crate::core::listener::Factory::anonymous(factory),
            &opts.listen,
        )?;
        log::info!("listening on unix:{addr}");
        Ok(id)
    }

    /// Serves a listening Unix-domain socket made elsewhere (inherited from a parent process,
    /// bound by other code) with the reactor's accept loop, as
    /// [`adopt_listener`](Self::adopt_listener) does for TCP (S28). The socket is made
    /// non-blocking and from then on belongs to the reactor, which closes it with
    /// [`close_listener`](Self::close_listener) or when dropped; clients already waiting in its
    /// backlog are served. Its [`ListenerStats::local_addr`](crate::ListenerStats) is the path
    /// or abstract name it is bound to.
    ///
    /// The reactor did not create the socket file, so it never removes it (not on
    /// `close_listener`, a graceful shutdown, or drop): the file belongs to whoever bound the
    /// socket, who removes it once the listener is closed. The options that only take effect
    /// before `bind` or `listen` (the backlog, the file's mode) are not applied.
    ///
    /// # Errors
    /// `InvalidInput` if the socket is not bound to a path or name; making it non-blocking,
    /// reading its address, or registering it failed.
    pub fn adopt_unix_listener<P, F>(
        &mut self,
        listener: std::os::unix::net::UnixListener,
        opts: ListenOptions,
        factory: F,
    ) -> io::Result<ListenerId>
    where
        P: Protocol<App> + 'static,
        F: FnMut(&mut App) -> P + 'static,
    {
        let socket = crate::transport::unix::adopt(listener)?;
        let id = self.core.add_listener(
            Box::new(socket),
            crate::core::listener::Factory::anonymous(factory),
            &opts,
        )?;
        if let Some(stats) = self.listener_stats(id) {
            log::info!("serving the adopted listener on {}", stats.local_addr);
        }
        Ok(id)
    }

    /// Opens an outgoing Unix-domain connection served by `handler`, as
    /// [`connect`](Self::connect) does for TCP: `on_open` once connected, or `on_close` with
    /// the reason (`Refused` if nothing listens).
    ///
    /// # Errors
    /// Only what fails before any attempt: creating the socket, or a name that does not fit.
    pub fn connect_unix(
        &mut self,
        addr: &UnixAddr,
        handler: impl Protocol<App> + 'static,
        config: ConnConfig,
    ) -> io::Result<ConnId> {
        self.core
            .connect_unix(addr, Box::new(handler), Rc::new(config))
    }

    /// Makes a connection of a connected stream socket (TCP or Unix-domain) made elsewhere:
    /// received with [`Protocol::on_fds`], inherited, or [detached](Cx::detach) from another
    /// reactor (S29). It is open at once: `handler` gets `on_open`, then whatever the peer
    /// sends, including bytes that were waiting in the socket.
    ///
    /// # Errors
    /// `InvalidInput` if `fd` is not a stream socket of those families; the errors of making it
    /// non-blocking or registering it. The descriptor is closed on error.
    pub fn adopt_stream(
        &mut self,
        fd: OwnedFd,
        handler: impl Protocol<App> + 'static,
        config: ConnConfig,
    ) -> io::Result<ConnId> {
        self.core.adopt(fd, Box::new(handler), Rc::new(config))
    }

    /// Queues `data` on connection `conn` with descriptors that travel with its first byte;
    /// see [`Cx::write_with_fds`].
    ///
    /// # Errors
    /// As [`Cx::write_with_fds`]: both are handed back.
    #[allow(clippy::type_complexity)] // The rejected values, handed back as they came.
    pub fn send_with_fds_to(
        &mut self,
        conn: ConnId,
        data: Vec<u8>,
        fds: Vec<OwnedFd>,
    ) -> Result<(), (Vec<u8>, Vec<OwnedFd>)> {
        self.core.queue_fds(conn, data, fds)
    }
}

impl<App> Cx<'_, App> {
    /// Who is at the other end of a Unix-domain connection: pid, uid and gid, as the kernel
    /// recorded them when the connection was made (`SO_PEERCRED`, S29).
    ///
    /// # Errors
    /// `Unsupported` on a TCP connection; `NotConnected` if the connection is gone.
    pub fn peer_credentials(&self) -> io::Result<PeerCredentials> {
        self.lp.core.peer_credentials(self.id)
    }

    /// Queues `data` with descriptors that travel with its first byte (`SCM_RIGHTS`, S29). The
    /// descriptors stay attached to those bytes however the output is split into writes, and
    /// are closed here once sent (the peer has its own copies).
    ///
    /// # Errors
    /// Hands both back if the connection no longer takes writes, is not a Unix-domain
    /// connection, `data` is empty (a descriptor needs a byte to travel with) or there are more
    /// than [`MAX_FDS`](crate::sys::MAX_FDS) descriptors.
    #[allow(clippy::type_complexity)] // The rejected values, handed back as they came.
    pub fn write_with_fds(
        &mut self,
        data: Vec<u8>,
        fds: Vec<OwnedFd>,
    ) -> Result<(), (Vec<u8>, Vec<OwnedFd>)> {
        self.lp.core.queue_fds(self.id, data, fds)
    }

    /// Takes this connection's descriptor out of the reactor, still open (S29): to hand it to
    /// another process or reactor ([`write_with_fds`](Self::write_with_fds), then
    /// [`LoopCx::adopt_stream`] there). The peer notices nothing. The connection then ends
    /// here with [`CloseReason::Detached`](crate::CloseReason::Detached).
    ///
    /// # Errors
    /// `WouldBlock` while output is still queued (it cannot follow the descriptor: try again
    /// once it is flushed, e.g. from a timer); `NotConnected` unless the connection is open.
    pub fn detach(&mut self) -> io::Result<OwnedFd> {
        self.lp.core.detach(self.id)
    }
}
