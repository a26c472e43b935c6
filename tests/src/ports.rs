//! Ports for programs that take no port 0 (`redis-server`, `chromedriver`,
//! `systemd-socket-activate`).
//!
//! The usual trick, binding port 0 and closing the socket to learn a free port, hands such a
//! program a port from the kernel's ephemeral range (`ip_local_port_range`), and every connect
//! and every `bind` to port 0 of the tests running beside it draws from that range: one of them
//! can take the port before the program binds it, or while a server restarted on its port is
//! down. The kernel hands out no port below the range, so one found there stays free until the
//! program binds it.

use std::io;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port tried: above the well-known and most registered services' ports.
const FLOOR: u32 = 10_000;

/// Successive calls in one process try successive ports, so tests running at once never
/// pick the same one.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A port of 127.0.0.1 below the kernel's ephemeral range, free for TCP and UDP when asked.
///
/// # Errors
/// `AddrInUse` if every port between 10,000 and the ephemeral range is taken.
pub fn unassigned_port() -> io::Result<u16> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768)
        .min(65_536);
    let span = low.saturating_sub(FLOOR).max(1);
    // Test binaries run one after another; the pid spreads them over the span anyway, so a
    // port a finished binary's program still held a moment ago is unlikely to come up again.
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FLOOR + (start + n) % span) as u16;
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port));
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, port));
        if tcp.is_ok() && udp.is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free port below the ephemeral range",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_distinct_and_free() {
        let low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .expect("the range")
            .split_whitespace()
            .next()
            .expect("two numbers")
            .parse()
            .expect("a number");
        let a = unassigned_port().expect("a port");
        let b = unassigned_port().expect("another");
        assert_ne!(a, b);
        for port in [a, b] {
            assert!((FLOOR..low).contains(&u32::from(port)), "{port}");
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("still free");
        }
    }
}
