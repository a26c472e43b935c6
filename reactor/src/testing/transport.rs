//! The in-memory pipes and backlogs behind the transport seam, and the test's ends of them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::rc::Rc;

use std::os::fd::{BorrowedFd, OwnedFd};

use crate::transport::{Acceptor, Injected, Readiness, Registration, Stream, Transport};
use crate::ListenAddr;

/// The shared state of one in-memory connection.
#[derive(Debug, Default)]
struct Pipe {
    /// Bytes the peer sent that the reactor has not read.
    inbound: VecDeque<u8>,
    /// Bytes the reactor wrote that the peer has not taken.
    outbound: Vec<u8>,
    /// The peer half-closed: reads return 0 once `inbound` is empty.
    peer_fin: bool,
    /// The peer reset: reads and writes fail with `ECONNRESET`.
    reset: bool,
    /// Calls left that fail with `EINTR`.
    eintr: u32,
    /// The most bytes one read returns.
    read_chunk: Option<usize>,
    /// Bytes writes may still take (`None`: unlimited).
    write_budget: Option<usize>,
    /// A write was refused or cut short: the next budget increase raises a writable edge.
    write_blocked: bool,
    /// The reactor sent FIN.
    fin_sent: bool,
    /// The reactor closed its end.
    closed: bool,
    /// The reactor closed with RST.
    aborted: bool,
    /// An outgoing connect: `false` until the peer completes it.
    connected: bool,
    /// The connect verdict `SO_ERROR` will report once.
    connect_error: Option<i32>,
    /// Pending edges.
    edge_read: bool,
    edge_write: bool,
    /// Where to queue an edge once the reactor registered this pipe: its slab index and the
    /// reactor's queue.
    waker: Option<(usize, Injected)>,
    /// An entry for this pipe waits in the reactor's queue: further edges merge into it.
    queued: bool,
    /// Calls that met an injected `EINTR` and were retried.
    interrupted: u64,
    /// The fake peer port, for addresses.
    port: u16,
    /// Write calls the reactor made, failed ones included: one per system call on a socket.
    write_calls: usize,
    /// Bytes the peer ever sent: the position the next sent byte will have (S29).
    inbound_sent: u64,
    /// Bytes the reactor ever read: the position of `inbound[0]`.
    inbound_read: u64,
    /// Descriptors the peer sent, each batch with the position of its first byte.
    inbound_fds: VecDeque<(u64, Vec<OwnedFd>)>,
    /// Bytes the reactor ever wrote.
    outbound_total: u64,
    /// Descriptors the reactor sent, each batch with the position of the byte it came with.
    outbound_fds: Vec<(u64, Vec<OwnedFd>)>,
    /// Descriptors travel with bytes, as on a Unix-domain socket (`connect_with_fds`); a
    /// pipe made by `connect` is a TCP connection's stand-in and carries none, so the reactor
    /// serves it as it serves TCP.
    carries_fds: bool,
}

impl Pipe {
    /// Queues this pipe on the reactor if an edge is pending and no entry waits already.
    fn wake(&mut self) {
        if (self.edge_read || self.edge_write) && !self.queued {
            if let Some((index, queue)) = &self.waker {
                queue.borrow_mut().push(*index);
                self.queued = true;
            }
        }
    }

    /// Retries the injected `EINTR`s, as the system-call layer does for sockets (S2).
    fn retry_eintr(&mut self) {
        self.interrupted += u64::from(self.eintr);
        self.eintr = 0;
    }
}

/// The reactor's end of a pipe (behind the syscall seam).
#[derive(Debug)]
pub(crate) struct MemStream {
    pipe: Rc<RefCell<Pipe>>,
}

/// A new outgoing in-memory connection: the reactor's end and the peer's.
pub(crate) fn outgoing() -> (Stream, MemPeer) {
    let pipe = Rc::new(RefCell::new(Pipe {
        port: 9,
        ..Pipe::default()
    }));
    let stream = Stream::Other(Box::new(MemStream {
        pipe: Rc::clone(&pipe),
    }));
    (stream, MemPeer { pipe })
}

impl Drop for MemStream {
    fn drop(&mut self) {
        self.pipe.borrow_mut().closed = true;
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl Transport for MemStream {
    fn register(&mut self, at: Registration<'_>) -> io::Result<()> {
        let mut p = self.pipe.borrow_mut();
        p.waker = Some((at.token.0, Rc::clone(at.injected)));
        // As with `EPOLL_CTL_ADD`, readiness present at registration is reported.
        p.wake();
        Ok(())
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut p = self.pipe.borrow_mut();
        p.retry_eintr();
        if p.reset {
            return Err(errno(libc::ECONNRESET));
        }
        if p.inbound.is_empty() {
            return if p.peer_fin {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let mut n = buf
            .len()
            .min(p.inbound.len())
            .min(p.read_chunk.unwrap_or(usize::MAX).max(1));
        // As the kernel does, a read never runs past bytes that came with descriptors (and the
        // plain `read` drops descriptors, as `recv` on a socket would).
        if let Some(&(at, _)) = p.inbound_fds.iter().find(|(at, _)| *at > p.inbound_read) {
            n = n.min((at - p.inbound_read) as usize);
        }
        while p
            .inbound_fds
            .front()
            .is_some_and(|(at, _)| *at == p.inbound_read)
        {
            p.inbound_fds.pop_front();
        }
        for (dst, src) in buf[..n].iter_mut().zip(p.inbound.drain(..n)) {
            *dst = src;
        }
        p.inbound_read += n as u64;
        if !p.inbound.is_empty() && n < buf.len() {
            // A kernel returns less than asked only when its queue ran dry; bytes still queued
            // after a short read count as arriving just after it, which raises a new edge.
            p.edge_read = true;
            p.wake();
        }
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut p = self.pipe.borrow_mut();
        p.write_calls += 1;
        p.retry_eintr();
        if p.reset {
            return Err(errno(libc::ECONNRESET));
        }
        if p.fin_sent {
            return Err(errno(libc::EPIPE));
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let allowed = total.min(p.write_budget.unwrap_or(usize::MAX));
        if allowed == 0 && total > 0 {
            p.write_blocked = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut left = allowed;
        for b in bufs {
            let take = b.len().min(left);
            p.outbound.extend_from_slice(&b[..take]);
            left -= take;
            if left == 0 {
                break;
            }
        }
        if let Some(budget) = p.write_budget.as_mut() {
            *budget -= allowed;
        }
        p.outbound_total += allowed as u64;
        if allowed < total {
            p.write_blocked = true;
        }
        Ok(allowed)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        let mut p = self.pipe.borrow_mut();
        if p.reset {
            return Err(errno(libc::ENOTCONN));
        }
        p.fin_sent = true;
        Ok(())
    }

    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        Ok(self.pipe.borrow_mut().connect_error.take().map(errno))
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        let p = self.pipe.borrow();
        if !p.connected {
            return Err(errno(libc::ENOTCONN));
        }
        Ok(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::LOCALHOST,
            p.port,
        )))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1)))
    }

    fn set_abortive(&mut self) -> io::Result<()> {
        self.pipe.borrow_mut().aborted = true;
        Ok(())
    }

    fn carries_fds(&self) -> bool {
        self.pipe.borrow().carries_fds
    }

    fn read_with_fds(&mut self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        let batch = {
            let mut p = self.pipe.borrow_mut();
            let at = p.inbound_read;
            match p.inbound_fds.front() {
                Some((pos, _)) if *pos == at && !p.inbound.is_empty() && !p.reset => {
                    p.inbound_fds.pop_front().map(|(_, f)| f)
                }
                _ => None,
            }
        };
        let n = self.read(buf)?;
        fds.extend(batch.into_iter().flatten());
        Ok(n)
    }

    fn write_with_fds(
        &mut self,
        bufs: &[IoSlice<'_>],
        fds: &[BorrowedFd<'_>],
    ) -> io::Result<usize> {
        let at = self.pipe.borrow().outbound_total;
        // Copies first: on failure nothing was sent, as with `sendmsg`.
        let owned = fds
            .iter()
            .map(|f| f.try_clone_to_owned())
            .collect::<io::Result<Vec<_>>>()?;
        let n = self.write_vectored(bufs)?;
        if n > 0 {
            self.pipe.borrow_mut().outbound_fds.push((at, owned));
        }
        Ok(n)
    }

    fn take_readiness(&mut self) -> Option<Readiness> {
        let mut p = self.pipe.borrow_mut();
        p.queued = false;
        if !p.edge_read && !p.edge_write {
            return None;
        }
        let ready = Readiness {
            readable: p.edge_read,
            writable: p.edge_write,
            read_closed: p.edge_read && (p.peer_fin || p.reset),
            error: p.reset,
        };
        p.edge_read = false;
        p.edge_write = false;
        Some(ready)
    }
}

/// The test's end of an in-memory connection: plays the peer and the kernel.
#[derive(Debug, Clone)]
pub struct MemPeer {
    pipe: Rc<RefCell<Pipe>>,
}

impl MemPeer {
    /// The peer sends `data` (a readable edge).
    pub fn send(&self, data: &[u8]) {
        let mut p = self.pipe.borrow_mut();
        p.inbound_sent += data.len() as u64;
        p.inbound.extend(data);
        p.edge_read = true;
        p.wake();
    }

    /// The peer sends `data` with descriptors attached to its first byte (`SCM_RIGHTS`, S29).
    /// A read by the reactor never runs past bytes that came with descriptors, as on a Unix
    /// socket. `data` must not be empty.
    pub fn send_with_fds(&self, data: &[u8], fds: Vec<OwnedFd>) {
        assert!(!data.is_empty(), "descriptors travel with a byte");
        let mut p = self.pipe.borrow_mut();
        assert!(
            p.carries_fds,
            "descriptors need a peer made by `connect_with_fds`"
        );
        let at = p.inbound_sent;
        p.inbound_fds.push_back((at, fds));
        p.inbound_sent += data.len() as u64;
        p.inbound.extend(data);
        p.edge_read = true;
        p.wake();
    }

    /// Takes the descriptors the reactor has sent so far, each batch with the position (in all
    /// bytes the reactor ever wrote on this connection) of the byte it came with.
    pub fn take_received_fds(&self) -> Vec<(u64, Vec<OwnedFd>)> {
        std::mem::take(&mut self.pipe.borrow_mut().outbound_fds)
    }

    /// Takes every byte the reactor has written so far.
    pub fn take_received(&self) -> Vec<u8> {
        std::mem::take(&mut self.pipe.borrow_mut().outbound)
    }

    /// Bytes the reactor has written and the peer has not taken.
    pub fn received_len(&self) -> usize {
        self.pipe.borrow().outbound.len()
    }

    /// How many write calls (system calls, on a socket) the reactor made on this connection,
    /// including those refused with `WouldBlock` or an error (S15: one gather write per turn).
    pub fn write_calls(&self) -> usize {
        self.pipe.borrow().write_calls
    }

    /// Bytes the peer sent that the reactor has not read yet.
    pub fn unread_len(&self) -> usize {
        self.pipe.borrow().inbound.len()
    }

    /// The peer half-closes (FIN: a readable edge; reads return 0 after the queued bytes).
    pub fn shutdown_write(&self) {
        let mut p = self.pipe.borrow_mut();
        p.peer_fin = true;
        p.edge_read = true;
        p.wake();
    }

    /// The peer resets the connection: reads and writes fail with `ECONNRESET`.
    pub fn reset(&self) {
        let mut p = self.pipe.borrow_mut();
        p.reset = true;
        p.edge_read = true;
        p.edge_write = true;
        p.wake();
    }

    /// Each read returns at most `n` bytes (`None`: as many as fit). Bytes left over count as
    /// arriving right after the read (a new readable edge), as they would on a socket.
    pub fn set_read_chunk(&self, n: Option<usize>) {
        self.pipe.borrow_mut().read_chunk = n;
    }

    /// Writes may take `budget` more bytes in all (`None`: unlimited). A larger budget after a
    /// blocked write raises a writable edge, as a draining send buffer does.
    pub fn set_write_budget(&self, budget: Option<usize>) {
        let mut p = self.pipe.borrow_mut();
        let grows = match (p.write_budget, budget) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(old), Some(new)) => new > old,
        };
        p.write_budget = budget;
        if grows && p.write_blocked {
            p.write_blocked = false;
            p.edge_write = true;
            p.wake();
        }
    }

    /// The next `n` reads or writes fail with `EINTR`. The transport retries them, as the
    /// system-call layer does for sockets, and counts them ([`interrupted`](Self::interrupted)).
    pub fn inject_eintr(&self, n: u32) {
        self.pipe.borrow_mut().eintr += n;
    }

    /// How many injected `EINTR`s the transport met and retried.
    pub fn interrupted(&self) -> u64 {
        self.pipe.borrow().interrupted
    }

    /// Completes an outgoing connect: `Ok` connects, `Err(errno)` is the `SO_ERROR` verdict
    /// (e.g. `ECONNREFUSED`, `ETIMEDOUT`, `EHOSTUNREACH`). Raises the edges the kernel would.
    pub fn complete_connect(&self, verdict: Result<(), i32>) {
        let mut p = self.pipe.borrow_mut();
        match verdict {
            Ok(()) => p.connected = true,
            Err(e) => {
                p.connect_error = Some(e);
                // A failed connect shows as readable and writable.
                p.edge_read = true;
            }
        }
        p.edge_write = true;
        p.wake();
    }

    /// Raises a spurious writable edge (readiness with nothing behind it).
    pub fn spurious_wakeup(&self) {
        let mut p = self.pipe.borrow_mut();
        p.edge_write = true;
        p.wake();
    }

    /// Whether the reactor sent FIN.
    pub fn fin_received(&self) -> bool {
        self.pipe.borrow().fin_sent
    }

    /// Whether the reactor closed its end.
    pub fn is_closed(&self) -> bool {
        self.pipe.borrow().closed
    }

    /// Whether the reactor closed with RST.
    pub fn was_aborted(&self) -> bool {
        self.pipe.borrow().aborted
    }
}

/// The shared state of an in-memory listener.
#[derive(Debug, Default)]
struct Backlog {
    pending: VecDeque<Rc<RefCell<Pipe>>>,
    errors: VecDeque<i32>,
    /// Reserves of the spare descriptor left that fail with `EMFILE`.
    spare_failures: u32,
    edge: bool,
    /// As for a pipe: the listener's slab index and the reactor's queue, once registered.
    waker: Option<(usize, Injected)>,
    queued: bool,
    next_port: u16,
}

impl Backlog {
    fn wake(&mut self) {
        if self.edge && !self.queued {
            if let Some((index, queue)) = &self.waker {
                queue.borrow_mut().push(*index);
                self.queued = true;
            }
        }
    }
}

/// The reactor's end of an in-memory listener.
#[derive(Debug)]
pub(crate) struct MemBacklog {
    backlog: Rc<RefCell<Backlog>>,
}

impl MemBacklog {
    pub(crate) fn new() -> (MemBacklog, MemListener) {
        let backlog = Rc::new(RefCell::new(Backlog::default()));
        (
            MemBacklog {
                backlog: Rc::clone(&backlog),
            },
            MemListener { backlog, id: None },
        )
    }
}

impl Acceptor for MemBacklog {
    fn register(&mut self, at: Registration<'_>) -> io::Result<()> {
        let mut b = self.backlog.borrow_mut();
        b.waker = Some((at.token.0, Rc::clone(at.injected)));
        b.wake();
        Ok(())
    }

    fn has_pending(&self) -> bool {
        true
    }

    fn local_addr(&self) -> io::Result<ListenAddr> {
        Ok(ListenAddr::Tcp(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::LOCALHOST,
            1,
        ))))
    }

    fn reserve_spare(&mut self) -> io::Result<OwnedFd> {
        let mut b = self.backlog.borrow_mut();
        if b.spare_failures > 0 {
            b.spare_failures -= 1;
            return Err(errno(libc::EMFILE));
        }
        crate::sys::open_devnull()
    }

    fn take_readiness(&mut self) -> bool {
        let mut b = self.backlog.borrow_mut();
        b.queued = false;
        std::mem::take(&mut b.edge)
    }

    fn accept(&mut self) -> io::Result<(Stream, Option<SocketAddr>)> {
        let mut b = self.backlog.borrow_mut();
        if let Some(e) = b.errors.pop_front() {
            return Err(errno(e));
        }
        let pipe = b
            .pending
            .pop_front()
            .ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock))?;
        let port = pipe.borrow().port;
        Ok((
            Stream::Other(Box::new(MemStream { pipe })),
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))),
        ))
    }
}

/// The test's end of an in-memory listener: makes clients connect and accept fail.
#[derive(Debug, Clone)]
pub struct MemListener {
    backlog: Rc<RefCell<Backlog>>,
    /// The reactor's id for it, set once the harness has added it.
    id: Option<crate::ListenerId>,
}

impl MemListener {
    /// The reactor's id for this listener: pause, resume, close it, read its counters.
    pub fn id(&self) -> crate::ListenerId {
        self.id
            .expect("a harness listener is added before it is handed out")
    }

    pub(crate) fn set_id(&mut self, id: crate::ListenerId) {
        self.id = Some(id);
    }

    /// A client connects: its connection waits in the backlog (a readable edge on the listener).
    /// It stands in for TCP: it carries no descriptors.
    pub fn connect(&self) -> MemPeer {
        self.connect_as(false)
    }

    /// A client connects over a connection that carries descriptors with its bytes, as a
    /// Unix-domain socket does (S29): [`MemPeer::send_with_fds`] and
    /// [`MemPeer::take_received_fds`] work on it.
    pub fn connect_with_fds(&self) -> MemPeer {
        self.connect_as(true)
    }

    fn connect_as(&self, carries_fds: bool) -> MemPeer {
        let mut b = self.backlog.borrow_mut();
        b.next_port = b.next_port.wrapping_add(1).max(1024);
        let pipe = Rc::new(RefCell::new(Pipe {
            connected: true,
            port: b.next_port,
            carries_fds,
            ..Pipe::default()
        }));
        b.pending.push_back(Rc::clone(&pipe));
        b.edge = true;
        b.wake();
        MemPeer { pipe }
    }

    /// The next accept fails with `errno` (before any pending connection is taken).
    pub fn inject_accept_error(&self, errno: i32) {
        let mut b = self.backlog.borrow_mut();
        b.errors.push_back(errno);
        b.edge = true;
        b.wake();
    }

    /// The next `n` attempts to reserve the listener's spare descriptor fail with `EMFILE`.
    /// The listener reserves it when created and again after releasing it to shed clients.
    pub fn fail_spare_reserve(&self, n: u32) {
        self.backlog.borrow_mut().spare_failures += n;
    }

    /// Connections waiting to be accepted.
    pub fn pending(&self) -> usize {
        self.backlog.borrow().pending.len()
    }
}
