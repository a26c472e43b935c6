//! Drives a reactor from a hand-written `poll(2)` loop that also watches standard input.
//!
//! ```text
//! cargo run -p evdrive-reactor --example foreign_loop     # listens on 127.0.0.1:7009
//! nc 127.0.0.1 7009                                # in other terminals: clients
//! ```
//! Clients get their own bytes echoed; every line typed on this program's standard input is
//! sent to every client. End standard input (Ctrl-D) to shut down gracefully.
//!
//! The program owns the loop: it waits on the reactor's descriptor and on stdin together, for
//! no longer than the reactor's next timer, and calls `turn(Some(Duration::ZERO))` to let the
//! reactor do its ready work without blocking.

use std::io::{self, BufRead};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use evdrive_reactor::{CloseReason, ConnId, Cx, ListenOptions, Protocol, Reactor};

/// The clients connected now.
type Clients = Vec<ConnId>;

/// Echoes, and keeps the client list up to date.
struct Client;

impl Protocol<Clients> for Client {
    // Joined: remember it so stdin lines reach it.
    fn on_open(&mut self, cx: &mut Cx<'_, Clients>) {
        let id = cx.id();
        cx.app().push(id);
    }

    // Bytes from the client: send them back.
    fn on_data(&mut self, cx: &mut Cx<'_, Clients>, data: &[u8]) -> usize {
        cx.write(data);
        data.len()
    }

    // Gone (for any reason): forget it.
    fn on_close(&mut self, cx: &mut Cx<'_, Clients>, reason: CloseReason) {
        let id = cx.id();
        cx.app().retain(|c| *c != id);
        eprintln!("client {id} left: {reason}");
    }
}

fn main() -> io::Result<()> {
    let mut reactor = Reactor::new(Clients::new())?;
    let addr = reactor.listen(
        "127.0.0.1:7009".parse().unwrap(),
        ListenOptions::default(),
        |_, _| Client,
    )?;
    eprintln!("listening on {addr}; type lines to broadcast, Ctrl-D to quit");

    let stdin = io::stdin();
    let mut lines = stdin.lock();
    let mut stdin_open = true;
    while !reactor.is_finished() {
        // SAFETY: the reactor outlives this borrow of its poll descriptor within the iteration.
        let reactor_fd = unsafe { BorrowedFd::borrow_raw(reactor.as_raw_fd()) };
        let stdin_fd = io::stdin().as_fd().try_clone_to_owned()?;
        let mut fds = vec![reactor_fd];
        if stdin_open {
            fds.push(stdin_fd.as_fd());
        }
        // Sleep until either descriptor is readable or the reactor's next timer is due.
        let ready = evdrive_reactor::sys::poll_readable(&fds, reactor.next_timeout())?;
        reactor.turn(Some(Duration::ZERO))?;
        if stdin_open && ready.get(1) == Some(&true) {
            let mut line = String::new();
            if lines.read_line(&mut line)? == 0 {
                stdin_open = false;
                reactor.shutdown(Duration::from_secs(2));
            } else {
                let mut cx = reactor.cx();
                let clients = cx.app().clone();
                for id in clients {
                    cx.send_to(id, line.as_bytes());
                }
            }
        }
    }
    Ok(())
}
