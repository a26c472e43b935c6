//! The codec of a protocol without frames: whatever bytes arrived are one frame.
//!
//! A byte stream (echo, a proxy) has nothing to find in its input, but going through the same
//! [`framing`](crate::framing) loop as every other handler keeps one shape for all of them. It
//! costs nothing: the codec is zero-sized and a frame is the input slice itself.

use std::convert::Infallible;

use super::Decoder;

/// Every non-empty input is one frame: all of it.
///
/// ```
/// use evdrive_protocols::codec::{BytesCodec, Decoder};
///
/// assert_eq!(BytesCodec.decode(b"abc").unwrap(), Some((&b"abc"[..], 3)));
/// assert_eq!(BytesCodec.decode(b"").unwrap(), None);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct BytesCodec;

impl Decoder for BytesCodec {
    type Frame<'a> = &'a [u8];
    type Error = Infallible;

    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(&'a [u8], usize)>, Infallible> {
        Ok((!buf.is_empty()).then_some((buf, buf.len())))
    }

    fn reset(&mut self) {}
}
