//! Client of the scale runs: opens many connections, each echoes one message, then holds them.
//!
//! ```text
//! scale_client --addr 127.0.0.1:7007 -c 19000 --sources 127.0.1.1,127.0.1.2 --threads 16
//! ```
//!
//! Each connection binds the next source address in turn (one source/destination pair has
//! only 28,232 ports), connects, sends one message naming its index, and reads the echo back,
//! which the server can only send once it has accepted the connection: the time until every
//! connection has echoed is therefore the time the server took to accept (and serve) them all.
//! Blocking sockets on a few threads keep the number of handshakes in flight at the thread
//! count, well below the listen backlog, so no SYN is dropped and retried a second later.
//!
//! Once every thread is done, one line goes to standard output and the connections are held
//! until standard input ends (or `--hold` passes), so that a script can measure the server
//! while they are open; then they are all closed with `SO_LINGER` 0 (a RST, no port left in
//! `TIME-WAIT`):
//!
//! ```text
//! ready echoed=19000 failed=0 secs=1.234 nofile=20000
//! ```
//!
//! Exit status: 0 when every connection echoed, 2 when some failed (the first error goes to
//! standard error), 1 for a bad command line.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bench::report::parse_duration;
use bench::sys;
use clap::Parser;

/// Bytes of each message: the connection's index, padded.
const MESSAGE_LEN: usize = 32;

#[derive(Debug, Parser)]
#[command(
    about = "Opens many connections to an echo server, echoes once on each, holds them",
    version
)]
struct Cli {
    /// Server address.
    #[arg(long)]
    addr: SocketAddr,
    /// Connections to open.
    #[arg(short, long)]
    connections: usize,
    /// Source addresses to bind, comma separated, used in turn.
    #[arg(long, value_delimiter = ',')]
    sources: Vec<IpAddr>,
    /// Threads opening connections (= handshakes in flight).
    #[arg(long, default_value_t = 16)]
    threads: usize,
    /// Longest wait for one echo.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    echo_timeout: Duration,
    /// Longest time to hold the connections once all are open; standard input ending
    /// releases them earlier.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    hold: Duration,
}

/// What one thread achieved.
struct Share {
    held: Vec<TcpStream>,
    echoed: usize,
    failed: usize,
    first_error: Option<String>,
}

/// Connection `i`: connect from its source, send its message, read the echo.
fn open_one(cli: &Cli, i: usize) -> io::Result<TcpStream> {
    let source = match cli.sources.len() {
        0 => None,
        n => Some(cli.sources[i % n]),
    };
    let mut stream = sys::connect_from(source, cli.addr)?;
    // A connection that fails later must not leave its port in TIME-WAIT either.
    sys::set_linger_zero(stream.as_fd())?;
    stream.set_read_timeout(Some(cli.echo_timeout))?;
    let mut msg = [b'.'; MESSAGE_LEN];
    let text = format!("conn {i}\n");
    msg[..text.len()].copy_from_slice(text.as_bytes());
    stream.write_all(&msg)?;
    let mut back = [0u8; MESSAGE_LEN];
    stream.read_exact(&mut back)?;
    if back != msg {
        return Err(io::Error::other(format!(
            "connection {i}: the echo differs"
        )));
    }
    Ok(stream)
}

/// Opens every `threads`-th connection from `first`.
fn run_share(cli: &Cli, first: usize, threads: usize) -> Share {
    let mut share = Share {
        held: Vec::with_capacity(cli.connections / threads + 1),
        echoed: 0,
        failed: 0,
        first_error: None,
    };
    for i in (first..cli.connections).step_by(threads) {
        match open_one(cli, i) {
            Ok(s) => {
                share.held.push(s);
                share.echoed += 1;
            }
            Err(e) => {
                share.failed += 1;
                share
                    .first_error
                    .get_or_insert_with(|| format!("connection {i}: {e}"));
            }
        }
    }
    share
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.connections == 0 || cli.threads == 0 {
        eprintln!("scale_client: connections and threads must be at least 1");
        return ExitCode::FAILURE;
    }
    // 19,000 connections need the hard limit, not the usual soft 1024.
    let nofile = match sys::raise_nofile_limit() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("scale_client: cannot raise the descriptor limit: {e}");
            return ExitCode::FAILURE;
        }
    };
    let threads = cli.threads.min(cli.connections);

    let started = Instant::now();
    let shares: Vec<Share> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let cli = &cli;
                scope.spawn(move || run_share(cli, t, threads))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread panicked"))
            .collect()
    });
    let took = started.elapsed();

    let echoed: usize = shares.iter().map(|s| s.echoed).sum();
    let failed: usize = shares.iter().map(|s| s.failed).sum();
    println!(
        "ready echoed={echoed} failed={failed} secs={:.3} nofile={nofile}",
        took.as_secs_f64()
    );
    let _ = io::stdout().flush();
    if let Some(e) = shares.iter().find_map(|s| s.first_error.as_deref()) {
        eprintln!(
            "scale_client: {failed} of {} failed; first: {e}",
            cli.connections
        );
    }

    // Hold until standard input ends (the sender hangs up) or the hold is over.
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            if line.is_err() {
                break;
            }
        }
        drop(tx);
    });
    let _ = rx.recv_timeout(cli.hold);
    // Every socket already lingers 0: dropping them sends the RSTs.
    drop(shares);
    println!("closed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
