//! `Handle`: closures posted from other threads run inside the loop exactly once, in each
//! sender's order; posting to a reactor that is gone fails with `Error::Stopped` instead of
//! blocking or panicking; posted closures reach connections and can open new ones.

use std::io::{self, Read};
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use evdrive_tests::{connect, localhost, wait_ready, Server, WAIT};
use reactor::{ConnConfig, ConnId, Cx, Error, Protocol, Reactor};

/// Turns `reactor` until it has finished, failing the test after `limit`.
fn run_bounded<App>(reactor: &mut Reactor<App>, limit: Duration) -> io::Result<()> {
    let deadline = Instant::now() + limit;
    while !reactor.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the reactor did not finish in {limit:?}"
        );
        reactor.turn(Some(Duration::from_millis(50)))?;
    }
    Ok(())
}

/// Joins `thread`, failing the test if it has not finished within `limit` (a post that blocks).
fn join_bounded<T>(thread: JoinHandle<T>, limit: Duration) -> T {
    let deadline = Instant::now() + limit;
    while !thread.is_finished() {
        assert!(Instant::now() < deadline, "a posting thread is stuck");
        thread::sleep(Duration::from_millis(2));
    }
    match thread.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// S1: eight threads post 10,000 closures each, concurrently, through clones of one handle.
/// Every closure runs exactly once, and each sender's closures run in the order it posted them.
#[test]
fn posts_from_many_threads_run_once_in_per_sender_order() -> io::Result<()> {
    const SENDERS: usize = 8;
    const PER_SENDER: u32 = 10_000;
    let mut reactor = Reactor::new(Vec::<(usize, u32)>::with_capacity(
        SENDERS * PER_SENDER as usize,
    ))?;
    let handle = reactor.handle()?;
    let senders = thread::spawn(move || {
        let posters: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let handle = handle.clone();
                thread::spawn(move || {
                    for seq in 0..PER_SENDER {
                        handle
                            .post(move |cx| cx.app().push((sender, seq)))
                            .expect("the reactor is running");
                    }
                })
            })
            .collect();
        for poster in posters {
            poster.join().expect("a poster panicked");
        }
        // Posted after every message: it runs last.
        handle
            .shutdown(Duration::ZERO)
            .expect("the reactor is running");
    });
    run_bounded(&mut reactor, Duration::from_secs(30))?;
    join_bounded(senders, WAIT);

    let log = reactor.app();
    assert_eq!(log.len(), SENDERS * PER_SENDER as usize);
    let mut next = [0u32; SENDERS];
    for &(sender, seq) in log.iter() {
        assert_eq!(seq, next[sender], "sender {sender} out of order");
        next[sender] += 1;
    }
    assert!(next.iter().all(|&n| n == PER_SENDER), "{next:?}");
    Ok(())
}

/// What happened to the posted closures of the shutdown race.
#[derive(Default)]
struct Tally {
    /// Closures that ran.
    ran: AtomicU64,
    /// Closures dropped (after running, with the reactor, or rejected by `post`).
    dropped: AtomicU64,
}

/// Counts its drop, so that a closure that is neither run nor dropped (leaked) shows.
struct DropCount(Arc<Tally>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// S1: threads post in a loop while the reactor shuts down and is dropped. No post blocks or
/// panics; once the reactor is gone every post returns `Error::Stopped`. Every closure is
/// accounted for: posts that were accepted ran, or (accepted after the last turn) were dropped
/// with the reactor, as the `Handle` contract says; none is leaked.
#[test]
fn posts_racing_shutdown_run_or_fail_with_stopped() -> io::Result<()> {
    const POSTERS: usize = 4;
    /// Rejected posts each thread makes before it stops: posting after the drop keeps failing.
    const REJECTIONS: u64 = 100;
    let tally = Arc::new(Tally::default());
    let mut reactor = Reactor::new(())?;
    let handle = reactor.handle()?;
    let posters: Vec<_> = (0..POSTERS)
        .map(|_| {
            let handle = handle.clone();
            let tally = Arc::clone(&tally);
            thread::spawn(move || {
                let (mut accepted, mut stopped) = (0u64, 0u64);
                while stopped < REJECTIONS {
                    let guard = DropCount(Arc::clone(&tally));
                    let result = handle.post(move |_cx| {
                        guard.0.ran.fetch_add(1, Ordering::SeqCst);
                    });
                    match result {
                        Ok(()) => accepted += 1,
                        Err(Error::Stopped) => stopped += 1,
                        Err(e) => panic!("post failed with {e}"),
                    }
                    // Keep the queue from outgrowing what the loop runs.
                    if accepted % 1024 == 0 {
                        thread::yield_now();
                    }
                }
                (accepted, stopped)
            })
        })
        .collect();

    // 1. Serve posts for a while, then shut down in the middle of the stream and drop.
    let deadline = Instant::now() + WAIT;
    while tally.ran.load(Ordering::SeqCst) < 20_000 {
        assert!(Instant::now() < deadline, "posted closures do not run");
        reactor.turn(Some(Duration::from_millis(50)))?;
    }
    reactor.shutdown(Duration::ZERO);
    run_bounded(&mut reactor, WAIT)?;
    drop(reactor);
    assert!(handle.is_stopped());
    assert!(matches!(handle.post(|_| {}), Err(Error::Stopped)));

    // 2. Every thread ends by itself, having seen `Stopped`.
    let (mut accepted, mut stopped) = (0, 0);
    for poster in posters {
        let (a, s) = join_bounded(poster, WAIT);
        accepted += a;
        stopped += s;
    }
    let ran = tally.ran.load(Ordering::SeqCst);
    let dropped = tally.dropped.load(Ordering::SeqCst);
    assert_eq!(stopped, POSTERS as u64 * REJECTIONS);
    assert!(
        ran >= 20_000 && ran <= accepted,
        "ran {ran}, accepted {accepted}"
    );
    assert_eq!(dropped, accepted + stopped, "a closure was leaked");
    eprintln!(
        "posts: {accepted} accepted ({ran} ran, {} dropped with the reactor), {stopped} stopped",
        accepted - ran
    );
    Ok(())
}

/// Records every accepted connection in the user state and discards its input.
struct Record;

impl Protocol<Vec<ConnId>> for Record {
    fn on_open(&mut self, cx: &mut Cx<'_, Vec<ConnId>>) {
        let id = cx.id();
        cx.app().push(id);
    }

    fn on_data(&mut self, _cx: &mut Cx<'_, Vec<ConnId>>, data: &[u8]) -> usize {
        data.len()
    }
}

/// Greets the peer of an outgoing connection.
struct Greet;

/// What [`Greet`] sends.
const GREETING: &[u8] = b"hello from a connection opened by a posted closure";

impl<App> Protocol<App> for Greet {
    fn on_open(&mut self, cx: &mut Cx<'_, App>) {
        cx.write(GREETING);
    }

    fn on_data(&mut self, _cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        data.len()
    }
}

/// S1, S4: a closure posted through a `Handle` writes to an accepted connection with
/// `LoopCx::send_to`, and another opens an outgoing connection with `LoopCx::connect`, whose
/// handler greets the peer.
#[test]
fn posted_closures_write_to_connections_and_connect() -> io::Result<()> {
    evdrive_tests::init_log();
    let server = Server::listen(Vec::new, Default::default(), |_, _| Record)?;
    let handle = server.with(|r| r.handle())?;

    // 1. Write to an accepted connection from another thread.
    let mut client = connect(server.addr())?;
    let conn = server
        .wait_for(WAIT, |r| r.app().first().copied())
        .expect("the client was never accepted");
    let (tx, rx) = mpsc::channel();
    let sent = tx.clone();
    handle
        .post(move |cx| {
            let _ = sent.send(cx.send_to(conn, b"posted"));
        })
        .expect("the reactor is running");
    assert_eq!(rx.recv_timeout(WAIT), Ok(true));
    let mut got = [0u8; 6];
    client.read_exact(&mut got)?;
    assert_eq!(&got, b"posted");

    // 2. Open an outgoing connection from another thread.
    let target = TcpListener::bind(localhost())?;
    let target_addr = target.local_addr()?;
    handle
        .post(move |cx| {
            let _ = tx.send(
                cx.connect(target_addr, Greet, ConnConfig::default())
                    .is_ok(),
            );
        })
        .expect("the reactor is running");
    assert_eq!(rx.recv_timeout(WAIT), Ok(true));
    assert!(wait_ready(target.as_fd(), libc::POLLIN, WAIT)?);
    let (mut peer, _) = target.accept()?;
    peer.set_read_timeout(Some(WAIT))?;
    let mut greeting = vec![0u8; GREETING.len()];
    peer.read_exact(&mut greeting)?;
    assert_eq!(greeting, GREETING);

    drop((client, peer));
    server.shutdown(Duration::from_secs(1))
}
