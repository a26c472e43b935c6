//! The reply decoder, for clients: what a Redis server sends back (RESP2), including the
//! pushes of a subscribed connection (`*3\r\n$7\r\nmessage\r\n…`).
//!
//! # Implementation notes
//! A client reads replies from a server it chose, but the server (or whatever answers on its
//! port) is still input from outside: every length is bounded, arrays may nest only
//! [`MAX_REPLY_DEPTH`] deep (so a hostile peer cannot make the decoder recurse without end),
//! and a line without its `\r\n` is refused once it passes the inline limit. The decoder keeps
//! no state between calls: an unfinished reply is parsed again from its start when more bytes
//! arrive, which costs a walk over its headers (bulk data is skipped by length, not scanned).

use super::{RespError, DEFAULT_MAX_ARGUMENTS, DEFAULT_MAX_BULK_LENGTH, DEFAULT_MAX_INLINE_LENGTH};
use crate::codec::Decoder;

/// How deep arrays may nest in one reply (Redis's own replies nest two or three deep).
pub const MAX_REPLY_DEPTH: usize = 8;

/// One RESP2 reply, borrowing its strings from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+OK`: a status line.
    Simple(&'a [u8]),
    /// `-ERR …`: an error line, code first.
    Error(&'a [u8]),
    /// `:42`.
    Integer(i64),
    /// `$5\r\nhello`: a bulk string.
    Bulk(&'a [u8]),
    /// `$-1` or `*-1`: nothing (a missing key, `SET … NX` that did not set).
    Null,
    /// `*2\r\n…`: the elements, each a reply.
    Array(Vec<Reply<'a>>),
}

impl<'a> Reply<'a> {
    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Reply::Simple(s) | Reply::Bulk(s) => Some(s),
            _ => None,
        }
    }
}

/// Decoder for RESP2 replies, with limits on every size (the request decoder's defaults).
#[derive(Debug, Clone)]
pub struct ReplyCodec {
    /// Longest bulk string accepted.
    max_bulk_length: usize,
    /// Most elements in one array.
    max_elements: usize,
    /// Longest status or error line, terminator excluded.
    max_line_length: usize,
}

impl Default for ReplyCodec {
    fn default() -> Self {
        ReplyCodec::new()
    }
}

impl ReplyCodec {
    /// A decoder with the default limits: 1 MiB bulk strings, 1,024 elements per array,
    /// 64 KiB status lines.
    pub fn new() -> Self {
        ReplyCodec {
            max_bulk_length: DEFAULT_MAX_BULK_LENGTH,
            max_elements: DEFAULT_MAX_ARGUMENTS,
            max_line_length: DEFAULT_MAX_INLINE_LENGTH,
        }
    }

    /// Sets the longest bulk string accepted.
    pub fn with_max_bulk_length(mut self, max: usize) -> Self {
        self.max_bulk_length = max;
        self
    }

    /// The reply starting at `at` and where it ends, `Ok(None)` if unfinished.
    fn reply<'a>(
        &self,
        buf: &'a [u8],
        at: usize,
        depth: usize,
    ) -> Result<Option<(Reply<'a>, usize)>, RespError> {
        let Some(&kind) = buf.get(at) else {
            return Ok(None);
        };
        match kind {
            b'+' | b'-' => {
                let Some((line, next)) = self.line(buf, at + 1)? else {
                    return Ok(None);
                };
                let reply = if kind == b'+' {
                    Reply::Simple(line)
                } else {
                    Reply::Error(line)
                };
                Ok(Some((reply, next)))
            }
            b':' => Ok(
                number(buf, at + 1, RespError::InvalidReply { found: kind })?
                    .map(|(n, next)| (Reply::Integer(n), next)),
            ),
            b'$' => {
                let Some((len, data_at)) = number(buf, at + 1, RespError::InvalidBulkLength)?
                else {
                    return Ok(None);
                };
                if len == -1 {
                    return Ok(Some((Reply::Null, data_at)));
                }
                let len = usize::try_from(len).map_err(|_| RespError::InvalidBulkLength)?;
                if len > self.max_bulk_length {
                    return Err(RespError::BulkTooLong {
                        max: self.max_bulk_length,
                    });
                }
                let end = data_at.saturating_add(len);
                match buf.get(end..end.saturating_add(2)) {
                    Some(b"\r\n") => Ok(Some((Reply::Bulk(&buf[data_at..end]), end + 2))),
                    Some(_) => Err(RespError::MissingCrlf),
                    None => Ok(None),
                }
            }
            b'*' => {
                let Some((n, mut next)) = number(buf, at + 1, RespError::InvalidMultibulkLength)?
                else {
                    return Ok(None);
                };
                if n == -1 {
                    return Ok(Some((Reply::Null, next)));
                }
                let n = usize::try_from(n).map_err(|_| RespError::InvalidMultibulkLength)?;
                if n > self.max_elements {
                    return Err(RespError::TooManyArguments {
                        max: self.max_elements,
                    });
                }
                if depth + 1 >= MAX_REPLY_DEPTH {
                    return Err(RespError::NestedTooDeep {
                        max: MAX_REPLY_DEPTH,
                    });
                }
                let mut items = Vec::with_capacity(n.min(16));
                for _ in 0..n {
                    let Some((item, end)) = self.reply(buf, next, depth + 1)? else {
                        return Ok(None);
                    };
                    items.push(item);
                    next = end;
                }
                Ok(Some((Reply::Array(items), next)))
            }
            found => Err(RespError::InvalidReply { found }),
        }
    }

    /// The status line starting at `at`: its bytes and where the next reply starts.
    fn line<'a>(&self, buf: &'a [u8], at: usize) -> Result<Option<(&'a [u8], usize)>, RespError> {
        let rest = &buf[at..];
        let window = &rest[..rest.len().min(self.max_line_length + 2)];
        match window.iter().position(|&b| b == b'\r' || b == b'\n') {
            Some(i) => match window.get(i..i + 2) {
                Some(b"\r\n") => Ok(Some((&rest[..i], at + i + 2))),
                Some(_) => Err(RespError::MissingCrlf),
                None => Ok(None),
            },
            None if rest.len() > self.max_line_length => Err(RespError::InlineTooLong {
                max: self.max_line_length,
            }),
            None => Ok(None),
        }
    }
}

impl Decoder for ReplyCodec {
    type Frame<'a> = Reply<'a>;
    type Error = RespError;

    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(Reply<'a>, usize)>, RespError> {
        self.reply(buf, 0, 0)
    }

    fn reset(&mut self) {}
}

/// `<integer>\r\n` at `at`: the value and where the next byte is, `Ok(None)` if unfinished.
fn number(buf: &[u8], at: usize, invalid: RespError) -> Result<Option<(i64, usize)>, RespError> {
    // A sign and 19 digits hold any i64; anything longer is invalid.
    let window = &buf[at.min(buf.len())..buf.len().min(at.saturating_add(22))];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        return if window.len() >= 22 || window.iter().any(|b| !(b.is_ascii_digit() || *b == b'-')) {
            Err(invalid)
        } else {
            Ok(None)
        };
    };
    let digits = &window[..cr];
    let value = std::str::from_utf8(digits)
        .ok()
        .filter(|s| !s.is_empty() && !s.starts_with('+'))
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(invalid)?;
    match window.get(cr + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((value, at + cr + 2))),
        Some(_) => Err(RespError::MissingCrlf),
    }
}
