//! Broadcast load for `evdrive chat`: one sender, many members, every line checked.
//!
//! ```text
//! fanout --addr 127.0.0.1:7000 --members 1000 --size 64 --duration 3s --server-pid PID
//! fanout --addr 127.0.0.1:7000 --members 1000 --lines 500 --wait-for-go --json
//! ```
//!
//! See bench/README.md for what each figure means, and `bench/fanout` for the script that runs
//! it against 1 and 2 server threads.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bench::fanout::{self, FanoutConfig};
use bench::report::parse_duration;
use bench::sys;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    about = "Broadcast load for a chat server: one sender, many members",
    version
)]
struct Cli {
    /// Chat server address.
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: SocketAddr,
    /// Members receiving the lines (the sender not included).
    #[arg(short, long, default_value_t = 1000)]
    members: usize,
    /// Bytes of each line's text (at least 13).
    #[arg(short, long, default_value_t = 64)]
    size: usize,
    /// Stop sending after this many lines.
    #[arg(long, default_value_t = 1_000_000)]
    lines: u64,
    /// Measured time after warm-up; sending stops when it ends.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    duration: Duration,
    /// Time after the first line whose deliveries are not counted.
    #[arg(long, default_value = "0.5s", value_parser = parse_duration)]
    warmup: Duration,
    /// Lines the sender may be ahead of the slowest member.
    #[arg(long, default_value_t = 256)]
    window: u64,
    /// The server's process id: its CPU time over the window is reported.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print `ready` once every member is greeted, and send only after a line on standard
    /// input.
    #[arg(long)]
    wait_for_go: bool,
    /// Longest wait for the members to be greeted, and for the last lines once sending stops.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// Print the result as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A thousand members need about the usual soft limit of 1024 descriptors, and more.
    if let Err(e) = sys::raise_nofile_limit() {
        eprintln!("fanout: cannot raise the descriptor limit: {e}");
    }
    let cfg = FanoutConfig {
        addr: cli.addr,
        members: cli.members,
        size: cli.size,
        lines: cli.lines,
        duration: cli.duration,
        warmup: cli.warmup,
        window: cli.window,
        server_pid: cli.server_pid,
        wait_for_go: cli.wait_for_go,
        timeout: cli.timeout,
    };
    match fanout::run(&cfg) {
        Ok(summary) => {
            if cli.json {
                println!("{}", summary.to_json());
            } else {
                print!("{}", summary.to_table());
            }
            if summary.errors == 0 && summary.first_error.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("fanout: {e}");
            ExitCode::FAILURE
        }
    }
}
