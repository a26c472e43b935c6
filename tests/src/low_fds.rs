//! The set-up of the tests run under a low descriptor limit (S27): the limit lowered to what
//! the process holds plus a headroom, and the clients in a child process of their own.
//!
//! `RLIMIT_NOFILE` is process-wide, so such a test is the one real test of its file's process,
//! and its clients cannot run in that process: they would use up the very descriptors under
//! test. They run in the test binary started again for its ignored client test
//! ([`ClientProcess::spawn`]), with the server's address in the environment. The child raises
//! its own limit back to the hard limit ([`client_server_addr`]: a lowered soft limit is
//! inherited across `exec`), reports over its standard output with lines marked for the parent
//! ([`print_report`]; the test harness prints lines of its own), and is stepped through its
//! phases over its standard input ([`ClientProcess::send`], [`await_command`]).

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// The environment variable that turns the test binary into the client process.
const SERVER_ENV: &str = "EVDRIVE_LOW_FDS_SERVER";
/// What the client prefixes its reports with.
const MARK: &str = "low-fds-client:";

/// Descriptors this process holds now.
///
/// # Errors
/// `/proc/self/fd` cannot be read.
pub fn open_descriptors() -> io::Result<u64> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count() as u64)
}

/// The soft descriptor limit lowered for a test, and the one it replaced.
#[derive(Debug)]
pub struct LoweredLimit {
    /// The soft limit in force before, restored by [`restore`](Self::restore).
    before: u64,
}

impl LoweredLimit {
    /// Lowers the soft limit to the descriptors this process holds plus `headroom`.
    ///
    /// # Errors
    /// Reading the descriptors or the limit, or setting it, failed.
    pub fn to_headroom(headroom: u64) -> io::Result<LoweredLimit> {
        let (before, _) = reactor::sys::nofile_limit()?;
        reactor::sys::set_nofile_limit(open_descriptors()? + headroom)?;
        Ok(LoweredLimit { before })
    }

    /// Puts the soft limit back as it was.
    ///
    /// # Errors
    /// Setting the limit failed.
    pub fn restore(self) -> io::Result<()> {
        reactor::sys::set_nofile_limit(self.before)
    }
}

/// The client half of a low-descriptor test, running in a child process.
#[derive(Debug)]
pub struct ClientProcess {
    child: Child,
    /// Commands for the child, one a line.
    to_child: ChildStdin,
    /// The child's report lines, the mark taken off, as they come.
    reports: Receiver<String>,
    /// Readable once the child exits: opened at the start, as the test may have no descriptor
    /// to spare by the time it waits.
    exit: OwnedFd,
}

impl ClientProcess {
    /// Starts this test binary again for its ignored test `client_test`, with `server`'s
    /// address in its environment, and a thread turning its marked lines into reports.
    ///
    /// # Errors
    /// Finding this test binary or spawning it failed.
    pub fn spawn(client_test: &str, server: SocketAddr) -> io::Result<ClientProcess> {
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                client_test,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SERVER_ENV, server.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let to_child = child.stdin.take().expect("piped");
        let from_child = child.stdout.take().expect("piped");
        let (tx, reports) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(from_child).lines().map_while(Result::ok) {
                if let Some(at) = line.find(MARK) {
                    let _ = tx.send(line[at + MARK.len()..].trim().to_string());
                }
            }
        });
        let exit = reactor::sys::pidfd_open(child.id())?;
        Ok(ClientProcess {
            child,
            to_child,
            reports,
            exit,
        })
    }

    /// The child's next report, waiting at most `limit`.
    ///
    /// # Panics
    /// If none comes in time.
    pub fn report(&self, limit: Duration) -> String {
        self.reports
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("no report from the client process within {limit:?}"))
    }

    /// Sends the child a command line.
    ///
    /// # Errors
    /// Writing to its standard input failed.
    pub fn send(&mut self, command: &str) -> io::Result<()> {
        writeln!(self.to_child, "{command}")
    }

    /// Sends `command` (the last one) and waits at most `limit` for the child to exit.
    ///
    /// # Errors
    /// Sending or waiting failed.
    ///
    /// # Panics
    /// If the child has not exited in time.
    pub fn finish(mut self, command: &str, limit: Duration) -> io::Result<ExitStatus> {
        self.send(command)?;
        let status = crate::wait_child_on(&mut self.child, &self.exit, limit)?;
        Ok(status.expect("the client process did not exit"))
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// In the client process: the server's address, with this process's soft descriptor limit
/// raised back to the hard limit; `None` in any other process (the client test then does
/// nothing).
///
/// # Errors
/// Reading or setting the limit failed.
///
/// # Panics
/// If the environment holds something that is not an address.
pub fn client_server_addr() -> io::Result<Option<SocketAddr>> {
    let Ok(addr) = std::env::var(SERVER_ENV) else {
        return Ok(None);
    };
    let (_, hard) = reactor::sys::nofile_limit()?;
    reactor::sys::set_nofile_limit(hard)?;
    Ok(Some(addr.parse().expect("an address")))
}

/// In the client process: prints a report line for the parent.
///
/// # Errors
/// Flushing standard output failed.
pub fn print_report(report: &str) -> io::Result<()> {
    println!("{MARK} {report}");
    io::stdout().flush()
}

/// In the client process: waits for the parent's next command, which must be `expected`.
///
/// # Errors
/// Reading standard input failed.
///
/// # Panics
/// If the command is another one, or the input ended.
pub fn await_command(expected: &str) -> io::Result<()> {
    let mut line = String::new();
    io::stdin().read_line(&mut line)?;
    assert_eq!(line.trim_end(), expected, "the parent's command");
    Ok(())
}

/// Parses `name=N` out of a report line.
///
/// # Panics
/// If the line has no such field.
pub fn field(report: &str, name: &str) -> u64 {
    let key = format!("{name}=");
    report
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key.as_str()))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {report:?}"))
}
