//! Reading a UDP socket: readiness, the ready list and injected edges lead to one read loop,
//! batches of `recvmmsg` (or `recvmsg` one by one) bounded per turn, each datagram delivered to
//! the handler whole or reported as truncated.

use std::io;

use super::super::Core;
use crate::transport::Readiness;
use crate::CloseReason;

use super::send::ends_connected;

impl<App> Core<App> {
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
        if !u.is_open() {
            // Draining or dead: what arrives now is left to the kernel, dropped at the close.
            return;
        }
        let mut budget = u.config.reads_per_turn;
        let mut any = false;
        loop {
            let Some(u) = self.udp_at(index) else { return };
            if !u.is_open() {
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
            let mut taken = 0;
            for (i, meta) in metas.iter().take(n).enumerate() {
                let Some(u) = self.udp_at(index) else { return };
                if !u.is_open() {
                    break;
                }
                taken += 1;
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
            self.net.stats.datagrams_in += taken;
            self.flush_batched(index);
            // A shutdown that began during the batch ends the socket once its replies are out.
            self.end_if_drained(index);
            if short {
                break;
            }
        }
        if any && self.udp_at(index).is_some_and(|u| u.idle.is_some()) {
            self.touched_udp(index);
        }
    }
}
