//! SIGUSR2 restarts a sample without refusing, resetting or cutting a connection: the
//! listening sockets are handed to a successor (S29), the old process drains and exits 0
//! (S14: its connections end on their own, every echo delivered). A successor that fails
//! leaves the old process serving, with the reason in its log. A Unix socket's file is kept
//! for the successor; HTTP connections end between two requests.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use evdrive_tests::{evdrive_binary, Running, TempDir, WAIT};

/// Client threads making connections one after another.
const CLIENTS: usize = 3;

/// Messages each connection echoes before it closes.
const MESSAGES: usize = 3;

/// Connections completed before the restart, and again after the old process exited, at
/// least…
const PER_PHASE: u64 = 150;

/// …and for at least this long, unless [`PHASE_MOST`] connections completed first: a steady
/// load for a few seconds, bounded in connections (each leaves a socket in TIME-WAIT).
const PHASE_LEAST: Duration = Duration::from_millis(1500);

/// The most connections one phase waits for.
const PHASE_MOST: u64 = 1500;

/// Each client starts at most one connection per this interval: the load is steady and goes
/// on for seconds without piling thousands of client sockets into TIME-WAIT.
const PACE: Duration = Duration::from_millis(5);

/// The longest a whole phase of the load may take before the test fails.
const PHASE: Duration = Duration::from_secs(30);

/// A process this test did not start (a successor), killed when the test ends.
struct Guard(u32);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Running::signal_pid(self.0, "KILL");
    }
}

/// The address in a "… listening on ADDR[ (N threads)]" line.
fn listening_addr(line: &str) -> SocketAddr {
    let rest = &line[line.find("listening on ").expect("marker") + "listening on ".len()..];
    rest.split_whitespace()
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

/// The number after `word` in `line`.
fn number_after(line: &str, word: &str) -> u64 {
    line.split_whitespace()
        .skip_while(|w| *w != word)
        .nth(1)
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_digit()))
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number after {word:?} in {line:?}"))
}

/// The number before `word` in `line`.
fn number_before(line: &str, word: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == word)
        .unwrap_or_else(|| panic!("no {word:?} in {line:?}"));
    words[at - 1]
        .trim_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or_else(|_| panic!("no number before {word:?} in {line:?}"))
}

/// One connection: connect, echo `MESSAGES` lines with exact checks, close.
fn one_connection(addr: SocketAddr, tag: &str) -> io::Result<()> {
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(WAIT))?;
    c.set_write_timeout(Some(WAIT))?;
    for m in 0..MESSAGES {
        let msg = format!("{tag} message {m} {}\n", "x".repeat(40 + m));
        c.write_all(msg.as_bytes())?;
        let mut back = vec![0; msg.len()];
        c.read_exact(&mut back)?;
        if back != msg.as_bytes() {
            return Err(io::Error::other(format!(
                "{tag}: echo {:?} for {msg:?}",
                String::from_utf8_lossy(&back)
            )));
        }
    }
    Ok(())
}

/// A steady load of new connections: each client thread makes one after another until
/// stopped, numbering them in the order they start; each completed one reports its number.
struct Load {
    stop: Arc<AtomicBool>,
    started: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    done: mpsc::Receiver<u64>,
    threads: Vec<std::thread::JoinHandle<()>>,
    completed: u64,
}

impl Load {
    fn start(addr: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let threads = (0..CLIENTS)
            .map(|t| {
                let (stop, started, errors, tx) =
                    (stop.clone(), started.clone(), errors.clone(), tx.clone());
                std::thread::spawn(move || {
                    let mut next = Instant::now();
                    while !stop.load(Ordering::SeqCst) {
                        // Pacing of the load, not a wait for an event.
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                        next += PACE;
                        let n = started.fetch_add(1, Ordering::SeqCst);
                        match one_connection(addr, &format!("client {t} connection {n}")) {
                            Ok(()) => {
                                let _ = tx.send(n);
                            }
                            Err(e) => {
                                errors.lock().unwrap().push(format!("connection {n}: {e}"));
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            started,
            errors,
            done,
            threads,
            completed: 0,
        }
    }

    /// Waits until `count` connections numbered `from` or later have completed, and the load
    /// has gone on for [`PHASE_LEAST`] or reached [`PHASE_MOST`] of them.
    fn wait_completed(&mut self, from: u64, count: u64) {
        let began = Instant::now();
        let deadline = began + PHASE;
        let mut seen = 0;
        while seen < count || (began.elapsed() < PHASE_LEAST && seen < PHASE_MOST) {
            self.assert_no_errors();
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(n) => {
                    self.completed += 1;
                    if n >= from {
                        seen += 1;
                    }
                }
                Err(_) if left.is_zero() => {
                    panic!("only {seen} of {count} connections from #{from} completed in time")
                }
                Err(_) => {}
            }
        }
    }

    fn assert_no_errors(&self) {
        let errors = self.errors.lock().unwrap();
        assert!(errors.is_empty(), "clients failed: {errors:#?}");
    }

    /// Stops the clients and returns how many connections they made in all.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        for t in std::mem::take(&mut self.threads) {
            t.join().expect("client thread");
        }
        self.completed += self.done.try_iter().count() as u64;
        self.assert_no_errors();
        let started = self.started.load(Ordering::SeqCst);
        assert_eq!(
            self.completed, started,
            "every connection started completed"
        );
        started
    }
}

/// What a restart under load measured.
struct Outcome {
    old_accepted: u64,
    new_accepted: u64,
    connections: u64,
}

/// Runs `evdrive echo` with `args`, puts it under load, restarts it with SIGUSR2 in the middle
/// and checks the outcome: not one client failed, the successor (a new pid) served the
/// connections made after the old process exited 0, and the two processes together accepted
/// exactly the connections the clients made.
fn restart_under_load(threads: usize) -> io::Result<Outcome> {
    evdrive_tests::init_log();
    let mut cmd = Command::new(evdrive_binary());
    cmd.args(["echo", "--listen", "127.0.0.1:0", "--shutdown-grace", "5"])
        .args(["--threads", &threads.to_string()]);
    let mut old = Running::start(cmd)?;
    let addr = listening_addr(&old.wait_line("listening on", WAIT)?);
    let began = Instant::now();
    let mut load = Load::start(addr);
    load.wait_completed(0, PER_PHASE);

    old.signal("USR2")?;
    let signalled = Instant::now();
    let took = old.wait_line("took over the listeners", PHASE)?;
    let pid = number_after(&took, "pid") as u32;
    let successor = Guard(pid);
    assert_ne!(pid, old.pid());
    let confirmed = old.wait_line("confirmed after", PHASE)?;
    let handover_ms = number_after(&confirmed, "after");
    // Each reactor drains and says how many it accepted.
    let mut old_accepted = 0;
    for _ in 0..threads {
        let draining = old.wait_line("draining", PHASE)?;
        old_accepted += number_before(&draining, "accepted");
    }
    let status = old.wait_exit(PHASE)?;
    assert!(status.success(), "old process: {status}; {:#?}", old.seen());
    let old_gone = began.elapsed();
    let exited_after = signalled.elapsed();
    // Connections that start from now on can only be the successor's.
    let after_exit = load.started.load(Ordering::SeqCst);
    load.wait_completed(after_exit, PER_PHASE);
    let connections = load.finish();

    // The successor's own count, thread by thread: SIGUSR1 prints one line per reactor.
    Running::signal_pid(pid, "USR1")?;
    let mut new_accepted = 0;
    for _ in 0..threads {
        let line = old.wait_line(" accepted, ", WAIT)?;
        new_accepted += number_before(&line, "accepted,");
    }
    assert_eq!(
        old_accepted + new_accepted,
        connections,
        "the old process accepted {old_accepted}, the successor {new_accepted}"
    );
    eprintln!(
        "{threads} threads: hand-over confirmed after {handover_ms} ms, old process exited \
         {exited_after:?} after SIGUSR2 ({old_gone:?} into the load); {connections} \
         connections: {old_accepted} by the old process, {new_accepted} by the successor"
    );
    drop(successor);
    Ok(Outcome {
        old_accepted,
        new_accepted,
        connections,
    })
}

/// The restart of the issue: under a steady load of new connections, SIGUSR2 in the middle;
/// not one connection refused or reset, every echo exact, both processes served.
#[test]
fn a_restart_under_load_drops_nothing() -> io::Result<()> {
    let outcome = restart_under_load(1)?;
    assert!(outcome.old_accepted >= PER_PHASE && outcome.new_accepted >= PER_PHASE);
    assert!(outcome.connections >= 2 * PER_PHASE);
    Ok(())
}

/// The same with two threads: both `SO_REUSEPORT` listeners are handed over, not bound anew,
/// so no client queued in either backlog is reset.
#[test]
fn a_restart_with_two_threads_drops_nothing() -> io::Result<()> {
    let outcome = restart_under_load(2)?;
    assert!(outcome.old_accepted >= PER_PHASE && outcome.new_accepted >= PER_PHASE);
    Ok(())
}

/// Echoes one line on a new connection.
fn echo_once(addr: SocketAddr, what: &str) -> io::Result<()> {
    one_connection(addr, what)
}

/// Replaces the file at `path` with `contents`, executable, without writing into a file a
/// process may be running (a new file renamed over the old one).
fn replace_executable(
    path: &std::path::Path,
    write: impl FnOnce(&std::path::Path) -> io::Result<()>,
) -> io::Result<()> {
    let fresh = path.with_extension("new");
    write(&fresh)?;
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&fresh, path)
}

/// The binary replaced by a program that exits 1 after a moment: SIGUSR2 fails, a second
/// SIGUSR2 meanwhile is ignored, the old process serves on and its log says why. With the
/// real binary back, the next SIGUSR2 hands over.
#[test]
fn a_failed_successor_leaves_the_old_process_serving() -> io::Result<()> {
    let dir = TempDir::new("restart-fail")?;
    let exe = dir.join("evdrive");
    std::fs::copy(evdrive_binary(), &exe)?;
    let mut cmd = Command::new(&exe);
    cmd.args(["echo", "--listen", "127.0.0.1:0", "--shutdown-grace", "2"]);
    let mut old = Running::start(cmd)?;
    let addr = listening_addr(&old.wait_line("listening on", WAIT)?);
    echo_once(addr, "before")?;

    // The failing successor waits on a named pipe before it exits, so the second SIGUSR2
    // below meets the hand-over under way however slow the machine.
    let go = dir.join("go");
    let made = Command::new("mkfifo").arg(&go).status()?;
    assert!(made.success(), "mkfifo: {made}");
    let script = format!("#!/bin/sh\nread line < '{}'\nexit 1\n", go.display());
    replace_executable(&exe, |p| std::fs::write(p, &script))?;
    old.signal("USR2")?;
    old.wait_line("handing over", WAIT)?;
    // The successor is still starting: this one is ignored.
    old.signal("USR2")?;
    old.wait_line("SIGUSR2 ignored", WAIT)?;
    // Now the successor may fail (opening the pipe waits for the script to read it).
    std::fs::write(&go, "go\n")?;
    let why = old.wait_line("hand-over failed, still serving", WAIT)?;
    assert!(
        why.contains("ended before confirming") && why.contains("exit status: 1"),
        "{why}"
    );
    assert!(why.contains("ERROR"), "logged at error: {why}");
    echo_once(addr, "after the failure")?;

    replace_executable(&exe, |p| std::fs::copy(evdrive_binary(), p).map(drop))?;
    old.signal("USR2")?;
    let took = old.wait_line("took over the listeners", WAIT)?;
    let successor = Guard(number_after(&took, "pid") as u32);
    assert!(old.wait_exit(WAIT)?.success(), "{:#?}", old.seen());
    echo_once(addr, "served by the successor")?;
    drop(successor);
    Ok(())
}

/// `--listen unix:PATH`: the successor serves the socket file the old process created, which
/// neither replaces nor removes it (the old one exits after the hand-over without unlinking).
#[test]
fn a_unix_socket_file_survives_the_hand_over() -> io::Result<()> {
    let dir = TempDir::new("restart-unix")?;
    let path = dir.join("echo.sock");
    let mut cmd = Command::new(evdrive_binary());
    cmd.args(["echo", "--shutdown-grace", "2", "--listen"])
        .arg(format!("unix:{}", path.display()));
    let mut old = Running::start(cmd)?;
    old.wait_line("listening on unix:", WAIT)?;
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path)?);
    let unix_echo = |what: &[u8]| -> io::Result<()> {
        let mut c = std::os::unix::net::UnixStream::connect(&path)?;
        c.set_read_timeout(Some(WAIT))?;
        c.write_all(what)?;
        let mut back = vec![0; what.len()];
        c.read_exact(&mut back)?;
        assert_eq!(back, what);
        Ok(())
    };
    // A client in the middle of its conversation across the hand-over.
    let mut open = std::os::unix::net::UnixStream::connect(&path)?;
    open.set_read_timeout(Some(WAIT))?;
    unix_echo(b"before\n")?;
    old.signal("USR2")?;
    let took = old.wait_line("took over the listeners", WAIT)?;
    let successor = Guard(number_after(&took, "pid") as u32);
    old.wait_line("draining", WAIT)?;
    for line in [&b"still talking\n"[..], b"to the old process\n"] {
        open.write_all(line)?;
        let mut back = vec![0; line.len()];
        open.read_exact(&mut back)?;
        assert_eq!(back, line);
    }
    drop(open);
    assert!(old.wait_exit(WAIT)?.success(), "{:#?}", old.seen());
    let after = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path)?);
    assert_eq!(after, inode, "the same socket file");
    unix_echo(b"served by the successor\n")?;
    drop(successor);
    Ok(())
}

/// Reads one HTTP response (head and `Content-Length` body) from `c`, and returns it.
fn read_response(c: &mut TcpStream) -> io::Result<String> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        if c.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "in a response head",
            ));
        }
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    c.read_exact(&mut body)?;
    Ok(head + &String::from_utf8_lossy(&body))
}

/// HTTP's natural end in a drain: a keep-alive connection idle between requests is closed at
/// once, a request half sent when the hand-over comes is answered in full and its connection
/// closed after the response, and the old process exits long before its 30 s grace.
#[test]
fn http_connections_end_between_requests_in_a_drain() -> io::Result<()> {
    let mut cmd = Command::new(evdrive_binary());
    cmd.args(["http", "--listen", "127.0.0.1:0", "--shutdown-grace", "30"]);
    let mut old = Running::start(cmd)?;
    let addr = listening_addr(&old.wait_line("listening on", WAIT)?);
    let open = |addr| -> io::Result<TcpStream> {
        let c = TcpStream::connect(addr)?;
        c.set_read_timeout(Some(WAIT))?;
        Ok(c)
    };
    let (mut idle, mut half) = (open(addr)?, open(addr)?);
    half.write_all(b"GET /health HTTP/1.1\r\nHost: x")?;
    // The half request is read before the idle connection's response is written: its bytes
    // were waiting before the request was sent, and a turn reads before it flushes.
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
    assert!(read_response(&mut idle)?.starts_with("HTTP/1.1 200"));

    old.signal("USR2")?;
    let took = old.wait_line("took over the listeners", WAIT)?;
    let successor = Guard(number_after(&took, "pid") as u32);
    old.wait_line("draining", WAIT)?;
    let mut rest = [0u8; 1];
    assert_eq!(idle.read(&mut rest)?, 0, "the idle connection is closed");
    half.write_all(b"\r\n\r\n")?;
    let response = read_response(&mut half)?;
    assert!(
        response.starts_with("HTTP/1.1 200") && response.ends_with("ok\n"),
        "{response}"
    );
    assert_eq!(half.read(&mut rest)?, 0, "closed after its response");
    // The server's graceful close waits for the clients' FIN (S14).
    drop((idle, half));
    assert!(old.wait_exit(WAIT)?.success(), "{:#?}", old.seen());

    let mut fresh = open(addr)?;
    fresh.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")?;
    assert!(read_response(&mut fresh)?.starts_with("HTTP/1.1 200"));
    drop(successor);
    Ok(())
}
