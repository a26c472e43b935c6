//! Chunked bodies: a resumable parser that finds where the body ends, and the assembly of its
//! data (borrowed when it is one chunk).

use std::borrow::Cow;

use super::HttpError;

/// Where the chunked body parser is: each state names the next byte it expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChunkState {
    /// Hex digits of a chunk size.
    Size,
    /// Spaces after the size, before `;` or `\r`.
    SizeSpace,
    /// A chunk extension, ignored up to `\r`.
    Extension,
    /// The `\n` ending a size line.
    SizeLf,
    /// Chunk data, this many bytes left.
    Data(usize),
    /// The `\r` after chunk data.
    DataCr,
    /// The `\n` after chunk data.
    DataLf,
    /// The start of a trailer line, or of the final empty line.
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// The `\n` ending a trailer line.
    TrailerLf,
    /// The `\n` of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
}

/// Incremental parser for a chunked body; it is fed the same bytes again plus more, and
/// resumes where it stopped.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChunkedBody {
    /// Bytes of the body parsed so far.
    pub(super) pos: usize,
    /// What comes next.
    pub(super) state: ChunkState,
    /// The chunk size read so far.
    pub(super) size: u64,
    /// Hex digits read so far in the size (at most 16).
    pub(super) digits: u8,
}

impl ChunkedBody {
    /// A parser at the start of a body.
    pub(super) fn new() -> Self {
        ChunkedBody {
            pos: 0,
            state: ChunkState::Size,
            size: 0,
            digits: 0,
        }
    }

    /// Parses `body` from where the last call stopped; `on_data` gets the range of every piece
    /// of chunk data. Returns whether the body is complete, `self.pos` being its length.
    pub(super) fn advance(
        &mut self,
        body: &[u8],
        max_body: usize,
        mut on_data: impl FnMut(usize, usize),
    ) -> Result<bool, HttpError> {
        use ChunkState::*;
        while self.pos < body.len() {
            let b = body[self.pos];
            self.state = match (self.state, b) {
                // Chunk data is skipped by length, not byte by byte.
                (Data(left), _) => {
                    let n = left.min(body.len() - self.pos);
                    on_data(self.pos, self.pos + n);
                    self.pos += n;
                    self.state = if n == left { DataCr } else { Data(left - n) };
                    continue;
                }
                (Size, _) if b.is_ascii_hexdigit() => {
                    if self.digits == 16 {
                        return Err(HttpError::InvalidChunk);
                    }
                    self.digits += 1;
                    // 16 hex digits always fit a u64.
                    self.size = self.size << 4 | u64::from(hex_value(b));
                    Size
                }
                (Size, b' ' | b'\t') if self.digits > 0 => SizeSpace,
                (Size | SizeSpace, b';') if self.digits > 0 => Extension,
                (Size | SizeSpace | Extension, b'\r') if self.digits > 0 => SizeLf,
                (SizeSpace, b' ' | b'\t') => SizeSpace,
                (Extension, _) if !is_control(b) => Extension,
                (SizeLf, b'\n') => {
                    let size = std::mem::take(&mut self.size);
                    self.digits = 0;
                    if size == 0 {
                        TrailerStart
                    } else if size > max_body as u64 {
                        return Err(HttpError::BodyTooLarge { max: max_body });
                    } else {
                        Data(size as usize)
                    }
                }
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => Size,
                (TrailerStart, b'\r') => EndLf,
                (Trailer, b'\r') => TrailerLf,
                (TrailerStart | Trailer, _) if !is_control(b) => Trailer,
                (TrailerLf, b'\n') => TrailerStart,
                (EndLf, b'\n') => {
                    self.pos += 1;
                    self.state = Done;
                    return Ok(true);
                }
                // A bare LF, a control byte, a missing CRLF, anything after the end.
                _ => return Err(HttpError::InvalidChunk),
            };
            self.pos += 1;
        }
        Ok(self.state == Done)
    }
}

/// Value of a hex digit.
pub(super) fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Control bytes other than tab, which have no place in chunk extensions or trailers.
pub(super) fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// The data of a complete chunked body: borrowed if it is one chunk (or none), assembled
/// otherwise.
pub(super) fn assemble_chunked(body: &[u8], max_body: usize) -> Result<Cow<'_, [u8]>, HttpError> {
    let mut first: Option<(usize, usize)> = None;
    let mut assembled: Option<Vec<u8>> = None;
    let complete = ChunkedBody::new().advance(body, max_body, |start, end| {
        if let Some(v) = assembled.as_mut() {
            v.extend_from_slice(&body[start..end]);
        } else if let Some((s, e)) = first {
            let mut v = Vec::with_capacity(body.len());
            v.extend_from_slice(&body[s..e]);
            v.extend_from_slice(&body[start..end]);
            assembled = Some(v);
        } else {
            first = Some((start, end));
        }
    })?;
    if !complete {
        // The same bytes parsed complete a moment ago.
        return Err(HttpError::InvalidChunk);
    }
    Ok(match (assembled, first) {
        (Some(v), _) => Cow::Owned(v),
        (None, Some((s, e))) => Cow::Borrowed(&body[s..e]),
        (None, None) => Cow::Borrowed(&[]),
    })
}
