//! Backpressure: a peer that does not read cannot grow the server's memory.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use evdrive_tests::{
    connect, connect_with, observe, pattern, set_recv_buffer, wait_ready, Event, Observer,
    PatternCheck, Server, WAIT,
};
use protocols::echo::Echo;
use reactor::{
    CloseKind, ConnConfig, ConnId, Cx, ListenOptions, Protocol, TimerId, READ_BYTES_PER_TURN,
    READ_SIZE_MAX,
};

/// Writes the test pattern from position `from` without blocking until the server has paused
/// reading (its handler for `conn` got `on_high_water`) and this socket is full (a write would
/// block); returns the position reached. Waits for those two events, with no guess at how long
/// a full socket must stay full to mean a paused server.
fn write_until_paused(
    client: &mut TcpStream,
    observer: &mut Observer,
    conn: ConnId,
    mut from: u64,
) -> io::Result<u64> {
    client.set_nonblocking(true)?;
    let piece = 64 * 1024;
    let deadline = Instant::now() + WAIT;
    loop {
        let chunk = pattern(from, piece);
        match client.write(&chunk) {
            Ok(n) => from += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let paused = observer
                    .poll()
                    .iter()
                    .any(|e| matches!(e, Event::HighWater(c, _) if *c == conn));
                if paused {
                    client.set_nonblocking(false)?;
                    return Ok(from);
                }
                assert!(
                    Instant::now() < deadline,
                    "the socket stays full and the server never paused reading"
                );
                // Full, and the server still reading: room will come, or its pause report.
                wait_ready(client.as_fd(), libc::POLLOUT, Duration::from_millis(10))?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// S21, S25: a client sends megabytes to an echo server and reads nothing. The server pauses
/// reading at its high-water mark (`on_high_water`, snapshot shows `paused`) and its queue stays
/// bounded while the client is stalled; once the client reads, everything it sent comes back in
/// order, `on_drained` runs, and the connection ends cleanly.
#[test]
fn reading_pauses_at_high_water_and_resumes_when_drained() -> io::Result<()> {
    evdrive_tests::init_log();
    let (watch, mut observer) = observe();
    let config = ConnConfig::default();
    let (high, max) = (config.high_water, config.max_output);
    let opts = ListenOptions::default().with_conn(config);
    let server = Server::listen(|| (), opts, move |_, _: SocketAddr| watch.wrap(Echo))?;
    let mut client = connect_with(server.addr(), |fd| set_recv_buffer(fd, 64 * 1024))?;
    let conn = observer.wait_open(&[]);

    // 1. Send until the server has stopped reading and the client's socket is full.
    let sent = write_until_paused(&mut client, &mut observer, conn, 0)?;
    let i = observer.wait_for(WAIT, |e| matches!(e, Event::HighWater(c, _) if *c == conn));
    let Event::HighWater(_, queued_at_high) = observer.seen()[i] else {
        unreachable!()
    };
    assert!(queued_at_high > high);

    // 2. While stalled, the server's queue is bounded: above high water by at most what one
    // turn reads before the pause applies (`READ_BYTES_PER_TURN`, in reads of at most
    // `READ_SIZE_MAX`), far below the cap.
    let snap = server
        .with(move |r| r.connections().into_iter().find(|c| c.id == conn))
        .expect("the connection is open");
    assert!(snap.paused, "{snap}");
    assert!(snap.queued > high, "{snap}");
    let bound = high + READ_BYTES_PER_TURN + READ_SIZE_MAX;
    assert!(bound < max);
    assert!(
        snap.queued <= bound,
        "queue not bounded by backpressure: {snap}"
    );
    assert!(
        sent > snap.queued as u64 + snap.bytes_out,
        "sent {sent}, {snap}"
    );
    // Still paused: a second look finds nothing more read, and a queue no larger (the
    // client reads nothing, so at most the kernel took some of it).
    let again = server
        .with(move |r| r.connections().into_iter().find(|c| c.id == conn))
        .expect("the connection is open");
    assert!(again.paused, "{again}");
    assert_eq!(again.bytes_in, snap.bytes_in, "read while paused: {again}");
    assert!(again.queued <= snap.queued, "{again}");

    // 3. Read: every byte sent comes back, in order, and the server resumed reading.
    let mut check = PatternCheck::default();
    let mut buf = vec![0u8; 64 * 1024];
    while check.pos < sent {
        let n = client.read(&mut buf)?;
        assert!(n > 0, "end of stream after {} of {sent} bytes", check.pos);
        check.check(&buf[..n]);
    }
    observer.wait_for(WAIT, |e| matches!(e, Event::Drained(c, _) if *c == conn));

    // 4. Half-close: the echo server finishes and closes.
    client.shutdown(std::net::Shutdown::Write)?;
    let mut rest = Vec::new();
    client.read_to_end(&mut rest)?;
    assert!(rest.is_empty(), "{} unexpected bytes", rest.len());
    assert!(matches!(
        observer.wait_close(conn),
        CloseKind::PeerClosed | CloseKind::Local
    ));
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}

/// Writes 128 KiB every 2 ms, whatever the queue holds: a handler that ignores backpressure.
struct Flood;

impl<App> Protocol<App> for Flood {
    fn on_open(&mut self, cx: &mut Cx<'_, App>) {
        cx.socket()
            .expect("open")
            .set_send_buffer_size(4096)
            .expect("SO_SNDBUF");
        cx.set_timer(Duration::from_millis(1), 0);
    }

    fn on_data(&mut self, _cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        data.len()
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, App>, _timer: TimerId) {
        if cx.write(&[7u8; 128 * 1024]) {
            cx.set_timer(Duration::from_millis(2), 0);
        }
    }
}

/// S21: a handler that keeps writing to a peer that does not read passes `max_output` and the
/// connection is closed with `SlowConsumer` (the peer sees a reset); another connection of the
/// same server is unaffected.
#[test]
fn writing_past_max_output_closes_as_slow_consumer() -> io::Result<()> {
    evdrive_tests::init_log();
    let (watch, mut observer) = observe();
    let opts =
        ListenOptions::default().with_conn(ConnConfig::default().with_max_output(1024 * 1024));
    let server = Server::listen(|| (), opts.clone(), {
        let watch = watch.clone();
        move |_, _: SocketAddr| watch.wrap(Flood)
    })?;
    let echo_addr = server.with(move |r| {
        let id = r.listen(evdrive_tests::localhost(), opts, move |_, _| {
            watch.wrap(Echo)
        })?;
        r.listener_addr(id)
    })?;

    // A well-behaved client of the echo listener, open throughout.
    let mut other = connect(echo_addr)?;
    let other_conn = observer.wait_open(&[]);

    // The flooded client never reads, through a small receive buffer.
    let mut client = connect_with(server.addr(), |fd| set_recv_buffer(fd, 4096))?;
    let conn = observer.wait_open(&[other_conn]);
    assert_eq!(observer.wait_close(conn), CloseKind::SlowConsumer);
    assert_eq!(server.stats().slow_consumers, 1);

    // The flooded client's stream ends (with a reset: the queue was dropped, not flushed).
    let mut buf = vec![0u8; 64 * 1024];
    let end = loop {
        match client.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(_) => continue,
            Err(e) => break Err(e),
        }
    };
    let err = end.expect_err("a slow consumer is reset, not closed in order");
    assert!(evdrive_tests::is_reset(&err), "{err}");

    // The other connection still works.
    other.write_all(b"still here")?;
    let mut reply = [0u8; 10];
    other.read_exact(&mut reply)?;
    assert_eq!(&reply, b"still here");
    drop(other);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}
