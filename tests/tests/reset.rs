//! A peer that resets: the connection closes with the errno's own reason, and writing to it
//! does not raise SIGPIPE.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Duration;

use evdrive_tests::{connect, observe, reset, Server, WAIT};
use reactor::sys::{disposition, set_disposition, Disposition};
use reactor::{CloseKind, ConnConfig, Cx, ListenOptions, Protocol, TimerId};

/// Puts SIGPIPE back to its default action, which kills the process. (The Rust runtime
/// ignores SIGPIPE before `main`; a library must not rely on that, S6.)
fn default_sigpipe() {
    set_disposition(libc::SIGPIPE, Disposition::Default).expect("sigaction");
}

/// Whether SIGPIPE still has its default action.
fn sigpipe_is_default() -> bool {
    matches!(disposition(libc::SIGPIPE), Ok(Disposition::Default))
}

/// Reads and discards everything; never writes.
struct Sink;

impl<App> Protocol<App> for Sink {
    fn on_data(&mut self, _cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        data.len()
    }
}

/// S7: a client that closes with `SO_LINGER` 0 sends RST; the server's handler gets `Reset`.
#[test]
fn peer_reset_closes_with_reset() -> io::Result<()> {
    evdrive_tests::init_log();
    default_sigpipe();
    let (watch, mut observer) = observe();
    let server = Server::listen(
        || (),
        ListenOptions::default(),
        move |_, _: SocketAddr| watch.wrap(Sink),
    )?;
    let client = connect(server.addr())?;
    let conn = observer.wait_open(&[]);
    reset(client)?;
    assert_eq!(observer.wait_close(conn), CloseKind::Reset);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}

/// Writes 64 KiB every millisecond for as long as the connection takes writes, also after
/// the peer's end of stream.
struct Firehose;

impl<App> Protocol<App> for Firehose {
    fn on_open(&mut self, cx: &mut Cx<'_, App>) {
        cx.set_timer(Duration::from_millis(1), 0);
    }

    fn on_data(&mut self, _cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        data.len()
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, App>, _timer: TimerId) {
        if cx.write(&[b'x'; 64 * 1024]) {
            cx.set_timer(Duration::from_millis(1), 0);
        }
    }

    fn on_eof(&mut self, _cx: &mut Cx<'_, App>) {
        // Half-closed by the peer: keep writing.
    }
}

fn firehose_server() -> io::Result<(Server<()>, evdrive_tests::Observer)> {
    let (watch, observer) = observe();
    let opts =
        ListenOptions::default().with_conn(ConnConfig::default().with_max_output(64 * 1024 * 1024));
    let server = Server::listen(|| (), opts, move |_, _: SocketAddr| watch.wrap(Firehose))?;
    Ok((server, observer))
}

/// S7: a peer that resets while the server is writing to it: the connection closes with
/// `Reset` or `BrokenPipe` (whichever call, read or write, meets the error first).
#[test]
fn reset_during_writes_closes_with_reset_or_broken_pipe() -> io::Result<()> {
    evdrive_tests::init_log();
    default_sigpipe();
    let (server, mut observer) = firehose_server()?;
    let mut client = connect(server.addr())?;
    let conn = observer.wait_open(&[]);
    // Take part of the stream, so the server is mid-write when the reset comes.
    let mut buf = vec![0u8; 256 * 1024];
    client.read_exact(&mut buf)?;
    reset(client)?;
    let kind = observer.wait_close(conn);
    assert!(
        matches!(kind, CloseKind::BrokenPipe | CloseKind::Reset),
        "{kind:?}"
    );
    // The process survived with SIGPIPE deadly, and not because the reactor quietly ignored it.
    assert!(sigpipe_is_default());
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}

/// S6: the classic SIGPIPE: the peer half-closes (the server's socket is in CLOSE_WAIT and
/// its handler keeps writing), then resets. Linux then fails the next send with `EPIPE` and
/// raises SIGPIPE unless the send passed `MSG_NOSIGNAL`. SIGPIPE has its default action here,
/// which would kill the test process: the connection closes with `BrokenPipe` and the process
/// lives on.
#[test]
fn writing_after_reset_in_close_wait_is_broken_pipe_without_signal() -> io::Result<()> {
    evdrive_tests::init_log();
    default_sigpipe();
    let (server, mut observer) = firehose_server()?;
    let mut client = connect(server.addr())?;
    let conn = observer.wait_open(&[]);
    client.shutdown(std::net::Shutdown::Write)?;
    observer.wait_for(
        WAIT,
        |e| matches!(e, evdrive_tests::Event::Eof(c) if *c == conn),
    );
    let mut buf = vec![0u8; 256 * 1024];
    client.read_exact(&mut buf)?;
    reset(client)?;

    assert_eq!(observer.wait_close(conn), CloseKind::BrokenPipe);
    // Still alive, with SIGPIPE still deadly: no write raised it.
    assert!(sigpipe_is_default());
    assert_eq!(server.stats().closed_by(CloseKind::BrokenPipe), 1);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}
