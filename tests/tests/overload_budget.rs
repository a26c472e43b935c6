//! The loop-wide output budget (`Limits::output_budget`): many peers that never read cannot
//! make the reactor queue more than the budget; the connections with the largest queues are
//! shed first, and the process's memory stays near the budget.

use std::io::{self, Write};
use std::net::TcpStream;
use std::time::Duration;

use evdrive_tests::{connect_with, localhost, observe, set_recv_buffer, Event, Server, WAIT};
use reactor::{CloseKind, ConnConfig, ConnId, Cx, Limits, ListenOptions, Protocol};

const MIB: usize = 1024 * 1024;
/// The output budget under test.
const BUDGET: usize = 4 * MIB;
/// Peers that ask for 1 MiB each after the big one.
const SMALL_PEERS: usize = 30;

/// The user state: the open connections and the largest total queue seen.
#[derive(Default)]
struct Budget {
    conns: Vec<ConnId>,
    /// The most output bytes queued across all connections, sampled after every write and by
    /// a periodic task.
    max_queued: usize,
}

/// Every request byte `n` asks for `n` responses of 1 MiB each (fresh memory each time, so
/// the process's memory follows what is queued).
struct Requester;

impl Protocol<Budget> for Requester {
    fn on_open(&mut self, cx: &mut Cx<'_, Budget>) {
        let id = cx.id();
        cx.app().conns.push(id);
    }

    fn on_data(&mut self, cx: &mut Cx<'_, Budget>, data: &[u8]) -> usize {
        for &n in data {
            for _ in 0..n {
                if cx.write_vec(vec![b'x'; MIB]).is_err() {
                    return data.len();
                }
                let conns = std::mem::take(&mut cx.app().conns);
                let queued = conns.iter().map(|&c| cx.queued_on(c)).sum::<usize>();
                let app = cx.app();
                app.conns = conns;
                app.max_queued = app.max_queued.max(queued);
            }
        }
        data.len()
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Budget>, _reason: reactor::CloseReason) {
        let id = cx.id();
        cx.app().conns.retain(|&c| c != id);
    }
}

/// A value (in kB) of this process's `/proc/self/status`.
fn proc_status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// A client with a small receive buffer that sends `request` and never reads.
fn silent_peer(addr: std::net::SocketAddr, request: u8) -> io::Result<TcpStream> {
    let mut peer = connect_with(addr, |fd| set_recv_buffer(fd, 4096))?;
    peer.write_all(&[request])?;
    Ok(peer)
}

/// S21, S25: with a 4 MiB budget, one peer asks for 3 MiB and thirty more for 1 MiB each,
/// and none of them reads (per-connection `max_output` is 64 MiB, so only the budget bites).
/// The total queue never exceeds the budget (sampled after every write inside the handler and
/// by a 1 ms task), the first connection shed is the big one (largest queue first) with
/// `SlowConsumer`, `budget_sheds` counts the sheds, and the peak resident memory of the
/// process stays within the budget plus a margin, far below the 33 MiB asked for.
#[test]
fn the_output_budget_bounds_queues_and_memory() -> io::Result<()> {
    evdrive_tests::init_log();
    let (watch, mut observer) = observe();
    let opts = ListenOptions::default()
        // Small kernel buffers: nearly all of a response waits in the reactor's queue.
        .with_send_buffer_size(Some(16 * 1024))
        .with_conn(ConnConfig::default().with_max_output(64 * MIB));
    let server = Server::start(Budget::default, move |r| {
        r.set_limits(Limits::default().with_output_budget(Some(BUDGET)));
        r.cx().every(Duration::from_millis(1), |cx| {
            let queued = cx.stats().queued_bytes as usize;
            let app = cx.app();
            app.max_queued = app.max_queued.max(queued);
            true
        });
        let id = r.listen(localhost(), opts, move |_, _| watch.wrap(Requester))?;
        r.listener_addr(id)
    })?;
    let rss_before = proc_status_kb("VmRSS:");

    // 1. The big peer: 3 MiB queued.
    let mut peers = vec![silent_peer(server.addr(), 3)?];
    let big = observer.wait_open(&[]);
    server
        .wait_for(WAIT, |r| {
            (r.stats().queued_bytes >= 2 * MIB as u64).then_some(())
        })
        .expect("the big response never queued");

    // 2. Thirty small peers: 1 MiB each, 33 MiB asked for in all.
    for _ in 0..SMALL_PEERS {
        peers.push(silent_peer(server.addr(), 1)?);
    }
    let requests = 1 + SMALL_PEERS as u64;
    server
        .wait_for(WAIT, move |r| {
            (r.stats().bytes_in == requests).then_some(())
        })
        .expect("not every request arrived");

    // 3. The budget held, the big queue went first, and only slow consumers were shed.
    let (stats, max_queued) = server.with(|r| (r.stats().clone(), r.app().max_queued));
    assert!(
        max_queued <= BUDGET,
        "{max_queued} B queued, budget {BUDGET}"
    );
    assert!(stats.queued_bytes as usize <= BUDGET, "{stats:?}");
    assert!(stats.budget_sheds > 0, "{stats:?}");
    let closes = observer.closes();
    assert_eq!(closes.first().map(|c| c.0), Some(big), "{closes:?}");
    assert!(
        closes
            .iter()
            .all(|&(_, kind)| kind == CloseKind::SlowConsumer),
        "{closes:?}"
    );
    assert_eq!(closes.len() as u64, stats.budget_sheds, "{stats:?}");
    assert!(observer
        .seen()
        .iter()
        .all(|e| !matches!(e, Event::Close(_, CloseKind::Protocol, _))));

    // 4. Memory: the peak resident set grew by about the budget, not by what was asked for.
    let peak = proc_status_kb("VmHWM:");
    let grown_mib = peak.saturating_sub(rss_before) as f64 / 1024.0;
    eprintln!(
        "queued at most {:.2} MiB (budget 4 MiB); peak RSS {:.1} MiB over the start ({} sheds)",
        max_queued as f64 / MIB as f64,
        grown_mib,
        stats.budget_sheds
    );
    assert!(
        grown_mib < (BUDGET / MIB) as f64 + 12.0,
        "peak RSS grew by {grown_mib:.1} MiB"
    );

    drop(peers);
    server.shutdown(Duration::from_secs(1))?;
    observer.assert_closed_once();
    Ok(())
}
