//! UDP sockets in the core (S30): their slots, the read loop and its budget, sends and the
//! send queue, timers, and the close that reports `on_close` once.
//!
//! # Implementation notes
//! A UDP socket's handler is taken out of its slot while it runs, as a connection's is, and so
//! is the socket's read buffer while a batch is being delivered: the handler's context can then
//! reach the socket's send queue (and every other source) while it reads the batch it is given.
//! A socket is never removed during a callback: a close marks it dead and queues it on the
//! core's `dead` list, and `finalize_udp` removes it at the end of the turn.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use timers::{Tick, TimerKey};

use super::{Core, Net, Source};
use crate::sys::RecvMeta;
use crate::timer::{ticks_ceil, TimerEntry};
use crate::transport::Readiness;
use crate::udp::queue::SendQueue;
use crate::udp::socket::DatagramTransport;
use crate::udp::{Datagrams, SendPolicy, Sent, UdpConfig, UdpCx, UdpId, UdpStats};
use crate::{CloseReason, LoopCx, TimerId};

/// The kinds of timer a UDP socket can have armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UdpTimer {
    /// The idle timeout, checked lazily against the last activity.
    Idle,
    /// A handler timer; its tag is kept with the socket.
    User,
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
    /// `Some` once closed: the reason `on_close` will get.
    dead: Option<CloseReason>,
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
}

/// Whether an error on a connected socket ends it: the ICMP errors the kernel reports there.
fn ends_connected(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED)
            | Some(libc::EHOSTUNREACH)
            | Some(libc::ENETUNREACH)
            | Some(libc::EHOSTDOWN)
    )
}

impl<App> Net<App> {
    fn udp_at(&mut self, index: usize) -> Option<&mut UdpSource<App>> {
        match self.sources.get_mut(index) {
            Some(Source::Udp(u)) => Some(u),
            _ => None,
        }
    }

    fn udp_mut(&mut self, id: UdpId) -> Option<&mut UdpSource<App>> {
        self.udp_at(id.index as usize)
            .filter(|u| u.generation == id.generation && u.dead.is_none())
    }

    fn udp_ref(&self, id: UdpId) -> Option<&UdpSource<App>> {
        match self.sources.get(id.index as usize) {
            Some(Source::Udp(u)) if u.generation == id.generation && u.dead.is_none() => Some(u),
            _ => None,
        }
    }

    /// Marks a socket dead with `reason` and queues it for `finalize_udp`.
    pub(crate) fn kill_udp(&mut self, index: usize, reason: CloseReason) {
        let Some(u) = self.udp_at(index) else { return };
        if u.dead.is_some() {
            return;
        }
        log::debug!("udp #{index} closing: {reason}");
        u.dead = Some(reason);
        self.dead.push(index);
    }

    /// Closes a socket. Returns whether it was open.
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

    /// Sends one datagram, or queues or drops it when the kernel would block (see the `udp`
    /// module). Errors other than `EAGAIN` are returned, and close a connected socket when they
    /// are the peer's ICMP errors.
    pub(crate) fn udp_send(
        &mut self,
        id: UdpId,
        data: &[u8],
        to: Option<SocketAddr>,
    ) -> io::Result<Sent> {
        let index = id.index as usize;
        let Some(u) = self.udp_mut(id) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if u.deferring && u.queue.is_empty() {
            if u.out_meta.len() < crate::sys::MAX_BATCH {
                u.out_meta.push((u.out_bytes.len(), data.len(), to));
                u.out_bytes.extend_from_slice(data);
                return Ok(Sent::Batched);
            }
            // A full batch goes out now; this one starts the next (or waits in the queue).
            self.flush_batched(index);
            return self.udp_send(id, data, to);
        }
        let result = if u.queue.is_empty() {
            u.sock.send_one(data, to)
        } else {
            // Keep the order: behind what already waits.
            Err(io::ErrorKind::WouldBlock.into())
        };
        match result {
            Ok(n) => {
                u.stats.sent += 1;
                u.stats.send_calls += 1;
                u.stats.bytes_sent += n as u64;
                let idle = u.idle.is_some();
                self.stats.bytes_out += n as u64;
                if idle {
                    self.touched_udp(index);
                }
                Ok(Sent::Now)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let queued = u.config.policy == SendPolicy::Queue
                    && u.queue
                        .push(data, to, u.config.max_queued, u.config.max_queued_bytes);
                if queued {
                    Ok(Sent::Queued)
                } else {
                    u.stats.dropped += 1;
                    Ok(Sent::Dropped)
                }
            }
            Err(e) => {
                u.stats.send_errors += 1;
                u.stats.dropped += 1;
                if u.connected && ends_connected(&e) {
                    let reason = CloseReason::from_io(io::Error::from_raw_os_error(
                        e.raw_os_error().unwrap_or(libc::EIO),
                    ));
                    self.kill_udp(index, reason);
                }
                Err(e)
            }
        }
    }

    /// Sends the replies gathered during a read batch with `sendmmsg`. What the kernel does not
    /// take meets the socket's policy as a send that would block does: queued (in order, within
    /// the bound) or dropped and counted.
    fn flush_batched(&mut self, index: usize) {
        let Some(u) = self.udp_at(index) else { return };
        if u.out_meta.is_empty() {
            return;
        }
        let (mut done, mut out, mut ended) = (0, 0u64, None);
        while done < u.out_meta.len() && ended.is_none() {
            let batch: Vec<(&[u8], Option<SocketAddr>)> = u.out_meta[done..]
                .iter()
                .take(crate::sys::MAX_BATCH)
                .map(|&(start, len, to)| (&u.out_bytes[start..start + len], to))
                .collect();
            match u.sock.send_batch(&batch) {
                Ok(0) => break,
                Ok(n) => {
                    let bytes: usize = batch[..n].iter().map(|(d, _)| d.len()).sum();
                    u.stats.sent += n as u64;
                    u.stats.send_calls += 1;
                    u.stats.bytes_sent += bytes as u64;
                    out += bytes as u64;
                    done += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    done += 1;
                    u.stats.send_errors += 1;
                    u.stats.dropped += 1;
                    if u.connected && ends_connected(&e) {
                        ended = Some(CloseReason::from_io(e));
                    } else {
                        log::debug!("udp #{index}: send failed: {e}");
                    }
                }
            }
        }
        // The kernel would block (or the socket ended): the rest waits or is dropped.
        for &(start, len, to) in &u.out_meta[done..] {
            let queued = ended.is_none()
                && u.config.policy == SendPolicy::Queue
                && u.queue.push(
                    &u.out_bytes[start..start + len],
                    to,
                    u.config.max_queued,
                    u.config.max_queued_bytes,
                );
            if !queued {
                u.stats.dropped += 1;
            }
        }
        u.out_meta.clear();
        u.out_bytes.clear();
        let idle = u.idle.is_some();
        self.stats.bytes_out += out;
        if idle {
            self.touched_udp(index);
        }
        if let Some(reason) = ended {
            self.kill_udp(index, reason);
        }
    }

    /// Records activity for the idle timeout (the clock read once per call, after the I/O).
    fn touched_udp(&mut self, index: usize) {
        let at = self.clock.now_ceil();
        if let Some(u) = self.udp_at(index) {
            u.last_activity = at;
        }
    }

    /// Sends what waits, in batches, until the queue empties or the kernel would block.
    /// Returns whether the queue emptied during this call.
    fn flush_udp(&mut self, index: usize) -> bool {
        let Some(u) = self.udp_at(index) else {
            return false;
        };
        if u.queue.is_empty() || u.dead.is_some() {
            return false;
        }
        let mut ended = None;
        let mut out = 0;
        while !u.queue.is_empty() {
            // The queued path only: one small vector per batch of up to MAX_BATCH datagrams.
            let mut batch = Vec::with_capacity(crate::sys::MAX_BATCH);
            u.queue.front(crate::sys::MAX_BATCH, &mut batch);
            let result = u.sock.send_batch(&batch);
            drop(batch);
            match result {
                Ok(0) => break,
                Ok(n) => {
                    let bytes = u.queue.pop(n);
                    u.stats.sent += n as u64;
                    u.stats.send_calls += 1;
                    u.stats.bytes_sent += bytes;
                    out += bytes;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // The first datagram failed: drop it, count it, go on with the rest.
                    u.queue.pop(1);
                    u.stats.send_errors += 1;
                    u.stats.dropped += 1;
                    if u.connected && ends_connected(&e) {
                        ended = Some(CloseReason::from_io(e));
                        break;
                    }
                    log::debug!("udp #{index}: send failed: {e}");
                }
            }
        }
        let emptied = u.queue.is_empty();
        let idle = u.idle.is_some();
        self.stats.bytes_out += out;
        if idle {
            self.touched_udp(index);
        }
        if let Some(reason) = ended {
            self.kill_udp(index, reason);
            return false;
        }
        emptied
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
        let entry = self.net.sources.vacant_entry();
        let index = entry.key();
        sock.register(crate::transport::Registration {
            registry: &self.net.registry,
            token: mio::Token(index),
            injected: &self.net.injected,
        })?;
        let slots = config.batch.max(1);
        entry.insert(Source::Udp(Box::new(UdpSource {
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
            dead: None,
            idle: None,
            last_activity: self.net.clock.now_ceil(),
            user_timers: Vec::new(),
            deferring: false,
            out_bytes: Vec::new(),
            out_meta: Vec::new(),
        })));
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
        Ok(id)
    }

    /// Runs `f` with the socket's handler taken out of its slot.
    fn call_udp<R>(
        &mut self,
        index: usize,
        f: impl FnOnce(&mut dyn Datagrams<App>, &mut UdpCx<'_, App>) -> R,
    ) -> Option<R> {
        let u = self.udp_at(index)?;
        if u.dead.is_some() {
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

    /// Serves a readiness event of a UDP socket.
    pub(crate) fn udp_ready(&mut self, index: usize, ready: Readiness) {
        if ready.writable && self.flush_udp(index) {
            self.call_udp(index, |h, cx| h.on_writable(cx));
        }
        if ready.readable || ready.error || ready.read_closed {
            self.read_udp(index);
        }
    }

    /// Serves a socket from the ready list (its read budget ran out last turn).
    pub(crate) fn udp_from_ready_list(&mut self, index: usize) {
        if let Some(u) = self.udp_at(index) {
            u.ready = false;
            self.read_udp(index);
        }
    }

    /// Serves an edge the socket's transport queued itself (no descriptor).
    pub(crate) fn udp_injected(&mut self, index: usize) {
        let ready = self.udp_at(index).and_then(|u| u.sock.take_readiness());
        if let Some(ready) = ready {
            self.udp_ready(index, ready);
        }
    }

    /// Puts a socket on the ready list once.
    pub(crate) fn mark_udp_ready(&mut self, index: usize) {
        if let Some(u) = self.udp_at(index) {
            if !u.ready {
                u.ready = true;
                self.net.ready.push(index);
            }
        }
    }

    /// Reads batches until the kernel has no more (`EAGAIN` or a short batch; edge-triggered),
    /// the read budget is spent (then the socket goes on the ready list), or the socket closes.
    fn read_udp(&mut self, index: usize) {
        let Some(u) = self.udp_at(index) else { return };
        let mut budget = u.config.reads_per_turn;
        let mut any = false;
        loop {
            let Some(u) = self.udp_at(index) else { return };
            if u.dead.is_some() {
                break;
            }
            if budget == 0 {
                self.mark_udp_ready(index);
                break;
            }
            budget -= 1;
            let Some(mut buf) = u.buf.take() else { break };
            let mut metas = std::mem::take(&mut u.metas);
            let slot = u.config.max_datagram;
            let result = if metas.len() > 1 {
                u.sock.recv_batch(&mut buf, slot, &mut metas)
            } else {
                u.sock.recv_one(&mut buf[..slot]).map(|m| {
                    metas[0] = m;
                    1
                })
            };
            // A short batch found the receive queue empty, as a short read does for a
            // stream: the next datagram raises a new edge, so no read to `EAGAIN` is needed.
            let batched = metas.len() > 1;
            let n = match result {
                Ok(n) => n,
                Err(e) => {
                    u.buf = Some(buf);
                    u.metas = metas;
                    if e.kind() == io::ErrorKind::WouldBlock {
                        break;
                    }
                    u.stats.recv_errors += 1;
                    if u.connected && ends_connected(&e) {
                        self.kill_udp(index, CloseReason::from_io(e));
                        break;
                    }
                    self.call_udp(index, |h, cx| h.on_error(cx, e));
                    continue;
                }
            };
            any = true;
            u.stats.recv_calls += 1;
            let bytes: usize = metas.iter().take(n).map(|m| m.len).sum();
            self.net.stats.bytes_in += bytes as u64;
            let Some(u) = self.udp_at(index) else { return };
            let peer = if u.connected {
                u.sock.peer_addr().ok()
            } else {
                None
            };
            u.deferring = u.config.batch_sends;
            for (i, meta) in metas.iter().take(n).enumerate() {
                let Some(u) = self.udp_at(index) else { return };
                if u.dead.is_some() {
                    break;
                }
                u.stats.received += 1;
                u.stats.bytes_received += meta.len as u64;
                let Some(from) = meta.from.or(peer) else {
                    continue;
                };
                let data = &buf[i * slot..i * slot + meta.len.min(slot)];
                if meta.truncated {
                    u.stats.truncated += 1;
                    log::debug!(
                        "udp #{index}: datagram from {from} longer than {slot} bytes, truncated"
                    );
                    self.call_udp(index, |h, cx| h.on_truncated(cx, data, from));
                } else {
                    self.call_udp(index, |h, cx| h.on_datagram(cx, data, from));
                }
            }
            let short = batched && n < metas.len();
            if let Some(u) = self.udp_at(index) {
                u.buf = Some(buf);
                u.metas = metas;
                u.deferring = false;
            }
            self.flush_batched(index);
            if short {
                break;
            }
        }
        if any && self.udp_at(index).is_some_and(|u| u.idle.is_some()) {
            self.touched_udp(index);
        }
    }

    /// Arms a handler timer on a socket.
    pub(crate) fn set_udp_timer(
        &mut self,
        id: UdpId,
        after: Duration,
        tag: u64,
    ) -> Option<TimerId> {
        self.udp_ref(id)?;
        let key = self.arm(after, TimerEntry::Udp(id, UdpTimer::User));
        self.udp_mut(id)?.user_timers.push((key, tag));
        Some(TimerId { key, tag })
    }

    /// Cancels a handler timer. Returns whether it was armed.
    pub(crate) fn cancel_udp_timer(&mut self, id: UdpId, timer: TimerId) -> bool {
        let Some(u) = self.udp_mut(id) else {
            return false;
        };
        let before = u.user_timers.len();
        u.user_timers.retain(|(k, _)| *k != timer.key);
        if u.user_timers.len() == before {
            return false;
        }
        self.wheel.cancel(timer.key).is_some()
    }

    /// A UDP socket's timer fired.
    pub(crate) fn fire_udp(&mut self, key: TimerKey, id: UdpId, kind: UdpTimer) {
        let index = id.index as usize;
        let now = self.now;
        let Some(u) = self.udp_mut(id) else { return };
        match kind {
            UdpTimer::Idle => {
                u.idle = None;
                let Some(idle) = u.config.idle_timeout else {
                    return;
                };
                let due = u.last_activity.saturating_add(ticks_ceil(idle));
                if due <= now {
                    self.kill_udp(index, CloseReason::IdleTimeout);
                } else {
                    let delay = Duration::from_millis(due - now);
                    let key = self.arm(delay, TimerEntry::Udp(id, UdpTimer::Idle));
                    if let Some(u) = self.udp_at(index) {
                        u.idle = Some(key);
                    }
                }
            }
            UdpTimer::User => {
                let Some(pos) = u.user_timers.iter().position(|(k, _)| *k == key) else {
                    return;
                };
                let (_, tag) = u.user_timers.swap_remove(pos);
                self.call_udp(index, |h, cx| h.on_timer(cx, TimerId { key, tag }));
            }
        }
    }

    /// Removes a dead UDP socket and calls its `on_close`, once. Returns whether `index` was a
    /// UDP socket.
    pub(crate) fn finalize_udp(&mut self, index: usize) -> bool {
        match self.net.sources.get(index) {
            Some(Source::Udp(u)) if u.dead.is_some() => {}
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
        let reason = u.dead.take().unwrap_or(CloseReason::Local);
        log::debug!(
            "udp #{index} closed: {reason} (in {}, out {}, dropped {})",
            u.stats.received,
            u.stats.sent,
            u.stats.dropped + u.queue.clear() as u64 + u.out_meta.len() as u64
        );
        if let Some(mut handler) = u.handler.take() {
            handler.on_close(self.app(), reason);
        }
        true
    }
}
