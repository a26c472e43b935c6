//! Idle connections: open many, hold them, close them with a RST.
//!
//! Used to measure a server's memory per connection: the caller reads the server's resident
//! set before and while the connections are held. Nothing is sent on them.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
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

/// Opens the connections one after another, calls `on_ready` with the count once all are open
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
    let mut error = None;
    for i in 0..cfg.connections {
        let source = match cfg.sources.len() {
            0 => None,
            n => Some(cfg.sources[i % n]),
        };
        match sys::connect_from(source, cfg.addr) {
            Ok(s) => held.push(s),
            Err(e) => {
                error = Some(io::Error::new(e.kind(), format!("connection {i}: {e}")));
                break;
            }
        }
    }
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
        let _ = sys::set_linger_zero(s.as_raw_fd());
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
}
