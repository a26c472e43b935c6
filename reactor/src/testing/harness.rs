//! A reactor on in-memory connections and a hand-moved clock.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::transport::{self, MemBacklog, MemListener, MemPeer};
use crate::{ConnConfig, ConnId, Datagrams, ListenOptions, Protocol, Reactor, UdpConfig, UdpId};

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
    ///
    /// # Errors
    /// As [`Reactor::new`]: the poll instance cannot be created.
    pub fn new(app: App) -> io::Result<Self> {
        let mut reactor = Reactor::new(app)?;
        reactor.core.set_manual_clock(Duration::ZERO);
        Ok(Harness {
            reactor,
            now: Duration::ZERO,
        })
    }

    /// An in-memory listener whose connections are served by handlers from `factory`, with the
    /// reactor's real accept loop.
    pub fn listen<P, F>(&mut self, opts: ListenOptions, factory: F) -> MemListener
    where
        P: Protocol<App> + 'static,
        F: FnMut(&mut App, SocketAddr) -> P + 'static,
    {
        let (backlog, mut listener) = MemBacklog::new();
        let id = self
            .reactor
            .core
            .add_listener(
                Box::new(backlog),
                crate::core::listener::Factory::addressed(factory),
                &opts,
            )
            .expect("an in-memory listener cannot fail");
        listener.set_id(id);
        listener
    }

    /// Starts an outgoing in-memory connection served by `handler`. It stays connecting until
    /// [`MemPeer::complete_connect`]; its connect timeout runs on the harness clock.
    pub fn connect(
        &mut self,
        handler: impl Protocol<App> + 'static,
        config: ConnConfig,
    ) -> (ConnId, MemPeer) {
        let (stream, peer) = transport::outgoing();
        let id = self
            .reactor
            .core
            .start_connect(stream, Box::new(handler), Rc::new(config))
            .expect("an in-memory connection cannot fail to register");
        (id, peer)
    }

    /// An in-memory UDP socket bound to `local` (connected to `peer` if given), served by
    /// `handler` with the reactor's own UDP code; the test plays the network through the
    /// returned [`MemUdpPeer`](super::MemUdpPeer).
    pub fn bind_udp(
        &mut self,
        local: SocketAddr,
        peer: Option<SocketAddr>,
        config: UdpConfig,
        handler: impl Datagrams<App> + 'static,
    ) -> (UdpId, super::MemUdpPeer) {
        let connected = peer.is_some();
        let (sock, far) = super::datagram::pipe(local, peer);
        let id = self
            .reactor
            .core
            .add_udp(Box::new(sock), Box::new(handler), config, connected)
            .expect("an in-memory socket cannot fail to register");
        (id, far)
    }

    /// Runs one loop turn without waiting: pending edges, the ready list, timers due at the
    /// harness's time, the flush and the close steps.
    ///
    /// # Errors
    /// As [`Reactor::turn`].
    pub fn turn(&mut self) -> io::Result<()> {
        self.reactor.turn(Some(Duration::ZERO))
    }

    /// Turns until nothing is pending (no edge, no ready source, nothing to flush or close).
    /// Fails if the loop never rests while making no progress: 10,000 turns in a
    /// row that move no byte, accept, connect or close nothing (a bug: something re-arms
    /// itself every turn). Slow progress (a peer whose kernel hands over one byte per read) is
    /// not a failure, however many turns it takes.
    ///
    /// # Errors
    /// `Other` if the loop never rests (above), or a turn's error.
    pub fn settle(&mut self) -> io::Result<()> {
        let progress = |r: &Reactor<App>| {
            let s = r.stats();
            s.bytes_in + s.bytes_out + s.accepted + s.connected + s.closed_total()
        };
        let mut last = progress(&self.reactor);
        let mut idle_turns = 0;
        while idle_turns < SETTLE_LIMIT {
            self.turn()?;
            if !self.reactor.has_pending_work() {
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
        Err(io::Error::other(format!(
            "the reactor never settled: {}; {:?}",
            self.reactor.core.pending_summary(),
            self.reactor.connections()
        )))
    }

    /// Moves the clock forward by `by` and settles, firing every timer now due.
    ///
    /// # Errors
    /// As [`settle`](Self::settle).
    pub fn advance(&mut self, by: Duration) -> io::Result<()> {
        self.now = self.now.saturating_add(by);
        self.reactor.core.set_manual_clock(self.now);
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
