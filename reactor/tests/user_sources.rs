//! Descriptors and `mio` sources registered by the user, served inside the loop with the
//! loop-wide context (S1): edge-triggered draining, re-arming, removal from inside the
//! callback, disabling, and the rule that a lent descriptor is never closed by the reactor.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::Duration;

use evdrive_reactor::{Interest, PostAction, Reactor, SourceEvent};
use mio::unix::pipe;

/// What the callbacks saw.
#[derive(Default, Debug)]
struct Seen {
    /// Bytes read from the first pipe.
    bytes: Vec<u8>,
    /// Calls of the first pipe's callback.
    calls: usize,
    /// Calls of the second pipe's callback (the witness that a turn served the poller).
    witness: usize,
}

/// Turns until `done` holds (bounded: a reactor that never gets there fails the test).
fn turn_until(r: &mut Reactor<Seen>, done: impl Fn(&Seen) -> bool) -> io::Result<()> {
    for _ in 0..1000 {
        if done(r.app()) {
            return Ok(());
        }
        r.turn(Some(Duration::from_secs(5)))?;
    }
    panic!("never got there: {:?}", r.app());
}

/// Reads `rx` until `WouldBlock` in small pieces, into `seen`. Returns whether it ended.
fn drain(rx: &pipe::Receiver, seen: &mut Seen) -> bool {
    let mut buf = [0u8; 4];
    loop {
        match (&*rx).read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => seen.bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) => panic!("reading the pipe: {e}"),
        }
    }
}

/// The pipe's read end, shared between the test (which keeps it open: the reactor is only lent
/// the descriptor) and the callback that reads it.
fn shared(rx: pipe::Receiver) -> (Rc<pipe::Receiver>, Rc<pipe::Receiver>) {
    let rx = Rc::new(rx);
    (Rc::clone(&rx), rx)
}

/// A second pipe whose callback counts its calls: written after the first, it shows that a
/// turn has served the poller's events, so what did not happen to the first did not happen.
fn add_witness(r: &mut Reactor<Seen>) -> io::Result<pipe::Sender> {
    let (tx, rx) = pipe::new()?;
    r.cx().add_source(rx, Interest::READABLE, |cx, rx, _| {
        drain(rx, &mut Seen::default());
        cx.app().witness += 1;
        PostAction::Continue
    })?;
    Ok(tx)
}

#[test]
fn a_pipe_is_drained_until_would_block_on_one_edge() -> io::Result<()> {
    let (mut tx, rx) = pipe::new()?;
    let (rx, lent) = shared(rx);
    let mut r = Reactor::new(Seen::default())?;
    let id = r
        .cx()
        .add_fd(&*lent, Interest::READABLE, move |cx, event| {
            assert!(event.readable && !event.writable);
            cx.app().calls += 1;
            drain(&rx, cx.app());
            PostAction::Continue
        })?;
    assert_eq!(r.cx().user_sources(), 1);
    // One write of 100 bytes, one edge: read 4 bytes at a time until WouldBlock, all of it.
    let data: Vec<u8> = (0..100).collect();
    tx.write_all(&data)?;
    turn_until(&mut r, |s| s.calls > 0)?;
    assert_eq!(r.app().bytes, data);
    assert_eq!(r.app().calls, 1);
    assert!(r.cx().remove_source(id));
    assert!(!r.cx().remove_source(id), "removed twice");
    Ok(())
}

#[test]
fn rearm_calls_again_while_input_is_left() -> io::Result<()> {
    let (mut tx, rx) = pipe::new()?;
    let (rx, lent) = shared(rx);
    let mut r = Reactor::new(Seen::default())?;
    // Reads one piece per call and asks to be re-armed: no new edge comes, yet every piece
    // is read, one call each.
    r.cx().add_fd(&*lent, Interest::READABLE, move |cx, _| {
        cx.app().calls += 1;
        let mut buf = [0u8; 4];
        match (&*rx).read(&mut buf) {
            Ok(n) => cx.app().bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        PostAction::Rearm
    })?;
    tx.write_all(&[7u8; 40])?;
    turn_until(&mut r, |s| s.bytes.len() == 40)?;
    assert_eq!(r.app().calls, 10);
    Ok(())
}

#[test]
fn a_source_removed_from_inside_its_callback_is_not_called_again() -> io::Result<()> {
    let (mut tx, rx) = pipe::new()?;
    let (rx, lent) = shared(rx);
    let mut r = Reactor::new(Seen::default())?;
    r.cx()
        .add_fd(&*lent, Interest::READABLE, move |cx, event: SourceEvent| {
            cx.app().calls += 1;
            drain(&rx, cx.app());
            assert!(cx.remove_source(event.id));
            assert_eq!(
                cx.user_sources(),
                1,
                "removed only once the callback returns"
            );
            PostAction::Continue
        })?;
    tx.write_all(b"one")?;
    turn_until(&mut r, |s| s.calls == 1)?;
    assert_eq!(r.cx().user_sources(), 0);
    // More input, then the witness: once the witness is served, the removed source would have
    // been too.
    let mut witness = add_witness(&mut r)?;
    tx.write_all(b"two")?;
    witness.write_all(b"w")?;
    turn_until(&mut r, |s| s.witness == 1)?;
    assert_eq!(r.app().calls, 1);
    assert_eq!(r.app().bytes, b"one");
    Ok(())
}

#[test]
fn a_source_whose_callback_returns_remove_is_deregistered_and_not_closed() -> io::Result<()> {
    let (mut tx, rx) = pipe::new()?;
    let (rx, lent) = shared(rx);
    let mut r = Reactor::new(Seen::default())?;
    r.cx().add_fd(&*rx, Interest::READABLE, move |cx, _| {
        cx.app().calls += 1;
        drain(&lent, cx.app());
        PostAction::Remove
    })?;
    tx.write_all(b"first")?;
    turn_until(&mut r, |s| s.calls == 1)?;
    assert_eq!(r.cx().user_sources(), 0);
    drop(r);
    // Still open: `fcntl(F_DUPFD_CLOEXEC)` (what `try_clone_to_owned` calls) fails with
    // `EBADF` on a closed descriptor.
    let dup = rx.as_fd().try_clone_to_owned()?;
    drop(dup);
    // And still ours to read from.
    tx.write_all(b"second")?;
    let mut seen = Seen::default();
    while seen.bytes.len() < 6 {
        drain(&rx, &mut seen);
    }
    assert_eq!(seen.bytes, b"second");
    Ok(())
}

#[test]
fn a_disabled_source_is_not_served_until_enabled() -> io::Result<()> {
    let (mut tx, rx) = pipe::new()?;
    let mut r = Reactor::new(Seen::default())?;
    let id = r.cx().add_source(rx, Interest::READABLE, |cx, rx, _| {
        cx.app().calls += 1;
        drain(rx, cx.app());
        PostAction::Continue
    })?;
    assert!(r.cx().disable_source(id)?);
    let mut witness = add_witness(&mut r)?;
    tx.write_all(b"held")?;
    witness.write_all(b"w")?;
    turn_until(&mut r, |s| s.witness == 1)?;
    assert_eq!(r.app().calls, 0, "served while disabled");
    // Enabled again: registering reports the input already waiting.
    assert!(r.cx().enable_source(id)?);
    turn_until(&mut r, |s| s.calls == 1)?;
    assert_eq!(r.app().bytes, b"held");
    // Changing the interest keeps the source.
    assert!(r.cx().set_source_interest(id, Interest::READABLE)?);
    assert_eq!(r.cx().user_sources(), 2);
    Ok(())
}

#[test]
fn a_posted_closure_registers_a_source() -> io::Result<()> {
    let (mut tx, rx) = pipe::new()?;
    let mut r = Reactor::new(Seen::default())?;
    let handle = r.handle()?;
    std::thread::spawn(move || {
        handle
            .post(move |cx| {
                cx.add_source(rx, Interest::READABLE, |cx, rx, _| {
                    cx.app().calls += 1;
                    if drain(rx, cx.app()) {
                        PostAction::Remove
                    } else {
                        PostAction::Continue
                    }
                })
                .expect("registering a pipe");
            })
            .unwrap();
    })
    .join()
    .unwrap();
    // The posted closure runs on a turn of its own; then the source is served.
    tx.write_all(b"via post")?;
    drop(tx);
    turn_until(&mut r, |s| s.bytes == b"via post")?;
    // The writer is gone: the end of the stream removes the source (on the same edge, or on
    // the hang-up's own).
    for _ in 0..100 {
        if r.cx().user_sources() == 0 {
            break;
        }
        r.turn(Some(Duration::from_secs(5)))?;
    }
    assert_eq!(r.cx().user_sources(), 0);
    Ok(())
}
