//! What a member's line does: a message to its room, or a `/command`. Shared by every wire
//! form: a line from `nc` and a text message from a browser end up here alike.

use reactor::{CloseReason, ConnId, Cx, LoopCx};

use crate::codec::ws;

use super::bus;
use super::heartbeat;
use super::room::{self, broadcast, dismiss, reply, send, ChatRoom, Out, Rename, LOBBY};
use super::{is_valid_nick, MAX_NICK};

/// The text of `/help`.
pub(super) const HELP: &[&str] = &[
    "* commands:",
    "*   /nick NAME       change your nickname (1-20 of A-Z a-z 0-9 _ -)",
    "*   /join #ROOM      go to another room (created when first joined)",
    "*   /part            go back to #lobby",
    "*   /rooms, /list    list the rooms and how many are in each",
    "*   /who             list who is in your room",
    "*   /msg NICK TEXT   a private message to NICK, in any room",
    "*   /me ACTION       tell your room what you do: * nick ACTION",
    "*   /quit            leave",
    "*   /help            this list",
    "* any other line is a message to your room; start it with // to send a leading /",
];

/// Acts on one line from this member. Returns `false` if the connection is closing.
pub(super) fn on_line(cx: &mut Cx<'_, ChatRoom>, text: &[u8]) -> bool {
    let id = cx.id();
    let Some(member) = cx.app().members.get(&id) else {
        return false;
    };
    let (nick, room) = (member.nick.clone(), member.room.clone());
    heartbeat::heard(cx.app(), id);

    // A message (a leading `//` escapes a leading `/`), or a command.
    let text = match text {
        [] => return true,
        [b'/', b'/', ..] => &text[1..],
        [b'/', ..] => return on_command(cx, &nick, &room, &text[1..]),
        _ => text,
    };
    let mut msg = Out::new(&[b"<", nick.as_bytes(), b"> ", text]);
    broadcast(cx, &room, Some(id), &mut msg);
    true
}

/// Acts on a `/command` (without its slash) from `nick`, in `room`.
fn on_command(cx: &mut Cx<'_, ChatRoom>, nick: &str, room: &str, command: &[u8]) -> bool {
    let id = cx.id();
    let (name, arg) = match command.iter().position(|&b| b == b' ') {
        Some(i) => (&command[..i], trim(&command[i + 1..])),
        None => (command, &[][..]),
    };
    match name {
        b"nick" => nick_command(cx, arg),
        b"who" => {
            let chat = cx.app();
            let nicks = chat.nicks_in(room);
            let mut text = format!("* {} here:", nicks.len()).into_bytes();
            for (i, other) in nicks.iter().enumerate() {
                text.extend_from_slice(if i == 0 { b" " } else { b", " });
                text.extend_from_slice(other.as_bytes());
                if *other == nick {
                    text.extend_from_slice(b" (you)");
                }
            }
            if room != LOBBY {
                text.extend_from_slice(b" (in ");
                text.extend_from_slice(room.as_bytes());
                text.push(b')');
            }
            reply(cx, &[&text]);
        }
        b"me" if !arg.is_empty() => {
            let mut news = Out::new(&[b"* ", nick.as_bytes(), b" ", arg]);
            broadcast(cx, room, Some(id), &mut news);
        }
        b"me" => reply(cx, &[b"! usage: /me ACTION"]),
        b"join" if room::is_valid_room(arg) => {
            let to = String::from_utf8_lossy(arg).to_ascii_lowercase();
            go_to(cx, nick, room, &to);
        }
        b"join" => reply(
            cx,
            &[b"! usage: /join #ROOM, a # and 1 to 20 of A-Z a-z 0-9 _ -"],
        ),
        b"part" if room == LOBBY => reply(
            cx,
            &[b"! you are in #lobby already; /join #ROOM to go elsewhere"],
        ),
        b"part" => go_to(cx, nick, room, LOBBY),
        b"rooms" | b"list" => {
            let mut text = b"* rooms:".to_vec();
            for (i, (name, n)) in cx.app().rooms().iter().enumerate() {
                let sep = if i == 0 { " " } else { ", " };
                text.extend_from_slice(format!("{sep}{name} ({n})").as_bytes());
            }
            reply(cx, &[&text]);
        }
        b"msg" => private_message(cx, nick, arg),
        b"quit" => {
            dismiss(cx, id, b"* bye", ws::close::NORMAL, CloseReason::Local, "");
            return false;
        }
        b"help" => {
            for help in HELP {
                reply(cx, &[help.as_bytes()]);
            }
        }
        _ => {
            let name = &name[..name.len().min(MAX_NICK)];
            reply(cx, &[b"! unknown command /", name, b"; try /help"]);
        }
    }
    true
}

/// `/nick NAME`: checked here, then claimed on the bus if there is one (whose answer
/// finishes it), else done at once.
fn nick_command(cx: &mut Cx<'_, ChatRoom>, arg: &[u8]) {
    let id = cx.id();
    if !is_valid_nick(arg) {
        reply(
            cx,
            &[b"! usage: /nick NAME, with 1 to 20 of A-Z a-z 0-9 _ -"],
        );
        return;
    }
    // Valid nicknames are ASCII.
    let new = std::str::from_utf8(arg).unwrap_or_default();
    match cx.app().check_rename(id, new) {
        Ok(()) => {
            if !bus::claim_nick(cx, id, new, false) {
                finish_rename(cx, id, new);
            }
        }
        Err(Rename::Taken) => reply(cx, &[b"! nickname ", arg, b" is taken"]),
        Err(Rename::Same) => reply(cx, &[b"* you are already ", arg]),
        Err(Rename::NotMember) => {}
    }
}

/// Renames the member on `id` to `new` (valid, and claimed on the bus if there is one), and
/// tells it and its room.
pub(super) fn finish_rename(cx: &mut LoopCx<'_, ChatRoom>, id: ConnId, new: &str) {
    let arg = new.as_bytes();
    match cx.app().rename(id, new) {
        Ok(old) => {
            send(cx, id, &mut Out::new(&[b"* you are now ", arg]));
            let room = cx.app().members.get(&id).map(|m| m.room.clone());
            let mut news = Out::new(&[b"* ", old.as_bytes(), b" is now known as ", arg]);
            if let Some(room) = room {
                broadcast(cx, &room, Some(id), &mut news);
            }
            bus::release(cx, id, &old);
        }
        Err(Rename::Taken) => {
            send(cx, id, &mut Out::new(&[b"! nickname ", arg, b" is taken"]));
            bus::release(cx, id, new);
        }
        Err(Rename::Same) => send(cx, id, &mut Out::new(&[b"* you are already ", arg])),
        Err(Rename::NotMember) => bus::release(cx, id, new),
    }
}

/// Moves `nick` from `from` to `to`, telling both rooms and the member.
fn go_to(cx: &mut Cx<'_, ChatRoom>, nick: &str, from: &str, to: &str) {
    let id = cx.id();
    if from == to {
        reply(cx, &[b"* you are in ", to.as_bytes(), b" already"]);
        return;
    }
    cx.app().move_to(id, to);
    let mut gone = Out::new(&[b"* ", nick.as_bytes(), b" went to ", to.as_bytes()]);
    broadcast(cx, from, Some(id), &mut gone);
    let mut came = Out::new(&[b"* ", nick.as_bytes(), b" joined ", to.as_bytes()]);
    broadcast(cx, to, Some(id), &mut came);
    let others = cx.app().nicks_in(to).len() - 1;
    let text = format!(
        "* you are in {to} now; {others} other{} here",
        plural(others)
    );
    reply(cx, &[text.as_bytes()]);
}

/// `/msg NICK TEXT`: the addressee sees `<nick (private)> TEXT`, wherever it is.
fn private_message(cx: &mut Cx<'_, ChatRoom>, nick: &str, arg: &[u8]) {
    let (to, text) = match arg.iter().position(|&b| b == b' ') {
        Some(i) => (&arg[..i], trim(&arg[i + 1..])),
        None => (arg, &[][..]),
    };
    if to.is_empty() || text.is_empty() {
        reply(cx, &[b"! usage: /msg NICK TEXT"]);
        return;
    }
    let found = std::str::from_utf8(to)
        .ok()
        .and_then(|to| cx.app().find(to));
    match found {
        Some(other) if other == cx.id() => reply(cx, &[b"! that is you"]),
        Some(other) => {
            let mut msg = Out::new(&[b"<", nick.as_bytes(), b" (private)> ", text]);
            send(cx, other, &mut msg);
        }
        None => {
            let remote = std::str::from_utf8(to)
                .ok()
                .and_then(|to| cx.app().find_remote(to));
            if let Some((thread, other)) = remote {
                let text = Out::new(&[b"<", nick.as_bytes(), b" (private)> ", text]).text;
                cx.app().relay_private(thread, other, text);
                return;
            }
            let on_bus = std::str::from_utf8(to)
                .ok()
                .and_then(|to| Some((to, cx.app().find_on_bus(to)?)));
            if let Some((to, node)) = on_bus {
                let text = Out::new(&[b"<", nick.as_bytes(), b" (private)> ", text]).text;
                bus::publish_private(cx, &node, to, &text);
                return;
            }
            let to = &to[..to.len().min(MAX_NICK)];
            reply(cx, &[b"! nobody is called ", to]);
        }
    }
}

/// `"s are"` or `" is"` after a count of others.
pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 {
        " is"
    } else {
        "s are"
    }
}

/// `s` without leading and trailing spaces.
pub(super) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ').map_or(start, |i| i + 1);
    &s[start..end]
}
