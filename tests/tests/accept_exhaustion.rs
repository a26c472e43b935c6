//! Descriptor exhaustion: the listener backs off instead of spinning, tells pending clients,
//! and recovers by itself.
//!
//! This file holds one test only: the descriptor limit it lowers is process-wide, and `cargo
//! test` runs the tests of one file as threads of one process.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use evdrive_tests::{connect, connect_socket, observe, tcp_socket, Event, Server, WAIT};
use protocols::echo::Echo;
use reactor::{sys, ListenOptions};

/// The soft descriptor limit during the test.
const LIMIT: u64 = 64;
/// Clients served before descriptors run out.
const SERVED: usize = 8;
/// Clients that connect once descriptors are out.
const EXCESS: usize = 32;
/// Clients that connect later, while the listener is backing off.
const LATE: usize = 8;
/// The most loop turns per second the exhausted reactor may make (it waits on a back-off timer
/// of 20 to 200 ms between retries).
const MAX_TURNS_PER_SEC: f64 = 200.0;

/// Restores the descriptor limit when dropped, even if the test fails.
struct RestoreLimit(u64);

impl Drop for RestoreLimit {
    fn drop(&mut self) {
        let _ = sys::set_nofile_limit(self.0);
    }
}

/// Sends `msg` and expects it back.
fn round_trip(client: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    client.write_all(msg)?;
    let mut back = vec![0u8; msg.len()];
    client.read_exact(&mut back)?;
    assert_eq!(back, msg);
    Ok(())
}

/// Expects the server to end the connection: end of stream or a reset, never a hang (each read
/// is bounded by the client's read timeout).
fn expect_closed(client: &mut TcpStream) {
    let mut buf = [0u8; 16];
    match client.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("a shed client got {n} bytes"),
        Err(e) => assert!(evdrive_tests::is_reset(&e), "a shed client: {e}"),
    }
}

/// S5, S27: with the soft `RLIMIT_NOFILE` lowered to 64, an echo server serves what it can,
/// then accept fails with `EMFILE`. The listener backs off on a timer instead of spinning (few
/// loop turns while exhausted), uses its spare descriptor to accept and close the clients it
/// cannot serve (they read end of stream or a reset at once instead of hanging in the backlog),
/// and serves new clients again by itself once descriptors are free.
#[test]
fn emfile_backs_off_sheds_pending_clients_and_recovers() -> io::Result<()> {
    evdrive_tests::init_log();
    let (watch, mut observer) = observe();
    let opts = ListenOptions::default()
        .with_backoff_min(Duration::from_millis(20))
        .with_backoff_max(Duration::from_millis(200));
    let server = Server::listen(|| (), opts, move |_, _: SocketAddr| watch.wrap(Echo))?;
    let addr = server.addr();

    // 1. Take every descriptor number below the limit and some above it, all before lowering
    // the limit (connecting a socket allocates no descriptor, so these can connect later).
    // Descriptors are allocated lowest number first, so once enough sockets have numbers
    // at or above the limit, every number below it is in use.
    let mut sockets: Vec<OwnedFd> = Vec::new();
    while sockets
        .iter()
        .filter(|fd| fd.as_raw_fd() as u64 >= LIMIT)
        .count()
        < SERVED + EXCESS + LATE
    {
        sockets.push(tcp_socket()?);
        assert!(sockets.len() < 1000, "too many descriptors open already");
    }
    sockets.sort_by_key(|fd| fd.as_raw_fd());
    let (old_soft, _) = sys::nofile_limit()?;
    let _restore = RestoreLimit(old_soft);
    sys::set_nofile_limit(LIMIT)?;

    // 2. Free exactly SERVED numbers below the limit: room for that many accepted sockets.
    let low: Vec<OwnedFd> = sockets.drain(..SERVED).collect();
    assert!(low.iter().all(|fd| (fd.as_raw_fd() as u64) < LIMIT));
    drop(low);
    let mut clients = sockets.split_off(sockets.len() - (SERVED + EXCESS + LATE));
    let _fillers = sockets;

    // 3. SERVED clients are served.
    let mut served = Vec::new();
    for fd in clients.drain(..SERVED) {
        let mut c = connect_socket(fd, addr)?;
        round_trip(&mut c, b"hello")?;
        served.push(c);
    }
    // (The accept after the last of them already fails: Linux allocates the descriptor
    // before looking at the queue.)
    assert_eq!(server.stats().accepted, SERVED as u64);

    // 4. More clients: accept fails with EMFILE, and they are accepted and closed at once.
    let mut excess = Vec::new();
    for fd in clients.drain(..EXCESS) {
        excess.push(connect_socket(fd, addr)?);
    }
    for c in &mut excess {
        expect_closed(c);
    }
    let before = server.stats();
    assert!(before.accept_errors.emfile > 0, "{before:?}");
    assert!(before.accept_shed >= EXCESS as u64, "{before:?}");
    assert_eq!(before.accepted, SERVED as u64, "{before:?}");

    // 5. While still exhausted, late clients are shed too, at the end of a back-off period;
    // the loop does not spin meanwhile.
    let started = Instant::now();
    let mut late = Vec::new();
    for fd in clients.drain(..) {
        late.push(connect_socket(fd, addr)?);
    }
    for c in &mut late {
        expect_closed(c);
    }
    // Measure the turn rate over a few back-off periods with nothing to do but retry. (A
    // measuring window, not a wait for something: a slow machine lengthens it, and the rate,
    // not the count, is what is checked.)
    std::thread::sleep(Duration::from_millis(500));
    let after = server.stats();
    let elapsed = started.elapsed();
    let turns = after.turns - before.turns;
    let rate = turns as f64 / elapsed.as_secs_f64();
    assert!(
        rate < MAX_TURNS_PER_SEC,
        "{turns} turns in {elapsed:?} ({rate:.0}/s) while out of descriptors: the listener spins"
    );
    assert!(after.accept_shed >= (EXCESS + LATE) as u64, "{after:?}");
    for c in &mut served {
        round_trip(c, b"still served")?;
    }

    // 6. Served clients leave; their descriptors free up and the listener recovers by itself.
    let opened: Vec<_> = observer
        .poll()
        .iter()
        .filter(|e| matches!(e, Event::Open(_)))
        .map(Event::conn)
        .collect();
    assert_eq!(opened.len(), SERVED);
    drop(served);
    for conn in &opened {
        observer.wait_close(*conn);
    }
    drop(excess);
    drop(late);
    let mut again = connect(addr)?;
    round_trip(&mut again, b"back again")?;
    drop(again);

    drop(_fillers);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}
