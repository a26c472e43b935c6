//! A graceful shutdown ends UDP sockets (S30) as it ends connections: reading stops at once,
//! what was queued goes out, then the handler hears `Shutdown` once and `run` may return;
//! past the grace what is still queued is dropped and counted. Driven through the in-memory
//! datagram pipe (its send budget makes the kernel's `EAGAIN`) on the harness clock.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use evdrive_reactor::testing::Harness;
use evdrive_reactor::{CloseReason, Datagrams, Sent, TimerId, UdpConfig, UdpCx};

/// What the handler saw.
#[derive(Default, Debug)]
struct Log {
    datagrams: usize,
    writable: usize,
    timers: usize,
    closed: Vec<CloseReason>,
}

/// Echoes every datagram; records every callback.
struct Echo;

impl Datagrams<Log> for Echo {
    fn on_open(&mut self, cx: &mut UdpCx<'_, Log>) {
        cx.set_timer(Duration::from_secs(1), 7).expect("open");
    }
    fn on_datagram(&mut self, cx: &mut UdpCx<'_, Log>, data: &[u8], from: SocketAddr) {
        cx.app().datagrams += 1;
        cx.send_to(data, from).expect("no send error is injected");
    }
    fn on_writable(&mut self, cx: &mut UdpCx<'_, Log>) {
        cx.app().writable += 1;
    }
    fn on_timer(&mut self, cx: &mut UdpCx<'_, Log>, _timer: TimerId) {
        cx.app().timers += 1;
    }
    fn on_close(&mut self, app: &mut Log, reason: CloseReason) {
        app.closed.push(reason);
    }
}

fn local() -> SocketAddr {
    "127.0.0.1:9000".parse().unwrap()
}

fn client() -> SocketAddr {
    "127.0.0.1:5555".parse().unwrap()
}

const GRACE: Duration = Duration::from_secs(2);

/// S30: two echoes wait in the queue (`EAGAIN`) when the shutdown begins. The socket drains:
/// a datagram arriving now is not delivered, no send is taken, no timer fires; once the kernel
/// takes the two, the socket closes with `Shutdown`, once, and the loop is finished.
#[test]
fn shutdown_sends_the_queue_then_closes_once() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let (id, peer) = h.bind_udp(local(), None, UdpConfig::new(), Echo);
    peer.set_send_budget(Some(1));
    for seq in 0..3u8 {
        peer.send(&[seq; 8], client());
    }
    h.settle()?;
    assert_eq!(h.reactor().cx().udp_stats(id).unwrap().queued, 2);

    h.reactor().shutdown(GRACE);
    h.settle()?;
    assert!(!h.reactor().is_finished(), "two datagrams still queued");
    let sockets = h.reactor().udp_sockets();
    assert_eq!(sockets.len(), 1);
    assert_eq!(sockets[0].state, "draining");
    assert_eq!(sockets[0].stats.queued, 2);
    assert_eq!(h.reactor().stats().udp_sockets, 1);
    // Draining: input is no longer read, and sends are refused.
    peer.send(b"late", client());
    h.settle()?;
    assert_eq!(h.app().datagrams, 3);
    assert!(h.reactor().cx().udp_send_to(id, b"new", client()).is_err());
    // The handler's timer (due at 1 s) was cancelled with the drain.
    h.advance(Duration::from_millis(1500))?;
    assert_eq!(h.app().timers, 0);
    assert!(h.app().closed.is_empty());

    peer.set_send_budget(None);
    h.settle()?;
    let sent = peer.take_sent();
    assert_eq!(sent.len(), 3, "every echo went out: {sent:?}");
    assert_eq!(h.app().closed.len(), 1);
    assert!(matches!(h.app().closed[0], CloseReason::Shutdown));
    assert_eq!(
        h.app().writable,
        0,
        "no callback but on_close once draining"
    );
    assert!(h.reactor().is_finished());
    let stats = h.reactor().stats().clone();
    assert_eq!(stats.udp_sockets, 0);
    assert_eq!(
        (
            stats.datagrams_in,
            stats.datagrams_out,
            stats.datagrams_dropped
        ),
        (3, 3, 0)
    );
    assert!(h.reactor().udp_sockets().is_empty());
    // The grace timer firing later finds nothing to do: still one close.
    h.advance(GRACE)?;
    assert_eq!(h.app().closed.len(), 1);
    Ok(())
}

/// S30: a socket with nothing queued closes in the turn the shutdown begins.
#[test]
fn shutdown_closes_an_idle_socket_at_once() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let (_id, _peer) = h.bind_udp(local(), None, UdpConfig::new(), Echo);
    h.settle()?;
    h.reactor().shutdown(GRACE);
    h.settle()?;
    assert_eq!(h.app().closed.len(), 1);
    assert!(matches!(h.app().closed[0], CloseReason::Shutdown));
    assert!(h.reactor().is_finished());
    Ok(())
}

/// S30: what the kernel still has not taken when the grace ends is dropped and counted, in the
/// socket's and the reactor's counters, and the socket closes with `Shutdown`.
#[test]
fn the_grace_ends_a_socket_whose_queue_never_empties() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let (_id, peer) = h.bind_udp(local(), None, UdpConfig::new(), Echo);
    peer.set_send_budget(Some(1));
    for seq in 0..3u8 {
        peer.send(&[seq; 8], client());
    }
    h.settle()?;
    h.reactor().shutdown(GRACE);
    h.advance(GRACE - Duration::from_millis(10))?;
    assert!(h.app().closed.is_empty(), "the grace is not over");
    h.advance(Duration::from_millis(20))?;
    assert_eq!(h.app().closed.len(), 1);
    assert!(matches!(h.app().closed[0], CloseReason::Shutdown));
    assert!(h.reactor().is_finished());
    let stats = h.reactor().stats();
    assert_eq!(
        (stats.datagrams_out, stats.datagrams_dropped),
        (1, 2),
        "every datagram sent or counted dropped"
    );
    Ok(())
}

/// A shutdown begun by the UDP handler itself, in the middle of a read batch whose replies
/// are gathered for one `sendmmsg`: the rest of the batch is not delivered, the gathered
/// replies go out, then the socket closes.
#[test]
fn a_shutdown_from_the_handler_sends_the_gathered_replies() -> io::Result<()> {
    struct Stopper;
    impl Datagrams<Log> for Stopper {
        fn on_datagram(&mut self, cx: &mut UdpCx<'_, Log>, data: &[u8], from: SocketAddr) {
            cx.app().datagrams += 1;
            assert_eq!(cx.send_to(data, from).unwrap(), Sent::Batched);
            if data == b"stop" {
                cx.shutdown_reactor(GRACE);
            }
        }
        fn on_close(&mut self, app: &mut Log, reason: CloseReason) {
            app.closed.push(reason);
        }
    }
    let mut h = Harness::new(Log::default())?;
    let config = UdpConfig::new().with_batch(8).with_batch_sends(true);
    let (_id, peer) = h.bind_udp(local(), None, config, Stopper);
    for d in [&b"one"[..], b"stop", b"never"] {
        peer.send(d, client());
    }
    h.settle()?;
    assert_eq!(
        h.app().datagrams,
        2,
        "nothing is delivered after the shutdown began"
    );
    let sent: Vec<Vec<u8>> = peer.take_sent().into_iter().map(|(d, _)| d).collect();
    assert_eq!(sent, vec![b"one".to_vec(), b"stop".to_vec()]);
    assert_eq!(h.app().closed.len(), 1);
    assert!(h.reactor().is_finished());
    Ok(())
}

/// A socket bound once the shutdown began (by a handler that outlives it) is opened, then
/// drained and closed at once, so the loop does not wait for it until the grace ends.
#[test]
fn a_socket_bound_during_the_shutdown_closes_at_once() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let (_first, _peer) = h.bind_udp(local(), None, UdpConfig::new(), Echo);
    h.reactor().shutdown(GRACE);
    h.settle()?;
    assert_eq!(h.app().closed.len(), 1);
    let (_late, late_peer) = h.bind_udp(client(), None, UdpConfig::new(), Echo);
    late_peer.send(b"ignored", local());
    h.settle()?;
    assert_eq!(h.app().closed.len(), 2);
    assert!(matches!(h.app().closed[1], CloseReason::Shutdown));
    assert_eq!(h.app().datagrams, 0);
    assert!(h.reactor().is_finished());
    Ok(())
}
