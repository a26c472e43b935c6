//! UDP echo: every datagram goes back to its sender, whole (S10, S30).
//!
//! Try it with `evdrive udp-echo` and `nc -u 127.0.0.1 7007` or
//! `socat - UDP:127.0.0.1:7007`: each line typed is one datagram, and comes back.
//!
//! It costs nothing per peer: UDP has no connections, so the handler keeps no state, and a
//! reply the kernel cannot take now waits in the socket's bounded queue or is dropped and
//! counted (the socket's [`SendPolicy`](reactor::SendPolicy)); a flood cannot grow memory.
//! A datagram longer than the read buffer is not echoed cut short: the reactor reports it as
//! truncated and this handler drops it.

use std::net::SocketAddr;

use reactor::{Datagrams, UdpCx};

/// Sends every datagram back to where it came from.
#[derive(Debug, Default, Clone, Copy)]
pub struct UdpEcho;

impl<App> Datagrams<App> for UdpEcho {
    fn on_datagram(&mut self, cx: &mut UdpCx<'_, App>, data: &[u8], from: SocketAddr) {
        // Queued or dropped datagrams are counted in the socket's stats; an error (e.g. an
        // unreachable sender) only loses this reply.
        if let Err(e) = cx.send_to(data, from) {
            log::debug!("udp echo to {from}: {e}");
        }
    }
}
