//! Listeners as handles (`ListenerId`): pause and resume, close, address and counters, and a
//! `std` listener adopted from elsewhere; over real sockets, and on the in-memory transport
//! for the counters that need injected faults.

mod common;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

use common::{accepted_by, echo_through, turn_until, Echo};
use evdrive_reactor::testing::Harness;
use evdrive_reactor::{Limits, ListenOptions, Reactor};

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn a_paused_listener_leaves_clients_in_the_backlog_until_resumed() -> io::Result<()> {
    let mut r = Reactor::new(())?;
    let paused = r.listen(localhost(), ListenOptions::default(), |_, _| Echo)?;
    let witness = r.listen(localhost(), ListenOptions::default(), |_, _| Echo)?;
    assert!(r.cx().pause_listener(paused));
    assert!(r.cx().listener_stats(paused).unwrap().paused);
    // The kernel completes the handshake: the client waits in the backlog.
    let mut waiting = TcpStream::connect(r.listener_addr(paused)?)?;
    // A client of the other listener, connected after: once it is accepted, the paused
    // listener's would have been too.
    let _other = TcpStream::connect(r.listener_addr(witness)?)?;
    turn_until(&mut r, |r| accepted_by(r, witness) == 1)?;
    assert_eq!(accepted_by(&mut r, paused), 0, "accepted while paused");
    // Resumed: the waiting client is accepted without a new edge, and served.
    assert!(r.cx().resume_listener(paused));
    turn_until(&mut r, |r| accepted_by(r, paused) == 1)?;
    assert_eq!(echo_through(&mut r, &mut waiting, b"late")?, b"late");
    Ok(())
}

#[test]
fn a_closed_listener_refuses_new_clients_and_keeps_its_connections() -> io::Result<()> {
    let mut r = Reactor::new(())?;
    let id = r.listen(localhost(), ListenOptions::default(), |_, _| Echo)?;
    let addr = r.listener_addr(id)?;
    let mut kept = TcpStream::connect(addr)?;
    turn_until(&mut r, |r| accepted_by(r, id) == 1)?;
    assert!(r.cx().close_listener(id));
    assert!(!r.cx().close_listener(id), "closed twice");
    assert!(!r.cx().pause_listener(id));
    assert_eq!(
        r.listener_addr(id).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert!(r.cx().listener_stats(id).is_none());
    // The socket is closed: the kernel refuses new clients.
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    // What it accepted goes on.
    assert_eq!(
        echo_through(&mut r, &mut kept, b"still here")?,
        b"still here"
    );
    Ok(())
}

#[test]
fn an_adopted_listener_serves_clients_queued_before_adoption() -> io::Result<()> {
    // Bound elsewhere (as a parent process would), blocking, with a client already queued.
    let std_listener = TcpListener::bind(localhost())?;
    let addr = std_listener.local_addr()?;
    let mut early = TcpStream::connect(addr)?;
    let mut r = Reactor::new(())?;
    let id = r.adopt_listener(std_listener, ListenOptions::default(), |_, _| Echo)?;
    assert_eq!(r.listener_addr(id)?, addr);
    // Queued before the registration, accepted after it; made non-blocking, so the accept
    // loop ends at WouldBlock instead of hanging the turn.
    turn_until(&mut r, |r| accepted_by(r, id) == 1)?;
    assert_eq!(echo_through(&mut r, &mut early, b"adopted")?, b"adopted");
    let mut later = TcpStream::connect(addr)?;
    assert_eq!(echo_through(&mut r, &mut later, b"again")?, b"again");
    assert_eq!(accepted_by(&mut r, id), 2);
    Ok(())
}

#[test]
fn listener_counters_count_accepts_errors_and_limit_pauses() -> io::Result<()> {
    let mut h = Harness::new(())?;
    h.reactor()
        .set_limits(Limits::default().with_max_connections(1));
    let l = h.listen(ListenOptions::default(), |_, _| Echo);
    let id = l.id();
    l.inject_accept_error(libc::ECONNABORTED);
    let first = l.connect();
    h.settle()?;
    // At the limit: the second client waits, and the pause is counted once.
    let _second = l.connect();
    h.settle()?;
    let _third = l.connect();
    h.settle()?;
    let stats = h.reactor().cx().listener_stats(id).unwrap();
    assert_eq!(
        (stats.accepted, stats.accept_errors, stats.paused_by_limit),
        (1, 1, 1)
    );
    assert!(!stats.paused, "a limit pause is not a user pause");
    // A slot frees: the waiting clients are accepted one by one, each pause counted.
    first.shutdown_write();
    h.settle()?;
    let stats = h.reactor().cx().listener_stats(id).unwrap();
    assert_eq!((stats.accepted, stats.paused_by_limit), (2, 2));
    Ok(())
}
