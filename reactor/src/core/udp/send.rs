//! Sending on a UDP socket: at once, gathered for one `sendmmsg` after a read batch
//! ([`UdpConfig::batch_sends`](crate::UdpConfig::batch_sends)), or queued when the kernel would
//! block and sent in order on writability; every datagram is sent whole or counted as dropped,
//! in the socket's [`UdpStats`](crate::UdpStats) and the reactor's
//! [`Stats`](crate::Stats) alike.

use std::io;
use std::net::SocketAddr;

use super::super::Net;
use crate::udp::{SendPolicy, Sent, UdpId};
use crate::CloseReason;

/// Whether an error on a connected socket ends it: the ICMP errors the kernel reports there.
pub(super) fn ends_connected(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED)
            | Some(libc::EHOSTUNREACH)
            | Some(libc::ENETUNREACH)
            | Some(libc::EHOSTDOWN)
    )
}

impl<App> Net<App> {
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
                self.stats.datagrams_out += 1;
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
                    self.stats.datagrams_dropped += 1;
                    Ok(Sent::Dropped)
                }
            }
            Err(e) => {
                u.stats.send_errors += 1;
                u.stats.dropped += 1;
                let ends = u.connected && ends_connected(&e);
                self.stats.datagrams_dropped += 1;
                if ends {
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
    pub(super) fn flush_batched(&mut self, index: usize) {
        let Some(u) = self.udp_at(index) else { return };
        if u.out_meta.is_empty() {
            return;
        }
        let (mut done, mut out, mut ended) = (0, 0u64, None);
        // The reactor's counters take what this call adds to the socket's.
        let (sent_before, dropped_before) = (u.stats.sent, u.stats.dropped);
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
        self.settle_sends(index, (sent_before, dropped_before), out, ended);
    }

    /// Sends what waits, in batches, until the queue empties or the kernel would block.
    /// Returns whether the queue emptied during this call.
    pub(super) fn flush_udp(&mut self, index: usize) -> bool {
        let Some(u) = self.udp_at(index) else {
            return false;
        };
        if u.queue.is_empty() || u.is_dead() {
            return false;
        }
        let mut ended = None;
        let mut out = 0;
        let (sent_before, dropped_before) = (u.stats.sent, u.stats.dropped);
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
        if self.settle_sends(index, (sent_before, dropped_before), out, ended) {
            return false;
        }
        // A draining socket ends once its queue is out.
        self.end_if_drained(index);
        emptied
    }

    /// After a burst of sends: the reactor's counters take what the socket's gained since
    /// `before` (sent, dropped) and `out` bytes, the idle timer learns of the traffic, and a
    /// connected socket the kernel refused is ended. Returns whether it was.
    fn settle_sends(
        &mut self,
        index: usize,
        before: (u64, u64),
        out: u64,
        ended: Option<CloseReason>,
    ) -> bool {
        let Some(u) = self.udp_at(index) else {
            return false;
        };
        let idle = u.idle.is_some();
        let (sent, dropped) = (u.stats.sent - before.0, u.stats.dropped - before.1);
        self.stats.bytes_out += out;
        self.stats.datagrams_out += sent;
        self.stats.datagrams_dropped += dropped;
        if idle {
            self.touched_udp(index);
        }
        match ended {
            Some(reason) => {
                self.kill_udp(index, reason);
                true
            }
            None => false,
        }
    }
}
