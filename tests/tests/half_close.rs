//! Half-close in both directions: after one side's FIN, the other direction keeps working.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use evdrive_tests::{connect, observe, read_to_eof, Event, Server, WAIT};
use reactor::{CloseKind, Cx, ListenOptions, Protocol, TimerId};

/// Echoes; after the peer's end of stream it says goodbye, and a little later something more,
/// then closes.
struct Farewell;

impl<App> Protocol<App> for Farewell {
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        cx.write(data);
        data.len()
    }

    fn on_eof(&mut self, cx: &mut Cx<'_, App>) {
        assert!(cx.write(b"bye;"));
        cx.set_timer(Duration::from_millis(20), 1);
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, App>, _timer: TimerId) {
        assert!(cx.write(b"later"));
        cx.close();
    }
}

/// S14: the client shuts down its write side; the server gets `on_eof` and can still write,
/// in the same turn and in later ones; the client reads all of it, then end of stream.
#[test]
fn client_half_close_lets_the_server_finish_writing() -> io::Result<()> {
    evdrive_tests::init_log();
    let (watch, mut observer) = observe();
    let server = Server::listen(
        || (),
        ListenOptions::default(),
        move |_, _: SocketAddr| watch.wrap(Farewell),
    )?;
    let mut client = connect(server.addr())?;
    let conn = observer.wait_open(&[]);
    client.write_all(b"hello;")?;
    client.shutdown(Shutdown::Write)?;
    observer.wait_for(WAIT, |e| matches!(e, Event::Eof(c) if *c == conn));
    assert_eq!(read_to_eof(&mut client)?, b"hello;bye;later");
    drop(client);
    assert_eq!(observer.wait_close(conn), CloseKind::PeerClosed);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}

/// Greets, half-closes at once, then reports what it receives (and whether a write after the
/// half-close was refused) to the test.
struct HalfCloser;

/// What [`HalfCloser`] reports.
#[derive(Debug, PartialEq)]
enum Report {
    /// Bytes received.
    Data(Vec<u8>),
    /// Whether a write after `shutdown_write` was accepted.
    WriteAfterShutdown(bool),
}

impl Protocol<Sender<Report>> for HalfCloser {
    fn on_open(&mut self, cx: &mut Cx<'_, Sender<Report>>) {
        cx.write(b"hello");
        cx.shutdown_write();
        let accepted = cx.write(b"too late");
        let _ = cx.app().send(Report::WriteAfterShutdown(accepted));
    }

    fn on_data(&mut self, cx: &mut Cx<'_, Sender<Report>>, data: &[u8]) -> usize {
        let _ = cx.app().send(Report::Data(data.to_vec()));
        data.len()
    }
}

/// S14: the server half-closes with `Cx::shutdown_write`: the client reads what was queued,
/// then end of stream, and can still send; the server still receives. When the client then
/// closes, the close finishes (regression: a close after `shutdown_write` never finished).
#[test]
fn server_half_close_still_receives_and_close_after_it_finishes() -> io::Result<()> {
    evdrive_tests::init_log();
    let (watch, mut observer) = observe();
    let (reports_tx, reports) = mpsc::channel();
    let server = Server::listen(
        move || reports_tx,
        ListenOptions::default(),
        move |_, _: SocketAddr| watch.wrap(HalfCloser),
    )?;
    let mut client = connect(server.addr())?;
    let conn = observer.wait_open(&[]);
    assert_eq!(
        reports.recv_timeout(WAIT),
        Ok(Report::WriteAfterShutdown(false))
    );
    let mut got = Vec::new();
    // End of stream arrives while the client's side is still open.
    client.try_clone()?.read_to_end(&mut got)?;
    assert_eq!(got, b"hello");

    client.write_all(b"still talking")?;
    let mut received = Vec::new();
    while received.len() < 13 {
        match reports.recv_timeout(WAIT) {
            Ok(Report::Data(d)) => received.extend_from_slice(&d),
            other => panic!("expected data, got {other:?}"),
        }
    }
    assert_eq!(received, b"still talking");
    drop(client);
    assert_eq!(observer.wait_close(conn), CloseKind::PeerClosed);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}
