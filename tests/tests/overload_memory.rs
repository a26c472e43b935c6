//! Memory per idle connection (S25), measured with a counting global allocator: the live heap
//! bytes of the whole process, before and after opening thousands of idle connections.
//!
//! This file holds one test only: the allocator counts every thread of the process, and a test
//! running beside it would be counted too.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use evdrive_tests::Server;
use protocols::echo::Echo;
use reactor::sys::alloc_count::CountingAlloc;
use reactor::{ConnConfig, ListenOptions};

/// The system allocator, counting live bytes over the whole process.
#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc::new();

/// Idle connections of the measurement.
const CONNS: usize = 2000;
/// Bytes each client sends (and gets back) in the traffic phase: a buffer kept afterwards
/// would cost at least this much per connection.
const MESSAGE: usize = 1000;
/// The bound per idle connection.
const PER_CONN_BOUND: isize = 1024;

fn live() -> isize {
    ALLOCATOR.live_bytes()
}

/// S25, S16: 2000 idle echo connections, each with its idle timeout armed, cost less than
/// 1 KiB of heap each in the whole process (slab slot, timer, handler; the clients' sockets
/// allocate nothing). After every connection echoed 1000 bytes and went idle again, the live
/// bytes are back where they were: no read or write buffer is kept by an idle connection.
#[test]
fn idle_connections_hold_no_buffers() -> io::Result<()> {
    // Clients and server connections share this process: make room for both.
    if let Ok((soft, hard)) = reactor::sys::nofile_limit() {
        if soft < hard {
            reactor::sys::set_nofile_limit(hard)?;
        }
    }
    let opts = ListenOptions::default()
        .with_backlog(4096)
        .with_conn(ConnConfig::default().with_idle_timeout(Some(Duration::from_secs(600))));
    let server = Server::listen(|| (), opts, |_, _| Echo)?;
    let addr = server.addr();
    let message = vec![b'm'; MESSAGE];
    let mut reply = vec![0u8; MESSAGE];

    // 1. Warm up: the first connections and the first traffic grow the reactor's reusable
    // lists; they are not per-connection costs.
    for _ in 0..3 {
        let mut warm = TcpStream::connect(addr)?;
        warm.write_all(&message)?;
        warm.read_exact(&mut reply)?;
    }
    server
        .wait_for(evdrive_tests::WAIT, |r| (r.stats().open == 0).then_some(()))
        .expect("warm-up connections did not close");
    let mut clients = Vec::with_capacity(CONNS);
    let baseline = live();

    // 2. Open the connections and let them sit idle.
    for _ in 0..CONNS {
        let client = TcpStream::connect(addr)?;
        client.set_read_timeout(Some(evdrive_tests::WAIT))?;
        clients.push(client);
    }
    let wait_all = Duration::from_secs(20);
    server
        .wait_for(wait_all, |r| {
            let s = r.stats();
            (s.open == CONNS as u64 && s.timers_armed >= CONNS as u64).then_some(())
        })
        .expect("not every connection was accepted");
    let idle = live() - baseline;
    let per_conn = idle / CONNS as isize;

    // 3. Traffic on every connection, then idle again.
    for client in &mut clients {
        client.write_all(&message)?;
        client.read_exact(&mut reply)?;
        assert_eq!(reply, message);
    }
    let stats = server.stats();
    assert_eq!(stats.queued_bytes, 0);
    assert_eq!(stats.bytes_out, ((CONNS + 3) * MESSAGE) as u64);
    let after = live() - baseline;
    let grown = (after - idle) / CONNS as isize;
    eprintln!(
        "{CONNS} idle connections: {idle} B live, {per_conn} B per connection; \
         after traffic: {after} B ({grown:+} B per connection)"
    );
    assert!(
        per_conn < PER_CONN_BOUND,
        "{per_conn} B per idle connection"
    );
    // Allocator-level noise only: a kept buffer would add at least MESSAGE bytes each.
    assert!(grown < 64, "{grown} B per connection kept after traffic");

    drop(clients);
    server
        .wait_for(wait_all, |r| (r.stats().open == 0).then_some(()))
        .expect("connections did not close");
    server.shutdown(Duration::from_secs(1))
}
