//! UDP echo load generator: `--sockets` client sockets, each keeping `--window` datagrams of
//! `--size` bytes in flight against an echo server, for `--secs` seconds after `--warmup`.
//!
//! ```text
//! udp_load --target 127.0.0.1:7004 --sockets 16 --window 8 --size 64 --secs 5
//! ```
//!
//! Every reply sends the next datagram on its socket (a closed loop, so the rate is what the
//! server sustains). UDP may lose datagrams: a socket that heard nothing for 100 ms counts its
//! window as lost and sends a new one. Prints one line: `replies=N total=N sent=N lost=N
//! secs=S rate=R` (rate: replies per second over the measured window; total: replies
//! including the warm-up).
#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

#[derive(Debug, Parser)]
#[command(about = "UDP echo load generator")]
struct Cli {
    /// The echo server.
    #[arg(long)]
    target: SocketAddr,
    /// Client sockets (each from its own port).
    #[arg(long, default_value_t = 16)]
    sockets: usize,
    /// Datagrams in flight per socket.
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// Datagram size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
}

/// One client socket and its datagrams in flight.
struct Client {
    socket: UdpSocket,
    in_flight: usize,
    last_reply: Instant,
}

/// How long a socket waits for any reply before it counts its window as lost.
const LOSS_TIMEOUT: Duration = Duration::from_millis(100);

fn main() -> io::Result<()> {
    let cli = Cli::parse();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let payload = vec![b'x'; cli.size];
    let mut buf = vec![0u8; 65_536];
    let mut clients = Vec::with_capacity(cli.sockets);
    for i in 0..cli.sockets {
        let mut socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
        socket.connect(cli.target)?;
        poll.registry()
            .register(&mut socket, Token(i), Interest::READABLE)?;
        clients.push(Client {
            socket,
            in_flight: 0,
            last_reply: Instant::now(),
        });
    }
    let (mut sent, mut lost, mut replies) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(cli.warmup);
    let end = measure_from + Duration::from_secs_f64(cli.secs);
    let mut measured: Option<(Instant, u64)> = None;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if measured.is_none() && now >= measure_from {
            measured = Some((now, replies));
        }
        // Refill every window (and give up on windows that went silent).
        for c in clients.iter_mut() {
            if c.in_flight > 0 && now.duration_since(c.last_reply) > LOSS_TIMEOUT {
                lost += c.in_flight as u64;
                c.in_flight = 0;
            }
            while c.in_flight < cli.window {
                match c.socket.send(&payload) {
                    Ok(_) => {
                        c.in_flight += 1;
                        sent += 1;
                        c.last_reply = c.last_reply.max(now - LOSS_TIMEOUT / 2);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                    Err(e) => return Err(e),
                }
            }
        }
        poll.poll(&mut events, Some(Duration::from_millis(20)))?;
        for event in events.iter() {
            let c = &mut clients[event.token().0];
            loop {
                match c.socket.recv(&mut buf) {
                    Ok(_) => {
                        replies += 1;
                        c.in_flight = c.in_flight.saturating_sub(1);
                        c.last_reply = Instant::now();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let (t0, r0) = measured.unwrap_or((start, 0));
    let secs = t0.elapsed().as_secs_f64();
    let got = replies - r0;
    println!(
        "replies={got} total={replies} sent={sent} lost={lost} secs={secs:.3} rate={:.0}",
        got as f64 / secs
    );
    Ok(())
}
