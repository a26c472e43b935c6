//! The members of the other nodes, as the bus told of them, and when each node was last heard.
//!
//! # Implementation notes
//! A node's members are kept until the node says they left, or until the node has been silent
//! for [`NODE_EXPIRY`](super::NODE_EXPIRY): a process that vanishes (killed, cut off) never says
//! goodbye, and its beat stopping is the only sign. The whole roster is dropped when this node
//! loses the bus, since from then on nobody else's news can reach it; it is rebuilt from the
//! re-announcements that follow this node's `hello` once the bus is back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A member of another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BusMember {
    pub(crate) nick: Box<str>,
    pub(crate) room: Box<str>,
}

/// The other nodes' members, by node and member tag, and the nodes' last signs of life.
#[derive(Debug, Default)]
pub(crate) struct Roster {
    members: HashMap<(Box<str>, Box<str>), BusMember>,
    seen: HashMap<Box<str>, Instant>,
}

impl Roster {
    /// Records a sign of life from `node` at `now`; returns whether the node was unknown.
    pub(crate) fn saw(&mut self, node: &str, now: Instant) -> bool {
        match self.seen.get_mut(node) {
            Some(at) => {
                *at = now;
                false
            }
            None => {
                self.seen.insert(node.into(), now);
                true
            }
        }
    }

    /// Member `tag` of `node` is `nick`, in `room`. Any other member of any node holding `nick`
    /// is dropped first: the newest news about a nickname wins, so a roster never lists one
    /// nickname twice.
    pub(crate) fn member(&mut self, node: &str, tag: &str, nick: &str, room: &str) {
        self.members.retain(|(n, t), m| {
            (&**n == node && &**t == tag) || !m.nick.eq_ignore_ascii_case(nick)
        });
        self.members.insert(
            (node.into(), tag.into()),
            BusMember {
                nick: nick.into(),
                room: room.into(),
            },
        );
    }

    /// Member `tag` of `node` left.
    pub(crate) fn gone(&mut self, node: &str, tag: &str) {
        self.members.remove(&(node.into(), tag.into()));
    }

    /// Forgets `node`'s members (it is about to announce them all again).
    pub(crate) fn forget_node(&mut self, node: &str) {
        self.members.retain(|(n, _), _| &**n != node);
    }

    /// Drops the nodes silent for longer than `expiry` at `now`, with their members; returns
    /// how many nodes went.
    pub(crate) fn expire(&mut self, now: Instant, expiry: Duration) -> usize {
        let before = self.seen.len();
        self.seen
            .retain(|_, at| now.saturating_duration_since(*at) <= expiry);
        let seen = &self.seen;
        self.members.retain(|(node, _), _| seen.contains_key(node));
        before - self.seen.len()
    }

    /// Forgets everything (the bus is gone).
    pub(crate) fn clear(&mut self) {
        self.members.clear();
        self.seen.clear();
    }

    /// The node of the member called `nick` (ignoring case).
    pub(crate) fn find(&self, nick: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(_, m)| m.nick.eq_ignore_ascii_case(nick))
            .map(|((node, _), _)| &**node)
    }

    /// Every member of the other nodes.
    pub(crate) fn members(&self) -> impl Iterator<Item = &BusMember> {
        self.members.values()
    }

    /// How many members the other nodes have.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }
}
