//! A line-based chat room: what every member types reaches every other member.
//!
//! Run it with `evdrive chat` (127.0.0.1:7000) and connect with `nc 127.0.0.1 7000` from two
//! terminals.
//!
//! # What a member sees and types
//!
//! On connect, a welcome line with the nickname assigned (`guest1`, `guest2`…) and a hint about
//! `/help`; the others see `* guest1 joined`. A line that does not start with `/` is a message:
//! the others receive `<nick> text`, in the order the server received the lines, and the sender
//! gets no echo (its terminal already shows what it typed). Commands:
//!
//! | command | effect |
//! |---|---|
//! | `/nick NAME` | change nickname: 1 to 20 of `A-Z a-z 0-9 _ -`, unique ignoring case |
//! | `/who` | list the members |
//! | `/me ACTION` | the others see `* nick ACTION` |
//! | `/quit` | leave |
//! | `/help` | list the commands |
//! | `//text` | send a message that starts with `/` |
//!
//! Lines from the server to a member start with `*` (news), `!` (an error about what that member
//! typed) or `<` (a message). An unknown command gets an error line and the connection stays.
//! Control characters other than tab are replaced by `?` before anything is relayed, so no
//! member can send terminal escape sequences to the others (S11).
//!
//! # Limits and misbehaving members
//!
//! - A line is at most 16 KiB ([`MAX_LINE`], the [`lines`](crate::codec::lines) codec's
//!   default). A longer one is a protocol error: that member gets `! line too long…`, then its
//!   connection is closed gracefully; the others stay.
//! - A member who does not read what is sent to it is a slow consumer, dropped the Redis way
//!   (use [`conn_config`]): its connection is aborted with `CloseReason::SlowConsumer` (S21) when
//!   its output queue passes [`MAX_OUTPUT`] (the hard limit), or stays above [`SOFT_OUTPUT`] (the
//!   soft limit) for [`SOFT_OUTPUT_FOR`]. A member who reads but is briefly behind, by up to a
//!   megabyte or so, keeps its place. Broadcasting never waits for anyone, so the others keep
//!   getting messages.
//! - Heartbeat (S13), off unless [`ChatRoom::with_heartbeat`] is given an interval: every
//!   interval, a member that sent nothing during the interval gets a `* ping` line (sending is
//!   the only way to find out that a peer vanished, S7), and a member silent for
//!   [`MAX_MISSED_HEARTBEATS`] intervals in a row is disconnected with
//!   `CloseReason::IdleTimeout`. Any line counts as a sign of life. The reactor's own idle
//!   timeout, by contrast, counts traffic either way, so in a busy room it never fires for a
//!   silent member; the heartbeat is what drops members who stopped talking.
//!
//! # Why it is shaped so
//!
//! The room ([`ChatRoom`]) is the reactor's user state: every handler reaches the member list as
//! `&mut ChatRoom` through its `Cx`, with no lock, since all callbacks run on the reactor's one
//! thread, and the order in which the loop handles lines is the order everyone sees them in.
//!
//! A broadcast is built once into one reference-counted [`Shared`] buffer and queued on every
//! recipient with [`LoopCx::send_shared_to`]: one allocation and one copy however many members
//! there are (S16). The room and the connections are borrowed apart ([`LoopCx::split`]) while
//! the member list is walked, so broadcasting allocates nothing else and the list stays put.
//!
//! The heartbeat is one periodic task for the whole room ([`LoopCx::every`]), started when the
//! first member joins and stopped when the last one leaves, rather than a timer per member: an
//! empty room has no timers at all.

use std::collections::HashMap;
use std::time::Duration;

use reactor::{CloseReason, ConnConfig, ConnId, Cx, LoopCx, Protocol, Shared, TaskId};

use crate::codec::LinesCodec;
use crate::framing::{serve, Flow};

/// The longest line accepted, terminator excluded: 16 KiB.
pub const MAX_LINE: usize = crate::codec::lines::DEFAULT_MAX_LINE_LENGTH;

/// The longest nickname, in bytes.
pub const MAX_NICK: usize = 20;

/// Output a member may leave unread before being dropped at once as a slow consumer (the hard
/// limit): 4 MiB.
pub const MAX_OUTPUT: usize = 4 * 1024 * 1024;

/// Output a member may leave unread for at most [`SOFT_OUTPUT_FOR`] (the soft limit): 2 MiB,
/// twice what a member reading as fast as it can has in flight during a flood.
pub const SOFT_OUTPUT: usize = 2 * 1024 * 1024;

/// How long a member's unread output may stay above [`SOFT_OUTPUT`]: 5 s.
pub const SOFT_OUTPUT_FOR: Duration = Duration::from_secs(5);

/// Heartbeat intervals a member may stay silent in a row before being disconnected.
pub const MAX_MISSED_HEARTBEATS: u32 = 3;

/// The text of `/help`.
const HELP: &[&str] = &[
    "* commands:",
    "*   /nick NAME   change your nickname (1-20 of A-Z a-z 0-9 _ -)",
    "*   /who         list who is here",
    "*   /me ACTION   tell the others what you do: * nick ACTION",
    "*   /quit        leave",
    "*   /help        this list",
    "* any other line is a message to everyone; start it with // to send a leading /",
];

/// The settings a chat connection should have: `base` with the output limits [`MAX_OUTPUT`],
/// [`SOFT_OUTPUT`] and [`SOFT_OUTPUT_FOR`], so a member who stops reading is dropped before it
/// costs real memory, and one who is briefly behind is not.
pub fn conn_config(base: ConnConfig) -> ConnConfig {
    base.with_output_limits(MAX_OUTPUT, SOFT_OUTPUT, SOFT_OUTPUT_FOR)
}

/// The line a client past the connection limit gets before the close.
pub const ROOM_FULL: &[u8] = b"* the room is full; try again later\r\n";

/// What the chat sample does at the reactor's connection limit (S23): say [`ROOM_FULL`] and
/// close.
pub fn at_limit() -> reactor::AtLimit {
    reactor::AtLimit::Reject(reactor::Goodbye::bytes(ROOM_FULL))
}

/// The chat room: who is here under which nickname. The reactor's user state for the chat
/// server.
///
/// ```
/// use evdrive_protocols::chat::{conn_config, ChatConn, ChatRoom};
/// use reactor::{ListenOptions, Reactor};
///
/// let mut reactor = Reactor::new(ChatRoom::new())?;
/// let opts = ListenOptions::default()
///     .with_conn(conn_config(Default::default()));
/// let listener = reactor.listen("127.0.0.1:0".parse().unwrap(), opts, |_room, _peer| ChatConn::new())?;
/// assert!(reactor.app().is_empty());
/// # let _ = listener;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct ChatRoom {
    /// Every member, by connection.
    members: HashMap<ConnId, Member>,
    /// Every nickname, lower-cased, with its owner: keeps nicknames unique ignoring case.
    nicks: HashMap<Box<str>, ConnId>,
    /// The number in the next default nickname (`guest1`, `guest2`…).
    next_guest: u64,
    /// The heartbeat interval, if the heartbeat is on.
    heartbeat: Option<Duration>,
    /// The running heartbeat task: `Some` exactly while the heartbeat is on and the room has
    /// members.
    heartbeat_task: Option<TaskId>,
}

/// One member of the room.
#[derive(Debug)]
struct Member {
    /// The nickname as the member chose it.
    nick: Box<str>,
    /// Whether the member sent a line since the last heartbeat.
    heard: bool,
    /// Heartbeats in a row the member stayed silent through.
    missed: u32,
}

impl ChatRoom {
    /// An empty room without heartbeat.
    pub fn new() -> Self {
        ChatRoom::default()
    }

    /// An empty room whose heartbeat runs every `interval` (`None`: off). See the
    /// [module documentation](self) for what the heartbeat does.
    pub fn with_heartbeat(interval: Option<Duration>) -> Self {
        ChatRoom {
            heartbeat: interval.filter(|d| !d.is_zero()),
            ..ChatRoom::default()
        }
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether nobody is here.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The nickname of the member on connection `id`.
    pub fn nick(&self, id: ConnId) -> Option<&str> {
        self.members.get(&id).map(|m| &*m.nick)
    }

    /// Every nickname, sorted ignoring case.
    pub fn nicks(&self) -> Vec<&str> {
        let mut nicks: Vec<&str> = self.members.values().map(|m| &*m.nick).collect();
        nicks.sort_by_key(|n| n.to_ascii_lowercase());
        nicks
    }

    /// Adds the member on `id` under a fresh default nickname, and returns the nickname.
    fn join(&mut self, id: ConnId) -> Box<str> {
        let nick: Box<str> = loop {
            self.next_guest += 1;
            let nick = format!("guest{}", self.next_guest);
            if !self.nicks.contains_key(nick.as_str()) {
                break nick.into();
            }
        };
        self.nicks.insert(nick.clone(), id);
        self.members.insert(
            id,
            Member {
                nick: nick.clone(),
                heard: false,
                missed: 0,
            },
        );
        nick
    }

    /// Removes the member on `id`; returns its nickname if it was a member.
    fn leave(&mut self, id: ConnId) -> Option<Box<str>> {
        let member = self.members.remove(&id)?;
        self.nicks.remove(&*member.nick.to_ascii_lowercase());
        Some(member.nick)
    }

    /// Renames the member on `id`; the caller has validated `new`.
    fn rename(&mut self, id: ConnId, new: &str) -> Result<Box<str>, Rename> {
        let key = new.to_ascii_lowercase();
        match self.nicks.get(key.as_str()) {
            Some(&owner) if owner != id => return Err(Rename::Taken),
            _ => {}
        }
        let member = self.members.get_mut(&id).ok_or(Rename::NotMember)?;
        if &*member.nick == new {
            return Err(Rename::Same);
        }
        let old = std::mem::replace(&mut member.nick, new.into());
        self.nicks.remove(&*old.to_ascii_lowercase());
        self.nicks.insert(key.into(), id);
        Ok(old)
    }
}

/// Why `/nick` did not rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rename {
    Taken,
    Same,
    NotMember,
}

/// Whether `nick` is an acceptable nickname: 1 to [`MAX_NICK`] ASCII letters, digits, `_`, `-`.
pub fn is_valid_nick(nick: &[u8]) -> bool {
    (1..=MAX_NICK).contains(&nick.len())
        && nick
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Appends `text` to `dst` with control characters other than tab replaced by `?`, so a line
/// relayed to a terminal cannot carry escape sequences.
fn push_clean(dst: &mut Vec<u8>, text: &[u8]) {
    dst.extend(text.iter().map(|&b| {
        if (b < 0x20 && b != b'\t') || b == 0x7f {
            b'?'
        } else {
            b
        }
    }));
}

/// One line made of `parts` (each cleaned), ended with `\r\n`, in a shared buffer.
fn line(parts: &[&[u8]]) -> Shared {
    let mut buf = Vec::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + 2);
    for part in parts {
        push_clean(&mut buf, part);
    }
    buf.extend_from_slice(b"\r\n");
    Shared::from(buf)
}

/// Queues `msg` on every member but `except`: one buffer, shared by all (S16).
fn broadcast(cx: &mut LoopCx<'_, ChatRoom>, except: Option<ConnId>, msg: &Shared) {
    // The room and the connections are borrowed apart: the member list stays where it is.
    let (room, mut conns) = cx.split();
    for &id in room.members.keys() {
        if Some(id) != except {
            conns.send_shared_to(id, msg);
        }
    }
}

/// Starts the room's heartbeat if it is configured and not running.
fn start_heartbeat(cx: &mut LoopCx<'_, ChatRoom>) {
    let room = cx.app();
    let (Some(interval), None) = (room.heartbeat, room.heartbeat_task) else {
        return;
    };
    let task = cx.every(interval, heartbeat);
    cx.app().heartbeat_task = Some(task);
}

/// One heartbeat: ping the members who were silent during the interval, drop those silent for
/// too long. Returns whether to run again.
fn heartbeat(cx: &mut LoopCx<'_, ChatRoom>) -> bool {
    if cx.app().is_empty() {
        cx.app().heartbeat_task = None;
        return false;
    }
    let ping = line(&[b"* ping"]);
    let mut dropped = Vec::new();
    let (room, mut conns) = cx.split();
    for (&id, member) in room.members.iter_mut() {
        if std::mem::take(&mut member.heard) {
            member.missed = 0;
            continue;
        }
        member.missed += 1;
        if member.missed >= MAX_MISSED_HEARTBEATS {
            dropped.push(id);
        } else {
            conns.send_shared_to(id, &ping);
        }
    }
    for id in dropped {
        cx.send_to(id, b"! you have been silent for too long: closing\r\n");
        cx.close_conn(id, CloseReason::IdleTimeout);
        depart(cx, id, " (silent for too long)");
    }
    // The last member may just have been dropped.
    cx.app().heartbeat_task.is_some()
}

/// Takes the member on `id` out of the room and tells the others, adding `why` to the notice.
///
/// Called as soon as the server decides a member goes (`/quit`, a protocol error, the
/// heartbeat), not when the connection is finally gone: a graceful close waits for the peer's
/// end of stream, which a misbehaving peer may never send.
fn depart(cx: &mut LoopCx<'_, ChatRoom>, id: ConnId, why: &str) {
    let Some(nick) = cx.app().leave(id) else {
        return;
    };
    broadcast(
        cx,
        Some(id),
        &line(&[b"* ", nick.as_bytes(), b" left", why.as_bytes()]),
    );
    if cx.app().is_empty() {
        if let Some(task) = cx.app().heartbeat_task.take() {
            cx.cancel(task);
        }
    }
}

/// The handler of one chat connection.
#[derive(Debug, Default)]
pub struct ChatConn {
    /// Progress on the unfinished line.
    codec: LinesCodec,
}

impl ChatConn {
    /// A handler accepting lines of up to [`MAX_LINE`] bytes.
    pub fn new() -> Self {
        ChatConn {
            codec: LinesCodec::with_max_length(MAX_LINE),
        }
    }

    /// Acts on one line from this member. Returns `false` if the connection is closing.
    fn on_line(cx: &mut Cx<'_, ChatRoom>, text: &[u8]) -> bool {
        let id = cx.id();
        let Some(member) = cx.app().members.get_mut(&id) else {
            return false;
        };
        member.heard = true;
        member.missed = 0;
        let nick = member.nick.clone();

        // Step 1: a message (a leading `//` escapes a leading `/`).
        let text = match text {
            [] => return true,
            [b'/', b'/', ..] => &text[1..],
            [b'/', ..] => return ChatConn::on_command(cx, &nick, &text[1..]),
            _ => text,
        };
        let msg = line(&[b"<", nick.as_bytes(), b"> ", text]);
        broadcast(cx, Some(id), &msg);
        true
    }

    /// Acts on a `/command` (without its slash).
    fn on_command(cx: &mut Cx<'_, ChatRoom>, nick: &str, command: &[u8]) -> bool {
        let id = cx.id();
        let (name, arg) = match command.iter().position(|&b| b == b' ') {
            Some(i) => (&command[..i], trim(&command[i + 1..])),
            None => (command, &[][..]),
        };
        match name {
            b"nick" => {
                if !is_valid_nick(arg) {
                    cx.write(b"! usage: /nick NAME, with 1 to 20 of A-Z a-z 0-9 _ -\r\n");
                    return true;
                }
                // Valid nicknames are ASCII.
                let new = std::str::from_utf8(arg).unwrap_or_default();
                match cx.app().rename(id, new) {
                    Ok(old) => {
                        cx.write_shared(&line(&[b"* you are now ", arg]));
                        let news = line(&[b"* ", old.as_bytes(), b" is now known as ", arg]);
                        broadcast(cx, Some(id), &news);
                    }
                    Err(Rename::Taken) => {
                        cx.write_shared(&line(&[b"! nickname ", arg, b" is taken"]));
                    }
                    Err(Rename::Same) => {
                        cx.write_shared(&line(&[b"* you are already ", arg]));
                    }
                    Err(Rename::NotMember) => return false,
                }
            }
            b"who" => {
                let room = cx.app();
                let mut text = format!("* {} here:", room.len()).into_bytes();
                for (i, other) in room.nicks().iter().enumerate() {
                    text.extend_from_slice(if i == 0 { b" " } else { b", " });
                    text.extend_from_slice(other.as_bytes());
                    if *other == nick {
                        text.extend_from_slice(b" (you)");
                    }
                }
                cx.write_shared(&line(&[&text]));
            }
            b"me" if !arg.is_empty() => {
                let news = line(&[b"* ", nick.as_bytes(), b" ", arg]);
                broadcast(cx, Some(id), &news);
            }
            b"me" => {
                cx.write(b"! usage: /me ACTION\r\n");
            }
            b"quit" => {
                cx.write(b"* bye\r\n");
                cx.close();
                depart(cx, id, "");
                return false;
            }
            b"help" => {
                for help in HELP {
                    cx.write(help.as_bytes());
                    cx.write(b"\r\n");
                }
            }
            _ => {
                let name = &name[..name.len().min(MAX_NICK)];
                cx.write_shared(&line(&[b"! unknown command /", name, b"; try /help"]));
            }
        }
        true
    }
}

/// `s` without leading and trailing spaces.
fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ').map_or(start, |i| i + 1);
    &s[start..end]
}

impl Protocol<ChatRoom> for ChatConn {
    fn on_open(&mut self, cx: &mut Cx<'_, ChatRoom>) {
        let id = cx.id();
        let nick = cx.app().join(id);
        let others = cx.app().len() - 1;
        let welcome = format!(
            "* welcome to evdrive chat, you are {nick}; {others} other{} here; \
             /help lists the commands",
            if others == 1 { " is" } else { "s are" }
        );
        cx.write_shared(&line(&[welcome.as_bytes()]));
        broadcast(cx, Some(id), &line(&[b"* ", nick.as_bytes(), b" joined"]));
        start_heartbeat(cx);
    }

    fn on_data(&mut self, cx: &mut Cx<'_, ChatRoom>, data: &[u8]) -> usize {
        let served = serve(
            &mut self.codec,
            data,
            cx,
            // A whole line: act on it. `/quit` or a lost membership ends the connection (the
            // line's handling has closed it already).
            |cx, text| {
                if ChatConn::on_line(cx, text) {
                    Flow::Continue
                } else {
                    Flow::Close
                }
            },
            // A line over the limit: say so, then close this connection only.
            |cx, e| {
                let why = e.to_string();
                cx.write_shared(&line(&[b"! ", why.as_bytes(), b"; closing"]));
                cx.close_with(CloseReason::protocol(why.as_str()));
                let id = cx.id();
                depart(cx, id, &format!(" ({why})"));
            },
        );
        served.consumed
    }

    fn on_close(&mut self, cx: &mut Cx<'_, ChatRoom>, reason: CloseReason) {
        // Still a member: the connection ended on its own (peer closed, reset, slow consumer,
        // idle timeout, shutdown). Say why, unless the member simply left.
        let why = if reason.is_clean() {
            String::new()
        } else {
            format!(" ({reason})")
        };
        let id = cx.id();
        depart(cx, id, &why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor::{ListenOptions, Reactor};
    use std::io::{ErrorKind, Read, Write};
    use std::net::{SocketAddr, TcpStream};
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
                .listen("127.0.0.1:0".parse().unwrap(), opts, |_, _| ChatConn::new())
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
        let interval = Duration::from_millis(30);
        let mut h = Harness::new(ChatRoom::with_heartbeat(Some(interval))).unwrap();
        let opts = ListenOptions::default().with_conn(conn_config(ConnConfig::default()));
        let listener = h.listen(opts, |_, _| ChatConn::new());
        let quiet = listener.connect();
        let chatty = listener.connect();
        h.settle().unwrap();
        let text = |got: &[u8]| String::from_utf8_lossy(got).into_owned();
        assert!(text(&quiet.take_received()).contains("joined"));
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
}
