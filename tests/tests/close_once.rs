//! `on_close` runs exactly once for every connection, whichever way it ends.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use evdrive_tests::{
    closed_port, connect, expect_eof, listen_with_backlog, read_to_eof, reset, Server, WAIT,
};
use reactor::{CloseKind, CloseReason, ConnConfig, ConnId, Cx, ListenOptions, Protocol, TimerId};

/// The user state: what every handler of the reactor reported.
#[derive(Debug, Default)]
struct Counts {
    /// `on_open` calls by connection.
    opened: HashMap<ConnId, u32>,
    /// `on_close` reasons by connection.
    closed: HashMap<ConnId, Vec<CloseKind>>,
}

/// Counts `on_open` and `on_close` of the handler it wraps in [`Counts`].
struct Counted<P>(P);

impl<P: Protocol<Counts>> Protocol<Counts> for Counted<P> {
    fn on_open(&mut self, cx: &mut Cx<'_, Counts>) {
        let id = cx.id();
        *cx.app().opened.entry(id).or_default() += 1;
        self.0.on_open(cx);
    }
    fn on_data(&mut self, cx: &mut Cx<'_, Counts>, data: &[u8]) -> usize {
        self.0.on_data(cx, data)
    }
    fn on_timer(&mut self, cx: &mut Cx<'_, Counts>, timer: TimerId) {
        self.0.on_timer(cx, timer)
    }
    fn on_eof(&mut self, cx: &mut Cx<'_, Counts>) {
        self.0.on_eof(cx)
    }
    fn on_close(&mut self, cx: &mut Cx<'_, Counts>, reason: CloseReason) {
        let id = cx.id();
        cx.app().closed.entry(id).or_default().push(reason.kind());
        self.0.on_close(cx, reason);
    }
}

/// Acts on the first byte the client sends: `e` echo, `c` answer and close, `a` abort, `p`
/// never consume, `f` flood past the output cap.
#[derive(Default)]
struct Act {
    mode: Option<u8>,
}

impl Protocol<Counts> for Act {
    fn on_data(&mut self, cx: &mut Cx<'_, Counts>, data: &[u8]) -> usize {
        let mode = *self.mode.get_or_insert(data[0]);
        match mode {
            b'c' => {
                cx.write(b"bye");
                cx.close();
            }
            b'a' => cx.abort(),
            b'p' => return 0,
            b'f' => {
                let _ = cx.write_vec(vec![0; 512 * 1024]);
            }
            _ => {
                cx.write(data);
            }
        }
        data.len()
    }
}

/// An outgoing connection that asks the server to close (`c`).
struct Caller;

impl Protocol<Counts> for Caller {
    fn on_open(&mut self, cx: &mut Cx<'_, Counts>) {
        cx.write(b"c");
    }
    fn on_data(&mut self, _cx: &mut Cx<'_, Counts>, data: &[u8]) -> usize {
        data.len()
    }
}

fn send_and_read(client: &mut TcpStream, msg: &[u8], reply: usize) -> io::Result<Vec<u8>> {
    client.write_all(msg)?;
    let mut back = vec![0u8; reply];
    client.read_exact(&mut back)?;
    Ok(back)
}

/// Reads until the stream ends one way or the other.
fn read_until_end(client: &mut TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match client.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if evdrive_tests::is_reset(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// S4, S7, S11, S14, S21, S24: connections of one reactor end in every way there is (peer
/// close, local close, abort, reset, protocol error, slow consumer, first-byte timeout,
/// refused and timed-out connects, a connect that completes, and shutdown); counters in the
/// user state show one `on_close` for each, and one `on_open` at most.
#[test]
fn on_close_runs_exactly_once_per_connection() -> io::Result<()> {
    evdrive_tests::init_log();
    let opts = ListenOptions::default().with_conn(
        ConnConfig::default()
            .with_max_input(1024)
            .with_max_output(256 * 1024)
            .with_first_byte_timeout(Some(Duration::from_millis(300))),
    );
    let server = Server::listen(Counts::default, opts, |_, _: SocketAddr| {
        Counted(Act::default())
    })?;
    let addr = server.addr();

    // Peer close.
    let mut c = connect(addr)?;
    assert_eq!(send_and_read(&mut c, b"echo", 4)?, b"echo");
    c.shutdown(std::net::Shutdown::Write)?;
    expect_eof(&mut c)?;
    // Local close.
    let mut c = connect(addr)?;
    assert_eq!(send_and_read(&mut c, b"c", 3)?, b"bye");
    expect_eof(&mut c)?;
    drop(c);
    // Abort.
    let mut c = connect(addr)?;
    c.write_all(b"a")?;
    read_until_end(&mut c)?;
    // Protocol error.
    let mut c = connect(addr)?;
    c.write_all(&[b'p'; 2048])?;
    assert!(read_to_eof(&mut c)?.is_empty());
    drop(c);
    // Slow consumer.
    let mut c = connect(addr)?;
    c.write_all(b"f")?;
    read_until_end(&mut c)?;
    // Reset by the peer.
    let mut c = connect(addr)?;
    assert_eq!(send_and_read(&mut c, b"r", 1)?, b"r");
    reset(c)?;
    // First-byte timeout.
    let mut c = connect(addr)?;
    expect_eof(&mut c)?;
    drop(c);
    // Outgoing: refused, timed out, completed.
    let refused = closed_port()?;
    let silent = listen_with_backlog(0)?;
    let silent_addr = silent.local_addr()?;
    let _filler = connect(silent_addr)?;
    server.with(move |r| {
        let quick = ConnConfig::default().with_connect_timeout(Duration::from_millis(200));
        r.connect(refused, Counted(Caller), ConnConfig::default())?;
        r.connect(silent_addr, Counted(Caller), quick)?;
        r.connect(addr, Counted(Caller), ConnConfig::default())
    })?;
    // Still open at shutdown.
    let mut open = connect(addr)?;
    assert_eq!(send_and_read(&mut open, b"s", 1)?, b"s");

    // Wait until everything but the open one has ended, then shut down.
    let expected_before_shutdown = 12 - 1;
    server
        .wait_for(WAIT, move |r| {
            (r.stats().closed_total() >= expected_before_shutdown).then_some(())
        })
        .expect("connections did not end");
    // The open client answers the shutdown's FIN with its own.
    let answer = std::thread::spawn(move || read_to_eof(&mut open));
    let (counts, stats) =
        server.shutdown_then(WAIT, |r| (std::mem::take(r.app()), r.stats().clone()))?;
    answer.join().expect("the open client's thread")?;

    // Exactly one close per connection, at most one open.
    for (conn, reasons) in &counts.closed {
        assert_eq!(reasons.len(), 1, "{conn:?} closed {reasons:?}");
    }
    for (conn, n) in &counts.opened {
        assert_eq!(*n, 1, "{conn:?} opened {n} times");
        assert!(
            counts.closed.contains_key(conn),
            "{conn:?} opened, never closed"
        );
    }
    let mut kinds: Vec<CloseKind> = counts.closed.values().map(|r| r[0]).collect();
    kinds.sort();
    // Echo and the caller (after the server said bye) see the peer close; the server closes
    // two (a client and the caller's server side); the first-byte timeout is an idle timeout.
    let mut expected = vec![
        CloseKind::PeerClosed,
        CloseKind::PeerClosed,
        CloseKind::Local,
        CloseKind::Local,
        CloseKind::Aborted,
        CloseKind::Protocol,
        CloseKind::SlowConsumer,
        CloseKind::Reset,
        CloseKind::IdleTimeout,
        CloseKind::Refused,
        CloseKind::ConnectTimeout,
        CloseKind::Shutdown,
    ];
    expected.sort();
    assert_eq!(kinds, expected);
    assert_eq!(
        counts.opened.len(),
        12 - 2,
        "every connection but the failed connects"
    );
    assert_eq!(stats.closed_total(), 12);
    assert_eq!(stats.open, 0);
    assert_eq!(stats.accepted, 9);
    assert_eq!(stats.connected, 1);
    Ok(())
}
