//! Restart on the same port at once, with the old connections in TIME-WAIT (S18).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;

use evdrive_tests::{connect, expect_eof, observe, sockaddr_in, tcp_socket, Server, WAIT};
use protocols::echo::Echo;
use reactor::{Cx, ListenOptions, Protocol};

/// Answers the first bytes with "bye" and closes: the server sends the first FIN, so its side
/// of the connection ends in TIME-WAIT.
struct SayByeAndClose;

impl<App> Protocol<App> for SayByeAndClose {
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        cx.write(b"bye");
        cx.close();
        data.len()
    }
}

/// Connections on `port` in TIME-WAIT, from `/proc/net/tcp`.
fn time_wait_on(port: u16) -> io::Result<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp")?;
    let local = format!("0100007F:{port:04X}");
    Ok(table
        .lines()
        .skip(1)
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.len() > 3 && cols[1] == local && cols[3] == "06"
        })
        .count())
}

/// Binds a fresh socket to `addr` without `SO_REUSEADDR` (the mistake S18 warns about).
fn bind_without_reuseaddr(addr: SocketAddr) -> io::Result<()> {
    let fd = tcp_socket()?;
    sockaddr_in(addr)?; // IPv4 only
    reactor::sys::bind_socket(fd.as_fd(), &addr)
}

/// S18: a server whose connections sit in TIME-WAIT on its side (it closed first), and one
/// more still open when it stops, is dropped; a new reactor listens on the same address at
/// once and serves. (A socket without `SO_REUSEADDR` could not bind there.)
#[test]
fn a_new_reactor_binds_the_same_port_at_once() -> io::Result<()> {
    evdrive_tests::init_log();
    let (watch, mut observer) = observe();
    let first = Server::listen(
        || (),
        ListenOptions::default(),
        move |_, _: SocketAddr| watch.wrap(SayByeAndClose),
    )?;
    let addr = first.addr();

    // Connections the server closes first.
    for _ in 0..3 {
        let mut c = connect(addr)?;
        c.write_all(b"hi")?;
        let mut bye = [0u8; 3];
        c.read_exact(&mut bye)?;
        assert_eq!(&bye, b"bye");
        expect_eof(&mut c)?;
    }
    // One still open when the server stops.
    let mut open = connect(addr)?;
    let opened: Vec<_> = (0..4).fold(Vec::new(), |mut seen, _| {
        seen.push(observer.wait_open(&seen));
        seen
    });
    for conn in &opened[..3] {
        observer.wait_close(*conn);
    }
    first.stop()?;
    expect_eof(&mut open)?;
    drop(open);
    assert!(
        time_wait_on(addr.port())? >= 3,
        "no TIME-WAIT on the server side"
    );
    let err = bind_without_reuseaddr(addr).expect_err("TIME-WAIT blocks a plain bind");
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");

    // The restart.
    let second = Server::start(
        || (),
        move |r| {
            let id = r.listen(addr, ListenOptions::default(), |_, _| Echo)?;
            r.listener_addr(id)
        },
    )?;
    let mut c = connect(addr)?;
    c.write_all(b"served again")?;
    let mut back = [0u8; 12];
    c.read_exact(&mut back)?;
    assert_eq!(&back, b"served again");
    drop(c);
    second.shutdown(WAIT)?;
    Ok(())
}
