//! Edge-triggered reading done right: no connection starves or hangs, and input that arrived
//! while reading was paused is delivered after it resumes, without a new edge.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use evdrive_tests::{connect, observe, pattern, PatternCheck, Server, WAIT};
use protocols::echo::Echo;
use reactor::sys::poll::{poll, PollFd, POLLERR, POLLHUP, POLLIN, POLLOUT};
use reactor::{Cx, ListenOptions, Protocol, TimerId};

/// Connections in the concurrent test.
const CONNS: usize = 50;
/// Bytes each of them sends.
const PER_CONN: usize = 1024 * 1024;

/// One client of the concurrent test, driven without blocking.
struct Flow {
    stream: TcpStream,
    sent: usize,
    check: PatternCheck,
    write_closed: bool,
    done: bool,
}

/// Many connections each send 1 MiB to an echo server at once, reading the echo as it comes
/// (one client thread, `poll` over all sockets). Every connection completes with its bytes in
/// order: none starves or hangs, though each has more input than one turn's read budget.
#[test]
fn many_concurrent_connections_all_complete() -> io::Result<()> {
    evdrive_tests::init_log();
    let (watch, mut observer) = observe();
    let server = Server::listen(
        || (),
        ListenOptions::default(),
        move |_, _: SocketAddr| watch.wrap(Echo),
    )?;
    let mut flows: Vec<Flow> = (0..CONNS)
        .map(|_| {
            let stream = connect(server.addr())?;
            stream.set_nonblocking(true)?;
            Ok(Flow {
                stream,
                sent: 0,
                check: PatternCheck::default(),
                write_closed: false,
                done: false,
            })
        })
        .collect::<io::Result<_>>()?;
    let chunk = pattern(0, PER_CONN + 251);
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_progress = Instant::now();
    while flows.iter().any(|f| !f.done) {
        assert!(
            last_progress.elapsed() < WAIT,
            "no progress for {WAIT:?}: {} of {CONNS} done",
            flows.iter().filter(|f| f.done).count()
        );
        let mut fds: Vec<PollFd<'_>> = flows
            .iter()
            .map(|f| {
                let events = if f.done {
                    0
                } else if f.write_closed {
                    POLLIN
                } else {
                    POLLIN | POLLOUT
                };
                PollFd::new(f.stream.as_fd(), events)
            })
            .collect();
        match poll(&mut fds, Some(Duration::from_millis(100))) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let revents: Vec<libc::c_short> = fds.iter().map(PollFd::revents).collect();
        drop(fds);
        for (f, revents) in flows.iter_mut().zip(revents) {
            if revents & POLLOUT != 0 && !f.write_closed {
                // The pattern repeats every 251 bytes, so any window of `chunk` continues it.
                let offset = f.sent % 251;
                let end = offset + (PER_CONN - f.sent).min(64 * 1024);
                match f.stream.write(&chunk[offset..end]) {
                    Ok(n) => {
                        f.sent += n;
                        last_progress = Instant::now();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if f.sent == PER_CONN {
                    f.stream.shutdown(std::net::Shutdown::Write)?;
                    f.write_closed = true;
                }
            }
            if revents & (POLLIN | POLLHUP | POLLERR) != 0 {
                loop {
                    match f.stream.read(&mut buf) {
                        Ok(0) => {
                            assert_eq!(f.check.pos, PER_CONN as u64, "short echo");
                            f.done = true;
                            break;
                        }
                        Ok(n) => {
                            f.check.check(&buf[..n]);
                            last_progress = Instant::now();
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    let stats = server.stats();
    assert_eq!(stats.bytes_in, (CONNS * PER_CONN) as u64);
    assert_eq!(stats.bytes_out, (CONNS * PER_CONN) as u64);
    drop(flows);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}

/// What [`Napper`] tells the test.
#[derive(Debug, PartialEq)]
enum Note {
    /// Reading paused after the first bytes.
    Paused,
    /// Bytes received so far, after reading resumed.
    Total(usize),
    /// Input was delivered while reading was paused.
    DeliveredWhilePaused,
}

/// Pauses reading after its first bytes and resumes it from a timer; counts what it gets and
/// echoes it if asked to.
struct Napper {
    echo: bool,
    paused: bool,
    napped: bool,
    total: usize,
}

impl Napper {
    fn new(echo: bool) -> Self {
        Napper {
            echo,
            paused: false,
            napped: false,
            total: 0,
        }
    }
}

/// How long reading stays paused.
const NAP: Duration = Duration::from_millis(100);

impl Protocol<Sender<Note>> for Napper {
    fn on_data(&mut self, cx: &mut Cx<'_, Sender<Note>>, data: &[u8]) -> usize {
        if self.paused {
            let _ = cx.app().send(Note::DeliveredWhilePaused);
        }
        self.total += data.len();
        if self.echo {
            cx.write(data);
        }
        if !self.napped {
            self.napped = true;
            self.paused = true;
            cx.pause_reading();
            cx.set_timer(NAP, 0);
            let _ = cx.app().send(Note::Paused);
        } else {
            let total = self.total;
            let _ = cx.app().send(Note::Total(total));
        }
        data.len()
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Sender<Note>>, _timer: TimerId) {
        self.paused = false;
        cx.resume_reading();
    }
}

fn napping_server(echo: bool) -> io::Result<(Server<Sender<Note>>, mpsc::Receiver<Note>)> {
    let (notes_tx, notes) = mpsc::channel();
    let server = Server::listen(
        move || notes_tx,
        ListenOptions::default(),
        move |_, _: SocketAddr| Napper::new(echo),
    )?;
    Ok((server, notes))
}

/// Bytes sent while the handler has paused reading are delivered once it resumes, though
/// nothing arrives after the resume to raise a new edge.
#[test]
fn input_that_arrived_while_paused_is_delivered_after_resume() -> io::Result<()> {
    evdrive_tests::init_log();
    let (server, notes) = napping_server(true)?;
    let mut client = connect(server.addr())?;
    client.write_all(b"1")?;
    let mut one = [0u8; 1];
    client.read_exact(&mut one)?;
    assert_eq!(notes.recv_timeout(WAIT), Ok(Note::Paused));
    client.write_all(b"234")?;
    // Nothing more is sent: only the resume can bring these bytes in.
    let mut rest = [0u8; 3];
    client.read_exact(&mut rest)?;
    assert_eq!(&rest, b"234");
    assert_eq!(notes.recv_timeout(WAIT), Ok(Note::Total(4)));
    assert!(notes.try_recv().is_err(), "delivered while paused");
    drop(client);
    server.shutdown(WAIT)?;
    Ok(())
}

/// More input than one turn's read budget piles up while reading is paused (the client's
/// writes block); after the resume all of it is delivered.
#[test]
fn a_large_backlog_from_a_pause_is_delivered_whole() -> io::Result<()> {
    evdrive_tests::init_log();
    let (server, notes) = napping_server(false)?;
    let mut client = connect(server.addr())?;
    client.write_all(b"1")?;
    assert_eq!(notes.recv_timeout(WAIT), Ok(Note::Paused));
    let total = 1 + 4 * 1024 * 1024;
    let mut writer = client.try_clone()?;
    let sender = std::thread::spawn(move || writer.write_all(&vec![b'x'; total - 1]));
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match notes.recv_timeout(left) {
            Ok(Note::Total(n)) if n == total => break,
            Ok(Note::Total(n)) => assert!(n < total),
            other => panic!("{other:?} before all {total} bytes arrived"),
        }
    }
    sender.join().expect("the writer thread")?;
    drop(client);
    server.shutdown(WAIT)?;
    Ok(())
}
