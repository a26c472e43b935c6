//! The chat over plain lines (`nc`), and the first look at a new connection that tells a
//! browser's HTTP request from a line typed at a terminal.
//!
//! # Implementation notes
//! The chat port speaks two protocols. A browser talks first (`GET / HTTP/1.1`); a person at
//! `nc` is first greeted. So a new connection is not greeted at once: it waits up to
//! [`SNIFF_GRACE`] for the peer to speak. If its first bytes are `GET `, the connection is
//! handed to the HTTP side ([`WebConn`], through [`Cx::replace_handler`]), with those bytes;
//! anything else, or silence for the grace period, makes it a line member. The cost is that a
//! person whose very first line starts with `GET ` is answered as a browser (an HTTP error),
//! and that the `nc` greeting comes [`SNIFF_GRACE`] late.
//!
//! A connection a browser opens ahead of need and leaves silent (Chromium does) is greeted as
//! a line member too: nothing tells it from a person who has not typed yet. So a member
//! greeted after silence is *quiet*: it gets the room's lines like anyone, but the others are
//! not told of it (`* guestN joined`, `/who`, `/rooms`) until its first line, or until it has
//! stayed [`ANNOUNCE_AFTER`]. A browser drops such a spare connection well before that (it
//! will not use one that has unread bytes), so it comes and goes unseen; a quiet member that
//! leaves leaves no notice either. If the first line of a quiet member is an HTTP request line
//! (`GET / HTTP/1.1`: a client that spoke just after the grace), it is not a message: the
//! member leaves unseen and the HTTP side answers the request, behind the welcome line (and
//! any room lines) already sent, which a strict HTTP client will reject; nothing better is
//! possible once bytes have gone out, which is what the grace is for.

use std::time::Duration;

use reactor::{CloseReason, Cx, Protocol, TimerId};

use crate::codec::LinesCodec;
use crate::framing::{serve, Flow};

use super::commands::on_line;
use super::room::{depart, dismiss, introduce, welcome, ChatRoom, Wire};
use super::web::WebConn;
use super::MAX_LINE;

/// How long a new connection may stay silent before it is greeted as a line member: long
/// enough for a browser's request to arrive, short enough not to be noticed at a terminal.
pub const SNIFF_GRACE: Duration = Duration::from_millis(150);

/// How long a member greeted after silence may stay quiet before the others are told of it:
/// longer than a browser keeps a spare connection it never used (Chromium closes an unused
/// idle socket after 10 s, and checks every 10 s for one that received bytes), short enough
/// that someone watching the room without typing is soon listed.
pub const ANNOUNCE_AFTER: Duration = Duration::from_secs(30);

/// What a browser's first bytes are.
const HTTP_GET: &[u8] = b"GET ";

/// The handler of one chat connection: first the look at its first bytes, then the line
/// protocol (or a switch to HTTP and WebSocket).
#[derive(Debug)]
pub struct ChatConn {
    /// Progress on the unfinished line.
    codec: LinesCodec,
    /// Whether the connection is a member yet (greeted), or still being looked at.
    joined: bool,
    /// The grace timer while still looking.
    grace: Option<TimerId>,
    /// While greeted but not yet known to the others (quiet): the timer that introduces it.
    announce: Option<TimerId>,
    /// Whether the member is quiet: greeted after silence, not yet introduced.
    quiet: bool,
    /// Whether to look for a browser's request at all.
    sniff: bool,
}

impl Default for ChatConn {
    fn default() -> Self {
        ChatConn::new()
    }
}

impl ChatConn {
    /// A handler accepting lines of up to [`MAX_LINE`] bytes.
    pub fn new() -> Self {
        ChatConn {
            codec: LinesCodec::with_max_length(MAX_LINE),
            joined: false,
            grace: None,
            announce: None,
            quiet: false,
            sniff: true,
        }
    }

    /// A handler for a port that speaks lines only: greeted at once, never taken for a
    /// browser.
    pub fn lines_only() -> Self {
        ChatConn {
            sniff: false,
            ..ChatConn::new()
        }
    }

    /// Makes this connection a line member: quiet where browsers may connect ahead of need,
    /// listed at once on a lines-only port.
    fn join(&mut self, cx: &mut Cx<'_, ChatRoom>) {
        if let Some(timer) = self.grace.take() {
            cx.cancel_timer(timer);
        }
        self.joined = true;
        welcome(cx, Wire::Lines, !self.sniff);
        if self.sniff {
            self.quiet = true;
            self.announce = cx.set_timer(ANNOUNCE_AFTER, 0);
            if self.announce.is_none() {
                // No timer to be had: better listed now than never.
                self.introduce(cx);
            }
        }
    }

    /// Makes a quiet member known to the others.
    fn introduce(&mut self, cx: &mut Cx<'_, ChatRoom>) {
        self.quiet = false;
        if let Some(timer) = self.announce.take() {
            cx.cancel_timer(timer);
        }
        let id = cx.id();
        introduce(cx, id);
    }

    /// Looks at the first line of a quiet member, if whole: an HTTP request line hands the
    /// connection to the HTTP side (returns `true`); any other line introduces the member,
    /// unless it is too long, which the line codec refuses next (the member then leaves as
    /// quietly as it came).
    fn first_line(&mut self, cx: &mut Cx<'_, ChatRoom>, data: &[u8]) -> bool {
        let Some(end) = data.iter().position(|&b| b == b'\n') else {
            return false;
        };
        let line = &data[..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE {
            return false;
        }
        if !is_request_line(line) {
            self.introduce(cx);
            return false;
        }
        self.quiet = false;
        if let Some(timer) = self.announce.take() {
            cx.cancel_timer(timer);
        }
        let id = cx.id();
        depart(cx, id, "");
        cx.replace_handler(Box::new(WebConn::new()));
        true
    }
}

/// Whether `line` is an HTTP/1 request line: `METHOD TARGET HTTP/1.x`, the method in capital
/// letters, the target a path (or `*`, or an absolute URL).
pub(crate) fn is_request_line(line: &[u8]) -> bool {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    (1..=16).contains(&method.len())
        && method.iter().all(u8::is_ascii_uppercase)
        && (target.starts_with(b"/")
            || target == b"*"
            || target.starts_with(b"http://")
            || target.starts_with(b"https://"))
        && matches!(version, b"HTTP/1.0" | b"HTTP/1.1")
}

impl Protocol<ChatRoom> for ChatConn {
    fn on_open(&mut self, cx: &mut Cx<'_, ChatRoom>) {
        if !self.sniff {
            self.join(cx);
            return;
        }
        self.grace = cx.set_timer(SNIFF_GRACE, 0);
        if self.grace.is_none() {
            self.join(cx);
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, ChatRoom>, timer: TimerId) {
        if self.announce == Some(timer) {
            // Quiet for long enough: not a browser's spare connection.
            self.announce = None;
            self.introduce(cx);
            return;
        }
        // Silent for the grace period: a person at a terminal.
        self.grace = None;
        if !self.joined {
            self.join(cx);
        }
    }

    fn on_data(&mut self, cx: &mut Cx<'_, ChatRoom>, data: &[u8]) -> usize {
        if !self.joined {
            let n = data.len().min(HTTP_GET.len());
            if data[..n] == HTTP_GET[..n] && !data[..n].contains(&b'\n') {
                if n < HTTP_GET.len() {
                    // `GE`: not yet known; wait for more.
                    return 0;
                }
                // A browser (or any HTTP client): the HTTP side reads the request.
                if let Some(timer) = self.grace.take() {
                    cx.cancel_timer(timer);
                }
                cx.replace_handler(Box::new(WebConn::new()));
                return 0;
            }
            self.join(cx);
        }
        if self.quiet && self.first_line(cx, data) {
            // Now the HTTP side's, with every byte.
            return 0;
        }
        let served = serve(
            &mut self.codec,
            data,
            cx,
            // A whole line: act on it. `/quit` or a lost membership ends the connection (the
            // line's handling has closed it already).
            |cx, text| {
                if on_line(cx, text) {
                    Flow::Continue
                } else {
                    Flow::Close
                }
            },
            // A line over the limit: say so, then close this connection only.
            |cx, e| {
                let why = e.to_string();
                let id = cx.id();
                dismiss(
                    cx,
                    id,
                    format!("! {why}; closing").as_bytes(),
                    crate::codec::ws::close::MESSAGE_TOO_BIG,
                    CloseReason::protocol(why.as_str()),
                    &format!(" ({why})"),
                );
            },
        );
        served.consumed
    }

    fn on_close(&mut self, cx: &mut Cx<'_, ChatRoom>, reason: CloseReason) {
        member_closed(cx, reason);
    }
}

/// The connection ended while still a member (peer closed, reset, slow consumer, idle
/// timeout, shutdown): tell its room why, unless the member simply left.
pub(super) fn member_closed(cx: &mut Cx<'_, ChatRoom>, reason: CloseReason) {
    let why = if reason.is_clean() {
        String::new()
    } else {
        format!(" ({reason})")
    };
    let id = cx.id();
    depart(cx, id, &why);
}
