//! Ports for programs that take no port 0 (`redis-server`, `systemd-socket-activate`).
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

    /// The ports are in range and distinct, and a port something holds is never handed out.
    /// (Whether a returned port is still free a moment later is not asserted: any other
    /// program on the machine may bind it in between, which is why callers that start a
    /// program on it try another port when the program cannot bind.)
    #[test]
    fn ports_are_below_the_ephemeral_range_distinct_and_never_held() {
        let low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .expect("the range")
            .split_whitespace()
            .next()
            .expect("two numbers")
            .parse()
            .expect("a number");
        let mut held = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let port = unassigned_port().expect("a port");
            assert!((FLOOR..low).contains(&u32::from(port)), "{port}");
            assert!(seen.insert(port), "{port} handed out twice");
            // Hold every port handed out (when it can still be bound) for the rest of the
            // test; the held ones must never come back.
            if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                held.push(listener);
            }
        }
        // Every port of the span is tried before giving up, so with the first port held the
        // search wraps past it: NEXT is rewound to the held port's position and it must be
        // skipped.
        let Some(first) = held.first() else {
            return;
        };
        let first_port = first.local_addr().expect("bound").port();
        let span = low.saturating_sub(FLOOR).max(1);
        let start = std::process::id().wrapping_mul(7_919) % span;
        let position = (u32::from(first_port) - FLOOR + span - start) % span;
        NEXT.store(position, Ordering::Relaxed);
        let next = unassigned_port().expect("a port");
        assert_ne!(next, first_port, "a held port was handed out");
    }
}
