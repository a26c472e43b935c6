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
//! request, for clients and load generators.
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

use std::fmt;

use super::lines::{scan_line, LineScan};
use super::num::{write_i64, write_u64};
use super::Decoder;

/// Default maximum length of one bulk string: 1 MiB (Redis allows 512 MiB).
pub const DEFAULT_MAX_BULK_LENGTH: usize = 1024 * 1024;
/// Default maximum number of arguments in one command.
pub const DEFAULT_MAX_ARGUMENTS: usize = 1024;
/// Default maximum length of an inline command line, terminator excluded: 64 KiB, as Redis.
pub const DEFAULT_MAX_INLINE_LENGTH: usize = 64 * 1024;
/// Default maximum length of a whole array command on the wire: 2 MiB.
pub const DEFAULT_MAX_COMMAND_LENGTH: usize = 2 * 1024 * 1024;

/// Longest accepted `*<n>` or `$<n>` number: a sign and 19 digits.
const MAX_NUMBER_DIGITS: usize = 20;

/// Decoder for Redis requests, with limits on every size.
#[derive(Debug, Clone)]
pub struct RespCodec {
    /// Longest bulk string accepted.
    max_bulk_length: usize,
    /// Most arguments accepted in one command.
    max_arguments: usize,
    /// Longest inline line accepted, terminator excluded.
    max_inline_length: usize,
    /// Longest array command accepted, all framing included.
    max_command_length: usize,
    /// Inline progress: bytes known to hold no `\n`.
    scanned: usize,
    /// Array progress: how far the unfinished array command has been validated.
    array: Option<ArrayProgress>,
}

/// How far an unfinished array command has been validated; valid while the caller offers the
/// same prefix again.
#[derive(Debug, Clone, Copy)]
struct ArrayProgress {
    /// Number of arguments announced by `*<argc>`.
    argc: usize,
    /// Length of the `*<argc>\r\n` line: the first argument starts there.
    header_len: usize,
    /// Number of arguments read completely.
    done: usize,
    /// Where the next argument's `$` is.
    next: usize,
}

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
        }
    }
}

impl std::error::Error for RespError {}

impl RespCodec {
    /// A decoder with the default limits (see the [module documentation](self)).
    pub fn new() -> Self {
        RespCodec {
            max_bulk_length: DEFAULT_MAX_BULK_LENGTH,
            max_arguments: DEFAULT_MAX_ARGUMENTS,
            max_inline_length: DEFAULT_MAX_INLINE_LENGTH,
            max_command_length: DEFAULT_MAX_COMMAND_LENGTH,
            scanned: 0,
            array: None,
        }
    }

    /// Sets the longest bulk string accepted.
    pub fn with_max_bulk_length(mut self, max: usize) -> Self {
        self.max_bulk_length = max;
        self
    }

    /// Sets the most arguments accepted in one command.
    pub fn with_max_arguments(mut self, max: usize) -> Self {
        self.max_arguments = max;
        self
    }

    /// Sets the longest inline command line accepted, terminator excluded.
    pub fn with_max_inline_length(mut self, max: usize) -> Self {
        self.max_inline_length = max;
        self
    }

    /// Sets the longest array command accepted, framing included.
    pub fn with_max_command_length(mut self, max: usize) -> Self {
        self.max_command_length = max;
        self
    }

    /// Decodes an inline command from the front of `buf`.
    fn decode_inline<'a>(
        &mut self,
        buf: &'a [u8],
    ) -> Result<Option<(RespCommand<'a>, usize)>, RespError> {
        match scan_line(buf, &mut self.scanned, self.max_inline_length) {
            LineScan::Found { end, next } => {
                let line = &buf[..end];
                let argc = line
                    .split(|b| is_space(*b))
                    .filter(|a| !a.is_empty())
                    .count();
                if argc > self.max_arguments {
                    return Err(RespError::TooManyArguments {
                        max: self.max_arguments,
                    });
                }
                Ok(Some((
                    RespCommand {
                        form: Form::Inline,
                        bytes: line,
                        argc,
                    },
                    next,
                )))
            }
            LineScan::Partial => Ok(None),
            LineScan::TooLong => Err(RespError::InlineTooLong {
                max: self.max_inline_length,
            }),
        }
    }

    /// Decodes an array command (`buf` starts with `*`).
    fn decode_array<'a>(
        &mut self,
        buf: &'a [u8],
    ) -> Result<Option<(RespCommand<'a>, usize)>, RespError> {
        // Nothing past the longest acceptable command can change the outcome.
        let w = &buf[..buf.len().min(self.max_command_length)];
        let window_full = buf.len() >= self.max_command_length;
        let too_long = RespError::CommandTooLong {
            max: self.max_command_length,
        };

        // Step 1: the `*<argc>\r\n` line, unless an earlier call got past it.
        let mut p = match self.array.take() {
            Some(p) if p.next <= w.len() => p,
            _ => match number_line(w, 1, RespError::InvalidMultibulkLength)? {
                None if window_full => return Err(too_long),
                None => return Ok(None),
                // `*0` and `*-1`: an empty command, which Redis skips.
                Some((n, header_len)) if n == 0 || n == -1 => {
                    let cmd = RespCommand {
                        form: Form::Array,
                        bytes: &[],
                        argc: 0,
                    };
                    return Ok(Some((cmd, header_len)));
                }
                Some((n, _)) if n < 0 => return Err(RespError::InvalidMultibulkLength),
                Some((n, header_len)) => {
                    if n as u64 > self.max_arguments as u64 {
                        return Err(RespError::TooManyArguments {
                            max: self.max_arguments,
                        });
                    }
                    ArrayProgress {
                        argc: n as usize,
                        header_len,
                        done: 0,
                        next: header_len,
                    }
                }
            },
        };

        // Step 2: each `$<len>\r\n<data>\r\n`, from the first one not yet read.
        while p.done < p.argc {
            let at = p.next;
            let Some(&first) = w.get(at) else {
                return self.wait(p, window_full, too_long);
            };
            if first != b'$' {
                return Err(RespError::ExpectedBulk { found: first });
            }
            let Some((len, data_at)) = number_line(w, at + 1, RespError::InvalidBulkLength)? else {
                return self.wait(p, window_full, too_long);
            };
            if len < 0 {
                return Err(RespError::InvalidBulkLength);
            }
            if len as u64 > self.max_bulk_length as u64 {
                return Err(RespError::BulkTooLong {
                    max: self.max_bulk_length,
                });
            }
            // `len <= max_bulk_length` and `data_at <= w.len()`: the sum only overflows if the
            // limits are near usize::MAX, where saturating is right.
            let end = data_at.saturating_add(len as usize);
            match w.get(end..end.saturating_add(2)) {
                Some(b"\r\n") => {}
                Some(_) => return Err(RespError::MissingCrlf),
                None => return self.wait(p, window_full, too_long),
            }
            p.next = end + 2;
            p.done += 1;
        }

        // Step 3: the whole command is here.
        let cmd = RespCommand {
            form: Form::Array,
            bytes: &w[p.header_len..p.next],
            argc: p.argc,
        };
        Ok(Some((cmd, p.next)))
    }

    /// Keeps `progress` for the next call, unless the command can no longer fit.
    fn wait<T>(
        &mut self,
        progress: ArrayProgress,
        window_full: bool,
        too_long: RespError,
    ) -> Result<Option<T>, RespError> {
        if window_full {
            return Err(too_long);
        }
        self.array = Some(progress);
        Ok(None)
    }
}

impl Default for RespCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for RespCodec {
    type Frame<'a> = RespCommand<'a>;
    type Error = RespError;

    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(RespCommand<'a>, usize)>, RespError> {
        let result = match buf.first() {
            None => return Ok(None),
            Some(b'*') => self.decode_array(buf),
            // Anything else is an inline command, as in Redis.
            Some(_) => self.decode_inline(buf),
        };
        if !matches!(result, Ok(None)) {
            self.reset();
        }
        result
    }

    fn reset(&mut self) {
        self.scanned = 0;
        self.array = None;
    }
}

/// Parses `<integer>\r\n` starting at `at` in `w`: `Ok(Some((value, just past the \n)))`, or
/// `Ok(None)` if the line is unfinished. Bytes are checked left to right, so a bad byte is
/// reported as soon as it arrives, the same whatever came after it.
fn number_line(w: &[u8], at: usize, invalid: RespError) -> Result<Option<(i64, usize)>, RespError> {
    let mut negative = false;
    let mut digits = 0usize;
    let mut magnitude = 0u64;
    for (i, &b) in w.iter().enumerate().skip(at) {
        match b {
            b'-' if i == at => negative = true,
            b'0'..=b'9' if digits < MAX_NUMBER_DIGITS - 1 => {
                digits += 1;
                // 19 digits always fit in a u64.
                magnitude = magnitude * 10 + u64::from(b - b'0');
            }
            b'\r' if digits > 0 => {
                return match w.get(i + 1) {
                    None => Ok(None),
                    Some(b'\n') => {
                        let value = if negative {
                            0i64.checked_sub_unsigned(magnitude)
                        } else {
                            i64::try_from(magnitude).ok()
                        };
                        value.map(|v| Some((v, i + 2))).ok_or(invalid)
                    }
                    Some(_) => Err(RespError::MissingCrlf),
                };
            }
            _ => return Err(invalid),
        }
    }
    Ok(None)
}

/// Whitespace that separates inline arguments (C's `isspace`, as Redis uses).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c')
}

/// The two request forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `bytes` holds the array's elements, `$<len>\r\n<data>\r\n` each, already validated.
    Array,
    /// `bytes` holds the inline line without its terminator.
    Inline,
}

/// One decoded request: its arguments, borrowed from the input.
///
/// The first argument is the command name; compare it with `eq_ignore_ascii_case`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RespCommand<'a> {
    /// Which form `bytes` is in.
    form: Form,
    /// The validated bytes the arguments are read from (see [`Form`]).
    bytes: &'a [u8],
    /// Number of arguments in `bytes`.
    argc: usize,
}

impl<'a> RespCommand<'a> {
    /// The arguments, name first.
    pub fn args(&self) -> Args<'a> {
        Args {
            form: self.form,
            rest: self.bytes,
            left: self.argc,
        }
    }

    /// The command name: the first argument, if any.
    pub fn name(&self) -> Option<&'a [u8]> {
        self.args().next()
    }

    /// Number of arguments, name included.
    pub fn len(&self) -> usize {
        self.argc
    }

    /// Whether the command has no arguments at all (`*0`, or a blank inline line): ignore it.
    pub fn is_empty(&self) -> bool {
        self.argc == 0
    }

    /// Whether the command came as an inline line rather than an array.
    pub fn is_inline(&self) -> bool {
        self.form == Form::Inline
    }
}

impl fmt::Debug for RespCommand<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RespCommand")?;
        f.debug_list()
            .entries(self.args().map(|a| String::from_utf8_lossy(a)))
            .finish()
    }
}

/// Iterator over a [`RespCommand`]'s arguments.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    /// Which form `rest` is in.
    form: Form,
    /// The bytes not yet walked.
    rest: &'a [u8],
    /// Arguments left in `rest`.
    left: usize,
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        match self.form {
            Form::Array => {
                // `$<len>\r\n<data>\r\n`, validated by the decoder; `get` keeps this panic-free
                // all the same.
                let cr = self.rest.iter().position(|&b| b == b'\r')?;
                let len = self.rest.get(1..cr)?.iter().try_fold(0usize, |n, &d| {
                    n.checked_mul(10)?
                        .checked_add(usize::from(d.checked_sub(b'0')?))
                })?;
                let data_at = cr + 2;
                let data = self.rest.get(data_at..data_at.checked_add(len)?)?;
                self.rest = self.rest.get(data_at + len + 2..).unwrap_or(&[]);
                Some(data)
            }
            Form::Inline => {
                let start = self.rest.iter().position(|&b| !is_space(b))?;
                let rest = &self.rest[start..];
                let len = rest.iter().position(|&b| is_space(b)).unwrap_or(rest.len());
                self.rest = &rest[len..];
                Some(&rest[..len])
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Args<'_> {}

/// Appends `bytes` with `\r` and `\n` replaced by spaces, which would otherwise end a simple
/// string or an error early (Redis does the same).
fn extend_one_line(dst: &mut Vec<u8>, bytes: &[u8]) {
    dst.extend(
        bytes
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

/// Appends a simple string reply: `+OK\r\n`. `\r` and `\n` in `s` become spaces.
pub fn encode_simple_string(dst: &mut Vec<u8>, s: &[u8]) {
    dst.reserve(s.len() + 3);
    dst.push(b'+');
    extend_one_line(dst, s);
    dst.extend_from_slice(b"\r\n");
}

/// Appends an error reply: `-ERR unknown command\r\n` for `msg = b"ERR unknown command"`.
///
/// Start `msg` with an error code (`ERR`, `WRONGTYPE`…) as Redis does. `\r` and `\n` in `msg`
/// become spaces.
pub fn encode_error(dst: &mut Vec<u8>, msg: &[u8]) {
    dst.reserve(msg.len() + 3);
    dst.push(b'-');
    extend_one_line(dst, msg);
    dst.extend_from_slice(b"\r\n");
}

/// Appends an integer reply: `:42\r\n`.
pub fn encode_integer(dst: &mut Vec<u8>, n: i64) {
    dst.push(b':');
    write_i64(dst, n);
    dst.extend_from_slice(b"\r\n");
}

/// Appends a bulk string reply: `$5\r\nhello\r\n`. Any bytes are allowed in `data`.
pub fn encode_bulk(dst: &mut Vec<u8>, data: &[u8]) {
    dst.reserve(data.len() + 16);
    dst.push(b'$');
    write_u64(dst, data.len() as u64);
    dst.extend_from_slice(b"\r\n");
    dst.extend_from_slice(data);
    dst.extend_from_slice(b"\r\n");
}

/// Appends the null bulk reply, `$-1\r\n` (a missing key).
pub fn encode_null_bulk(dst: &mut Vec<u8>) {
    dst.extend_from_slice(b"$-1\r\n");
}

/// Appends an array header, `*<len>\r\n`; the `len` elements follow as replies of their own.
pub fn encode_array_header(dst: &mut Vec<u8>, len: usize) {
    dst.push(b'*');
    write_u64(dst, len as u64);
    dst.extend_from_slice(b"\r\n");
}

/// Appends the null array reply, `*-1\r\n`.
pub fn encode_null_array(dst: &mut Vec<u8>) {
    dst.extend_from_slice(b"*-1\r\n");
}

/// Appends a request as an array of bulk strings, the form client libraries send.
pub fn encode_command(dst: &mut Vec<u8>, args: &[&[u8]]) {
    encode_array_header(dst, args.len());
    for arg in args {
        encode_bulk(dst, arg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes one command into owned arguments and the consumed count.
    /// A command's arguments, owned.
    type Owned = Vec<Vec<u8>>;

    fn one(codec: &mut RespCodec, buf: &[u8]) -> Result<Option<(Owned, usize)>, RespError> {
        codec
            .decode(buf)
            .map(|o| o.map(|(cmd, n)| (cmd.args().map(<[u8]>::to_vec).collect(), n)))
    }

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn array_command() {
        let mut c = RespCodec::new();
        let wire = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        assert_eq!(
            one(&mut c, wire),
            Ok(Some((args(&["GET", "k"]), wire.len())))
        );
        let (cmd, _) = c.decode(wire).unwrap().unwrap();
        assert_eq!(cmd.len(), 2);
        assert_eq!(cmd.args().len(), 2);
        assert!(!cmd.is_inline());
        assert_eq!(format!("{cmd:?}"), r#"RespCommand["GET", "k"]"#);
    }

    #[test]
    fn binary_and_empty_bulk_strings() {
        let mut c = RespCodec::new();
        let wire = b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\n\r\n\0\xff\r\n";
        let expected = vec![b"SET".to_vec(), Vec::new(), b"\r\n\0\xff".to_vec()];
        assert_eq!(one(&mut c, wire), Ok(Some((expected, wire.len()))));
    }

    #[test]
    fn inline_commands() {
        let mut c = RespCodec::new();
        assert_eq!(one(&mut c, b"PING\r\n"), Ok(Some((args(&["PING"]), 6))));
        assert_eq!(one(&mut c, b"PING\n"), Ok(Some((args(&["PING"]), 5))));
        assert_eq!(
            one(&mut c, b"  SET\tk  v \r\n"),
            Ok(Some((args(&["SET", "k", "v"]), 13)))
        );
        // Quotes are plain bytes.
        assert_eq!(
            one(&mut c, b"ECHO \"a b\"\n"),
            Ok(Some((args(&["ECHO", "\"a", "b\""]), 11)))
        );
        let (cmd, _) = c.decode(b"get k\n").unwrap().unwrap();
        assert!(cmd.is_inline());
        assert!(cmd.name().unwrap().eq_ignore_ascii_case(b"GET"));
    }

    #[test]
    fn empty_commands() {
        let mut c = RespCodec::new();
        assert_eq!(one(&mut c, b"\r\n"), Ok(Some((Vec::new(), 2))));
        assert_eq!(one(&mut c, b"   \n"), Ok(Some((Vec::new(), 4))));
        assert_eq!(one(&mut c, b"*0\r\n"), Ok(Some((Vec::new(), 4))));
        assert_eq!(one(&mut c, b"*-1\r\n"), Ok(Some((Vec::new(), 5))));
        let (cmd, _) = c.decode(b"*0\r\n").unwrap().unwrap();
        assert!(cmd.is_empty());
        assert_eq!(cmd.name(), None);
    }

    #[test]
    fn partial_commands() {
        let mut c = RespCodec::new();
        let wire = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        for end in 0..wire.len() {
            assert_eq!(one(&mut c, &wire[..end]), Ok(None), "prefix of {end} bytes");
        }
        assert_eq!(
            one(&mut c, wire),
            Ok(Some((args(&["GET", "k"]), wire.len())))
        );
        assert_eq!(one(&mut c, b"PIN"), Ok(None));
    }

    #[test]
    fn pipelined_commands() {
        let mut c = RespCodec::new();
        let wire = b"*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*1\r\n$3\r\nGE";
        let mut off = 0;
        let mut cmds = Vec::new();
        while let Some((cmd, n)) = one(&mut c, &wire[off..]).unwrap() {
            cmds.push(cmd);
            off += n;
        }
        assert_eq!(
            cmds,
            vec![args(&["PING"]), args(&["PING"]), args(&["ECHO", "hi"])]
        );
        assert_eq!(&wire[off..], b"*1\r\n$3\r\nGE");
    }

    #[test]
    fn bad_type_byte_in_array() {
        let mut c = RespCodec::new();
        assert_eq!(
            one(&mut c, b"*1\r\n+OK\r\n"),
            Err(RespError::ExpectedBulk { found: b'+' })
        );
        assert_eq!(
            one(&mut c, b"*2\r\n$1\r\na\r\n:1\r\n"),
            Err(RespError::ExpectedBulk { found: b':' })
        );
    }

    #[test]
    fn bad_lengths() {
        let mut c = RespCodec::new();
        for wire in [
            &b"*x\r\n"[..],
            b"*\r\n",
            b"*-\r\n",
            b"*1-\r\n",
            b"*-2\r\n",
            b"* 1\r\n",
            b"*99999999999999999999\r\n",
        ] {
            assert_eq!(
                one(&mut c, wire),
                Err(RespError::InvalidMultibulkLength),
                "{wire:?}"
            );
        }
        for wire in [
            &b"*1\r\n$x\r\n"[..],
            b"*1\r\n$-1\r\n",
            b"*1\r\n$-5\r\n",
            b"*1\r\n$\r\n",
            b"*1\r\n$1a\r\n",
        ] {
            assert_eq!(
                one(&mut c, wire),
                Err(RespError::InvalidBulkLength),
                "{wire:?}"
            );
        }
        // Garbage is refused as soon as it arrives, before any `\r\n`.
        assert_eq!(one(&mut c, b"*1x"), Err(RespError::InvalidMultibulkLength));
        assert_eq!(one(&mut c, b"*1\r\n$y"), Err(RespError::InvalidBulkLength));
    }

    #[test]
    fn missing_crlf() {
        let mut c = RespCodec::new();
        assert_eq!(one(&mut c, b"*1\rX"), Err(RespError::MissingCrlf));
        assert_eq!(one(&mut c, b"*1\r\n$3\rX"), Err(RespError::MissingCrlf));
        assert_eq!(
            one(&mut c, b"*1\r\n$3\r\nGETX\r\n"),
            Err(RespError::MissingCrlf)
        );
        assert_eq!(
            one(&mut c, b"*1\r\n$3\r\nGET\rX"),
            Err(RespError::MissingCrlf)
        );
        assert_eq!(
            one(&mut c, b"*1\r\n$3\r\nGET\n\r"),
            Err(RespError::MissingCrlf)
        );
    }

    #[test]
    fn bulk_limit() {
        let mut c = RespCodec::new().with_max_bulk_length(3);
        assert_eq!(
            one(&mut c, b"*1\r\n$3\r\nabc\r\n"),
            Ok(Some((args(&["abc"]), 13)))
        );
        // Refused from the length line alone.
        assert_eq!(
            one(&mut c, b"*1\r\n$4\r\n"),
            Err(RespError::BulkTooLong { max: 3 })
        );
    }

    #[test]
    fn argument_limit() {
        let mut c = RespCodec::new().with_max_arguments(2);
        assert_eq!(
            one(&mut c, b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
            Ok(Some((args(&["a", "b"]), 18)))
        );
        assert_eq!(
            one(&mut c, b"*3\r\n"),
            Err(RespError::TooManyArguments { max: 2 })
        );
        assert_eq!(one(&mut c, b"a b\n"), Ok(Some((args(&["a", "b"]), 4))));
        assert_eq!(
            one(&mut c, b"a b c\n"),
            Err(RespError::TooManyArguments { max: 2 })
        );
    }

    #[test]
    fn inline_limit() {
        let mut c = RespCodec::new().with_max_inline_length(4);
        assert_eq!(one(&mut c, b"PING\r\n"), Ok(Some((args(&["PING"]), 6))));
        assert_eq!(one(&mut c, b"PING"), Ok(None));
        assert_eq!(
            one(&mut c, b"PINGS"),
            Err(RespError::InlineTooLong { max: 4 })
        );
    }

    #[test]
    fn command_limit() {
        // `*1\r\n$3\r\nabc\r\n` is 13 bytes.
        let mut c = RespCodec::new().with_max_command_length(13);
        assert_eq!(
            one(&mut c, b"*1\r\n$3\r\nabc\r\n"),
            Ok(Some((args(&["abc"]), 13)))
        );
        assert_eq!(
            one(&mut c, b"*1\r\n$4\r\nabcd\r"),
            Err(RespError::CommandTooLong { max: 13 })
        );
        assert_eq!(one(&mut c, b"*1\r\n$4\r\nabc"), Ok(None));
        let mut c = RespCodec::new().with_max_command_length(3);
        assert_eq!(
            one(&mut c, b"*1\r"),
            Err(RespError::CommandTooLong { max: 3 })
        );
    }

    #[test]
    fn long_bulk_in_small_pieces() {
        let mut c = RespCodec::new();
        let mut wire = Vec::new();
        encode_command(&mut wire, &[b"SET", b"key", &[b'v'; 100_000]]);
        for end in (0..wire.len()).step_by(7) {
            assert_eq!(c.decode(&wire[..end]), Ok(None));
        }
        let (cmd, n) = c.decode(&wire).unwrap().unwrap();
        assert_eq!(n, wire.len());
        assert_eq!(cmd.args().nth(2).unwrap().len(), 100_000);
    }

    #[test]
    fn reply_encoders() {
        let mut out = Vec::new();
        encode_simple_string(&mut out, b"OK");
        encode_simple_string(&mut out, b"a\r\nb");
        encode_error(&mut out, b"ERR bad\nthing");
        encode_integer(&mut out, 0);
        encode_integer(&mut out, i64::MIN);
        encode_bulk(&mut out, b"");
        encode_null_bulk(&mut out);
        encode_array_header(&mut out, 12);
        encode_null_array(&mut out);
        let expected: &[u8] = b"+OK\r\n+a  b\r\n-ERR bad thing\r\n:0\r\n:-9223372036854775808\r\n\
                                $0\r\n\r\n$-1\r\n*12\r\n*-1\r\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn encode_command_round_trip() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET", b"k", b"v\r\n"]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n");
        let mut c = RespCodec::new();
        assert_eq!(
            one(&mut c, &out),
            Ok(Some((args(&["SET", "k", "v\r\n"]), out.len())))
        );
    }
}
