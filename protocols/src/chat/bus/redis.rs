//! The two Redis connections of a node: the subscriber, which receives what every node
//! publishes, and the commander, which publishes and claims nicknames.
//!
//! # Implementation notes
//! Each handler carries the epoch of the pair it belongs to; once the bus has given a pair up
//! (and bumped the epoch), whatever its connections still report is ignored, so a late close
//! of an old connection cannot take down a new pair. Replies are read with [`ReplyCodec`]; a
//! reply that is not RESP closes the pair, as a broken stream would, and the bus reconnects.

use reactor::{CloseReason, Cx, Protocol};

use crate::codec::resp::{encode_command, Reply, ReplyCodec, RespError};
use crate::codec::Decoder;

use super::super::room::ChatRoom;
use super::{bus_mut, check_up, claims, inbound, lost, stop, CHANNEL};

/// Whether the handler of epoch `epoch` still belongs to the bus's current pair.
fn current(cx: &mut Cx<'_, ChatRoom>, epoch: u64) -> bool {
    bus_mut(cx).is_some_and(|bus| bus.epoch == epoch)
}

/// Decodes every whole reply in `data`, handing each to `on_reply`; returns the bytes used, or
/// the error that makes the stream unusable.
fn replies(
    codec: &mut ReplyCodec,
    cx: &mut Cx<'_, ChatRoom>,
    data: &[u8],
    mut on_reply: impl FnMut(&mut Cx<'_, ChatRoom>, Reply<'_>),
) -> Result<usize, RespError> {
    let mut used = 0;
    while let Some((reply, n)) = codec.decode(&data[used..])? {
        used += n;
        on_reply(cx, reply);
    }
    Ok(used)
}

/// A pair's connection closed: the bus is lost, unless the reactor is shutting down.
fn closed(cx: &mut Cx<'_, ChatRoom>, epoch: u64, which: &str, reason: CloseReason) {
    if !current(cx, epoch) {
        return;
    }
    if matches!(reason, CloseReason::Shutdown) || cx.is_shutting_down() {
        stop(cx);
    } else {
        lost(cx, &format!("{which} connection: {reason}"));
    }
}

/// The subscribed connection.
#[derive(Debug)]
pub(super) struct Subscriber {
    epoch: u64,
    codec: ReplyCodec,
}

impl Subscriber {
    pub(super) fn new(epoch: u64) -> Self {
        Subscriber {
            epoch,
            codec: ReplyCodec::new(),
        }
    }
}

impl Protocol<ChatRoom> for Subscriber {
    fn on_open(&mut self, cx: &mut Cx<'_, ChatRoom>) {
        if !current(cx, self.epoch) {
            cx.close();
            return;
        }
        let mut buf = Vec::new();
        encode_command(&mut buf, &[b"SUBSCRIBE", CHANNEL.as_bytes()]);
        cx.write(&buf);
    }

    fn on_data(&mut self, cx: &mut Cx<'_, ChatRoom>, data: &[u8]) -> usize {
        if !current(cx, self.epoch) {
            return data.len();
        }
        let result = replies(&mut self.codec, cx, data, |cx, reply| {
            let now = cx.now();
            match reply {
                Reply::Array(items) => match items.as_slice() {
                    [Reply::Bulk(b"message"), _, Reply::Bulk(payload)] => {
                        if let Some(bus) = bus_mut(cx) {
                            bus.heard_self = now;
                        }
                        inbound::on_message(cx, payload);
                    }
                    [Reply::Bulk(b"subscribe"), ..] => {
                        if let Some(bus) = bus_mut(cx) {
                            bus.subscribed = true;
                        }
                        check_up(cx);
                    }
                    _ => log::debug!("chat bus: unexpected push {items:?}"),
                },
                // Refused (a server wanting AUTH, say): retried with back-off like a loss, and
                // logged with it (once per change, not per attempt).
                other => {
                    let why = match other {
                        Reply::Error(e) => String::from_utf8_lossy(e).into_owned(),
                        other => format!("{other:?}"),
                    };
                    let why = format!("SUBSCRIBE refused: {why}");
                    log::debug!("chat bus: {why}");
                    cx.close_with(CloseReason::protocol(why.as_str()));
                }
            }
        });
        match result {
            Ok(used) => used,
            Err(e) => {
                log::warn!("chat bus: bad RESP from the server: {e}");
                cx.close_with(CloseReason::protocol(e.to_string().as_str()));
                data.len()
            }
        }
    }

    fn on_close(&mut self, cx: &mut Cx<'_, ChatRoom>, reason: CloseReason) {
        closed(cx, self.epoch, "subscriber", reason);
    }
}

/// The command connection: `PUBLISH` and the nickname claims.
#[derive(Debug)]
pub(super) struct Commander {
    epoch: u64,
    codec: ReplyCodec,
}

impl Commander {
    pub(super) fn new(epoch: u64) -> Self {
        Commander {
            epoch,
            codec: ReplyCodec::new(),
        }
    }
}

impl Protocol<ChatRoom> for Commander {
    fn on_open(&mut self, cx: &mut Cx<'_, ChatRoom>) {
        if !current(cx, self.epoch) {
            cx.close();
            return;
        }
        if let Some(bus) = bus_mut(cx) {
            bus.cmd_open = true;
        }
        check_up(cx);
    }

    fn on_data(&mut self, cx: &mut Cx<'_, ChatRoom>, data: &[u8]) -> usize {
        if !current(cx, self.epoch) {
            return data.len();
        }
        let result = replies(&mut self.codec, cx, data, |cx, reply| {
            let pending = bus_mut(cx).and_then(|bus| bus.pending.pop_front());
            match pending {
                Some(pending) => claims::on_reply(cx, pending, &reply),
                None => log::warn!("chat bus: a reply nobody waits for: {reply:?}"),
            }
        });
        match result {
            Ok(used) => used,
            Err(e) => {
                log::warn!("chat bus: bad RESP from the server: {e}");
                cx.close_with(CloseReason::protocol(e.to_string().as_str()));
                data.len()
            }
        }
    }

    fn on_close(&mut self, cx: &mut Cx<'_, ChatRoom>, reason: CloseReason) {
        closed(cx, self.epoch, "command", reason);
    }
}
