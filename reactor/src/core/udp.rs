//! UDP sockets in the core (S30): a socket's slot and its life, from `add_udp` to the
//! `finalize_udp` that reports `on_close` once, including its part in a graceful shutdown. The
//! read loop is in `read`, sends and the send queue in `send`, timers in `timeouts`.
//!
//! # Implementation notes
//! A UDP socket's handler is taken out of its slot while it runs, as a connection's is, and so
//! is the socket's read buffer while a batch is being delivered: the handler's context can then
//! reach the socket's send queue (and every other source) while it reads the batch it is given.
//! A socket is never removed during a callback: a close marks it dead and queues it on the
//! core's `dead` list, and `finalize_udp` removes it at the end of the turn.
//!
//! A graceful shutdown drains a socket as a graceful close drains a connection
//! ([`UdpPhase::Draining`]): no datagram is read or delivered any more and no new send is taken,
//! the replies already gathered or queued go out as the kernel takes them, and once none is left
//! (or the grace is over, the rest counted as dropped) the socket closes with
//! [`CloseReason::Shutdown`]. Its handler hears of it once, in `on_close`, as libuv's handles
//! hear of a close once and tokio's sockets end with their runtime; the loop waits for its UDP
//! sockets as it waits for its connections.

use std::io;
use std::net::SocketAddr;

use timers::{Tick, TimerKey};

use super::{Core, Net, Source};
use crate::sys::RecvMeta;
use crate::timer::TimerEntry;
use crate::udp::queue::SendQueue;
use crate::udp::socket::DatagramTransport;
use crate::udp::{Datagrams, UdpConfig, UdpCx, UdpId, UdpSnapshot, UdpStats};
use crate::{CloseReason, LoopCx};

mod read;
mod send;
mod timeouts;

pub(crate) use timeouts::UdpTimer;

/// Where a UDP socket is in its life.
#[derive(Debug)]
enum UdpPhase {
    /// Reading, delivering and sending.
    Open,
    /// A graceful shutdown began: nothing is read or taken for sending; what was gathered or
    /// queued goes out, then the socket closes (see the module's notes).
    Draining,
    /// Closed with this reason; `finalize_udp` removes it at the end of the turn.
    Dead(CloseReason),
}

/// One UDP socket's slot.
pub(crate) struct UdpSource<App> {
    /// `None` only while one of its callbacks runs.
    handler: Option<Box<dyn Datagrams<App>>>,
    sock: Box<dyn DatagramTransport>,
    generation: u32,
    config: UdpConfig,
    /// Connected sockets are closed by the kernel's errors; bound ones report them.
    connected: bool,
    /// `batch` slots of `max_datagram` bytes; `None` while a batch is being delivered.
    buf: Option<Box<[u8]>>,
    metas: Vec<RecvMeta>,
    queue: SendQueue,
    stats: UdpStats,
    /// On the ready list (read budget spent).
    ready: bool,
    /// Open, draining for a shutdown, or dead with the reason `on_close` will get.
    phase: UdpPhase,
    /// The idle timer, if an idle timeout is set.
    idle: Option<TimerKey>,
    /// Clock tick (rounded up) of the last datagram in or out.
    last_activity: Tick,
    /// Handler timers and their tags.
    user_timers: Vec<(TimerKey, u64)>,
    /// A read batch is being delivered and its replies are gathered (`batch_sends`).
    deferring: bool,
    /// The gathered replies' bytes, back to back; reused, so gathering allocates nothing in
    /// steady state.
    out_bytes: Vec<u8>,
    /// Each gathered reply: its start in `out_bytes`, its length and its destination.
    out_meta: Vec<(usize, usize, Option<SocketAddr>)>,
}

impl<App> UdpSource<App> {
    fn id(&self, index: usize) -> UdpId {
        UdpId {
            index: index as u32,
            generation: self.generation,
        }
    }

    fn is_open(&self) -> bool {
        matches!(self.phase, UdpPhase::Open)
    }

    fn is_dead(&self) -> bool {
        matches!(self.phase, UdpPhase::Dead(_))
    }
}

impl<App> Net<App> {
    fn udp_at(&mut self, index: usize) -> Option<&mut UdpSource<App>> {
        match self.sources.get_mut(index) {
            Some(Source::Udp(u)) => Some(u),
            _ => None,
        }
    }

    /// The socket `id` names if it is open (not draining, not dead).
    fn udp_mut(&mut self, id: UdpId) -> Option<&mut UdpSource<App>> {
        self.udp_at(id.index as usize)
            .filter(|u| u.generation == id.generation && u.is_open())
    }

    /// The socket `id` names if it is not dead (it may be draining).
    fn udp_ref(&self, id: UdpId) -> Option<&UdpSource<App>> {
        match self.sources.get(id.index as usize) {
            Some(Source::Udp(u)) if u.generation == id.generation && !u.is_dead() => Some(u),
            _ => None,
        }
    }

    /// Marks a socket dead with `reason` and queues it for `finalize_udp`.
    pub(crate) fn kill_udp(&mut self, index: usize, reason: CloseReason) {
        let Some(u) = self.udp_at(index) else { return };
        if u.is_dead() {
            return;
        }
        log::debug!("udp #{index} closing: {reason}");
        u.phase = UdpPhase::Dead(reason);
        self.dead.push(index);
    }

    /// Closes a socket (a draining one too). Returns whether it was open or draining.
    pub(crate) fn close_udp(&mut self, id: UdpId) -> bool {
        if self.udp_ref(id).is_none() {
            return false;
        }
        self.kill_udp(id.index as usize, CloseReason::Local);
        true
    }

    /// A socket's counters.
    pub(crate) fn udp_stats(&self, id: UdpId) -> Option<UdpStats> {
        let u = self.udp_ref(id)?;
        let mut stats = u.stats.clone();
        stats.queued = u.queue.len() as u64;
        Some(stats)
    }

    /// A socket's local address.
    pub(crate) fn udp_local_addr(&self, id: UdpId) -> Option<SocketAddr> {
        self.udp_ref(id)?.sock.local_addr().ok()
    }

    /// A connected socket's peer.
    pub(crate) fn udp_peer_addr(&self, id: UdpId) -> Option<SocketAddr> {
        self.udp_ref(id)?.sock.peer_addr().ok()
    }

    /// Every UDP socket not yet removed, for operators (beside the connections' snapshot).
    pub(crate) fn udp_snapshot(&self) -> Vec<UdpSnapshot> {
        self.sources
            .iter()
            .filter_map(|(index, source)| match source {
                Source::Udp(u) => {
                    let mut stats = u.stats.clone();
                    stats.queued = u.queue.len() as u64;
                    Some(UdpSnapshot {
                        id: u.id(index),
                        local: u.sock.local_addr().ok(),
                        peer: u.sock.peer_addr().ok(),
                        state: match u.phase {
                            UdpPhase::Open => "open",
                            UdpPhase::Draining => "draining",
                            UdpPhase::Dead(_) => "dead",
                        },
                        timers: usize::from(u.idle.is_some()) + u.user_timers.len(),
                        stats,
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// Indexes of every UDP socket not yet dead (for shutdown, which touches them all once).
    fn live_udp(&self) -> Vec<usize> {
        self.sources
            .iter()
            .filter(|(_, s)| matches!(s, Source::Udp(u) if !u.is_dead()))
            .map(|(i, _)| i)
            .collect()
    }

    /// A graceful shutdown began: every UDP socket stops reading and taking sends, and closes
    /// once what it gathered or queued is out (see the module's notes).
    pub(crate) fn drain_all_udp(&mut self) {
        for index in self.live_udp() {
            let Some(u) = self.udp_at(index) else {
                continue;
            };
            if !u.is_open() {
                continue;
            }
            u.phase = UdpPhase::Draining;
            // No callback but `on_close` runs from now on: its timers go now.
            let timers: Vec<TimerKey> = u
                .idle
                .take()
                .into_iter()
                .chain(u.user_timers.drain(..).map(|(k, _)| k))
                .collect();
            for key in timers {
                self.wheel.cancel(key);
            }
            // Replies gathered by a batch being delivered go out when it ends (`read`); what
            // is queued waits for writability, and may go now.
            self.flush_udp(index);
            self.end_if_drained(index);
        }
    }

    /// Closes a draining socket once nothing of its output waits.
    fn end_if_drained(&mut self, index: usize) {
        let Some(u) = self.udp_at(index) else { return };
        if matches!(u.phase, UdpPhase::Draining) && !u.deferring && u.queue.is_empty() {
            self.kill_udp(index, CloseReason::Shutdown);
        }
    }

    /// The shutdown's grace is over, or the loop stops at once: every UDP socket closes now,
    /// what still waits to be sent is dropped (counted by `finalize_udp`).
    pub(crate) fn end_all_udp(&mut self) {
        let live = self.live_udp();
        if !live.is_empty() {
            log::debug!("closing {} UDP sockets", live.len());
        }
        for index in live {
            self.kill_udp(index, CloseReason::Shutdown);
        }
    }
}

impl<App> Core<App> {
    /// Adds a UDP socket served by `handler`, registers it and runs its `on_open`.
    pub(crate) fn add_udp(
        &mut self,
        mut sock: Box<dyn DatagramTransport>,
        handler: Box<dyn Datagrams<App>>,
        config: UdpConfig,
        connected: bool,
    ) -> io::Result<UdpId> {
        self.net.next_generation = self.net.next_generation.wrapping_add(1);
        let generation = self.net.next_generation;
        let index = self.net.sources.vacant_key();
        sock.register(crate::transport::Registration {
            registry: &self.net.registry,
            token: mio::Token(index),
            injected: &self.net.injected,
        })?;
        let slots = config.batch.max(1);
        let inserted = self.net.sources.insert(Source::Udp(Box::new(UdpSource {
            handler: Some(handler),
            sock,
            generation,
            buf: Some(vec![0u8; slots * config.max_datagram].into_boxed_slice()),
            metas: vec![RecvMeta::default(); slots],
            config,
            connected,
            queue: SendQueue::default(),
            stats: UdpStats::default(),
            ready: false,
            phase: UdpPhase::Open,
            idle: None,
            last_activity: self.net.clock.now_ceil(),
            user_timers: Vec::new(),
            deferring: false,
            out_bytes: Vec::new(),
            out_meta: Vec::new(),
        })));
        debug_assert_eq!(inserted, index);
        self.net.stats.udp_sockets += 1;
        let id = UdpId {
            index: index as u32,
            generation,
        };
        if let Some(idle) = self.udp_ref(id).and_then(|u| u.config.idle_timeout) {
            let key = self.arm(idle, TimerEntry::Udp(id, UdpTimer::Idle));
            if let Some(u) = self.udp_at(index) {
                u.idle = Some(key);
            }
        }
        self.call_udp(index, |h, cx| h.on_open(cx));
        // Bound while the loop shuts down (by a closing handler, say): it drains at once, or
        // `run` would wait for it until the grace ends.
        if self.net.shutting_down {
            self.net.drain_all_udp();
        }
        Ok(id)
    }

    /// Runs `f` with the socket's handler taken out of its slot, if the socket is open.
    fn call_udp<R>(
        &mut self,
        index: usize,
        f: impl FnOnce(&mut dyn Datagrams<App>, &mut UdpCx<'_, App>) -> R,
    ) -> Option<R> {
        let u = self.udp_at(index)?;
        if !u.is_open() {
            return None;
        }
        let id = u.id(index);
        let mut handler = u.handler.take()?;
        let result = f(&mut *handler, &mut UdpCx::new(LoopCx::new(self), id));
        // Slots are only removed by `finalize_udp`, never during a callback.
        if let Some(u) = self.udp_at(index) {
            u.handler = Some(handler);
        }
        Some(result)
    }

    /// Removes a dead UDP socket and calls its `on_close`, once. Returns whether `index` was a
    /// UDP socket.
    pub(crate) fn finalize_udp(&mut self, index: usize) -> bool {
        match self.net.sources.get(index) {
            Some(Source::Udp(u)) if u.is_dead() => {}
            Some(Source::Udp(_)) => return true,
            _ => return false,
        }
        let Some(Source::Udp(mut u)) = self.net.sources.try_remove(index) else {
            return true;
        };
        if let Some(key) = u.idle.take() {
            self.net.wheel.cancel(key);
        }
        for (key, _) in u.user_timers.drain(..) {
            self.net.wheel.cancel(key);
        }
        // What still waited to be sent is dropped with the socket, and counted so.
        let unsent = u.queue.clear() as u64 + u.out_meta.len() as u64;
        u.stats.dropped += unsent;
        self.net.stats.datagrams_dropped += unsent;
        self.net.stats.udp_sockets -= 1;
        let reason = match std::mem::replace(&mut u.phase, UdpPhase::Draining) {
            UdpPhase::Dead(reason) => reason,
            _ => CloseReason::Local,
        };
        log::debug!(
            "udp #{index} closed: {reason} (in {}, out {}, dropped {})",
            u.stats.received,
            u.stats.sent,
            u.stats.dropped
        );
        if let Some(mut handler) = u.handler.take() {
            handler.on_close(self.app(), reason);
        }
        true
    }
}
