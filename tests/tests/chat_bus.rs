//! One chat across processes: two `evdrive chat --bus redis://…` processes on one real
//! `redis-server` (started here on a free port, without persistence) are one chat; and when
//! Redis goes away and comes back, the members are told, the local chat goes on, and both
//! processes reconnect on their own.

mod samples_util;

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use evdrive_tests::{evdrive_binary, unassigned_port};
use samples_util::{connect, require, run, take_until, WAIT};

/// The line members get when the bus goes away, and when it is back.
const DOWN: &str = "* the bus is down: only this server's members see you\r\n";
const BACK: &str = "* the bus is back\r\n";

/// The lines a child writes to standard error, collected by a thread.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("piped");
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    lines
}

/// Waits for a line of `lines` containing `needle`; returns it.
fn wait_line(lines: &mpsc::Receiver<String>, needle: &str, what: &str) -> io::Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .map_err(|_| io::Error::other(format!("{what} never said {needle:?}")))?;
        if line.contains(needle) {
            return Ok(line);
        }
    }
}

/// A `redis-server` on a port of 127.0.0.1, without persistence, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts it on a free port, one no other test can take while it is down. Should another
    /// program on the machine take the port first, `redis-server` exits and another port is
    /// tried.
    fn start() -> io::Result<Redis> {
        let mut last = None;
        for _ in 0..5 {
            match Redis::start_on(unassigned_port()?) {
                Ok(redis) => return Ok(redis),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("tried"))
    }

    /// Starts it on `port`, and returns once it accepts connections.
    fn start_on(port: u16) -> io::Result<Redis> {
        require("redis-server");
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let redis = Redis { child, port };
        wait_line(&lines, "Ready to accept connections", "redis-server")?;
        Ok(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `evdrive chat --bus URL` on a free port, connected to the bus, killed when dropped.
struct Chat {
    child: Child,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
}

impl Chat {
    fn start(bus: &str) -> io::Result<Chat> {
        Chat::start_threads(bus, 1)
    }

    /// With `threads` threads, each a node of the bus.
    fn start_threads(bus: &str, threads: usize) -> io::Result<Chat> {
        let mut child = Command::new(evdrive_binary())
            .args(["chat", "--listen", "127.0.0.1:0", "--bus", bus])
            .args(["--threads", &threads.to_string()])
            // The bus's debug lines count its reconnection attempts.
            .env("RUST_LOG", "info,evdrive_protocols::chat::bus=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let log = stderr_lines(&mut child);
        // The address, and every thread connected to the bus, in whatever order they come
        // (with threads, a node may connect before the address is announced).
        let marker = "evdrive chat listening on ";
        let (mut addr, mut connected) = (None, 0);
        let deadline = Instant::now() + WAIT;
        while addr.is_none() || connected < threads {
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "evdrive chat: address {addr:?}, {connected} of {threads} nodes connected"
                )));
            }
            let line = wait_line(&log, "", "evdrive chat")?;
            connected += usize::from(line.contains("chat bus: connected"));
            if let Some(at) = line.find(marker) {
                addr = line[at + marker.len()..]
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.parse().ok());
                assert!(addr.is_some(), "no address after the marker: {line}");
            }
        }
        let addr = addr.expect("the loop ends with an address");
        Ok(Chat { child, addr, log })
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A member connected as `nc` would be: its socket and what it received not yet looked at.
struct Member {
    name: String,
    stream: TcpStream,
    got: Vec<u8>,
}

impl Member {
    /// Connects, waits for the welcome, and takes the nickname `name`.
    fn join(addr: SocketAddr, name: &str) -> io::Result<Member> {
        let mut m = Member {
            name: name.into(),
            stream: connect(addr)?,
            got: Vec::new(),
        };
        m.wait_for("/help lists the commands\r\n")?;
        m.send(&format!("/nick {name}\n"))?;
        m.wait_for(&format!("* you are now {name}\r\n"))?;
        Ok(m)
    }

    fn send(&mut self, text: &str) -> io::Result<()> {
        self.stream.write_all(text.as_bytes())
    }

    /// Waits for `needle`; returns what was received up to it and forgets that.
    fn wait_for(&mut self, needle: &str) -> io::Result<String> {
        take_until(&mut self.stream, &mut self.got, needle, &self.name)
    }

    /// Sends `command` and returns the next whole line starting with `prefix`.
    fn ask(&mut self, command: &str, prefix: &str) -> io::Result<String> {
        self.send(command)?;
        self.wait_for(prefix)?;
        let rest = self.wait_for("\r\n")?;
        Ok(format!("{prefix}{}", rest.trim_end()))
    }
}

#[test]
fn two_processes_on_one_bus_are_one_chat() -> io::Result<()> {
    let redis = Redis::start()?;
    let (a_chat, b_chat) = (Chat::start(&redis.url())?, Chat::start(&redis.url())?);
    let mut alice = Member::join(a_chat.addr, "alice")?;
    let mut bob = Member::join(b_chat.addr, "bobby")?;
    // Lines only flow once each node knows the other; bob's rename reaching alice says so.
    alice.wait_for(" is now known as bobby\r\n")?;

    // A nickname taken on A is refused on B (the roster, or the claim in Redis).
    bob.send("/nick ALICE\n")?;
    bob.wait_for("! nickname ALICE is taken\r\n")?;
    bob.send("/nick bob\n")?;
    bob.wait_for("* you are now bob\r\n")?;
    alice.wait_for("* bobby is now known as bob\r\n")?;

    // Every line, in the order its sender sent it, both ways.
    let lines: String = (0..200).map(|i| format!("a says {i}\n")).collect();
    alice.send(&lines)?;
    let expected: String = (0..200)
        .map(|i| format!("<alice> a says {i}\r\n"))
        .collect();
    let seen = bob.wait_for("<alice> a says 199\r\n")?;
    assert!(seen.contains(&expected), "lost or reordered: {seen}");
    let lines: String = (0..200).map(|i| format!("b says {i}\n")).collect();
    bob.send(&lines)?;
    let expected: String = (0..200).map(|i| format!("<bob> b says {i}\r\n")).collect();
    let seen = alice.wait_for("<bob> b says 199\r\n")?;
    assert!(seen.contains(&expected), "lost or reordered: {seen}");

    // Anyone on the Redis server can publish: a malformed message is dropped, and a line's
    // control characters are defused as any member's are (S11).
    require("redis-cli");
    let port = redis.port.to_string();
    let publish = |payload: &str| {
        run(
            "redis-cli",
            &["-p", &port, "PUBLISH", "evdrive:chat", payload],
        )
    };
    publish("garbage")?;
    publish("evchat1 zz.0 line #lobby <mallory> \u{1b}[31mred")?;
    alice.wait_for("<mallory> ?[31mred\r\n")?;
    bob.wait_for("<mallory> ?[31mred\r\n")?;

    // /who on B lists A's members; /me and private messages cross; rooms are counted.
    let who = bob.ask("/who\n", "* 2 here:")?;
    assert_eq!(who, "* 2 here: alice, bob (you)");
    alice.send("/me waves\n/msg bob psst\n")?;
    bob.wait_for("* alice waves\r\n<alice (private)> psst\r\n")?;
    bob.send("/msg alice hi there\n/join #side\n")?;
    alice.wait_for("<bob (private)> hi there\r\n* bob went to #side\r\n")?;
    let rooms = alice.ask("/rooms\n", "* rooms:")?;
    assert_eq!(rooms, "* rooms: #lobby (1), #side (1)");

    // A member leaving B leaves A's list.
    bob.send("/part\n")?;
    alice.wait_for("* bob joined #lobby\r\n")?;
    drop(bob);
    alice.wait_for("* bob left")?;
    let who = alice.ask("/who\n", "* 1 here:")?;
    assert_eq!(who, "* 1 here: alice (you)");
    Ok(())
}

#[test]
fn a_bus_restart_is_told_and_survived() -> io::Result<()> {
    let redis = Redis::start()?;
    let port = redis.port;
    let (a_chat, b_chat) = (Chat::start(&redis.url())?, Chat::start(&redis.url())?);
    let mut alice = Member::join(a_chat.addr, "alice")?;
    let mut bob = Member::join(b_chat.addr, "bob")?;
    alice.wait_for(" is now known as bob\r\n")?;
    alice.send("before\n")?;
    bob.wait_for("<alice> before\r\n")?;

    // Redis goes away: every member is told, once.
    drop(redis);
    alice.wait_for(DOWN)?;
    let down_at = Instant::now();
    bob.wait_for(DOWN)?;
    wait_line(&a_chat.log, "chat bus down", "chat A")?;

    // The local chat goes on.
    let mut carol = Member::join(a_chat.addr, "carol")?;
    alice.send("only here\n")?;
    carol.wait_for("<alice> only here\r\n")?;

    // A retries with growing delays, never spinning: its 4th failed retry comes after at least
    // the four shortest delays the back-off allows (50 + 100 + 200 + 400 ms: each delay is at
    // least half of 100 ms doubled per attempt).
    for _ in 0..4 {
        wait_line(&a_chat.log, "chat bus: still down", "chat A")?;
    }
    let retrying = down_at.elapsed();
    eprintln!("A failed 4 retries in {retrying:?}");
    assert!(
        retrying >= Duration::from_millis(750),
        "4 retries in {retrying:?}: not backing off"
    );

    // Redis comes back on the same port: both processes reconnect and say so.
    let restarted = Instant::now();
    let _redis = Redis::start_on(port)?;
    let seen = alice.wait_for(BACK)?;
    assert!(
        !seen.contains(DOWN),
        "told twice that the bus is down: {seen}"
    );
    let seen = bob.wait_for(BACK)?;
    assert!(
        !seen.contains(DOWN),
        "told twice that the bus is down: {seen}"
    );
    let took = restarted.elapsed();
    eprintln!("both processes were back on the bus {took:?} after Redis restarted");
    // The back-off is capped, so a reconnect never takes much longer than its cap.
    assert!(took < Duration::from_secs(8), "reconnecting took {took:?}");

    // Lines cross again, and so does news of members.
    alice.send("after\n")?;
    bob.wait_for("<alice> after\r\n")?;
    bob.send("/nick robert\n")?;
    bob.wait_for("* you are now robert\r\n")?;
    alice.wait_for("* bob is now known as robert\r\n")?;
    carol.wait_for("* bob is now known as robert\r\n")?;
    Ok(())
}

#[test]
fn threads_on_the_bus_deliver_every_line_once() -> io::Result<()> {
    let redis = Redis::start()?;
    let a_chat = Chat::start_threads(&redis.url(), 2)?;
    let b_chat = Chat::start(&redis.url())?;
    // Four members on A, spread over its two threads by the kernel (each thread is a node of
    // the bus, and the threads also relay to each other through their handles).
    let mut here = Vec::new();
    for i in 0..4 {
        here.push(Member::join(a_chat.addr, &format!("a{i}"))?);
    }
    let mut bob = Member::join(b_chat.addr, "bob")?;
    for m in &mut here {
        m.wait_for(" is now known as bob\r\n")?;
    }

    // Bob's lines reach each member of A once, in order.
    bob.send("one\ntwo\n")?;
    for m in &mut here {
        let seen = m.wait_for("<bob> two\r\n")?;
        assert_eq!(
            seen.matches("<bob> one\r\n").count(),
            1,
            "{}: {seen}",
            m.name
        );
    }
    // A line from A reaches bob once, and the other members of A once.
    here[0].send("x1\nx2\n")?;
    let seen = bob.wait_for("<a0> x2\r\n")?;
    assert_eq!(seen.matches("<a0> x1\r\n").count(), 1, "bob: {seen}");
    for m in &mut here[1..] {
        let seen = m.wait_for("<a0> x2\r\n")?;
        assert_eq!(seen.matches("<a0> x1\r\n").count(), 1, "{}: {seen}", m.name);
    }
    // Everyone is listed once, whichever thread or process.
    let who = bob.ask("/who\n", "* 5 here:")?;
    assert_eq!(who, "* 5 here: a0, a1, a2, a3, bob (you)");
    Ok(())
}
