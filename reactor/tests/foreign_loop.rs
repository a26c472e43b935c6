//! The reactor driven from a foreign `poll(2)` loop that also watches a pipe, the way the
//! `foreign_loop` example watches stdin: the reactor's descriptor becomes readable when it has
//! work, `next_timeout` bounds the wait, and `turn(Some(ZERO))` never blocks. Several lines
//! arriving in one read are all handled at once, none left in a buffer `poll` cannot see.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
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

/// Takes every complete line (with its newline) out of `pending`, as the example does.
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

#[test]
fn foreign_poll_loop_drives_sockets_timers_and_a_pipe() -> io::Result<()> {
    let mut reactor = Reactor::new(Vec::new())?;
    let opts = ListenOptions::default()
        .with_conn(ConnConfig::default().with_idle_timeout(Some(Duration::from_millis(300))));
    let listener = reactor.listen("127.0.0.1:0".parse().unwrap(), opts, |_, _| Echo)?;
    let addr = reactor.listener_addr(listener)?;
    let (mut pipe_r, mut pipe_w) = io::pipe()?;

    // The client runs in a thread: sends, reads the echo, then puts three lines into the pipe
    // in one write and waits for all three to be broadcast before it writes a fourth (had the
    // loop handled only the first line of the read, the others would never come, and the idle
    // timeout would close the client without them); then it stays silent until the idle
    // timeout (a wheel timer) closes it.
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
                pipe_w.write_all(b"one\ntwo\nthree\n")?;
            }
            if got.ends_with(b"> three\n") {
                pipe_w.write_all(b"four\n")?;
            }
        }
    });

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut closed_seen = false;
    let mut pending = Vec::new();
    let mut reads = 0;
    let mut pipe_open = true;
    while !closed_seen && Instant::now() < deadline {
        let mut fds = vec![reactor.as_fd()];
        if pipe_open {
            fds.push(pipe_r.as_fd());
        }
        let ready = evdrive_reactor::sys::poll_readable(
            &fds,
            Some(reactor.next_timeout().unwrap_or(Duration::from_secs(1))),
        )?;
        reactor.turn(Some(Duration::ZERO))?;
        if ready.get(1) == Some(&true) {
            // One read per readiness; every whole line it completed is handled now.
            let mut buf = [0u8; 4096];
            let n = pipe_r.read(&mut buf)?;
            if n == 0 {
                // The writer is gone (the client finished): nothing more to watch.
                pipe_open = false;
                continue;
            }
            reads += 1;
            pending.extend_from_slice(&buf[..n]);
            let mut cx = reactor.cx();
            for line in take_lines(&mut pending) {
                for id in cx.app().clone() {
                    cx.send_to(id, b"> ");
                    cx.send_to(id, &line);
                }
            }
        }
        closed_seen = reactor.stats().closed_total() == 1;
    }
    let (got, silent_for) = client.join().unwrap()?;
    assert_eq!(got, b"ping> one\n> two\n> three\n> four\n");
    // The three lines came in one read (one write of 14 bytes to a pipe is atomic).
    assert_eq!(reads, 2, "the pipe was read {reads} times for two writes");
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
