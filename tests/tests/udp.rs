//! UDP sockets over real sockets on 127.0.0.1 (S30): the refused connected socket, truncation,
//! a burst whose every datagram is accounted for, and real clients (`nc -u`, `socat`).
//!
//! The reactor runs on the test thread, turned until the event a test waits for; clients run
//! on threads or as subprocesses. Every wait is bounded by [`WAIT`], so a broken reactor fails
//! a test instead of hanging it.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use evdrive_tests::{localhost, WAIT};
use protocols::udp_echo::UdpEcho;
use reactor::{CloseReason, Datagrams, Reactor, UdpConfig, UdpCx};

/// What the test handlers saw.
#[derive(Default)]
struct Log {
    datagrams: Vec<(Vec<u8>, SocketAddr)>,
    truncated: Vec<(Vec<u8>, SocketAddr)>,
    closed: Option<CloseReason>,
}

/// Records every datagram; on open, sends `hello` (connected sockets only).
struct Recorder {
    hello: Option<&'static [u8]>,
}

impl Datagrams<Log> for Recorder {
    fn on_open(&mut self, cx: &mut UdpCx<'_, Log>) {
        if let Some(hello) = self.hello {
            cx.send(hello)
                .expect("the first send on a connected socket");
        }
    }
    fn on_datagram(&mut self, cx: &mut UdpCx<'_, Log>, data: &[u8], from: SocketAddr) {
        cx.app().datagrams.push((data.to_vec(), from));
    }
    fn on_truncated(&mut self, cx: &mut UdpCx<'_, Log>, head: &[u8], from: SocketAddr) {
        cx.app().truncated.push((head.to_vec(), from));
    }
    fn on_close(&mut self, app: &mut Log, reason: CloseReason) {
        assert!(app.closed.is_none(), "on_close runs once");
        app.closed = Some(reason);
    }
}

/// Turns `reactor` until `done` says so, failing after [`WAIT`].
fn turn_until<App>(
    reactor: &mut Reactor<App>,
    what: &str,
    mut done: impl FnMut(&mut Reactor<App>) -> bool,
) -> io::Result<()> {
    let deadline = Instant::now() + WAIT;
    while !done(reactor) {
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("waiting for {what}"),
            ));
        }
        reactor.turn(Some(Duration::from_millis(10)))?;
    }
    Ok(())
}

/// S30: a datagram to a closed port comes back as ICMP port unreachable, and the connected
/// socket's next operation reports it: the reactor closes it with `Refused`.
#[test]
fn connected_udp_to_a_closed_port_is_refused() -> io::Result<()> {
    evdrive_tests::init_log();
    // A port nobody listens on: bound, read, released.
    let closed = UdpSocket::bind(localhost())?.local_addr()?;
    let mut reactor = Reactor::new(Log::default())?;
    let id = reactor.cx().connect_udp(
        closed,
        UdpConfig::new(),
        Recorder {
            hello: Some(b"anyone?"),
        },
    )?;
    assert_eq!(reactor.cx().udp_peer_addr(id), Some(closed));
    turn_until(&mut reactor, "the refusal", |r| r.app().closed.is_some())?;
    assert!(
        matches!(reactor.app().closed, Some(CloseReason::Refused)),
        "closed with {:?}",
        reactor.app().closed
    );
    assert!(reactor.cx().udp_stats(id).is_none(), "the socket is gone");
    Ok(())
}

/// S30: a datagram longer than the read buffer is reported as truncated (its head only), never
/// delivered as if whole; the next datagram arrives whole. `batch` 1 reads with `recvmsg`,
/// more with `recvmmsg`: both see `MSG_TRUNC`.
fn truncation_is_reported(batch: usize) -> io::Result<()> {
    evdrive_tests::init_log();
    let mut reactor = Reactor::new(Log::default())?;
    let config = UdpConfig::new().with_max_datagram(1024).with_batch(batch);
    let id = reactor
        .cx()
        .bind_udp(localhost(), config, Recorder { hello: None })?;
    let server = reactor.cx().udp_local_addr(id).expect("bound");
    let client = UdpSocket::bind(localhost())?;
    let big: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    client.send_to(&big, server)?;
    client.send_to(&[7u8; 100], server)?;
    turn_until(&mut reactor, "both datagrams", |r| {
        r.app().truncated.len() + r.app().datagrams.len() >= 2
    })?;
    let me = client.local_addr()?;
    let log = reactor.app();
    assert_eq!(log.truncated.len(), 1);
    assert_eq!(log.truncated[0].0, big[..1024], "the head, nothing more");
    assert_eq!(log.truncated[0].1, me);
    assert_eq!(
        log.datagrams,
        vec![(vec![7u8; 100], me)],
        "the next one whole"
    );
    let stats = reactor.cx().udp_stats(id).expect("open");
    assert_eq!((stats.received, stats.truncated), (2, 1));
    Ok(())
}

#[test]
fn truncation_is_reported_by_recvmmsg() -> io::Result<()> {
    truncation_is_reported(16)
}

#[test]
fn truncation_is_reported_by_recvmsg() -> io::Result<()> {
    truncation_is_reported(1)
}

/// Datagrams the kernel dropped at the receive queue of the UDP socket bound to `port` on
/// 127.0.0.1 (the `drops` column of `/proc/net/udp`).
fn kernel_drops(port: u16) -> io::Result<u64> {
    let table = std::fs::read_to_string("/proc/net/udp")?;
    let local = format!("0100007F:{port:04X}");
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) == Some(&local.as_str()) {
            return fields
                .last()
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| io::Error::other(format!("no drops column in {line:?}")));
        }
    }
    Err(io::Error::other(format!("{local} is not in /proc/net/udp")))
}

/// The burst's datagrams: a sequence number and a pattern that shows any damage.
const BURST: u64 = 10_000;
const DATAGRAM: usize = 64;

fn burst_datagram(seq: u64) -> [u8; DATAGRAM] {
    let mut d = [0u8; DATAGRAM];
    d[..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in d[8..].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_add(i) as u8;
    }
    d
}

/// S30: a burst of 10,000 datagrams at the echo server: every datagram is accounted for,
/// exactly. The client sends as fast as it can; each datagram is then either received by the
/// server or dropped by the kernel at the server's receive queue, and each one received is
/// either echoed (sent), dropped by the reactor (send queue full) or still queued; each reply
/// sent is either received by the client or dropped by the kernel at the client's receive
/// queue. The kernel's drops are read per socket from `/proc/net/udp`.
#[test]
fn burst_of_10000_datagrams_adds_up() -> io::Result<()> {
    evdrive_tests::init_log();
    let mut reactor = Reactor::new(())?;
    // Replies go out in one sendmmsg per read batch, with their addresses.
    let config = UdpConfig::new()
        .with_queue(64, 64 * DATAGRAM)
        .with_batch_sends(true);
    let id = reactor.cx().bind_udp(localhost(), config, UdpEcho)?;
    let server = reactor.cx().udp_local_addr(id).expect("bound");
    let client = UdpSocket::bind(localhost())?;
    let client_port = client.local_addr()?.port();
    let reader = client.try_clone()?;
    reader.set_read_timeout(Some(Duration::from_millis(50)))?;

    // The sender: the whole burst, as fast as the kernel takes it.
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let sent = Arc::clone(&sent);
        std::thread::spawn(move || -> io::Result<()> {
            for seq in 0..BURST {
                client.send_to(&burst_datagram(seq), server)?;
                sent.fetch_add(1, Ordering::Release);
            }
            Ok(())
        })
    };
    // The reader: counts the replies and checks each is a whole datagram seen once. The read
    // timeout only lets it notice `stop`.
    let replies = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (bad_tx, bad_rx) = mpsc::channel::<String>();
    let receiver = {
        let (replies, stop) = (Arc::clone(&replies), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut seen = vec![false; BURST as usize];
            let mut buf = [0u8; 2 * DATAGRAM];
            while !stop.load(Ordering::Acquire) {
                let Ok(n) = reader.recv(&mut buf) else {
                    continue;
                };
                let seq = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
                if n != DATAGRAM || seq >= BURST || buf[..n] != burst_datagram(seq) {
                    let _ = bad_tx.send(format!("damaged reply of {n} bytes"));
                } else if std::mem::replace(&mut seen[seq as usize], true) {
                    let _ = bad_tx.send(format!("reply {seq} twice"));
                }
                replies.fetch_add(1, Ordering::Release);
            }
        })
    };

    let mut last = None;
    let result = turn_until(&mut reactor, "every datagram accounted for", |r| {
        let stats = r.cx().udp_stats(id).expect("open");
        let (Ok(server_drops), Ok(client_drops)) =
            (kernel_drops(server.port()), kernel_drops(client_port))
        else {
            return false;
        };
        let sent = sent.load(Ordering::Acquire);
        let replies = replies.load(Ordering::Acquire);
        last = Some((sent, stats.clone(), server_drops, replies, client_drops));
        sent == BURST
            && stats.received + server_drops == sent
            && stats.queued == 0
            && stats.sent + stats.dropped == stats.received
            && replies + client_drops == stats.sent
    });
    stop.store(true, Ordering::Release);
    sender.join().expect("sender")?;
    receiver.join().expect("receiver");
    if let Ok(bad) = bad_rx.try_recv() {
        panic!("{bad}");
    }
    let (sent, stats, server_drops, replies, client_drops) = last.expect("checked once");
    eprintln!(
        "sent {sent}: server received {} (kernel dropped {server_drops}), echoed {}, dropped {}; \
         client got {replies} (kernel dropped {client_drops}); {} receive calls, {} send calls",
        stats.received, stats.sent, stats.dropped, stats.recv_calls, stats.send_calls
    );
    result?;
    assert!(stats.received <= sent);
    assert_eq!(replies + client_drops + stats.dropped + server_drops, sent);
    assert_eq!(stats.truncated, 0);
    Ok(())
}

/// Runs `client` with `input` on its stdin against a UDP echo reactor on this thread, turning
/// the reactor until the client exits; returns the client's stdout. A missing tool fails.
fn echo_with_client(program: &str, args: &[&str], input: &[u8]) -> io::Result<Vec<u8>> {
    evdrive_tests::init_log();
    let mut reactor = Reactor::new(())?;
    let id = reactor
        .cx()
        .bind_udp(localhost(), UdpConfig::new(), UdpEcho)?;
    let port = reactor.cx().udp_local_addr(id).expect("bound").port();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("PORT", &port.to_string()))
        .collect();
    let mut child = Command::new(program)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("running {program} (installed?): {e}")))?;
    {
        use std::io::Write;
        // Dropped at the end of the block: end of input.
        let mut stdin = child.stdin.take().expect("piped");
        stdin.write_all(input)?;
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let mut output = None;
    turn_until(&mut reactor, &format!("{program} to finish"), |_| {
        if output.is_none() {
            output = rx.try_recv().ok();
        }
        output.is_some()
    })?;
    let output = output.expect("finished")?;
    assert!(
        output.status.success(),
        "{program} failed: {:?}",
        output.status
    );
    let stats = reactor.cx().udp_stats(id).expect("open");
    assert!(stats.received >= 1 && stats.sent == stats.received);
    Ok(output.stdout)
}

/// S10, S30: `socat` sends a line as one datagram and prints the echo.
#[test]
fn socat_udp_round_trip() -> io::Result<()> {
    let out = echo_with_client(
        "socat",
        &["-t", "1", "-", "UDP:127.0.0.1:PORT"],
        b"hello udp\n",
    )?;
    assert_eq!(out, b"hello udp\n");
    Ok(())
}

/// S10, S30: `nc -u` sends a line as one datagram and prints the echo.
#[test]
fn nc_udp_round_trip() -> io::Result<()> {
    let out = echo_with_client("nc", &["-u", "-w1", "127.0.0.1", "PORT"], b"hello nc\n")?;
    assert_eq!(out, b"hello nc\n");
    Ok(())
}
