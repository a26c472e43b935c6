//! The chat target: every complete line reaches every other member, in order, as a model room
//! says.

use std::sync::OnceLock;

use reactor::testing::{Harness, MemPeer};

use super::chat_script::build_lines;
use super::script::{patient, settle, HandlerInput};
use crate::chat::{conn_config, is_request_line, ChatConn, ChatRoom, MAX_LINE, SNIFF_GRACE};
use reactor::testing::{PeerOp, Script};

/// The most members a script connects.
const MAX_MEMBERS: usize = 4;

/// The lines `/help` answers with: fixed text, taken once from the server itself so that the
/// model does not have to repeat it.
fn help_lines() -> &'static [Vec<u8>] {
    static HELP: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    HELP.get_or_init(|| {
        let mut h = Harness::new(ChatRoom::new()).expect("a harness needs only a poller");
        let listener = h.listen(patient(), |_, _| ChatConn::new());
        let peer = listener.connect();
        greet(&mut h);
        peer.take_received(); // the welcome line
        peer.send(b"/help\n");
        settle(&mut h);
        lines(&peer.take_received())
    })
}

/// Accepts the connections waiting, then lets the grace for a browser's request pass, so
/// that they are greeted as line members.
fn greet(h: &mut Harness<ChatRoom>) {
    settle(h);
    if let Err(e) = h.advance(SNIFF_GRACE) {
        panic!("the harness did not settle: {e}");
    }
}

/// Splits a member's output into lines without their `\r\n`.
fn lines(out: &[u8]) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = out.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    // Every line ends in `\n`, so the last piece is what follows the last one.
    let tail = lines.pop().unwrap_or_default();
    assert!(tail.is_empty(), "output ends inside a line: {tail:?}");
    for line in &mut lines {
        assert_eq!(line.pop(), Some(b'\r'), "a line not ended by \\r\\n");
    }
    lines
}

/// A line as the server builds it: the parts, each with control characters but tab made `?`.
fn line(parts: &[&[u8]]) -> Vec<u8> {
    parts
        .iter()
        .flat_map(|p| p.iter())
        .map(|&b| {
            if (b < 0x20 && b != b'\t') || b == 0x7f {
                b'?'
            } else {
                b
            }
        })
        .collect()
}

/// One member in the model.
#[derive(Debug)]
struct Member {
    /// The member's end of its connection.
    peer: MemPeer,
    /// The nickname the room knows the member by.
    nick: String,
    /// The room the member is in.
    room: String,
    /// Still in the room (not quit, not gone).
    present: bool,
    /// Known to the others: greeted after silence, a member is quiet until its first line.
    listed: bool,
    /// The member's first line was an HTTP request: what follows is the HTTP side's answer.
    http: bool,
    /// Still able to send (no FIN, no reset).
    open: bool,
    /// The member was reset: it may have missed the end of what it was sent.
    reset: bool,
    /// Everything the member will send, lines that end in `\n`.
    stream: Vec<u8>,
    /// How much of `stream` was sent.
    sent: usize,
    /// Where the line being sent started in `stream`.
    line_start: usize,
    /// The lines the member must receive, in order.
    expected: Vec<Vec<u8>>,
    /// What the member received.
    received: Vec<u8>,
}

/// The model room: what every member must see.
#[derive(Debug)]
struct Room {
    members: Vec<Member>,
}

/// Whether `nick` is 1 to 20 ASCII letters, digits, `_` and `-`.
fn valid_nick(nick: &[u8]) -> bool {
    (1..=20).contains(&nick.len())
        && nick
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Room {
    /// Queues `msg` for every present member of `except`'s room but `except`.
    fn broadcast(&mut self, except: usize, msg: &[u8]) {
        let room = self.members[except].room.clone();
        self.broadcast_in(&room, except, msg);
    }

    /// Queues `msg` for every present member of `room` but `except`.
    fn broadcast_in(&mut self, room: &str, except: usize, msg: &[u8]) {
        for (i, m) in self.members.iter_mut().enumerate() {
            if i != except && m.present && m.room == room {
                m.expected.push(msg.to_vec());
            }
        }
    }

    /// Member `i` joins, quiet (they join in order, before anyone speaks).
    fn join(&mut self, i: usize) {
        let nick = format!("guest{}", i + 1);
        let others = self
            .members
            .iter()
            .filter(|m| m.present && m.listed)
            .count();
        let welcome = format!(
            "* welcome to evdrive chat, you are {nick}; {others} other{} here in #lobby; \
             /help lists the commands",
            if others == 1 { " is" } else { "s are" }
        );
        self.members[i].expected.push(welcome.into_bytes());
    }

    /// Member `i` leaves the room; the others are told why if they knew of it.
    fn depart(&mut self, i: usize, why: &str) {
        if std::mem::take(&mut self.members[i].present) && self.members[i].listed {
            let nick = self.members[i].nick.clone();
            self.broadcast(
                i,
                &line(&[b"* ", nick.as_bytes(), b" left", why.as_bytes()]),
            );
        }
    }

    /// Member `i` sent the whole line `text` (terminator removed).
    fn on_line(&mut self, i: usize, text: &[u8]) {
        if !self.members[i].present {
            // After `/quit` the server reads and ignores.
            return;
        }
        let nick = self.members[i].nick.clone();
        if !std::mem::replace(&mut self.members[i].listed, true) {
            if is_request_line(text) {
                // Answered by the HTTP side, not modelled; the member leaves unseen.
                let m = &mut self.members[i];
                (m.listed, m.present, m.open, m.http) = (false, false, false, true);
                return;
            }
            let room = self.members[i].room.clone();
            let news = line(&[b"* ", nick.as_bytes(), b" joined"]);
            self.broadcast_in(&room, i, &news);
        }
        let text = match text {
            [] => return,
            [b'/', b'/', ..] => &text[1..],
            [b'/', command @ ..] => return self.on_command(i, &nick, command),
            _ => text,
        };
        self.broadcast(i, &line(&[b"<", nick.as_bytes(), b"> ", text]));
    }

    /// Member `i`, known as `nick`, sent `/command`.
    fn on_command(&mut self, i: usize, nick: &str, command: &[u8]) {
        let (name, arg) = match command.iter().position(|&b| b == b' ') {
            Some(at) => (&command[..at], trim(&command[at + 1..])),
            None => (command, &[][..]),
        };
        let own = |room: &mut Room, l: Vec<u8>| room.members[i].expected.push(l);
        match name {
            b"nick" if !valid_nick(arg) => own(
                self,
                b"! usage: /nick NAME, with 1 to 20 of A-Z a-z 0-9 _ -".to_vec(),
            ),
            b"nick" => {
                let new = String::from_utf8_lossy(arg).into_owned();
                let taken = self
                    .members
                    .iter()
                    .enumerate()
                    .any(|(j, m)| j != i && m.present && m.nick.eq_ignore_ascii_case(&new));
                if taken {
                    own(self, line(&[b"! nickname ", arg, b" is taken"]));
                } else if new == nick {
                    own(self, line(&[b"* you are already ", arg]));
                } else {
                    own(self, line(&[b"* you are now ", arg]));
                    let news = line(&[b"* ", nick.as_bytes(), b" is now known as ", arg]);
                    self.broadcast(i, &news);
                    self.members[i].nick = new;
                }
            }
            b"who" => {
                let room = self.members[i].room.clone();
                let mut nicks: Vec<&str> = self
                    .members
                    .iter()
                    .filter(|m| m.present && m.listed && m.room == room)
                    .map(|m| m.nick.as_str())
                    .collect();
                nicks.sort_by_key(|n| n.to_ascii_lowercase());
                let mut text = format!("* {} here:", nicks.len());
                for (k, other) in nicks.iter().enumerate() {
                    text.push_str(if k == 0 { " " } else { ", " });
                    text.push_str(other);
                    if *other == nick {
                        text.push_str(" (you)");
                    }
                }
                if room != "#lobby" {
                    text.push_str(&format!(" (in {room})"));
                }
                own(self, line(&[text.as_bytes()]));
            }
            b"me" if !arg.is_empty() => {
                self.broadcast(i, &line(&[b"* ", nick.as_bytes(), b" ", arg]));
            }
            b"me" => own(self, b"! usage: /me ACTION".to_vec()),
            b"join" if arg.first() == Some(&b'#') && valid_nick(&arg[1..]) => {
                let to = String::from_utf8_lossy(arg).to_ascii_lowercase();
                self.go_to(i, nick, &to);
            }
            b"join" => own(
                self,
                b"! usage: /join #ROOM, a # and 1 to 20 of A-Z a-z 0-9 _ -".to_vec(),
            ),
            b"part" if self.members[i].room == "#lobby" => own(
                self,
                b"! you are in #lobby already; /join #ROOM to go elsewhere".to_vec(),
            ),
            b"part" => self.go_to(i, nick, "#lobby"),
            b"rooms" | b"list" => {
                let mut rooms = std::collections::BTreeMap::new();
                for m in self.members.iter().filter(|m| m.present && m.listed) {
                    *rooms.entry(m.room.clone()).or_insert(0) += 1;
                }
                let mut text = String::from("* rooms:");
                for (k, (room, n)) in rooms.iter().enumerate() {
                    text.push_str(if k == 0 { " " } else { ", " });
                    text.push_str(&format!("{room} ({n})"));
                }
                own(self, line(&[text.as_bytes()]));
            }
            b"msg" => {
                let (to, text) = match arg.iter().position(|&b| b == b' ') {
                    Some(at) => (&arg[..at], trim(&arg[at + 1..])),
                    None => (arg, &[][..]),
                };
                let to_name = String::from_utf8_lossy(to);
                let found = self
                    .members
                    .iter()
                    .position(|m| m.present && m.nick.eq_ignore_ascii_case(&to_name));
                match found {
                    _ if to.is_empty() || text.is_empty() => {
                        own(self, b"! usage: /msg NICK TEXT".to_vec())
                    }
                    Some(j) if j == i => own(self, b"! that is you".to_vec()),
                    Some(j) => {
                        let msg = line(&[b"<", nick.as_bytes(), b" (private)> ", text]);
                        self.members[j].expected.push(msg);
                    }
                    None => {
                        let to = &to[..to.len().min(20)];
                        own(self, line(&[b"! nobody is called ", to]));
                    }
                }
            }
            b"quit" => {
                own(self, b"* bye".to_vec());
                self.depart(i, "");
            }
            b"help" => {
                for l in help_lines() {
                    own(self, l.clone());
                }
            }
            _ => {
                let name = &name[..name.len().min(20)];
                own(self, line(&[b"! unknown command /", name, b"; try /help"]));
            }
        }
    }

    /// Member `i`, known as `nick`, goes to room `to`.
    fn go_to(&mut self, i: usize, nick: &str, to: &str) {
        let from = self.members[i].room.clone();
        if from == to {
            let l = line(&[b"* you are in ", to.as_bytes(), b" already"]);
            self.members[i].expected.push(l);
            return;
        }
        self.broadcast_in(
            &from,
            i,
            &line(&[b"* ", nick.as_bytes(), b" went to ", to.as_bytes()]),
        );
        self.members[i].room = to.to_string();
        self.broadcast_in(
            to,
            i,
            &line(&[b"* ", nick.as_bytes(), b" joined ", to.as_bytes()]),
        );
        let others = self
            .members
            .iter()
            .filter(|m| m.present && m.listed && m.room == to)
            .count()
            - 1;
        let plural = if others == 1 { " is" } else { "s are" };
        let text = format!("* you are in {to} now; {others} other{plural} here");
        self.members[i].expected.push(text.into_bytes());
    }

    /// Member `i` sends up to `n` more bytes of its stream; the model acts on every line that
    /// is now complete, and on a line that is now sure to be too long.
    fn send(&mut self, i: usize, n: usize) {
        let m = &mut self.members[i];
        if !m.open {
            return;
        }
        let end = m.sent.saturating_add(n).min(m.stream.len());
        m.peer.send(&m.stream[m.sent..end]);
        let mut events = Vec::new();
        for at in m.sent..end {
            let partial = &m.stream[m.line_start..=at];
            if m.stream[at] == b'\n' {
                let mut text = partial[..partial.len() - 1].to_vec();
                if text.last() == Some(&b'\r') {
                    text.pop();
                }
                events.push((text.len() <= MAX_LINE).then_some(text));
                m.line_start = at + 1;
            } else if partial.len() > MAX_LINE + 1
                || (partial.len() == MAX_LINE + 1 && m.stream[at] != b'\r')
            {
                // No `\n` can make this line short enough: the codec refuses it now, whatever
                // comes next (only a `\r` right before the `\n` is not counted).
                events.push(None);
                break;
            }
        }
        m.sent = end;
        for event in events {
            if !self.members[i].present {
                // After `/quit` or an error, the server reads and ignores.
                break;
            }
            match event {
                Some(text) => self.on_line(i, &text),
                None => {
                    let why = format!("line longer than the maximum of {MAX_LINE} bytes");
                    self.members[i]
                        .expected
                        .push(line(&[b"! ", why.as_bytes(), b"; closing"]));
                    self.depart(i, &format!(" ({why})"));
                }
            }
        }
    }
}

/// `s` without leading and trailing spaces.
fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ').map_or(start, |e| e + 1);
    &s[start..end]
}

/// Checks [`ChatConn`] with two to four members on the in-memory transport: every complete
/// line a member sends reaches every other member, in order, as the line a model room says;
/// commands (`/nick`, `/who`, `/me`, `/join`, `/part`, `/rooms`, `/msg`, `/quit`, `/help`,
/// unknown ones) get the answers and
/// notices the model says; a line over the limit gets an error and closes only its sender;
/// members who half-close or reset leave with a notice; short writes, `EINTR` and split reads
/// change nothing.
///
/// Input: one byte of flags (bits 0–1: two to four members; bit 2: the payload is a script
/// building lines, rather than raw bytes dealt round-robin to the members in pieces of 16),
/// one byte `n`, `n` operations of two bytes (the first byte: the operation in its low three
/// bits, the member above them; the second: its argument as in [`PeerOp`]), then the payload.
/// Every send is followed by a settle, so the order in which the server handles lines of
/// different members is the order the script sends them in.
///
/// # Panics
///
/// If an invariant is broken.
pub fn chat(data: &[u8]) {
    let mut input = HandlerInput::read(data);
    let n = 2 + usize::from(input.flags & 3) % (MAX_MEMBERS - 1);
    let streams = if input.flags & 4 != 0 {
        build_lines(input.payload, n)
    } else {
        let mut streams = vec![Vec::new(); n];
        for (k, piece) in input.payload.chunks(16).enumerate() {
            streams[k % n].extend_from_slice(piece);
        }
        streams
    };

    // Step 1: everyone joins, in order.
    let mut h = Harness::new(ChatRoom::new()).expect("a harness needs only a poller");
    // The chat settings, except that reading never pauses and no member is dropped for not
    // reading: the server then handles lines in the order the script sends them, which is
    // the order the model assumes. (Backpressure and the slow-consumer limit are the
    // reactor's, checked by its own tests.)
    let opts = patient();
    let conn = conn_config(opts.conn.clone())
        .with_high_water(1 << 30)
        .with_low_water(1 << 29)
        .with_max_output(1 << 31);
    let opts = opts.with_conn(conn);
    let listener = h.listen(opts, |_, _| ChatConn::new());
    let mut room = Room {
        members: streams
            .into_iter()
            .map(|stream| Member {
                // Accepted and greeted one after the other.
                peer: {
                    let peer = listener.connect();
                    greet(&mut h);
                    peer
                },
                nick: String::new(),
                room: "#lobby".to_string(),
                present: true,
                listed: false,
                http: false,
                open: true,
                reset: false,
                stream,
                sent: 0,
                line_start: 0,
                expected: Vec::new(),
                received: Vec::new(),
            })
            .collect(),
    };
    for (i, m) in room.members.iter_mut().enumerate() {
        m.nick = format!("guest{}", i + 1);
        m.present = false;
    }
    for i in 0..n {
        room.members[i].present = true;
        room.join(i);
    }
    settle(&mut h);

    // Step 2: the script. Each send is settled at once, so lines are handled in script order.
    while !input.ops.is_empty() {
        let (op, arg) = (input.ops.byte(), input.ops.byte());
        let i = usize::from(op >> 3) % n;
        let peer = room.members[i].peer.clone();
        match op & 7 {
            0 => {
                if let PeerOp::Send(count) = PeerOp::read(&mut Script::new(&[0, arg])) {
                    room.send(i, count);
                }
                settle(&mut h);
            }
            1 => {
                if let PeerOp::Budget(b) = PeerOp::read(&mut Script::new(&[1, arg])) {
                    peer.set_write_budget(Some(b));
                }
            }
            2 => peer.set_write_budget(None),
            3 => peer.inject_eintr(u32::from(arg % 4) + 1),
            4 => peer.set_read_chunk((arg > 0).then_some(usize::from(arg))),
            5 => settle(&mut h),
            6 if room.members[i].open => {
                // Half-close, reading everything: the member's close completes in this settle.
                room.members[i].open = false;
                peer.set_write_budget(None);
                peer.shutdown_write();
                room.depart(i, "");
                settle(&mut h);
            }
            7 if !room.members[i].reset => {
                let m = &mut room.members[i];
                m.received.extend(peer.take_received());
                m.open = false;
                m.reset = true;
                peer.reset();
                room.depart(i, " (reset by peer)");
                settle(&mut h);
            }
            _ => {}
        }
        for m in &mut room.members {
            if !m.reset {
                m.received.extend(m.peer.take_received());
            }
        }
    }

    // Step 3: everyone reads everything; compare with the model.
    for m in &room.members {
        m.peer.set_write_budget(None);
    }
    settle(&mut h);
    for (i, m) in room.members.iter_mut().enumerate() {
        if !m.reset {
            m.received.extend(m.peer.take_received());
        }
        let mut want = Vec::new();
        for l in &m.expected {
            want.extend_from_slice(l);
            want.extend_from_slice(b"\r\n");
        }
        if m.http {
            // The HTTP answer follows what the model says (a reset may have cut both short).
            assert!(
                m.reset || m.received.starts_with(&want),
                "member {i} (HTTP) got {:?}, the model says {:?} first",
                String::from_utf8_lossy(&m.received),
                String::from_utf8_lossy(&want)
            );
            continue;
        }
        if m.reset {
            assert!(
                want.starts_with(&m.received),
                "member {i} (reset) got {:?}, the model says {:?}",
                String::from_utf8_lossy(&m.received),
                String::from_utf8_lossy(&want)
            );
            continue;
        }
        let got = lines(&m.received);
        for (k, (g, w)) in got.iter().zip(&m.expected).enumerate() {
            assert!(
                g == w,
                "member {i}, line {k}: {:?}, the model says {:?}",
                String::from_utf8_lossy(g),
                String::from_utf8_lossy(w)
            );
        }
        assert_eq!(
            got.len(),
            m.expected.len(),
            "member {i} got {} lines, the model says {}",
            got.len(),
            m.expected.len()
        );
        if !m.present {
            assert!(m.peer.fin_received(), "member {i} left but was not closed");
        }
    }
}
