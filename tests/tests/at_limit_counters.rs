//! The counters through a rejection burst (S23): a client rejected at the connection limit is
//! counted in `Stats::rejected`, and in the gauge `Stats::rejecting` while its goodbye drains,
//! never in `accepted`, `open` or `closed`, so `accepted = closed + open` holds at every sample,
//! as Redis keeps `rejected_connections` apart from the clients it served.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use evdrive_tests::{connect, localhost, Server, WAIT};
use protocols::echo::Echo;
use reactor::{AtLimit, Goodbye, Limits, ListenOptions, Stats};

/// Connections the server serves at once.
const LIMIT: usize = 4;
/// Clients connecting at once.
const CLIENTS: usize = 5 * LIMIT;
/// What a rejected client gets before the end of stream.
const GOODBYE: &[u8] = b"full\n";

/// Connects and sends a byte; returns whether it was served (its echo came back) or told (the
/// goodbye, then end of stream), with the stream still open on this side.
fn client(addr: SocketAddr) -> io::Result<(bool, TcpStream)> {
    let mut stream = connect(addr)?;
    stream.write_all(b"p")?;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf)? {
            0 => {
                assert_eq!(got, GOODBYE, "a rejected client got {got:?}");
                return Ok((false, stream));
            }
            n => got.extend_from_slice(&buf[..n]),
        }
        if got == b"p" {
            return Ok((true, stream));
        }
    }
}

/// Checks the invariant on one sample; returns it.
fn check(stats: Stats) -> Stats {
    assert_eq!(
        stats.accepted,
        stats.closed_total() + stats.open,
        "accepted = closed + open: {stats:?}"
    );
    assert!(stats.open <= LIMIT as u64, "{stats:?}");
    assert!(
        stats.rejecting <= stats.rejected,
        "a client being told was rejected: {stats:?}"
    );
    stats
}

/// Samples the counters between turns until `done` says so (or fails after [`WAIT`]),
/// checking the invariant at every sample; returns the samples.
fn sample_until(
    server: &Server<()>,
    what: &str,
    mut done: impl FnMut(&Stats) -> bool,
) -> Vec<Stats> {
    let deadline = Instant::now() + WAIT;
    let mut samples = Vec::new();
    loop {
        let stats = check(server.stats());
        let stop = done(&stats);
        samples.push(stats);
        if stop {
            return samples;
        }
        assert!(Instant::now() < deadline, "waiting for {what}");
    }
}

/// S23: 20 clients at once against a limit of 4 with `AtLimit::Reject`. At every sample
/// `accepted = closed + open`, while `rejected` counts the told clients and `rejecting` their
/// slots; the told clients keep their end open a moment, so slots being told are seen. Then
/// every client leaves and the counters end at `accepted = closed = 4`, `rejected = 16`,
/// `open = rejecting = 0`; the Prometheus rendering says the same.
#[test]
fn accepted_is_closed_plus_open_at_every_sample_of_a_rejection_burst() -> io::Result<()> {
    evdrive_tests::init_log();
    let opts = ListenOptions::default().with_at_limit(AtLimit::Reject(Goodbye::bytes(GOODBYE)));
    let server = Server::start(
        || (),
        move |r| {
            r.set_limits(Limits::default().with_max_connections(LIMIT));
            let id = r.listen(localhost(), opts, |_, _| Echo)?;
            r.listener_addr(id)
        },
    )?;
    let addr = server.addr();

    // 1. The burst, sampled while it lasts.
    let (tx, outcomes) = mpsc::channel();
    for _ in 0..CLIENTS {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(client(addr));
        });
    }
    drop(tx);
    let mut served = Vec::new();
    let mut told = Vec::new();
    let mut samples = sample_until(&server, "every client's outcome", |_| {
        while let Ok(outcome) = outcomes.try_recv() {
            match outcome.expect("a client failed") {
                (true, stream) => served.push(stream),
                (false, stream) => told.push(stream),
            }
        }
        served.len() + told.len() == CLIENTS
    });
    assert_eq!((served.len(), told.len()), (LIMIT, CLIENTS - LIMIT));

    // 2. The told clients, still connected, hold slots counted as rejecting, not as open.
    samples.extend(sample_until(&server, "every rejection counted", |s| {
        s.rejected == (CLIENTS - LIMIT) as u64
    }));
    let peak = samples.iter().map(|s| s.rejecting).max().unwrap_or(0);
    assert!(peak > 0, "no sample saw a rejected client being told");

    // 3. They leave, then the served clients do.
    drop(told);
    sample_until(&server, "the told clients' slots", |s| s.rejecting == 0);
    drop(served);
    let last = sample_until(&server, "every close", |s| s.open == 0)
        .pop()
        .expect("a sample");
    assert_eq!(
        (last.accepted, last.closed_total(), last.rejected),
        (LIMIT as u64, LIMIT as u64, (CLIENTS - LIMIT) as u64),
        "{last:?}"
    );
    let text = reactor::metrics::render_stats(&last);
    assert!(text.contains("\nevdrive_rejecting_clients 0\n"), "{text}");
    assert!(
        text.contains(&format!("\nevdrive_rejected_total {}\n", CLIENTS - LIMIT)),
        "{text}"
    );
    assert!(
        text.contains(&format!("\nevdrive_connections_accepted_total {LIMIT}\n")),
        "{text}"
    );
    server.shutdown(Duration::from_secs(1))
}
