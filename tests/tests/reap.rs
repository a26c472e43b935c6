//! `reactor::sys::reap_children`: one call reaps every exited child (S31).
//!
//! A file of its own: `waitpid(-1)` reaps any child of the process, so it must not run beside
//! tests that wait for children of their own.

use std::io;
use std::process::Command;

use evdrive_tests::{wait_until, WAIT};

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

/// S31: three children exit (one `SIGCHLD` may stand for all of them); a single call of
/// `reap_children` reaps all three, with their exit statuses, and a second call finds nothing.
#[test]
fn one_call_reaps_every_exited_child() -> io::Result<()> {
    let mut pids = Vec::new();
    for _ in 0..3 {
        let child = Command::new("true").spawn()?;
        pids.push(child.id());
        // Not waited for through `Child`: reaping is the function under test.
        std::mem::forget(child);
    }
    for &pid in &pids {
        wait_until(WAIT, || is_zombie(pid).then_some(()))
            .unwrap_or_else(|| panic!("child {pid} did not exit"));
    }
    let mut reaped = reactor::sys::reap_children();
    reaped.sort_by_key(|c| c.pid);
    pids.sort();
    let reaped_pids: Vec<u32> = reaped.iter().map(|c| c.pid as u32).collect();
    assert_eq!(reaped_pids, pids);
    assert!(reaped.iter().all(|c| c.status == 0), "{reaped:?}");
    assert!(reactor::sys::reap_children().is_empty());
    Ok(())
}
