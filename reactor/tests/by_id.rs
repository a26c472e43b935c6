//! Any connection acted on by its id, from every context: a posted closure (`Handle::post`),
//! the handler of another connection, and the loop-wide context of embedding code; and the
//! half-close that keeps delivering input until the peer's end of stream (S14).

use std::io;
use std::time::Duration;

use evdrive_reactor::testing::{Harness, MemPeer};
use evdrive_reactor::{CloseKind, CloseReason, ConnId, Cx, ListenOptions, Protocol, TimerId};

/// What the handlers saw, per connection, in order.
#[derive(Default, Debug)]
struct Log {
    opened: Vec<ConnId>,
    data: Vec<(ConnId, Vec<u8>)>,
    timers: Vec<(ConnId, u64)>,
    eofs: Vec<ConnId>,
    closed: Vec<(ConnId, CloseKind)>,
}

impl Log {
    fn data_of(&self, id: ConnId) -> Vec<u8> {
        self.data
            .iter()
            .filter(|(c, _)| *c == id)
            .flat_map(|(_, d)| d.iter().copied())
            .collect()
    }
}

/// Records every callback; the default end-of-stream behaviour (close) after recording.
struct Recorder;

impl Protocol<Log> for Recorder {
    fn on_open(&mut self, cx: &mut Cx<'_, Log>) {
        let id = cx.id();
        cx.app().opened.push(id);
    }
    fn on_data(&mut self, cx: &mut Cx<'_, Log>, data: &[u8]) -> usize {
        let id = cx.id();
        cx.app().data.push((id, data.to_vec()));
        data.len()
    }
    fn on_timer(&mut self, cx: &mut Cx<'_, Log>, timer: TimerId) {
        let id = cx.id();
        cx.app().timers.push((id, timer.tag()));
    }
    fn on_eof(&mut self, cx: &mut Cx<'_, Log>) {
        let id = cx.id();
        cx.app().eofs.push(id);
        cx.close();
    }
    fn on_close(&mut self, cx: &mut Cx<'_, Log>, reason: CloseReason) {
        let id = cx.id();
        cx.app().closed.push((id, reason.kind()));
    }
}

/// Accepted connections and the test's end of each.
type Peers = Vec<(ConnId, MemPeer)>;

/// A harness with `n` accepted connections served by [`Recorder`].
fn connected(n: usize) -> io::Result<(Harness<Log>, Peers)> {
    let mut h = Harness::new(Log::default())?;
    let l = h.listen(ListenOptions::default(), |_, _| Recorder);
    let peers: Vec<MemPeer> = (0..n).map(|_| l.connect()).collect();
    h.settle()?;
    let ids = h.app().opened.clone();
    assert_eq!(ids.len(), n);
    Ok((h, ids.into_iter().zip(peers).collect()))
}

#[test]
fn a_posted_closure_pauses_resumes_times_and_half_closes_any_connection() -> io::Result<()> {
    let (mut h, conns) = connected(2)?;
    let (a, pa) = conns[0].clone();
    let (b, _pb) = conns[1].clone();
    let handle = h.reactor().handle()?;

    // Pause from a posted closure: input stays in the kernel.
    handle
        .post(move |cx| assert!(cx.pause_reading_conn(a)))
        .unwrap();
    h.settle()?;
    pa.send(b"held");
    h.settle()?;
    assert!(h.app().data_of(a).is_empty(), "read while paused");
    assert_eq!(pa.unread_len(), 4);

    // Stats by id, then resume: the held input is delivered without a new edge.
    let (tx, rx) = std::sync::mpsc::channel();
    handle
        .post(move |cx| {
            tx.send(cx.conn_stats(a)).unwrap();
            assert!(cx.resume_reading_conn(a));
        })
        .unwrap();
    h.settle()?;
    let stats = rx.recv().unwrap().expect("a exists");
    assert!(stats.paused);
    assert_eq!(stats.bytes_in, 0);
    assert_eq!(h.app().data_of(a), b"held");

    // A timer armed on `a` from outside fires in a's handler; one cancelled never fires.
    let (tx, rx) = std::sync::mpsc::channel();
    handle
        .post(move |cx| {
            let kept = cx.set_timer_conn(a, Duration::from_millis(50), 7);
            let dropped = cx.set_timer_conn(b, Duration::from_millis(50), 8).unwrap();
            assert!(cx.cancel_timer_conn(b, dropped));
            assert!(!cx.cancel_timer_conn(b, dropped), "cancelled twice");
            tx.send(kept.is_some()).unwrap();
        })
        .unwrap();
    h.settle()?;
    assert!(rx.recv().unwrap());
    h.advance(Duration::from_millis(49))?;
    assert!(h.app().timers.is_empty(), "fired early");
    h.advance(Duration::from_millis(1))?;
    assert_eq!(h.app().timers, vec![(a, 7)]);

    // Half-close from a posted closure: FIN goes, input is still delivered.
    handle
        .post(move |cx| {
            assert!(cx.send_to(a, b"bye"));
            assert!(cx.shutdown_write_conn(a));
        })
        .unwrap();
    h.settle()?;
    assert_eq!(pa.take_received(), b"bye");
    assert!(pa.fin_received());
    pa.send(b" more");
    h.settle()?;
    assert_eq!(h.app().data_of(a), b"held more");

    // Stats after traffic: bytes both ways, nothing queued.
    let stats = h
        .reactor()
        .cx()
        .conn_stats(a)
        .expect("a is half-closed, not gone");
    assert_eq!((stats.bytes_in, stats.bytes_out, stats.queued), (9, 3, 0));

    // Close one and abort the other, by id, from posted closures.
    handle
        .post(move |cx| {
            assert!(cx.close_conn(a, CloseReason::Local));
            assert!(cx.abort_conn(b, CloseReason::Aborted));
        })
        .unwrap();
    h.settle()?;
    pa.shutdown_write();
    h.settle()?;
    let closed = &h.app().closed;
    assert!(closed.contains(&(b, CloseKind::Aborted)), "{closed:?}");
    assert!(closed.iter().any(|(c, _)| *c == a), "{closed:?}");
    // Gone: every call by id says so.
    let mut cx = h.reactor().cx();
    assert!(cx.conn_stats(a).is_none());
    assert!(!cx.pause_reading_conn(a));
    assert!(cx.set_timer_conn(b, Duration::from_millis(1), 1).is_none());
    Ok(())
}

/// Commands written to one connection act on another (the first one opened).
struct Controller {
    target: ConnId,
}

impl Protocol<Log> for Controller {
    fn on_data(&mut self, cx: &mut Cx<'_, Log>, data: &[u8]) -> usize {
        let t = self.target;
        match data {
            b"pause" => assert!(cx.pause_reading_conn(t)),
            b"resume" => assert!(cx.resume_reading_conn(t)),
            b"timer" => assert!(cx.set_timer_conn(t, Duration::from_millis(10), 3).is_some()),
            b"stats" => {
                let s = cx.conn_stats(t).expect("target exists");
                let line = format!("{} {} {}", s.bytes_in, s.bytes_out, s.queued);
                cx.write(line.as_bytes());
            }
            b"shut" => assert!(cx.shutdown_write_conn(t)),
            b"abort" => assert!(cx.abort_conn(t, CloseReason::Aborted)),
            other => panic!("unknown command {other:?}"),
        }
        data.len()
    }
}

#[test]
fn a_handler_acts_on_another_connection_by_id() -> io::Result<()> {
    let mut h = Harness::new(Log::default())?;
    let targets = h.listen(ListenOptions::default(), |_, _| Recorder);
    let target = targets.connect();
    h.settle()?;
    let t = h.app().opened[0];
    let controls = h.listen(ListenOptions::default(), move |_, _| Controller {
        target: t,
    });
    let control = controls.connect();
    h.settle()?;
    let say = |h: &mut Harness<Log>, cmd: &[u8]| {
        control.send(cmd);
        h.settle()
    };

    say(&mut h, b"pause")?;
    target.send(b"x");
    h.settle()?;
    assert!(h.app().data_of(t).is_empty(), "read while paused");
    say(&mut h, b"resume")?;
    assert_eq!(h.app().data_of(t), b"x");

    say(&mut h, b"timer")?;
    h.advance(Duration::from_millis(10))?;
    assert_eq!(h.app().timers, vec![(t, 3)]);

    say(&mut h, b"stats")?;
    assert_eq!(control.take_received(), b"1 0 0");

    say(&mut h, b"shut")?;
    assert!(target.fin_received());
    target.send(b"y");
    h.settle()?;
    assert_eq!(
        h.app().data_of(t),
        b"xy",
        "input after the half-close was lost"
    );

    say(&mut h, b"abort")?;
    assert!(target.was_aborted());
    assert_eq!(h.app().closed, vec![(t, CloseKind::Aborted)]);
    Ok(())
}

/// Writes a reply larger than the peer takes at once, then half-closes.
struct ReplyThenShut;

impl Protocol<Log> for ReplyThenShut {
    fn on_data(&mut self, cx: &mut Cx<'_, Log>, data: &[u8]) -> usize {
        let id = cx.id();
        cx.app().data.push((id, data.to_vec()));
        if data.starts_with(b"go") {
            cx.write(&[b'r'; 10_000]);
            cx.shutdown_write();
            assert!(!cx.write(b"late"), "a write after the half-close was taken");
        }
        data.len()
    }
    fn on_eof(&mut self, cx: &mut Cx<'_, Log>) {
        let id = cx.id();
        cx.app().eofs.push(id);
        cx.close();
    }
    fn on_close(&mut self, cx: &mut Cx<'_, Log>, reason: CloseReason) {
        let id = cx.id();
        cx.app().closed.push((id, reason.kind()));
    }
}

#[test]
fn shutdown_write_sends_fin_after_the_queue_and_delivers_input_until_the_peer_fin() -> io::Result<()>
{
    let mut h = Harness::new(Log::default())?;
    let l = h.listen(ListenOptions::default(), |_, _| ReplyThenShut);
    let peer = l.connect();
    peer.set_write_budget(Some(1000));
    h.settle()?;
    peer.send(b"go");
    h.settle()?;
    let id = h.app().data[0].0;
    // Only part of the reply is out: no FIN before the last queued byte.
    assert_eq!(peer.received_len(), 1000);
    assert!(!peer.fin_received(), "FIN before the queued output");
    // Input keeps arriving while the output drains, and all of it is delivered.
    peer.send(b" while draining");
    h.settle()?;
    peer.set_write_budget(None);
    h.settle()?;
    assert_eq!(peer.take_received(), vec![b'r'; 10_000]);
    assert!(peer.fin_received());
    peer.send(b" after the fin");
    h.settle()?;
    assert!(
        h.app().closed.is_empty(),
        "closed before the peer's end of stream"
    );
    assert_eq!(h.app().data_of(id), b"go while draining after the fin");
    // The peer's end of stream reaches on_eof, and the close then completes at once.
    peer.shutdown_write();
    h.settle()?;
    assert_eq!(h.app().eofs, vec![id]);
    assert_eq!(h.app().closed, vec![(id, CloseKind::PeerClosed)]);
    assert!(peer.is_closed() && !peer.was_aborted());
    Ok(())
}
