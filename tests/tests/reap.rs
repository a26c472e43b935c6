//! Reaping children (S31): through the reactor's `SIGCHLD` handling, only the children the
//! program registered, so a `std::process::Child` owned elsewhere keeps its exit status.
//!
//! `reap_any_children` (`waitpid(-1)`) would reap the children of every test running beside
//! it, so its test runs in a child process of its own (`run_in_child`); so does the `SIGCHLD`
//! test, since signal dispositions are process-wide.

use std::io;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use evdrive_tests::{is_child, run_in_child, wait_until, WAIT};
use reactor::sys::{reap_any_children, reap_children, ChildStatus, SIGCHLD};
use reactor::Reactor;

/// Whether process `pid` has exited and waits to be reaped (a zombie).
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the command name, which is in parentheses.
            let after = stat.rsplit_once(')')?.1;
            after.split_whitespace().next().map(|s| s == "Z")
        })
        .unwrap_or(false)
}

/// Starts `sh -c "exit CODE"` and returns its id; the `Child` is dropped, which neither kills
/// nor waits for it: reaping it is up to the code under test.
fn spawn_exiting(code: i32) -> io::Result<i32> {
    let child = Command::new("sh")
        .args(["-c", &format!("exit {code}")])
        .stdin(Stdio::null())
        .spawn()?;
    Ok(child.id() as i32)
}

/// Waits until `pid` has exited (and is not reaped yet).
fn wait_zombie(pid: i32) {
    wait_until(WAIT, || is_zombie(pid as u32).then_some(()))
        .unwrap_or_else(|| panic!("child {pid} did not exit"));
}

/// S31: three registered children exit (one `SIGCHLD` may stand for all of them); one call of
/// `reap_children` with their ids reaps all three with their exit statuses, and a second call
/// finds nothing. An unregistered child that exited too is left for its owner.
#[test]
fn reap_children_reaps_every_registered_child_and_no_other() -> io::Result<()> {
    let mut other = Command::new("true").stdin(Stdio::null()).spawn()?;
    let mut pids = Vec::new();
    for code in 1..=3 {
        pids.push(spawn_exiting(code)?);
    }
    wait_zombie(other.id() as i32);
    for &pid in &pids {
        wait_zombie(pid);
    }
    let mut reaped = reap_children(&pids);
    reaped.sort_by_key(|c| c.pid);
    pids.sort_unstable();
    assert_eq!(reaped.iter().map(|c| c.pid).collect::<Vec<_>>(), pids);
    for c in &reaped {
        assert!(libc::WIFEXITED(c.status), "{c:?}");
        let code = libc::WEXITSTATUS(c.status);
        assert!((1..=3).contains(&code), "{c:?}");
    }
    assert!(reap_children(&pids).is_empty());
    // Ids that `waitpid` would read as "any child" or a group are not waited for.
    assert!(reap_children(&[0, -1]).is_empty());
    let status = other.wait()?;
    assert!(
        status.success(),
        "the unregistered child's status: {status}"
    );
    Ok(())
}

/// S31: with `SIGCHLD` caught by a reactor whose callback reaps the registered children, a
/// registered child is reaped through the loop (the callback runs, not a signal handler), while
/// a child a `std::process::Child` owns, which exited first, keeps its status for its own
/// `wait` (with `waitpid(-1)` the callback would have reaped it and that `wait` would fail).
#[test]
fn sigchld_reaps_registered_children_through_the_reactor() -> io::Result<()> {
    run_in_child("sigchld_body")
}

#[test]
#[ignore = "run in a child process by sigchld_reaps_registered_children_through_the_reactor"]
fn sigchld_body() -> io::Result<()> {
    if !is_child("sigchld_body") {
        return Ok(());
    }
    /// The registered ids, and what the callback reaped.
    #[derive(Default)]
    struct Children {
        registered: Vec<i32>,
        reaped: Vec<ChildStatus>,
        signals: usize,
    }
    let mut reactor = Reactor::new(Children::default())?;
    // Caught before any child is spawned, so no SIGCHLD can be missed.
    reactor.catch_signals(
        &[SIGCHLD],
        None,
        Some(Box::new(|cx, _sig| {
            let app = cx.app();
            app.signals += 1;
            let reaped = reap_children(&app.registered);
            app.registered
                .retain(|pid| reaped.iter().all(|c| c.pid != *pid));
            app.reaped.extend(reaped);
        })),
    )?;

    // 1. A child owned elsewhere exits first, and stays unreaped.
    let mut owned = Command::new("sh")
        .args(["-c", "exit 7"])
        .stdin(Stdio::null())
        .spawn()?;
    wait_zombie(owned.id() as i32);

    // 2. A registered child exits; the loop reaps it when its SIGCHLD comes in.
    let pid = spawn_exiting(5)?;
    reactor.app().registered.push(pid);
    let deadline = Instant::now() + WAIT;
    while reactor.app().reaped.is_empty() {
        assert!(
            Instant::now() < deadline,
            "SIGCHLD never reaped child {pid}"
        );
        reactor.turn(Some(Duration::from_millis(100)))?;
    }
    let app = reactor.app();
    assert!(app.signals >= 1);
    assert_eq!(app.reaped.len(), 1, "{:?}", app.reaped);
    assert_eq!(app.reaped[0].pid, pid);
    assert!(libc::WIFEXITED(app.reaped[0].status));
    assert_eq!(libc::WEXITSTATUS(app.reaped[0].status), 5);
    assert!(app.registered.is_empty());

    // 3. The owned child's status is still there for its owner.
    let status = owned.wait()?;
    assert_eq!(status.code(), Some(7), "{status}");
    Ok(())
}

/// S31: `reap_any_children` (for a program that owns every child) reaps every exited child in
/// one call, with their statuses; a second call finds nothing.
#[test]
fn reap_any_children_reaps_every_exited_child() -> io::Result<()> {
    run_in_child("reap_any_body")
}

#[test]
#[ignore = "run in a child process by reap_any_children_reaps_every_exited_child"]
fn reap_any_body() -> io::Result<()> {
    if !is_child("reap_any_body") {
        return Ok(());
    }
    let mut pids = Vec::new();
    for _ in 0..3 {
        pids.push(spawn_exiting(0)?);
    }
    for &pid in &pids {
        wait_zombie(pid);
    }
    let mut reaped: Vec<i32> = reap_any_children().iter().map(|c| c.pid).collect();
    reaped.sort_unstable();
    pids.sort_unstable();
    assert_eq!(reaped, pids);
    assert!(reap_any_children().is_empty());
    Ok(())
}
