//! Descriptor exhaustion (S27): the process runs out of descriptors (`EMFILE`) while clients
//! keep connecting. The listener must not spin, must tell the clients it cannot serve (accept
//! and close them with the spare descriptor) instead of leaving them hanging, and must resume
//! by itself once descriptors free up.
//!
//! `RLIMIT_NOFILE` is process-wide, so this file is its own test process and holds one real
//! test. The clients run in a child process, the test binary itself started again for
//! `fd_exhaustion_client` with the server's address in its environment: in this process they
//! would use up the very descriptors under test, and the count of clients served would depend
//! on how many the clients hold. The child raises its own limit back to the hard limit (a
//! lowered soft limit is inherited across `exec`), and reports over its standard output; the
//! parent steps it through its phases over its standard input (`evdrive_tests::low_fds`, the
//! set-up shared with `at_limit_fds.rs`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use evdrive_tests::low_fds::{self, field, ClientProcess, LoweredLimit};
use evdrive_tests::{connect, is_reset, localhost, Server, WAIT};
use protocols::echo::Echo;
use reactor::sys::poll::{poll, PollFd, POLLIN};
use reactor::{Limits, ListenOptions};

/// Descriptors the server may open beyond those the process holds when the test starts.
const HEADROOM: u64 = 64;
/// Clients connecting at once in phase 1: more than fit.
const BURST: usize = 150;
/// Clients connecting one by one in phase 2, while descriptors are exhausted.
const TRICKLE: usize = 10;
/// The most loop turns per second the exhausted reactor may make.
const MAX_TURNS_PER_SEC: f64 = 200.0;

/// Parses `served=S shed=D hanging=H` from a report line.
fn parse_report(line: &str) -> (usize, usize, usize) {
    let field = |name| field(line, name) as usize;
    (field("served"), field("shed"), field("hanging"))
}

/// S27, S23: with the soft descriptor limit lowered to what the process holds plus 64 and a
/// connection limit far above it, 150 clients connect at once: those that fit are echoed, and
/// every other one is closed (end of stream or reset), none left hanging (`accept_shed`,
/// `accept_errors.emfile`). Then, still exhausted, `TRICKLE` more connect one by one: each is closed
/// promptly, and the loop makes fewer than 200 turns per second meanwhile (the listener waits
/// on a back-off timer instead of spinning on a readable socket). Once the clients leave, a new
/// client is served again, with nothing done to the reactor.
#[test]
fn descriptor_exhaustion_sheds_clients_without_spinning_and_recovers() -> io::Result<()> {
    evdrive_tests::init_log();
    let limit = LoweredLimit::to_headroom(HEADROOM)?;

    // 1. The server, built under the lowered limit, with a connection limit that never bites.
    let opts = ListenOptions::default()
        .with_backoff_min(Duration::from_millis(20))
        .with_backoff_max(Duration::from_millis(100));
    let server = Server::start(
        || (),
        move |r| {
            r.set_limits(Limits::default().with_max_connections(10_000));
            let id = r.listen(localhost(), opts, |_, _| Echo)?;
            r.listener_addr(id)
        },
    )?;

    // 2. The client process, whose reports come in phases.
    let mut child = ClientProcess::spawn("fd_exhaustion_client", server.addr())?;
    let report = |child: &ClientProcess, phase: &str| -> String {
        let line = child.report(Duration::from_secs(20));
        assert!(line.starts_with(phase), "expected {phase}, got {line:?}");
        line
    };

    // 3. Phase 1: the burst. Served or shed, never hanging.
    let (served, shed, hanging) = parse_report(&report(&child, "burst"));
    assert_eq!(hanging, 0, "clients left hanging");
    assert_eq!(served + shed, BURST);
    assert!(served > 0 && (served as u64) < HEADROOM, "served {served}");
    assert!(shed > 0);

    // 4. Phase 2: still exhausted, clients trickle in; count the turns meanwhile.
    let turns_before = server.stats().turns;
    let started = Instant::now();
    child.send("trickle")?;
    let (t_served, t_shed, t_hanging) = parse_report(&report(&child, "trickle"));
    let elapsed = started.elapsed();
    let turns = server.stats().turns - turns_before;
    let rate = turns as f64 / elapsed.as_secs_f64();
    eprintln!(
        "burst: {served} served, {shed} shed; trickle: {t_shed} shed, {turns} turns in {elapsed:?} \
         ({rate:.0}/s)"
    );
    assert_eq!((t_served, t_shed, t_hanging), (0, TRICKLE, 0));
    assert!(
        rate < MAX_TURNS_PER_SEC,
        "{turns} turns in {elapsed:?}: spinning"
    );

    // 5. The clients leave; the reactor serves again by itself.
    let status = child.finish("close", WAIT)?;
    assert!(status.success(), "client process: {status}");
    server
        .wait_for(WAIT, |r| (r.stats().open == 0).then_some(()))
        .expect("the served clients' connections did not close");
    let mut client = connect(server.addr())?;
    client.write_all(b"back")?;
    let mut echo = [0u8; 4];
    client.read_exact(&mut echo)?;
    assert_eq!(&echo, b"back");

    let stats = server.stats();
    assert!(stats.accept_errors.emfile > 0, "{stats:?}");
    assert!(stats.accept_shed >= (shed + TRICKLE) as u64, "{stats:?}");
    assert_eq!(stats.accepted, served as u64 + 1, "{stats:?}");
    drop(client);
    server.shutdown(Duration::from_secs(1))?;
    limit.restore()
}

/// What became of one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Its byte came back.
    Served,
    /// End of stream or reset: the server told it.
    Shed,
}

/// Waits (at most `limit`) until every client got its echo, end of stream or a reset.
/// `None` marks a client still hanging at the deadline.
fn resolve(clients: &[TcpStream], limit: Duration) -> Vec<Option<Verdict>> {
    let mut verdicts = vec![None; clients.len()];
    let deadline = Instant::now() + limit;
    loop {
        let pending: Vec<usize> = (0..clients.len())
            .filter(|&i| verdicts[i].is_none())
            .collect();
        let left = deadline.saturating_duration_since(Instant::now());
        if pending.is_empty() || left.is_zero() {
            return verdicts;
        }
        let mut fds: Vec<PollFd<'_>> = pending
            .iter()
            .map(|&i| PollFd::new(clients[i].as_fd(), POLLIN))
            .collect();
        let ms = left.as_millis().clamp(1, 1000) as u64;
        if !matches!(poll(&mut fds, Some(Duration::from_millis(ms))), Ok(n) if n > 0) {
            continue;
        }
        for (fd, &i) in fds.iter().zip(&pending) {
            if fd.revents() == 0 {
                continue;
            }
            let mut byte = [0u8; 1];
            verdicts[i] = match (&clients[i]).read(&mut byte) {
                Ok(1) => Some(Verdict::Served),
                Ok(_) => Some(Verdict::Shed),
                Err(e) if is_reset(&e) => Some(Verdict::Shed),
                Err(e) => panic!("client {i}: {e}"),
            };
        }
    }
}

/// Connects and sends one byte.
fn ping_client(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut client = TcpStream::connect(addr)?;
    client.write_all(b"p")?;
    Ok(client)
}

/// Prints a phase's report for the parent.
fn print_report(phase: &str, verdicts: &[Option<Verdict>]) -> io::Result<()> {
    let count = |v| verdicts.iter().filter(|&&x| x == v).count();
    low_fds::print_report(&format!(
        "{phase} served={} shed={} hanging={}",
        count(Some(Verdict::Served)),
        count(Some(Verdict::Shed)),
        count(None)
    ))
}

/// The client process of the test above; does nothing unless started by it.
#[test]
#[ignore = "the client half of the descriptor exhaustion test, started by it in a child process"]
fn fd_exhaustion_client() -> io::Result<()> {
    let Some(addr) = low_fds::client_server_addr()? else {
        return Ok(());
    };

    // Phase 1: the burst.
    let burst = (0..BURST)
        .map(|_| ping_client(addr))
        .collect::<io::Result<Vec<_>>>()?;
    let verdicts = resolve(&burst, Duration::from_secs(5));
    print_report("burst", &verdicts)?;
    // Keep the served ones open: they hold the server's descriptors.
    let served: Vec<TcpStream> = burst
        .into_iter()
        .zip(&verdicts)
        .filter(|(_, v)| **v == Some(Verdict::Served))
        .map(|(c, _)| c)
        .collect();

    // Phase 2: one client every 25 ms, each resolved before the next.
    low_fds::await_command("trickle")?;
    let mut verdicts = Vec::new();
    for _ in 0..TRICKLE {
        let client = ping_client(addr)?;
        verdicts.extend(resolve(
            std::slice::from_ref(&client),
            Duration::from_secs(2),
        ));
        std::thread::sleep(Duration::from_millis(25));
    }
    print_report("trickle", &verdicts)?;

    low_fds::await_command("close")?;
    drop(served);
    Ok(())
}
