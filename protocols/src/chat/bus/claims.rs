//! Nickname claims in Redis: the part of "nicknames are unique across the chat" that two nodes
//! cannot settle by looking at their rosters, since both may look at the same moment.
//!
//! # Implementation notes
//! A claim is the key `evdrive:chat:nick:NAME` (lower case) holding `NODE/TAG`, the claiming
//! member, with an expiry of [`CLAIM_TTL`]. `/nick` sets it with `SET … NX` and renames only on
//! `OK`; renewing and releasing must not touch a claim some other member holds by now (after
//! an expiry), so they are small Lua scripts that compare the owner first. Replies come back
//! on the command connection in the order the commands went, so the queue of
//! [`Pending`] says what each one answers.

use reactor::{ConnId, LoopCx};

use crate::codec::resp::Reply;

use super::super::commands::finish_rename;
use super::super::room::{broadcast, send, ChatRoom, Out};
use super::inbound::tag;
use super::{bus_mut, command, CLAIM_TTL};

/// Renews a claim this member holds, or takes it if nobody does: 1 if held, 0 if another owns it.
const HOLD: &[u8] = b"local v = redis.call('GET', KEYS[1]) \
    if v == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) \
    elseif not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end \
    return 0";

/// Deletes a claim only if this member holds it.
const RELEASE: &[u8] = b"if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('DEL', KEYS[1]) end return 0";

/// What a reply on the command connection answers.
#[derive(Debug)]
pub(crate) enum Pending {
    /// A `PUBLISH` or a release: only an error is worth a log line.
    Ignore,
    /// `SET … NX` for member `id`'s new nickname (`guest`: one it was given on arrival).
    Claim {
        id: ConnId,
        nick: Box<str>,
        guest: bool,
    },
    /// A renewal of `nick`'s claim.
    Hold { nick: Box<str> },
}

/// The claim's key for `nick`.
fn key(nick: &str) -> Vec<u8> {
    format!("evdrive:chat:nick:{}", nick.to_ascii_lowercase()).into_bytes()
}

/// The claim's value for member `id` of this node.
fn owner(cx: &mut LoopCx<'_, ChatRoom>, id: ConnId) -> Option<Vec<u8>> {
    let bus = bus_mut(cx)?;
    Some(format!("{}/{}", bus.node, tag(id)).into_bytes())
}

fn ttl_ms() -> Vec<u8> {
    CLAIM_TTL.as_millis().to_string().into_bytes()
}

/// Claims `nick` for member `id`. Returns `true` if the claim went out: its answer finishes a
/// rename (or, for a `guest` name, renames the member if another node holds it); `false` if
/// the bus is down, and the caller goes on with local checks only.
pub(crate) fn claim_nick(
    cx: &mut LoopCx<'_, ChatRoom>,
    id: ConnId,
    nick: &str,
    guest: bool,
) -> bool {
    let Some(owner) = owner(cx, id) else {
        return false;
    };
    let pending = Pending::Claim {
        id,
        nick: nick.into(),
        guest,
    };
    let args: [&[u8]; 6] = [b"SET", &key(nick), &owner, b"NX", b"PX", &ttl_ms()];
    command(cx, &args, pending)
}

/// Releases member `id`'s claim on `nick`, if it holds it.
pub(crate) fn release(cx: &mut LoopCx<'_, ChatRoom>, id: ConnId, nick: &str) {
    let Some(owner) = owner(cx, id) else { return };
    let args: [&[u8]; 5] = [b"EVAL", RELEASE, b"1", &key(nick), &owner];
    command(cx, &args, Pending::Ignore);
}

/// Renews (or takes again, after a Redis restart) every member's claim.
pub(crate) fn hold_all(cx: &mut LoopCx<'_, ChatRoom>) {
    let members: Vec<(ConnId, Box<str>)> = cx
        .app()
        .members
        .iter()
        .map(|(id, m)| (*id, m.nick.clone()))
        .collect();
    let ttl = ttl_ms();
    for (id, nick) in members {
        let Some(owner) = owner(cx, id) else { return };
        let args: [&[u8]; 6] = [b"EVAL", HOLD, b"1", &key(&nick), &owner, &ttl];
        if !command(cx, &args, Pending::Hold { nick }) {
            return;
        }
    }
}

/// The bus went away with claims unanswered: renames waiting on one go ahead on local checks,
/// as they would have with the bus already down.
pub(crate) fn abandon(cx: &mut LoopCx<'_, ChatRoom>, pending: impl IntoIterator<Item = Pending>) {
    for p in pending {
        if let Pending::Claim {
            id,
            nick,
            guest: false,
        } = p
        {
            finish_rename(cx, id, &nick);
        }
    }
}

/// Acts on the reply to `pending`.
pub(crate) fn on_reply(cx: &mut LoopCx<'_, ChatRoom>, pending: Pending, reply: &Reply<'_>) {
    if let Reply::Error(e) = reply {
        log::warn!(
            "chat bus: Redis refused a command ({pending:?}): {}",
            String::from_utf8_lossy(e)
        );
    }
    match pending {
        Pending::Ignore => {}
        Pending::Hold { nick } => {
            if *reply == Reply::Integer(0) {
                log::warn!("chat bus: nickname {nick} is claimed by a member of another node too");
            }
        }
        Pending::Claim { id, nick, guest } => match (reply, guest) {
            // Granted, or Redis failed: go ahead (best effort).
            (Reply::Simple(_) | Reply::Error(_), false) => finish_rename(cx, id, &nick),
            (Reply::Null, false) => {
                send(
                    cx,
                    id,
                    &mut Out::new(&[b"! nickname ", nick.as_bytes(), b" is taken"]),
                );
            }
            (Reply::Null, true) => guest_taken(cx, id, &nick),
            _ => {}
        },
    }
}

/// Another node holds the default nickname `nick` member `id` was given: give it the next free
/// one, and say so.
fn guest_taken(cx: &mut LoopCx<'_, ChatRoom>, id: ConnId, nick: &str) {
    let still = cx
        .app()
        .nick(id)
        .is_some_and(|n| n.eq_ignore_ascii_case(nick));
    if !still {
        return;
    }
    let new = cx.app().next_guest();
    let Ok(old) = cx.app().rename(id, &new) else {
        return;
    };
    let Some((room, listed)) = cx
        .app()
        .members
        .get(&id)
        .map(|m| (m.room.clone(), m.listed))
    else {
        return;
    };
    send(
        cx,
        id,
        &mut Out::new(&[
            b"* ",
            old.as_bytes(),
            b" is taken on another server; you are now ",
            new.as_bytes(),
        ]),
    );
    // A quiet member (not yet announced) is renamed without a word to the others.
    if listed {
        let mut news = Out::new(&[b"* ", old.as_bytes(), b" is now known as ", new.as_bytes()]);
        broadcast(cx, &room, Some(id), &mut news);
    }
    claim_nick(cx, id, &new, true);
}
