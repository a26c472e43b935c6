//! Idle connections: open many, hold them, close them with a RST.
//!
//! Used to measure a server's memory per connection (the caller reads the server's resident
//! set before and while the connections are held) and whether its per-message work grows with
//! idle connections. Nothing is sent on them.
//!
//! Connects are non-blocking, a bounded number in flight: a server that accepts slowly (under
//! valgrind, or on a loaded machine) fills its accept queue, and the kernel then drops
//! handshakes that are retried a second or more later. One connect at a time would wait out
//! every such retry in turn; with many in flight the retries overlap and the opening goes at
//! the server's accept rate.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::sys;

/// What to open and for how long.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// The server.
    pub addr: SocketAddr,
    /// Source addresses to bind, used in turn; empty lets the kernel choose. One source and one
    /// destination give at most 28,232 connections.
    pub sources: Vec<IpAddr>,
    /// Connections to open.
    pub connections: usize,
    /// Connects in flight at once (at least 1): handshakes started and not yet complete.
    pub in_flight: usize,
    /// Longest time to hold them once all are open.
    pub hold: Duration,
}

/// What an idle run achieved.
#[derive(Debug)]
pub struct IdleReport {
    /// Connections that were opened and held.
    pub opened: usize,
    /// Time it took to open them.
    pub connect_time: Duration,
    /// Why opening stopped early, if it did.
    pub error: Option<io::Error>,
}

/// Opens the connections, up to `in_flight` at a time, calls `on_ready` with the count once all are open
/// (or opening failed), holds them until `hold` passes or `release` receives a message or
/// hangs up, then closes them all with `SO_LINGER` 0.
///
/// Opening stops at the first failure (`EMFILE`, `EADDRNOTAVAIL`, a refused connection); the
/// connections opened until then are still held and reported.
///
/// # Errors
///
/// None of its own: failures to open are reported in [`IdleReport::error`].
pub fn run(
    cfg: &IdleConfig,
    on_ready: impl FnOnce(usize, Duration),
    release: Option<mpsc::Receiver<()>>,
) -> IdleReport {
    let started = Instant::now();
    let mut held: Vec<TcpStream> = Vec::with_capacity(cfg.connections);
    let mut pending: Vec<TcpStream> = Vec::with_capacity(cfg.in_flight.max(1));
    let mut started_count = 0;
    let mut error = None;
    while held.len() < cfg.connections && error.is_none() {
        while started_count < cfg.connections && pending.len() < cfg.in_flight.max(1) {
            let source = match cfg.sources.len() {
                0 => None,
                n => Some(cfg.sources[started_count % n]),
            };
            match sys::connect_start(source, cfg.addr) {
                Ok(s) => pending.push(s),
                Err(e) => {
                    let msg = format!("connection {started_count}: {e}");
                    error = Some(io::Error::new(e.kind(), msg));
                    break;
                }
            }
            started_count += 1;
        }
        if error.is_some() || pending.is_empty() {
            break;
        }
        let fds: Vec<BorrowedFd<'_>> = pending.iter().map(|s| s.as_fd()).collect();
        let ready = match sys::poll_writable(&fds, None) {
            Ok(ready) => ready,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        drop(fds);
        // From the end, so that `swap_remove` only moves an entry already looked at.
        for i in (0..ready.len()).rev() {
            if !ready[i] {
                continue;
            }
            let s = pending.swap_remove(i);
            match s.take_error() {
                Ok(None) => held.push(s),
                Ok(Some(e)) | Err(e) => {
                    let msg = format!("connection {}: {e}", held.len());
                    error = Some(io::Error::new(e.kind(), msg));
                    break;
                }
            }
        }
    }
    // Connects still in flight after a failure are abandoned (closed with `pending`).
    drop(pending);
    let connect_time = started.elapsed();
    on_ready(held.len(), connect_time);

    match release {
        // Either a message or the sender hanging up ends the hold early.
        Some(rx) => {
            let _ = rx.recv_timeout(cfg.hold);
        }
        None => std::thread::sleep(cfg.hold),
    }

    for s in &held {
        let _ = sys::set_linger_zero(s.as_fd());
    }
    IdleReport {
        opened: held.len(),
        connect_time,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn holds_until_released() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let cfg = IdleConfig {
            addr: listener.local_addr()?,
            sources: vec!["127.0.0.1".parse().unwrap(), "127.0.0.3".parse().unwrap()],
            connections: 4,
            in_flight: 2,
            hold: Duration::from_secs(30),
        };
        let (tx, rx) = mpsc::channel();
        let mut seen = 0;
        let report = run(
            &cfg,
            |n, _| {
                seen = n;
                drop(tx);
            },
            Some(rx),
        );
        assert_eq!((seen, report.opened), (4, 4));
        assert!(report.error.is_none());
        assert!(report.connect_time < Duration::from_secs(30));
        Ok(())
    }

    #[test]
    fn reports_a_refused_connect() -> io::Result<()> {
        // A port that was just free and has no listener now: the handshake is refused.
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let cfg = IdleConfig {
            addr,
            sources: Vec::new(),
            connections: 3,
            in_flight: 8,
            hold: Duration::from_secs(30),
        };
        // No hold: the release channel has hung up before the run starts.
        let (_, rx) = mpsc::channel();
        let report = run(&cfg, |_, _| {}, Some(rx));
        assert_eq!(report.opened, 0);
        let kind = report.error.map(|e| e.kind());
        assert_eq!(kind, Some(io::ErrorKind::ConnectionRefused));
        Ok(())
    }
}
