//! The chat sample with real clients: `nc` and `socat` members talking, notices, commands, the
//! order of messages, and a slow consumer dropped while the others keep receiving (S16, S21).

mod samples_util;

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocols::chat::{self, ChatConn, ChatRoom};
use reactor::{ConnConfig, ListenOptions};
use samples_util::{connect, read_until, require, Sample, Tool, WAIT};

/// A chat server with the settings `evdrive chat` uses.
fn chat_server() -> io::Result<Sample<ChatRoom>> {
    let opts = ListenOptions::default().with_conn(chat::conn_config(ConnConfig::default()));
    Sample::start(ChatRoom::new, opts, |_, _| ChatConn::new())
}

#[test]
fn nc_and_socat_members_chat() -> io::Result<()> {
    require("nc");
    require("socat");
    let server = chat_server()?;
    let port = server.port().to_string();
    let socat_addr = format!("TCP:127.0.0.1:{port}");

    // Two members join; each is welcomed, and known to the others from its first line.
    let mut a = Tool::spawn("nc", &["127.0.0.1", &port])?;
    a.wait_for("you are guest1;");
    a.send("/who\n");
    a.wait_for("* 1 here: guest1 (you)\r\n");
    let mut b = Tool::spawn("socat", &["-", &socat_addr])?;
    let welcome = b.wait_for("/help");
    assert!(
        welcome.contains("you are guest2; 1 other is here"),
        "{welcome}"
    );

    // Messages reach the other member (one who has not spoken yet too), not the sender.
    a.send("hello from a\n");
    b.wait_for("<guest1> hello from a\r\n");

    // Nicknames, /who, /me.
    b.send("/nick bob\n");
    b.wait_for("* you are now bob\r\n");
    a.wait_for("* guest2 joined\r\n* guest2 is now known as bob\r\n");
    a.send("/nick BOB\n");
    a.wait_for("! nickname BOB is taken\r\n");
    a.send("/who\n");
    a.wait_for("* 2 here: bob, guest1 (you)\r\n");
    b.send("/me waves\n");
    a.wait_for("* bob waves\r\n");

    // An unknown command is an error line, not a close.
    b.send("/frobnicate now\n");
    b.wait_for("! unknown command /frobnicate; try /help\r\n");
    b.send("still here\n");
    a.wait_for("<bob> still here\r\n");
    assert!(!a.text().contains("hello from a"), "no echo to the sender");

    // A third member; a burst from one member arrives complete and in order at both others.
    let mut c = Tool::spawn("nc", &["127.0.0.1", &port])?;
    c.wait_for("you are guest3; 2 others are here");
    c.send("hi\n");
    a.wait_for("* guest3 joined\r\n");
    b.wait_for("* guest3 joined\r\n");
    let burst: String = (0..300).map(|i| format!("line {i}\n")).collect();
    a.send(&burst);
    let expected: String = (0..300).map(|i| format!("<guest1> line {i}\r\n")).collect();
    for member in [&b, &c] {
        let text = member.wait_for("<guest1> line 299\r\n");
        assert!(
            text.contains(&expected),
            "lines lost or out of order:\n{text}"
        );
    }

    // /quit says bye and the others hear of it; a member whose client dies leaves too.
    c.send("/quit\n");
    c.wait_for("* bye\r\n");
    a.wait_for("* guest3 left\r\n");
    b.wait_for("* guest3 left\r\n");
    drop(b);
    a.wait_for("* bob left");
    server.wait_until("one member left", |cx| cx.app().len() == 1);
    Ok(())
}

#[test]
fn slow_consumer_is_dropped_while_others_keep_receiving() -> io::Result<()> {
    require("nc");
    let server = chat_server()?;

    // The slow member: an `nc` whose output nobody reads. Once its pipe is full it stops
    // reading the socket, and the server's queue for it grows.
    let mut slow = Command::new("nc")
        .args(["127.0.0.1", &server.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    server.wait_until("the slow member joined", |cx| cx.app().len() == 1);
    // One line, so that the others know of it (and hear of its going).
    slow.stdin.as_mut().expect("piped").write_all(b"here\n")?;
    server.wait_until("the slow member spoke", |cx| {
        cx.app().nicks_in(chat::LOBBY).len() == 1
    });

    // A reader that checks every message arrives, in order.
    let mut reader = connect(server.addr())?;
    let mut got = Vec::new();
    read_until(&mut reader, &mut got, b"/help")?;
    // Kept open to the end: the reader thread drops its copy when it is done.
    let _reader_open = reader.try_clone()?;
    let received = Arc::new(AtomicUsize::new(0));
    let slow_left = Arc::new(AtomicBool::new(false));
    let after = Arc::new(AtomicBool::new(false));
    let reading = {
        let (received, slow_left, after) = (received.clone(), slow_left.clone(), after.clone());
        std::thread::spawn(move || -> io::Result<()> {
            let mut lines = BufReader::new(reader);
            let mut line = Vec::new();
            loop {
                line.clear();
                if lines.read_until(b'\n', &mut line)? == 0 {
                    return Ok(());
                }
                let text = String::from_utf8_lossy(&line);
                if let Some(rest) = text.strip_prefix("<guest3> m") {
                    let n: usize = rest.split(' ').next().unwrap().parse().unwrap();
                    let expected = received.load(Ordering::SeqCst);
                    assert_eq!(n, expected, "message lost or out of order");
                    received.store(n + 1, Ordering::SeqCst);
                } else if text.starts_with("* guest1 left (slow consumer)") {
                    slow_left.store(true, Ordering::SeqCst);
                } else if text.starts_with("<guest3> after") {
                    after.store(true, Ordering::SeqCst);
                    return Ok(());
                }
            }
        })
    };

    // A sender of 8 KiB messages, paced so the reader is never more than 16 behind (the
    // reader must not become a slow consumer itself).
    let mut sender = connect(server.addr())?;
    let mut got = Vec::new();
    read_until(&mut sender, &mut got, b"/help")?;
    let filler = "x".repeat(8 * 1024);
    let start = Instant::now();
    let mut sent = 0;
    while !slow_left.load(Ordering::SeqCst) {
        assert!(
            sent < 8192,
            "64 MiB sent and the slow member is still there"
        );
        assert!(
            start.elapsed() < WAIT * 3,
            "the slow member was never dropped"
        );
        sender.write_all(format!("m{sent} {filler}\n").as_bytes())?;
        sent += 1;
        while sent - received.load(Ordering::SeqCst) > 16 && !reading.is_finished() {
            std::thread::sleep(Duration::from_micros(200));
        }
        assert!(!reading.is_finished(), "the reader stopped");
    }

    eprintln!("the slow member was dropped after {sent} messages of 8 KiB");

    // The others keep talking.
    sender.write_all(b"after\n")?;
    reading.join().expect("the reader panicked")?;
    assert!(after.load(Ordering::SeqCst));
    assert_eq!(received.load(Ordering::SeqCst), sent);
    let slow_consumers = server.query(|cx| cx.stats().slow_consumers);
    assert_eq!(slow_consumers, 1);
    assert_eq!(server.query(|cx| cx.app().nicks().len()), 2);
    let _ = slow.kill();
    let _ = slow.wait();
    Ok(())
}
