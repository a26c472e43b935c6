//! Installing and removing the signal catcher (S31): installation is all or nothing, one
//! catcher per process, and dropping it puts back the dispositions that were in force before.
//!
//! Dispositions are process-wide, so each test runs its body in a child process of its own
//! (`run_in_child`): the body is an ignored test that does nothing unless it is that child.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use evdrive_tests::{is_child, run_in_child, WAIT};
use reactor::sys::{self, Disposition};
use reactor::Reactor;

/// The test's own handler: `sys`'s flag handler, which only marks its signal as seen.
const MARKER: Disposition = Disposition::Flag;

/// Whether the test's own handler ran for `SIGUSR2`, the signal it is installed for.
fn marked() -> bool {
    sys::flag_raised(libc::SIGUSR2)
}

/// The current disposition of `sig` (`SIG_DFL`, `SIG_IGN` or a handler).
fn disposition(sig: libc::c_int) -> Disposition {
    sys::disposition(sig).unwrap_or_else(|e| panic!("sigaction: {e}"))
}

/// Sets the disposition of `sig` to `handler`.
fn set_disposition(sig: libc::c_int, handler: Disposition) {
    sys::set_disposition(sig, handler).unwrap_or_else(|e| panic!("sigaction: {e}"));
}

/// Raises `sig` in this thread; its handler has run when this returns.
fn raise(sig: libc::c_int) {
    sys::raise(sig).expect("raise");
}

/// Turns `reactor` until its app (the signals its callback saw) holds `sig`.
fn turn_until_caught(reactor: &mut Reactor<Vec<i32>>, sig: libc::c_int) -> io::Result<()> {
    let deadline = Instant::now() + WAIT;
    while !reactor.app().contains(&sig) {
        assert!(
            Instant::now() < deadline,
            "signal {sig} never reached the loop"
        );
        reactor.turn(Some(Duration::from_millis(100)))?;
    }
    Ok(())
}

/// A reactor whose callback records every signal it sees.
fn recording_reactor(signals: &[libc::c_int]) -> io::Result<Reactor<Vec<i32>>> {
    let mut reactor = Reactor::new(Vec::new())?;
    reactor.catch_signals(signals, None, Some(Box::new(|cx, sig| cx.app().push(sig))))?;
    Ok(reactor)
}

/// S31: `SIGSTOP` cannot be caught, so catching `[SIGUSR1, SIGUSR2, SIGSTOP]` fails; the two
/// handlers installed before the failure are undone (`SIGUSR1` ignored again, `SIGUSR2` back on
/// the test's own handler), so no handler writes to the closed pipe's descriptor number, which
/// a new socket pair reuses; and the process may catch signals again afterwards.
#[test]
fn a_failed_catch_restores_every_handler_it_installed() -> io::Result<()> {
    run_in_child("failed_catch_body")
}

#[test]
#[ignore = "run in a child process by a_failed_catch_restores_every_handler_it_installed"]
fn failed_catch_body() -> io::Result<()> {
    if !is_child("failed_catch_body") {
        return Ok(());
    }
    set_disposition(libc::SIGUSR1, Disposition::Ignore);
    set_disposition(libc::SIGUSR2, MARKER);
    let mut reactor = Reactor::new(Vec::<i32>::new())?;
    let err = reactor
        .catch_signals(&[libc::SIGUSR1, libc::SIGUSR2, libc::SIGSTOP], None, None)
        .expect_err("SIGSTOP cannot be caught");
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    assert_eq!(disposition(libc::SIGUSR1), Disposition::Ignore);
    assert_eq!(disposition(libc::SIGUSR2), MARKER);

    // The descriptors the failed catch closed are reused; a signal writes nothing into them.
    let (mut a, mut b) = UnixStream::pair()?;
    a.set_nonblocking(true)?;
    b.set_nonblocking(true)?;
    raise(libc::SIGUSR1);
    raise(libc::SIGUSR2);
    assert!(marked(), "the test's own handler ran");
    for end in [&mut a, &mut b] {
        let got = end.read(&mut [0u8; 8]);
        assert!(
            matches!(&got, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "a signal wrote into a reused descriptor: {got:?}"
        );
    }

    // Nothing is left claimed: the same reactor catches signals now.
    reactor.catch_signals(
        &[libc::SIGUSR1],
        None,
        Some(Box::new(|cx, s| cx.app().push(s))),
    )?;
    raise(libc::SIGUSR1);
    turn_until_caught(&mut reactor, libc::SIGUSR1)
}

/// S31: while one reactor catches signals, a second `catch_signals`, by another reactor or by
/// the same one, fails with `AlreadyExists` and changes no disposition; the first catcher
/// still receives its signals (before, the same reactor's second call dropped its first pipe,
/// which reset the handlers to the default after the new ones were installed: the signal then
/// killed the process).
#[test]
fn a_second_catch_fails_and_changes_nothing() -> io::Result<()> {
    run_in_child("second_catch_body")
}

#[test]
#[ignore = "run in a child process by a_second_catch_fails_and_changes_nothing"]
fn second_catch_body() -> io::Result<()> {
    if !is_child("second_catch_body") {
        return Ok(());
    }
    // A child inherits ignored signals (a shell running the suite in the background ignores
    // SIGINT); start from the defaults this test checks are left alone.
    for sig in [libc::SIGUSR2, libc::SIGINT, libc::SIGTERM] {
        set_disposition(sig, Disposition::Default);
    }
    let mut first = recording_reactor(&[libc::SIGUSR1])?;
    let installed = disposition(libc::SIGUSR1);

    let mut other = Reactor::new(())?;
    let err = other
        .catch_signals(&[libc::SIGUSR2], Some(Duration::from_secs(1)), None)
        .expect_err("a second catcher in the process");
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains("already caught"), "{err}");
    for sig in [libc::SIGUSR2, libc::SIGINT, libc::SIGTERM] {
        assert_eq!(
            disposition(sig),
            Disposition::Default,
            "signal {sig} was touched"
        );
    }

    let err = first
        .catch_signals(&[libc::SIGUSR1, libc::SIGUSR2], None, None)
        .expect_err("the same reactor catching twice");
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
    assert_eq!(disposition(libc::SIGUSR1), installed);
    assert_eq!(disposition(libc::SIGUSR2), Disposition::Default);

    drop(other);
    raise(libc::SIGUSR1);
    turn_until_caught(&mut first, libc::SIGUSR1)
}

/// S31: dropping the catcher puts back what was in force before it, not the default: an
/// ignored `SIGUSR1` stays ignored (raising it does not kill the process), `SIGUSR2` gets the
/// test's own handler back, `SIGHUP` its default; and a new catcher may be installed.
#[test]
fn drop_restores_the_dispositions_in_force_before() -> io::Result<()> {
    run_in_child("drop_restores_body")
}

#[test]
#[ignore = "run in a child process by drop_restores_the_dispositions_in_force_before"]
fn drop_restores_body() -> io::Result<()> {
    if !is_child("drop_restores_body") {
        return Ok(());
    }
    set_disposition(libc::SIGUSR1, Disposition::Ignore);
    set_disposition(libc::SIGUSR2, MARKER);
    // Inherited as ignored under `nohup`: the default is what this test expects back.
    set_disposition(libc::SIGHUP, Disposition::Default);
    let signals = [libc::SIGUSR1, libc::SIGUSR2, libc::SIGHUP];
    let mut reactor = recording_reactor(&signals)?;
    for sig in signals {
        raise(sig);
        turn_until_caught(&mut reactor, sig)?;
    }
    assert!(!marked(), "the catcher replaced marker");
    drop(reactor);

    assert_eq!(disposition(libc::SIGUSR1), Disposition::Ignore);
    assert_eq!(disposition(libc::SIGUSR2), MARKER);
    assert_eq!(disposition(libc::SIGHUP), Disposition::Default);
    raise(libc::SIGUSR1);
    raise(libc::SIGUSR2);
    assert!(marked(), "the test's own handler is back");

    let mut again = recording_reactor(&[libc::SIGUSR2])?;
    raise(libc::SIGUSR2);
    turn_until_caught(&mut again, libc::SIGUSR2)
}
