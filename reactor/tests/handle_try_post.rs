//! `Handle::try_post` hands its closure back when the reactor is gone, where `post` drops it.

use std::sync::mpsc::{self, TryRecvError};
use std::time::Duration;

use evdrive_reactor::{Error, LoopCx, PostError, Reactor};

/// A reactor that is gone: the closure, and the sender it owns, come back intact; run on
/// another reactor, it does its work there.
#[test]
fn try_post_hands_the_closure_back_once_the_reactor_is_gone() -> std::io::Result<()> {
    let mut reactor = Reactor::new(0u32)?;
    let handle = reactor.handle()?;
    drop(reactor);

    let (tx, rx) = mpsc::channel();
    let f = move |cx: &mut LoopCx<'_, u32>| {
        *cx.app() += 1;
        tx.send(*cx.app()).expect("the test holds the receiver");
    };
    let back = match handle.try_post(f) {
        Err(PostError::Stopped(f)) => f,
        other => panic!("posted to a reactor that is gone: {other:?}"),
    };
    // The sender lives on inside the closure that came back.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    let mut other = Reactor::new(41u32)?;
    let other_handle = other.handle()?;
    other_handle
        .try_post(back)
        .expect("the second reactor is alive");
    other.turn(Some(Duration::ZERO))?;
    assert_eq!(rx.try_recv(), Ok(42));
    assert_eq!(*other.app(), 42);
    Ok(())
}

/// `post` keeps its contract: `Error::Stopped`, and the closure is dropped (its sender with
/// it), which is what `try_post` exists to avoid.
#[test]
fn post_to_a_reactor_that_is_gone_drops_the_closure() -> std::io::Result<()> {
    let mut reactor = Reactor::new(())?;
    let handle = reactor.handle()?;
    drop(reactor);

    let (tx, rx) = mpsc::channel::<()>();
    let result = handle.post(move |_| drop(tx));
    assert!(matches!(result, Err(Error::Stopped)), "{result:?}");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    Ok(())
}

/// To a live reactor, `try_post` queues the closure, which runs on the next turn, once.
#[test]
fn try_post_to_a_live_reactor_runs_the_closure_once() -> std::io::Result<()> {
    let mut reactor = Reactor::new(0u32)?;
    let handle = reactor.handle()?;
    handle
        .try_post(|cx| *cx.app() += 1)
        .expect("the reactor is alive");
    assert_eq!(*reactor.app(), 0, "ran before a turn");
    reactor.turn(Some(Duration::ZERO))?;
    reactor.turn(Some(Duration::ZERO))?;
    assert_eq!(*reactor.app(), 1);
    Ok(())
}
