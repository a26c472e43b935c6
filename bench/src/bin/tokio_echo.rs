//! Echo server written the way tokio users write one: a task per connection, an 8 KiB buffer,
//! a `read` / `write_all` loop. A peer for the comparison, not a tuned server.
//!
//! ```text
//! tokio_echo --listen 127.0.0.1:7001 --flavor current_thread
//! tokio_echo --listen 127.0.0.1:7002 --flavor multi_thread --workers 2
//! ```
//!
//! Connect with `nc 127.0.0.1 7001`: every line typed comes back.
#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;

use clap::{Parser, ValueEnum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Flavor {
    /// One thread runs everything.
    #[value(name = "current_thread", alias = "current-thread")]
    CurrentThread,
    /// A work-stealing pool of `--workers` threads.
    #[value(name = "multi_thread", alias = "multi-thread")]
    MultiThread,
}

#[derive(Debug, Parser)]
#[command(about = "Tokio echo server (comparison peer)")]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7001")]
    listen: SocketAddr,
    /// Runtime flavor.
    #[arg(long, value_enum, default_value_t = Flavor::CurrentThread)]
    flavor: Flavor,
    /// Worker threads of the multi-thread runtime.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

fn main() -> io::Result<()> {
    let cli = Cli::parse();
    let runtime = match cli.flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?,
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.workers)
            .enable_io()
            .build()?,
    };
    runtime.block_on(serve(cli.listen))
}

/// Accepts forever, one task per connection.
async fn serve(addr: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                tokio::spawn(echo(socket));
            }
            // Out of descriptors or a connection that died in the backlog: keep serving.
            Err(e) => eprintln!("tokio_echo: accept: {e}"),
        }
    }
}

/// Echoes one connection until it closes or fails.
async fn echo(mut socket: TcpStream) {
    let _ = socket.set_nodelay(true);
    let mut buf = vec![0; 8192];
    loop {
        let n = match socket.read(&mut buf).await {
            // The peer closed its side.
            Ok(0) => return,
            Ok(n) => n,
            // Reset or any other failure ends the connection.
            Err(_) => return,
        };
        if socket.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
