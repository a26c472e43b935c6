//! The reactor driven from a foreign `poll(2)` loop that also watches a pipe, the way the
//! `foreign_loop` example watches stdin: the reactor's descriptor becomes readable when it has
//! work, `next_timeout` bounds the wait, and `turn(Some(ZERO))` never blocks.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use evdrive_reactor::{ConnConfig, Cx, ListenOptions, Protocol, Reactor};

struct Echo;

impl Protocol<Vec<evdrive_reactor::ConnId>> for Echo {
    fn on_open(&mut self, cx: &mut Cx<'_, Vec<evdrive_reactor::ConnId>>) {
        let id = cx.id();
        cx.app().push(id);
    }
    fn on_data(&mut self, cx: &mut Cx<'_, Vec<evdrive_reactor::ConnId>>, data: &[u8]) -> usize {
        cx.write(data);
        data.len()
    }
}

#[test]
fn foreign_poll_loop_drives_sockets_timers_and_a_pipe() -> io::Result<()> {
    let mut reactor = Reactor::new(Vec::new())?;
    let opts = ListenOptions::default()
        .with_conn(ConnConfig::default().with_idle_timeout(Some(Duration::from_millis(300))));
    let addr = reactor.listen("127.0.0.1:0".parse().unwrap(), opts, |_, _| Echo)?;
    let (mut pipe_r, mut pipe_w) = io::pipe()?;

    // The client runs in a thread: sends, reads the echo, then a broadcast from the pipe, then
    // stays silent until the idle timeout (a wheel timer) closes it.
    let client = std::thread::spawn(move || -> io::Result<(Vec<u8>, Duration)> {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"ping")?;
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        let started = Instant::now();
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok((got, started.elapsed()));
            }
            got.extend_from_slice(&buf[..n]);
            if got == b"ping" {
                pipe_w.write_all(b"from the pipe\n")?;
            }
        }
    });

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut closed_seen = false;
    while !closed_seen && Instant::now() < deadline {
        // SAFETY: `reactor` outlives this borrow within the iteration.
        let reactor_fd = unsafe { BorrowedFd::borrow_raw(reactor.as_raw_fd()) };
        let ready = evdrive_reactor::sys::poll_readable(
            &[reactor_fd, pipe_r.as_fd()],
            Some(reactor.next_timeout().unwrap_or(Duration::from_secs(1))),
        )?;
        reactor.turn(Some(Duration::ZERO))?;
        if ready[1] {
            let mut buf = [0u8; 64];
            let n = pipe_r.read(&mut buf)?;
            let mut cx = reactor.cx();
            for id in cx.app().clone() {
                cx.send_to(id, &buf[..n]);
            }
        }
        closed_seen = reactor.stats().closed_total() == 1;
    }
    let (got, silent_for) = client.join().unwrap()?;
    assert_eq!(got, b"pingfrom the pipe\n");
    assert!(
        closed_seen,
        "the idle timer never fired in the foreign loop"
    );
    assert!(
        silent_for >= Duration::from_millis(300),
        "closed early: {silent_for:?}"
    );
    assert_eq!(
        reactor
            .stats()
            .closed_by(evdrive_reactor::CloseKind::IdleTimeout),
        1
    );
    Ok(())
}
