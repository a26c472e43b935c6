//! Set-up shared by the listener tests over real sockets (`listeners.rs` for TCP,
//! `unix_listeners.rs` for Unix-domain sockets): an echo handler, turning the reactor until a
//! condition holds, a listener's accept count, and an echo through a client of either kind.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use evdrive_reactor::{Cx, ListenerId, Protocol, Reactor};

/// Echoes.
pub struct Echo;

impl<App> Protocol<App> for Echo {
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        cx.write(data);
        data.len()
    }
}

/// Turns until `done` holds (bounded: a reactor that never gets there fails the test).
pub fn turn_until(
    r: &mut Reactor<()>,
    mut done: impl FnMut(&mut Reactor<()>) -> bool,
) -> io::Result<()> {
    for _ in 0..1000 {
        if done(r) {
            return Ok(());
        }
        r.turn(Some(Duration::from_secs(5)))?;
    }
    panic!("never got there");
}

/// The connections listener `id` accepted.
pub fn accepted_by(r: &mut Reactor<()>, id: ListenerId) -> u64 {
    r.cx()
        .listener_stats(id)
        .expect("the listener exists")
        .accepted
}

/// A client stream of either kind, made non-blocking for [`echo_through`].
pub trait Client: Read + Write {
    /// Sets `O_NONBLOCK`.
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
}

impl Client for TcpStream {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        TcpStream::set_nonblocking(self, on)
    }
}

impl Client for UnixStream {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        UnixStream::set_nonblocking(self, on)
    }
}

/// Sends `msg` and turns the reactor until its echo is back.
pub fn echo_through(r: &mut Reactor<()>, c: &mut impl Client, msg: &[u8]) -> io::Result<Vec<u8>> {
    c.write_all(msg)?;
    c.set_nonblocking(true)?;
    let mut got = Vec::new();
    turn_until(r, |_| {
        let mut buf = [0u8; 64];
        if let Ok(n) = c.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        got.len() >= msg.len()
    })?;
    Ok(got)
}
