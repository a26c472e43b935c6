//! Connected UDP over a real path (S30): the ICMP port unreachable a peer's host answers with
//! closes the reactor's connected socket with `Refused`, whether no socket is bound at the
//! port or a packet filter rule rejects the datagram in front of one.
//!
//! The reactor runs in a network namespace of its own and connects a UDP socket to a port in a
//! second one (see `netns_util`). Unlike loopback, the ICMP error here is made by another
//! network stack and crosses a link, as it would from a remote host. The control case shows a
//! datagram going both ways on the same path without a fault.

mod netns_util;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use evdrive_tests::WAIT;
use netns_util::{Fault, NetPair, ADDR_B, SLACK};
use reactor::{CloseKind, CloseReason, Datagrams, UdpConfig, UdpCx};

/// What the reactor's handler saw, with when.
#[derive(Debug)]
enum Event {
    Datagram(Vec<u8>, Instant),
    Closed(CloseKind, Instant),
}

/// How often the pinger repeats its `ping`, and how many it sends at most.
const REPEAT: Duration = Duration::from_millis(250);
const PINGS: u32 = 12;

/// Sends `ping` on open and again every [`REPEAT`], as a UDP client does (a datagram, or the
/// ICMP error it draws, is not retransmitted by anyone else: one lost on a path that has just
/// come up would otherwise leave nothing to report); reports every datagram and the close.
struct Pinger {
    events: mpsc::Sender<Event>,
    sent: u32,
}

impl Pinger {
    fn ping(&mut self, cx: &mut UdpCx<'_, ()>) {
        let sent = cx.send(b"ping");
        // A repeat may meet the error the last ping drew (the reactor reports that close);
        // the first send on a fresh socket has no reason to fail.
        if self.sent == 0 {
            sent.expect("the first send on a connected socket");
        }
        self.sent += 1;
        if self.sent < PINGS {
            cx.set_timer(REPEAT, 0);
        }
    }
}

impl Datagrams<()> for Pinger {
    fn on_open(&mut self, cx: &mut UdpCx<'_, ()>) {
        self.ping(cx);
    }
    fn on_timer(&mut self, cx: &mut UdpCx<'_, ()>, _timer: reactor::TimerId) {
        self.ping(cx);
    }
    fn on_datagram(&mut self, _cx: &mut UdpCx<'_, ()>, data: &[u8], _from: SocketAddr) {
        let _ = self
            .events
            .send(Event::Datagram(data.to_vec(), Instant::now()));
    }
    fn on_close(&mut self, _app: &mut (), reason: CloseReason) {
        let _ = self
            .events
            .send(Event::Closed(reason.kind(), Instant::now()));
    }
}

/// How the peer's port in namespace `b` is set up.
enum Peer {
    /// Nothing bound at the port.
    Nothing,
    /// A socket bound at the port, behind a rule rejecting UDP with ICMP port unreachable.
    Rejected,
    /// A socket bound at the port, no fault: it answers `ping` with `pong`.
    Answering,
}

/// Connects a UDP socket from the reactor to a port in `b` set up as `peer`, and returns the
/// first thing its handler reports and how long after the connect began.
fn ping_across(peer: Peer) -> io::Result<(Event, Duration)> {
    let net = NetPair::new()?;
    let socket = net.in_b(|| UdpSocket::bind(SocketAddr::from((ADDR_B, 0))))?;
    socket.set_read_timeout(Some(WAIT))?;
    let addr = socket.local_addr()?;
    let socket = match peer {
        // The port was free a moment ago and nothing else runs in `b`: it stays free.
        Peer::Nothing => {
            drop(socket);
            None
        }
        Peer::Rejected => {
            net.break_path(Fault::RejectUdpPortUnreachable)?;
            Some(socket)
        }
        Peer::Answering => Some(socket),
    };
    let server = net.reactor()?;
    let (tx, events) = mpsc::channel();
    let started = Instant::now();
    let id = server.with(move |r| {
        r.cx().connect_udp(
            addr,
            UdpConfig::new(),
            Pinger {
                events: tx,
                sent: 0,
            },
        )
    })?;
    if let (Peer::Answering, Some(socket)) = (&peer, &socket) {
        let mut buf = [0u8; 16];
        let (n, from) = socket.recv_from(&mut buf)?;
        assert_eq!(&buf[..n], b"ping");
        socket.send_to(b"pong", from)?;
    }
    let event = events
        .recv_timeout(WAIT)
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the handler reported nothing"))?;
    let elapsed = match &event {
        Event::Datagram(_, at) | Event::Closed(_, at) => *at - started,
    };
    if let Event::Closed(..) = event {
        let gone = server.with(move |r| r.cx().udp_stats(id).is_none());
        assert!(gone, "a closed socket is still open");
    }
    if let (Peer::Rejected, Some(socket)) = (&peer, &socket) {
        // The rule answered, not the socket: the datagram never reached it.
        socket.set_nonblocking(true)?;
        let mut buf = [0u8; 16];
        let got = socket.recv_from(&mut buf);
        assert!(
            matches!(&got, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "the rejected datagram arrived: {got:?}"
        );
    }
    server.shutdown(WAIT)?;
    Ok((event, elapsed))
}

/// Checks that the socket was closed with `Refused`, promptly: the ICMP error comes back within
/// a round trip (µs here), so [`SLACK`] is only a bound a loaded machine meets.
fn assert_refused_promptly(event: Event, elapsed: Duration) {
    assert!(
        matches!(event, Event::Closed(CloseKind::Refused, _)),
        "expected a close with Refused, got {event:?}"
    );
    assert!(elapsed <= SLACK, "refused only after {elapsed:?}");
}

/// Without a fault a datagram goes both ways: the fixture's path carries UDP.
#[test]
fn without_a_fault_connected_udp_answers() -> io::Result<()> {
    evdrive_tests::init_log();
    let (event, _) = ping_across(Peer::Answering)?;
    assert!(
        matches!(&event, Event::Datagram(data, _) if data == b"pong"),
        "expected pong, got {event:?}"
    );
    Ok(())
}

/// S30: a datagram to a port with nothing bound draws the peer host's ICMP port unreachable;
/// the connected socket is closed with `Refused`.
#[test]
fn connected_udp_to_a_port_with_nothing_bound_is_refused() -> io::Result<()> {
    evdrive_tests::init_log();
    let (event, elapsed) = ping_across(Peer::Nothing)?;
    assert_refused_promptly(event, elapsed);
    Ok(())
}

/// S30: a rule rejecting UDP with ICMP port unreachable in front of a bound socket: the
/// connected socket is closed with `Refused`, and the bound socket never sees the datagram.
#[test]
fn connected_udp_rejected_with_port_unreachable_is_refused() -> io::Result<()> {
    evdrive_tests::init_log();
    let (event, elapsed) = ping_across(Peer::Rejected)?;
    assert_refused_promptly(event, elapsed);
    Ok(())
}
