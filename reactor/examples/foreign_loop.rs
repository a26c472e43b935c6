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
//!
//! Standard input is read with one `read` per readiness into a buffer of its own, and *every*
//! complete line in it is handled at once: a buffered reader that hands out one line per
//! `poll` would keep the other lines of the same read hidden in its buffer, where `poll` cannot
//! see them, until more input came. (A program that would rather not own the loop registers
//! stdin with `LoopCx::add_fd` instead.)

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
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

/// Takes every complete line (with its newline) out of `pending`, leaving an unfinished one.
fn take_lines(pending: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let Some(last) = pending.iter().rposition(|&b| b == b'\n') else {
        return Vec::new();
    };
    let rest = pending.split_off(last + 1);
    let done = std::mem::replace(pending, rest);
    done.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Sends `line` to every client.
fn broadcast(reactor: &mut Reactor<Clients>, line: &[u8]) {
    let mut cx = reactor.cx();
    let clients = cx.app().clone();
    for id in clients {
        cx.send_to(id, line);
    }
}

fn main() -> io::Result<()> {
    let mut reactor = Reactor::new(Clients::new())?;
    let listener = reactor.listen(
        "127.0.0.1:7009".parse().unwrap(),
        ListenOptions::default(),
        |_, _| Client,
    )?;
    let addr = reactor.listener_addr(listener)?;
    eprintln!("listening on {addr}; type lines to broadcast, Ctrl-D to quit");

    // Stdin without std's buffer in front of it: what `poll` reports is what `read` gets.
    let mut stdin = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut stdin_open = true;
    while !reactor.is_finished() {
        // Sleep until either descriptor is readable or the reactor's next timer is due.
        let mut fds = vec![reactor.as_fd()];
        if stdin_open {
            fds.push(stdin.as_fd());
        }
        let ready = evdrive_reactor::sys::poll_readable(&fds, reactor.next_timeout())?;
        reactor.turn(Some(Duration::ZERO))?;
        if stdin_open && ready.get(1) == Some(&true) {
            // Readable: this read does not block. Handle every whole line it completed.
            match stdin.read(&mut buf)? {
                0 => {
                    // End of input: an unfinished last line still goes out, then shut down.
                    if !pending.is_empty() {
                        let last = std::mem::take(&mut pending);
                        broadcast(&mut reactor, &last);
                    }
                    stdin_open = false;
                    reactor.shutdown(Duration::from_secs(2));
                }
                n => {
                    pending.extend_from_slice(&buf[..n]);
                    for line in take_lines(&mut pending) {
                        broadcast(&mut reactor, &line);
                    }
                }
            }
        }
    }
    Ok(())
}
