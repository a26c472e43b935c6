//! Signals in the real `evdrive echo` server (S31, S14): SIGTERM shuts down gracefully during
//! traffic, a second signal stops at once, SIGUSR1 prints a snapshot of every connection.
//!
//! The server runs as a child process. Its binary belongs to the root package, which this
//! crate cannot depend on, so the first test to need it runs `cargo build -p evdrive` with the
//! cargo running these tests (`CARGO`), the same profile and the same target directory, all
//! derived from this test's own path: `<target>/<profile>/deps/signals-<hash>` has the binary at
//! `<target>/<profile>/evdrive`. (A `--target <triple>` build, which adds a directory level, is
//! not supported.) When the binary is up to date the build is a no-op.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use evdrive_tests::{connect, evdrive_binary, expect_eof, pattern, Running, WAIT};
use reactor::sys::poll::{poll, PollFd, POLLERR, POLLHUP, POLLIN, POLLOUT};

/// A running `evdrive echo`, and what it printed on standard error.
struct Evdrive {
    child: Child,
    addr: SocketAddr,
    /// Lines of standard error, as they come.
    lines: Receiver<String>,
    /// Lines received so far.
    seen: Vec<String>,
}

impl Evdrive {
    /// Starts `evdrive echo` on a free port with `args` added, and waits for its address.
    fn start(args: &[&str]) -> io::Result<Evdrive> {
        let mut child = Command::new(evdrive_binary())
            .args(["echo", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Evdrive {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            seen: Vec::new(),
        };
        let marker = "evdrive echo listening on ";
        let line = server.wait_line(|l| l.contains(marker));
        let at = line.find(marker).expect("matched") + marker.len();
        // The address is the first word after the marker ("(N threads)" may follow).
        server.addr = line[at..]
            .split_whitespace()
            .next()
            .and_then(|a| a.parse().ok())
            .expect("an address after the marker");
        Ok(server)
    }

    /// Waits up to [`WAIT`] for a line of standard error matching `pred` (among those already
    /// seen, too).
    fn wait_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.seen.iter().find(|l| pred(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = pred(&line);
                    self.seen.push(line.clone());
                    if hit {
                        return line;
                    }
                }
                Err(_) => panic!("no such line from evdrive; it printed: {:#?}", self.seen),
            }
        }
    }

    /// Sends `sig` to the server.
    fn signal(&self, sig: libc::c_int) {
        // The pid is our child's, not yet reaped (it is reaped only through `self.child`), so
        // it names no other process.
        if let Err(e) = Running::signal_pid(self.child.id(), &sig.to_string()) {
            panic!("kill: {e}");
        }
    }

    /// Waits up to `limit` for the server to exit.
    fn wait_exit(&mut self, limit: Duration) -> io::Result<Option<ExitStatus>> {
        evdrive_tests::wait_child(&mut self.child, limit)
    }
}

impl Drop for Evdrive {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends `byte` and expects it back.
fn ping(client: &mut TcpStream, byte: u8) -> io::Result<()> {
    client.write_all(&[byte])?;
    let mut echo = [0u8; 1];
    client.read_exact(&mut echo)?;
    assert_eq!(echo[0], byte);
    Ok(())
}

/// Streams the test pattern through the echo server and checks what comes back, until end of
/// stream; reports once `started` bytes came back. Returns (sent, received). A reset, or a
/// wait longer than [`WAIT`], is an error.
fn stream_until_eof(
    mut client: TcpStream,
    started: usize,
    report: mpsc::Sender<()>,
) -> io::Result<(u64, u64)> {
    client.set_nonblocking(true)?;
    let block = pattern(0, 16 * 1024 + 251);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut sent, mut received) = (0u64, 0u64);
    let mut reported = false;
    loop {
        let mut pfd = [PollFd::new(client.as_fd(), POLLIN | POLLOUT)];
        let n = poll(&mut pfd, Some(WAIT)).map_or(-1, |n| n as i32);
        let revents = pfd[0].revents();
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "stream stalled"));
        }
        if revents & POLLOUT != 0 {
            let from = (sent % 251) as usize;
            match client.write(&block[from..from + 16 * 1024]) {
                Ok(n) => sent += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if revents & (POLLIN | POLLHUP | POLLERR) != 0 {
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    assert!(
                        buf[..n] == pattern(received, n)[..],
                        "bytes {received}.. differ"
                    );
                    received += n as u64;
                    if !reported && received >= started as u64 {
                        reported = true;
                        let _ = report.send(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
    // End of stream: the server flushed and half-closed. Finish our side too.
    client.shutdown(std::net::Shutdown::Write)?;
    Ok((sent, received))
}

/// S31, S14, S17: four clients stream data through `evdrive echo`; SIGTERM arrives in the middle
/// of it. Every client gets back a correct prefix of what it sent (everything the server had
/// read, since it echoes all it reads) followed by end of stream, never a reset, and the
/// process exits with status 0 within its grace period.
#[test]
fn sigterm_during_traffic_flushes_every_client_and_exits_0() -> io::Result<()> {
    const CLIENTS: usize = 4;
    let mut server = Evdrive::start(&["--shutdown-grace", "5"])?;
    let (started_tx, started) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    for _ in 0..CLIENTS {
        let client = connect(server.addr)?;
        let (started_tx, done_tx) = (started_tx.clone(), done_tx.clone());
        std::thread::spawn(move || {
            let _ = done_tx.send(stream_until_eof(client, 256 * 1024, started_tx));
        });
    }
    for _ in 0..CLIENTS {
        started
            .recv_timeout(WAIT)
            .expect("a client's stream did not start");
    }

    server.signal(libc::SIGTERM);
    for _ in 0..CLIENTS {
        let (sent, received) = done
            .recv_timeout(WAIT)
            .expect("a client did not reach end of stream")?;
        assert!(
            received >= 256 * 1024 && received <= sent,
            "{received} of {sent}"
        );
    }
    let status = server
        .wait_exit(Duration::from_secs(7))?
        .expect("evdrive did not exit within its grace period");
    assert_eq!(status.code(), Some(0), "{status}");
    server.wait_line(|l| l.contains("shutting down"));
    Ok(())
}

/// S31: after SIGTERM a client that never closes keeps the graceful shutdown waiting (its
/// linger and the 30 s grace period); a second signal, SIGINT, makes the server exit at once.
#[test]
fn a_second_signal_during_shutdown_exits_at_once() -> io::Result<()> {
    let mut server = Evdrive::start(&["--shutdown-grace", "30"])?;
    let mut client = connect(server.addr)?;
    ping(&mut client, b'x')?;

    server.signal(libc::SIGTERM);
    // The server half-closed: the shutdown has begun. The client never closes its side.
    expect_eof(&mut client)?;
    assert!(
        server.child.try_wait()?.is_none(),
        "exited before the peer closed"
    );

    let signalled = Instant::now();
    server.signal(libc::SIGINT);
    let status = server
        .wait_exit(WAIT)?
        .expect("evdrive did not exit after the second signal");
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
    assert_eq!(status.code(), Some(0), "{status}");
    server.wait_line(|l| l.contains("stopping now"));
    Ok(())
}

/// S31: SIGUSR1 prints a snapshot on standard error: a summary line and one line per
/// connection, with the peer's address and state; the server goes on serving.
#[test]
fn sigusr1_prints_every_connection() -> io::Result<()> {
    let mut server = Evdrive::start(&[])?;
    let mut clients = vec![connect(server.addr)?, connect(server.addr)?];
    for client in &mut clients {
        ping(client, b'u')?;
    }

    server.signal(libc::SIGUSR1);
    server.wait_line(|l| l.starts_with("-- 2 open, 2 accepted"));
    for client in &clients {
        let peer = client.local_addr()?.to_string();
        let line = server.wait_line(|l| l.contains(&peer));
        assert!(line.contains(" open "), "{line}");
        assert!(line.contains("in 1 out 1"), "{line}");
    }
    ping(&mut clients[0], b'v')?;

    server.signal(libc::SIGTERM);
    for client in &mut clients {
        expect_eof(client)?;
    }
    drop(clients);
    let status = server.wait_exit(WAIT)?.expect("evdrive did not exit");
    assert_eq!(status.code(), Some(0), "{status}");
    Ok(())
}

/// `--threads 2` (S12): two reactors on one port serve clients; SIGUSR1 makes each print its
/// connections; SIGTERM shuts both down gracefully and the process exits 0.
#[test]
fn threads_serve_one_port_and_shut_down_on_sigterm() -> io::Result<()> {
    let mut server = Evdrive::start(&["--threads", "2"])?;
    assert!(server
        .wait_line(|l| l.contains("(2 threads)"))
        .contains("(2 threads)"));
    let mut clients = Vec::new();
    for i in 0..20u8 {
        let mut client = connect(server.addr)?;
        ping(&mut client, i)?;
        clients.push(client);
    }
    server.signal(libc::SIGUSR1);
    // One summary line per reactor thread, each counting the connections it accepted.
    let deadline = Instant::now() + WAIT;
    let summaries = |seen: &[String]| -> Vec<String> {
        seen.iter()
            .filter(|l| l.starts_with("-- "))
            .cloned()
            .collect()
    };
    while summaries(&server.seen).len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match server.lines.recv_timeout(left) {
            Ok(line) => server.seen.push(line),
            Err(_) => panic!("fewer than two summaries: {:#?}", server.seen),
        }
    }
    let accepted: u64 = summaries(&server.seen)
        .iter()
        .map(|line| {
            line.split(", ")
                .nth(1)
                .and_then(|f| f.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .expect("an accepted count in the summary")
        })
        .sum();
    assert_eq!(
        accepted, 20,
        "the two reactors together accepted every client"
    );
    server.signal(libc::SIGTERM);
    for mut client in clients {
        expect_eof(&mut client)?;
    }
    let status = server.wait_exit(WAIT)?.expect("exited after SIGTERM");
    assert!(status.success(), "exit status {status}");
    Ok(())
}
