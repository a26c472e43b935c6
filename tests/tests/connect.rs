//! Outgoing connections: the non-blocking connect verdict and the connect timeout.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use evdrive_tests::{
    closed_port, connect, listen_with_backlog, localhost, observe, Event, Observer, Server, WAIT,
};
use reactor::{CloseKind, ConnConfig, ConnId, Cx, Protocol};

/// Says hello on open and closes once the peer answered "world".
struct Greeter {
    got: Vec<u8>,
}

impl<App> Protocol<App> for Greeter {
    fn on_open(&mut self, cx: &mut Cx<'_, App>) {
        cx.write(b"hello");
    }

    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        self.got.extend_from_slice(data);
        if self.got == b"world" {
            cx.close();
        }
        data.len()
    }
}

/// A reactor with no listener, for outgoing connections.
fn client_reactor() -> io::Result<(Server<()>, evdrive_tests::Watch, Observer)> {
    let (watch, observer) = observe();
    let server = Server::start(|| (), |_| Ok(localhost()))?;
    Ok((server, watch, observer))
}

/// Starts a connect from the reactor thread.
fn start_connect(
    server: &Server<()>,
    watch: &evdrive_tests::Watch,
    addr: std::net::SocketAddr,
    config: ConnConfig,
) -> io::Result<ConnId> {
    let handler = watch.clone();
    server.with(move |r| r.connect(addr, handler.wrap(Greeter { got: Vec::new() }), config))
}

/// Whether `conn` ever got `on_open`.
fn opened(observer: &mut Observer, conn: ConnId) -> bool {
    observer
        .poll()
        .iter()
        .any(|e| matches!(e, Event::Open(c) if *c == conn))
}

/// S4: a connect to a port where nothing listens ends in `on_close` with `Refused`, and the
/// handler never gets `on_open`.
#[test]
fn connect_to_closed_port_is_refused() -> io::Result<()> {
    evdrive_tests::init_log();
    let (server, watch, mut observer) = client_reactor()?;
    let conn = start_connect(&server, &watch, closed_port()?, ConnConfig::default())?;
    assert_eq!(observer.wait_close(conn), CloseKind::Refused);
    assert!(!opened(&mut observer, conn));
    assert_eq!(server.stats().connected, 0);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}

/// S4: a connect to a listening port gets `on_open`, sends, receives, and closes gracefully.
#[test]
fn connect_to_listener_opens_and_exchanges_data() -> io::Result<()> {
    evdrive_tests::init_log();
    let (server, watch, mut observer) = client_reactor()?;
    let listener = std::net::TcpListener::bind(localhost())?;
    let conn = start_connect(
        &server,
        &watch,
        listener.local_addr()?,
        ConnConfig::default(),
    )?;
    let (mut peer, _) = listener.accept()?;
    peer.set_read_timeout(Some(WAIT))?;
    observer.wait_for(WAIT, |e| matches!(e, Event::Open(c) if *c == conn));

    let mut hello = [0u8; 5];
    peer.read_exact(&mut hello)?;
    assert_eq!(&hello, b"hello");
    peer.write_all(b"world")?;
    // The handler closes: its FIN arrives after everything it sent.
    evdrive_tests::expect_eof(&mut peer)?;
    drop(peer);
    assert_eq!(observer.wait_close(conn), CloseKind::Local);
    assert_eq!(server.stats().connected, 1);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}

/// S4, S8: a connect that gets no answer ends with `ConnectTimeout` after the connect timeout
/// (never before it), without `on_open`. The silent peer is a loopback listener whose accept
/// queue is full (backlog 0, one connection waiting, never accepted): Linux then drops new
/// SYNs, so no packet leaves the machine.
#[test]
fn connect_without_answer_times_out() -> io::Result<()> {
    evdrive_tests::init_log();
    let (server, watch, mut observer) = client_reactor()?;
    let listener = listen_with_backlog(0)?;
    let addr = listener.local_addr()?;
    let _filler = connect(addr)?;
    let timeout = Duration::from_millis(200);
    let config = ConnConfig::default().with_connect_timeout(timeout);
    let started = Instant::now();
    let conn = start_connect(&server, &watch, addr, config)?;
    assert_eq!(observer.wait_close(conn), CloseKind::ConnectTimeout);
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout, "timed out early, after {elapsed:?}");
    assert!(elapsed < timeout * 5, "timed out late, after {elapsed:?}");
    assert!(!opened(&mut observer, conn));
    assert_eq!(server.stats().connected, 0);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}
