//! Outgoing connects over a broken path (S4, S7, S8): dropped SYNs end in `ConnectTimeout` at
//! the configured time, a TCP reset in `Refused`, ICMP host or network unreachable in
//! `Unreachable`.
//!
//! The reactor runs in a network namespace of its own and connects to a listener in a second
//! one; the fault is a packet filter rule in the second (see `netns_util`). Every case first
//! has a live listener behind the fault, so only the fault can explain the outcome, and the
//! control case shows the same path working without one.

mod netns_util;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use evdrive_tests::WAIT;
use netns_util::{accept, assert_bounded, connect, Fault, NetPair, Reports, SLACK};
use reactor::{CloseKind, ConnConfig};

/// A connect timeout short enough for a test, long against the path's round trip (µs).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Connects from the reactor to a live listener across `fault` (if any) and returns how the
/// attempt ended (`None`: it opened) and how long after the connect began.
fn connect_across(fault: Option<Fault>) -> io::Result<(Option<CloseKind>, Duration)> {
    let net = NetPair::new()?;
    let listener = net.peer_listener()?;
    let addr: SocketAddr = listener.local_addr()?;
    if let Some(fault) = fault {
        net.break_path(fault)?;
    }
    let server = net.reactor()?;
    let mut reports = Reports::default();
    let config = ConnConfig::default().with_connect_timeout(CONNECT_TIMEOUT);
    let started = Instant::now();
    let conn = connect(&server, addr, reports.probe(None), config)?;
    let i = reports.wait_for("open or close", CONNECT_TIMEOUT + SLACK, |r| {
        matches!(r, netns_util::Report::Open(c, _) | netns_util::Report::Close(c, ..) if *c == conn)
    });
    let outcome = match reports.seen()[i] {
        netns_util::Report::Open(_, at) => (None, at - started),
        netns_util::Report::Close(_, kind, _, at) => (Some(kind), at - started),
        _ => unreachable!(),
    };
    if outcome.0.is_none() {
        // The control case: the path carries data both ways.
        let mut peer = accept(&listener)?;
        server.with(move |r| r.cx().send_to(conn, b"ping"));
        let mut got = [0u8; 4];
        peer.read_exact(&mut got)?;
        assert_eq!(&got, b"ping");
        peer.write_all(b"pong")?;
        reports.wait_for("data", WAIT, |r| matches!(r, netns_util::Report::Data(..)));
    } else {
        assert!(!reports.opened(conn), "a failed connect was opened");
        assert_eq!(server.stats().connected, 0);
    }
    server.shutdown(WAIT)?;
    Ok(outcome)
}

/// Without a fault the connect opens and carries data: the fixture's path works.
#[test]
fn without_a_fault_the_connect_opens() -> io::Result<()> {
    evdrive_tests::init_log();
    let (kind, _) = connect_across(None)?;
    assert_eq!(kind, None);
    Ok(())
}

/// S4, S8: SYNs dropped on the way: the connect ends with `ConnectTimeout`, not before the
/// configured 500 ms (the timer is armed when the connect starts), and not much later.
#[test]
fn dropped_syns_end_in_connect_timeout() -> io::Result<()> {
    evdrive_tests::init_log();
    let (kind, elapsed) = connect_across(Some(Fault::Drop))?;
    assert_eq!(kind, Some(CloseKind::ConnectTimeout));
    assert_bounded("the connect", elapsed, CONNECT_TIMEOUT);
    Ok(())
}

/// S4, S7: a SYN answered by a TCP reset ends the connect with `Refused`, at once (long before
/// the connect timeout).
#[test]
fn a_reset_answering_the_syn_is_refused() -> io::Result<()> {
    evdrive_tests::init_log();
    let (kind, elapsed) = connect_across(Some(Fault::RejectReset))?;
    assert_eq!(kind, Some(CloseKind::Refused));
    assert!(elapsed < CONNECT_TIMEOUT, "refused after {elapsed:?}");
    Ok(())
}

/// S7: a SYN answered by ICMP host unreachable ends the connect with `Unreachable`
/// (`EHOSTUNREACH`: Linux makes an ICMP error on a connecting socket a hard error), at once.
#[test]
fn host_unreachable_answering_the_syn_is_unreachable() -> io::Result<()> {
    evdrive_tests::init_log();
    let (kind, elapsed) = connect_across(Some(Fault::RejectHostUnreachable))?;
    assert_eq!(kind, Some(CloseKind::Unreachable));
    assert!(elapsed < CONNECT_TIMEOUT, "unreachable after {elapsed:?}");
    Ok(())
}

/// S7: a SYN answered by ICMP network unreachable ends the connect with `Unreachable`
/// (`ENETUNREACH`), at once.
#[test]
fn net_unreachable_answering_the_syn_is_unreachable() -> io::Result<()> {
    evdrive_tests::init_log();
    let (kind, elapsed) = connect_across(Some(Fault::RejectNetUnreachable))?;
    assert_eq!(kind, Some(CloseKind::Unreachable));
    assert!(elapsed < CONNECT_TIMEOUT, "unreachable after {elapsed:?}");
    Ok(())
}
