//! `evdrive`: the sample servers on the command line.
//!
//! ```text
//! evdrive echo [--listen 127.0.0.1:7007]
//! ```
//! Logging goes through `RUST_LOG` (e.g. `RUST_LOG=debug`). SIGINT or SIGTERM shuts down
//! gracefully (a second one stops at once); SIGUSR1 prints every connection.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use protocols::echo::Echo;
use reactor::sys::SIGUSR1;
use reactor::{ConnConfig, ListenOptions, Reactor};

#[derive(Parser, Debug)]
#[command(
    name = "evdrive",
    version,
    about = "Sample servers on the evdrive event-driven reactor",
    long_about = "Sample servers on the evdrive event-driven reactor.\n\n\
        Each subcommand serves one protocol on a default local port, ready for a real client \
        (nc, socat, curl, redis-cli). Log level through RUST_LOG (error, warn, info, debug). \
        SIGINT/SIGTERM shut down gracefully: listeners close, queued output is flushed, every \
        connection is half-closed and given the grace period to finish; a second signal stops \
        at once. SIGUSR1 prints a snapshot of every connection to standard error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// TCP echo: every byte is sent back (default 127.0.0.1:7007). Try `nc 127.0.0.1 7007`.
    Echo(Common),
}

/// Options every sample server takes.
#[derive(Args, Debug)]
struct Common {
    /// Address to listen on (port 0 picks a free port; the bound address is logged).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Close a connection that sends nothing this many seconds after connecting (0: never).
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    first_byte_timeout: f64,
    /// Close a connection with no traffic either way for this many seconds (0: never).
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    idle_timeout: f64,
    /// Seconds a graceful shutdown may take before remaining connections are aborted.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    shutdown_grace: f64,
    /// Listen backlog (queued, not yet accepted connections).
    #[arg(long, default_value_t = 1024)]
    backlog: i32,
}

fn secs(s: f64) -> Option<Duration> {
    (s > 0.0).then(|| Duration::from_secs_f64(s))
}

impl Common {
    fn listen_options(&self) -> ListenOptions {
        ListenOptions {
            backlog: self.backlog,
            conn: ConnConfig {
                first_byte_timeout: secs(self.first_byte_timeout),
                idle_timeout: secs(self.idle_timeout),
                ..ConnConfig::default()
            },
            ..ListenOptions::default()
        }
    }
}

/// Prints every connection of the reactor to standard error.
fn print_snapshot<App>(cx: &mut reactor::Cx<'_, App>) {
    let stats = cx.stats().clone();
    eprintln!(
        "-- {} open, {} accepted, {} closed, {} B in, {} B out, {} turns, longest {:?}",
        stats.open,
        stats.accepted,
        stats.closed_total(),
        stats.bytes_in,
        stats.bytes_out,
        stats.turns,
        stats.longest_turn
    );
    for conn in cx.connections() {
        eprintln!("{conn}");
    }
}

fn serve_echo(common: &Common) -> std::io::Result<()> {
    let addr = common
        .listen
        .unwrap_or_else(|| "127.0.0.1:7007".parse().unwrap());
    let mut reactor = Reactor::new(())?;
    let bound = reactor.listen(addr, common.listen_options(), |_, _| Echo)?;
    eprintln!("evdrive echo listening on {bound}");
    reactor.catch_signals(
        &[SIGUSR1],
        Some(Duration::from_secs_f64(common.shutdown_grace.max(0.0))),
        Some(Box::new(|cx, sig| {
            if sig == SIGUSR1 {
                print_snapshot(cx);
            }
        })),
    )?;
    reactor.run()
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Echo(common) => serve_echo(common),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
