//! `SIGUSR2`: a sample restarts itself without refusing or cutting a connection.
//!
//! The sequence (the library's, in `reactor::restart`):
//! 1. the reactor (each reactor, with `--threads N`) exports a descriptor of every listener;
//! 2. a thread of its own starts the successor, the binary at the path this process was
//!    started from (resolved at start-up: after an in-place upgrade `/proc/self/exe` names a
//!    deleted file), with the same arguments and one end of a channel whose descriptor
//!    number is in `EVDRIVE_HANDOVER_FD`; sends it the listeners (`listen`, and `admin`);
//!    waits at most [`CONFIRM_TIMEOUT`] for it to say it serves;
//! 3. confirmed: every reactor releases its listeners (the sockets stay open in the
//!    successor, with their backlogs; a Unix socket's file stays) and drains ([`drain`]);
//!    not confirmed (the successor could not start, exited, or stayed silent): it is killed
//!    and reaped, the log says why (at error), and this process serves on as if nothing
//!    happened.
//!
//! A second `SIGUSR2` while a hand-over is under way (or after one succeeded) is ignored, with
//! a log line.

use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reactor::restart::{spawn_successor, Exported};
use reactor::{CloseReason, Handle, ListenAddr, LoopCx};

use crate::inherit::{ADMIN_NAME, HANDOVER_VAR, LISTEN_NAME};

/// How long a successor may take to start, take the listeners and say it serves.
pub(crate) const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a draining reactor looks whether its connections have ended.
const DRAIN_CHECK: Duration = Duration::from_millis(20);

/// What a hand-over needs, made at start-up.
#[derive(Clone, Debug)]
pub(crate) struct Restarter {
    /// The binary this process was started from, resolved at start-up.
    exe: Option<PathBuf>,
    /// The arguments it was started with.
    args: Vec<OsString>,
    /// A hand-over is under way or done: a second `SIGUSR2` is ignored.
    busy: Arc<AtomicBool>,
    /// The admin endpoint's address, to name its listener `admin` for the successor.
    admin: Option<ListenAddr>,
    /// The drain closes connections between two requests (see [`drain`]).
    close_idle: bool,
}

impl Restarter {
    /// Resolves this process's binary now, while its path still names it.
    pub(crate) fn new() -> Restarter {
        let exe = std::env::current_exe()
            .map_err(|e| log::warn!("no path to this binary ({e}): SIGUSR2 cannot restart"))
            .ok();
        Restarter {
            exe,
            args: std::env::args_os().skip(1).collect(),
            busy: Arc::new(AtomicBool::new(false)),
            admin: None,
            close_idle: false,
        }
    }

    /// Makes the drain close connections with nothing in flight (HTTP keep-alive connections
    /// between requests), as well as waiting for the others to end.
    pub(crate) fn closing_idle(mut self, on: bool) -> Restarter {
        self.close_idle = on;
        self
    }

    /// Names the admin endpoint's listener (bound at `addr`) for the successor.
    pub(crate) fn set_admin(&mut self, addr: ListenAddr) {
        self.admin = Some(addr);
    }

    /// `SIGUSR2` with one reactor, reached as `cx`: its listeners are exported, and once the
    /// successor confirms, the reactor drains (posted through `handle`).
    pub(crate) fn hand_over_reactor<App: 'static>(
        &self,
        cx: &mut LoopCx<'_, App>,
        handle: &Handle<App>,
        grace: Duration,
    ) {
        if !self.claim() {
            return;
        }
        match cx.export_listeners() {
            Ok(exported) => {
                let handle = handle.clone();
                let close_idle = self.close_idle;
                self.start(exported, move || {
                    let _ = handle.post(move |cx| drain(cx, grace, close_idle));
                });
            }
            Err(e) => self.unclaim(&e),
        }
    }

    /// `SIGUSR2` with several threads, on the thread that relays signals: every reactor
    /// exports its listeners (thread 0's admin endpoint's too), one hand-over sends them all,
    /// and once the successor confirms, every reactor drains.
    pub(crate) fn hand_over_threads<App: 'static>(&self, handles: &[Handle<App>], grace: Duration) {
        if !self.claim() {
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        for handle in handles {
            let tx = tx.clone();
            let _ = handle.post(move |cx| {
                let _ = tx.send(cx.export_listeners());
            });
        }
        drop(tx);
        let mut exported = Vec::new();
        for _ in handles {
            // A reactor answers within a turn; one that does not is stopping.
            match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(mut some)) => exported.append(&mut some),
                Ok(Err(e)) => return self.unclaim(&e),
                Err(_) => return self.unclaim(&io::Error::other("a reactor did not answer")),
            }
        }
        let (handles, close_idle) = (handles.to_vec(), self.close_idle);
        self.start(exported, move || {
            for handle in &handles {
                let _ = handle.post(move |cx| drain(cx, grace, close_idle));
            }
        });
    }

    /// Claims the hand-over; `false` (logged) if one is already under way or done.
    fn claim(&self) -> bool {
        if self.busy.swap(true, Ordering::SeqCst) {
            log::warn!("SIGUSR2 ignored: a hand-over is already under way (or done)");
            return false;
        }
        true
    }

    /// Gives up a claim whose export failed.
    fn unclaim(&self, why: &io::Error) {
        log::error!("hand-over not started, still serving: exporting the listeners: {why}");
        self.busy.store(false, Ordering::SeqCst);
    }

    /// Starts the successor on a thread of its own with the `exported` listeners and, once it
    /// confirms, runs `confirmed` (which makes the reactors release and drain). Never blocks.
    fn start(&self, exported: Vec<Exported>, confirmed: impl FnOnce() + Send + 'static) {
        let this = self.clone();
        let spawned = std::thread::Builder::new()
            .name("handover".into())
            .spawn(move || {
                let began = Instant::now();
                match this.hand_over(exported) {
                    Ok(pid) => {
                        log::info!(
                            "hand-over to pid {pid} confirmed after {} ms: no longer accepting, \
                             draining",
                            began.elapsed().as_millis()
                        );
                        confirmed();
                    }
                    Err(why) => {
                        log::error!("hand-over failed, still serving: {why}");
                        this.busy.store(false, Ordering::SeqCst);
                    }
                }
            });
        if let Err(e) = spawned {
            log::error!("hand-over failed, still serving: no thread for it: {e}");
            self.busy.store(false, Ordering::SeqCst);
        }
    }

    /// Steps 2 of the module doc: the successor's pid once it serves, or why not.
    fn hand_over(&self, exported: Vec<Exported>) -> Result<u32, String> {
        let exe = self.exe.as_ref().ok_or("no path to this binary")?;
        let mut cmd = Command::new(exe);
        cmd.args(&self.args);
        let (mut child, channel) = spawn_successor(cmd, HANDOVER_VAR)
            .map_err(|e| format!("starting {}: {e}", exe.display()))?;
        let pid = child.id();
        log::info!(
            "SIGUSR2: started {} (pid {pid}), handing over {} listeners",
            exe.display(),
            exported.len()
        );
        let named: Vec<(&str, _)> = exported
            .iter()
            .map(|e| {
                let name = if Some(&e.addr) == self.admin.as_ref() {
                    ADMIN_NAME
                } else {
                    LISTEN_NAME
                };
                (name, e.fd.as_fd())
            })
            .collect();
        let outcome = channel
            .send_listeners(&named)
            .and_then(|()| channel.await_serving(CONFIRM_TIMEOUT));
        drop(named);
        drop(exported);
        let e = match outcome {
            Ok(_) => return Ok(pid),
            Err(e) => e,
        };
        // Killing a successor that already exited is harmless; reaping it tells why it ended.
        let _ = child.kill();
        let status = child
            .wait()
            .map_or_else(|e| format!("not reaped: {e}"), |s| s.to_string());
        Err(match e.kind() {
            io::ErrorKind::TimedOut => format!(
                "successor pid {pid} did not confirm within {CONFIRM_TIMEOUT:?}: killed ({status})"
            ),
            // A successor that exits with messages unread resets the channel.
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset => {
                format!("successor pid {pid} ended before confirming ({status})")
            }
            _ => format!("successor pid {pid}: {e} (killed: {status})"),
        })
    }
}

/// Stops accepting and lets the connections end on their own: the listeners are released
/// (their sockets live on in the successor), and the reactor shuts down gracefully as soon as
/// its last connection has closed, or once four fifths of `grace` have passed; the shutdown
/// then gets the remaining fifth to flush, half-close and wait for the peers' FIN before
/// aborting what is left.
///
/// Closing connections at once, as a plain graceful shutdown does, would cut clients in the
/// middle of a conversation (an echo client between two messages); waiting for each to end,
/// within the grace period, is what nginx and HAProxy do on a reload. With `close_idle` (HTTP),
/// a connection with nothing in flight (no partial request read, no response queued) is
/// closed gracefully at each check, as nginx closes idle keep-alive connections on a reload:
/// between two requests is HTTP's natural end, and a client whose next request meets the
/// close retries it on a new connection, served by the successor.
fn drain<App>(cx: &mut LoopCx<'_, App>, grace: Duration, close_idle: bool) {
    for id in cx.listeners() {
        cx.release_listener(id);
    }
    let close_part = grace / 5;
    // A grace too long for the clock never ends the drain early: the last connection does.
    let deadline = cx.now().checked_add(grace - close_part);
    log::info!(
        "draining {} connections for up to {:?} ({} accepted in all)",
        cx.stats().open,
        grace - close_part,
        cx.stats().accepted
    );
    let check = move |cx: &mut LoopCx<'_, App>| {
        if close_idle {
            close_idle_connections(cx);
        }
        if cx.stats().open == 0 {
            cx.shutdown_reactor(Duration::ZERO);
            return false;
        }
        if deadline.is_some_and(|d| cx.now() >= d) {
            log::warn!(
                "drain: {} connections still open after the grace period; closing them",
                cx.stats().open
            );
            cx.shutdown_reactor(close_part);
            return false;
        }
        true
    };
    cx.every(DRAIN_CHECK, check);
}

/// Closes gracefully every open connection with nothing in flight.
fn close_idle_connections<App>(cx: &mut LoopCx<'_, App>) {
    let idle: Vec<_> = cx
        .connections()
        .into_iter()
        .filter(|c| c.state == "open" && c.queued == 0 && c.buffered == 0)
        .map(|c| c.id)
        .collect();
    for id in idle {
        cx.close_conn(id, CloseReason::Shutdown);
    }
}
