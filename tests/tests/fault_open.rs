//! Open connections whose path breaks (S7, S8, S13, S14): each way the reactor notices a
//! vanished or refusing peer, with the close reason it reports and the time it takes.
//!
//! The reactor (namespace `a`) connects to a live peer (namespace `b`), the connection opens,
//! and then a packet filter rule in `b` breaks the path (see `netns_util`):
//!
//! | the path                  | what notices                  | reason        |
//! |---------------------------|-------------------------------|---------------|
//! | drops everything          | the heartbeat (read idle)     | `IdleTimeout` |
//! | drops everything          | TCP keepalive                 | `TimedOut`    |
//! | drops everything          | the write-stall timeout       | `TimedOut`    |
//! | drops everything          | the linger timeout of a close | `Local`       |
//! | answers with a TCP reset  | the next send                 | `Reset`       |
//! | answers with ICMP unreach | retransmissions giving up     | `Unreachable` |
//!
//! What Linux does with ICMP unreachable on an established connection, as these tests show:
//! it is a *soft* error. The connection is not closed when the ICMP arrives (unlike a connect,
//! where it is fatal at once); the kernel keeps retransmitting, and when retransmissions give up
//! (`net.ipv4.tcp_retries2`, lowered in the reactor's namespace to make that 3 s) the socket
//! fails with the remembered `EHOSTUNREACH`/`ENETUNREACH` instead of `ETIMEDOUT`. Keepalive
//! probes are sent one below the unacknowledged sequence number, so the ICMP errors they draw
//! are ignored as out of window: keepalive alone ends such a connection with `TimedOut`.
//!
//! Every time is measured from a moment the test knows to come no later than the event that
//! armed the timeout (the connect, the command that queued output or began the close), except
//! those counted from traffic, which the reactor and the kernel count in whole ticks.

mod netns_util;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use evdrive_tests::WAIT;
use netns_util::{accept, assert_bounded, connect, Fault, NetPair, Reports, SLACK};
use reactor::{CloseKind, CloseReason, ConnConfig, ConnId, Keepalive};

/// One reactor tick: timeouts counted from traffic start at the tick of the turn that saw it,
/// which may lie up to a tick before the traffic itself.
const TICK: Duration = Duration::from_millis(1);

/// The output queued behind a broken path: far more than the kernel's send buffer holds.
const BULK: usize = 1 << 20;

/// An open connection from the reactor to a peer, across a path still intact.
struct Opened {
    net: NetPair,
    server: evdrive_tests::Server<()>,
    reports: Reports,
    conn: ConnId,
    peer: TcpStream,
}

impl Opened {
    /// Connects with `config` (and a heartbeat, if given) and waits until both ends are open.
    fn new(config: ConnConfig, heartbeat: Option<(Duration, Duration)>) -> io::Result<Opened> {
        Self::with_net(NetPair::new()?, config, heartbeat)
    }

    fn with_net(
        net: NetPair,
        config: ConnConfig,
        heartbeat: Option<(Duration, Duration)>,
    ) -> io::Result<Opened> {
        let listener = net.peer_listener()?;
        let server = net.reactor()?;
        let mut reports = Reports::default();
        let conn = connect(
            &server,
            listener.local_addr()?,
            reports.probe(heartbeat),
            config,
        )?;
        let peer = accept(&listener)?;
        reports.wait_open(conn);
        Ok(Opened {
            net,
            server,
            reports,
            conn,
            peer,
        })
    }

    /// Queues `len` bytes on the connection from inside a reactor turn, so the turn's clock
    /// is no earlier than the moment this is called. Returns that moment.
    fn queue(&self, len: usize) -> Instant {
        let conn = self.conn;
        let at = Instant::now();
        self.server.with(move |r| {
            r.cx().schedule(Duration::ZERO, move |cx| {
                cx.send_to(conn, &vec![b'x'; len]);
            });
        });
        at
    }

    /// Waits up to `limit` for the close; returns its reason's kind and time.
    fn wait_close(&mut self, limit: Duration) -> (CloseKind, Instant) {
        self.reports.wait_close(self.conn, limit)
    }

    /// Checks the reactor counted the close under `kind`, and shuts it down.
    fn finish(self, kind: CloseKind) -> io::Result<()> {
        let stats = self.server.stats();
        assert_eq!(stats.closed_by(kind), 1, "{stats:?}");
        assert_eq!(stats.closed_total(), 1, "{stats:?}");
        self.server.shutdown(WAIT)?;
        drop(self.peer);
        drop(self.net);
        Ok(())
    }
}

/// S13: the heartbeat pings every 100 ms and the peer echoes, so the connection lives; once
/// the path drops everything, nothing more arrives and the heartbeat closes it with
/// `IdleTimeout` no earlier than the read-idle limit after the last echo arrived. The close is
/// graceful, so it ends after the linger timeout too (its FIN cannot get through either).
#[test]
fn heartbeat_closes_a_connection_whose_path_went_silent() -> io::Result<()> {
    evdrive_tests::init_log();
    let interval = Duration::from_millis(100);
    let read_idle = Duration::from_millis(500);
    let linger = Duration::from_millis(300);
    let config = ConnConfig::default().with_linger_timeout(linger);
    let mut o = Opened::new(config, Some((interval, read_idle)))?;

    // The peer echoes until its socket is shut down, and notes when it began writing each
    // echo and where in the stream that echo ends.
    let mut echo = o.peer.try_clone()?;
    let echoer = std::thread::spawn(move || {
        let mut writes: Vec<(u64, Instant)> = Vec::new();
        let mut total = 0u64;
        let mut buf = [0u8; 256];
        while let Ok(n) = echo.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
            writes.push((total, Instant::now()));
            if echo.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        writes
    });
    // Alive: several echoes come back, each within the read-idle limit of the one before.
    let conn = o.conn;
    let mut echoes = 0;
    o.reports.wait_for("three echoes", WAIT, |r| {
        matches!(r, netns_util::Report::Data(c, ..) if *c == conn) && {
            echoes += 1;
            echoes >= 3
        }
    });

    let dropped = Instant::now();
    o.net.break_path(Fault::Drop)?;
    let (kind, closed) = o.wait_close(read_idle + interval + linger + SLACK);
    assert_eq!(kind, CloseKind::IdleTimeout);
    assert!(closed > dropped, "closed before the path broke");
    o.peer.shutdown(Shutdown::Both)?;
    let writes = echoer.join().expect("the echo thread");

    // The last byte that arrived was written by the peer no earlier than this: the heartbeat's
    // read-idle time is counted from (the tick of) its arrival.
    let received = o.reports.received(conn);
    let last_write = writes
        .iter()
        .find(|(end, _)| *end >= received)
        .map(|&(_, at)| at)
        .expect("the peer wrote every byte that arrived");
    assert_bounded(
        "the heartbeat's close",
        closed - last_write + TICK,
        read_idle + linger,
    );
    assert!(closed - dropped <= read_idle + interval + linger + SLACK);
    o.finish(CloseKind::IdleTimeout)
}

/// Keepalive probing of 1 s idle, 1 s interval and 2 probes.
fn keepalive() -> Keepalive {
    Keepalive {
        idle: Duration::from_secs(1),
        interval: Duration::from_secs(1),
        count: 2,
    }
}

/// How long keepalive takes to give up on a silent peer: the idle time, then one interval per
/// unanswered probe. The kernel counts it in jiffies (at least 100 per second) from the last
/// segment received, so it may end up to one jiffy early.
fn keepalive_limit() -> Duration {
    let ka = keepalive();
    ka.idle + ka.interval * ka.count - Duration::from_millis(10)
}

/// S7, S13: with nothing to send and a path that drops everything, TCP keepalive's probes go
/// unanswered and the kernel ends the connection with `ETIMEDOUT`: `TimedOut`, no earlier than
/// idle + count × interval after the last segment received (which came after the connect
/// began), and not much later.
#[test]
fn keepalive_closes_a_connection_whose_path_went_silent() -> io::Result<()> {
    evdrive_tests::init_log();
    let config = ConnConfig::default().with_keepalive(Some(keepalive()));
    let started = Instant::now();
    let mut o = Opened::new(config, None)?;
    o.net.break_path(Fault::Drop)?;
    let (kind, closed) = o.wait_close(keepalive_limit() + SLACK);
    assert_eq!(kind, CloseKind::TimedOut);
    assert_bounded("keepalive", closed - started, keepalive_limit());
    o.finish(CloseKind::TimedOut)
}

/// S7: keepalive probes answered by ICMP host unreachable: Linux ignores those errors (a probe
/// carries a sequence number below the window), so the connection still ends with `TimedOut`
/// after the probes, not with `Unreachable`.
#[test]
fn keepalive_probes_drawing_icmp_unreachable_still_time_out() -> io::Result<()> {
    evdrive_tests::init_log();
    let config = ConnConfig::default().with_keepalive(Some(keepalive()));
    let started = Instant::now();
    let mut o = Opened::new(config, None)?;
    o.net.break_path(Fault::RejectHostUnreachable)?;
    let (kind, closed) = o.wait_close(keepalive_limit() + SLACK);
    assert_eq!(kind, CloseKind::TimedOut);
    assert_bounded("keepalive", closed - started, keepalive_limit());
    o.finish(CloseKind::TimedOut)
}

/// S7, S8: output queued behind a path that drops everything makes no progress once the
/// kernel's send buffer is full; the write-stall timeout aborts the connection with
/// `TimedOut`, no earlier than the timeout after the output was queued.
#[test]
fn write_stall_closes_a_writer_whose_path_went_silent() -> io::Result<()> {
    evdrive_tests::init_log();
    let stall = Duration::from_millis(500);
    let config = ConnConfig::default()
        .with_write_stall_timeout(Some(stall))
        .with_max_output(4 * BULK);
    let mut o = Opened::new(config, None)?;
    o.net.break_path(Fault::Drop)?;
    let queued = o.queue(BULK);
    let (kind, closed) = o.wait_close(stall + SLACK);
    assert_eq!(kind, CloseKind::TimedOut);
    assert_bounded("the write stall", closed - queued, stall);
    o.finish(CloseKind::TimedOut)
}

/// S14: a graceful close whose output can no longer reach the peer (the path drops everything)
/// still ends within its linger timeout, counted from the moment the close began; the reason
/// is the one the close was asked with.
#[test]
fn a_graceful_close_across_a_silent_path_ends_at_its_linger_timeout() -> io::Result<()> {
    evdrive_tests::init_log();
    let linger = Duration::from_millis(500);
    let config = ConnConfig::default().with_linger_timeout(linger);
    let mut o = Opened::new(config, None)?;
    o.net.break_path(Fault::Drop)?;
    let conn = o.conn;
    let began = Instant::now();
    o.server.with(move |r| {
        r.cx().schedule(Duration::ZERO, move |cx| {
            cx.send_to(conn, &vec![b'x'; BULK]);
            cx.close_conn(conn, CloseReason::Local);
        });
    });
    let (kind, closed) = o.wait_close(linger + SLACK);
    assert_eq!(kind, CloseKind::Local);
    assert_bounded("the graceful close", closed - began, linger);
    o.finish(CloseKind::Local)
}

/// S7: once the path answers with TCP resets, the next segment the reactor sends draws
/// one, and the connection ends with `Reset` at once.
#[test]
fn a_reset_in_the_middle_of_a_connection_is_reset() -> io::Result<()> {
    evdrive_tests::init_log();
    let mut o = Opened::new(ConnConfig::default(), None)?;
    o.net.break_path(Fault::RejectReset)?;
    let sent = o.queue(4);
    let (kind, closed) = o.wait_close(SLACK);
    assert_eq!(kind, CloseKind::Reset);
    assert!(closed - sent <= SLACK);
    o.finish(CloseKind::Reset)
}

/// How long retransmissions last with `tcp_retries2` = 3: (2⁴ − 1) × the minimum
/// retransmission timeout of 200 ms (the path's round trip is far below it), counted by the
/// kernel in jiffies, so up to one jiffy less.
const RETRIES_LIMIT: Duration = Duration::from_millis(3000 - 10);

/// Opens a connection in a pair whose reactor namespace gives up retransmitting after 3 s,
/// lets the path answer with `fault`, sends a few bytes and returns how the connection ended
/// and how long after the send.
fn send_into_icmp(fault: Fault) -> io::Result<(Opened, CloseKind, Duration)> {
    let net = NetPair::new()?;
    net.sysctl_a("net.ipv4.tcp_retries2", "3")?;
    let mut o = Opened::with_net(net, ConnConfig::default(), None)?;
    o.net.break_path(fault)?;
    let sent = o.queue(4);
    let (kind, closed) = o.wait_close(RETRIES_LIMIT + SLACK);
    Ok((o, kind, closed - sent))
}

/// S7: data sent into ICMP host unreachable: not closed when the ICMP arrives (a soft error
/// on an established connection), but when retransmissions give up, and then with
/// `Unreachable` (`EHOSTUNREACH`), not `TimedOut`.
#[test]
fn host_unreachable_in_the_middle_of_a_connection_is_unreachable() -> io::Result<()> {
    evdrive_tests::init_log();
    let (o, kind, elapsed) = send_into_icmp(Fault::RejectHostUnreachable)?;
    assert_eq!(kind, CloseKind::Unreachable);
    assert_bounded("retransmission", elapsed, RETRIES_LIMIT);
    o.finish(CloseKind::Unreachable)
}

/// S7: the same with ICMP network unreachable (`ENETUNREACH`).
#[test]
fn net_unreachable_in_the_middle_of_a_connection_is_unreachable() -> io::Result<()> {
    evdrive_tests::init_log();
    let (o, kind, elapsed) = send_into_icmp(Fault::RejectNetUnreachable)?;
    assert_eq!(kind, CloseKind::Unreachable);
    assert_bounded("retransmission", elapsed, RETRIES_LIMIT);
    o.finish(CloseKind::Unreachable)
}
