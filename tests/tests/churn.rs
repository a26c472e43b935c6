//! A bounded churn soak: new connections at a steady rate against an echo server, a mix of
//! clients that echo and close, reset, half-close, stop reading and send garbage. At the end
//! the server holds no connection, its descriptors are back to their baseline and its memory
//! near it, and its counters add up.
//!
//! The soak lasts [`DEFAULT_SECS`] seconds at [`RATE`] connections per second; set
//! `EVDRIVE_SOAK_SECS` for a longer one (`bench/churn` runs `EVDRIVE_SOAK_SECS=60 cargo test
//! --release -p evdrive-tests --test churn -- --nocapture`, which prints the figures).
//!
//! The server runs in this process, on a thread of its own: this file holds a single test, so
//! the process's descriptors and resident memory are the server's plus those of the clients,
//! which are all closed and joined before the final count. Descriptors must come back exactly;
//! memory within [`RSS_MARGIN`], which covers what the allocator and the finished client
//! threads keep, and is far below what a leaked output buffer per connection would cost.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use evdrive_tests::{connect, pattern, read_to_eof, reset, Server, WAIT};
use protocols::echo::Echo;
use reactor::{CloseKind, CloseReason, ConnConfig, Cx, ListenOptions, Protocol};

/// Length of the soak unless `EVDRIVE_SOAK_SECS` says otherwise.
const DEFAULT_SECS: u64 = 10;
/// New connections per second, spread evenly over time.
const RATE: u64 = 100;
/// Client threads; each takes every `WORKERS`-th connection of the schedule.
const WORKERS: u64 = 8;
/// How far resident memory may end above its baseline. Measured: about 1.7 MiB, the same
/// after 10 s and 30 s (the client threads' stacks and allocator arenas); a leaked 64 KiB
/// buffer per stalled reader would pass it within 10 s.
const RSS_MARGIN: u64 = 8 << 20;
/// How long a stalled reader holds its connection before dropping it.
const STALL_HOLD: Duration = Duration::from_millis(100);

/// The server's user state: closes seen by the handlers, by kind.
type Closes = [u64; CloseKind::ALL.len()];

/// The echo handler, counting its close under its reason.
struct Counted(Echo);

impl Protocol<Closes> for Counted {
    fn on_data(&mut self, cx: &mut Cx<'_, Closes>, data: &[u8]) -> usize {
        self.0.on_data(cx, data)
    }

    fn on_eof(&mut self, cx: &mut Cx<'_, Closes>) {
        self.0.on_eof(cx)
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Closes>, reason: CloseReason) {
        cx.app()[reason.kind() as usize] += 1;
    }
}

/// What one client of the mix does.
#[derive(Clone, Copy, Debug)]
enum Client {
    /// Sends a message, reads its echo, closes.
    Echo,
    /// Sends a message and resets the connection (RST) without reading.
    Reset,
    /// Sends a message, half-closes, reads the echo up to end of stream.
    HalfClose,
    /// Sends until the server's backpressure stops it, holds, then drops the connection with
    /// everything unread.
    StallReading,
    /// Sends bytes of no protocol at all and closes without reading.
    Garbage,
}

impl Client {
    const MIX: [Client; 5] = [
        Client::Echo,
        Client::Reset,
        Client::HalfClose,
        Client::StallReading,
        Client::Garbage,
    ];

    fn run(self, addr: SocketAddr, seed: u64) -> io::Result<()> {
        let mut stream = connect(addr)?;
        match self {
            Client::Echo => {
                let msg = pattern(seed, 100);
                stream.write_all(&msg)?;
                let mut back = vec![0; msg.len()];
                stream.read_exact(&mut back)?;
                assert!(back == msg, "the echo differs");
            }
            Client::Reset => {
                stream.write_all(&pattern(seed, 100))?;
                reset(stream)?;
            }
            Client::HalfClose => {
                let msg = pattern(seed, 1000);
                stream.write_all(&msg)?;
                stream.shutdown(Shutdown::Write)?;
                assert!(read_to_eof(&mut stream)? == msg, "the echo differs");
            }
            Client::StallReading => {
                stream.set_nonblocking(true)?;
                let chunk = pattern(seed, 64 * 1024);
                let mut sent = 0usize;
                // The server stops reading once its queue passes the high-water mark, so the
                // kernel buffers fill long before this bound (S21).
                let bound = 64 << 20;
                while sent < bound {
                    match stream.write(&chunk) {
                        Ok(n) => sent += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                assert!(sent < bound, "the server never pushed back");
                // The client's own pace: it sits on a full connection for a while.
                std::thread::sleep(STALL_HOLD);
            }
            Client::Garbage => {
                let mut x = seed | 1;
                let junk: Vec<u8> = (0..4096)
                    .map(|_| {
                        // xorshift64: cheap bytes with no structure.
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                stream.write_all(&junk)?;
            }
        }
        Ok(())
    }
}

/// Descriptors this process holds now.
fn open_fds() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

/// This process's resident memory in bytes.
fn rss() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| io::Error::other("no VmRSS in /proc/self/status"))?;
    Ok(kib * 1024)
}

/// Checks the counters' identity: every connection accepted is either open or closed.
fn assert_counters_add_up(stats: &reactor::Stats) {
    assert_eq!(
        stats.accepted,
        stats.closed_total() + stats.open,
        "accepted ≠ closed + open: {stats:?}"
    );
}

/// S14, S21, S25: churn of mixed clients leaves nothing behind: every echo arrives whole (a
/// half-closing client's up to end of stream), a client that stops reading is pushed back, and
/// descriptors and memory return to their baseline.
#[test]
fn churn_of_mixed_clients_leaves_nothing_behind() -> io::Result<()> {
    evdrive_tests::init_log();
    let secs = std::env::var("EVDRIVE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECS);
    let total = secs * RATE;
    // Safety nets only: every client ends its connection long before these.
    let opts = ListenOptions::default().with_conn(
        ConnConfig::default()
            .with_idle_timeout(Some(Duration::from_secs(5)))
            .with_write_stall_timeout(Some(Duration::from_secs(2))),
    );
    let server = Server::listen(Closes::default, opts, |_, _| Counted(Echo))?;
    let addr = server.addr();
    let fds_before = open_fds()?;
    let rss_before = rss()?;

    // The schedule: connection i starts at `start + i / RATE`, on worker i mod WORKERS.
    let start = Instant::now() + Duration::from_millis(10);
    let failures = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let failures = Arc::clone(&failures);
            std::thread::spawn(move || {
                for i in (w..total).step_by(WORKERS as usize) {
                    let due = start + Duration::from_micros(i * 1_000_000 / RATE);
                    // The schedule's own pace; a worker behind it goes on at once.
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let client = Client::MIX[(i % Client::MIX.len() as u64) as usize];
                    if let Err(e) = client.run(addr, i) {
                        eprintln!("client {i} ({client:?}): {e}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    // While the soak runs, the counters add up at every look.
    let mut peak_open = 0;
    while !workers.iter().all(|w| w.is_finished()) {
        let stats = server.stats();
        assert_counters_add_up(&stats);
        peak_open = peak_open.max(stats.open);
        std::thread::sleep(Duration::from_millis(250));
    }
    for w in workers {
        w.join().expect("a client thread panicked");
    }
    let soak = start.elapsed();
    assert_eq!(failures.load(Ordering::Relaxed), 0, "clients failed");

    // Every connection ends: the server learns of the last resets and EOFs within moments.
    let stats = server
        .wait_for(WAIT, move |r| {
            let s = r.stats();
            (s.accepted == total && s.open == 0).then(|| s.clone())
        })
        .unwrap_or_else(|| panic!("connections left open: {:?}", server.stats()));
    assert_counters_add_up(&stats);
    let closes = server.with(|r| *r.app());
    assert_eq!(
        closes, stats.closed,
        "the handlers' closes differ from the counters"
    );
    let clean = [CloseKind::PeerClosed, CloseKind::Local];
    let torn = [CloseKind::Reset, CloseKind::BrokenPipe];
    for kind in CloseKind::ALL {
        let n = stats.closed_by(kind);
        assert!(
            n == 0 || clean.contains(&kind) || torn.contains(&kind),
            "{n} closes with {kind:?}: {stats:?}"
        );
    }

    let fds_after = open_fds()?;
    let rss_after = rss()?;
    // The figures `bench/churn` reports (shown with `--nocapture`).
    eprintln!(
        "churn: {total} connections in {:.1} s ({:.1}/s, scheduled {RATE}/s; peak {peak_open} \
         open); closes {:?}; descriptors {fds_before} -> {fds_after}; RSS {} KiB -> {} KiB",
        soak.as_secs_f64(),
        total as f64 / soak.as_secs_f64(),
        CloseKind::ALL
            .iter()
            .filter(|k| stats.closed_by(**k) > 0)
            .map(|k| (k, stats.closed_by(*k)))
            .collect::<Vec<_>>(),
        rss_before / 1024,
        rss_after / 1024,
    );
    assert_eq!(fds_after, fds_before, "descriptors leaked");
    assert!(
        rss_after <= rss_before + RSS_MARGIN,
        "resident memory grew from {rss_before} to {rss_after} bytes"
    );
    server.shutdown(WAIT)
}
