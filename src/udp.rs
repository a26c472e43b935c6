//! `evdrive udp-echo`: the UDP echo sample on one reactor (S30).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Args;
use protocols::udp_echo::UdpEcho;
use reactor::sys::SIGUSR1;
use reactor::{Reactor, SendPolicy, UdpConfig};

/// The default port, shared with the TCP echo (a UDP and a TCP port are distinct).
const UDP_ECHO_PORT: u16 = 7007;

/// Options of `evdrive udp-echo`.
#[derive(Args, Debug)]
pub(crate) struct UdpEchoArgs {
    /// Address to bind; default 127.0.0.1:7007 (port 0 picks a free port; the bound address
    /// is printed). A UDP socket passed by socket activation (LISTEN_FDS) is served instead.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Datagrams read per system call (recvmmsg); 1 reads with one recvmsg per datagram.
    /// Above 1, the replies of each batch also go out together with one sendmmsg.
    #[arg(long, default_value_t = 16, value_name = "N")]
    batch: usize,
    /// The largest datagram echoed; longer ones are reported as truncated and dropped.
    #[arg(long, default_value_t = 65_536, value_name = "BYTES")]
    max_datagram: usize,
    /// Drop a reply the kernel cannot take at once instead of queueing it.
    #[arg(long)]
    drop_when_full: bool,
}

/// Serves UDP echo until SIGINT or SIGTERM (a graceful shutdown: the echoes still queued go
/// out within a second, then the socket closes); SIGUSR1 prints the socket and its counters.
pub(crate) fn run(args: &UdpEchoArgs) -> io::Result<()> {
    let addr = args.listen.unwrap_or(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        UDP_ECHO_PORT,
    ));
    let policy = if args.drop_when_full {
        SendPolicy::Drop
    } else {
        SendPolicy::Queue
    };
    let config = UdpConfig::new()
        .with_batch(args.batch)
        .with_batch_sends(args.batch > 1)
        .with_max_datagram(args.max_datagram)
        .with_policy(policy);
    // A socket passed by socket activation is served instead of binding --listen.
    let mut given = reactor::activation::listen_fds()?;
    if given.len() > 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} sockets passed: udp-echo serves one", given.len()),
        ));
    }
    let mut reactor = Reactor::new(())?;
    let id = match given.pop() {
        Some(socket) => {
            log::info!("serving the socket given to this process, not {addr}");
            reactor
                .cx()
                .adopt_udp(socket.into_udp_socket()?, config, UdpEcho)?
        }
        None => reactor.cx().bind_udp(addr, config, UdpEcho)?,
    };
    let bound = reactor
        .cx()
        .udp_local_addr(id)
        .ok_or_else(|| io::Error::other("the bound socket has no address"))?;
    reactor.catch_signals(
        &[SIGUSR1],
        Some(Duration::from_secs(1)),
        Some(Box::new(|cx, sig| {
            if sig == SIGUSR1 {
                for socket in cx.udp_sockets() {
                    eprintln!("{socket}");
                }
            }
        })),
    )?;
    eprintln!("evdrive udp-echo listening on {bound}");
    reactor.run()?;
    // The shutdown closed the socket: the reactor's counters outlive it.
    let stats = reactor.stats();
    log::info!(
        "udp-echo: {} sockets open, received {}, sent {}, dropped {}",
        stats.udp_sockets,
        stats.datagrams_in,
        stats.datagrams_out,
        stats.datagrams_dropped
    );
    Ok(())
}
