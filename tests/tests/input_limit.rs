//! Bounded input: a handler that never consumes cannot grow the server's memory (S11).

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use evdrive_tests::{connect, localhost, observe, read_to_eof, Event, Server, WAIT};
use protocols::echo::Echo;
use reactor::{CloseKind, ConnConfig, Cx, ListenOptions, Protocol};

/// Waits for a frame that never completes: consumes nothing.
struct Hoarder;

impl<App> Protocol<App> for Hoarder {
    fn on_data(&mut self, _cx: &mut Cx<'_, App>, _data: &[u8]) -> usize {
        0
    }
}

/// The input limit of the test.
const MAX_INPUT: usize = 64 * 1024;

/// S11: once unconsumed input passes `max_input`, the connection is closed with
/// `CloseReason::Protocol` (gracefully: the client reads end of stream), and another connection
/// of the same reactor keeps working.
#[test]
fn unconsumed_input_over_the_limit_closes_with_protocol_error() -> io::Result<()> {
    evdrive_tests::init_log();
    let (watch, mut observer) = observe();
    let opts = ListenOptions::default().with_conn(ConnConfig::default().with_max_input(MAX_INPUT));
    let server = Server::listen(|| (), opts.clone(), {
        let watch = watch.clone();
        move |_, _: SocketAddr| watch.wrap(Hoarder)
    })?;
    let echo_addr = server.with(move |r| {
        let id = r.listen(localhost(), opts, move |_, _| watch.wrap(Echo))?;
        r.listener_addr(id)
    })?;

    let mut other = connect(echo_addr)?;
    let other_conn = observer.wait_open(&[]);
    let mut client = connect(server.addr())?;
    let conn = observer.wait_open(&[other_conn]);

    // Under the limit: kept, not closed.
    client.write_all(&vec![b'a'; MAX_INPUT / 2])?;
    other.write_all(b"ping")?;
    let mut pong = [0u8; 4];
    other.read_exact(&mut pong)?;
    assert_eq!(
        server.with(move |r| r
            .connections()
            .into_iter()
            .find(|c| c.id == conn)
            .map(|c| c.buffered)),
        Some(MAX_INPUT / 2)
    );

    // Over it: closed with a protocol error. The close is graceful: the client reads end of
    // stream, and the server's side ends once the client's FIN answers it.
    client.write_all(&vec![b'b'; MAX_INPUT])?;
    assert!(read_to_eof(&mut client)?.is_empty());
    drop(client);
    assert_eq!(observer.wait_close(conn), CloseKind::Protocol);
    let text = observer
        .poll()
        .iter()
        .find_map(|e| match e {
            Event::Close(c, _, text) if *c == conn => Some(text.clone()),
            _ => None,
        })
        .expect("the close was seen");
    assert!(text.contains("input"), "{text}");

    // The other connection is unaffected.
    other.write_all(b"still here")?;
    let mut back = [0u8; 10];
    other.read_exact(&mut back)?;
    assert_eq!(&back, b"still here");
    drop(other);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}
