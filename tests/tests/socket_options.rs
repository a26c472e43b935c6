//! Socket options as the reactor's own sockets see them (S13, S17, S19, S20, S22): read back from
//! the kernel with `getsockopt` on the server's own socket, not from the values the test passed.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use evdrive_tests::{connect, localhost, Server, WAIT};
use reactor::{ConnConfig, Cx, Keepalive, ListenOptions, Protocol, SocketRef, TimerId};

/// Reads what `read` takes from its socket on open and reports it.
struct Probe<T> {
    tx: Sender<io::Result<T>>,
    read: fn(SocketRef<'_>) -> io::Result<T>,
}

impl<T> Probe<T> {
    fn new(tx: &Sender<io::Result<T>>, read: fn(SocketRef<'_>) -> io::Result<T>) -> Self {
        Probe {
            tx: tx.clone(),
            read,
        }
    }
}

impl<App, T> Protocol<App> for Probe<T> {
    fn on_open(&mut self, cx: &mut Cx<'_, App>) {
        let socket = cx.socket().expect("a TCP connection has a socket");
        let _ = self.tx.send((self.read)(socket));
    }

    fn on_data(&mut self, _cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        data.len()
    }
}

/// An integer option of `socket`, read with `getsockopt` directly (not through the library).
fn get_int(socket: &SocketRef<'_>, level: libc::c_int, name: libc::c_int) -> io::Result<i64> {
    let value = reactor::sys::int_option(socket.as_fd(), level, name)?;
    Ok(i64::from(value))
}

/// What the keepalive and linger tests read back.
#[derive(Debug)]
struct Readback {
    keepalive: Option<Keepalive>,
    nodelay: bool,
    linger_before: Option<Duration>,
    linger_abortive: Option<Duration>,
    linger_after: Option<Duration>,
}

fn read_keepalive_and_linger(socket: SocketRef<'_>) -> io::Result<Readback> {
    let keepalive = socket.keepalive()?;
    let nodelay = socket.nodelay()?;
    let linger_before = socket.linger()?;
    socket.set_abortive_close(true)?;
    let linger_abortive = socket.linger()?;
    socket.set_abortive_close(false)?;
    let linger_after = socket.linger()?;
    Ok(Readback {
        keepalive,
        nodelay,
        linger_before,
        linger_abortive,
        linger_after,
    })
}

/// S13: the keepalive settings of `ConnConfig` reach every accepted socket: `SO_KEEPALIVE` is
/// on and `TCP_KEEPIDLE`/`TCP_KEEPINTVL`/`TCP_KEEPCNT` read back as configured (the default
/// configuration leaves keepalive off). S20: `TCP_NODELAY` as configured.
#[test]
fn keepalive_and_nodelay_settings_reach_the_accepted_socket() -> io::Result<()> {
    let ka = Keepalive {
        idle: Duration::from_secs(7),
        interval: Duration::from_secs(3),
        count: 4,
    };
    for keepalive in [Some(ka), None] {
        let (tx, rx) = mpsc::channel();
        let opts = ListenOptions::default().with_conn(
            ConnConfig::default()
                .with_keepalive(keepalive)
                .with_nodelay(keepalive.is_some()),
        );
        let server = Server::listen(
            || (),
            opts,
            move |_, _| Probe::new(&tx, read_keepalive_and_linger),
        )?;
        let _client = connect(server.addr())?;
        let got = rx.recv_timeout(WAIT).expect("the connection opened")?;
        assert_eq!(got.keepalive, keepalive, "{got:?}");
        assert_eq!(got.nodelay, keepalive.is_some(), "{got:?}");
    }
    Ok(())
}

/// S17, S20: the public `SO_LINGER` option is abortive close or off, and reads back as such
/// (zero, or off), never a nonzero time, which would make `close` block the loop.
#[test]
fn abortive_close_option_reads_back_as_zero_or_off() -> io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let server = Server::listen(
        || (),
        ListenOptions::default(),
        move |_, _| Probe::new(&tx, read_keepalive_and_linger),
    )?;
    let _client = connect(server.addr())?;
    let got = rx.recv_timeout(WAIT).expect("the connection opened")?;
    assert_eq!(got.linger_before, None, "{got:?}");
    assert_eq!(got.linger_abortive, Some(Duration::ZERO), "{got:?}");
    assert_eq!(got.linger_after, None, "{got:?}");

    drop(server);
    Ok(())
}

/// Buffer sizes asked for in the S19 and S20 tests: odd values, so that no default or
/// autotuned size can be mistaken for them. Linux keeps twice what it is asked for.
const SEND_BUFFER: usize = 24_000;
const RECV_BUFFER: usize = 40_000;

/// `SO_SNDBUF` and `SO_RCVBUF` of a socket, as the kernel reports them.
fn buffer_sizes(socket: SocketRef<'_>) -> io::Result<(i64, i64)> {
    Ok((
        get_int(&socket, libc::SOL_SOCKET, libc::SO_SNDBUF)?,
        get_int(&socket, libc::SOL_SOCKET, libc::SO_RCVBUF)?,
    ))
}

/// S19: buffer sizes in `ListenOptions` are set on the listener, so a connection it accepts
/// has them from its start; those in `ConnConfig` of an outgoing connection are set on its
/// socket. Both read back as the kernel keeps them (doubled), on the sockets the reactor opened.
#[test]
fn buffer_sizes_reach_the_listener_and_the_connecting_socket() -> io::Result<()> {
    let expected = (2 * SEND_BUFFER as i64, 2 * RECV_BUFFER as i64);
    let (tx, rx) = mpsc::channel();
    let opts = ListenOptions::default()
        .with_send_buffer_size(Some(SEND_BUFFER))
        .with_recv_buffer_size(Some(RECV_BUFFER));
    let accepted_tx = tx.clone();
    let server = Server::listen(
        || (),
        opts,
        move |_, _| Probe::new(&accepted_tx, buffer_sizes),
    )?;
    let _client = connect(server.addr())?;
    let accepted = rx.recv_timeout(WAIT).expect("the connection opened")?;
    assert_eq!(accepted, expected, "accepted: (SO_SNDBUF, SO_RCVBUF)");

    // An outgoing connection from the same reactor to a plain listener.
    let peer = std::net::TcpListener::bind(localhost())?;
    let to = peer.local_addr()?;
    let config = ConnConfig::default()
        .with_send_buffer_size(Some(SEND_BUFFER))
        .with_recv_buffer_size(Some(RECV_BUFFER));
    server.with(move |r| r.connect(to, Probe::new(&tx, buffer_sizes), config))?;
    let _peer_side = peer.accept()?;
    let connected = rx.recv_timeout(WAIT).expect("the connect completed")?;
    assert_eq!(connected, expected, "connected: (SO_SNDBUF, SO_RCVBUF)");
    drop((_client, _peer_side));
    server.shutdown(WAIT)
}

/// Each typed setter, then the option as `getsockopt` reports it: `(name, value)` pairs.
fn set_each_option(socket: SocketRef<'_>) -> io::Result<Vec<(&'static str, i64)>> {
    use libc::{IPPROTO_TCP, SOL_SOCKET};
    let mut got = Vec::new();
    let mut read = |name, level, option| -> io::Result<()> {
        got.push((name, get_int(&socket, level, option)?));
        Ok(())
    };
    for on in [true, false] {
        socket.set_nodelay(on)?;
        read("TCP_NODELAY", IPPROTO_TCP, libc::TCP_NODELAY)?;
        socket.set_cork(on)?;
        read("TCP_CORK", IPPROTO_TCP, libc::TCP_CORK)?;
        socket.set_quickack(on)?;
        read("TCP_QUICKACK", IPPROTO_TCP, libc::TCP_QUICKACK)?;
    }
    socket.set_recv_lowat(100)?;
    read("SO_RCVLOWAT", SOL_SOCKET, libc::SO_RCVLOWAT)?;
    socket.set_send_buffer_size(SEND_BUFFER)?;
    read("SO_SNDBUF", SOL_SOCKET, libc::SO_SNDBUF)?;
    socket.set_recv_buffer_size(RECV_BUFFER)?;
    read("SO_RCVBUF", SOL_SOCKET, libc::SO_RCVBUF)?;
    socket.set_keepalive(Some(Keepalive {
        idle: Duration::from_secs(11),
        interval: Duration::from_secs(5),
        count: 6,
    }))?;
    read("SO_KEEPALIVE", SOL_SOCKET, libc::SO_KEEPALIVE)?;
    read("TCP_KEEPIDLE", IPPROTO_TCP, libc::TCP_KEEPIDLE)?;
    read("TCP_KEEPINTVL", IPPROTO_TCP, libc::TCP_KEEPINTVL)?;
    read("TCP_KEEPCNT", IPPROTO_TCP, libc::TCP_KEEPCNT)?;
    socket.set_keepalive(None)?;
    read("SO_KEEPALIVE", SOL_SOCKET, libc::SO_KEEPALIVE)?;
    Ok(got)
}

/// S20: every typed option of `SocketRef` reaches the socket: each setter's value reads back
/// with `getsockopt`, on and then off where it is a switch. (`TCP_MAXSEG` is left out: an open
/// connection reports the segment size in use, not the cap.)
#[test]
fn each_typed_option_reads_back_from_the_socket() -> io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let server = Server::listen(
        || (),
        ListenOptions::default(),
        move |_, _| Probe::new(&tx, set_each_option),
    )?;
    let _client = connect(server.addr())?;
    let got = rx.recv_timeout(WAIT).expect("the connection opened")?;
    let expected = vec![
        ("TCP_NODELAY", 1),
        ("TCP_CORK", 1),
        ("TCP_QUICKACK", 1),
        ("TCP_NODELAY", 0),
        ("TCP_CORK", 0),
        ("TCP_QUICKACK", 0),
        ("SO_RCVLOWAT", 100),
        ("SO_SNDBUF", 2 * SEND_BUFFER as i64),
        ("SO_RCVBUF", 2 * RECV_BUFFER as i64),
        ("SO_KEEPALIVE", 1),
        ("TCP_KEEPIDLE", 11),
        ("TCP_KEEPINTVL", 5),
        ("TCP_KEEPCNT", 6),
        ("SO_KEEPALIVE", 0),
    ];
    assert_eq!(got, expected);
    drop(_client);
    server.shutdown(WAIT)
}

/// What [`Peeker`] saw: the byte count `FIONREAD` reported and the bytes `MSG_PEEK` copied
/// while reading was paused, then the bytes delivered once it resumed.
#[derive(Debug)]
enum Seen {
    Waiting { readable: usize, peeked: Vec<u8> },
    Delivered(Vec<u8>),
}

/// Consumes a two-byte "go", pauses reading and answers "ok"; then looks at the receive queue
/// until all of [`PAYLOAD`] waits there, reports it, and resumes reading.
struct Peeker {
    tx: Sender<io::Result<Seen>>,
    got: Vec<u8>,
    peeked: bool,
}

/// What the client sends while the server's reading is paused.
const PAYLOAD: &[u8] = b"queued in the kernel, not yet read by the reactor";

impl Protocol<()> for Peeker {
    fn on_data(&mut self, cx: &mut Cx<'_, ()>, data: &[u8]) -> usize {
        if !self.peeked {
            if data.len() < 2 {
                return 0;
            }
            assert_eq!(&data[..2], b"go");
            cx.pause_reading();
            cx.write(b"ok");
            cx.set_timer(Duration::from_millis(1), 0);
            return 2;
        }
        self.got.extend_from_slice(data);
        if self.got.len() >= PAYLOAD.len() {
            let _ = self
                .tx
                .send(Ok(Seen::Delivered(std::mem::take(&mut self.got))));
        }
        data.len()
    }

    /// Reading is paused, so no readiness tells when the payload has arrived: look again each
    /// millisecond until `FIONREAD` counts all of it (the test's own limit bounds the wait).
    fn on_timer(&mut self, cx: &mut Cx<'_, ()>, _timer: TimerId) {
        let look = || -> io::Result<Option<Seen>> {
            let readable = cx.bytes_readable()?;
            if readable < PAYLOAD.len() {
                return Ok(None);
            }
            let mut buf = vec![0; PAYLOAD.len() + 16];
            let n = cx.peek(&mut buf)?;
            buf.truncate(n);
            Ok(Some(Seen::Waiting {
                readable,
                peeked: buf,
            }))
        };
        match look() {
            Ok(None) => {
                cx.set_timer(Duration::from_millis(1), 0);
            }
            Ok(Some(seen)) => {
                self.peeked = true;
                let _ = self.tx.send(Ok(seen));
                cx.resume_reading();
            }
            Err(e) => {
                let _ = self.tx.send(Err(e));
            }
        }
    }
}

/// S22: with reading paused and a known payload queued in the kernel, `bytes_readable` counts
/// exactly its bytes and `peek` copies them; they are still delivered, whole, once reading
/// resumes (the peek consumed nothing).
#[test]
fn bytes_readable_and_peek_see_queued_input_without_consuming_it() -> io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let server = Server::listen(
        || (),
        ListenOptions::default(),
        move |_, _| Peeker {
            tx: tx.clone(),
            got: Vec::new(),
            peeked: false,
        },
    )?;
    let mut client = connect(server.addr())?;
    client.write_all(b"go")?;
    let mut ok = [0; 2];
    client.read_exact(&mut ok)?;
    assert_eq!(&ok, b"ok");
    client.write_all(PAYLOAD)?;

    match rx.recv_timeout(WAIT).expect("the payload was seen")? {
        Seen::Waiting { readable, peeked } => {
            assert_eq!(readable, PAYLOAD.len());
            assert_eq!(peeked, PAYLOAD);
        }
        other => panic!("delivered before it was peeked: {other:?}"),
    }
    match rx.recv_timeout(WAIT).expect("the payload was delivered")? {
        Seen::Delivered(bytes) => assert_eq!(bytes, PAYLOAD),
        other => panic!("{other:?}"),
    }
    drop(client);
    server.shutdown(WAIT)
}
