//! The echo load: ping-pong, pipelined and streaming, all on one event loop.
//!
//! Each connection sends messages of `size` bytes and expects the same bytes back, keeping up
//! to `depth` messages in flight. Depth 1 is ping-pong; depth 16 is pipelining; 64 KiB messages
//! with a deep window is streaming. Without a rate limit the load is a closed loop: each
//! completed echo issues the next message on the same connection at once. With a rate limit,
//! messages are issued on a fixed schedule and latency is measured from the scheduled time, so
//! a server that falls behind is charged for the queue it builds up.
//!
//! # Implementation notes
//!
//! A connection's stream is the [`Pattern`]: message `k` is bytes `k * size .. (k + 1) * size`.
//! The state of a connection is therefore three offsets, `received <= sent <= target`, plus the
//! issue times of the messages in flight; nothing is copied to send, and an echo is checked
//! with one `memcmp` against the pattern.
//!
//! One `Instant::now()` is taken per turn of the loop and used for every event of that turn:
//! it is the time the poll returned, which bounds the arrival of everything it reported.
//!
//! Reads stop at a short read as well as at `WouldBlock`. With edge-triggered readiness (mio
//! on Linux uses `EPOLLET`) any byte arriving after a read that did not fill the buffer raises
//! a new event, so the extra `read` that would only return `EAGAIN` is skipped. The client is
//! usually the busier side of a benchmark on two cores; every system call saved here is time
//! given back to measuring the server.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::pattern::{Pattern, MAX_RUN};
use crate::report::Summary;
use crate::sys;

/// How long after the issuing stops the run waits for echoes still in flight.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);

/// Token of the rate limiter's timer; connections use `0..connections`.
const TIMER: Token = Token(usize::MAX);

/// Size of the buffer every read lands in.
const READ_BUF: usize = 64 * 1024;

/// What to run against which server.
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// `"echo"` or `"stream"`: only names the run in the report.
    pub mode: &'static str,
    /// The echo server.
    pub addr: SocketAddr,
    /// Source addresses to bind, used in turn; empty lets the kernel choose.
    pub sources: Vec<IpAddr>,
    /// Index of this loop's first connection among all threads', so that the threads take
    /// turns over `sources` as one loop would.
    pub first_index: usize,
    /// Connections this loop opens.
    pub connections: usize,
    /// Bytes per message, 1..=64 KiB.
    pub size: usize,
    /// Messages in flight per connection, at least 1.
    pub depth: usize,
    /// Time after warm-up during which messages are issued and counted. Always set, so that
    /// every run ends.
    pub duration: Duration,
    /// Stop issuing after this many messages (this loop's share).
    pub messages: Option<u64>,
    /// Time at the start during which echoes are not counted.
    pub warmup: Duration,
    /// Messages per second across this loop's connections; `None` for a closed loop.
    pub rate: Option<f64>,
    /// Compare every echoed byte with what was sent.
    pub verify: bool,
    /// Time after issuing stops to wait for the echoes still in flight.
    pub grace: Duration,
    /// Connect to this Unix-domain socket instead of `addr` (`sources` is then unused).
    pub unix: Option<std::path::PathBuf>,
}

/// A client socket: TCP, or Unix-domain when the config names a path.
#[derive(Debug)]
enum Stream {
    Tcp(TcpStream),
    Unix(mio::net::UnixStream),
}

impl Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }

    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }

    /// The socket as a poll source, to register or deregister it.
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

/// One client connection.
#[derive(Debug)]
struct Conn {
    /// The socket, registered under `Token(index)`.
    stream: Stream,
    /// This connection's place in the loop's list, and its token.
    index: usize,
    /// Stream offset up to which bytes were written.
    sent: u64,
    /// Stream offset up to which bytes should be written: `size` times the messages issued.
    target: u64,
    /// Stream offset up to which echoed bytes were read and checked.
    received: u64,
    /// Issue time of each message in flight, oldest first.
    in_flight: VecDeque<Instant>,
    /// The last write returned `WouldBlock` and no writable event has come since: writing
    /// again now would only cost a system call.
    blocked: bool,
    /// The connection failed and was dropped from the poll; its messages are lost.
    dead: bool,
}

impl Conn {
    /// Writes whatever is issued and unsent, until done or the socket is full.
    fn flush(&mut self, pattern: &Pattern) -> io::Result<()> {
        while self.sent < self.target && !self.blocked {
            let len = (self.target - self.sent).min(MAX_RUN as u64) as usize;
            match self.stream.write(pattern.slice(self.sent, len)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.blocked = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Counters of one loop, kept apart from the connections so both can be borrowed at once.
#[derive(Debug)]
struct Tally {
    /// The report being filled.
    summary: Summary,
    /// Messages issued so far.
    issued: u64,
    /// Messages completed so far.
    completed: u64,
    /// Messages lost with failed connections.
    lost: u64,
    /// Echoes completing at or after this instant are counted.
    window_start: Instant,
    /// Echoes completing before this instant are counted; no message is issued after it.
    window_end: Instant,
    /// The message budget, if any.
    budget: Option<u64>,
}

impl Tally {
    /// Whether a new message may be issued at `now`.
    #[allow(clippy::unnecessary_map_or)] // `is_none_or` is newer than the oldest supported Rust
    fn may_issue(&self, now: Instant) -> bool {
        now < self.window_end && self.budget.map_or(true, |b| self.issued < b)
    }

    /// Messages issued and neither completed nor lost.
    fn outstanding(&self) -> u64 {
        self.issued - self.completed - self.lost
    }

    /// Records a completed echo issued at `issued_at`.
    fn complete(&mut self, issued_at: Instant, now: Instant, size: usize) {
        self.completed += 1;
        self.summary.total_messages += 1;
        self.summary.total_bytes += size as u64;
        if now >= self.window_start && now < self.window_end {
            self.summary.messages += 1;
            self.summary.bytes += size as u64;
            let ns = now.saturating_duration_since(issued_at).as_nanos() as u64;
            let _ = self
                .summary
                .latency
                .record(ns.clamp(1, crate::report::MAX_LATENCY_NS));
        }
    }

    /// Notes a failed connection.
    fn fail(&mut self, what: String, lost: u64) {
        self.summary.errors += 1;
        self.lost += lost;
        if self.summary.first_error.is_none() {
            self.summary.first_error = Some(what);
        }
    }
}

/// Opens the connections of `cfg` and runs its load to the end.
///
/// # Errors
///
/// Only failures to set up: the poller, or a connection that cannot be opened. Failures of
/// established connections during the run are counted in [`Summary::errors`] instead.
pub fn run(cfg: &EchoConfig) -> io::Result<Summary> {
    assert!(
        cfg.size > 0 && cfg.size <= MAX_RUN,
        "message size must be 1..=65536"
    );
    assert!(cfg.depth > 0, "depth must be at least 1");
    let pattern = Pattern::new();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; READ_BUF];

    // Step 1: connect everything before the clock starts.
    let mut conns = Vec::with_capacity(cfg.connections);
    for i in 0..cfg.connections {
        let source = match cfg.sources.len() {
            0 => None,
            n => Some(cfg.sources[(cfg.first_index + i) % n]),
        };
        let mut stream = match &cfg.unix {
            Some(path) => {
                let std = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("connection {i} to {}: {e}", path.display()),
                    )
                })?;
                std.set_nonblocking(true)?;
                Stream::Unix(mio::net::UnixStream::from_std(std))
            }
            None => {
                let std = sys::connect_from(source, cfg.addr).map_err(|e| {
                    io::Error::new(e.kind(), format!("connection {i} to {}: {e}", cfg.addr))
                })?;
                std.set_nodelay(true)?;
                std.set_nonblocking(true)?;
                Stream::Tcp(TcpStream::from_std(std))
            }
        };
        poll.registry().register(
            stream.source(),
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        conns.push(Conn {
            stream,
            index: i,
            sent: 0,
            target: 0,
            received: 0,
            in_flight: VecDeque::with_capacity(cfg.depth),
            blocked: false,
            dead: false,
        });
    }

    // With a rate limit a timer descriptor wakes the loop at each scheduled send, finer than
    // the millisecond timeout of epoll.
    let timer = match cfg.rate {
        Some(_) => {
            let t = sys::timerfd_create()?;
            poll.registry()
                .register(&mut SourceFd(&t.as_raw_fd()), TIMER, Interest::READABLE)?;
            Some(t)
        }
        None => None,
    };

    let start = Instant::now();
    let window_start = start + cfg.warmup;
    let window_end = window_start + cfg.duration;
    let hard_end = window_end + cfg.grace;
    let mut tally = Tally {
        summary: Summary::new(cfg.mode, cfg.connections, cfg.size, cfg.depth),
        issued: 0,
        completed: 0,
        lost: 0,
        window_start,
        window_end,
        budget: cfg.messages,
    };
    let size = cfg.size as u64;

    // Step 2: fill the pipelines. Closed loop: every connection gets `depth` messages now.
    // Rate-limited: every free slot waits in `ready` for its turn on the schedule.
    let mut ready: VecDeque<usize> = VecDeque::new();
    for _ in 0..cfg.depth {
        for (i, conn) in conns.iter_mut().enumerate() {
            if cfg.rate.is_some() {
                ready.push_back(i);
            } else if tally.may_issue(start) {
                tally.issued += 1;
                conn.target += size;
                conn.in_flight.push_back(start);
            }
        }
    }
    for conn in &mut conns {
        if let Err(e) = conn.flush(&pattern) {
            kill(conn, &mut tally, &poll, format!("write: {e}"));
        }
    }

    let mut dirty: Vec<usize> = Vec::new();
    let mut now = start;
    let end = loop {
        // Step 3: decide whether the run is over.
        let issuing = tally.may_issue(now);
        if (!issuing && tally.outstanding() == 0) || now >= hard_end {
            break now;
        }
        if tally.summary.errors == conns.len() as u64 {
            // Every connection failed.
            break now;
        }

        // Step 4: sleep until an event, the next scheduled message, or the next deadline.
        let wake = if issuing { window_end } else { hard_end };
        if let (Some(rate), Some(timer), true) = (cfg.rate, &timer, issuing && !ready.is_empty()) {
            let next = start + Duration::from_secs_f64(tally.issued as f64 / rate);
            sys::timerfd_set(timer, next.saturating_duration_since(now))?;
        }
        let timeout = wake.saturating_duration_since(now);
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        now = Instant::now();

        // Step 5: read echoes, complete messages, issue the next ones, write.
        for event in events.iter() {
            if event.token() == TIMER {
                if let Some(timer) = &timer {
                    sys::timerfd_drain(timer)?;
                }
                continue;
            }
            let i = event.token().0;
            let conn = &mut conns[i];
            if conn.dead {
                continue;
            }
            if event.is_writable() {
                conn.blocked = false;
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                if let Err(e) =
                    read_echoes(conn, &mut buf, &pattern, cfg, &mut tally, now, &mut ready)
                {
                    kill(conn, &mut tally, &poll, e);
                    continue;
                }
            }
            if let Err(e) = conn.flush(&pattern) {
                kill(conn, &mut tally, &poll, format!("write: {e}"));
            }
        }

        // Step 6: with a rate limit, issue every message whose scheduled time has come.
        if let Some(rate) = cfg.rate {
            let due = (now.saturating_duration_since(start).as_secs_f64() * rate) as u64 + 1;
            while tally.issued < due && tally.may_issue(now) {
                let Some(i) = ready.pop_front() else { break };
                let conn = &mut conns[i];
                if conn.dead {
                    continue;
                }
                let scheduled = start + Duration::from_secs_f64(tally.issued as f64 / rate);
                tally.issued += 1;
                conn.target += size;
                conn.in_flight.push_back(scheduled);
                dirty.push(i);
            }
            for i in dirty.drain(..) {
                if let Err(e) = conns[i].flush(&pattern) {
                    kill(&mut conns[i], &mut tally, &poll, format!("write: {e}"));
                }
            }
        }
    };

    // Step 7: close every connection with a RST so no port is left in TIME-WAIT.
    for conn in &conns {
        if !conn.dead {
            // (A Unix socket has no TIME-WAIT; the option fails harmlessly there.)
            let _ = sys::set_linger_zero(conn.stream.as_fd());
        }
    }
    drop(conns);

    let mut summary = tally.summary;
    summary.window = end.min(window_end).saturating_duration_since(window_start);
    Ok(summary)
}

/// Reads everything the socket holds, checks it, and completes the messages it finishes.
/// A finished message issues its successor on the same connection (closed loop) or frees a
/// slot in `ready` (rate-limited).
fn read_echoes(
    conn: &mut Conn,
    buf: &mut [u8],
    pattern: &Pattern,
    cfg: &EchoConfig,
    tally: &mut Tally,
    now: Instant,
    ready: &mut VecDeque<usize>,
) -> Result<(), String> {
    let size = cfg.size as u64;
    loop {
        let n = match conn.stream.read(buf) {
            Ok(0) => return Err("server closed the connection".to_string()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read: {e}")),
        };
        if conn.received + n as u64 > conn.sent {
            return Err(format!(
                "server sent {} bytes more than it was sent",
                conn.received + n as u64 - conn.sent
            ));
        }
        if cfg.verify && !pattern.matches(conn.received, &buf[..n]) {
            return Err(format!(
                "echo differs from what was sent near offset {}",
                conn.received
            ));
        }
        // Every message boundary crossed completes the oldest message in flight.
        let before = conn.received / size;
        conn.received += n as u64;
        for _ in before..conn.received / size {
            let issued_at = conn.in_flight.pop_front().expect("a message in flight");
            tally.complete(issued_at, now, cfg.size);
            if cfg.rate.is_some() {
                ready.push_back(conn.index);
            } else if tally.may_issue(now) {
                tally.issued += 1;
                conn.target += size;
                conn.in_flight.push_back(now);
            }
        }
        if n < buf.len() {
            // Short read: the socket was drained (see the module's implementation notes).
            return Ok(());
        }
    }
}

/// Drops a failed connection from the poll and counts its messages as lost.
fn kill(conn: &mut Conn, tally: &mut Tally, poll: &Poll, what: String) {
    conn.dead = true;
    let _ = poll.registry().deregister(conn.stream.source());
    tally.fail(what, conn.in_flight.len() as u64);
    conn.in_flight.clear();
}
