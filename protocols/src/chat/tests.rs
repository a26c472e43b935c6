//! The chat's unit tests: a room on a real socket, and the heartbeat on the harness clock.

use super::commands::{self, trim};
use super::*;
use reactor::{ListenOptions, Reactor};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use std::time::Instant;

/// A room served on a free port, with clients that read without blocking.
struct Room {
    reactor: Reactor<ChatRoom>,
    addr: SocketAddr,
}

/// One member's socket and everything it received.
struct Client {
    stream: TcpStream,
    got: Vec<u8>,
    eof: bool,
}

impl Room {
    fn new(room: ChatRoom) -> Room {
        let mut reactor = Reactor::new(room).unwrap();
        let opts = ListenOptions::default().with_conn(conn_config(ConnConfig::default()));
        let listener = reactor
            // Greeted at once: these tests are about lines, and a grace per join adds up.
            .listen("127.0.0.1:0".parse().unwrap(), opts, |_, _| {
                ChatConn::lines_only()
            })
            .unwrap();
        let addr = reactor.listener_addr(listener).unwrap();
        Room { reactor, addr }
    }

    /// Connects a member and waits for its welcome line.
    fn join(&mut self) -> Client {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_nonblocking(true).unwrap();
        let mut c = Client {
            stream,
            got: Vec::new(),
            eof: false,
        };
        self.until(&mut [&mut c], |c| c[0].text().contains("/help"));
        c.got.clear();
        c
    }

    /// Turns the reactor and reads every client until `done` holds (or panics after 5 s).
    fn until(&mut self, clients: &mut [&mut Client], done: impl Fn(&[&mut Client]) -> bool) {
        let start = Instant::now();
        loop {
            self.reactor.turn(Some(Duration::from_millis(1))).unwrap();
            for c in clients.iter_mut() {
                c.read_available();
            }
            if done(clients) {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "timed out");
        }
    }
}

impl Client {
    fn send(&mut self, bytes: &[u8]) {
        self.stream.set_nonblocking(false).unwrap();
        self.stream.write_all(bytes).unwrap();
        self.stream.set_nonblocking(true).unwrap();
    }

    fn read_available(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.eof = true;
                    return;
                }
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.got).into_owned()
    }
}

#[test]
fn messages_notices_and_commands() {
    let mut room = Room::new(ChatRoom::new());
    let mut a = room.join();
    let mut b = room.join();
    room.until(&mut [&mut a], |c| c[0].text().contains("joined"));
    assert_eq!(a.text(), "* guest2 joined\r\n");
    a.got.clear();

    a.send(b"hello\r\n/nick alice\n/me waves\n//slash\n/who\n");
    room.until(&mut [&mut a, &mut b], |c| {
        c[0].text().contains("here:") && c[1].text().contains("<alice> /slash")
    });
    assert_eq!(
        b.text(),
        "<guest1> hello\r\n* guest1 is now known as alice\r\n* alice waves\r\n\
         <alice> /slash\r\n"
    );
    assert_eq!(
        a.text(),
        "* you are now alice\r\n* 2 here: alice (you), guest2\r\n"
    );
    a.got.clear();

    // Errors answer, they do not close.
    b.send(b"/nick ALICE\n/nick bad name!\n/frobnicate\n/me\n/nick guest2\n");
    room.until(&mut [&mut b], |c| c[0].text().contains("already"));
    assert_eq!(
        b.text(),
        "<guest1> hello\r\n* guest1 is now known as alice\r\n* alice waves\r\n\
         <alice> /slash\r\n! nickname ALICE is taken\r\n\
         ! usage: /nick NAME, with 1 to 20 of A-Z a-z 0-9 _ -\r\n\
         ! unknown command /frobnicate; try /help\r\n! usage: /me ACTION\r\n\
         * you are already guest2\r\n"
    );
    b.got.clear();

    // Escape sequences are defused; /quit says bye and the others hear of it.
    a.send(b"\x1b[2Jboo\n/quit\n");
    room.until(&mut [&mut a, &mut b], |c| {
        c[0].eof && c[1].text().contains("left")
    });
    assert_eq!(a.text(), "* bye\r\n");
    assert_eq!(b.text(), "<alice> ?[2Jboo\r\n* alice left\r\n");
    assert_eq!(room.reactor.app().nicks(), ["guest2"]);
}

#[test]
fn every_split_gives_the_same_conversation() {
    let script: &[u8] = b"hi there\r\n/nick bob\n/who\n\n/me sits\r\n/bogus x\n/quit\n";
    let conversation = |cut: usize| {
        let mut room = Room::new(ChatRoom::new());
        let mut a = room.join();
        let mut b = room.join();
        room.until(&mut [&mut a], |c| c[0].text().contains("joined"));
        a.got.clear();
        a.send(&script[..cut]);
        // Let the server read the first piece on its own.
        for _ in 0..3 {
            room.reactor.turn(Some(Duration::from_millis(1))).unwrap();
        }
        a.send(&script[cut..]);
        room.until(&mut [&mut a, &mut b], |c| {
            c[0].eof && c[1].text().contains("left")
        });
        (a.text(), b.text())
    };
    let whole = conversation(script.len());
    assert!(whole.0.ends_with("* bye\r\n"), "{}", whole.0);
    assert!(
        whole.1.ends_with("* bob sits\r\n* bob left\r\n"),
        "{}",
        whole.1
    );
    for cut in 0..script.len() {
        assert_eq!(conversation(cut), whole, "cut at {cut}");
    }
}

#[test]
fn over_long_line_closes_only_that_member() {
    let mut room = Room::new(ChatRoom::new());
    let mut a = room.join();
    let mut b = room.join();
    room.until(&mut [&mut a], |c| c[0].text().contains("joined"));
    a.got.clear();
    let long = vec![b'x'; MAX_LINE + 1];
    a.send(&long);
    room.until(&mut [&mut a, &mut b], |c| {
        c[0].eof && c[1].text().contains("left")
    });
    assert_eq!(
        a.text(),
        format!("! line longer than the maximum of {MAX_LINE} bytes; closing\r\n")
    );
    assert!(b
        .text()
        .ends_with("* guest1 left (line longer than the maximum of 16384 bytes)\r\n"));
    // A line of exactly the maximum is fine.
    let mut c = room.join();
    let mut line = vec![b'y'; MAX_LINE];
    line.push(b'\n');
    c.send(&line);
    room.until(&mut [&mut b], |c| c[0].text().ends_with("yyy\r\n"));
}

/// On the harness clock: a real one under load can leave `chatty` silent for an interval
/// and have it pinged too.
#[test]
fn heartbeat_pings_then_drops_silent_members() {
    use reactor::testing::Harness;
    // Longer than the greeting grace, so that no beat falls between the two joins.
    let interval = SNIFF_GRACE * 4;
    let mut h = Harness::new(ChatRoom::with_heartbeat(Some(interval))).unwrap();
    let opts = ListenOptions::default().with_conn(conn_config(ConnConfig::default()));
    let listener = h.listen(opts, |_, _| ChatConn::new());
    // Each accepted, then greeted after the grace for a browser's request.
    let quiet = listener.connect();
    h.settle().unwrap();
    h.advance(SNIFF_GRACE).unwrap();
    let chatty = listener.connect();
    h.settle().unwrap();
    h.advance(SNIFF_GRACE).unwrap();
    let text = |got: &[u8]| String::from_utf8_lossy(got).into_owned();
    let got = text(&quiet.take_received());
    assert!(got.contains("you are guest1"), "{got:?}");
    // One line makes `quiet` known to the others (greeted after silence, it was not yet).
    quiet.send(b"hello\n");
    h.settle().unwrap();
    chatty.take_received();
    let (mut quiet_got, mut chatty_got) = (Vec::new(), Vec::new());
    let start = h.now();
    // Keep `chatty` talking while `quiet` is pinged and dropped.
    while !(quiet.fin_received() && text(&chatty_got).contains("left")) {
        chatty.send(b"still here\n");
        h.advance(interval / 3).unwrap();
        quiet_got.extend(quiet.take_received());
        chatty_got.extend(chatty.take_received());
        assert!(h.now() - start < Duration::from_secs(5), "never dropped");
    }
    assert!(h.now() - start >= interval * MAX_MISSED_HEARTBEATS);
    let quiet_text = text(&quiet_got);
    assert!(quiet_text.starts_with("* guest2 joined\r\n<guest2> still here\r\n"));
    assert_eq!(quiet_text.matches("* ping\r\n").count(), 2, "{quiet_text}");
    assert!(quiet_text.ends_with("! you have been silent for too long: closing\r\n"));
    let chatty_text = text(&chatty_got);
    assert!(chatty_text.contains("* guest1 left (silent for too long)"));
    assert!(!chatty_text.contains("ping"));
    // The last member leaving stops the heartbeat: no timer is left.
    quiet.shutdown_write();
    chatty.shutdown_write();
    let start = h.now();
    while !h.app().is_empty() || h.reactor().timers_armed() > 0 {
        assert!(
            h.now() - start < Duration::from_secs(5),
            "heartbeat still armed"
        );
        h.advance(Duration::from_millis(5)).unwrap();
    }
}

#[test]
fn nick_rules() {
    assert!(is_valid_nick(b"a"));
    assert!(is_valid_nick(b"Al_ice-2"));
    assert!(is_valid_nick(&[b'n'; MAX_NICK]));
    assert!(!is_valid_nick(b""));
    assert!(!is_valid_nick(&[b'n'; MAX_NICK + 1]));
    assert!(!is_valid_nick(b"a b"));
    assert!(!is_valid_nick("é".as_bytes()));
    assert_eq!(trim(b"  x y  "), b"x y");
    assert_eq!(trim(b"   "), b"");
}

#[test]
fn rooms_and_private_messages() {
    let mut room = Room::new(ChatRoom::new());
    let mut a = room.join();
    let mut b = room.join();
    let mut c = room.join();
    room.until(&mut [&mut a, &mut b], |c| {
        c[0].text().contains("guest3 joined") && c[1].text().contains("guest3 joined")
    });
    a.got.clear();
    b.got.clear();

    // Moving: the room left and the room joined hear of it, the member is told where it is.
    a.send(b"/join #Side\n");
    room.until(&mut [&mut a, &mut b, &mut c], |c| {
        c[0].text().contains("now") && c[1].text().contains("went") && c[2].text().contains("went")
    });
    assert_eq!(a.text(), "* you are in #side now; 0 others are here\r\n");
    assert_eq!(b.text(), "* guest1 went to #side\r\n");
    c.send(b"/join #side\n");
    room.until(&mut [&mut a, &mut b, &mut c], |c| {
        c[0].text().contains("joined #side")
            && c[1].text().contains("guest3 went")
            && c[2].text().contains("1 other is")
    });
    a.got.clear();
    b.got.clear();
    c.got.clear();

    // Messages stay in their room; a private message crosses rooms.
    b.send(b"lobby only\n/msg GUEST1 psst\n/rooms\n");
    a.send(b"side only\n/who\n");
    room.until(&mut [&mut a, &mut b, &mut c], |c| {
        c[0].text().contains("here:")
            && c[1].text().contains("rooms:")
            && c[2].text().contains("side only")
    });
    assert_eq!(
        a.text(),
        "<guest2 (private)> psst\r\n* 2 here: guest1 (you), guest3 (in #side)\r\n"
    );
    assert_eq!(b.text(), "* rooms: #lobby (1), #side (2)\r\n");
    assert_eq!(c.text(), "<guest1> side only\r\n");
    a.got.clear();
    b.got.clear();
    c.got.clear();

    // Errors say what was expected; /part goes back to the lobby.
    b.send(b"/join side\n/part\n/msg nobody hi\n/msg guest2 x\n/msg guest1\n/help\n");
    room.until(&mut [&mut b], |c| c[0].text().contains("this list"));
    let help: String = commands::HELP.iter().map(|l| format!("{l}\r\n")).collect();
    assert_eq!(
        b.text(),
        format!(
            "! usage: /join #ROOM, a # and 1 to 20 of A-Z a-z 0-9 _ -\r\n\
             ! you are in #lobby already; /join #ROOM to go elsewhere\r\n\
             ! nobody is called nobody\r\n! that is you\r\n! usage: /msg NICK TEXT\r\n{help}"
        )
    );
    assert!(help.contains("/join #ROOM") && help.contains("/msg NICK TEXT"));
    b.got.clear();
    a.send(b"/part\n");
    room.until(&mut [&mut a, &mut b, &mut c], |c| {
        c[0].text().contains("now")
            && c[1].text().contains("joined")
            && c[2].text().contains("went")
    });
    assert_eq!(a.text(), "* you are in #lobby now; 1 other is here\r\n");
    assert_eq!(b.text(), "* guest1 joined #lobby\r\n");
    assert_eq!(c.text(), "* guest1 went to #lobby\r\n");
    assert_eq!(room.reactor.app().rooms(), [("#lobby", 2), ("#side", 1)]);
}
