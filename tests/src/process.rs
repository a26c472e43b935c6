//! A sample server run as a process of its own: its standard error read line by line, its
//! signals sent with `kill(1)`, its exit awaited with a deadline.

use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// A running program whose standard error is read line by line (by it and by any process it
/// starts that inherits it). Killed and reaped when dropped, if still running.
#[derive(Debug)]
pub struct Running {
    child: Child,
    lines: Receiver<String>,
    /// Every line read so far, for failure messages.
    seen: Vec<String>,
    exited: Option<ExitStatus>,
}

impl Running {
    /// Starts `cmd` with standard error piped and standard input and output closed.
    ///
    /// # Errors
    /// The error of spawning it.
    pub fn start(mut cmd: Command) -> io::Result<Running> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Running {
            child,
            lines,
            seen: Vec::new(),
            exited: None,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits at most `wait` for a line containing `marker`, and returns it.
    ///
    /// # Errors
    /// `TimedOut`, with every line seen, if none comes.
    pub fn wait_line(&mut self, marker: &str, wait: Duration) -> io::Result<String> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(marker) {
                        return Ok(line);
                    }
                }
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no line with {marker:?}; seen:\n{}", self.seen.join("\n")),
                    ))
                }
            }
        }
    }

    /// Every line read so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Sends signal `name` (`USR2`, `TERM`…) to process `pid` with `kill(1)`.
    ///
    /// # Errors
    /// The error of running `kill`, or its failure.
    pub fn signal_pid(pid: u32, name: &str) -> io::Result<()> {
        let status = Command::new("kill")
            .args(["-s", name, &pid.to_string()])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("kill -s {name} {pid}: {status}")))
        }
    }

    /// Sends signal `name` to this process.
    ///
    /// # Errors
    /// As [`signal_pid`](Self::signal_pid).
    pub fn signal(&self, name: &str) -> io::Result<()> {
        Self::signal_pid(self.pid(), name)
    }

    /// Waits at most `wait` for the process to exit, and returns its status.
    ///
    /// # Errors
    /// `TimedOut` if it is still running.
    pub fn wait_exit(&mut self, wait: Duration) -> io::Result<ExitStatus> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = Some(status);
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "pid {} still running; seen:\n{}",
                        self.pid(),
                        self.seen.join("\n")
                    ),
                ));
            }
            // Collect what it says meanwhile, which also paces this loop.
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(20)) {
                self.seen.push(line);
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits at most `limit` for `child` to exit, on the exit itself (a process descriptor polled
/// for it), and returns its status, or `None` if it still runs.
///
/// # Errors
/// Opening or polling the process descriptor, or `try_wait`.
pub fn wait_child(child: &mut Child, limit: Duration) -> io::Result<Option<ExitStatus>> {
    if let Some(status) = child.try_wait()? {
        return Ok(Some(status));
    }
    // Not reaped yet, so the pid still names this child, even if it has just exited.
    let exit = reactor::sys::pidfd_open(child.id())?;
    wait_child_on(child, &exit, limit)
}

/// As [`wait_child`], with the child's process descriptor opened beforehand (by a test that
/// may have no descriptor to spare by the time it waits).
///
/// # Errors
/// Polling the descriptor, or `try_wait`.
pub fn wait_child_on(
    child: &mut Child,
    exit: &OwnedFd,
    limit: Duration,
) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        reactor::sys::poll_readable(&[exit.as_fd()], Some(left))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_child_sees_an_exit_and_times_out_on_a_running_child() {
        let mut done = Command::new("true").spawn().expect("true");
        let status = wait_child(&mut done, Duration::from_secs(5)).expect("waited");
        assert!(status.expect("exited").success());

        let mut running = Command::new("sleep").arg("30").spawn().expect("sleep");
        let started = Instant::now();
        let status = wait_child(&mut running, Duration::from_millis(50)).expect("waited");
        assert!(status.is_none(), "sleep 30 exited: {status:?}");
        assert!(started.elapsed() >= Duration::from_millis(50));
        running.kill().expect("kill");
        let status = wait_child(&mut running, Duration::from_secs(5)).expect("waited");
        assert!(status.is_some(), "a killed child is seen to exit");
    }
}
