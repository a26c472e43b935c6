//! What can go wrong on a WebSocket stream, and the close code each fault is answered with.

use std::fmt;

use super::close;

/// A protocol violation found while decoding client frames, or a frame the encoder refuses to
/// write.
///
/// A decoding error ends the stream: the server should send a close frame with
/// [`close_code`](Self::close_code) (see [`encode_close`](super::encode_close)) and then close
/// the connection without reading further frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsError {
    /// A client frame without the mask bit: clients must mask every frame (RFC 6455 5.1).
    Unmasked,
    /// One of the RSV1 to RSV3 bits set, with no extension negotiated to give it a meaning.
    ReservedBits(u8),
    /// An opcode RFC 6455 does not define (3 to 7, 11 to 15).
    UnknownOpcode(u8),
    /// A control frame (close, ping, pong) with a payload over 125 bytes.
    ControlTooLong(u64),
    /// A control frame without the FIN bit: control frames cannot be fragmented.
    FragmentedControl,
    /// A continuation frame with no fragmented message open.
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message still waits for its end.
    ExpectedContinuation,
    /// A 64-bit payload length with the most significant bit set, which the RFC forbids.
    LengthOverflow,
    /// A data frame whose payload is over the decoder's frame limit.
    FrameTooLarge {
        /// The payload length the frame announced.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A message whose fragments add up to more than the decoder's message limit.
    MessageTooLarge {
        /// The length the message would reach with the frame that broke the limit.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A text message that is not valid UTF-8 (found as early as the fragments show it).
    InvalidUtf8,
    /// A close frame with a one-byte payload: a status code takes two.
    CloseTooShort,
    /// A close frame carrying a code no peer may send (see [`close::is_valid`]).
    InvalidCloseCode(u16),
    /// A close frame whose reason is not valid UTF-8.
    InvalidCloseReason,
    /// Bytes after the peer's close frame, after which it must send nothing.
    FrameAfterClose,
}

impl WsError {
    /// The close code to answer this error with: 1002 (protocol error) for malformed frames,
    /// 1007 for invalid UTF-8, 1009 for frames and messages over a limit.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::InvalidUtf8 | WsError::InvalidCloseReason => close::INVALID_PAYLOAD,
            WsError::FrameTooLarge { .. } | WsError::MessageTooLarge { .. } => {
                close::MESSAGE_TOO_BIG
            }
            WsError::Unmasked
            | WsError::ReservedBits(_)
            | WsError::UnknownOpcode(_)
            | WsError::ControlTooLong(_)
            | WsError::FragmentedControl
            | WsError::UnexpectedContinuation
            | WsError::ExpectedContinuation
            | WsError::LengthOverflow
            | WsError::CloseTooShort
            | WsError::InvalidCloseCode(_)
            | WsError::FrameAfterClose => close::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Unmasked => f.write_str("client frame not masked"),
            WsError::ReservedBits(bits) => write!(f, "reserved bits {bits:#05b} set"),
            WsError::UnknownOpcode(op) => write!(f, "unknown opcode {op:#x}"),
            WsError::ControlTooLong(len) => {
                write!(f, "control frame payload of {len} bytes, over 125")
            }
            WsError::FragmentedControl => f.write_str("fragmented control frame"),
            WsError::UnexpectedContinuation => {
                f.write_str("continuation frame without a fragmented message")
            }
            WsError::ExpectedContinuation => {
                f.write_str("new data frame inside a fragmented message")
            }
            WsError::LengthOverflow => f.write_str("64-bit payload length with the top bit set"),
            WsError::FrameTooLarge { len, max } => {
                write!(f, "frame payload of {len} bytes, over the limit of {max}")
            }
            WsError::MessageTooLarge { len, max } => {
                write!(f, "message of {len} bytes, over the limit of {max}")
            }
            WsError::InvalidUtf8 => f.write_str("text message is not valid UTF-8"),
            WsError::CloseTooShort => f.write_str("close frame payload of one byte"),
            WsError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            WsError::InvalidCloseReason => f.write_str("close reason is not valid UTF-8"),
            WsError::FrameAfterClose => f.write_str("data after the close frame"),
        }
    }
}

impl std::error::Error for WsError {}
