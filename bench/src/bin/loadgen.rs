//! Load generator for echo servers: ping-pong, pipelined, streaming and idle connections.
//!
//! ```text
//! loadgen echo   --addr 127.0.0.1:7000 -c 50 -s 64 --depth 1 --duration 10s
//! loadgen echo   --addr 127.0.0.1:7000 -c 50 -s 64 --depth 16 --json
//! loadgen stream --addr 127.0.0.1:7000 -c 1 --duration 5s
//! loadgen idle   --addr 127.0.0.1:7000 -c 10000 --hold 60s --release-on-eof
//! ```
//!
//! See bench/README.md for what each figure means.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use bench::echo::{self, EchoConfig};
use bench::idle::{self, IdleConfig};
use bench::report::{parse_duration, Summary};
use bench::sys;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "Load generator for echo servers", version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Messages of a fixed size echoed back: ping-pong (depth 1) or pipelined (depth > 1).
    Echo(EchoArgs),
    /// Streaming: 64 KiB writes as fast as the server echoes them back; reports MB/s.
    Stream(StreamArgs),
    /// Idle connections held open, for measuring a server's memory per connection.
    Idle(IdleArgs),
}

/// Options every load shares.
#[derive(Debug, Args)]
struct Common {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: SocketAddr,
    /// Source addresses to bind, comma separated, used in turn (e.g. 127.0.0.1,127.0.0.2).
    #[arg(long, value_delimiter = ',')]
    sources: Vec<IpAddr>,
    /// Print the result as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Connect to this Unix-domain socket instead of --addr (echo and stream loads).
    #[arg(long, value_name = "PATH")]
    unix: Option<std::path::PathBuf>,
}

/// Options of the two echo loads.
#[derive(Debug, Args)]
struct LoadArgs {
    /// Measured time after warm-up; issuing stops when it ends (also an upper bound when
    /// --messages is given).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Stop after this many messages in total.
    #[arg(long)]
    messages: Option<u64>,
    /// Time at the start whose echoes are not counted.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    warmup: Duration,
    /// Messages per second in total (open loop, latency from the scheduled time); unlimited
    /// when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// Client threads, each with its own event loop and a share of the connections.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Do not compare the echoed bytes with what was sent.
    #[arg(long)]
    no_verify: bool,
}

#[derive(Debug, Args)]
struct EchoArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    load: LoadArgs,
    /// Connections.
    #[arg(short, long, default_value_t = 50)]
    connections: usize,
    /// Bytes per message (1..=65536).
    #[arg(short, long, default_value_t = 64)]
    size: usize,
    /// Messages in flight per connection (1 = ping-pong).
    #[arg(long, default_value_t = 1)]
    depth: usize,
}

#[derive(Debug, Args)]
struct StreamArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    load: LoadArgs,
    /// Connections, each streaming on its own.
    #[arg(short, long, default_value_t = 1)]
    connections: usize,
    /// Bytes per write (at most 65536).
    #[arg(long, default_value_t = 65536)]
    write_size: usize,
    /// Writes in flight per connection (bytes not yet echoed = depth x write size).
    #[arg(long, default_value_t = 32)]
    depth: usize,
}

#[derive(Debug, Args)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Connections to open and hold.
    #[arg(short, long, default_value_t = 1000)]
    connections: usize,
    /// Connects in flight at once: a slow server's full accept queue then delays a few of
    /// them (the kernel retries a dropped handshake after a second), not every one in turn.
    #[arg(long, default_value_t = 128)]
    in_flight: usize,
    /// Longest time to hold them.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    hold: Duration,
    /// Close them as soon as standard input ends (a script closes the pipe when done).
    #[arg(long)]
    release_on_eof: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Thousands of connections need more than the usual soft limit of 1024 descriptors.
    if let Err(e) = sys::raise_nofile_limit() {
        eprintln!("loadgen: cannot raise the descriptor limit: {e}");
    }
    let result = match cli.mode {
        Mode::Echo(a) => run_load("echo", &a.common, &a.load, a.connections, a.size, a.depth),
        Mode::Stream(a) => run_load(
            "stream",
            &a.common,
            &a.load,
            a.connections,
            a.write_size,
            a.depth,
        ),
        Mode::Idle(a) => run_idle(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an echo load on `--threads` event loops and prints the merged summary.
fn run_load(
    mode: &'static str,
    common: &Common,
    load: &LoadArgs,
    connections: usize,
    size: usize,
    depth: usize,
) -> io::Result<ExitCode> {
    if size == 0 || size > bench::pattern::MAX_RUN {
        return Err(io::Error::other("message size must be 1..=65536"));
    }
    if depth == 0 || connections == 0 {
        return Err(io::Error::other("connections and depth must be at least 1"));
    }
    let threads = load.threads.clamp(1, connections);

    // Each thread takes an even share of the connections, the message budget and the rate.
    let configs: Vec<EchoConfig> = (0..threads)
        .map(|t| {
            let first = connections * t / threads;
            let share = connections * (t + 1) / threads - first;
            EchoConfig {
                mode,
                addr: common.addr,
                sources: common.sources.clone(),
                first_index: first,
                connections: share,
                size,
                depth,
                duration: load.duration,
                messages: load
                    .messages
                    .map(|m| m * (t as u64 + 1) / threads as u64 - m * t as u64 / threads as u64),
                warmup: load.warmup,
                rate: load.rate.map(|r| r * share as f64 / connections as f64),
                verify: !load.no_verify,
                grace: echo::DEFAULT_GRACE,
                unix: common.unix.clone(),
            }
        })
        .collect();

    let results: Vec<io::Result<Summary>> = std::thread::scope(|scope| {
        let handles: Vec<_> = configs
            .iter()
            .map(|cfg| scope.spawn(move || echo::run(cfg)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("load thread panicked"))
            .collect()
    });
    let mut summary: Option<Summary> = None;
    for r in results {
        let s = r?;
        match &mut summary {
            Some(total) => total.merge(&s),
            None => summary = Some(s),
        }
    }
    let summary = summary.expect("at least one thread");

    if common.json {
        println!("{}", summary.to_json());
    } else {
        print!("{}", summary.to_table());
    }
    Ok(if summary.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Opens idle connections, announces them, holds them, closes them.
fn run_idle(a: &IdleArgs) -> io::Result<ExitCode> {
    let cfg = IdleConfig {
        addr: a.common.addr,
        sources: a.common.sources.clone(),
        connections: a.connections,
        in_flight: a.in_flight,
        hold: a.hold,
    };
    // With --release-on-eof a thread watches standard input; its end drops the sender and so
    // ends the hold.
    let release = a.release_on_eof.then(|| {
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let stdin = io::stdin();
            for line in stdin.lock().lines() {
                if line.is_err() {
                    break;
                }
            }
            drop(tx);
        });
        rx
    });
    let json = a.common.json;
    let report = idle::run(
        &cfg,
        |n, took| {
            // The line a script waits for before it measures the server.
            if json {
                println!(
                    "{{\"event\":\"ready\",\"connections\":{n},\"connect_s\":{:.3}}}",
                    took.as_secs_f64()
                );
            } else {
                println!("ready: {n} connections open in {:.2} s", took.as_secs_f64());
            }
            let _ = io::stdout().flush();
        },
        release,
    );
    if let Some(e) = &report.error {
        eprintln!(
            "loadgen: opened {} of {}: {e}",
            report.opened, a.connections
        );
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
