//! An in-memory transport that runs any handler exactly as the reactor would, with no sockets
//! (feature `testing`).
//!
//! A [`Harness`] is a real [`Reactor`] whose connections are in-memory pipes instead of
//! sockets, and whose clock moves only when the harness says so. The pipes sit behind the same
//! syscall seam as sockets (the crate's `Stream`), so the reactor's own accept loop, connect
//! verdict, read loop, output queue, partial-write handling, backpressure and close logic are
//! what runs — not a copy of them. What the kernel would do is scripted through a [`MemPeer`],
//! the far end of a pipe:
//!
//! - input arrives in chunks the test chooses ([`MemPeer::send`]), and each read returns at most
//!   [`MemPeer::set_read_chunk`] bytes, so frames split at arbitrary points;
//! - writes are accepted only up to a budget ([`MemPeer::set_write_budget`]): short counts and
//!   `WouldBlock` at any point, with a writable edge when the budget grows again;
//! - `EINTR` on the next calls ([`MemPeer::inject_eintr`]), a half-close
//!   ([`MemPeer::shutdown_write`]) and `ECONNRESET` ([`MemPeer::reset`]) at any moment;
//! - any `SO_ERROR` as the verdict of an outgoing connect ([`MemPeer::complete_connect`]);
//! - any errno from `accept` ([`MemListener::inject_accept_error`], e.g. `EMFILE`,
//!   `ECONNABORTED`);
//! - time moves only through [`Harness::advance`].
//!
//! Readiness is edge-triggered as with epoll: a pipe raises a readable edge when bytes, a FIN or
//! a reset arrive, and a writable edge when a blocked writer's budget grows. A handler or
//! reactor bug that relies on level-triggered readiness hangs here as it would in production.
//!
//! ```
//! use evdrive_reactor::testing::Harness;
//! use evdrive_reactor::{Cx, ListenOptions, Protocol};
//!
//! struct Echo;
//! impl Protocol<()> for Echo {
//!     fn on_data(&mut self, cx: &mut Cx<'_, ()>, data: &[u8]) -> usize {
//!         cx.write(data);
//!         data.len()
//!     }
//! }
//!
//! let mut h = Harness::new(())?;
//! let listener = h.listen(ListenOptions::default(), |_, _| Echo);
//! let peer = listener.connect();
//! peer.set_write_budget(Some(3)); // the kernel takes 3 bytes, then would block
//! peer.send(b"hello");
//! h.settle()?;
//! assert_eq!(peer.take_received(), b"hel");
//! peer.set_write_budget(None); // the peer reads: a writable edge
//! h.settle()?;
//! assert_eq!(peer.take_received(), b"lo");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::rc::Rc;
use std::time::Duration;

use crate::conn::State;
use crate::core::{Core, Source};
use crate::listener::{ListenSocket, Listener};
use crate::reactor::Readiness;
use crate::stream::Stream;
use crate::{ConnConfig, ConnId, ListenOptions, Protocol, Reactor};

mod script;
pub use script::{converse, Conversation, PeerOp, Script};

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
    /// The fake peer port, for addresses.
    port: u16,
    /// Write calls the reactor made, failed ones included: one per system call on a socket.
    write_calls: usize,
}

/// The reactor's end of a pipe (behind the syscall seam).
#[derive(Debug)]
pub(crate) struct MemStream {
    pipe: Rc<RefCell<Pipe>>,
}

impl Drop for MemStream {
    fn drop(&mut self) {
        self.pipe.borrow_mut().closed = true;
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl MemStream {
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut p = self.pipe.borrow_mut();
        if p.eintr > 0 {
            p.eintr -= 1;
            return Err(errno(libc::EINTR));
        }
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
        let n = buf
            .len()
            .min(p.inbound.len())
            .min(p.read_chunk.unwrap_or(usize::MAX).max(1));
        for (dst, src) in buf[..n].iter_mut().zip(p.inbound.drain(..n)) {
            *dst = src;
        }
        if !p.inbound.is_empty() && n < buf.len() {
            // A kernel returns less than asked only when its queue ran dry; bytes still queued
            // after a short read count as arriving just after it, which raises a new edge.
            p.edge_read = true;
        }
        Ok(n)
    }

    pub(crate) fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut p = self.pipe.borrow_mut();
        p.write_calls += 1;
        if p.eintr > 0 {
            p.eintr -= 1;
            return Err(errno(libc::EINTR));
        }
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
        if allowed < total {
            p.write_blocked = true;
        }
        Ok(allowed)
    }

    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        let mut p = self.pipe.borrow_mut();
        if p.reset {
            return Err(errno(libc::ENOTCONN));
        }
        p.fin_sent = true;
        Ok(())
    }

    pub(crate) fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        Ok(self.pipe.borrow_mut().connect_error.take().map(errno))
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        let p = self.pipe.borrow();
        if !p.connected {
            return Err(errno(libc::ENOTCONN));
        }
        Ok(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::LOCALHOST,
            p.port,
        )))
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1)))
    }

    pub(crate) fn set_abortive(&mut self) -> io::Result<()> {
        self.pipe.borrow_mut().aborted = true;
        Ok(())
    }

    /// Takes the pending edges.
    fn take_edges(&self) -> Option<Readiness> {
        let mut p = self.pipe.borrow_mut();
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

    fn has_edges(&self) -> bool {
        let p = self.pipe.borrow();
        p.edge_read || p.edge_write
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
        p.inbound.extend(data);
        p.edge_read = true;
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
    }

    /// The peer resets the connection: reads and writes fail with `ECONNRESET`.
    pub fn reset(&self) {
        let mut p = self.pipe.borrow_mut();
        p.reset = true;
        p.edge_read = true;
        p.edge_write = true;
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
        }
    }

    /// The next `n` reads or writes fail with `EINTR`.
    pub fn inject_eintr(&self, n: u32) {
        self.pipe.borrow_mut().eintr += n;
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
    }

    /// Raises a spurious writable edge (readiness with nothing behind it).
    pub fn spurious_wakeup(&self) {
        self.pipe.borrow_mut().edge_write = true;
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
    edge: bool,
    next_port: u16,
}

/// The reactor's end of an in-memory listener.
#[derive(Debug)]
pub(crate) struct MemBacklog {
    backlog: Rc<RefCell<Backlog>>,
}

impl MemBacklog {
    pub(crate) fn accept(&self) -> io::Result<(Stream, SocketAddr)> {
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
            Stream::Mem(MemStream { pipe }),
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)),
        ))
    }
}

/// The test's end of an in-memory listener: makes clients connect and accept fail.
#[derive(Debug, Clone)]
pub struct MemListener {
    backlog: Rc<RefCell<Backlog>>,
}

impl MemListener {
    /// A client connects: its connection waits in the backlog (a readable edge on the listener).
    pub fn connect(&self) -> MemPeer {
        let mut b = self.backlog.borrow_mut();
        b.next_port = b.next_port.wrapping_add(1).max(1024);
        let pipe = Rc::new(RefCell::new(Pipe {
            connected: true,
            port: b.next_port,
            ..Pipe::default()
        }));
        b.pending.push_back(Rc::clone(&pipe));
        b.edge = true;
        MemPeer { pipe }
    }

    /// The next accept fails with `errno` (before any pending connection is taken).
    pub fn inject_accept_error(&self, errno: i32) {
        let mut b = self.backlog.borrow_mut();
        b.errors.push_back(errno);
        b.edge = true;
    }

    /// Connections waiting to be accepted.
    pub fn pending(&self) -> usize {
        self.backlog.borrow().pending.len()
    }
}

/// Collects the pending edges of every in-memory source.
pub(crate) fn take_edges<App>(core: &mut Core<App>) -> Vec<(usize, Readiness)> {
    let mut edges = Vec::new();
    for (index, source) in core.sources.iter() {
        match source {
            Source::Conn(conn) => {
                if let Stream::Mem(m) = &conn.stream {
                    if let Some(ready) = m.take_edges() {
                        edges.push((index, ready));
                    }
                }
            }
            Source::Listener(l) => {
                if let ListenSocket::Mem(m) = &l.socket {
                    let mut b = m.backlog.borrow_mut();
                    if b.edge {
                        b.edge = false;
                        edges.push((index, Readiness::default()));
                    }
                }
            }
            _ => {}
        }
    }
    edges
}

fn has_edges<App>(core: &Core<App>) -> bool {
    core.sources.iter().any(|(_, source)| match source {
        Source::Conn(conn) => matches!(&conn.stream, Stream::Mem(m) if m.has_edges()),
        Source::Listener(l) => matches!(&l.socket, ListenSocket::Mem(m) if m.backlog.borrow().edge),
        _ => false,
    })
}

/// A reactor on in-memory connections and a hand-moved clock.
#[derive(Debug)]
pub struct Harness<App: 'static> {
    reactor: Reactor<App>,
    /// The clock's reading, moved only by `advance`.
    now: Duration,
}

/// How many turns in a row without progress [`Harness::settle`] allows before it reports a
/// loop that never rests.
const SETTLE_LIMIT: usize = 10_000;

impl<App: 'static> Harness<App> {
    /// A harness whose reactor owns `app`, with its clock stopped at zero.
    pub fn new(app: App) -> io::Result<Self> {
        let mut reactor = Reactor::new(app)?;
        reactor.core.clock.set_manual(Duration::ZERO);
        Ok(Harness {
            reactor,
            now: Duration::ZERO,
        })
    }

    /// An in-memory listener whose connections are served by handlers from `factory`, with the
    /// reactor's real accept loop.
    pub fn listen<P, F>(&mut self, opts: ListenOptions, mut factory: F) -> MemListener
    where
        P: Protocol<App> + 'static,
        F: FnMut(&mut App, SocketAddr) -> P + 'static,
    {
        let backlog = Rc::new(RefCell::new(Backlog::default()));
        let socket = ListenSocket::Mem(MemBacklog {
            backlog: Rc::clone(&backlog),
        });
        let local = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1));
        let l = Listener::new(
            socket,
            local,
            Box::new(move |app: &mut App, peer| Box::new(factory(app, peer)) as Box<_>),
            &opts,
        )
        .expect("an in-memory listener cannot fail");
        self.reactor
            .core
            .sources
            .insert(Source::Listener(Box::new(l)));
        MemListener { backlog }
    }

    /// Starts an outgoing in-memory connection served by `handler`. It stays connecting until
    /// [`MemPeer::complete_connect`]; its connect timeout runs on the harness clock.
    pub fn connect(
        &mut self,
        handler: impl Protocol<App> + 'static,
        config: ConnConfig,
    ) -> (ConnId, MemPeer) {
        let pipe = Rc::new(RefCell::new(Pipe {
            port: 9,
            ..Pipe::default()
        }));
        let stream = Stream::Mem(MemStream {
            pipe: Rc::clone(&pipe),
        });
        let id = self
            .reactor
            .core
            .insert_conn(
                stream,
                Box::new(handler),
                Rc::new(config),
                State::Connecting,
            )
            .expect("an in-memory connection needs no registration");
        (id, MemPeer { pipe })
    }

    /// Runs one loop turn without waiting: pending edges, the ready list, timers due at the
    /// harness's time, the flush and the close steps.
    pub fn turn(&mut self) -> io::Result<()> {
        self.reactor.turn(Some(Duration::ZERO))
    }

    /// Turns until nothing is pending (no edge, no ready source, nothing to flush or close).
    /// Fails if the loop never rests while making no progress: 10,000 turns in a
    /// row that move no byte, accept, connect or close nothing (a bug: something re-arms
    /// itself every turn). Slow progress (a peer whose kernel hands over one byte per read) is
    /// not a failure, however many turns it takes.
    pub fn settle(&mut self) -> io::Result<()> {
        let progress = |r: &Reactor<App>| {
            let s = r.stats();
            s.bytes_in + s.bytes_out + s.accepted + s.connected + s.closed_total()
        };
        let mut last = progress(&self.reactor);
        let mut idle_turns = 0;
        while idle_turns < SETTLE_LIMIT {
            self.turn()?;
            if !self.reactor.has_pending_work() && !has_edges(&self.reactor.core) {
                return Ok(());
            }
            let now = progress(&self.reactor);
            if now == last {
                idle_turns += 1;
            } else {
                idle_turns = 0;
                last = now;
            }
        }
        let core = &self.reactor.core;
        Err(io::Error::other(format!(
            "the reactor never settled: {} ready, {} dirty, {} dead, edges pending: {}; {:?}",
            core.ready.len(),
            core.dirty.len(),
            core.dead.len(),
            has_edges(core),
            self.reactor.connections()
        )))
    }

    /// Moves the clock forward by `by` and settles, firing every timer now due.
    pub fn advance(&mut self, by: Duration) -> io::Result<()> {
        self.now += by;
        self.reactor.core.clock.set_manual(self.now);
        self.settle()
    }

    /// The harness clock's reading.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The reactor under test.
    pub fn reactor(&mut self) -> &mut Reactor<App> {
        &mut self.reactor
    }

    /// The user state.
    pub fn app(&mut self) -> &mut App {
        self.reactor.app()
    }
}
