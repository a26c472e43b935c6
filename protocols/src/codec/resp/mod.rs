//! Redis requests (RESP2) and the replies a server sends back.
//!
//! Requests come in the two forms Redis accepts:
//! - arrays of bulk strings, what client libraries send: `*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`;
//! - inline commands, what a person types into `nc` or `telnet`: `GET k\r\n` (or `\n`), split on
//!   whitespace. Quotes are not interpreted (Redis would), so arguments can borrow from the input.
//!
//! A frame is a [`RespCommand`]: the command's arguments as slices borrowed from the input,
//! reached through [`RespCommand::args`]. Decoding allocates nothing, whatever the number of
//! arguments: the command remembers where its arguments lie and the iterator walks the
//! already-validated bytes again. A command may be empty (`*0\r\n`, `*-1\r\n` or a blank
//! inline line); Redis ignores those, and so should a handler.
//!
//! Replies are written by free functions appending to a `Vec<u8>`
//! ([`encode_simple_string`], [`encode_error`], [`encode_integer`], [`encode_bulk`],
//! [`encode_null_bulk`], [`encode_array_header`], [`encode_null_array`]); numbers are formatted
//! without `fmt`, so a reply costs nothing beyond the vector's growth. [`encode_command`] writes a
//! request, for clients and load generators, and [`ReplyCodec`] reads what a server answers
//! ([`Reply`]), for clients such as the chat's Redis bus.
//!
//! # Limits
//!
//! | limit | default | Redis's | error |
//! |---|---|---|---|
//! | bulk string length | 1 MiB | 512 MiB | [`RespError::BulkTooLong`] |
//! | arguments per command | 1,024 | 1,048,576 | [`RespError::TooManyArguments`] |
//! | inline command line | 64 KiB | 64 KiB | [`RespError::InlineTooLong`] |
//! | whole array command | 2 MiB | none | [`RespError::CommandTooLong`] |
//!
//! The last bounds what one connection can make the server buffer: without it, 1,024 arguments
//! of 1 MiB each would be a 1 GiB frame. Every limit is checked as soon as the bytes that break
//! it arrive (`*100000\r\n` is refused before any argument).
//!
//! # Example
//!
//! ```
//! use evdrive_protocols::codec::{resp, Decoder, RespCodec, RespError};
//!
//! let mut codec = RespCodec::new();
//! let wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nPING\r\n";
//!
//! let (cmd, n) = codec.decode(wire)?.unwrap();
//! let args: Vec<&[u8]> = cmd.args().collect();
//! assert_eq!(args, [&b"SET"[..], b"k", b"hello"]);
//!
//! let (cmd, m) = codec.decode(&wire[n..])?.unwrap(); // pipelined, inline
//! assert!(cmd.name().unwrap().eq_ignore_ascii_case(b"ping"));
//! assert_eq!(n + m, wire.len());
//!
//! let mut out = Vec::new();
//! resp::encode_simple_string(&mut out, b"OK");
//! resp::encode_bulk(&mut out, b"hello");
//! resp::encode_integer(&mut out, -3);
//! assert_eq!(out, b"+OK\r\n$5\r\nhello\r\n:-3\r\n");
//! # Ok::<(), RespError>(())
//! ```
//!
//! # Implementation notes
//!
//! Only the first `max_command_length` bytes are ever looked at, so whether a command is too
//! long does not depend on how much was read past it. Between calls returning `Ok(None)` the
//! decoder remembers the array's length and where its first unfinished argument starts, so an
//! argument arriving in small pieces costs a constant per call, not a rescan of the command.
//!
//! The module is split by subject: `decode` holds [`RespCodec`], `command` the decoded
//! [`RespCommand`] and its [`Args`], `encode` the reply and request writers, `reply` the
//! client's reply decoder.

use std::fmt;

mod command;
mod decode;
mod encode;
mod reply;
#[cfg(test)]
mod reply_tests;
#[cfg(test)]
mod tests;

pub use command::{Args, RespCommand};
pub use decode::RespCodec;
pub use encode::{
    encode_array_header, encode_bulk, encode_command, encode_error, encode_integer,
    encode_null_array, encode_null_bulk, encode_simple_string,
};
pub use reply::{Reply, ReplyCodec, MAX_REPLY_DEPTH};

/// Default maximum length of one bulk string: 1 MiB (Redis allows 512 MiB).
pub const DEFAULT_MAX_BULK_LENGTH: usize = 1024 * 1024;
/// Default maximum number of arguments in one command.
pub const DEFAULT_MAX_ARGUMENTS: usize = 1024;
/// Default maximum length of an inline command line, terminator excluded: 64 KiB, as Redis.
pub const DEFAULT_MAX_INLINE_LENGTH: usize = 64 * 1024;
/// Default maximum length of a whole array command on the wire: 2 MiB.
pub const DEFAULT_MAX_COMMAND_LENGTH: usize = 2 * 1024 * 1024;

/// Errors of [`RespCodec`]; their `Display` reads like Redis's own protocol errors, so a handler
/// can send `-ERR Protocol error: …` before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RespError {
    /// `*` not followed by a valid count (or by a count below -1).
    InvalidMultibulkLength,
    /// `$` not followed by a valid, non-negative length.
    InvalidBulkLength,
    /// An array element does not start with `$`.
    ExpectedBulk {
        /// The byte found instead.
        found: u8,
    },
    /// A length line or a bulk string is not followed by `\r\n`.
    MissingCrlf,
    /// A bulk string is longer than the maximum.
    BulkTooLong {
        /// The maximum bulk length.
        max: usize,
    },
    /// A command has more arguments than the maximum.
    TooManyArguments {
        /// The maximum number of arguments.
        max: usize,
    },
    /// An inline command line is longer than the maximum.
    InlineTooLong {
        /// The maximum inline line length.
        max: usize,
    },
    /// An array command is longer on the wire than the maximum.
    CommandTooLong {
        /// The maximum command length.
        max: usize,
    },
    /// A reply starts with a byte that is no RESP2 type (`+ - : $ *`), or an integer reply
    /// is not a number ([`ReplyCodec`] only).
    InvalidReply {
        /// The byte found.
        found: u8,
    },
    /// A reply's arrays nest deeper than the maximum ([`ReplyCodec`] only).
    NestedTooDeep {
        /// The deepest nesting accepted.
        max: usize,
    },
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Protocol error: ")?;
        match *self {
            RespError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            RespError::InvalidBulkLength => f.write_str("invalid bulk length"),
            RespError::ExpectedBulk { found } => {
                write!(f, "expected '$', got '{}'", found.escape_ascii())
            }
            RespError::MissingCrlf => f.write_str("expected CRLF"),
            RespError::BulkTooLong { max } => write!(f, "bulk string over {max} bytes"),
            RespError::TooManyArguments { max } => write!(f, "more than {max} arguments"),
            RespError::InlineTooLong { max } => write!(f, "inline request over {max} bytes"),
            RespError::CommandTooLong { max } => write!(f, "command over {max} bytes"),
            RespError::InvalidReply { found } => {
                write!(f, "invalid reply at '{}'", found.escape_ascii())
            }
            RespError::NestedTooDeep { max } => write!(f, "arrays nested over {max} deep"),
        }
    }
}

impl std::error::Error for RespError {}
