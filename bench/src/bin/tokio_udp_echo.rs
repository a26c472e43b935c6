//! UDP echo written the way tokio users write one: one `UdpSocket`, a `recv_from` /
//! `send_to` loop on a current-thread runtime. A peer for the UDP comparison, not a tuned
//! server.
//!
//! ```text
//! tokio_udp_echo --listen 127.0.0.1:7005
//! ```
//!
//! Try `nc -u 127.0.0.1 7005`: every line typed comes back.
#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;

use clap::Parser;
use tokio::net::UdpSocket;

#[derive(Debug, Parser)]
#[command(about = "Tokio UDP echo server (comparison peer)")]
struct Cli {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1:7005")]
    listen: SocketAddr,
}

fn main() -> io::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async {
        let socket = UdpSocket::bind(cli.listen).await?;
        eprintln!("tokio_udp_echo listening on {}", socket.local_addr()?);
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, from) = socket.recv_from(&mut buf).await?;
            // A reply the kernel refuses is lost, as UDP allows.
            let _ = socket.send_to(&buf[..n], from).await;
        }
    })
}
