//! Rejecting at the connection limit under a low descriptor limit (S23, S27): accepting a client
//! only to reject it needs a descriptor, so past what the process may open the listener falls
//! back on its spare descriptor. Every client past the limit must still be told (its goodbye, or
//! end of stream, or a reset) within a second, none left hanging, and the loop must not spin.
//!
//! `RLIMIT_NOFILE` is process-wide, so this file is its own test process and holds one real
//! test; the clients run in a child process (the test binary started again for
//! `at_limit_fds_client`), as in `overload_fds.rs`, so they do not use up the descriptors under
//! test (the set-up both share is `evdrive_tests::low_fds`).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use evdrive_tests::low_fds::{self, field, ClientProcess, LoweredLimit};
use evdrive_tests::{connect, is_reset, localhost, Server, WAIT};
use protocols::echo::Echo;
use reactor::sys::poll::{poll, PollFd, POLLIN};
use reactor::{AtLimit, Goodbye, Limits, ListenOptions};

/// Descriptors the server may open beyond those the process holds when the test starts.
const HEADROOM: u64 = 48;
/// Connections served at once: half the headroom, so rejected clients run out of descriptors.
const LIMIT: usize = 24;
/// Clients connecting at once: three times the limit.
const CLIENTS: usize = 3 * LIMIT;
/// What a rejected client gets when the server has a descriptor to tell it with.
const GOODBYE: &[u8] = b"full\n";
/// The longest a client past the limit may wait, from its connect.
const TOLD_WITHIN: Duration = Duration::from_secs(1);
/// The most loop turns the burst may cost per client.
const TURNS_PER_CLIENT: u64 = 6;

/// S23, S27: with the soft descriptor limit at what the process holds plus 48, a connection
/// limit of 24 and `AtLimit::Reject`, 72 clients connect at once: 24 are served, and every other
/// one is told (goodbye and end of stream, or end of stream or reset from the spare descriptor)
/// within a second of its connect, none hanging, in a bounded number of loop turns. Once the
/// clients leave, a new client is served.
#[test]
fn rejecting_past_the_descriptor_limit_tells_every_client_without_spinning() -> io::Result<()> {
    evdrive_tests::init_log();
    let limit = LoweredLimit::to_headroom(HEADROOM)?;

    let opts = ListenOptions::default()
        .with_backoff_min(Duration::from_millis(20))
        .with_backoff_max(Duration::from_millis(100))
        .with_at_limit(AtLimit::Reject(Goodbye::bytes(GOODBYE)));
    let server = Server::start(
        || (),
        move |r| {
            r.set_limits(Limits::default().with_max_connections(LIMIT));
            let id = r.listen(localhost(), opts, |_, _| Echo)?;
            r.listener_addr(id)
        },
    )?;
    let turns_before = server.stats().turns;

    let child = ClientProcess::spawn("at_limit_fds_client", server.addr())?;
    let report = child.report(Duration::from_secs(20));
    let turns = server.stats().turns - turns_before;
    eprintln!("{report}; {turns} turns");
    let (served, told, hanging, slowest_ms) = (
        field(&report, "served"),
        field(&report, "told"),
        field(&report, "hanging"),
        field(&report, "slowest_ms"),
    );
    assert_eq!(hanging, 0, "clients left hanging: {report}");
    assert_eq!((served, told), (LIMIT as u64, (CLIENTS - LIMIT) as u64));
    assert!(
        Duration::from_millis(slowest_ms) < TOLD_WITHIN,
        "a client was told after {slowest_ms} ms"
    );
    assert!(
        turns <= TURNS_PER_CLIENT * CLIENTS as u64,
        "{turns} turns for {CLIENTS} clients: spinning"
    );

    // The clients leave; a new one is served.
    let status = child.finish("close", WAIT)?;
    assert!(status.success(), "client process: {status}");
    server
        .wait_for(WAIT, |r| {
            let s = r.stats();
            (s.open == 0 && s.rejecting == 0).then_some(())
        })
        .expect("the clients' connections did not close");
    let mut client = connect(server.addr())?;
    client.write_all(b"back")?;
    let mut echo = [0u8; 4];
    client.read_exact(&mut echo)?;
    assert_eq!(&echo, b"back");
    let stats = server.stats();
    eprintln!("{stats:?}");
    assert!(
        stats.rejected + stats.accept_shed >= (CLIENTS - LIMIT) as u64,
        "{stats:?}"
    );
    drop(client);
    server.shutdown(Duration::from_secs(1))?;
    limit.restore()
}

/// The client process of the test above; does nothing unless started by it.
#[test]
#[ignore = "the client half of the rejection test under a descriptor limit, started by it"]
fn at_limit_fds_client() -> io::Result<()> {
    let Some(addr) = low_fds::client_server_addr()? else {
        return Ok(());
    };

    // Every client connects and sends a byte, its connect time noted.
    let mut clients: Vec<(TcpStream, Instant)> = Vec::new();
    for _ in 0..CLIENTS {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr)?;
        stream.write_all(b"p")?;
        clients.push((stream, started));
    }

    // Each is resolved: served (its echo) or told (end of stream or reset, after the goodbye
    // if any). A told client is closed at once, as a real one would, freeing its slot.
    let mut served = Vec::new();
    let (mut told, mut slowest) = (0, Duration::ZERO);
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); clients.len()];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pending: Vec<usize> = (0..clients.len()).collect();
    while !pending.is_empty() && Instant::now() < deadline {
        let mut fds: Vec<PollFd<'_>> = pending
            .iter()
            .map(|&i| PollFd::new(clients[i].0.as_fd(), POLLIN))
            .collect();
        if !matches!(poll(&mut fds, Some(Duration::from_millis(100))), Ok(n) if n > 0) {
            continue;
        }
        let mut still = Vec::new();
        for (fd, &i) in fds.iter().zip(&pending) {
            if fd.revents() == 0 {
                still.push(i);
                continue;
            }
            let mut buf = [0u8; 64];
            let outcome = match (&clients[i].0).read(&mut buf) {
                Ok(0) => Some(false),
                Ok(k) => {
                    got[i].extend_from_slice(&buf[..k]);
                    (got[i] == b"p").then_some(true)
                }
                Err(e) if is_reset(&e) => Some(false),
                Err(e) => panic!("client {i}: {e}"),
            };
            match outcome {
                Some(true) => served.push(i),
                Some(false) => {
                    assert!(
                        got[i].is_empty() || got[i] == GOODBYE,
                        "client {i} got {:?}",
                        got[i]
                    );
                    told += 1;
                    slowest = slowest.max(clients[i].1.elapsed());
                    let _ = clients[i].0.shutdown(std::net::Shutdown::Both);
                }
                None => still.push(i),
            }
        }
        pending = still;
    }
    low_fds::print_report(&format!(
        "served={} told={told} hanging={} slowest_ms={}",
        served.len(),
        pending.len(),
        slowest.as_millis()
    ))?;
    low_fds::await_command("close")?;
    drop(clients);
    Ok(())
}
