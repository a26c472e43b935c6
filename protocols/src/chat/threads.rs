//! One chat across the threads of a process: each thread's reactor holds its own members, and
//! tells the other threads, through their [`Handle`]s, what they need to know: the lines said
//! in a room, and who is here under which nickname in which room.
//!
//! # Implementation notes
//! Everything is replicated by events posted to the other threads' mailboxes: a line for a
//! room ([`Event::Line`]) is broadcast there to that thread's members of the room (one shared
//! buffer per wire form, as at home, S16), and member events keep a copy of the other
//! threads' members ([`ChatRoom`]'s `remote` list) for `/who`, `/rooms`, `/msg` and nickname
//! checks. A mailbox is first in, first out, and one thread posts its events in the order it
//! handles lines, so every member sees every other member's lines in the order that member
//! sent them. Lines of members on different threads may interleave differently on each
//! thread: there is no global order, as in any chat spread over servers.
//!
//! Nicknames are unique across threads as far as each thread knows: two members on two
//! threads taking the same free nickname at the same moment both get it (best effort).
//! Default nicknames cannot collide: thread `i` of `n` numbers its guests `i + 1`,
//! `i + 1 + n`, `i + 1 + 2n`…

use reactor::{ConnId, Handle, LoopCx};

use super::room::{broadcast_local, send, ChatRoom, Out};

/// A member of another thread, as that thread announced it.
#[derive(Debug, Clone)]
pub(super) struct RemoteMember {
    pub(super) nick: Box<str>,
    pub(super) room: Box<str>,
}

/// Where this thread stands among the chat's threads.
#[derive(Debug)]
pub(super) struct Peers {
    /// This thread's index.
    pub(super) me: usize,
    /// Every thread's handle, this one's included (skipped when relaying).
    handles: Vec<Handle<ChatRoom>>,
}

/// What a thread tells the others. `who` names a member by its thread and connection.
#[derive(Debug, Clone)]
pub(super) enum Event {
    /// A member arrived, or changed its nickname or room: its current state.
    Member {
        who: (usize, ConnId),
        nick: Box<str>,
        room: Box<str>,
    },
    /// A member left.
    Gone { who: (usize, ConnId) },
    /// A line (without terminator, already cleaned) for a room's members.
    Line { room: Box<str>, text: Vec<u8> },
    /// A private line for one member of the receiving thread.
    Private { to: ConnId, text: Vec<u8> },
}

impl ChatRoom {
    /// Makes this chat thread `me` of the chat carried by the reactors behind `handles` (one
    /// per thread, in thread order). Call it on every thread, through its handle, before
    /// members arrive (`evdrive chat --threads N` does, before announcing its address).
    pub fn link(&mut self, me: usize, handles: Vec<Handle<ChatRoom>>) {
        let n = handles.len().max(1) as u64;
        self.guest_numbers(me as u64 + 1, n);
        self.peers = Some(Peers { me, handles });
    }

    /// Posts `event` to every other thread.
    pub(super) fn relay(&self, event: Event) {
        let Some(peers) = &self.peers else {
            return;
        };
        for (i, handle) in peers.handles.iter().enumerate() {
            if i != peers.me {
                let event = event.clone();
                // A thread already gone is shutting down with the rest: nothing to tell.
                let _ = handle.post(move |cx| apply(cx, event));
            }
        }
    }

    /// This thread's index, if linked.
    pub(super) fn me(&self) -> usize {
        self.peers.as_ref().map_or(0, |p| p.me)
    }

    /// Posts a private line to member `to` of thread `thread`.
    pub(super) fn relay_private(&self, thread: usize, to: ConnId, text: Vec<u8>) {
        if let Some(handle) = self.peers.as_ref().and_then(|p| p.handles.get(thread)) {
            let _ = handle.post(move |cx| apply(cx, Event::Private { to, text }));
        }
    }
}

/// Acts on an event from another thread.
fn apply(cx: &mut LoopCx<'_, ChatRoom>, event: Event) {
    match event {
        Event::Member { who, nick, room } => {
            cx.app().remote.insert(who, RemoteMember { nick, room });
        }
        Event::Gone { who } => {
            cx.app().remote.remove(&who);
        }
        Event::Line { room, text } => {
            broadcast_local(cx, &room, None, &mut Out::new(&[&text]));
        }
        Event::Private { to, text } => send(cx, to, &mut Out::new(&[&text])),
    }
}
