//! The write-stall timeout (`ConnConfig::write_stall_timeout`): a connection whose queued output
//! makes no progress for that long is closed with `TimedOut`; a slow reader that keeps taking
//! bytes is not.

use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use evdrive_tests::{
    connect_with, is_reset, pattern, set_recv_buffer, until_conclusive, Server, WAIT,
};
use reactor::{CloseKind, CloseReason, ConnConfig, Cx, ListenOptions, Protocol};

/// The response every request gets.
const RESPONSE: u64 = 64 << 20;
/// The producer queues output in pieces of this size.
const PIECE: usize = 256 * 1024;
/// The stall timeout under test.
const STALL: Duration = Duration::from_millis(500);
/// High-water mark of the producer's connections; it stops queueing this far above it, so that
/// one flush can never bring the queue back under the mark (the kernel buffers are small).
const HIGH: usize = 1024 * 1024;

/// How a producer's connection ended.
#[derive(Debug)]
struct Ended {
    kind: CloseKind,
    /// When `on_close` ran.
    at: Instant,
    /// When the request arrived.
    requested: Option<Instant>,
    /// Bytes queued in all.
    produced: u64,
}

/// On the first byte received, streams [`RESPONSE`] bytes of the test pattern and closes. It
/// queues up to above the high-water mark and goes on in `on_drained`, so the queue follows the
/// reader (backpressure) instead of holding the whole response.
struct Producer {
    /// The pattern with a period's worth of slack, so any piece is one slice of it.
    block: std::rc::Rc<Vec<u8>>,
    produced: u64,
    requested: Option<Instant>,
    ended: Sender<Ended>,
}

impl Producer {
    fn produce(&mut self, cx: &mut Cx<'_, ()>) {
        while self.produced < RESPONSE && cx.queued() < 2 * HIGH {
            let n = PIECE.min((RESPONSE - self.produced) as usize);
            let from = (self.produced % 251) as usize;
            let _ = cx.write_vec(self.block[from..from + n].to_vec());
            self.produced += n as u64;
        }
        if self.produced == RESPONSE {
            cx.close();
        }
    }
}

impl Protocol<()> for Producer {
    fn on_data(&mut self, cx: &mut Cx<'_, ()>, data: &[u8]) -> usize {
        if self.requested.is_none() {
            self.requested = Some(Instant::now());
            self.produce(cx);
        }
        data.len()
    }

    fn on_drained(&mut self, cx: &mut Cx<'_, ()>) {
        self.produce(cx);
    }

    fn on_close(&mut self, _cx: &mut Cx<'_, ()>, reason: CloseReason) {
        let _ = self.ended.send(Ended {
            kind: reason.kind(),
            at: Instant::now(),
            requested: self.requested,
            produced: self.produced,
        });
    }
}

/// A server of [`Producer`]s with the stall timeout under test and small socket buffers.
fn producer_server() -> io::Result<(Server<()>, mpsc::Receiver<Ended>)> {
    let (tx, rx) = mpsc::channel();
    let opts = ListenOptions::default()
        .with_send_buffer_size(Some(64 * 1024))
        // Far above what the producer ever queues: only the stall timeout may close.
        .with_conn(
            ConnConfig::default()
                .with_high_water(HIGH)
                .with_low_water(HIGH / 4)
                .with_max_output(128 << 20)
                .with_write_stall_timeout(Some(STALL)),
        );
    let server = Server::listen(
        || (),
        opts,
        move |_, _| Producer {
            block: std::rc::Rc::new(pattern(0, PIECE + 251)),
            produced: 0,
            requested: None,
            ended: tx.clone(),
        },
    )?;
    Ok((server, rx))
}

/// S8, S21: a slow but live reader (64 KiB receive buffer, at most 1 MiB per 25 ms, and two
/// pauses of 300 ms, each shorter than the 500 ms stall timeout) of a 64 MiB response is never
/// closed for stalling: it gets every byte, in order, then end of stream, and the server's
/// close is the graceful one it asked for.
///
/// The pauses are the reader's own pace. It measures the longest time between two reads that
/// took bytes; if a loaded machine stretched that to the stall timeout, a close would be right
/// and the attempt proves nothing, so it runs again. A stall close without such a gap fails.
#[test]
fn a_slow_reader_that_keeps_reading_is_not_timed_out() -> io::Result<()> {
    evdrive_tests::init_log();
    let (server, ended) = producer_server()?;
    until_conclusive("slow reader", 3, || {
        let timed_out_before = server.stats().closed_by(CloseKind::TimedOut);
        let mut client = connect_with(server.addr(), |fd| set_recv_buffer(fd, 64 * 1024))?;
        client.write_all(b"go")?;
        let (received, longest) = read_slowly(&mut client)?;
        drop(client);
        let end = ended
            .recv_timeout(WAIT)
            .expect("the connection never closed");
        let whole = received == RESPONSE && end.kind == CloseKind::Local;
        if !whole && longest >= STALL {
            return Ok(None);
        }
        assert_eq!(
            received, RESPONSE,
            "cut short (longest gap between reads {longest:?}): {end:?}"
        );
        assert_eq!(end.kind, CloseKind::Local, "{end:?}");
        assert_eq!(end.produced, RESPONSE);
        assert_eq!(
            server.stats().closed_by(CloseKind::TimedOut),
            timed_out_before
        );
        Ok(Some(()))
    })?;
    server.shutdown(Duration::from_secs(1))
}

/// Reads the producer's response at the slow reader's pace until end of stream (or a reset),
/// checking every byte; returns the bytes received and the longest time between two reads that
/// took bytes (from the request to the first, too).
fn read_slowly(client: &mut std::net::TcpStream) -> io::Result<(u64, Duration)> {
    let block = pattern(0, 1024 * 1024 + 251);
    let mut buf = vec![0u8; 64 * 1024];
    let mut received = 0u64;
    let mut pauses = [16u64 << 20, 40 << 20].into_iter().peekable();
    let mut last_read = Instant::now();
    let mut longest = Duration::ZERO;
    'reading: loop {
        // One tick: read up to 1 MiB, then sleep (the reader's pace, not a wait for an event).
        let tick_end = received + (1 << 20);
        while received < tick_end {
            let n = match client.read(&mut buf) {
                Ok(0) => break 'reading,
                Ok(n) => n,
                Err(e) if is_reset(&e) => break 'reading,
                Err(e) => return Err(e),
            };
            longest = longest.max(last_read.elapsed());
            last_read = Instant::now();
            let from = (received % 251) as usize;
            assert!(
                buf[..n] == block[from..from + n],
                "bytes {received}.. differ"
            );
            received += n as u64;
        }
        let pause = match pauses.peek() {
            Some(&at) if received >= at => {
                pauses.next();
                Duration::from_millis(300)
            }
            _ => Duration::from_millis(25),
        };
        std::thread::sleep(pause);
    }
    // The silence before the stream ended counts too.
    Ok((received, longest.max(last_read.elapsed())))
}

/// S8, S7: a reader that stops reading is closed with `TimedOut` once its queued output made no
/// progress for the stall timeout (a vanished peer shows only when sending fails to progress):
/// not before 500 ms after its request, and not much later. Backpressure kept the queue small
/// meanwhile (the response was never produced in full).
#[test]
fn a_stopped_reader_is_timed_out_after_the_stall_timeout() -> io::Result<()> {
    evdrive_tests::init_log();
    let (server, ended) = producer_server()?;
    let mut client = connect_with(server.addr(), |fd| set_recv_buffer(fd, 64 * 1024))?;
    client.write_all(b"go")?;

    let end = ended
        .recv_timeout(WAIT)
        .expect("the stopped reader was never closed");
    assert_eq!(end.kind, CloseKind::TimedOut, "{end:?}");
    let requested = end.requested.expect("the request arrived");
    let after = end.at - requested;
    // The timer counts whole milliseconds from the last progress, which came after the request.
    assert!(
        after >= STALL - Duration::from_millis(2),
        "closed after {after:?}"
    );
    assert!(
        after < STALL + Duration::from_secs(1),
        "closed after {after:?}"
    );
    assert!(end.produced < RESPONSE / 4, "{end:?}");
    let stats = server.stats();
    assert_eq!(stats.closed_by(CloseKind::TimedOut), 1, "{stats:?}");
    drop(client);
    server.shutdown(Duration::from_secs(1))
}
