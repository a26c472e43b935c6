//! The reactor's UDP code (S30) driven through the in-memory datagram pipe: `EAGAIN` on sends
//! (queued in order within the bound, or dropped and counted), truncation, a refused connected
//! socket, the read budget, and timers on the harness clock.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use evdrive_reactor::testing::Harness;
use evdrive_reactor::{CloseReason, Datagrams, SendPolicy, Sent, TimerId, UdpConfig, UdpCx};
use proptest::prelude::*;

/// What the handler saw.
#[derive(Default, Debug)]
struct Log {
    datagrams: Vec<Vec<u8>>,
    truncated: Vec<Vec<u8>>,
    outcomes: Vec<Sent>,
    writable: usize,
    timers: Vec<u64>,
    closed: Vec<CloseReason>,
}

/// Echoes every datagram to its sender and records every callback.
struct Echo;

impl Datagrams<Log> for Echo {
    fn on_datagram(&mut self, cx: &mut UdpCx<'_, Log>, data: &[u8], from: SocketAddr) {
        cx.app().datagrams.push(data.to_vec());
        let sent = cx.send_to(data, from).expect("no send error is injected");
        cx.app().outcomes.push(sent);
    }
    fn on_truncated(&mut self, cx: &mut UdpCx<'_, Log>, head: &[u8], _from: SocketAddr) {
        cx.app().truncated.push(head.to_vec());
    }
    fn on_writable(&mut self, cx: &mut UdpCx<'_, Log>) {
        cx.app().writable += 1;
    }
    fn on_timer(&mut self, cx: &mut UdpCx<'_, Log>, timer: TimerId) {
        cx.app().timers.push(timer.tag());
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

/// A datagram that shows its sequence number and any damage.
fn datagram(seq: u32, len: usize) -> Vec<u8> {
    let mut d = seq.to_be_bytes().to_vec();
    d.extend((0..len).map(|i| (seq as usize + i) as u8));
    d
}

/// S30: a send that meets `EAGAIN` is queued and goes out, in order, on the writable edge.
#[test]
fn eagain_queues_in_order_until_writable() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let (id, peer) = h.bind_udp(local(), None, UdpConfig::new(), Echo);
    peer.set_send_budget(Some(1));
    for seq in 0..3 {
        peer.send(&datagram(seq, 10), client());
    }
    h.settle()?;
    assert_eq!(
        h.app().outcomes,
        vec![Sent::Now, Sent::Queued, Sent::Queued]
    );
    assert_eq!(peer.take_sent().len(), 1);
    assert_eq!(h.reactor().cx().udp_stats(id).unwrap().queued, 2);
    peer.set_send_budget(None);
    h.settle()?;
    let sent: Vec<Vec<u8>> = peer.take_sent().into_iter().map(|(d, _)| d).collect();
    assert_eq!(sent, vec![datagram(1, 10), datagram(2, 10)]);
    assert_eq!(h.app().writable, 1, "told once the queue emptied");
    let stats = h.reactor().cx().udp_stats(id).unwrap();
    assert_eq!((stats.sent, stats.dropped, stats.queued), (3, 0, 0));
    Ok(())
}

/// S30: with `batch_sends`, the replies of one read batch go out in one batch send, in order;
/// what the kernel does not take is queued behind them.
#[test]
fn replies_of_a_batch_go_out_in_one_send() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let config = UdpConfig::new().with_batch(16).with_batch_sends(true);
    let (id, peer) = h.bind_udp(local(), None, config, Echo);
    for seq in 0..10 {
        peer.send(&datagram(seq, 3), client());
    }
    h.settle()?;
    assert!(h.app().outcomes.iter().all(|s| *s == Sent::Batched));
    let sent: Vec<Vec<u8>> = peer.take_sent().into_iter().map(|(d, _)| d).collect();
    assert_eq!(sent, (0..10).map(|s| datagram(s, 3)).collect::<Vec<_>>());
    let stats = h.reactor().cx().udp_stats(id).unwrap();
    assert_eq!((stats.sent, stats.send_calls, stats.recv_calls), (10, 1, 1));

    peer.set_send_budget(Some(4));
    for seq in 10..16 {
        peer.send(&datagram(seq, 3), client());
    }
    h.settle()?;
    assert_eq!(peer.take_sent().len(), 4);
    assert_eq!(h.reactor().cx().udp_stats(id).unwrap().queued, 2);
    peer.set_send_budget(None);
    h.settle()?;
    let sent: Vec<Vec<u8>> = peer.take_sent().into_iter().map(|(d, _)| d).collect();
    assert_eq!(sent, vec![datagram(14, 3), datagram(15, 3)]);
    Ok(())
}

/// S30: with the drop policy, a send that meets `EAGAIN` is dropped and counted.
#[test]
fn eagain_drops_and_counts_with_the_drop_policy() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let config = UdpConfig::new().with_policy(SendPolicy::Drop);
    let (id, peer) = h.bind_udp(local(), None, config, Echo);
    peer.set_send_budget(Some(0));
    peer.send(b"one", client());
    peer.send(b"two", client());
    h.settle()?;
    assert_eq!(h.app().outcomes, vec![Sent::Dropped, Sent::Dropped]);
    let stats = h.reactor().cx().udp_stats(id).unwrap();
    assert_eq!((stats.received, stats.sent, stats.dropped), (2, 0, 2));
    Ok(())
}

/// S30: past the queue's bound, datagrams are dropped and counted.
#[test]
fn a_full_queue_drops_and_counts() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let (id, peer) = h.bind_udp(local(), None, UdpConfig::new().with_queue(2, 1000), Echo);
    peer.set_send_budget(Some(0));
    for seq in 0..5 {
        peer.send(&datagram(seq, 1), client());
    }
    h.settle()?;
    let stats = h.reactor().cx().udp_stats(id).unwrap();
    assert_eq!((stats.queued, stats.dropped), (2, 3));
    Ok(())
}

/// S30: a datagram longer than the read slot is reported as truncated, through both reads.
#[test]
fn truncation_through_the_pipe() -> io::Result<()> {
    for batch in [1, 8] {
        let mut h = Harness::new(Log::default())?;
        let config = UdpConfig::new().with_max_datagram(8).with_batch(batch);
        let (id, peer) = h.bind_udp(local(), None, config, Echo);
        peer.send(b"0123456789abcdef", client());
        peer.send(b"short", client());
        h.settle()?;
        assert_eq!(h.app().truncated, vec![b"01234567".to_vec()]);
        assert_eq!(h.app().datagrams, vec![b"short".to_vec()]);
        assert_eq!(h.reactor().cx().udp_stats(id).unwrap().truncated, 1);
    }
    Ok(())
}

/// S30: on a connected socket, the kernel's `ECONNREFUSED` closes it with `Refused`, once.
#[test]
fn refused_closes_a_connected_socket() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let (id, peer) = h.bind_udp(local(), Some(client()), UdpConfig::new(), Echo);
    peer.fail_next(libc::ECONNREFUSED);
    h.settle()?;
    assert!(matches!(h.app().closed[..], [CloseReason::Refused]));
    assert!(h.reactor().cx().udp_stats(id).is_none());
    Ok(())
}

/// S30: on a bound socket, an error is reported and the socket goes on.
#[test]
fn a_bound_socket_survives_errors() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let (id, peer) = h.bind_udp(local(), None, UdpConfig::new(), Echo);
    peer.fail_next(libc::ECONNREFUSED);
    peer.send(b"after", client());
    h.settle()?;
    assert!(h.app().closed.is_empty());
    assert_eq!(h.app().datagrams, vec![b"after".to_vec()]);
    assert_eq!(h.reactor().cx().udp_stats(id).unwrap().recv_errors, 1);
    Ok(())
}

/// S30: the read budget bounds one turn; the rest is read on later turns without a new edge.
#[test]
fn the_read_budget_yields_and_resumes() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let config = UdpConfig::new().with_batch(4).with_reads_per_turn(2);
    let (_, peer) = h.bind_udp(local(), None, config, Echo);
    for seq in 0..20 {
        peer.send(&datagram(seq, 1), client());
    }
    h.turn()?;
    assert_eq!(h.app().datagrams.len(), 8, "two batches of four");
    assert_eq!(peer.unread(), 12);
    h.settle()?;
    assert_eq!(h.app().datagrams.len(), 20);
    Ok(())
}

/// S30, S8: the idle timeout and handler timers run on the wheel.
#[test]
fn idle_timeout_and_timers_on_the_wheel() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let config = UdpConfig::new().with_idle_timeout(Some(Duration::from_secs(10)));
    let (id, peer) = h.bind_udp(local(), Some(client()), config, Echo);
    h.reactor().cx().udp_stats(id).unwrap();
    h.advance(Duration::from_secs(6))?;
    peer.send(b"keepalive", client());
    h.settle()?;
    h.advance(Duration::from_secs(6))?;
    assert!(h.app().closed.is_empty(), "activity moved the deadline");
    h.advance(Duration::from_secs(5))?;
    assert!(matches!(h.app().closed[..], [CloseReason::IdleTimeout]));

    let (_, peer) = h.bind_udp(local(), None, UdpConfig::new(), Timed);
    peer.send(b"arm", client());
    h.settle()?;
    h.advance(Duration::from_millis(499))?;
    assert!(h.app().timers.is_empty(), "never early");
    h.advance(Duration::from_millis(1))?;
    assert_eq!(h.app().timers, vec![7]);
    Ok(())
}

/// Arms a timer on every datagram.
struct Timed;

impl Datagrams<Log> for Timed {
    fn on_datagram(&mut self, cx: &mut UdpCx<'_, Log>, _: &[u8], _: SocketAddr) {
        cx.set_timer(Duration::from_millis(500), 7);
    }
    fn on_timer(&mut self, cx: &mut UdpCx<'_, Log>, timer: TimerId) {
        cx.app().timers.push(timer.tag());
    }
}

/// One step of the property test.
#[derive(Clone, Debug)]
enum Step {
    /// Datagrams arrive (each is echoed).
    Arrive(u8),
    /// The kernel takes this many more datagrams, then `EAGAIN`.
    Budget(u8),
    /// The kernel takes everything.
    Unlimited,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u8..20).prop_map(Step::Arrive),
        (0u8..10).prop_map(Step::Budget),
        Just(Step::Unlimited),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// S30: under random `EAGAIN`, every echoed datagram is either sent whole and in order, or
    /// counted as dropped; the queue never passes its bound.
    #[test]
    fn every_datagram_is_sent_in_order_or_counted_dropped(
        steps in proptest::collection::vec(step(), 1..40),
        drop_policy in any::<bool>(),
        batch in 1usize..8,
        max_queued in 0usize..6,
        batch_sends in any::<bool>(),
    ) {
        let mut h = Harness::new(Log::default()).unwrap();
        let policy = if drop_policy { SendPolicy::Drop } else { SendPolicy::Queue };
        let config = UdpConfig::new()
            .with_policy(policy)
            .with_batch(batch)
            .with_queue(max_queued, 1 << 20)
            .with_batch_sends(batch_sends);
        let (id, peer) = h.bind_udp(local(), None, config, Echo);
        let mut arrived = 0u32;
        let mut sent = Vec::new();
        for s in steps {
            match s {
                Step::Arrive(n) => {
                    for _ in 0..n {
                        peer.send(&datagram(arrived, arrived as usize % 50), client());
                        arrived += 1;
                    }
                }
                Step::Budget(b) => peer.set_send_budget(Some(b as usize)),
                Step::Unlimited => peer.set_send_budget(None),
            }
            h.settle().unwrap();
            let stats = h.reactor().cx().udp_stats(id).unwrap();
            prop_assert!(stats.queued as usize <= max_queued);
            sent.extend(peer.take_sent());
        }
        peer.set_send_budget(None);
        h.settle().unwrap();
        sent.extend(peer.take_sent());
        let stats = h.reactor().cx().udp_stats(id).unwrap();
        prop_assert_eq!(stats.received, u64::from(arrived));
        prop_assert_eq!(stats.queued, 0);
        prop_assert_eq!(sent.len() as u64 + stats.dropped, u64::from(arrived));
        prop_assert_eq!(stats.sent, sent.len() as u64);
        let mut last = None;
        for (d, to) in &sent {
            prop_assert_eq!(*to, Some(client()));
            let seq = u32::from_be_bytes(d[..4].try_into().unwrap());
            prop_assert_eq!(d, &datagram(seq, seq as usize % 50), "whole");
            prop_assert!(last.is_none_or(|l| seq > l), "in order, once");
            last = Some(seq);
        }
    }
}
