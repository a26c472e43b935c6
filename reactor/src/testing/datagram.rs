//! An in-memory datagram pipe: a UDP socket with no descriptor, for running [`Datagrams`]
//! handlers and the reactor's own UDP code (read loop, send queue, truncation, errors) without
//! sockets (S30).
//!
//! The reactor's side implements the crate's datagram seam, exactly as a UDP socket does; the
//! test holds the far end, a [`MemUdpPeer`], which plays the network and the kernel:
//!
//! - datagrams arrive from any address the test chooses ([`MemUdpPeer::send`]); a datagram
//!   longer than the reactor's read slot is cut and flagged as the kernel's `MSG_TRUNC` would;
//! - the kernel takes only a budget of datagrams ([`MemUdpPeer::set_send_budget`]), then sends
//!   fail with `EAGAIN`, and a writable edge comes when the budget grows;
//! - the next operation fails with any errno ([`MemUdpPeer::fail_next`]), e.g. `ECONNREFUSED`
//!   as after an ICMP port unreachable on a connected socket, with an error edge.
//!
//! [`Datagrams`]: crate::Datagrams

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use crate::sys::RecvMeta;
use crate::transport::{Injected, Readiness, Registration};
use crate::udp::socket::DatagramTransport;

/// The state both ends share.
#[derive(Debug)]
struct Pipe {
    /// Datagrams on their way to the reactor, with their senders.
    inbound: VecDeque<(Vec<u8>, SocketAddr)>,
    /// Datagrams the reactor sent, with their destinations (`None`: the connected peer).
    sent: Vec<(Vec<u8>, Option<SocketAddr>)>,
    /// Datagrams the kernel takes before `EAGAIN` (`None`: no limit).
    send_budget: Option<usize>,
    /// The errno the next operation fails with.
    fail_next: Option<i32>,
    local: SocketAddr,
    peer: Option<SocketAddr>,
    /// The reactor's slab index and queue, for raising edges.
    waker: Option<(usize, Injected)>,
    /// The readiness gathered since the reactor last took it.
    pending: Readiness,
    /// An entry for this pipe is on the injected queue.
    queued: bool,
}

impl Pipe {
    /// Raises an edge: records it and queues the pipe once.
    fn raise(&mut self, f: impl FnOnce(&mut Readiness)) {
        f(&mut self.pending);
        if !self.queued {
            if let Some((index, injected)) = &self.waker {
                injected.borrow_mut().push(*index);
                self.queued = true;
            }
        }
    }

    fn take_failure(&mut self) -> io::Result<()> {
        match self.fail_next.take() {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => Ok(()),
        }
    }

    /// Takes one datagram for sending if the budget allows.
    fn take_budget(&mut self) -> bool {
        match &mut self.send_budget {
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
            None => true,
        }
    }
}

/// The reactor's end: a datagram socket in memory.
#[derive(Debug)]
pub(crate) struct MemUdp {
    pipe: Rc<RefCell<Pipe>>,
}

/// The test's end of an in-memory UDP socket: the network and the kernel, scripted.
#[derive(Clone, Debug)]
pub struct MemUdpPeer {
    pipe: Rc<RefCell<Pipe>>,
}

/// A socket bound to `local` (connected to `peer` if given), and the test's end of it.
pub(crate) fn pipe(local: SocketAddr, peer: Option<SocketAddr>) -> (MemUdp, MemUdpPeer) {
    let pipe = Rc::new(RefCell::new(Pipe {
        inbound: VecDeque::new(),
        sent: Vec::new(),
        send_budget: None,
        fail_next: None,
        local,
        peer,
        waker: None,
        pending: Readiness::default(),
        queued: false,
    }));
    (
        MemUdp {
            pipe: Rc::clone(&pipe),
        },
        MemUdpPeer { pipe },
    )
}

impl MemUdpPeer {
    /// Delivers one datagram from `from` to the reactor's socket (a readable edge).
    pub fn send(&self, data: &[u8], from: SocketAddr) {
        let mut p = self.pipe.borrow_mut();
        p.inbound.push_back((data.to_vec(), from));
        p.raise(|r| r.readable = true);
    }

    /// Takes what the reactor's socket sent so far, in order, with the destinations (`None`:
    /// the connected peer).
    pub fn take_sent(&self) -> Vec<(Vec<u8>, Option<SocketAddr>)> {
        std::mem::take(&mut self.pipe.borrow_mut().sent)
    }

    /// Datagrams sent to the reactor and not yet read.
    pub fn unread(&self) -> usize {
        self.pipe.borrow().inbound.len()
    }

    /// Lets the kernel take `budget` more datagrams before `EAGAIN` (`None`: no limit). A
    /// budget that grows raises a writable edge.
    pub fn set_send_budget(&self, budget: Option<usize>) {
        let mut p = self.pipe.borrow_mut();
        let grows = match (p.send_budget, budget) {
            (Some(old), Some(new)) => new > old,
            (Some(_), None) => true,
            _ => false,
        };
        p.send_budget = budget;
        if grows {
            p.raise(|r| r.writable = true);
        }
    }

    /// Makes the socket's next operation fail with `errno` (e.g. `libc::ECONNREFUSED`, as the
    /// kernel reports an ICMP port unreachable on a connected socket), with an error edge.
    pub fn fail_next(&self, errno: i32) {
        let mut p = self.pipe.borrow_mut();
        p.fail_next = Some(errno);
        p.raise(|r| r.error = true);
    }
}

impl DatagramTransport for MemUdp {
    fn register(&mut self, at: Registration<'_>) -> io::Result<()> {
        let mut p = self.pipe.borrow_mut();
        p.waker = Some((at.token.0, Rc::clone(at.injected)));
        // Datagrams sent before registration are readable at once.
        if !p.inbound.is_empty() {
            p.raise(|r| r.readable = true);
        }
        Ok(())
    }

    fn recv_one(&mut self, buf: &mut [u8]) -> io::Result<RecvMeta> {
        let mut p = self.pipe.borrow_mut();
        p.take_failure()?;
        let (data, from) = p
            .inbound
            .pop_front()
            .ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock))?;
        let len = data.len().min(buf.len());
        buf[..len].copy_from_slice(&data[..len]);
        Ok(RecvMeta {
            len,
            truncated: data.len() > buf.len(),
            from: Some(from),
        })
    }

    fn recv_batch(
        &mut self,
        buf: &mut [u8],
        slot: usize,
        metas: &mut [RecvMeta],
    ) -> io::Result<usize> {
        let mut n = 0;
        for (i, meta) in metas.iter_mut().enumerate() {
            let Some(chunk) = buf.get_mut(i * slot..(i + 1) * slot) else {
                break;
            };
            match self.recv_one(chunk) {
                Ok(m) => *meta = m,
                // As recvmmsg: an error after the first datagram ends the batch quietly.
                Err(e) if n == 0 => return Err(e),
                Err(_) => break,
            }
            n += 1;
        }
        Ok(n)
    }

    fn send_one(&mut self, data: &[u8], to: Option<SocketAddr>) -> io::Result<usize> {
        let mut p = self.pipe.borrow_mut();
        p.take_failure()?;
        if to.is_none() && p.peer.is_none() {
            return Err(io::Error::from_raw_os_error(libc::EDESTADDRREQ));
        }
        if !p.take_budget() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        p.sent.push((data.to_vec(), to));
        Ok(data.len())
    }

    fn send_batch(&mut self, msgs: &[(&[u8], Option<SocketAddr>)]) -> io::Result<usize> {
        let mut n = 0;
        for (data, to) in msgs {
            match self.send_one(data, *to) {
                Ok(_) => n += 1,
                Err(e) if n == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(n)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.pipe.borrow().local)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.pipe
            .borrow()
            .peer
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOTCONN))
    }

    fn take_readiness(&mut self) -> Option<Readiness> {
        let mut p = self.pipe.borrow_mut();
        p.queued = false;
        Some(std::mem::take(&mut p.pending))
    }
}
