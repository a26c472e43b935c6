//! The TCP forwarder sample (`evdrive proxy`) and the linked connections it is built on, over
//! real sockets: byte-exact streams both ways with a slow reader on either end and the proxy's
//! queued bytes bounded (S21 across a link), half-close in each direction (S14), an end of
//! stream right after the data losing nothing, an upstream that refuses or does not answer,
//! and a thousand pairs at once.
//!
//! The upstreams are plain `std` servers on threads, so what the proxy does is judged by code
//! that shares nothing with it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use evdrive_tests::{connect, localhost, PatternCheck, Server, WAIT};
use protocols::echo::Echo;
use protocols::proxy::{ProxyClient, ProxyStats};
use reactor::{ConnConfig, ListenOptions};

/// 50 MB, the streams of the long tests.
const FIFTY_MB: u64 = 50_000_000;

/// The proxy's queued output may hold, per direction, its high-water mark (64 KiB) plus one
/// read (64 KiB); two directions, and slack for a turn in flight. Without backpressure across
/// the link a lagging reader makes it tens of megabytes.
const QUEUE_BOUND: u64 = 512 * 1024;

/// A proxy to `upstream` on a reactor thread, with `connect_timeout`.
fn proxy(upstream: SocketAddr, connect_timeout: Duration) -> io::Result<Server<ProxyStats>> {
    let config = ConnConfig::new().with_connect_timeout(connect_timeout);
    Server::listen(
        ProxyStats::default,
        ListenOptions::default(),
        move |_, _| ProxyClient::new(upstream, config.clone()),
    )
}

/// A one-connection upstream: accepts once on a thread and runs `serve` on the stream.
fn upstream_once<R: Send + 'static>(
    serve: impl FnOnce(TcpStream) -> io::Result<R> + Send + 'static,
) -> io::Result<(SocketAddr, JoinHandle<io::Result<R>>)> {
    let listener = TcpListener::bind(localhost())?;
    let addr = listener.local_addr()?;
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept()?;
        serve(stream)
    });
    Ok((addr, thread))
}

/// Writes `len` bytes of the test pattern, then shuts the writing side down.
fn send_pattern(mut stream: &TcpStream, len: u64) -> io::Result<()> {
    // One buffer whose length is a multiple of the pattern's period: any slice of it starting
    // at `pos % 251` continues the pattern.
    let buf = evdrive_tests::pattern(0, 251 * 512);
    let mut pos = 0u64;
    while pos < len {
        let start = (pos % 251) as usize;
        let n = ((len - pos) as usize).min(buf.len() - start).min(64 * 1024);
        stream.write_all(&buf[start..start + n])?;
        pos += n as u64;
    }
    stream.shutdown(Shutdown::Write)
}

/// Reads to end of stream, checking the pattern, with `pause` after every read of at most
/// `chunk` bytes (a slow reader when non-zero). Returns the count.
fn receive_pattern(mut stream: &TcpStream, chunk: usize, pause: Duration) -> io::Result<u64> {
    let mut check = PatternCheck::default();
    let mut buf = vec![0; chunk];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(check.pos);
        }
        check.check(&buf[..n]);
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
}

/// Samples the proxy's queued output bytes until `done`, returning the largest seen.
fn watch_queue(server: &Server<ProxyStats>, done: &AtomicBool) -> u64 {
    let mut max = 0;
    while !done.load(Ordering::Relaxed) {
        max = max.max(server.stats().queued_bytes);
        std::thread::sleep(Duration::from_millis(2));
    }
    max
}

/// Streams `FIFTY_MB` each way through the proxy; `client_pause` and `upstream_pause` slow
/// one reader down. Returns the largest queue seen while the streams ran.
fn stream_both_ways(client_pause: Duration, upstream_pause: Duration) -> io::Result<u64> {
    evdrive_tests::init_log();
    let (up, upstream) = upstream_once(move |stream| {
        let writer = stream.try_clone()?;
        let sending = std::thread::spawn(move || send_pattern(&writer, FIFTY_MB));
        let got = receive_pattern(&stream, 16 * 1024, upstream_pause)?;
        sending.join().expect("upstream writer")?;
        Ok(got)
    })?;
    let server = proxy(up, WAIT)?;
    let client = connect(server.addr())?;
    let writer = client.try_clone()?;
    let sending = std::thread::spawn(move || send_pattern(&writer, FIFTY_MB));
    let done = Arc::new(AtomicBool::new(false));
    let max = std::thread::scope(|s| {
        let watcher = s.spawn(|| watch_queue(&server, &done));
        let got = receive_pattern(&client, 16 * 1024, client_pause);
        done.store(true, Ordering::Relaxed);
        let max = watcher.join().expect("queue watcher");
        got.map(|got| (got, max))
    });
    let (got, max) = max?;
    sending.join().expect("client writer")?;
    assert_eq!(got, FIFTY_MB, "bytes the client received");
    assert_eq!(
        upstream.join().expect("upstream")?,
        FIFTY_MB,
        "bytes the upstream received"
    );
    // Both directions done: the pair closes by itself.
    server
        .wait_for(WAIT, |r| (r.stats().open == 0).then_some(()))
        .expect("the pair closed after both ends finished");
    assert!(
        max <= QUEUE_BOUND,
        "the proxy queued {max} bytes (bound {QUEUE_BOUND})"
    );
    Ok(max)
}

/// S21 across a link: 50 MB each way, byte-exact; the client reads slowly, so the upstream's
/// stream must be held back by pausing the upstream's reading, not queued in the proxy.
#[test]
fn fifty_mb_each_way_with_a_slow_client_reader() -> io::Result<()> {
    // 16 KiB per millisecond: at most 16 MB/s, well below what the upstream sends.
    let max = stream_both_ways(Duration::from_millis(1), Duration::ZERO)?;
    eprintln!("largest queue with a slow client reader: {max} B");
    Ok(())
}

/// The same with the slow reader at the upstream.
#[test]
fn fifty_mb_each_way_with_a_slow_upstream_reader() -> io::Result<()> {
    let max = stream_both_ways(Duration::ZERO, Duration::from_millis(1))?;
    eprintln!("largest queue with a slow upstream reader: {max} B");
    Ok(())
}

/// Regression: a forwarder that passed the upstream's end of stream on with a graceful close
/// lost data (983,040 of 1,000,000 bytes; 4,980,736 of 5 MB), because input arriving while
/// closing is discarded. Through a link, both ends send exactly N bytes and FIN right after,
/// and both receive exactly N.
#[test]
fn end_of_stream_right_after_the_data_loses_nothing() -> io::Result<()> {
    evdrive_tests::init_log();
    for len in [1_000_000u64, 5_000_000] {
        let (up, upstream) = upstream_once(move |stream| {
            let writer = stream.try_clone()?;
            let sending = std::thread::spawn(move || send_pattern(&writer, len));
            let got = receive_pattern(&stream, 64 * 1024, Duration::ZERO)?;
            sending.join().expect("upstream writer")?;
            Ok(got)
        })?;
        let server = proxy(up, WAIT)?;
        let client = connect(server.addr())?;
        let writer = client.try_clone()?;
        let sending = std::thread::spawn(move || send_pattern(&writer, len));
        let got = receive_pattern(&client, 64 * 1024, Duration::ZERO)?;
        sending.join().expect("client writer")?;
        assert_eq!(got, len, "bytes the client received of {len}");
        assert_eq!(upstream.join().expect("upstream")?, len, "bytes upstream");
    }
    Ok(())
}

/// S14 through a link: the client sends its request and FIN; the upstream sees end of stream,
/// then still sends its reply, which the client gets before its own end of stream.
#[test]
fn client_half_close_still_gets_the_upstream_reply() -> io::Result<()> {
    evdrive_tests::init_log();
    let (up, upstream) = upstream_once(|mut stream| {
        let mut request = Vec::new();
        stream.read_to_end(&mut request)?;
        // The request's end of stream came first; the reply follows it.
        stream.write_all(format!("got {} bytes", request.len()).as_bytes())?;
        Ok(request)
    })?;
    let server = proxy(up, WAIT)?;
    let mut client = connect(server.addr())?;
    client.set_read_timeout(Some(WAIT))?;
    client.write_all(b"request body")?;
    client.shutdown(Shutdown::Write)?;
    let mut reply = String::new();
    client.read_to_string(&mut reply)?;
    assert_eq!(reply, "got 12 bytes");
    assert_eq!(upstream.join().expect("upstream")?, b"request body");
    Ok(())
}

/// S14 the other way: the upstream sends a greeting and FIN first; the client gets it and its
/// end of stream, then still sends 100 kB, all of which reach the upstream.
#[test]
fn upstream_half_close_still_carries_the_client_data() -> io::Result<()> {
    evdrive_tests::init_log();
    let (up, upstream) = upstream_once(|mut stream| {
        stream.write_all(b"hello")?;
        stream.shutdown(Shutdown::Write)?;
        receive_pattern(&stream, 64 * 1024, Duration::ZERO)
    })?;
    let server = proxy(up, WAIT)?;
    let mut client = connect(server.addr())?;
    client.set_read_timeout(Some(WAIT))?;
    let mut greeting = Vec::new();
    client.read_to_end(&mut greeting)?;
    assert_eq!(greeting, b"hello");
    send_pattern(&client, 100_000)?;
    assert_eq!(upstream.join().expect("upstream")?, 100_000);
    // Both directions done: the client's socket sees the pair end.
    server
        .wait_for(WAIT, |r| (r.stats().open == 0).then_some(()))
        .expect("the pair closed");
    Ok(())
}

/// Waits for the proxy to end the client's connection: end of stream or a reset, but no data.
fn wait_closed(mut client: &TcpStream) -> io::Result<()> {
    client.set_read_timeout(Some(WAIT))?;
    let mut buf = [0; 16];
    match client.read(&mut buf) {
        Ok(0) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
        Ok(n) => panic!("the client got {n} bytes instead of its close"),
        Err(e) => Err(e),
    }
}

/// An upstream port nobody listens on: the client is closed promptly, and the proxy says it
/// was refused.
#[test]
fn upstream_refusing_closes_the_client_promptly() -> io::Result<()> {
    evdrive_tests::init_log();
    let closed_port = evdrive_tests::closed_port()?;
    // A long connect timeout, so a refusal cannot pass for one.
    let server = proxy(closed_port, Duration::from_secs(30))?;
    let started = Instant::now();
    let client = connect(server.addr())?;
    wait_closed(&client)?;
    assert!(
        started.elapsed() < WAIT,
        "closed after {:?}",
        started.elapsed()
    );
    let stats = server
        .wait_for(WAIT, |r| {
            let s = r.app().clone();
            (s.upstream_refused == 1).then_some(s)
        })
        .expect("the refusal was counted");
    assert_eq!(stats.pairs, 0);
    assert_eq!(stats.upstream_timeouts, 0);
    Ok(())
}

/// A listener with the smallest backlog, never accepted, whose queue is then filled: the
/// kernel drops further SYNs, so a connect to it gets no answer. Keep both while testing.
fn unanswering_listener() -> io::Result<(TcpListener, Vec<TcpStream>)> {
    let listener = evdrive_tests::listen_with_backlog(0)?;
    let addr = listener.local_addr()?;
    // A connect that times out means the queue drops SYNs now.
    let mut fillers = Vec::new();
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => break,
            Err(e) => return Err(e),
        }
        assert!(fillers.len() < 64, "the backlog never filled");
    }
    Ok((listener, fillers))
}

/// An upstream that never answers the handshake: the client is closed at the connect
/// timeout (not before), and the proxy says the upstream did not answer.
#[test]
fn upstream_not_answering_closes_the_client_at_the_connect_timeout() -> io::Result<()> {
    evdrive_tests::init_log();
    let (listener, _fillers) = unanswering_listener()?;
    let addr = listener.local_addr()?;
    let timeout = Duration::from_secs(1);
    let server = proxy(addr, timeout)?;
    let started = Instant::now();
    let client = connect(server.addr())?;
    wait_closed(&client)?;
    let took = started.elapsed();
    assert!(took >= timeout, "closed after {took:?}, before the timeout");
    let stats = server
        .wait_for(WAIT, |r| {
            let s = r.app().clone();
            (s.upstream_timeouts == 1).then_some(s)
        })
        .expect("the timeout was counted");
    assert_eq!(stats.upstream_refused, 0);
    Ok(())
}

/// A thousand pairs open at once (4,000 descriptors in this process: clients, the proxy's two
/// sides, the echo server's), each carrying its own message both ways.
#[test]
fn a_thousand_concurrent_pairs() -> io::Result<()> {
    evdrive_tests::init_log();
    const PAIRS: usize = 1000;
    let echo = Server::listen(|| (), ListenOptions::default(), |_, _| Echo)?;
    let server = proxy(echo.addr(), WAIT)?;
    let mut clients = Vec::with_capacity(PAIRS);
    for i in 0..PAIRS {
        let mut c = connect(server.addr())?;
        c.set_read_timeout(Some(WAIT))?;
        c.write_all(format!("pair {i:04}\n").as_bytes())?;
        clients.push(c);
    }
    // Every pair open at once before any answer is read.
    server
        .wait_for(WAIT, |r| {
            (r.app().pairs == PAIRS as u64 && r.stats().open == 2 * PAIRS as u64).then_some(())
        })
        .expect("a thousand pairs open at once");
    for (i, c) in clients.iter_mut().enumerate() {
        let mut reply = [0; 10];
        c.read_exact(&mut reply)?;
        assert_eq!(reply, *format!("pair {i:04}\n").as_bytes());
    }
    for c in &clients {
        c.shutdown(Shutdown::Write)?;
    }
    for c in &clients {
        wait_closed(c)?;
    }
    server
        .wait_for(WAIT, |r| (r.stats().open == 0).then_some(()))
        .expect("every pair closed");
    Ok(())
}

/// `evdrive proxy` on the command line, its standard error read line by line.
struct ProxyCli {
    child: std::process::Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl ProxyCli {
    fn start(upstream: SocketAddr, connect_timeout: &str) -> io::Result<ProxyCli> {
        let mut child = std::process::Command::new(evdrive_tests::evdrive_binary())
            .args(["proxy", "--listen", "127.0.0.1:0", "--upstream"])
            .arg(upstream.to_string())
            .args(["--connect-timeout", connect_timeout])
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in io::BufRead::lines(io::BufReader::new(stderr)).map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut cli = ProxyCli {
            child,
            addr: localhost(),
            lines,
        };
        let line = cli.wait_line("evdrive proxy listening on ")?;
        let at = line.find("listening on ").expect("seen") + "listening on ".len();
        cli.addr = line[at..]
            .split_whitespace()
            .next()
            .and_then(|a| a.parse().ok())
            .expect("an address");
        Ok(cli)
    }

    /// The next line of standard error containing `needle`, within [`WAIT`].
    fn wait_line(&self, needle: &str) -> io::Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .map_err(|_| io::Error::other(format!("no line with {needle:?}")))?;
            if line.contains(needle) {
                return Ok(line);
            }
        }
    }
}

impl Drop for ProxyCli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The command line says at info why it closed a client: the upstream refused, or did not
/// answer within `--connect-timeout`.
#[test]
fn the_cli_logs_why_a_client_was_closed() -> io::Result<()> {
    let cli = ProxyCli::start(evdrive_tests::closed_port()?, "30")?;
    let client = connect(cli.addr)?;
    wait_closed(&client)?;
    let line = cli.wait_line("closing client")?;
    assert!(line.contains("INFO"), "{line}");
    assert!(line.contains("refused the connection"), "{line}");

    let (listener, _fillers) = unanswering_listener()?;
    let cli = ProxyCli::start(listener.local_addr()?, "0.5")?;
    let client = connect(cli.addr)?;
    wait_closed(&client)?;
    let line = cli.wait_line("closing client")?;
    assert!(
        line.contains("did not answer within the connect timeout"),
        "{line}"
    );
    Ok(())
}
