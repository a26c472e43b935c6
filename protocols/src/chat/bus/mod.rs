//! One chat across processes and machines, through Redis pub/sub: `evdrive chat --bus
//! redis://HOST:PORT`.
//!
//! Every chat process (with `--threads N`, every thread) is a *node* of the chat. A node
//! publishes what its members do (lines, `/me`, joins, parts, nickname changes, private
//! messages to members of other nodes) on one Redis channel, [`CHANNEL`], and relays what the
//! other nodes publish to its own members. The reactor itself is the Redis client: two
//! outgoing connections speaking RESP ([`crate::codec::resp`]), one `SUBSCRIBE`d (a subscribed
//! connection may only (un)subscribe and ping) and one for `PUBLISH` and the nickname claims.
//!
//! # What holds
//! - **No duplicates, one node per thread.** Each thread is a node with its own connections;
//!   the threads of one process share a process id (the part of the node id before the `.`)
//!   and ignore each other's publications, which their reactors' handles already carried.
//!   Thread 0 holding the bus for all would save connections but make it relay every line
//!   twice (bus to thread 0, thread 0 to the others) and carry the other threads' rosters on
//!   the bus; a node per thread keeps the bus code unaware of threads.
//! - **Per-sender order.** A node publishes its members' events on one connection in the
//!   order it handles them, and Redis delivers one connection's publications in order, so
//!   every member sees another member's lines in the order they were sent. Lines of members
//!   on different nodes may interleave differently on each node.
//! - **Private messages** go on the one channel like everything else, addressed to a node and
//!   nickname; only that node delivers them. The bus is not private: the Redis server, and
//!   anyone who can subscribe to it, reads every line, private or not (run it where only the
//!   chat's processes reach it).
//! - **Rosters converge.** `/who` and `/rooms` count the other nodes' members, from their
//!   `member` and `gone` events. A node that (re)connects says `hello`, and every node answers
//!   by announcing all its members again; a node not yet known that speaks makes the listener
//!   say `hello` too. Every node publishes a `beat` every [`BEAT`]; a node not heard for
//!   [`NODE_EXPIRY`] is dropped with its members, so a vanished process's members disappear
//!   from the others' lists within about [`NODE_EXPIRY`] plus a beat.
//! - **Nicknames, best effort.** With the bus up, a `/nick` is checked against this
//!   process's members and the roster, then claimed in Redis
//!   (`SET evdrive:chat:nick:NAME NODE/TAG NX PX 30000`) and granted only if the claim
//!   succeeds: `SET NX` is atomic, so of two members on two nodes taking the same free name at
//!   the same moment, exactly one gets it. The rename takes a Redis round trip, and lines the
//!   member sends meanwhile still carry the old name. A member's claim is renewed every
//!   [`CLAIM_REFRESH`] while it is here, and released when it leaves or renames. Default
//!   nicknames (`guest7`) are claimed after the fact: if another node holds one, the member is
//!   renamed to the next free number and told. What remains: while the bus is down, names
//!   are checked locally only, and when it comes back a claim held elsewhere is only logged,
//!   so two members may share a name until one of them leaves or renames (the rosters then
//!   list the name once, for whichever node spoke last); a node that vanishes holds its
//!   members' names for up to [`CLAIM_TTL`]; a Redis server restarted empty forgets every
//!   claim until the nodes renew theirs on reconnecting.
//! - **The bus going away** does not stop the local chat. The node tells its members once
//!   (`* the bus is down: only this server's members see you`), logs it once, forgets the
//!   roster, and reconnects with bounded exponential back-off and jitter on the reactor's
//!   timers ([`BACKOFF_FIRST`] doubling up to [`BACKOFF_MAX`], each delay drawn between half
//!   and all of it, S9); once both connections are back and subscribed it says `* the bus is
//!   back` once, and re-announces its members. Events while the bus is down are not queued:
//!   the members were told they are not seen. A Redis server that stops answering without
//!   closing (a dead host) is noticed by the node's own beats not coming back within
//!   [`NODE_EXPIRY`], and handled as a close; so is one that never confirms the subscription,
//!   or refuses it.
//!
//! # Why it is shaped so
//! The bus is part of the chat's state ([`ChatRoom`]), reached from every handler without a
//! lock, like the rest of the chat. Roster news (a member arrived, moved, renamed, left) is
//! queued by the room's methods, which have no access to connections, and published just
//! before the line that tells the room about it (every such change is followed by one), so the
//! order on the bus is the order of events.
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | the bus state, starting it, sending commands and publishing |
//! | `life.rs` | connecting, up and down, back-off, stopping, the beat |
//! | `config.rs` | where the bus is, the nodes' ids |
//! | `redis.rs` | the two Redis connections' handlers |
//! | `inbound.rs` | acting on what the other nodes publish |
//! | `claims.rs` | nickname claims in Redis |
//! | `message.rs` | the bus message format |
//! | `roster.rs` | the other nodes' members and liveness |

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use reactor::{ConnId, LoopCx, TaskId};

use crate::codec::resp::encode_command;

use super::room::ChatRoom;

mod claims;
mod config;
mod inbound;
mod life;
pub(crate) mod message;
mod redis;
pub(crate) mod roster;
#[cfg(test)]
mod tests;

pub(crate) use claims::{claim_nick, release, Pending};
use config::seed;
pub use config::BusConfig;
pub(crate) use inbound::tag;
use life::{beat, connect};
pub(crate) use life::{check_up, lost, stop};
use message::Msg;
use roster::Roster;

/// The Redis channel every node publishes on and subscribes to.
pub const CHANNEL: &str = "evdrive:chat";

/// How often a node says it is alive.
pub const BEAT: Duration = Duration::from_secs(2);

/// How long a node may stay silent before the others drop it with its members.
pub const NODE_EXPIRY: Duration = Duration::from_secs(7);

/// The first reconnection delay.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);

/// The longest reconnection delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How long a nickname claim lives in Redis unless renewed.
pub const CLAIM_TTL: Duration = Duration::from_secs(30);

/// How often a node renews its members' nickname claims.
pub const CLAIM_REFRESH: Duration = Duration::from_secs(10);

/// The line members get when the bus goes away.
pub const BUS_DOWN: &str = "* the bus is down: only this server's members see you";

/// The line members get when the bus is back.
pub const BUS_BACK: &str = "* the bus is back";

/// Where the bus stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Connecting for the first time.
    Starting,
    /// Both connections open and subscribed.
    Up,
    /// Lost (or never reached): waiting to retry, or retrying.
    Down,
    /// The reactor is shutting down: no more retries.
    Stopped,
}

/// One node's bus: its connections, its state, and the other nodes' members.
pub(crate) struct Bus {
    config: BusConfig,
    /// This node's id: `PROCESS.THREAD`.
    pub(crate) node: Box<str>,
    pub(crate) state: State,
    /// Whether the members were told the bus is down (and not yet that it is back).
    told_down: bool,
    /// Which pair of connections is current; callbacks of older ones are ignored.
    pub(crate) epoch: u64,
    pub(crate) sub: Option<ConnId>,
    pub(crate) cmd: Option<ConnId>,
    pub(crate) subscribed: bool,
    pub(crate) cmd_open: bool,
    /// Failed attempts since the bus was last up.
    attempts: u32,
    /// The jitter's generator state.
    rng: u64,
    retry: Option<TaskId>,
    beat: Option<TaskId>,
    beats: u64,
    /// What each reply still due on the command connection answers, oldest first.
    pub(crate) pending: VecDeque<Pending>,
    /// When this node last heard its own beat come back through the subscription.
    pub(crate) heard_self: Instant,
    /// When the current pair of connections was opened.
    opened: Instant,
    /// Malformed messages dropped so far.
    pub(crate) malformed: u64,
    /// Roster news not yet published (see the module documentation).
    outbox: Vec<Vec<u8>>,
    pub(crate) roster: Roster,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("node", &self.node)
            .field("state", &self.state)
            .field("remote members", &self.roster.len())
            .finish_non_exhaustive()
    }
}

impl Bus {
    /// Whether news can be published.
    pub(crate) fn is_up(&self) -> bool {
        self.state == State::Up
    }

    /// Whether `node` belongs to this process (this node, or another thread of it).
    pub(crate) fn is_ours(&self, node: &str) -> bool {
        node.split_once('.').map(|(p, _)| p) == Some(self.config.process.as_str())
    }

    /// Queues roster news, published before the next line (or dropped if the bus is down).
    pub(crate) fn note(&mut self, msg: &Msg<'_>) {
        if self.is_up() {
            let mut payload = Vec::new();
            message::encode(&self.node, msg, &mut payload);
            self.outbox.push(payload);
        }
    }

    /// The next reconnection delay: [`BACKOFF_FIRST`] doubled per failed attempt, capped at
    /// [`BACKOFF_MAX`], then drawn uniformly between half and all of it so that nodes that lost
    /// the bus together do not all come back in the same instant.
    fn next_delay(&mut self) -> Duration {
        let doublings = self.attempts.min(16);
        self.attempts = self.attempts.saturating_add(1);
        let full = BACKOFF_FIRST
            .saturating_mul(1u32 << doublings)
            .min(BACKOFF_MAX);
        // xorshift64: plenty for jitter.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = full / 2;
        let extra = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(self.rng % extra.saturating_add(1))
    }
}

#[cfg(test)]
impl Bus {
    /// A bus that is not connected, to test its parts.
    fn for_tests(config: BusConfig) -> Bus {
        Bus::new(config, 0, Instant::now())
    }
}

impl Bus {
    fn new(config: BusConfig, thread: usize, now: Instant) -> Bus {
        let node: Box<str> = format!("{}.{thread}", config.process).into();
        Bus {
            config,
            node,
            state: State::Starting,
            told_down: false,
            epoch: 0,
            sub: None,
            cmd: None,
            subscribed: false,
            cmd_open: false,
            attempts: 0,
            rng: seed() | 1,
            retry: None,
            beat: None,
            beats: 0,
            pending: VecDeque::new(),
            heard_self: now,
            opened: now,
            malformed: 0,
            outbox: Vec::new(),
            roster: Roster::default(),
        }
    }
}

impl ChatRoom {
    /// The other bus nodes' members.
    pub(in crate::chat) fn bus_members(&self) -> impl Iterator<Item = &roster::BusMember> {
        self.bus.iter().flat_map(|b| b.roster.members())
    }

    /// The bus node of the member called `nick` (ignoring case), if on another node.
    pub(in crate::chat) fn find_on_bus(&self, nick: &str) -> Option<Box<str>> {
        Some(self.bus.as_ref()?.roster.find(nick)?.into())
    }
}

/// Makes the chat on this reactor node `thread` of the chat on the bus of `config`, and starts
/// connecting. Call it once per reactor, in its loop (`evdrive chat --bus` posts it through
/// each reactor's handle before announcing its address).
pub fn start_bus(cx: &mut LoopCx<'_, ChatRoom>, config: BusConfig, thread: usize) {
    let bus = Bus::new(config, thread, cx.now());
    log::info!("chat bus: node {}, Redis at {}", bus.node, bus.config.addr);
    cx.app().bus = Some(Box::new(bus));
    let beat = cx.every(BEAT, beat);
    if let Some(bus) = bus_mut(cx) {
        bus.beat = Some(beat);
    }
    connect(cx);
}

/// The bus, if this chat has one.
pub(crate) fn bus_mut<'a>(cx: &'a mut LoopCx<'_, ChatRoom>) -> Option<&'a mut Bus> {
    cx.app().bus.as_deref_mut()
}

/// Sends `args` on the command connection, expecting a reply that `pending` says what to do
/// with. Returns whether it was sent (the bus is up).
pub(crate) fn command(cx: &mut LoopCx<'_, ChatRoom>, args: &[&[u8]], pending: Pending) -> bool {
    let Some(bus) = bus_mut(cx) else { return false };
    let (true, Some(cmd)) = (bus.is_up(), bus.cmd) else {
        return false;
    };
    bus.pending.push_back(pending);
    let mut buf = Vec::new();
    encode_command(&mut buf, args);
    if cx.send_vec_to(cmd, buf).is_err() {
        // Closing already; its close reports the loss.
        if let Some(bus) = bus_mut(cx) {
            bus.pending.pop_back();
        }
        return false;
    }
    true
}

/// Publishes queued roster news, then `msg`.
pub(crate) fn publish(cx: &mut LoopCx<'_, ChatRoom>, msg: &Msg<'_>) {
    let Some(bus) = bus_mut(cx) else { return };
    if !bus.is_up() {
        return;
    }
    let mut payloads = std::mem::take(&mut bus.outbox);
    let mut payload = Vec::new();
    message::encode(&bus.node, msg, &mut payload);
    payloads.push(payload);
    for payload in payloads {
        command(
            cx,
            &[b"PUBLISH", CHANNEL.as_bytes(), &payload],
            Pending::Ignore,
        );
    }
}

/// Publishes a room's line (already cleaned) for the other nodes, after queued roster news.
pub(crate) fn publish_line(cx: &mut LoopCx<'_, ChatRoom>, room: &str, text: &[u8]) {
    publish(cx, &Msg::Line { room, text });
}

/// Publishes a private line (already cleaned) for member `to` of node `node`.
pub(crate) fn publish_private(cx: &mut LoopCx<'_, ChatRoom>, node: &str, to: &str, text: &[u8]) {
    publish(
        cx,
        &Msg::Private {
            to_node: node,
            to,
            text,
        },
    );
}
