//! The loop-wide connection limit (`Limits::max_connections`): at the limit the listener
//! pauses and new clients wait in the kernel's backlog; it resumes by itself when connections
//! close. With `AtLimit::ShedIdle`, the longest-idle connection makes room instead.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::Duration;

use evdrive_tests::{connect, is_reset, localhost, observe, wait_ready, Observer, Server};
use protocols::echo::Echo;
use reactor::{AtLimit, CloseKind, ConnId, Limits, ListenOptions};

/// How long a client waits to be sure that no echo comes: the reactor answers a served client
/// within a millisecond or two.
const QUIET: Duration = Duration::from_millis(300);

/// An echo server with `limits` and `at_limit`, and the observer of its connections.
fn limited_echo(limits: Limits, at_limit: AtLimit) -> io::Result<(Server<()>, Observer)> {
    let opts = ListenOptions::default().with_at_limit(at_limit);
    let (watch, observer) = observe();
    let server = Server::start(
        || (),
        move |r| {
            r.set_limits(limits);
            let id = r.listen(localhost(), opts, move |_, _| watch.wrap(Echo))?;
            r.listener_addr(id)
        },
    )?;
    Ok((server, observer))
}

/// Sends `byte` and expects it back.
fn ping(client: &mut TcpStream, byte: u8) -> io::Result<()> {
    client.write_all(&[byte])?;
    let mut echo = [0u8; 1];
    client.read_exact(&mut echo)?;
    assert_eq!(echo[0], byte);
    Ok(())
}

/// S23, S27: with `max_connections: 5`, eight clients connect: five are served, three wait in
/// the backlog (connected by the kernel, never accepted, no echo). Two served clients leave and
/// the listener resumes by itself: the two oldest waiting clients are accepted and served, the
/// third still waits.
#[test]
fn clients_past_the_limit_wait_in_the_backlog_until_others_leave() -> io::Result<()> {
    evdrive_tests::init_log();
    let limits = Limits::default().with_max_connections(5);
    let (server, mut observer) = limited_echo(limits, AtLimit::Pause)?;

    // 1. Five clients are served.
    let mut served = Vec::new();
    let mut ids: Vec<ConnId> = Vec::new();
    for i in 0..5u8 {
        let mut client = connect(server.addr())?;
        ids.push(observer.wait_open(&ids));
        ping(&mut client, i)?;
        served.push(client);
    }

    // 2. Three more connect (the kernel completes the handshake) and send a byte: no echo.
    let mut waiting = Vec::new();
    for i in 5..8u8 {
        let mut client = connect(server.addr())?;
        client.write_all(&[i])?;
        waiting.push(client);
    }
    assert!(!wait_ready(waiting[0].as_fd(), libc::POLLIN, QUIET)?);
    for client in &waiting[1..] {
        assert!(!wait_ready(client.as_fd(), libc::POLLIN, Duration::ZERO)?);
    }
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.open), (5, 5), "{stats:?}");

    // 3. Two served clients leave: the two oldest waiting ones get their echo.
    for client in served.drain(..2) {
        drop(client);
    }
    for id in &ids[..2] {
        assert_eq!(observer.wait_close(*id), CloseKind::PeerClosed);
    }
    for (i, client) in waiting.iter_mut().take(2).enumerate() {
        let mut echo = [0u8; 1];
        client.read_exact(&mut echo)?;
        assert_eq!(echo[0], 5 + i as u8);
    }
    assert!(!wait_ready(waiting[2].as_fd(), libc::POLLIN, QUIET)?);
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.open), (7, 5), "{stats:?}");

    drop(served);
    drop(waiting);
    server.shutdown(Duration::from_secs(1))?;
    observer.assert_closed_once();
    Ok(())
}

/// S24, S25: with `max_connections: 2` and `AtLimit::ShedIdle`, a third client is admitted by
/// aborting the longest-idle connection, whose handler sees `IdleTimeout` and whose client sees
/// a reset; the busier connection stays.
#[test]
fn at_the_limit_the_longest_idle_connection_makes_room() -> io::Result<()> {
    evdrive_tests::init_log();
    let limits = Limits::default().with_max_connections(2);
    let (server, mut observer) = limited_echo(limits, AtLimit::ShedIdle)?;
    let mut a = connect(server.addr())?;
    let a_id = observer.wait_open(&[]);
    ping(&mut a, b'a')?;
    let mut b = connect(server.addr())?;
    let b_id = observer.wait_open(&[a_id]);

    // 1. B talks until the reactor sees it as more recently active than A (activity is kept
    // in milliseconds, so one ping may land in the same millisecond as A's).
    let mut b_is_fresher = false;
    for _ in 0..1000 {
        ping(&mut b, b'b')?;
        b_is_fresher = server.with(move |r| {
            let snaps = r.connections();
            let idle = |id| snaps.iter().find(|s| s.id == id).map(|s| s.idle);
            idle(a_id) > idle(b_id)
        });
        if b_is_fresher {
            break;
        }
    }
    assert!(b_is_fresher, "A never became idler than B");

    // 2. C connects: A is shed to admit it.
    let mut c = connect(server.addr())?;
    let c_id = observer.wait_open(&[a_id, b_id]);
    ping(&mut c, b'c')?;
    assert_eq!(observer.wait_close(a_id), CloseKind::IdleTimeout);
    let mut buf = [0u8; 8];
    match a.read(&mut buf) {
        Err(e) if is_reset(&e) => {}
        other => panic!("the shed client should see a reset, got {other:?}"),
    }
    ping(&mut b, b'b')?;
    let (stats, snaps) = server.with(|r| (r.stats().clone(), r.connections()));
    assert_eq!(stats.idle_sheds, 1, "{stats:?}");
    assert_eq!(stats.open, 2, "{stats:?}");
    let mut open: Vec<ConnId> = snaps.iter().map(|s| s.id).collect();
    open.sort();
    let mut expected = vec![b_id, c_id];
    expected.sort();
    assert_eq!(open, expected);

    drop((a, b, c));
    server.shutdown(Duration::from_secs(1))?;
    observer.assert_closed_once();
    Ok(())
}
