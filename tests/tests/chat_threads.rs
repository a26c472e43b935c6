//! One chat across threads: `evdrive chat --threads 2` is one chat whichever thread the kernel
//! hands a connection to (`SO_REUSEPORT` spreads them). Members are connected until two landed
//! on different threads, which their default nicknames tell: thread `i` of 2 numbers its guests
//! `i + 1`, `i + 3`…, so an odd guest is on thread 0 and an even one on thread 1.

mod samples_util;

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use evdrive_tests::evdrive_binary;
use samples_util::{connect, read_until, take_until, WAIT};

/// `evdrive chat --threads 2` on a free port, killed when dropped.
struct Chat {
    child: Child,
    addr: SocketAddr,
}

impl Chat {
    fn start() -> io::Result<Chat> {
        let mut child = Command::new(evdrive_binary())
            .args(["chat", "--listen", "127.0.0.1:0", "--threads", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        let marker = "evdrive chat listening on ";
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .map_err(|_| io::Error::other("evdrive chat did not announce its address"))?;
            if let Some(at) = line.find(marker) {
                let addr = line[at + marker.len()..]
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.parse().ok())
                    .expect("an address after the marker");
                return Ok(Chat { child, addr });
            }
        }
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A member: its socket, what it received, its default number.
struct Member {
    stream: TcpStream,
    got: Vec<u8>,
    number: u64,
}

impl Member {
    /// Connects and reads the welcome line, which names the member; then says a first line,
    /// so that the others know of it.
    fn join(addr: SocketAddr) -> io::Result<Member> {
        let mut stream = connect(addr)?;
        let mut got = Vec::new();
        read_until(&mut stream, &mut got, b"/help lists the commands\r\n")?;
        stream.write_all(b"/who\n")?;
        read_until(&mut stream, &mut got, b" (you)")?;
        let text = String::from_utf8_lossy(&got).into_owned();
        let at = text.find("you are guest").expect("a welcome") + "you are guest".len();
        let number = text[at..]
            .split(';')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a guest number");
        Ok(Member {
            stream,
            got: Vec::new(),
            number,
        })
    }

    fn thread(&self) -> u64 {
        (self.number - 1) % 2
    }

    fn send(&mut self, text: &str) -> io::Result<()> {
        self.stream.write_all(text.as_bytes())
    }

    /// Waits for `needle`; returns what was received up to it and forgets that.
    fn wait_for(&mut self, needle: &str) -> io::Result<String> {
        let who = format!("guest{}", self.number);
        take_until(&mut self.stream, &mut self.got, needle, &who)
    }
}

#[test]
fn members_on_two_threads_are_one_chat() -> io::Result<()> {
    let chat = Chat::start()?;
    // Connect until one member is on each thread; the others stay, members like any.
    let mut members = vec![Member::join(chat.addr)?];
    let other = loop {
        let m = Member::join(chat.addr)?;
        let differs = m.thread() != members[0].thread();
        members.push(m);
        if differs {
            break members.len() - 1;
        }
        assert!(members.len() < 40, "every connection landed on one thread");
    };
    let mut b = members.swap_remove(other);
    let mut a = members.swap_remove(0);
    assert_ne!(a.thread(), b.thread());

    // A nickname taken on one thread is taken on the other: the rename reaches b's thread
    // before a's next line does (one mailbox, first in, first out).
    a.send("/nick alice\nready\n")?;
    b.wait_for("<alice> ready\r\n")?;
    b.send("/nick ALICE\n")?;
    b.wait_for("! nickname ALICE is taken\r\n")?;
    b.send("/nick bob\n")?;
    b.wait_for("* you are now bob\r\n")?;
    a.wait_for("* guest")?;

    // Every line, in the order its sender sent it, both ways.
    let lines: String = (0..200).map(|i| format!("a says {i}\n")).collect();
    a.send(&lines)?;
    let expected: String = (0..200)
        .map(|i| format!("<alice> a says {i}\r\n"))
        .collect();
    let seen = b.wait_for("<alice> a says 199\r\n")?;
    assert!(seen.contains(&expected), "lost or reordered: {seen}");
    let lines: String = (0..200).map(|i| format!("b says {i}\n")).collect();
    b.send(&lines)?;
    let expected: String = (0..200).map(|i| format!("<bob> b says {i}\r\n")).collect();
    let seen = a.wait_for("<bob> b says 199\r\n")?;
    assert!(seen.contains(&expected), "lost or reordered: {seen}");

    // /who lists everyone, whichever thread; a private message crosses threads; rooms too.
    let everyone = 2 + members.len();
    a.send("/who\n")?;
    let who = a.wait_for(" here:")? + &a.wait_for("\r\n")?;
    let who = who
        .lines()
        .find(|l| l.contains(" here:"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        who.starts_with(&format!("* {everyone} here:")) && who.contains("bob"),
        "{who}"
    );
    b.send("/msg alice psst\n/join #side\n")?;
    a.wait_for("<bob (private)> psst\r\n")?;
    a.wait_for("* bob went to #side\r\n")?;
    a.send("/rooms\n")?;
    let rooms = a.wait_for("* rooms:")? + &a.wait_for("\r\n")?;
    assert!(
        rooms.contains(&format!("* rooms: #lobby ({}), #side (1)", everyone - 1)),
        "{rooms}"
    );
    Ok(())
}
