//! Scale at CI size: two separate `evdrive echo` processes share one port with `SO_REUSEPORT`,
//! [`CONNECTIONS`] clients each echo one message and stay open, and every connection is
//! accounted for: each client got its echo, the servers' connections add up to the clients'
//! exactly, both processes got a share, and all are gone once the clients leave. Memory is
//! checked only as a loose sanity bound ([`RSS_PER_CONN_BOUND`]); how fast and how small is for
//! `bench/scale` (19,000 connections in one process, 50,000 over three), whose figures are in
//! BENCHMARKS.md.
//!
//! A plain `evdrive echo --listen` does not set `SO_REUSEPORT`, so a second process cannot
//! bind its port; `--threads N` with N >= 2 gives every reactor its own `SO_REUSEPORT`
//! listener, so each server here runs `--threads 2`: four listeners in one kernel group, over
//! two processes. Idle timers are armed on every connection (`--idle-timeout`), far longer
//! than the test.
//!
//! The servers are child processes (the binary is built on first use, as `signals.rs` does);
//! their connections are counted from outside, as the socket descriptors in `/proc/PID/fd`
//! beyond those open before the clients came (the listeners). Their soft descriptor limit is
//! inherited from this process, which raises its own to the hard limit first.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use evdrive_tests::{connect, evdrive_binary, pattern, set_linger_zero, wait_until, WAIT};

/// Client connections, all held open at once.
const CONNECTIONS: usize = 2000;
/// Server processes sharing the port.
const SERVERS: usize = 2;
/// Client threads; each opens every `CLIENT_THREADS`-th connection, one after another.
const CLIENT_THREADS: usize = 8;
/// Bytes each connection sends and gets back.
const MESSAGE: usize = 100;
/// Loose bound on the servers' RSS growth per connection. Measured: about 180 B with 19,000
/// connections in a release build (`bench/scale`), about 700 B with the 2,000 here in a debug
/// build (the allocator's fixed costs weigh more). A sanity check against a buffer of tens of
/// KiB kept per connection after its echo, not a goal.
const RSS_PER_CONN_BOUND: u64 = 16 << 10;

/// A running `evdrive echo` process, killed when dropped (so a failing test leaves none).
struct EchoProcess {
    child: Child,
    addr: SocketAddr,
}

impl EchoProcess {
    /// Starts `evdrive echo --threads 2` on `listen` and waits for the address it announces.
    fn start(listen: SocketAddr) -> io::Result<EchoProcess> {
        let mut child = Command::new(evdrive_binary())
            .args(["echo", "--listen", &listen.to_string(), "--threads", "2"])
            .args(["--idle-timeout", "600"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().expect("piped");
        // The reader thread keeps draining standard error, so a burst of warnings can never
        // block the server on a full pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("evdrive: {line}");
                let _ = tx.send(line);
            }
        });
        let mut server = EchoProcess {
            child,
            addr: listen,
        };
        let marker = "evdrive echo listening on ";
        let line = loop {
            match rx.recv_timeout(WAIT) {
                Ok(line) if line.contains(marker) => break line,
                Ok(_) => continue,
                Err(_) => panic!("evdrive echo on {listen} did not announce its address"),
            }
        };
        let at = line.find(marker).expect("matched") + marker.len();
        server.addr = line[at..]
            .split_whitespace()
            .next()
            .and_then(|a| a.parse().ok())
            .expect("an address after the marker");
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EchoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Socket descriptors open in process `pid`.
fn sockets(pid: u32) -> io::Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        // A descriptor closed while listing is simply not counted.
        if let Ok(target) = std::fs::read_link(entry?.path()) {
            n += usize::from(target.to_string_lossy().starts_with("socket:"));
        }
    }
    Ok(n)
}

/// A `Key:  value kB`-style field of `/proc/PID/status`, or the first number of a line of
/// `/proc/PID/limits`, whichever file `path` names.
fn proc_field(path: &str, key: &str) -> io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no {key} in {path}")))
}

/// Resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> io::Result<u64> {
    Ok(proc_field(&format!("/proc/{pid}/status"), "VmRSS:")? * 1024)
}

/// Connection `i`: connect, send its message, read the echo back, keep the connection.
fn echo_once(addr: SocketAddr, i: usize) -> io::Result<TcpStream> {
    let mut stream = connect(addr)?;
    // Closing sends a RST: the test leaves no port in TIME-WAIT behind.
    set_linger_zero(&stream)?;
    let msg = pattern((i * MESSAGE) as u64, MESSAGE);
    stream.write_all(&msg)?;
    let mut back = vec![0; MESSAGE];
    stream.read_exact(&mut back)?;
    assert!(back == msg, "connection {i}: the echo differs");
    Ok(stream)
}

/// Two server processes on one port, 2,000 connections held at once, each echoed once: every
/// connection is served by exactly one of them, the counts add up, both take part, memory per
/// connection stays small, and every connection is gone from the servers once released.
#[test]
fn two_processes_share_a_port_and_serve_every_connection() -> io::Result<()> {
    // Thousands of descriptors, here and in the servers (which inherit the limit).
    let (_, hard) = reactor::sys::nofile_limit()?;
    reactor::sys::set_nofile_limit(hard)?;
    let needed = (CONNECTIONS + 100) as u64;
    assert!(
        hard >= needed,
        "the descriptor limit (hard {hard}) is below the {needed} this test needs"
    );

    let first = EchoProcess::start(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let mut servers = vec![first];
    while servers.len() < SERVERS {
        // The second process binds the very port the first announced: SO_REUSEPORT.
        servers.push(EchoProcess::start(servers[0].addr)?);
    }
    let addr = servers[0].addr;
    for s in &servers {
        assert_eq!(s.addr, addr);
        let limit = proc_field(&format!("/proc/{}/limits", s.pid()), "Max open files")?;
        assert!(limit >= needed, "server {} may open only {limit}", s.pid());
    }
    let base_sockets: Vec<usize> = servers
        .iter()
        .map(|s| sockets(s.pid()))
        .collect::<Result<_, _>>()?;
    let base_rss: Vec<u64> = servers
        .iter()
        .map(|s| rss(s.pid()))
        .collect::<Result<_, _>>()?;

    let held: Vec<TcpStream> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENT_THREADS)
            .map(|t| {
                scope.spawn(move || {
                    (t..CONNECTIONS)
                        .step_by(CLIENT_THREADS)
                        .map(|i| echo_once(addr, i))
                        .collect::<io::Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread panicked"))
            .collect::<io::Result<Vec<_>>>()
            .map(|shares| shares.into_iter().flatten().collect())
    })?;
    assert_eq!(held.len(), CONNECTIONS);

    // Every echoed connection has been accepted, so the counts are final already; the wait
    // only covers a descriptor listed while the count was being read.
    let count = || -> Vec<usize> {
        servers
            .iter()
            .zip(&base_sockets)
            .map(|(s, base)| sockets(s.pid()).map_or(0, |n| n.saturating_sub(*base)))
            .collect()
    };
    let per_server = wait_until(WAIT, || {
        let c = count();
        (c.iter().sum::<usize>() == CONNECTIONS).then_some(c)
    })
    .unwrap_or_else(|| panic!("the servers hold {:?}, not {CONNECTIONS} in all", count()));
    for (s, n) in servers.iter().zip(&per_server) {
        // A fair spread over four listeners gives each process about half; a quarter is
        // dozens of standard deviations away.
        assert!(
            *n >= CONNECTIONS / 4,
            "server {} got {n} of {CONNECTIONS}: {per_server:?}",
            s.pid()
        );
    }

    let grown: u64 = servers
        .iter()
        .zip(&base_rss)
        .map(|(s, base)| rss(s.pid()).map(|r| r.saturating_sub(*base)))
        .sum::<io::Result<u64>>()?;
    let per_conn = grown / CONNECTIONS as u64;
    eprintln!("connections per server {per_server:?}, RSS growth {per_conn} B per connection");
    assert!(
        per_conn < RSS_PER_CONN_BOUND,
        "the servers grew by {per_conn} B per connection"
    );

    // The clients leave (RST): every connection is gone from the servers.
    drop(held);
    let closed = wait_until(WAIT, || (count().iter().sum::<usize>() == 0).then_some(()));
    assert!(closed.is_some(), "the servers still hold {:?}", count());
    Ok(())
}
