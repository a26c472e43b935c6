//! The bus's life: connecting, up, down and retrying after a back-off, stopping at shutdown,
//! and the beat that keeps the other nodes (and this one) informed.

use reactor::{ConnConfig, LoopCx};

use super::super::room::{ChatRoom, Out};
use super::message::Msg;
use super::{
    bus_mut, claims, inbound, publish, redis, State, BACKOFF_MAX, BEAT, BUS_BACK, BUS_DOWN,
    CLAIM_REFRESH, NODE_EXPIRY,
};

/// Opens a fresh pair of connections.
pub(super) fn connect(cx: &mut LoopCx<'_, ChatRoom>) {
    if cx.is_shutting_down() {
        stop(cx);
        return;
    }
    let now = cx.now();
    let Some(bus) = bus_mut(cx) else { return };
    bus.retry = None;
    bus.epoch += 1;
    bus.opened = now;
    let (epoch, addr) = (bus.epoch, bus.config.addr);
    // Room for any reply the decoder accepts (a bulk string of up to 1 MiB), so a message too
    // big for the chat is dropped by the bus's own check, with a log line, rather than taking
    // the connection down.
    let config = ConnConfig::new()
        .with_connect_timeout(BACKOFF_MAX)
        .with_max_input(2 * crate::codec::resp::DEFAULT_MAX_BULK_LENGTH);
    let sub = cx.connect(addr, redis::Subscriber::new(epoch), config.clone());
    let cmd = cx.connect(addr, redis::Commander::new(epoch), config);
    let (sub, cmd) = match (sub, cmd) {
        (Ok(sub), Ok(cmd)) => (sub, cmd),
        (sub, cmd) => {
            let err = [&sub, &cmd]
                .iter()
                .find_map(|r| r.as_ref().err().map(|e| e.to_string()))
                .unwrap_or_default();
            for id in [sub, cmd].into_iter().flatten() {
                cx.abort_conn(id, reactor::CloseReason::Local);
            }
            lost(cx, &format!("cannot open a connection: {err}"));
            return;
        }
    };
    if let Some(bus) = bus_mut(cx) {
        bus.sub = Some(sub);
        bus.cmd = Some(cmd);
    }
}

/// Both connections are ready: the bus is up. Tells the members if they were told it was
/// down, says `hello`, re-announces every member and renews their claims.
pub(crate) fn check_up(cx: &mut LoopCx<'_, ChatRoom>) {
    let now = cx.now();
    let Some(bus) = bus_mut(cx) else { return };
    if !(bus.subscribed && bus.cmd_open) || bus.state == State::Up {
        return;
    }
    bus.state = State::Up;
    bus.attempts = 0;
    bus.heard_self = now;
    let told = std::mem::take(&mut bus.told_down);
    log::info!("chat bus: connected to {} as {}", bus.config.addr, bus.node);
    if told {
        broadcast_local_all(cx, BUS_BACK);
    }
    publish(cx, &Msg::Hello);
    inbound::announce_all(cx);
    claims::hold_all(cx);
}

/// The current connections failed (`why`): close what is left, forget the roster, tell the
/// members once, and retry after a back-off.
pub(crate) fn lost(cx: &mut LoopCx<'_, ChatRoom>, why: &str) {
    let Some(bus) = bus_mut(cx) else { return };
    if bus.state == State::Stopped {
        return;
    }
    let was = bus.state;
    bus.state = State::Down;
    bus.subscribed = false;
    bus.cmd_open = false;
    bus.outbox.clear();
    bus.roster.clear();
    // A new epoch: callbacks of the connections being closed are ignored from now on.
    bus.epoch += 1;
    let conns = [bus.sub.take(), bus.cmd.take()];
    let pending = std::mem::take(&mut bus.pending);
    let tell = !bus.told_down;
    bus.told_down = true;
    let delay = bus.next_delay();
    for id in conns.into_iter().flatten() {
        cx.close_conn(id, reactor::CloseReason::Local);
    }
    if was != State::Down {
        log::warn!("chat bus down ({why}); retrying with back-off");
    } else {
        log::debug!("chat bus: still down ({why}); next try in {delay:?}");
    }
    if tell {
        broadcast_local_all(cx, BUS_DOWN);
    }
    claims::abandon(cx, pending);
    if cx.is_shutting_down() {
        stop(cx);
        return;
    }
    let retry = cx.schedule(delay, connect);
    if let Some(bus) = bus_mut(cx) {
        bus.retry = Some(retry);
    }
}

/// The reactor is shutting down: no more retries, no more beats.
pub(crate) fn stop(cx: &mut LoopCx<'_, ChatRoom>) {
    let Some(bus) = bus_mut(cx) else { return };
    bus.state = State::Stopped;
    bus.epoch += 1;
    let tasks = [bus.retry.take(), bus.beat.take()];
    let conns = [bus.sub.take(), bus.cmd.take()];
    for task in tasks.into_iter().flatten() {
        cx.cancel(task);
    }
    for id in conns.into_iter().flatten() {
        cx.close_conn(id, reactor::CloseReason::Local);
    }
}

/// The beat: say this node is alive, drop the nodes that are not, renew claims now and then,
/// and notice a Redis server that stopped answering.
pub(super) fn beat(cx: &mut LoopCx<'_, ChatRoom>) -> bool {
    let now = cx.now();
    let Some(bus) = bus_mut(cx) else { return false };
    if bus.state == State::Stopped {
        return false;
    }
    bus.beats += 1;
    let refresh = bus.beats % (CLAIM_REFRESH.as_secs() / BEAT.as_secs()).max(1) == 0;
    if !bus.is_up() {
        // A server that accepts connections but never confirms the subscription.
        let stuck = bus.sub.is_some() && now.saturating_duration_since(bus.opened) > NODE_EXPIRY;
        if stuck {
            lost(cx, "no answer to SUBSCRIBE");
        }
        return true;
    }
    let dropped = bus.roster.expire(now, NODE_EXPIRY);
    if dropped > 0 {
        log::info!(
            "chat bus: {dropped} node(s) silent for {NODE_EXPIRY:?}: their members are gone"
        );
    }
    if now.saturating_duration_since(bus.heard_self) > NODE_EXPIRY {
        lost(cx, "Redis stopped answering");
        return true;
    }
    publish(cx, &Msg::Beat);
    if refresh {
        claims::hold_all(cx);
    }
    true
}

/// Queues `text` on every member of this node, whatever its room (news about the bus).
fn broadcast_local_all(cx: &mut LoopCx<'_, ChatRoom>, text: &str) {
    let mut out = Out::new(&[text.as_bytes()]);
    let (chat, mut conns) = cx.split();
    for (&id, member) in &chat.members {
        conns.send_shared_to(id, out.form(member.wire));
    }
}
