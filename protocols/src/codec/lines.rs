//! Lines ending in `\n` or `\r\n`, as typed into `nc` or `telnet`.
//!
//! A frame is the line without its terminator: `b"hello\r\n"` and `b"hello\n"` both give
//! `b"hello"`; an empty line gives an empty frame. Only a `\r` immediately before the `\n` is
//! part of the terminator; a `\r` elsewhere stays in the line. Lines are bytes, not `str`: a
//! handler that wants text checks UTF-8 itself.
//!
//! A line longer than the maximum (16 KiB by default, as Twisted's `LineReceiver`) is an error,
//! [`LinesError::MaxLineLengthExceeded`], raised as soon as the buffered bytes prove the line is
//! too long, without waiting for its end.
//!
//! # Example
//!
//! ```
//! use evdrive_protocols::codec::{Decoder, LinesCodec, LinesError};
//!
//! let mut codec = LinesCodec::with_max_length(8);
//! assert_eq!(codec.decode(b"hi\r\nthere")?, Some((&b"hi"[..], 4)));
//! assert_eq!(codec.decode(b"there")?, None); // no newline yet: wait for more
//! assert_eq!(codec.decode(b"there\n")?, Some((&b"there"[..], 6)));
//! assert_eq!(codec.decode(b"much too long"), Err(LinesError::MaxLineLengthExceeded { max: 8 }));
//!
//! let mut out = Vec::new();
//! LinesCodec::encode_line(b"bye", &mut out);
//! assert_eq!(out, b"bye\r\n");
//! # Ok::<(), LinesError>(())
//! ```
//!
//! # Implementation notes
//!
//! The decoder remembers how many bytes it has already searched for `\n`, so a 16 KiB line
//! delivered one byte per read is scanned once, not 16,384 times. It never looks further than
//! `max + 2` bytes (the longest line plus `\r\n`), so a limit error does not depend on how much
//! was read past the limit.

use std::fmt;

use super::Decoder;

/// Default maximum line length in bytes, terminator excluded (Twisted's `LineReceiver` uses the
/// same).
pub const DEFAULT_MAX_LINE_LENGTH: usize = 16 * 1024;

/// Decoder for lines ending in `\n` or `\r\n`, with a maximum line length.
#[derive(Debug, Clone)]
pub struct LinesCodec {
    /// The longest line accepted, in bytes, terminator excluded.
    max_length: usize,
    /// How many bytes at the front of the buffer are already known to hold no `\n`.
    ///
    /// Valid while the caller offers the same prefix again; zero after a frame or an error.
    scanned: usize,
}

/// Errors of [`LinesCodec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinesError {
    /// A line is longer than the maximum.
    MaxLineLengthExceeded {
        /// The maximum line length, terminator excluded.
        max: usize,
    },
}

impl fmt::Display for LinesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinesError::MaxLineLengthExceeded { max } => {
                write!(f, "line longer than the maximum of {max} bytes")
            }
        }
    }
}

impl std::error::Error for LinesError {}

impl LinesCodec {
    /// A codec accepting lines of up to [`DEFAULT_MAX_LINE_LENGTH`] bytes (16 KiB).
    pub fn new() -> Self {
        Self::with_max_length(DEFAULT_MAX_LINE_LENGTH)
    }

    /// A codec accepting lines of up to `max_length` bytes, terminator excluded.
    pub fn with_max_length(max_length: usize) -> Self {
        LinesCodec {
            max_length,
            scanned: 0,
        }
    }

    /// The longest line accepted, terminator excluded.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Appends `line` and `\r\n` to `dst`.
    ///
    /// `\r\n` displays correctly in both `nc` and `telnet`, and [`LinesCodec`] accepts it.
    /// The caller keeps `\n` out of `line` (it would end the line early for the receiver).
    pub fn encode_line(line: &[u8], dst: &mut Vec<u8>) {
        dst.reserve(line.len() + 2);
        dst.extend_from_slice(line);
        dst.extend_from_slice(b"\r\n");
    }
}

impl Default for LinesCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for LinesCodec {
    type Frame<'a> = &'a [u8];
    type Error = LinesError;

    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(&'a [u8], usize)>, LinesError> {
        match scan_line(buf, &mut self.scanned, self.max_length) {
            LineScan::Found { end, next } => Ok(Some((&buf[..end], next))),
            LineScan::Partial => Ok(None),
            LineScan::TooLong => Err(LinesError::MaxLineLengthExceeded {
                max: self.max_length,
            }),
        }
    }

    fn reset(&mut self) {
        self.scanned = 0;
    }
}

/// What [`scan_line`] found at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineScan {
    /// A whole line: its content is `buf[..end]`, the next line starts at `next`.
    Found {
        /// End of the content, terminator excluded.
        end: usize,
        /// Just past the `\n`.
        next: usize,
    },
    /// No newline yet and the line may still fit.
    Partial,
    /// The line is, or will be, longer than the maximum.
    TooLong,
}

/// Looks for the first line of `buf`, whose content may be at most `max` bytes long.
///
/// `scanned` is the progress memory: bytes before it are known to hold no `\n`. It is updated on
/// `Partial` and reset to zero on the other outcomes. Only the first `max + 2` bytes are looked
/// at, so the outcome depends on the stream, not on how much of it has arrived.
pub(crate) fn scan_line(buf: &[u8], scanned: &mut usize, max: usize) -> LineScan {
    // The longest acceptable line with its `\r\n`: nothing past it can matter.
    let window = &buf[..buf.len().min(max.saturating_add(2))];
    // A stale `scanned` (caller broke the contract) must not index out of bounds.
    let start = (*scanned).min(window.len());
    if let Some(i) = window[start..].iter().position(|&b| b == b'\n') {
        let newline = start + i;
        *scanned = 0;
        let end = if newline > 0 && window[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        return if end > max {
            LineScan::TooLong
        } else {
            LineScan::Found {
                end,
                next: newline + 1,
            }
        };
    }
    // No newline. The content is at least the window, less a trailing `\r` that may be the
    // start of `\r\n`; once that exceeds `max`, no later byte can save the line.
    let at_least = window.len() - usize::from(window.last() == Some(&b'\r'));
    if at_least > max {
        *scanned = 0;
        LineScan::TooLong
    } else {
        *scanned = window.len();
        LineScan::Partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_one(
        codec: &mut LinesCodec,
        buf: &[u8],
    ) -> Result<Option<(Vec<u8>, usize)>, LinesError> {
        codec
            .decode(buf)
            .map(|o| o.map(|(line, n)| (line.to_vec(), n)))
    }

    #[test]
    fn lf_and_crlf_terminators() {
        let mut c = LinesCodec::new();
        assert_eq!(decode_one(&mut c, b"abc\n"), Ok(Some((b"abc".to_vec(), 4))));
        assert_eq!(
            decode_one(&mut c, b"abc\r\n"),
            Ok(Some((b"abc".to_vec(), 5)))
        );
        // A `\r` not before `\n` stays in the line.
        assert_eq!(
            decode_one(&mut c, b"a\rb\n"),
            Ok(Some((b"a\rb".to_vec(), 4)))
        );
        assert_eq!(
            decode_one(&mut c, b"ab\r\r\n"),
            Ok(Some((b"ab\r".to_vec(), 5)))
        );
    }

    #[test]
    fn empty_lines() {
        let mut c = LinesCodec::new();
        assert_eq!(decode_one(&mut c, b"\n"), Ok(Some((Vec::new(), 1))));
        assert_eq!(decode_one(&mut c, b"\r\n"), Ok(Some((Vec::new(), 2))));
        assert_eq!(decode_one(&mut c, b""), Ok(None));
        assert_eq!(decode_one(&mut c, b"\r"), Ok(None));
    }

    #[test]
    fn partial_then_complete() {
        let mut c = LinesCodec::new();
        assert_eq!(decode_one(&mut c, b"hel"), Ok(None));
        assert_eq!(decode_one(&mut c, b"hello"), Ok(None));
        assert_eq!(decode_one(&mut c, b"hello\r"), Ok(None));
        assert_eq!(
            decode_one(&mut c, b"hello\r\nx"),
            Ok(Some((b"hello".to_vec(), 7)))
        );
        // Progress was reset by the frame.
        assert_eq!(decode_one(&mut c, b"x\n"), Ok(Some((b"x".to_vec(), 2))));
    }

    #[test]
    fn pipelined_lines() {
        let mut c = LinesCodec::new();
        let buf = b"one\ntwo\r\n\nthree";
        let mut off = 0;
        let mut lines = Vec::new();
        while let Some((line, n)) = c.decode(&buf[off..]).unwrap() {
            lines.push(line.to_vec());
            off += n;
        }
        assert_eq!(lines, vec![b"one".to_vec(), b"two".to_vec(), Vec::new()]);
        assert_eq!(&buf[off..], b"three");
    }

    #[test]
    fn exactly_at_the_limit() {
        let mut c = LinesCodec::with_max_length(4);
        assert_eq!(
            decode_one(&mut c, b"abcd\n"),
            Ok(Some((b"abcd".to_vec(), 5)))
        );
        assert_eq!(
            decode_one(&mut c, b"abcd\r\n"),
            Ok(Some((b"abcd".to_vec(), 6)))
        );
        // Four bytes and a `\r` may still be a line of four.
        assert_eq!(decode_one(&mut c, b"abcd"), Ok(None));
        assert_eq!(decode_one(&mut c, b"abcd\r"), Ok(None));
    }

    #[test]
    fn one_over_the_limit() {
        let tl = Err(LinesError::MaxLineLengthExceeded { max: 4 });
        let mut c = LinesCodec::with_max_length(4);
        assert_eq!(decode_one(&mut c, b"abcde\n"), tl);
        assert_eq!(decode_one(&mut c, b"abcde\r\n"), tl);
        // Raised before the end of the line arrives.
        assert_eq!(decode_one(&mut c, b"abcde"), tl);
        assert_eq!(decode_one(&mut c, b"abcd\rx"), tl);
        let mut c = LinesCodec::with_max_length(0);
        assert_eq!(decode_one(&mut c, b"\r\n"), Ok(Some((Vec::new(), 2))));
        assert_eq!(
            decode_one(&mut c, b"a"),
            Err(LinesError::MaxLineLengthExceeded { max: 0 })
        );
    }

    #[test]
    fn byte_at_a_time_long_line() {
        let mut c = LinesCodec::new();
        let mut line = vec![b'x'; DEFAULT_MAX_LINE_LENGTH];
        for i in 1..=line.len() {
            assert_eq!(c.decode(&line[..i]), Ok(None));
        }
        line.push(b'\n');
        assert_eq!(
            c.decode(&line).unwrap().unwrap().1,
            DEFAULT_MAX_LINE_LENGTH + 1
        );
    }

    #[test]
    fn stale_progress_does_not_panic() {
        let mut c = LinesCodec::new();
        assert_eq!(c.decode(b"abcdefgh"), Ok(None));
        // Contract broken: a shorter buffer. The answer may be wrong, but nothing panics.
        let _ = c.decode(b"a\n");
        c.reset();
        assert_eq!(decode_one(&mut c, b"b\n"), Ok(Some((b"b".to_vec(), 2))));
    }

    #[test]
    fn encode_round_trip() {
        let mut out = Vec::new();
        LinesCodec::encode_line(b"", &mut out);
        LinesCodec::encode_line(b"abc", &mut out);
        assert_eq!(out, b"\r\nabc\r\n");
        let mut c = LinesCodec::new();
        assert_eq!(decode_one(&mut c, &out), Ok(Some((Vec::new(), 2))));
        assert_eq!(
            decode_one(&mut c, &out[2..]),
            Ok(Some((b"abc".to_vec(), 5)))
        );
    }
}
