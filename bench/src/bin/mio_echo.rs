//! Echo server on bare mio, with no framework: the floor a mio-based reactor is compared with.
//!
//! ```text
//! mio_echo --listen 127.0.0.1:7004
//! ```
//!
//! Connect with `nc 127.0.0.1 7004`: every line typed comes back.
//!
//! It is shaped like `peers/epoll_echo.c`, so that the two measure the same work: one thread,
//! one `Poll`, connections in a `Slab` (the key is the token), every socket registered once for
//! reading and writing (mio is edge-triggered, so nothing is ever re-registered). All reads land
//! in one 64 KiB buffer and are written back at once; only when a write is short does the
//! connection keep the unsent tail, and reading pauses until it is gone, so a client that does
//! not read cannot grow the server. Reads stop at a short read (new bytes raise a new edge).
//!
//! There is no signal handling: SIGTERM's default action ends the process, and tools that
//! measure it (valgrind) still write their results.
#![forbid(unsafe_code)]

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

/// Size of the one read buffer every connection shares.
const READ_BUF: usize = 64 * 1024;

/// The listener's token; connections use their slab keys, which never reach it.
const LISTENER: Token = Token(usize::MAX);

/// One client connection.
struct Conn {
    stream: TcpStream,
    /// Unsent tail of an echo, `pending[off..]`; empty (and unallocated) when all was written.
    pending: Vec<u8>,
    /// How much of `pending` has been sent.
    off: usize,
}

/// What a connection asks of the loop after an event.
enum Verdict {
    Keep,
    Close,
}

fn main() -> io::Result<()> {
    let addr = parse_args()?;
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    eprintln!("mio_echo listening on {}", listener.local_addr()?);

    let mut conns: Slab<Conn> = Slab::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut events = Events::with_capacity(1024);
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                accept_all(&poll, &listener, &mut conns);
                continue;
            }
            let key = event.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue; // closed earlier in this batch
            };
            let verdict = if event.is_error() {
                Verdict::Close
            } else if !conn.pending.is_empty() {
                // Reading is paused until the tail is sent; bytes may be waiting without a new
                // edge, so read as soon as it is.
                match conn.flush() {
                    Ok(true) => conn.read_and_echo(&mut buf),
                    Ok(false) => Verdict::Keep,
                    Err(_) => Verdict::Close,
                }
            } else if event.is_readable() || event.is_read_closed() {
                conn.read_and_echo(&mut buf)
            } else {
                Verdict::Keep
            };
            if let Verdict::Close = verdict {
                // Dropping the stream closes it, which also removes it from the poll.
                conns.remove(key);
            }
        }
    }
}

/// `--listen ADDR` (or a bare address); 127.0.0.1:7004 without one.
fn parse_args() -> io::Result<SocketAddr> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:7004".to_string();
    while let Some(arg) = args.next() {
        if arg == "--listen" {
            addr = args
                .next()
                .ok_or_else(|| io::Error::other("--listen needs an address"))?;
        } else if arg.contains(':') {
            addr = arg;
        } else {
            return Err(io::Error::other("usage: mio_echo [--listen] HOST:PORT"));
        }
    }
    addr.parse()
        .map_err(|e| io::Error::other(format!("{addr}: {e}")))
}

/// Accepts until `WouldBlock`; a connection that fails to set up is dropped.
fn accept_all(poll: &Poll, listener: &TcpListener, conns: &mut Slab<Conn>) {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nodelay(true);
                let entry = conns.vacant_entry();
                let token = Token(entry.key());
                if poll
                    .registry()
                    .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                    .is_ok()
                {
                    entry.insert(Conn {
                        stream,
                        pending: Vec::new(),
                        off: 0,
                    });
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            // Aborted connections and interrupted calls: try the next one.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                ) => {}
            // EMFILE and the like: wait for the next edge.
            Err(_) => return,
        }
    }
}

impl Conn {
    /// Reads and echoes until the socket is drained or output backs up.
    fn read_and_echo(&mut self, buf: &mut [u8]) -> Verdict {
        while self.pending.is_empty() {
            match self.stream.read(buf) {
                Ok(0) => return Verdict::Close,
                Ok(n) => {
                    if self.write_all_or_keep(&buf[..n]).is_err() {
                        return Verdict::Close;
                    }
                    if n < buf.len() {
                        return Verdict::Keep; // short read: drained
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Verdict::Keep,
                Err(_) => return Verdict::Close,
            }
        }
        Verdict::Keep
    }

    /// Writes `data` fully, or keeps its unsent tail in `pending`.
    fn write_all_or_keep(&mut self, data: &[u8]) -> io::Result<()> {
        let mut done = 0;
        while done < data.len() {
            match self.stream.write(&data[done..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.pending.extend_from_slice(&data[done..]);
                    self.off = 0;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends what is pending: `Ok(true)` when it is all gone, `Ok(false)` when some is left.
    fn flush(&mut self) -> io::Result<bool> {
        while self.off < self.pending.len() {
            match self.stream.write(&self.pending[self.off..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.off += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        // Give the memory back, as the C peer does: an idle connection holds no buffer.
        self.pending = Vec::new();
        self.off = 0;
        Ok(true)
    }
}
