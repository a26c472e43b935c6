//! Slow consumers the Redis way, end to end (S21): during a flood of 900-byte lines a chat
//! member who reads as fast as it can, within about a megabyte of the sender, keeps its place,
//! and a member who stopped reading is dropped within the soft period.

mod samples_util;

use std::io::{self, BufRead, BufReader, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocols::chat::{self, ChatConn, ChatRoom};
use reactor::{ConnConfig, ListenOptions};
use samples_util::{connect, read_until, Sample, WAIT};

/// Bytes in each flood line, newline included.
const LINE: usize = 900;
/// The most bytes the sender may be ahead of the reader.
const AHEAD: usize = 1024 * 1024;
/// Lines the reader must keep up with: far past the 179 after which a 256 KiB hard limit alone
/// dropped it.
const MIN_LINES: usize = 8_000;

/// S21: three members. `stopped` joins with a small receive buffer and never reads; `reader`
/// reads as fast as it can; `sender` floods 900-byte lines, never more than 1 MiB ahead of
/// `reader`. The reader gets every line in order and stays; the stopped member is dropped as a
/// slow consumer within the soft period of the flood's start; afterwards the reader still gets
/// the sender's lines.
#[test]
fn a_reader_within_a_megabyte_keeps_its_place_and_a_stopped_member_is_dropped() -> io::Result<()> {
    evdrive_tests::init_log();
    let opts = ListenOptions::default().with_conn(chat::conn_config(ConnConfig::default()));
    let server = Sample::start(ChatRoom::new, opts, |_, _| ChatConn::new())?;

    // 1. The stopped member (guest1): a small receive buffer, so the server's queue for it
    // grows soon; it never reads.
    let stopped =
        evdrive_tests::connect_with(server.addr(), |fd| evdrive_tests::set_recv_buffer(fd, 4096))?;
    server.wait_until("the stopped member joined", |cx| cx.app().len() == 1);
    // One line, so that the others know of it (and hear of its going).
    (&stopped).write_all(b"here\n")?;
    server.wait_until("the stopped member spoke", |cx| {
        cx.app().nicks_in(chat::LOBBY).len() == 1
    });

    // 2. The reader (guest2), on its own thread: checks every flood line arrives in order.
    let mut reader = connect(server.addr())?;
    read_until(&mut reader, &mut Vec::new(), b"/help")?;
    let _reader_open = reader.try_clone()?;
    let received = Arc::new(AtomicUsize::new(0));
    let dropped_at = Arc::new(Mutex::new(None::<Instant>));
    let reading = {
        let (received, dropped_at) = (received.clone(), dropped_at.clone());
        std::thread::spawn(move || -> io::Result<()> {
            let mut lines = BufReader::new(reader);
            let mut line = Vec::new();
            loop {
                line.clear();
                if lines.read_until(b'\n', &mut line)? == 0 {
                    return Err(io::Error::other("the reader was disconnected"));
                }
                let text = String::from_utf8_lossy(&line);
                if let Some(rest) = text.strip_prefix("<guest3> m") {
                    let n: usize = rest.split(' ').next().unwrap().parse().unwrap();
                    assert_eq!(
                        n,
                        received.load(Ordering::SeqCst),
                        "a line lost or reordered"
                    );
                    received.store(n + 1, Ordering::SeqCst);
                } else if text.starts_with("* guest1 left (slow consumer)") {
                    *dropped_at.lock().unwrap() = Some(Instant::now());
                } else if text.starts_with("<guest3> after") {
                    return Ok(());
                }
            }
        })
    };

    // 3. The flood, paced by the reader only.
    let mut sender = connect(server.addr())?;
    read_until(&mut sender, &mut Vec::new(), b"/help")?;
    let started = Instant::now();
    let mut sent = 0;
    while sent < MIN_LINES || dropped_at.lock().unwrap().is_none() {
        assert!(
            started.elapsed() < 3 * WAIT,
            "{sent} lines in {:?}; stopped member dropped: {:?}",
            started.elapsed(),
            dropped_at.lock().unwrap()
        );
        assert!(
            !reading.is_finished(),
            "the reader stopped after {sent} lines"
        );
        let head = format!("m{sent} ");
        let filler = "x".repeat(LINE - head.len() - 1);
        sender.write_all(format!("{head}{filler}\n").as_bytes())?;
        sent += 1;
        while (sent - received.load(Ordering::SeqCst)) * LINE > AHEAD && !reading.is_finished() {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    let dropped_after = dropped_at.lock().unwrap().unwrap() - started;
    eprintln!("{sent} lines; the stopped member was dropped after {dropped_after:?}");
    assert!(
        dropped_after <= chat::SOFT_OUTPUT_FOR,
        "the stopped member was dropped after {dropped_after:?}"
    );

    // 4. The reader is still a member and gets what follows.
    sender.write_all(b"after\n")?;
    reading.join().expect("the reader panicked")?;
    assert_eq!(received.load(Ordering::SeqCst), sent);
    assert_eq!(server.query(|cx| cx.stats().slow_consumers), 1);
    assert_eq!(server.query(|cx| cx.app().len()), 2);
    drop(stopped);
    Ok(())
}
