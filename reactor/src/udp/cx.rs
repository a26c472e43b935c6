//! The context of a UDP socket's callbacks, and the loop-wide calls that open UDP sockets.

use std::io;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use super::socket::UdpSocket;
use super::{Datagrams, Sent, UdpConfig, UdpId, UdpStats};
use crate::{LoopCx, TimerId};

/// The context of one UDP socket's callback: this socket's operations, plus everything of
/// [`LoopCx`] through `Deref`.
pub struct UdpCx<'a, App> {
    lp: LoopCx<'a, App>,
    id: UdpId,
}

impl<App> std::fmt::Debug for UdpCx<'_, App> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpCx").field("socket", &self.id).finish()
    }
}

impl<'a, App> Deref for UdpCx<'a, App> {
    type Target = LoopCx<'a, App>;
    fn deref(&self) -> &LoopCx<'a, App> {
        &self.lp
    }
}

impl<App> DerefMut for UdpCx<'_, App> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.lp
    }
}

impl<'a, App> UdpCx<'a, App> {
    pub(crate) fn new(lp: LoopCx<'a, App>, id: UdpId) -> Self {
        UdpCx { lp, id }
    }

    /// This socket.
    pub fn id(&self) -> UdpId {
        self.id
    }

    /// Sends `data` to `to` as one datagram; see [`LoopCx::udp_send_to`].
    ///
    /// # Errors
    /// As [`LoopCx::udp_send_to`].
    pub fn send_to(&mut self, data: &[u8], to: SocketAddr) -> io::Result<Sent> {
        let id = self.id;
        self.lp.udp_send_to(id, data, to)
    }

    /// Sends `data` to the connected peer; see [`LoopCx::udp_send`].
    ///
    /// # Errors
    /// As [`LoopCx::udp_send`].
    pub fn send(&mut self, data: &[u8]) -> io::Result<Sent> {
        let id = self.id;
        self.lp.udp_send(id, data)
    }

    /// Closes this socket at the end of the turn; `on_close` gets
    /// [`CloseReason::Local`](crate::CloseReason::Local). Queued datagrams are dropped.
    pub fn close(&mut self) {
        let id = self.id;
        self.lp.close_udp(id);
    }

    /// This socket's counters.
    pub fn udp_stats(&self) -> UdpStats {
        self.lp.udp_stats(self.id).unwrap_or_default()
    }

    /// The local address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.lp.udp_local_addr(self.id)
    }

    /// The connected peer (`None` on a bound socket).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.lp.udp_peer_addr(self.id)
    }

    /// Arms a one-shot timer; [`Datagrams::on_timer`] gets its id when it fires. Never fires
    /// early; cancelled when the socket closes.
    pub fn set_timer(&mut self, after: Duration, tag: u64) -> Option<TimerId> {
        let id = self.id;
        self.lp.core_mut().set_udp_timer(id, after, tag)
    }

    /// Cancels a timer armed with [`set_timer`](Self::set_timer). Returns whether it was armed.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        let id = self.id;
        self.lp.core_mut().cancel_udp_timer(id, timer)
    }
}

impl<App> LoopCx<'_, App> {
    /// Binds a UDP socket to `addr` (`SO_REUSEADDR` set) whose datagrams go to `handler`
    /// (S30). Its address (useful with port 0) is [`udp_local_addr`](Self::udp_local_addr).
    ///
    /// # Errors
    /// Any error of `socket`, `bind` (e.g. `EADDRINUSE`) or of the registration.
    pub fn bind_udp(
        &mut self,
        addr: SocketAddr,
        config: UdpConfig,
        handler: impl Datagrams<App> + 'static,
    ) -> io::Result<UdpId> {
        let sock = UdpSocket::bind(addr)?;
        self.core_mut()
            .add_udp(Box::new(sock), Box::new(handler), config, false)
    }

    /// Serves a bound UDP socket made elsewhere (inherited by socket activation, see
    /// [`activation`](crate::activation)) as [`bind_udp`](Self::bind_udp) serves its own: it
    /// is made non-blocking and from then on belongs to the reactor.
    ///
    /// # Errors
    /// Making it non-blocking or registering it failed.
    pub fn adopt_udp(
        &mut self,
        sock: std::net::UdpSocket,
        config: UdpConfig,
        handler: impl Datagrams<App> + 'static,
    ) -> io::Result<UdpId> {
        let sock = UdpSocket::adopt(sock)?;
        self.core_mut()
            .add_udp(Box::new(sock), Box::new(handler), config, false)
    }

    /// Opens a UDP socket connected to `peer` (S30): it receives only the peer's datagrams,
    /// sends with [`udp_send`](Self::udp_send), and is closed with
    /// [`CloseReason::Refused`](crate::CloseReason::Refused) (or `Unreachable`) when the peer's
    /// host answers with an ICMP error.
    ///
    /// # Errors
    /// Any error of `socket`, `connect` (e.g. no route) or of the registration.
    pub fn connect_udp(
        &mut self,
        peer: SocketAddr,
        config: UdpConfig,
        handler: impl Datagrams<App> + 'static,
    ) -> io::Result<UdpId> {
        let sock = UdpSocket::connect(peer)?;
        self.core_mut()
            .add_udp(Box::new(sock), Box::new(handler), config, true)
    }

    /// Sends `data` to `to` as one datagram from socket `id`: at once, or queued or dropped
    /// when the kernel would block, as the socket's [`SendPolicy`](super::SendPolicy) and queue
    /// bound say.
    ///
    /// # Errors
    /// `NotConnected` if the socket is closed or draining in a graceful shutdown; any send error but `EAGAIN` (e.g. `EMSGSIZE`),
    /// the datagram then counted as dropped. On a connected socket an ICMP error
    /// (`ECONNREFUSED`) also closes the socket.
    pub fn udp_send_to(&mut self, id: UdpId, data: &[u8], to: SocketAddr) -> io::Result<Sent> {
        self.core_mut().udp_send(id, data, Some(to))
    }

    /// Sends `data` to a connected socket's peer; as [`udp_send_to`](Self::udp_send_to).
    ///
    /// # Errors
    /// As [`udp_send_to`](Self::udp_send_to); `EDESTADDRREQ` on a bound socket.
    pub fn udp_send(&mut self, id: UdpId, data: &[u8]) -> io::Result<Sent> {
        self.core_mut().udp_send(id, data, None)
    }

    /// Closes socket `id` at the end of the turn. Returns whether it was open.
    pub fn close_udp(&mut self, id: UdpId) -> bool {
        self.core_mut().close_udp(id)
    }

    /// Socket `id`'s counters (`None` once closed).
    pub fn udp_stats(&self, id: UdpId) -> Option<UdpStats> {
        self.core_ref().udp_stats(id)
    }

    /// Socket `id`'s local address.
    pub fn udp_local_addr(&self, id: UdpId) -> Option<SocketAddr> {
        self.core_ref().udp_local_addr(id)
    }

    /// Socket `id`'s connected peer.
    pub fn udp_peer_addr(&self, id: UdpId) -> Option<SocketAddr> {
        self.core_ref().udp_peer_addr(id)
    }

    /// Every UDP socket as it stands, for operators (what the `udp-echo` sample prints on
    /// SIGUSR1; connections are in [`connections`](Self::connections)).
    pub fn udp_sockets(&self) -> Vec<super::UdpSnapshot> {
        self.core_ref().udp_snapshot()
    }
}
