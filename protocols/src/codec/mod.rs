//! Framing codecs: turning a byte stream into frames, and frames back into bytes.
//!
//! Four codecs live here, each with a maximum frame size that is on by default, and one that
//! frames nothing:
//!
//! | module | frames | default limits |
//! |---|---|---|
//! | [`bytes`] | whatever arrived, as it arrived (echo) | none needed: nothing is buffered |
//! | [`lines`] | lines ending in `\n` or `\r\n` | 16 KiB per line |
//! | [`length`] | length-prefixed frames, 1-, 2- or 4-byte big-endian header | 64 KiB per frame |
//! | [`resp`] | Redis (RESP2) requests: arrays of bulk strings and inline commands | 1 MiB per argument, 1024 arguments, 2 MiB per command |
//! | [`resp::ReplyCodec`] | Redis (RESP2) replies, for clients: every type, nested arrays | 1 MiB per bulk string, 1024 elements, 8 levels of nesting, 64 KiB status lines |
//! | [`http`] | HTTP/1.1 requests (head parsed by `httparse`) | 8 KiB head, 64 headers, 1 MiB body |
//!
//! # The decoding contract
//!
//! A handler's `on_data` receives every byte received and not yet consumed: the unconsumed
//! tail from the last call followed by the new bytes. It returns how many bytes it consumed, and
//! the rest is offered again with more bytes appended. A [`Decoder`] fits that shape: it reads
//! a byte slice it does not own and says how much of it one frame used.
//!
//! ```text
//!   data offered to on_data
//!   ┌────────────┬────────────┬──────────────┐
//!   │  frame 1   │  frame 2   │ half frame 3 │
//!   └────────────┴────────────┴──────────────┘
//!   decode → Some((f1, n1))   decode → Some((f2, n2))   decode → None
//!   on_data returns n1 + n2; the half frame is offered again with more bytes behind it
//! ```
//!
//! [`Decoder::decode`] returns:
//! - `Ok(Some((frame, consumed)))`: one whole frame from the front of the slice, and the number
//!   of bytes it used (never zero);
//! - `Ok(None)`: the slice holds only part of a frame; call again with the same bytes plus more;
//! - `Err(e)`: the peer broke the protocol (malformed input, a frame over the maximum). The
//!   connection must be closed; the decoder is not meant to be used on that stream again.
//!
//! Frames borrow from the input wherever they can (a line is a sub-slice of the input, an HTTP
//! header value too), so decoding copies nothing. The one exception is a chunked HTTP body with
//! several chunks, which has to be assembled.
//!
//! ## Why slices and not an owned buffer
//!
//! The reactor reads every socket into one scratch buffer shared by all connections, and a
//! connection owns input memory only while it holds an unfinished frame. A decoder that owned
//! its input (as tokio-util's `BytesMut`-based codecs do) would force every connection to keep a
//! buffer of its own, and every byte to be copied into it. With slices, the common case (whole
//! frames in one read) copies nothing, and an idle connection holds no input buffer at all.
//!
//! ## Progress state
//!
//! A decoder may remember how far it got between calls that return `Ok(None)` (for instance
//! "the first 9,000 bytes hold no newline"), so a long frame that arrives a byte at a time costs
//! linear, not quadratic, time. That memory is valid only because the next call sees the same
//! prefix plus more bytes; it is cleared when a frame or an error is returned. A caller that
//! throws buffered bytes away must call [`Decoder::reset`]. A decoder never panics if that rule is
//! broken, it may only misjudge where a frame ends.
//!
//! ## Limits
//!
//! Every limit is enforced as soon as the buffered part of a frame proves the frame will be too
//! large (a length header over the maximum, 16 KiB without a newline), not when the frame ends.
//! The outcome never depends on how the stream was split: decoding a buffer at once and
//! decoding it in pieces give the same frames and the same error (see [`split`], which the tests
//! and the fuzz targets use to check exactly that).
//!
//! # Example
//!
//! A handler's `on_data` in the shape the reactor expects (the handlers of this crate write it
//! with [`framing::serve`](crate::framing::serve), which is this loop):
//!
//! ```
//! use evdrive_protocols::codec::{Decoder, LinesCodec};
//!
//! struct Echo {
//!     codec: LinesCodec,
//!     out: Vec<u8>,
//! }
//!
//! impl Echo {
//!     /// Returns how many bytes were consumed, or `None` to close the connection.
//!     fn on_data(&mut self, data: &[u8]) -> Option<usize> {
//!         let mut consumed = 0;
//!         loop {
//!             match self.codec.decode(&data[consumed..]) {
//!                 // A whole line: answer it and look for the next one.
//!                 Ok(Some((line, n))) => {
//!                     consumed += n;
//!                     LinesCodec::encode_line(line, &mut self.out);
//!                 }
//!                 // Only part of a line is left: keep it for next time.
//!                 Ok(None) => return Some(consumed),
//!                 // Line too long: close.
//!                 Err(_) => return None,
//!             }
//!         }
//!     }
//! }
//!
//! let mut echo = Echo { codec: LinesCodec::new(), out: Vec::new() };
//! assert_eq!(echo.on_data(b"hello\r\nwor"), Some(7));
//! assert_eq!(echo.on_data(b"world\n"), Some(6));
//! assert_eq!(echo.out, b"hello\r\nworld\r\n");
//! ```

pub mod bytes;
pub mod http;
pub mod length;
pub mod lines;
mod num;
pub mod resp;
pub mod split;
pub mod ws;

pub use bytes::BytesCodec;
pub use http::{HttpCodec, HttpError, Request, Response};
pub use length::{HeaderWidth, LengthCodec, LengthError};
pub use lines::{LinesCodec, LinesError};
pub use resp::{RespCodec, RespCommand, RespError};

/// Decodes frames from the front of a byte slice that the caller owns.
///
/// See the [module documentation](self) for the contract in full.
pub trait Decoder {
    /// A decoded frame. It may borrow from the input slice (`'a`), never from the decoder.
    type Frame<'a>;

    /// A protocol violation; the connection must be closed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decodes one frame from the front of `buf`.
    ///
    /// `Ok(Some((frame, consumed)))` is a whole frame and the number of bytes of `buf` it used
    /// (at least one, at most `buf.len()`). `Ok(None)` means `buf` holds only part of a frame:
    /// call again with the same bytes plus more.
    ///
    /// # Errors
    ///
    /// The input breaks the protocol or a frame exceeds a limit. The connection must be closed.
    #[allow(clippy::type_complexity)]
    fn decode<'a>(
        &mut self,
        buf: &'a [u8],
    ) -> Result<Option<(Self::Frame<'a>, usize)>, Self::Error>;

    /// Forgets any progress made on an unfinished frame.
    ///
    /// Needed only when the caller drops buffered bytes instead of offering them again.
    fn reset(&mut self);
}
