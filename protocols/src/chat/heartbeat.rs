//! The chat's heartbeat (`--heartbeat SECS`): every interval, a member silent during it gets a
//! `* ping` line, and one silent for `MAX_MISSED_HEARTBEATS` intervals in a row is closed. Any
//! line counts as a sign of life. One repeating task serves the whole chat, started by the
//! first member and ended when the chat is empty, so an idle server runs no timer.

use reactor::{CloseReason, ConnId, LoopCx};

use crate::codec::ws;

use super::room::{dismiss, ChatRoom, Out};
use super::MAX_MISSED_HEARTBEATS;

/// Starts the heartbeat if it is configured and not running.
pub(super) fn start_heartbeat(cx: &mut LoopCx<'_, ChatRoom>) {
    let chat = cx.app();
    let (Some(interval), None) = (chat.heartbeat, chat.heartbeat_task) else {
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
    let mut ping = Out::new(&[b"* ping"]);
    let mut dropped = Vec::new();
    let (chat, mut conns) = cx.split();
    for (&id, member) in chat.members.iter_mut() {
        if std::mem::take(&mut member.heard) {
            member.missed = 0;
            continue;
        }
        member.missed += 1;
        if member.missed >= MAX_MISSED_HEARTBEATS {
            dropped.push(id);
        } else {
            conns.send_shared_to(id, ping.form(member.wire));
        }
    }
    for id in dropped {
        dismiss(
            cx,
            id,
            b"! you have been silent for too long: closing",
            ws::close::POLICY_VIOLATION,
            CloseReason::IdleTimeout,
            " (silent for too long)",
        );
    }
    // The last member may just have been dropped.
    cx.app().heartbeat_task.is_some()
}

/// Notes that the member on `id` sent a line (the heartbeat's sign of life).
pub(super) fn heard(chat: &mut ChatRoom, id: ConnId) {
    if let Some(member) = chat.members.get_mut(&id) {
        member.heard = true;
        member.missed = 0;
    }
}
