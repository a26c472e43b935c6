//! What chat nodes say to each other on the bus: one Redis pub/sub message per event, in a
//! small text format of our own.
//!
//! # Format
//! `evchat1 NODE KIND ARGS…`, fields separated by one space; a message's text, when it has
//! one, is everything after the last field's space, so it may hold spaces:
//!
//! | kind | args | meaning |
//! |---|---|---|
//! | `hello` | | this node (re)joined the bus: everyone, say who your members are |
//! | `beat` | | this node is alive (every [`BEAT`](super::BEAT)) |
//! | `member` | `TAG NICK ROOM` | member `TAG` of this node is called `NICK` and is in `ROOM` |
//! | `gone` | `TAG` | member `TAG` of this node left |
//! | `line` | `ROOM TEXT` | `TEXT` for the members of `ROOM` |
//! | `msg` | `TONODE TONICK TEXT` | `TEXT` for member `TONICK` of node `TONODE` only |
//!
//! Anyone who can reach the Redis server can publish on the channel, so [`decode`] checks every
//! field (a node or tag of the allowed characters and length, a valid nickname and room, a text
//! no longer than a line) and the receiver cleans text again before relaying it (S11). A
//! malformed message is an error to log and drop, never a panic.

use std::fmt;

use super::super::room::is_valid_room;
use super::super::{is_valid_nick, MAX_LINE};

/// The first field of every message: the format and its version.
const MAGIC: &[u8] = b"evchat1";

/// The longest node id or member tag.
pub(crate) const MAX_ID: usize = 40;

/// The longest text a message may carry: a line, and room for the `<nick (private)> ` in front.
pub(crate) const MAX_TEXT: usize = MAX_LINE + 64;

/// One event on the bus, borrowing from the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Msg<'a> {
    Hello,
    Beat,
    Member {
        tag: &'a str,
        nick: &'a str,
        room: &'a str,
    },
    Gone {
        tag: &'a str,
    },
    Line {
        room: &'a str,
        text: &'a [u8],
    },
    Private {
        to_node: &'a str,
        to: &'a str,
        text: &'a [u8],
    },
}

/// Why a payload is not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadMessage {
    /// Not `evchat1`, or not even a node id after it.
    NotOurs,
    /// A kind this version does not know.
    UnknownKind,
    /// A field missing, too long, or with characters it may not have.
    BadField(&'static str),
}

impl fmt::Display for BadMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadMessage::NotOurs => f.write_str("not a chat bus message"),
            BadMessage::UnknownKind => f.write_str("unknown kind"),
            BadMessage::BadField(field) => write!(f, "bad {field}"),
        }
    }
}

/// Whether `id` can be a node id or member tag: 1 to [`MAX_ID`] of `0-9 a-z # . -`.
pub(crate) fn is_valid_id(id: &[u8]) -> bool {
    (1..=MAX_ID).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_digit() || b.is_ascii_lowercase() || b"#.-".contains(&b))
}

/// Appends `msg`, from `node`, to `out`.
pub(crate) fn encode(node: &str, msg: &Msg<'_>, out: &mut Vec<u8>) {
    let mut field = |f: &[u8]| {
        out.push(b' ');
        out.extend_from_slice(f);
    };
    match *msg {
        Msg::Hello => field(b"hello"),
        Msg::Beat => field(b"beat"),
        Msg::Member { tag, nick, room } => {
            for f in [
                &b"member"[..],
                tag.as_bytes(),
                nick.as_bytes(),
                room.as_bytes(),
            ] {
                field(f);
            }
        }
        Msg::Gone { tag } => {
            field(b"gone");
            field(tag.as_bytes());
        }
        Msg::Line { room, text } => {
            for f in [&b"line"[..], room.as_bytes(), text] {
                field(f);
            }
        }
        Msg::Private { to_node, to, text } => {
            for f in [&b"msg"[..], to_node.as_bytes(), to.as_bytes(), text] {
                field(f);
            }
        }
    }
    // The header goes first: built after, spliced in front (one message, one allocation).
    let mut head = Vec::with_capacity(MAGIC.len() + 1 + node.len() + out.len());
    head.extend_from_slice(MAGIC);
    head.push(b' ');
    head.extend_from_slice(node.as_bytes());
    head.append(out);
    *out = head;
}

/// The message in `payload` and the node that sent it.
///
/// # Errors
/// [`BadMessage`] if `payload` is not a well-formed message of this version.
pub(crate) fn decode(payload: &[u8]) -> Result<(&str, Msg<'_>), BadMessage> {
    let mut rest = payload;
    // Whether the last field ended the payload (rather than a space): one form per message.
    let mut at_end = false;
    let mut next = |name: &'static str| -> Result<&[u8], BadMessage> {
        let (field, after) = match rest.iter().position(|&b| b == b' ') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => {
                at_end = true;
                (rest, &[][..])
            }
        };
        rest = after;
        if field.is_empty() {
            Err(BadMessage::BadField(name))
        } else {
            Ok(field)
        }
    };
    if next("magic").map_err(|_| BadMessage::NotOurs)? != MAGIC {
        return Err(BadMessage::NotOurs);
    }
    let node = id(next("node").map_err(|_| BadMessage::NotOurs)?, "node")?;
    let kind = next("kind")?;
    let msg = match kind {
        b"hello" => Msg::Hello,
        b"beat" => Msg::Beat,
        b"member" => Msg::Member {
            tag: id(next("tag")?, "tag")?,
            nick: nick(next("nick")?)?,
            room: room(next("room")?)?,
        },
        b"gone" => Msg::Gone {
            tag: id(next("tag")?, "tag")?,
        },
        b"line" => {
            let room = room(next("room")?)?;
            Msg::Line { room, text: &[] }
        }
        b"msg" => {
            let to_node = id(next("node")?, "node")?;
            let to = nick(next("nick")?)?;
            Msg::Private {
                to_node,
                to,
                text: &[],
            }
        }
        _ => return Err(BadMessage::UnknownKind),
    };
    // The text is the rest, spaces and all; the other kinds must have nothing left.
    let msg = match msg {
        Msg::Line { room, .. } => Msg::Line {
            room,
            text: text(rest)?,
        },
        Msg::Private { to_node, to, .. } => Msg::Private {
            to_node,
            to,
            text: text(rest)?,
        },
        other if at_end => other,
        _ => return Err(BadMessage::BadField("trailing fields")),
    };
    Ok((node, msg))
}

fn id<'a>(field: &'a [u8], name: &'static str) -> Result<&'a str, BadMessage> {
    if is_valid_id(field) {
        // Only ASCII passed the check.
        std::str::from_utf8(field).map_err(|_| BadMessage::BadField(name))
    } else {
        Err(BadMessage::BadField(name))
    }
}

fn nick(field: &[u8]) -> Result<&str, BadMessage> {
    if is_valid_nick(field) {
        std::str::from_utf8(field).map_err(|_| BadMessage::BadField("nick"))
    } else {
        Err(BadMessage::BadField("nick"))
    }
}

fn room(field: &[u8]) -> Result<&str, BadMessage> {
    // Rooms are lower case on every node; anything else was not sent by one.
    if is_valid_room(field) && !field.iter().any(u8::is_ascii_uppercase) {
        std::str::from_utf8(field).map_err(|_| BadMessage::BadField("room"))
    } else {
        Err(BadMessage::BadField("room"))
    }
}

fn text(rest: &[u8]) -> Result<&[u8], BadMessage> {
    if rest.is_empty() || rest.len() > MAX_TEXT {
        Err(BadMessage::BadField("text"))
    } else {
        Ok(rest)
    }
}
