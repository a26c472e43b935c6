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
//! and that the `nc` greeting comes [`SNIFF_GRACE`] late. A connection a browser opens ahead
//! of need and leaves silent (Chromium does) is greeted as a line member too, and leaves when
//! the browser drops it: nothing tells it from a person who has not typed yet.

use std::time::Duration;

use reactor::{CloseReason, Cx, Protocol, TimerId};

use crate::codec::LinesCodec;
use crate::framing::{serve, Flow};

use super::commands::on_line;
use super::room::{depart, dismiss, welcome, ChatRoom, Wire};
use super::web::WebConn;
use super::MAX_LINE;

/// How long a new connection may stay silent before it is greeted as a line member: long
/// enough for a browser's request to arrive, short enough not to be noticed at a terminal.
pub const SNIFF_GRACE: Duration = Duration::from_millis(150);

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

    /// Makes this connection a line member.
    fn join(&mut self, cx: &mut Cx<'_, ChatRoom>) {
        if let Some(timer) = self.grace.take() {
            cx.cancel_timer(timer);
        }
        self.joined = true;
        welcome(cx, Wire::Lines);
    }
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

    fn on_timer(&mut self, cx: &mut Cx<'_, ChatRoom>, _timer: TimerId) {
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
