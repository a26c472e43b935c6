//! Silent connections are closed: the first-byte timeout and the idle timeout (S24).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use evdrive_tests::{
    connect, expect_eof, observe, until_conclusive, Event, Observer, Server, WAIT,
};
use protocols::echo::Echo;
use reactor::{CloseKind, ConnConfig, ListenOptions};

/// An echo server whose connections have the given timeouts.
fn echo_server(
    first_byte: Option<Duration>,
    idle: Option<Duration>,
) -> io::Result<(Server<()>, Observer)> {
    let (watch, observer) = observe();
    let opts = ListenOptions::default().with_conn(
        ConnConfig::default()
            .with_first_byte_timeout(first_byte)
            .with_idle_timeout(idle),
    );
    let server = Server::listen(|| (), opts, move |_, _: SocketAddr| watch.wrap(Echo))?;
    Ok((server, observer))
}

fn echo_byte(client: &mut TcpStream) -> io::Result<()> {
    client.write_all(b".")?;
    let mut b = [0u8; 1];
    client.read_exact(&mut b)?;
    assert_eq!(&b, b".");
    Ok(())
}

/// S24: a client that connects and sends nothing is closed after the first-byte timeout
/// (long before the idle timeout), with `IdleTimeout`; it reads end of stream.
#[test]
fn silent_client_is_closed_after_first_byte_timeout() -> io::Result<()> {
    evdrive_tests::init_log();
    let timeout = Duration::from_millis(200);
    let (server, mut observer) = echo_server(Some(timeout), Some(Duration::from_secs(30)))?;
    let started = Instant::now();
    let mut client = connect(server.addr())?;
    let conn = observer.wait_open(&[]);
    expect_eof(&mut client)?;
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout, "closed early, after {elapsed:?}");
    assert!(elapsed < timeout * 10, "closed late, after {elapsed:?}");
    drop(client);
    assert_eq!(observer.wait_close(conn), CloseKind::IdleTimeout);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}

/// A client that sends one byte and then nothing is closed by the idle timeout, counted from
/// that byte's traffic.
#[test]
fn client_silent_after_one_byte_is_closed_by_idle_timeout() -> io::Result<()> {
    evdrive_tests::init_log();
    let timeout = Duration::from_millis(200);
    let (server, mut observer) = echo_server(None, Some(timeout))?;
    let mut client = connect(server.addr())?;
    let conn = observer.wait_open(&[]);
    // The server's last traffic comes after this moment (it receives the byte and answers).
    let sent = Instant::now();
    echo_byte(&mut client)?;
    expect_eof(&mut client)?;
    let elapsed = sent.elapsed();
    // The reactor counts idle time in whole-millisecond ticks from the start of the turn
    // that saw the traffic, so it may round the last traffic down by under a millisecond.
    assert!(
        elapsed + Duration::from_millis(1) >= timeout,
        "closed early, {elapsed:?} after the last byte was sent"
    );
    assert!(
        elapsed < timeout * 10,
        "closed late, {elapsed:?} after the last byte was sent"
    );
    drop(client);
    assert_eq!(observer.wait_close(conn), CloseKind::IdleTimeout);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}

/// A client that sends a byte every 50 ms for three times the idle timeout of 200 ms is not
/// closed (the idle timer follows the traffic), and neither is it with a first-byte timeout.
///
/// The 50 ms are the client's own pace. What the server sees is bounded by the client's
/// measurements: between two bytes, at most the time from sending the first to receiving the
/// echo of the second. If a loaded machine stretched that bound to the timeout, the attempt
/// proves nothing (a close would be right) and runs again; a close with every bound below the
/// timeout fails the test.
#[test]
fn talking_client_is_not_closed() -> io::Result<()> {
    evdrive_tests::init_log();
    let timeout = Duration::from_millis(200);
    let (server, mut observer) = echo_server(Some(timeout), Some(timeout))?;
    let mut opened = Vec::new();
    until_conclusive("talking client", 3, || {
        // The first-byte timeout counts from the connect.
        let mut previous_sent = Instant::now();
        let mut client = connect(server.addr())?;
        let conn = observer.wait_open(&opened);
        opened.push(conn);
        let started = Instant::now();
        let mut longest = Duration::ZERO;
        let mut ended = None;
        while started.elapsed() < timeout * 3 {
            let sent = Instant::now();
            if let Err(e) = echo_byte(&mut client) {
                ended = Some(e);
            }
            longest = longest.max(previous_sent.elapsed());
            previous_sent = sent;
            if ended.is_some() {
                break;
            }
            // The client's own pace: one byte every 50 ms.
            std::thread::sleep(Duration::from_millis(50));
        }
        let closed = observer
            .poll()
            .iter()
            .any(|e| matches!(e, Event::Close(c, ..) if *c == conn));
        if (closed || ended.is_some()) && longest >= timeout {
            drop(client);
            observer.wait_close(conn);
            return Ok(None);
        }
        assert!(
            !closed && ended.is_none(),
            "a talking client was closed (longest silence at most {longest:?}): {ended:?}"
        );
        drop(client);
        assert_eq!(observer.wait_close(conn), CloseKind::PeerClosed);
        Ok(Some(()))
    })?;
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}
