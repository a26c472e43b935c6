//! The chat's state: who is here under which nickname, in which room, speaking which wire form;
//! and the ways lines reach members (a reply, a broadcast to a room, a private message).
//!
//! # Implementation notes
//! A line from the server is built once ([`Out`]) and turned into each wire form at most once:
//! `text\r\n` for line members, a WebSocket text frame for browser members. Each form is one
//! reference-counted [`Shared`] buffer queued on every recipient that speaks it, so a broadcast
//! costs one allocation and one copy per form, however many members there are (S16). The room
//! table and the connections are borrowed apart ([`LoopCx::split`]) while a room is walked.

use std::collections::HashMap;
use std::time::Duration;

use reactor::{CloseReason, ConnId, Cx, LoopCx, Shared, TaskId};

use crate::codec::ws;

use super::bus::{self, message::Msg, Bus};
use super::threads::{Event, Peers, RemoteMember};
use super::MAX_NICK;

/// The room every member starts in, and returns to with `/part`.
pub const LOBBY: &str = "#lobby";

/// The chat: every member, its nickname and its room. The reactor's user state for the chat
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
    pub(super) members: HashMap<ConnId, Member>,
    /// Every nickname, lower-cased, with its owner: keeps nicknames unique ignoring case.
    nicks: HashMap<Box<str>, ConnId>,
    /// The members of each room with at least one member, by lower-case name (`#lobby`), each
    /// with its wire form: a broadcast walks this list alone, without a lookup per member.
    rooms: HashMap<Box<str>, Vec<(ConnId, Wire)>>,
    /// How many default nicknames (`guest1`, `guest2`…) this thread has tried.
    guests: u64,
    /// This thread's first default number (0 counts as 1).
    guest_first: u64,
    /// How far apart this thread's default numbers are: the number of threads (0 counts as
    /// 1), so that threads never give the same default nickname.
    guest_step: u64,
    /// The other threads of the chat, once linked (`threads.rs`).
    pub(super) peers: Option<Peers>,
    /// The other threads' members, by thread and connection, as they announced them.
    pub(super) remote: HashMap<(usize, ConnId), RemoteMember>,
    /// The bus to the chat's other processes, if any (`bus/`).
    pub(super) bus: Option<Box<Bus>>,
    /// The heartbeat interval, if the heartbeat is on.
    pub(super) heartbeat: Option<Duration>,
    /// The running heartbeat task: `Some` exactly while the heartbeat is on and the chat has
    /// members.
    pub(super) heartbeat_task: Option<TaskId>,
}

/// How a member's connection carries lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    /// `text\r\n`, as typed in `nc`.
    Lines,
    /// One WebSocket text message per line (a browser).
    WebSocket,
}

/// One member of the chat.
#[derive(Debug)]
pub(super) struct Member {
    /// The nickname as the member chose it.
    pub(super) nick: Box<str>,
    /// The room the member is in (lower case).
    pub(super) room: Box<str>,
    /// How lines reach this member.
    pub(super) wire: Wire,
    /// Whether the member sent a line since the last heartbeat.
    pub(super) heard: bool,
    /// Whether the others know of the member: announced (`* nick joined`), listed by `/who`
    /// and `/rooms`, told to the other threads. A line member greeted after silence is not,
    /// until it speaks or stays ([`ANNOUNCE_AFTER`](super::ANNOUNCE_AFTER)).
    pub(super) listed: bool,
    /// Heartbeats in a row the member stayed silent through.
    pub(super) missed: u32,
}

impl ChatRoom {
    /// An empty chat without heartbeat.
    pub fn new() -> Self {
        ChatRoom::default()
    }

    /// An empty chat whose heartbeat runs every `interval` (`None`: off). See the
    /// [module documentation](super) for what the heartbeat does.
    pub fn with_heartbeat(interval: Option<Duration>) -> Self {
        ChatRoom {
            heartbeat: interval.filter(|d| !d.is_zero()),
            ..ChatRoom::default()
        }
    }

    /// The number of members, all rooms together, quiet ones (not yet announced, see
    /// [`is_listed`](Self::is_listed)) included.
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

    /// Every nickname, all rooms together, sorted ignoring case.
    pub fn nicks(&self) -> Vec<&str> {
        sorted(self.members.values().map(|m| &*m.nick))
    }

    /// The nicknames in `room` (lower case, with its `#`), every thread's and every bus
    /// node's, sorted ignoring case.
    pub fn nicks_in(&self, room: &str) -> Vec<&str> {
        let ids = self.rooms.get(room).map_or(&[][..], |v| v.as_slice());
        let remote = self.remote.values().filter(|m| &*m.room == room);
        let on_bus = self.bus_members().filter(|m| &*m.room == room);
        sorted(
            ids.iter()
                .filter_map(|(id, _)| self.members.get(id).filter(|m| m.listed))
                .map(|m| &*m.nick)
                .chain(remote.map(|m| &*m.nick))
                .chain(on_bus.map(|m| &*m.nick)),
        )
    }

    /// How many members `room` has, every thread's and every bus node's:
    /// [`nicks_in`](Self::nicks_in)`.len()` without sorting (every arrival asks).
    pub(super) fn count_in(&self, room: &str) -> usize {
        let here = self.rooms.get(room).map_or(0, |v| self.listed_in(v));
        let on_bus = self.bus_members().filter(|m| &*m.room == room).count();
        here + self.remote.values().filter(|m| &*m.room == room).count() + on_bus
    }

    /// Whether a member of another thread or bus node is called `nick` (ignoring case).
    fn taken_elsewhere(&self, nick: &str) -> bool {
        self.find_remote(nick).is_some() || self.find_on_bus(nick).is_some()
    }

    /// How many of `ids` are listed.
    fn listed_in(&self, ids: &[(ConnId, Wire)]) -> usize {
        ids.iter()
            .filter(|(id, _)| self.members.get(id).is_some_and(|m| m.listed))
            .count()
    }

    /// Every room with members on any thread, and how many, sorted by name.
    pub fn rooms(&self) -> Vec<(&str, usize)> {
        let mut counts: HashMap<&str, usize> = self
            .rooms
            .iter()
            .map(|(k, v)| (&**k, self.listed_in(v)))
            .filter(|&(_, n)| n > 0)
            .collect();
        let remote = self.remote.values().map(|m| &*m.room);
        for room in remote.chain(self.bus_members().map(|m| &*m.room)) {
            *counts.entry(room).or_default() += 1;
        }
        let mut rooms: Vec<(&str, usize)> = counts.into_iter().collect();
        rooms.sort_unstable();
        rooms
    }

    /// The connection of this thread's member called `nick` (ignoring case).
    pub(super) fn find(&self, nick: &str) -> Option<ConnId> {
        self.nicks.get(nick.to_ascii_lowercase().as_str()).copied()
    }

    /// The thread and connection of another thread's member called `nick` (ignoring case).
    pub(super) fn find_remote(&self, nick: &str) -> Option<(usize, ConnId)> {
        let (who, _) = self
            .remote
            .iter()
            .find(|(_, m)| m.nick.eq_ignore_ascii_case(nick))?;
        Some(*who)
    }

    /// Starts default nicknames at `first`, `step` apart (one number sequence per thread).
    pub(super) fn guest_numbers(&mut self, first: u64, step: u64) {
        self.guest_first = first;
        self.guest_step = step;
    }

    /// Tells the other threads and bus nodes where the member on `id` is and under which
    /// name, if it is listed.
    fn announce(&mut self, id: ConnId) {
        if let Some(m) = self.members.get(&id).filter(|m| m.listed) {
            self.relay(Event::Member {
                who: (self.me(), id),
                nick: m.nick.clone(),
                room: m.room.clone(),
            });
            if let Some(bus) = self.bus.as_deref_mut() {
                let tag = bus::tag(id);
                bus.note(&Msg::Member {
                    tag: &tag,
                    nick: &m.nick,
                    room: &m.room,
                });
            }
        }
    }

    /// A default nickname (`guest7`) nobody here, on another thread or on the bus has.
    pub(super) fn next_guest(&mut self) -> Box<str> {
        loop {
            let number = self
                .guests
                .saturating_mul(self.guest_step.max(1))
                .saturating_add(self.guest_first.max(1));
            self.guests += 1;
            let nick = format!("guest{number}");
            if !self.nicks.contains_key(nick.as_str()) && !self.taken_elsewhere(&nick) {
                break nick.into();
            }
        }
    }

    /// Adds the member on `id` to the lobby under a fresh default nickname, listed or not, and
    /// returns the nickname.
    pub(super) fn join(&mut self, id: ConnId, wire: Wire, listed: bool) -> Box<str> {
        let nick = self.next_guest();
        self.nicks.insert(nick.clone(), id);
        self.members.insert(
            id,
            Member {
                nick: nick.clone(),
                room: LOBBY.into(),
                wire,
                heard: false,
                listed,
                missed: 0,
            },
        );
        self.rooms.entry(LOBBY.into()).or_default().push((id, wire));
        self.announce(id);
        nick
    }

    /// Removes the member on `id`; returns its nickname and room if it was a listed member
    /// (one the others knew of).
    pub(super) fn leave(&mut self, id: ConnId) -> Option<(Box<str>, Box<str>)> {
        let member = self.members.remove(&id)?;
        self.nicks.remove(&*member.nick.to_ascii_lowercase());
        self.unlist(id, &member.room);
        if !member.listed {
            return None;
        }
        self.relay(Event::Gone {
            who: (self.me(), id),
        });
        if let Some(bus) = self.bus.as_deref_mut() {
            bus.note(&Msg::Gone { tag: &bus::tag(id) });
        }
        Some((member.nick, member.room))
    }

    /// Lists the member on `id` if it is not yet; returns its nickname and room if it was not.
    fn list(&mut self, id: ConnId) -> Option<(Box<str>, Box<str>)> {
        let member = self.members.get_mut(&id).filter(|m| !m.listed)?;
        member.listed = true;
        let found = (member.nick.clone(), member.room.clone());
        self.announce(id);
        Some(found)
    }

    /// Whether the member on connection `id` is known to the others: announced, listed by
    /// `/who` and `/rooms`. A line member greeted after silence is not, until its first line
    /// or [`ANNOUNCE_AFTER`](super::ANNOUNCE_AFTER).
    pub fn is_listed(&self, id: ConnId) -> bool {
        self.members.get(&id).is_some_and(|m| m.listed)
    }

    /// Moves the member on `id` to `room` (lower case); returns the room it left.
    pub(super) fn move_to(&mut self, id: ConnId, room: &str) -> Option<Box<str>> {
        let member = self.members.get_mut(&id)?;
        let old = std::mem::replace(&mut member.room, room.into());
        let wire = member.wire;
        self.unlist(id, &old);
        self.rooms.entry(room.into()).or_default().push((id, wire));
        self.announce(id);
        Some(old)
    }

    /// Takes `id` off `room`'s list, dropping the room once empty.
    fn unlist(&mut self, id: ConnId, room: &str) {
        if let Some(ids) = self.rooms.get_mut(room) {
            ids.retain(|&(other, _)| other != id);
            if ids.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// Whether the member on `id` may take the name `new` (validated by the caller), as far as
    /// this node knows.
    pub(super) fn check_rename(&self, id: ConnId, new: &str) -> Result<(), Rename> {
        match self.nicks.get(new.to_ascii_lowercase().as_str()) {
            Some(&owner) if owner != id => return Err(Rename::Taken),
            _ => {}
        }
        if self.taken_elsewhere(new) {
            return Err(Rename::Taken);
        }
        let member = self.members.get(&id).ok_or(Rename::NotMember)?;
        if &*member.nick == new {
            return Err(Rename::Same);
        }
        Ok(())
    }

    /// Renames the member on `id`; the caller has validated `new`.
    pub(super) fn rename(&mut self, id: ConnId, new: &str) -> Result<Box<str>, Rename> {
        self.check_rename(id, new)?;
        let key = new.to_ascii_lowercase();
        let member = self.members.get_mut(&id).ok_or(Rename::NotMember)?;
        let old = std::mem::replace(&mut member.nick, new.into());
        self.nicks.remove(&*old.to_ascii_lowercase());
        self.nicks.insert(key.into(), id);
        self.announce(id);
        Ok(old)
    }

    /// How `id` is reached; a connection that is not (or no longer) a member speaks lines.
    pub(super) fn wire(&self, id: ConnId) -> Wire {
        self.members.get(&id).map_or(Wire::Lines, |m| m.wire)
    }
}

/// `names` sorted ignoring case.
fn sorted<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut names: Vec<&str> = names.collect();
    names.sort_by_key(|n| n.to_ascii_lowercase());
    names
}

/// Why `/nick` did not rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rename {
    Taken,
    Same,
    NotMember,
}

/// Whether `name` is an acceptable room name: `#` then 1 to [`MAX_NICK`] of the nickname
/// characters.
pub(super) fn is_valid_room(name: &[u8]) -> bool {
    matches!(name, [b'#', rest @ ..] if super::is_valid_nick(rest)) && name.len() <= MAX_NICK + 1
}

/// One line from the server, in each wire form on demand: built once, shared by every
/// recipient of that form (S16).
#[derive(Debug)]
pub(super) struct Out {
    /// The line without terminator, control characters defused.
    pub(super) text: Vec<u8>,
    /// `text\r\n`, once a line member needed it.
    line: Option<Shared>,
    /// A WebSocket text frame of `text`, once a browser member needed it.
    frame: Option<Shared>,
}

impl Out {
    /// The line made of `parts`, each cleaned: control characters other than tab become `?`,
    /// so a line relayed to a terminal cannot carry escape sequences (S11).
    pub(super) fn new(parts: &[&[u8]]) -> Out {
        let mut text = Vec::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + 2);
        for part in parts {
            text.extend(part.iter().map(|&b| {
                if (b < 0x20 && b != b'\t') || b == 0x7f {
                    b'?'
                } else {
                    b
                }
            }));
        }
        Out {
            text,
            line: None,
            frame: None,
        }
    }

    /// The buffer to queue for a member reached by `wire`.
    pub(super) fn form(&mut self, wire: Wire) -> &Shared {
        match wire {
            Wire::Lines => self.line.get_or_insert_with(|| {
                let mut buf = Vec::with_capacity(self.text.len() + 2);
                buf.extend_from_slice(&self.text);
                buf.extend_from_slice(b"\r\n");
                Shared::from(buf)
            }),
            Wire::WebSocket => self.frame.get_or_insert_with(|| {
                // A text frame must be UTF-8; a line member may have typed anything.
                let text = String::from_utf8_lossy(&self.text);
                let mut buf = Vec::with_capacity(text.len() + 4);
                ws::encode_text(&text, &mut buf);
                Shared::from(buf)
            }),
        }
    }
}

/// Sends the line made of `parts` to this connection, in its wire form.
pub(super) fn reply(cx: &mut Cx<'_, ChatRoom>, parts: &[&[u8]]) {
    let id = cx.id();
    let wire = cx.app().wire(id);
    cx.write_shared(Out::new(parts).form(wire));
}

/// Sends `out` to one member, in its wire form.
pub(super) fn send(cx: &mut LoopCx<'_, ChatRoom>, to: ConnId, out: &mut Out) {
    let wire = cx.app().wire(to);
    cx.send_shared_to(to, out.form(wire));
}

/// Queues `out` on every member of `room` but `except`, on this thread and (relayed) on the
/// others: one buffer per wire form, shared by all of a thread's members (S16).
pub(super) fn broadcast(
    cx: &mut LoopCx<'_, ChatRoom>,
    room: &str,
    except: Option<ConnId>,
    out: &mut Out,
) {
    if cx.app().peers.is_some() {
        cx.app().relay(Event::Line {
            room: room.into(),
            text: out.text.clone(),
        });
    }
    if cx.app().bus.is_some() {
        bus::publish_line(cx, room, &out.text);
    }
    broadcast_local(cx, room, except, out);
}

/// Queues `out` on this thread's members of `room` but `except`.
pub(super) fn broadcast_local(
    cx: &mut LoopCx<'_, ChatRoom>,
    room: &str,
    except: Option<ConnId>,
    out: &mut Out,
) {
    // The chat and the connections are borrowed apart: the member list stays where it is.
    let (chat, mut conns) = cx.split();
    let Some(ids) = chat.rooms.get(room) else {
        return;
    };
    for &(id, wire) in ids {
        if Some(id) != except {
            conns.send_shared_to(id, out.form(wire));
        }
    }
}

/// Says `why` to the member on `id`, then closes its connection with `reason`; a browser
/// member also gets a close frame with `code`. Then takes it out of the chat ([`depart`]).
pub(super) fn dismiss(
    cx: &mut LoopCx<'_, ChatRoom>,
    id: ConnId,
    why: &[u8],
    code: u16,
    reason: CloseReason,
    notice: &str,
) {
    let wire = cx.app().wire(id);
    send(cx, id, &mut Out::new(&[why]));
    if wire == Wire::WebSocket {
        let mut frame = Vec::new();
        let _ = ws::encode_close(Some((code, "")), &mut frame);
        let _ = cx.send_vec_to(id, frame);
    }
    cx.close_conn(id, reason);
    depart(cx, id, notice);
}

/// Takes the member on `id` out of the chat and tells its room, adding `why` to the notice (a
/// member the others never knew of leaves without a notice).
///
/// Called as soon as the server decides a member goes (`/quit`, a protocol error, the
/// heartbeat), not when the connection is finally gone: a graceful close waits for the peer's
/// end of stream, which a misbehaving peer may never send.
pub(super) fn depart(cx: &mut LoopCx<'_, ChatRoom>, id: ConnId, why: &str) {
    // Quiet or not, a member holds its name's claim on the bus.
    if let Some(nick) = cx.app().nick(id).map(Box::<str>::from) {
        bus::release(cx, id, &nick);
    }
    if let Some((nick, room)) = cx.app().leave(id) {
        let mut out = Out::new(&[b"* ", nick.as_bytes(), b" left", why.as_bytes()]);
        broadcast(cx, &room, Some(id), &mut out);
    }
    if cx.app().is_empty() {
        if let Some(task) = cx.app().heartbeat_task.take() {
            cx.cancel(task);
        }
    }
}

/// Adds the member on `id` (just connected, speaking `wire`) to the lobby: its welcome line,
/// the lobby's notice if `listed` (else [`introduce`] tells the others later), the heartbeat.
pub(super) fn welcome(cx: &mut Cx<'_, ChatRoom>, wire: Wire, listed: bool) {
    let id = cx.id();
    let nick = cx.app().join(id, wire, listed);
    // Everyone listed in the lobby but this member.
    let others = cx.app().count_in(LOBBY).saturating_sub(usize::from(listed));
    let welcome = format!(
        "* welcome to evdrive chat, you are {nick}; {others} other{} here in {LOBBY}; \
         /help lists the commands",
        if others == 1 { " is" } else { "s are" }
    );
    reply(cx, &[welcome.as_bytes()]);
    if listed {
        let mut news = Out::new(&[b"* ", nick.as_bytes(), b" joined"]);
        broadcast(cx, LOBBY, Some(id), &mut news);
    }
    bus::claim_nick(cx, id, &nick, true);
    super::heartbeat::start_heartbeat(cx);
}

/// Makes the member on `id` known to the others, if it is not yet: its room sees
/// `* nick joined`, `/who` and `/rooms` count it, the other threads learn of it.
pub(super) fn introduce(cx: &mut LoopCx<'_, ChatRoom>, id: ConnId) {
    let Some((nick, room)) = cx.app().list(id) else {
        return;
    };
    let mut news = if &*room == LOBBY {
        Out::new(&[b"* ", nick.as_bytes(), b" joined"])
    } else {
        Out::new(&[b"* ", nick.as_bytes(), b" joined ", room.as_bytes()])
    };
    broadcast(cx, &room, Some(id), &mut news);
}
