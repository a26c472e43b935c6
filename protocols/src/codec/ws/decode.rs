//! The frame decoder: client frames in, whole messages and control frames out.
//!
//! # Implementation notes
//!
//! A frame is checked field by field as its bytes arrive, each rule as soon as the bytes it
//! needs are there: the first byte (reserved bits, opcode, fragmentation rules), the second
//! (the mask bit), the extended length (limits), and only then the payload (UTF-8, close code).
//! Each check looks at a fixed prefix of the frame and the checks run in stream order, so the
//! first fault in the stream is the one reported however the stream was cut.
//!
//! Nothing is remembered between calls that return `Ok(None)`: re-reading a header of at most
//! 14 bytes costs less than keeping it, and the payload is only read once it is all there, so a
//! frame arriving a byte at a time still costs linear time.
//!
//! A payload is unmasked into a buffer of its own, since the input slice is not ours to change;
//! so unlike the other codecs, the frames own their bytes. Fragments of a message are appended
//! to one buffer and the decoder yields [`Incoming::Fragment`] for each but the last, so the
//! caller drops their bytes at once: a connection holds at most one frame of raw input plus
//! one message being assembled.

use super::close;
use super::message::{CloseFrame, Incoming, Message, Opcode};
use super::WsError;
use crate::codec::Decoder;

/// Default maximum payload of one data frame: 1 MiB.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 1024 * 1024;
/// Default maximum size of a reassembled message: 1 MiB.
pub const DEFAULT_MAX_MESSAGE_LENGTH: usize = 1024 * 1024;
/// The largest payload a control frame may carry (RFC 6455 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Decoder for the frames a WebSocket client sends (RFC 6455, server side), with limits on
/// frame and message size.
///
/// Its [`Decoder::Frame`] is an [`Incoming`]: a [`Message`] (text, binary, ping, pong, close)
/// or a note that a fragment was consumed. Every violation of the RFC is an error carrying the
/// close code to answer with ([`WsError::close_code`]).
///
/// Non-minimal length encodings (a 5-byte payload announced with the 16-bit form) are
/// accepted: RFC 6455 5.2 requires the minimal form of the sender only, refusing them would
/// protect nothing, and the limits apply to the length whatever its form.
///
/// # Example
///
/// ```
/// use evdrive_protocols::codec::ws::{encode_frame, Incoming, Message, Opcode, WsCodec};
/// use evdrive_protocols::codec::Decoder;
///
/// // A text message in two fragments, as a client masks them, with a ping in between.
/// let mask = Some([1, 2, 3, 4]);
/// let mut wire = Vec::new();
/// encode_frame(false, Opcode::Text, b"hel", mask, &mut wire);
/// encode_frame(true, Opcode::Ping, b"?", mask, &mut wire);
/// encode_frame(true, Opcode::Continuation, b"lo", mask, &mut wire);
///
/// let mut codec = WsCodec::new();
/// let mut got = Vec::new();
/// let mut consumed = 0;
/// while let Some((incoming, n)) = codec.decode(&wire[consumed..])? {
///     consumed += n;
///     got.push(incoming);
/// }
/// assert_eq!(consumed, wire.len());
/// assert_eq!(got, [
///     Incoming::Fragment,
///     Incoming::Message(Message::Ping(b"?".to_vec())),
///     Incoming::Message(Message::Text("hello".into())),
/// ]);
/// # Ok::<(), evdrive_protocols::codec::ws::WsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct WsCodec {
    /// Largest payload accepted in one data frame.
    max_frame: usize,
    /// Largest message accepted once its fragments are put together.
    max_message: usize,
    /// The fragmented message being assembled, from its first frame until its final one.
    partial: Option<Partial>,
    /// Set once a close frame has been yielded: the peer may send nothing after it.
    closed: bool,
}

/// A text or binary message whose final fragment has not arrived.
#[derive(Debug, Clone)]
struct Partial {
    /// Whether the first fragment was text, so the whole must be UTF-8.
    text: bool,
    /// The unmasked payloads of the fragments so far.
    payload: Vec<u8>,
    /// For text: `payload[..checked]` is valid UTF-8 and ends on a character boundary; what
    /// follows is at most the first 3 bytes of a character cut by a fragment boundary.
    checked: usize,
}

/// A frame header, parsed and checked.
#[derive(Debug, Clone, Copy)]
struct Header {
    /// The FIN bit: the last frame of a message.
    fin: bool,
    /// What the payload is.
    opcode: Opcode,
    /// Bytes of header, masking key included.
    len: usize,
    /// The payload's length, within the limits.
    payload_len: usize,
    /// The masking key.
    mask: [u8; 4],
}

impl WsCodec {
    /// A decoder with the default limits: [`DEFAULT_MAX_FRAME_LENGTH`] and
    /// [`DEFAULT_MAX_MESSAGE_LENGTH`].
    pub fn new() -> Self {
        WsCodec {
            max_frame: DEFAULT_MAX_FRAME_LENGTH,
            max_message: DEFAULT_MAX_MESSAGE_LENGTH,
            partial: None,
            closed: false,
        }
    }

    /// Sets the largest payload of one data frame ([`WsError::FrameTooLarge`] beyond it).
    pub fn with_max_frame_length(mut self, max: usize) -> Self {
        self.max_frame = max;
        self
    }

    /// Sets the largest reassembled message ([`WsError::MessageTooLarge`] beyond it).
    pub fn with_max_message_length(mut self, max: usize) -> Self {
        self.max_message = max;
        self
    }

    /// The largest payload of one data frame.
    pub fn max_frame_length(&self) -> usize {
        self.max_frame
    }

    /// The largest reassembled message.
    pub fn max_message_length(&self) -> usize {
        self.max_message
    }

    /// Whether a close frame has been decoded (the peer may send nothing more).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Parses and checks the header at the front of `buf`; `Ok(None)` if it is not all there.
    fn header(&self, buf: &[u8]) -> Result<Option<Header>, WsError> {
        // Step 1: the first byte. FIN, three reserved bits, the opcode; the rules about
        // fragmentation depend only on it and on whether a message is open.
        let Some(&b0) = buf.first() else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x7;
        if rsv != 0 {
            return Err(WsError::ReservedBits(rsv));
        }
        let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(WsError::UnknownOpcode(b0 & 0x0F))?;
        match opcode {
            op if op.is_control() && !fin => return Err(WsError::FragmentedControl),
            Opcode::Continuation if self.partial.is_none() => {
                return Err(WsError::UnexpectedContinuation)
            }
            Opcode::Text | Opcode::Binary if self.partial.is_some() => {
                return Err(WsError::ExpectedContinuation)
            }
            _ => {}
        }

        // Step 2: the second byte. The mask bit, required from clients, and the 7-bit length
        // telling whether a 16- or 64-bit length follows.
        let Some(&b1) = buf.get(1) else {
            return Ok(None);
        };
        if b1 & 0x80 == 0 {
            return Err(WsError::Unmasked);
        }
        let (ext, len) = match b1 & 0x7F {
            126 => {
                let Some(b) = buf.get(2..4) else {
                    return Ok(None);
                };
                (2, u64::from(u16::from_be_bytes([b[0], b[1]])))
            }
            127 => {
                let Some(b) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut be = [0; 8];
                be.copy_from_slice(b);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(WsError::LengthOverflow);
                }
                (8, len)
            }
            short => (0, u64::from(short)),
        };

        // Step 3: the limits, as soon as the length is known, before any payload is buffered.
        if opcode.is_control() {
            if len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(WsError::ControlTooLong(len));
            }
        } else {
            if len > self.max_frame as u64 {
                return Err(WsError::FrameTooLarge {
                    len,
                    max: self.max_frame,
                });
            }
            let assembled = self.partial.as_ref().map_or(0, |p| p.payload.len()) as u64;
            let total = assembled.saturating_add(len);
            if total > self.max_message as u64 {
                return Err(WsError::MessageTooLarge {
                    len: total,
                    max: self.max_message,
                });
            }
        }
        // Within a `usize` limit (or 125), so this cannot fail; checked all the same.
        let payload_len = usize::try_from(len).map_err(|_| WsError::FrameTooLarge {
            len,
            max: self.max_frame,
        })?;

        // Step 4: the masking key.
        let Some(key) = buf.get(2 + ext..6 + ext) else {
            return Ok(None);
        };
        Ok(Some(Header {
            fin,
            opcode,
            len: 6 + ext,
            payload_len,
            mask: [key[0], key[1], key[2], key[3]],
        }))
    }

    /// Handles a whole text, binary or continuation frame: yields the message it completes, or
    /// keeps it as a fragment.
    fn data(&mut self, header: Header, payload: Vec<u8>) -> Result<Incoming, WsError> {
        // The common case, a message in one frame, is checked and handed over without copying.
        if header.fin && header.opcode != Opcode::Continuation {
            let message = if header.opcode == Opcode::Text {
                Message::Text(String::from_utf8(payload).map_err(|_| WsError::InvalidUtf8)?)
            } else {
                Message::Binary(payload)
            };
            return Ok(Incoming::Message(message));
        }

        let mut partial = match (header.opcode, self.partial.take()) {
            (Opcode::Continuation, Some(mut partial)) => {
                partial.payload.extend_from_slice(&payload);
                partial
            }
            (Opcode::Text | Opcode::Binary, None) => Partial {
                text: header.opcode == Opcode::Text,
                payload,
                checked: 0,
            },
            // `header` has refused the other combinations already.
            (Opcode::Continuation, None) => return Err(WsError::UnexpectedContinuation),
            _ => return Err(WsError::ExpectedContinuation),
        };

        // Text is checked fragment by fragment, failing as soon as a byte proves the message
        // invalid; only a character cut at the end is left for the next fragment to complete.
        if partial.text {
            match std::str::from_utf8(&partial.payload[partial.checked..]) {
                Ok(_) => partial.checked = partial.payload.len(),
                Err(e) if e.error_len().is_none() => partial.checked += e.valid_up_to(),
                Err(_) => return Err(WsError::InvalidUtf8),
            }
        }
        if !header.fin {
            self.partial = Some(partial);
            return Ok(Incoming::Fragment);
        }
        let message = if partial.text {
            // A character still cut at the end of the last fragment is invalid; checking the
            // whole again costs one pass and keeps `String` construction safe.
            Message::Text(String::from_utf8(partial.payload).map_err(|_| WsError::InvalidUtf8)?)
        } else {
            Message::Binary(partial.payload)
        };
        Ok(Incoming::Message(message))
    }
}

/// Reads a close frame's payload: nothing, or a valid status code and a UTF-8 reason.
fn close_frame(payload: &[u8]) -> Result<Option<CloseFrame>, WsError> {
    match payload {
        [] => Ok(None),
        [_] => Err(WsError::CloseTooShort),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close::is_valid(code) {
                return Err(WsError::InvalidCloseCode(code));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidCloseReason)?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}

impl Default for WsCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for WsCodec {
    type Frame<'a> = Incoming;
    type Error = WsError;

    fn decode(&mut self, buf: &[u8]) -> Result<Option<(Incoming, usize)>, WsError> {
        if buf.is_empty() {
            return Ok(None);
        }
        if self.closed {
            return Err(WsError::FrameAfterClose);
        }
        let Some(header) = self.header(buf)? else {
            return Ok(None);
        };
        let Some(masked) = buf[header.len..].get(..header.payload_len) else {
            return Ok(None);
        };
        let payload: Vec<u8> = masked
            .iter()
            .zip(header.mask.iter().cycle())
            .map(|(b, m)| b ^ m)
            .collect();
        let consumed = header.len + header.payload_len;

        let incoming = match header.opcode {
            Opcode::Close => {
                let close = close_frame(&payload)?;
                self.closed = true;
                Incoming::Message(Message::Close(close))
            }
            Opcode::Ping => Incoming::Message(Message::Ping(payload)),
            Opcode::Pong => Incoming::Message(Message::Pong(payload)),
            Opcode::Text | Opcode::Binary | Opcode::Continuation => self.data(header, payload)?,
        };
        Ok(Some((incoming, consumed)))
    }

    /// Does nothing: the decoder keeps no progress on an unfinished frame between calls (a
    /// fragmented message is state of the stream, not of buffered bytes, and is kept).
    fn reset(&mut self) {}
}
