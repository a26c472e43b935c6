//! Length-prefixed frames: a 1-, 2- or 4-byte big-endian length, then that many bytes.
//!
//! ```text
//!   ┌──────────────┬──────────────────────┐
//!   │ len (BE, 4)  │ payload (len bytes)  │
//!   └──────────────┴──────────────────────┘
//! ```
//!
//! The length counts the payload only, not the header. A frame is the payload, borrowed from the
//! input. The maximum payload length is 64 KiB by default (at most 255 with a 1-byte header):
//! modest enough that a connection's unfinished frame stays small, large enough for typical
//! messages. A header announcing more than the maximum is an error as soon as the header
//! arrives, before any of the payload.
//!
//! # Example
//!
//! ```
//! use evdrive_protocols::codec::{Decoder, HeaderWidth, LengthCodec, LengthError};
//!
//! let mut codec = LengthCodec::new(HeaderWidth::U16);
//! let mut wire = Vec::new();
//! codec.encode(b"hello", &mut wire)?;
//! assert_eq!(wire, b"\x00\x05hello");
//!
//! assert_eq!(codec.decode(&wire[..4])?, None); // header and part of the payload
//! assert_eq!(codec.decode(&wire)?, Some((&b"hello"[..], 7)));
//!
//! // Reserve the header, write the payload in place, then patch the length in.
//! let mut out = Vec::new();
//! let start = codec.begin_frame(&mut out);
//! out.extend_from_slice(b"in place");
//! codec.finish_frame(&mut out, start)?;
//! assert_eq!(out, b"\x00\x08in place");
//! # Ok::<(), LengthError>(())
//! ```

use std::fmt;

use super::Decoder;

/// Default maximum payload length: 64 KiB.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 64 * 1024;

/// Width of the big-endian length header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderWidth {
    /// One byte: payloads of up to 255 bytes.
    U8,
    /// Two bytes: payloads of up to 65,535 bytes.
    U16,
    /// Four bytes: payloads of up to 4 GiB - 1 (bounded in practice by the maximum length).
    U32,
}

impl HeaderWidth {
    /// The header's size in bytes.
    pub const fn size(self) -> usize {
        match self {
            HeaderWidth::U8 => 1,
            HeaderWidth::U16 => 2,
            HeaderWidth::U32 => 4,
        }
    }

    /// The largest length the header can carry.
    pub const fn max_length(self) -> usize {
        match self {
            HeaderWidth::U8 => u8::MAX as usize,
            HeaderWidth::U16 => u16::MAX as usize,
            // Saturates on 16-bit targets, where it could not be reached anyway.
            HeaderWidth::U32 => {
                if usize::BITS >= 32 {
                    u32::MAX as usize
                } else {
                    usize::MAX
                }
            }
        }
    }

    /// Reads a header from the front of `buf`, which holds at least [`len`](Self::size) bytes.
    fn read(self, buf: &[u8]) -> u64 {
        buf[..self.size()]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    }

    /// Writes `len` (at most [`max_length`](Self::max_length)) as a header into `dst`.
    fn write(self, len: usize, dst: &mut [u8]) {
        let bytes = (len as u64).to_be_bytes();
        dst.copy_from_slice(&bytes[8 - self.size()..]);
    }
}

/// Codec for length-prefixed frames, with a maximum payload length.
#[derive(Debug, Clone)]
pub struct LengthCodec {
    /// Size and range of the length header.
    width: HeaderWidth,
    /// The longest payload accepted or written; never more than `width.max_length()`.
    max_length: usize,
}

/// Where [`LengthCodec::begin_frame`] reserved a header, to be patched by
/// [`LengthCodec::finish_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameStart {
    /// Offset of the reserved header in the output buffer.
    offset: usize,
}

/// Errors of [`LengthCodec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LengthError {
    /// A frame's payload is longer than the maximum: announced by a received header, or given
    /// to the encoder.
    FrameTooLarge {
        /// The payload length.
        len: u64,
        /// The maximum payload length.
        max: usize,
    },
    /// [`LengthCodec::finish_frame`] was given a start that is not inside the buffer.
    InvalidFrameStart,
}

impl fmt::Display for LengthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LengthError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max} bytes")
            }
            LengthError::InvalidFrameStart => f.write_str("frame start outside the buffer"),
        }
    }
}

impl std::error::Error for LengthError {}

impl LengthCodec {
    /// A codec with a `width` header and a maximum of 64 KiB, or the header's own maximum if
    /// smaller (255 bytes for [`HeaderWidth::U8`], 65,535 for [`HeaderWidth::U16`]).
    pub fn new(width: HeaderWidth) -> Self {
        Self::with_max_length(width, DEFAULT_MAX_FRAME_LENGTH)
    }

    /// A codec with a `width` header and a maximum payload of `max_length` bytes, lowered to the
    /// header's own maximum if it is larger.
    pub fn with_max_length(width: HeaderWidth, max_length: usize) -> Self {
        LengthCodec {
            width,
            max_length: max_length.min(width.max_length()),
        }
    }

    /// The header width.
    pub fn width(&self) -> HeaderWidth {
        self.width
    }

    /// The longest payload accepted.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Appends a header and `payload` to `dst`.
    ///
    /// # Errors
    ///
    /// [`LengthError::FrameTooLarge`] if `payload` is longer than the maximum; `dst` is then
    /// left unchanged.
    pub fn encode(&self, payload: &[u8], dst: &mut Vec<u8>) -> Result<(), LengthError> {
        self.check_length(payload.len())?;
        let header = dst.len();
        dst.resize(header + self.width.size(), 0);
        self.width.write(payload.len(), &mut dst[header..]);
        dst.extend_from_slice(payload);
        Ok(())
    }

    /// Reserves room for a header at the end of `dst`; write the payload after it, then call
    /// [`finish_frame`](Self::finish_frame). Saves copying a payload that is built in place.
    pub fn begin_frame(&self, dst: &mut Vec<u8>) -> FrameStart {
        let offset = dst.len();
        dst.resize(offset + self.width.size(), 0);
        FrameStart { offset }
    }

    /// Writes the header reserved at `start`, for a payload made of every byte after it.
    ///
    /// # Errors
    ///
    /// [`LengthError::FrameTooLarge`] if the payload is longer than the maximum, or
    /// [`LengthError::InvalidFrameStart`] if `start` does not come from
    /// [`begin_frame`](Self::begin_frame) on this buffer; in both cases `dst` is truncated back
    /// to where the frame started, so no half-written frame goes out.
    pub fn finish_frame(&self, dst: &mut Vec<u8>, start: FrameStart) -> Result<(), LengthError> {
        let payload_at = start.offset + self.width.size();
        if payload_at > dst.len() {
            dst.truncate(start.offset);
            return Err(LengthError::InvalidFrameStart);
        }
        let len = dst.len() - payload_at;
        if let Err(e) = self.check_length(len) {
            dst.truncate(start.offset);
            return Err(e);
        }
        self.width.write(len, &mut dst[start.offset..payload_at]);
        Ok(())
    }

    /// Fails if a payload of `len` bytes is over the maximum.
    fn check_length(&self, len: usize) -> Result<(), LengthError> {
        if len > self.max_length {
            Err(LengthError::FrameTooLarge {
                len: len as u64,
                max: self.max_length,
            })
        } else {
            Ok(())
        }
    }
}

impl Decoder for LengthCodec {
    type Frame<'a> = &'a [u8];
    type Error = LengthError;

    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(&'a [u8], usize)>, LengthError> {
        let header = self.width.size();
        if buf.len() < header {
            return Ok(None);
        }
        // Check the announced length before waiting for the payload.
        let len = self.width.read(buf);
        if len > self.max_length as u64 {
            return Err(LengthError::FrameTooLarge {
                len,
                max: self.max_length,
            });
        }
        // `len <= max_length <= usize::MAX`, so neither cast nor sum overflows.
        let end = header + len as usize;
        if buf.len() < end {
            return Ok(None);
        }
        Ok(Some((&buf[header..end], end)))
    }

    fn reset(&mut self) {
        // Stateless: every call reads the header again, which costs a few bytes.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_round_trip() {
        for width in [HeaderWidth::U8, HeaderWidth::U16, HeaderWidth::U32] {
            let mut codec = LengthCodec::new(width);
            let mut wire = Vec::new();
            codec.encode(b"abc", &mut wire).unwrap();
            codec.encode(b"", &mut wire).unwrap();
            assert_eq!(wire.len(), 2 * width.size() + 3);
            let (frame, n) = codec.decode(&wire).unwrap().unwrap();
            assert_eq!((frame, n), (&b"abc"[..], width.size() + 3));
            let (frame, m) = codec.decode(&wire[n..]).unwrap().unwrap();
            assert_eq!((frame, m), (&b""[..], width.size()));
        }
    }

    #[test]
    fn big_endian_headers() {
        let mut out = Vec::new();
        LengthCodec::new(HeaderWidth::U32)
            .encode(&[7; 258], &mut out)
            .unwrap();
        assert_eq!(&out[..4], &[0, 0, 1, 2]);
        let mut out = Vec::new();
        LengthCodec::new(HeaderWidth::U16)
            .encode(&[7; 258], &mut out)
            .unwrap();
        assert_eq!(&out[..2], &[1, 2]);
    }

    #[test]
    fn partial_header_and_payload() {
        let mut codec = LengthCodec::new(HeaderWidth::U32);
        assert_eq!(codec.decode(b""), Ok(None));
        assert_eq!(codec.decode(b"\0\0\0"), Ok(None));
        assert_eq!(codec.decode(b"\0\0\0\x02a"), Ok(None));
        assert_eq!(codec.decode(b"\0\0\0\x02ab\0"), Ok(Some((&b"ab"[..], 6))));
    }

    #[test]
    fn limit_exactly_and_one_over() {
        let mut codec = LengthCodec::with_max_length(HeaderWidth::U16, 3);
        assert_eq!(codec.decode(b"\0\x03abc"), Ok(Some((&b"abc"[..], 5))));
        // Refused from the header alone.
        assert_eq!(
            codec.decode(b"\0\x04"),
            Err(LengthError::FrameTooLarge { len: 4, max: 3 })
        );
        let mut out = Vec::new();
        assert_eq!(
            codec.encode(b"abcd", &mut out),
            Err(LengthError::FrameTooLarge { len: 4, max: 3 })
        );
        assert!(out.is_empty());
        assert_eq!(
            codec.decode(b"\xff\xff"),
            Err(LengthError::FrameTooLarge { len: 65535, max: 3 })
        );
    }

    #[test]
    fn max_is_bounded_by_the_header() {
        assert_eq!(LengthCodec::new(HeaderWidth::U8).max_length(), 255);
        assert_eq!(LengthCodec::new(HeaderWidth::U16).max_length(), 65535);
        assert_eq!(
            LengthCodec::new(HeaderWidth::U32).max_length(),
            DEFAULT_MAX_FRAME_LENGTH
        );
        let codec = LengthCodec::with_max_length(HeaderWidth::U8, 1000);
        let mut out = Vec::new();
        assert!(codec.encode(&[0; 256], &mut out).is_err());
        assert!(codec.encode(&[0; 255], &mut out).is_ok());
        assert_eq!(out[0], 255);
    }

    #[test]
    fn huge_u32_header_is_refused() {
        let mut codec = LengthCodec::new(HeaderWidth::U32);
        assert_eq!(
            codec.decode(b"\xff\xff\xff\xff"),
            Err(LengthError::FrameTooLarge {
                len: u32::MAX as u64,
                max: DEFAULT_MAX_FRAME_LENGTH
            })
        );
    }

    #[test]
    fn pipelined_frames() {
        let mut codec = LengthCodec::new(HeaderWidth::U8);
        let wire = b"\x01a\x02bc\x00\x03de";
        let mut off = 0;
        let mut frames = Vec::new();
        while let Some((f, n)) = codec.decode(&wire[off..]).unwrap() {
            frames.push(f);
            off += n;
        }
        assert_eq!(frames, vec![&b"a"[..], b"bc", b""]);
        assert_eq!(&wire[off..], b"\x03de");
    }

    #[test]
    fn begin_and_finish_frame() {
        let codec = LengthCodec::with_max_length(HeaderWidth::U16, 4);
        let mut out = b"xy".to_vec();
        let start = codec.begin_frame(&mut out);
        out.extend_from_slice(b"abc");
        codec.finish_frame(&mut out, start).unwrap();
        assert_eq!(out, b"xy\x00\x03abc");
        // Too long: the frame is taken back out.
        let start = codec.begin_frame(&mut out);
        out.extend_from_slice(b"abcde");
        assert_eq!(
            codec.finish_frame(&mut out, start),
            Err(LengthError::FrameTooLarge { len: 5, max: 4 })
        );
        assert_eq!(out, b"xy\x00\x03abc");
        // A start from elsewhere.
        let mut other = Vec::new();
        assert_eq!(
            codec.finish_frame(&mut other, start),
            Err(LengthError::InvalidFrameStart)
        );
    }
}
