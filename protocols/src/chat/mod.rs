//! A chat with rooms, for `nc` and for browsers on the same port: what a member types reaches
//! every other member of its room.
//!
//! Run it with `evdrive chat` (127.0.0.1:7000) and connect with `nc 127.0.0.1 7000` from a
//! terminal, or open `http://127.0.0.1:7000/` in a browser: both kinds of members share the
//! rooms.
//!
//! # What a member sees and types
//!
//! On connect, a welcome line with the nickname assigned (`guest1`, `guest2`…) and a hint about
//! `/help`; everyone starts in [`LOBBY`], whose members see `* guest1 joined` (for a terminal,
//! at its first line: see *Silent connections* below). A line that does
//! not start with `/` is a message to the member's room: the others there receive
//! `<nick> text`, in the order the server received the lines, and the sender gets no echo (its
//! terminal already shows what it typed). Commands:
//!
//! | command | effect |
//! |---|---|
//! | `/nick NAME` | change nickname: 1 to 20 of `A-Z a-z 0-9 _ -`, unique ignoring case |
//! | `/join #ROOM` | go to another room (`#` and 1 to 20 of the same characters, lower-cased), created when first joined, gone when empty; the old room sees `* nick went to #room`, the new one `* nick joined #room` |
//! | `/part` | go back to `#lobby` |
//! | `/rooms`, `/list` | the rooms with members, and how many |
//! | `/who` | the members of your room |
//! | `/msg NICK TEXT` | a private message: NICK, in whatever room, sees `<nick (private)> TEXT` |
//! | `/me ACTION` | your room sees `* nick ACTION` |
//! | `/quit` | leave |
//! | `/help` | list the commands |
//! | `//text` | send a message that starts with `/` |
//!
//! Lines from the server to a member start with `*` (news), `!` (an error about what that member
//! typed) or `<` (a message). An unknown or malformed command gets an error line saying what
//! was expected, and the connection stays. Control characters other than tab are replaced by
//! `?` before anything is relayed, so no member can send terminal escape sequences to the
//! others (S11).
//!
//! # Browsers
//!
//! The chat port also answers HTTP ([`web`](self::WebConn)): a connection whose first bytes are
//! `GET ` is a browser. `GET /` serves [`PAGE`], a self-contained page (no external scripts or
//! fonts), whose script opens a WebSocket (RFC 6455) on the same port; the upgrade switches the
//! connection's handler to the chat over WebSocket frames ([`WsMember`]), one text message per
//! line each way. A person at `nc` whose very first line starts with `GET ` is taken for a
//! browser and gets an HTTP error: an accepted edge of sharing the port. Since a browser speaks
//! first and a terminal user waits to be greeted, a new connection is greeted only after
//! [`SNIFF_GRACE`] of silence (or its first line).
//!
//! # Silent connections
//!
//! A browser may open a spare connection ahead of need and leave it silent; after the grace
//! it looks exactly like a person at `nc` who has not typed yet. Such a member is greeted and
//! gets the room's lines at once, but stays *quiet*: the others are told of it (`* guestN
//! joined`, `/who`, `/rooms`, [`ChatRoom::is_listed`]) only at its first line, or once it has
//! stayed [`ANNOUNCE_AFTER`] (30 s) without one, longer than a browser keeps a spare
//! connection that received bytes. A quiet member that goes leaves no notice. A quiet
//! member's first line that is an HTTP request line (`GET / HTTP/1.1`) is answered as HTTP,
//! not said to the room (the client has the welcome line already: see `line.rs`). Someone
//! who types before the grace ends, a browser's WebSocket, and every member on a lines-only
//! port ([`ChatConn::lines_only`]) are announced at once.
//!
//! # One chat across processes
//!
//! With a bus ([`start_bus`], `evdrive chat --bus redis://HOST:PORT`), chat processes on one
//! Redis server form one chat through its pub/sub, the reactor itself being the Redis client:
//! lines, `/me`, joins, parts, renames and private messages cross it, `/who` and `/rooms`
//! count every process's members, nicknames are claimed in Redis, and a bus that goes away is
//! said to the members (`* the bus is down: only this server's members see you`, then
//! `* the bus is back`) while the local chat goes on. What holds and what races remain: the
//! `bus` module's documentation (`bus/mod.rs`).
//!
//! # Limits and misbehaving members
//!
//! - A line is at most 16 KiB ([`MAX_LINE`], the [`lines`](crate::codec::lines) codec's
//!   default); a WebSocket message too. A longer one is a protocol error: that member gets
//!   `! line too long…` (a browser also the close code 1009), then its connection is closed
//!   gracefully; the others stay. WebSocket protocol errors close with their RFC 6455 code.
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
//! The chat ([`ChatRoom`]) is the reactor's user state: every handler reaches the member list
//! as `&mut ChatRoom` through its `Cx`, with no lock, since all callbacks run on the reactor's
//! one thread, and the order in which the loop handles lines is the order everyone sees them
//! in. With several threads, each thread's chat relays to the others through their
//! reactors' handles (`threads.rs`, [`ChatRoom::link`]), so they form one chat.
//!
//! A broadcast is built once into one reference-counted [`Shared`](reactor::Shared) buffer per
//! wire form (a line, a WebSocket frame) and queued on every recipient of that form with
//! [`LoopCx::send_shared_to`](reactor::LoopCx::send_shared_to): one allocation and one copy per
//! form however many members there are (S16). The chat and the connections are borrowed apart
//! ([`LoopCx::split`](reactor::LoopCx::split)) while a room is walked, so broadcasting
//! allocates nothing else and the list stays put.
//!
//! The heartbeat is one periodic task for the whole chat
//! ([`LoopCx::every`](reactor::LoopCx::every)), started when the first member joins and stopped
//! when the last one leaves, rather than a timer per member: an empty chat has no timers.
//!
//! | file | holds |
//! |---|---|
//! | `room.rs` | the members, rooms and nicknames; reply, broadcast, departure, heartbeat |
//! | `commands.rs` | what a line does: a message or a `/command` |
//! | `line.rs` | the first look at a connection, quiet members, and the chat over lines |
//! | `web.rs` | the page, the upgrade, and the chat over WebSocket |
//! | `threads.rs` | one chat across threads: the events relayed to the other threads |
//! | `bus/` | one chat across processes: the Redis connections, the bus messages, the other nodes' members, nickname claims |

use std::time::Duration;

use reactor::ConnConfig;

pub(crate) mod bus;
mod commands;
mod heartbeat;
mod line;
mod room;
mod threads;
mod web;

pub use bus::{
    start_bus, BusConfig, BACKOFF_FIRST, BACKOFF_MAX, BEAT, BUS_BACK, BUS_DOWN, CHANNEL,
    CLAIM_REFRESH, CLAIM_TTL, NODE_EXPIRY,
};
// The fuzz target's model tells request lines apart as the server does.
#[cfg(feature = "fuzz")]
pub(crate) use line::is_request_line;
pub use line::{ChatConn, ANNOUNCE_AFTER, SNIFF_GRACE};
pub use room::{ChatRoom, LOBBY};
pub use web::{WebConn, WsMember, PAGE};

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

/// Whether `nick` is an acceptable nickname: 1 to [`MAX_NICK`] ASCII letters, digits, `_`, `-`.
pub fn is_valid_nick(nick: &[u8]) -> bool {
    (1..=MAX_NICK).contains(&nick.len())
        && nick
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod quiet_tests;
#[cfg(test)]
mod tests;
