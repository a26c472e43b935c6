//! What a node does with the other nodes' publications, and its answer to a `hello`.

use reactor::LoopCx;

use super::super::room::{broadcast_local, send, ChatRoom, Out};
use super::message::{decode, Msg};
use super::{bus_mut, publish};

/// Acts on one payload from the channel. A malformed one is logged and dropped: anyone who
/// can reach the Redis server can publish there.
pub(crate) fn on_message(cx: &mut LoopCx<'_, ChatRoom>, payload: &[u8]) {
    let (node, msg) = match decode(payload) {
        Ok(decoded) => decoded,
        Err(e) => {
            // Logged at warn the 1st, 2nd, 4th, 8th… time, so a flood cannot flood the log.
            let count = bus_mut(cx).map_or(0, |bus| {
                bus.malformed += 1;
                bus.malformed
            });
            let text = String::from_utf8_lossy(&payload[..payload.len().min(80)]);
            if count.is_power_of_two() {
                log::warn!("chat bus: dropped a malformed message ({e}), {count} so far: {text:?}");
            } else {
                log::debug!("chat bus: dropped a malformed message ({e}): {text:?}");
            }
            return;
        }
    };
    let now = cx.now();
    let Some(bus) = bus_mut(cx) else { return };
    // This process's own publications (this thread's, or another thread's, which the
    // reactors' handles carried already).
    if bus.is_ours(node) {
        return;
    }
    let new_node = bus.roster.saw(node, now);
    match msg {
        Msg::Hello => {
            // It announces all its members next; the ones that left while it was away from
            // the bus were never said to be gone.
            bus.roster.forget_node(node);
            log::info!("chat bus: node {node} (re)joined");
            announce_all(cx);
            return;
        }
        Msg::Beat => {}
        Msg::Member { tag, nick, room } => bus.roster.member(node, tag, nick, room),
        Msg::Gone { tag } => bus.roster.gone(node, tag),
        Msg::Line { room, text } => {
            // Cleaned again: the bus is input from outside (S11).
            broadcast_local(cx, room, None, &mut Out::new(&[text]));
        }
        Msg::Private { to_node, to, text } => {
            if to_node == &*bus.node {
                match cx.app().find(to) {
                    Some(id) => send(cx, id, &mut Out::new(&[text])),
                    None => log::debug!("chat bus: private message for {to}, gone"),
                }
            }
        }
    }
    if new_node {
        // A node this one did not know (new, or dropped while silent) that may not know this
        // one either: everyone re-announces.
        log::info!("chat bus: node {node} appeared");
        publish(cx, &Msg::Hello);
        announce_all(cx);
    }
}

/// Publishes a `member` event for every listed member of this node (quiet ones are not
/// announced anywhere yet).
pub(crate) fn announce_all(cx: &mut LoopCx<'_, ChatRoom>) {
    let members: Vec<(String, Box<str>, Box<str>)> = cx
        .app()
        .members
        .iter()
        .filter(|(_, m)| m.listed)
        .map(|(id, m)| (tag(*id), m.nick.clone(), m.room.clone()))
        .collect();
    for (tag, nick, room) in &members {
        publish(cx, &Msg::Member { tag, nick, room });
    }
}

/// A member's tag on the bus: its connection id, as `#index.generation`.
pub(crate) fn tag(id: reactor::ConnId) -> String {
    format!("{id:?}")
}
