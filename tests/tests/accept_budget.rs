//! S23: accepts per loop turn are bounded for fairness, and the listen backlog is the one
//! configured.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use evdrive_tests::{
    connect, localhost, observe, sockaddr_in, tcp_socket, wait_ready, Server, WAIT,
};
use protocols::echo::Echo;
use reactor::testing::Harness;
use reactor::{Limits, ListenOptions};

/// S23: with `accepts_per_turn: 4`, ten clients waiting in the backlog are accepted four per
/// turn (4, 8, 10), with no new readiness edge between turns: a listener that spent its budget
/// stays on the ready list. A client already connected is served in the first of those turns,
/// not after the whole flood.
#[test]
fn accepts_per_turn_bound_each_turn_and_the_rest_follow() -> io::Result<()> {
    let mut h = Harness::new(())?;
    let listener = h.listen(ListenOptions::default().with_accepts_per_turn(4), |_, _| {
        Echo
    });
    let early = listener.connect();
    h.settle()?;
    assert_eq!(h.reactor().stats().accepted, 1);

    let flood: Vec<_> = (0..10).map(|_| listener.connect()).collect();
    early.send(b"ping");
    h.turn()?;
    assert_eq!(
        early.take_received(),
        b"ping",
        "served in the flood's first turn"
    );
    let mut accepted = Vec::new();
    for _ in 0..3 {
        accepted.push((h.reactor().stats().accepted - 1, listener.pending()));
        h.turn()?;
    }
    assert_eq!(accepted, [(4, 6), (8, 2), (10, 0)]);
    for peer in &flood {
        peer.send(b"x");
    }
    h.settle()?;
    assert!(flood.iter().all(|p| p.take_received() == b"x"));
    Ok(())
}

/// Starts a non-blocking connect to `addr`; the connection completes in the background.
fn start_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::from(tcp_socket()?);
    stream.set_nonblocking(true)?;
    sockaddr_in(addr)?; // IPv4 only
                        // `false`: in progress (EINPROGRESS, or EINTR, after which it goes on in the background).
    reactor::sys::connect_socket(stream.as_fd(), &addr)?;
    Ok(stream)
}

/// S23: `ListenOptions::backlog` reaches `listen`. With a backlog of 2 and accepting paused
/// (the connection limit of 1 is reached), Linux completes the handshake of backlog + 1 = 3
/// waiting clients and drops the SYN of a fourth, whose connect stays in progress; with the
/// default backlog of 1024 it would complete. (A slow machine can only make the fourth look
/// pending for longer, never complete it.)
#[test]
fn the_configured_backlog_bounds_the_accept_queue() -> io::Result<()> {
    evdrive_tests::init_log();
    let (watch, mut observer) = observe();
    let server = Server::start(
        || (),
        move |r| {
            r.set_limits(Limits::default().with_max_connections(1));
            let opts = ListenOptions::default().with_backlog(2);
            let id = r.listen(localhost(), opts, move |_, _| watch.wrap(Echo))?;
            r.listener_addr(id)
        },
    )?;
    let mut served = connect(server.addr())?;
    observer.wait_open(&[]);
    served.write_all(b"s")?;
    served.read_exact(&mut [0u8; 1])?;

    let waiting: Vec<TcpStream> = (0..3)
        .map(|_| start_connect(server.addr()))
        .collect::<io::Result<_>>()?;
    for (i, client) in waiting.iter().enumerate() {
        assert!(
            wait_ready(client.as_fd(), libc::POLLOUT, WAIT)?,
            "waiting client {i} was not connected by the kernel"
        );
        assert!(client.take_error()?.is_none());
    }
    let refused = start_connect(server.addr())?;
    assert!(
        !wait_ready(refused.as_fd(), libc::POLLOUT, Duration::from_millis(300))?,
        "a fourth client completed its handshake: the backlog of 2 was not applied"
    );
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.open), (1, 1), "{stats:?}");
    drop(refused);
    drop(waiting);
    drop(served);
    server.stop()
}
