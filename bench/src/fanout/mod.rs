//! The broadcast load: one sender, many members of one chat room, every line checked.
//!
//! `evdrive chat` relays each line a member types to every other member of its room. This load
//! connects `members` line members (as `nc` users would be), waits until each has been
//! greeted, then connects one sender, which writes numbered lines of a fixed size as fast as
//! the server delivers them. Every member must receive every line, in the order sent: a
//! member that misses, repeats, reorders or garbles a line is an error, and so is one that has
//! not received every line sent once the run is over.
//!
//! The figure is lines delivered per second, summed over members (one line reaching 1,000
//! members counts 1,000), over a measured window after a warm-up; with the server's process
//! id, also the server's CPU time over that same window (`utime + stime` of
//! `/proc/PID/stat`, every thread), divided by the lines delivered in it.
//!
//! # Implementation notes
//!
//! One mio event loop drives every connection, the sender's included, so the client spends its
//! core on sockets, not on scheduling 1,000 threads.
//!
//! The chat server never waits for a slow member: it queues the line and, past a few
//! megabytes, drops the member (S21). A sender writing as fast as the server *reads* would
//! therefore measure how fast members are dropped. So the sender is flow-controlled by the
//! members: it stays at most `window` lines ahead of the slowest member. With the window a few
//! hundred lines deep, neither side waits on the other's wake-ups, and each member's queue at
//! the server stays far below the slow-consumer limits.
//!
//! The lines' form and the members' checks are in `member`; the CPU readings in `cpu`.

use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::report::json_string;
use crate::sys;

mod cpu;
mod member;

pub use cpu::{cpu_time, machine_cpu_time};
use member::{fail, push_line, read_member, Conn, Expect, Stage, HEAD};

/// Size of the buffer every read lands in.
const READ_BUF: usize = 64 * 1024;

/// What to run against which chat server.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// The chat server.
    pub addr: SocketAddr,
    /// Members receiving the lines (the sender not included).
    pub members: usize,
    /// Bytes of each line's text, at least 13 (its number and a space are part of it).
    pub size: usize,
    /// Stop sending after this many lines.
    pub lines: u64,
    /// Measured time after warm-up; sending stops when it ends.
    pub duration: Duration,
    /// Time after the first line during which deliveries are not counted.
    pub warmup: Duration,
    /// Lines the sender may be ahead of the slowest member.
    pub window: u64,
    /// The server's process id, to read its CPU time over the measured window.
    pub server_pid: Option<u32>,
    /// Once every member is greeted, print `ready` and wait for a line on standard input
    /// before sending (a script zeroes its counters in between).
    pub wait_for_go: bool,
    /// Longest time for the members to connect and be greeted, and for the last lines to
    /// arrive once sending stopped.
    pub timeout: Duration,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct FanoutSummary {
    /// Members that took part.
    pub members: usize,
    /// Bytes of each line's text.
    pub size: usize,
    /// Lines the sender wrote.
    pub sent: u64,
    /// Lines received, summed over members, in the whole run.
    pub delivered: u64,
    /// Lines received, summed over members, in the measured window.
    pub window_delivered: u64,
    /// The measured window.
    pub window: Duration,
    /// The server's CPU time in the window, if its process id was given.
    pub server_cpu: Option<Duration>,
    /// This process's CPU time in the window.
    pub client_cpu: Duration,
    /// Every process's CPU time in the window, all cores together (`/proc/stat`), so that a
    /// reader can tell how much went to neither the server nor this client.
    pub machine_cpu: Duration,
    /// Time from the first connect until every member was greeted.
    pub join_time: Duration,
    /// Members that did not receive every line in order.
    pub errors: usize,
    /// What went wrong first.
    pub first_error: Option<String>,
}

impl FanoutSummary {
    /// Lines delivered per second in the window, summed over members.
    pub fn lines_per_sec(&self) -> f64 {
        per_sec(self.window_delivered, self.window)
    }

    /// The server's CPU time per delivered line, in nanoseconds.
    pub fn server_ns_per_line(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        Some(cpu.as_secs_f64() * 1e9 / self.window_delivered.max(1) as f64)
    }

    /// The figures as one JSON object.
    pub fn to_json(&self) -> String {
        let opt = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.3}"));
        format!(
            "{{\"members\":{},\"size\":{},\"sent\":{},\"delivered\":{},\"window_delivered\":{},\
             \"window_s\":{:.6},\"lines_per_s\":{:.1},\"server_cpu_s\":{},\
             \"server_ns_per_line\":{},\"client_cpu_s\":{:.3},\"machine_cpu_s\":{:.3},\"join_s\":{:.3},\"errors\":{},\
             \"first_error\":{}}}",
            self.members,
            self.size,
            self.sent,
            self.delivered,
            self.window_delivered,
            self.window.as_secs_f64(),
            self.lines_per_sec(),
            opt(self.server_cpu.map(|d| d.as_secs_f64())),
            opt(self.server_ns_per_line()),
            self.client_cpu.as_secs_f64(),
            self.machine_cpu.as_secs_f64(),
            self.join_time.as_secs_f64(),
            self.errors,
            self.first_error.as_deref().map_or("null".into(), json_string),
        )
    }

    /// The figures as a small table.
    pub fn to_table(&self) -> String {
        let secs = self.window.as_secs_f64();
        let mut t = format!(
            "fan-out: 1 sender -> {} members, {} B lines, window {secs:.2} s\n",
            self.members, self.size
        );
        t += &format!("  lines sent              {:>12}\n", self.sent);
        t += &format!("  lines delivered         {:>12}\n", self.delivered);
        t += &format!("  delivered/s (window)    {:>12.0}\n", self.lines_per_sec());
        if let Some(ns) = self.server_ns_per_line() {
            t += &format!("  server CPU ns/line      {ns:>12.1}\n");
        }
        t += &format!(
            "  client CPU %            {:>12.0}\n",
            100.0 * self.client_cpu.as_secs_f64() / secs.max(1e-9)
        );
        t += &format!(
            "  all processes' CPU %    {:>12.0}\n",
            100.0 * self.machine_cpu.as_secs_f64() / secs.max(1e-9)
        );
        t += &format!(
            "  join time               {:>10.2} s\n",
            self.join_time.as_secs_f64()
        );
        t += &format!("  errors                  {:>12}\n", self.errors);
        if let Some(e) = &self.first_error {
            t += &format!("  first error             {e}\n");
        }
        t
    }
}

fn per_sec(count: u64, window: Duration) -> f64 {
    let secs = window.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

/// Runs the load described by `cfg`.
///
/// # Errors
///
/// A connection could not be opened, or the members were not all greeted within
/// `cfg.timeout`. Errors of the run itself are counted in the summary instead.
pub fn run(cfg: &FanoutConfig) -> io::Result<FanoutSummary> {
    if cfg.size <= HEAD || cfg.members == 0 || cfg.window == 0 {
        return Err(io::Error::other(format!(
            "members and window must be at least 1, size at least {}",
            HEAD + 1
        )));
    }
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; READ_BUF];
    let mut first_error = None;
    let started = Instant::now();
    let deadline = started + cfg.timeout;

    // Members first; each is greeted once the server's sniffing grace has passed.
    let mut conns = Vec::with_capacity(cfg.members + 1);
    for i in 0..cfg.members {
        conns.push(open(&poll, cfg.addr, i, Interest::READABLE)?);
    }
    let mut joining = cfg.members;
    while joining > 0 {
        wait(
            &mut poll,
            &mut events,
            deadline,
            "the members to be greeted",
        )?;
        for ev in events.iter() {
            let i = ev.token().0;
            let conn = &mut conns[i];
            let was = conn.stage;
            read_member(conn, i, &mut buf, None, &mut first_error);
            if was == Stage::Joining && conn.stage != Stage::Joining {
                joining -= 1;
            }
            if conn.closed && conn.stage == Stage::Joining {
                return Err(io::Error::other(format!(
                    "member {i} closed before joining"
                )));
            }
        }
    }
    let join_time = started.elapsed();

    // The sender, last: its welcome names it, which gives every member's line prefix.
    let sender_token = cfg.members;
    let both = Interest::READABLE | Interest::WRITABLE;
    conns.push(open(&poll, cfg.addr, sender_token, both)?);
    let nick = read_welcome(&mut poll, &mut events, &mut conns[sender_token], deadline)?;
    let expect = Expect {
        prefix: format!("<{nick}> ").into_bytes(),
        padding: vec![b'x'; cfg.size - HEAD],
    };

    if cfg.wait_for_go {
        println!("ready");
        io::stdout().flush()?;
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line)?;
    }

    // Send, bounded by count and time, while reading what the members get.
    let mut out: Vec<u8> = Vec::new();
    let mut out_at = 0;
    let mut sent = 0u64;
    let mut delivered = 0u64;
    let start = Instant::now();
    let window_start = start + cfg.warmup;
    let window_end = window_start + cfg.duration;
    // (delivered, server CPU, client CPU, machine CPU) when the window opened, and over it.
    type Cpus = (u64, Option<Duration>, Duration, Duration);
    let mut window: Option<Cpus> = None;
    let mut measured: Option<(Cpus, Instant)> = None;
    let server_pid = cfg.server_pid.map(|p| p.to_string());
    let cpu = |pid: &Option<String>| pid.as_deref().map(cpu_time).transpose();
    let mut slowest = 0u64;
    let mut stop_sending = false;
    let mut drain_deadline = None;

    loop {
        let now = Instant::now();
        if window.is_none() && now >= window_start {
            window = Some((
                delivered,
                cpu(&server_pid)?,
                cpu_time("self")?,
                machine_cpu_time()?,
            ));
        }
        let all_in = sent == cfg.lines || stop_sending;
        if measured.is_none() && (now >= window_end || (all_in && slowest == sent)) {
            if let Some((d0, s0, c0, m0)) = window {
                let s1 = cpu(&server_pid)?;
                let server = s1.zip(s0).map(|(a, b)| a.saturating_sub(b));
                let client = cpu_time("self")?.saturating_sub(c0);
                let machine = machine_cpu_time()?.saturating_sub(m0);
                measured = Some(((delivered - d0, server, client, machine), now));
            }
            stop_sending = true;
            drain_deadline = Some(now + cfg.timeout);
        }
        if stop_sending && slowest == sent {
            break;
        }
        if drain_deadline.is_some_and(|d| now >= d) {
            fail(
                &mut first_error,
                "lines still missing when the run ended".into(),
            );
            break;
        }

        // Fill the sender's buffer up to the window, then write what the socket takes.
        if !stop_sending {
            let limit = cfg.lines.min(slowest + cfg.window);
            if out_at == out.len() {
                out.clear();
                out_at = 0;
            }
            while sent < limit {
                push_line(&mut out, sent, cfg.size);
                sent += 1;
            }
        }
        let sender = &mut conns[sender_token].stream;
        while out_at < out.len() {
            match sender.write(&out[out_at..]) {
                Ok(n) => out_at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io::Error::other(format!("sender: {e}"))),
            }
        }

        // Lines keep the loop busy; the timeout only matters if everything stalls.
        poll_retrying(&mut poll, &mut events, Some(Duration::from_millis(20)))?;
        let mut advanced = false;
        let mut broken = false;
        for ev in events.iter() {
            let i = ev.token().0;
            if i == sender_token {
                continue;
            }
            let conn = &mut conns[i];
            let got = read_member(conn, i, &mut buf, Some(&expect), &mut first_error);
            delivered += got;
            advanced |= got > 0;
            broken |= conn.stage == Stage::Failed || conn.closed;
        }
        if advanced {
            slowest = conns[..cfg.members]
                .iter()
                .map(|c| c.next)
                .min()
                .unwrap_or(0);
        }
        if broken {
            fail(
                &mut first_error,
                "a member failed or was disconnected".into(),
            );
            break;
        }
    }

    let errors = conns[..cfg.members]
        .iter()
        .filter(|c| c.stage == Stage::Failed || c.closed || c.next != sent)
        .count();
    for conn in &conns {
        let _ = sys::set_linger_zero(conn.stream.as_fd());
    }
    let zero = Duration::ZERO;
    let ((window_delivered, server_cpu, client_cpu, machine_cpu), end) =
        measured.unwrap_or(((0, None, zero, zero), Instant::now()));
    Ok(FanoutSummary {
        members: cfg.members,
        size: cfg.size,
        sent,
        delivered,
        window_delivered,
        window: end.saturating_duration_since(window_start),
        server_cpu,
        client_cpu,
        machine_cpu,
        join_time,
        errors,
        first_error,
    })
}

/// Connects connection `i`, non-blocking, registered for `interest`.
fn open(poll: &Poll, addr: SocketAddr, i: usize, interest: Interest) -> io::Result<Conn> {
    let std = sys::connect_from(None, addr)
        .map_err(|e| io::Error::new(e.kind(), format!("connection {i}: {e}")))?;
    std.set_nonblocking(true)?;
    std.set_nodelay(true)?;
    let mut stream = TcpStream::from_std(std);
    poll.registry().register(&mut stream, Token(i), interest)?;
    Ok(Conn {
        stream,
        stage: Stage::Joining,
        next: 0,
        partial: Vec::new(),
        closed: false,
    })
}

/// Waits for the welcome line on `conn` and returns the nickname it gives.
fn read_welcome(
    poll: &mut Poll,
    events: &mut Events,
    conn: &mut Conn,
    deadline: Instant,
) -> io::Result<String> {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while !text.contains(&b'\n') {
        match conn.stream.read(&mut buf) {
            Ok(0) => return Err(io::Error::other("the sender was closed before its welcome")),
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait(poll, events, deadline, "the sender's welcome")?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // `* welcome to evdrive chat, you are NICK; …`
    let text = String::from_utf8_lossy(&text);
    text.split_once("you are ")
        .and_then(|(_, rest)| rest.split_once(';'))
        .map(|(nick, _)| nick.to_string())
        .ok_or_else(|| io::Error::other(format!("no nickname in the welcome {text:?}")))
}

/// Polls until something happens, failing once `deadline` passes.
fn wait(poll: &mut Poll, events: &mut Events, deadline: Instant, what: &str) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out waiting for {what}"),
        ));
    }
    poll_retrying(poll, events, Some(left))
}

/// `poll.poll`, retried when a signal interrupts it.
fn poll_retrying(
    poll: &mut Poll,
    events: &mut Events,
    timeout: Option<Duration>,
) -> io::Result<()> {
    loop {
        match poll.poll(events, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
