//! The request decoder: arrays of bulk strings and inline commands, every size limited.

use super::command::{is_space, Form, RespCommand};
use super::{
    RespError, DEFAULT_MAX_ARGUMENTS, DEFAULT_MAX_BULK_LENGTH, DEFAULT_MAX_COMMAND_LENGTH,
    DEFAULT_MAX_INLINE_LENGTH,
};
use crate::codec::lines::{scan_line, LineScan};
use crate::codec::Decoder;

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

impl RespCodec {
    /// A decoder with the default limits (see the [module documentation](super)).
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
