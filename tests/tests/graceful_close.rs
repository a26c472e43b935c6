//! Closing: a graceful close delivers every queued byte, then FIN; an abort sends RST.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use evdrive_tests::{
    connect, connect_with, observe, pattern, set_recv_buffer, PatternCheck, Server, WAIT,
};
use reactor::{CloseKind, ConnConfig, Cx, ListenOptions, Protocol};

/// Bytes queued before the close.
const TOTAL: usize = 4 * 1024 * 1024;

/// On the first bytes of a request, queues the whole answer and closes at once, leaving the
/// rest of the request unread.
struct AnswerAndClose {
    answered: bool,
}

impl<App> Protocol<App> for AnswerAndClose {
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        if !self.answered {
            self.answered = true;
            assert!(cx.write_vec(pattern(0, TOTAL)).is_ok());
            cx.close();
            assert!(
                !cx.write(b"after close"),
                "a closing connection took a write"
            );
        }
        data.len()
    }
}

/// S14, S17: the handler queues 4 MiB and closes in the same callback, with more of the
/// client's request still unread. The client, reading slowly through a small receive buffer,
/// gets every byte and then end of stream, not a reset (the close flushes, sends FIN, and reads
/// and discards the peer's input until its FIN). The server reports `Local`.
#[test]
fn close_delivers_everything_queued_then_fin() -> io::Result<()> {
    evdrive_tests::init_log();
    let (watch, mut observer) = observe();
    let opts = ListenOptions::default().with_conn(ConnConfig::default().with_max_output(2 * TOTAL));
    let server = Server::listen(
        || (),
        opts,
        move |_, _: SocketAddr| watch.wrap(AnswerAndClose { answered: false }),
    )?;
    let mut client = connect_with(server.addr(), |fd| set_recv_buffer(fd, 16 * 1024))?;
    let conn = observer.wait_open(&[]);
    // A request larger than one read, so some of it is still unread when the handler closes.
    client.write_all(&vec![b'r'; 200 * 1024])?;

    let mut check = PatternCheck::default();
    let mut buf = [0u8; 4000];
    loop {
        let n = client.read(&mut buf)?; // a reset here fails the test
        if n == 0 {
            break;
        }
        check.check(&buf[..n]);
    }
    assert_eq!(check.pos, TOTAL as u64);
    drop(client);
    assert_eq!(observer.wait_close(conn), CloseKind::Local);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}

/// Aborts on the first byte, with output queued.
struct AbortOnData;

impl<App> Protocol<App> for AbortOnData {
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        cx.write(b"this is dropped");
        cx.abort();
        data.len()
    }
}

/// S17: `Cx::abort` closes with RST at once, dropping queued output: the client reads
/// `ECONNRESET`, and the server reports `Aborted`.
#[test]
fn abort_resets_the_connection() -> io::Result<()> {
    evdrive_tests::init_log();
    let (watch, mut observer) = observe();
    let server = Server::listen(
        || (),
        ListenOptions::default(),
        move |_, _: SocketAddr| watch.wrap(AbortOnData),
    )?;
    let mut client = connect(server.addr())?;
    let conn = observer.wait_open(&[]);
    client.write_all(b"x")?;
    assert_eq!(observer.wait_close(conn), CloseKind::Aborted);
    let mut buf = [0u8; 64];
    let err = client
        .read(&mut buf)
        .expect_err("an aborted connection reads a reset, not data or end of stream");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}
