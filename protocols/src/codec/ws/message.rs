//! What the decoder yields: whole messages, control frames, and the opcodes that tell them
//! apart on the wire.

/// A frame's opcode (RFC 6455 5.2): what its payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// 0x0: the next fragment of a text or binary message.
    Continuation,
    /// 0x1: UTF-8 text, or the first fragment of it.
    Text,
    /// 0x2: binary data, or the first fragment of it.
    Binary,
    /// 0x8: the close handshake.
    Close,
    /// 0x9: a ping, to be answered with a pong carrying the same payload.
    Ping,
    /// 0xA: a pong, answering a ping or sent unasked as a heartbeat.
    Pong,
}

impl Opcode {
    /// The opcode for the low four bits of a frame's first byte, or `None` for the reserved
    /// ones.
    pub fn from_bits(bits: u8) -> Option<Opcode> {
        match bits {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    /// The four bits written on the wire.
    pub fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Whether this is a control frame (close, ping, pong): at most 125 bytes, never
    /// fragmented, allowed between the fragments of a message.
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// The status code and reason of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code, valid as [`close::is_valid`](super::close::is_valid) says.
    pub code: u16,
    /// The reason, possibly empty; at most 123 bytes.
    pub reason: String,
}

/// A message from the peer: a whole text or binary message (its fragments reassembled), or a
/// control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, checked to be UTF-8.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping: answer with a pong carrying the same payload
    /// ([`encode_pong`](super::encode_pong)).
    Ping(Vec<u8>),
    /// A pong; usually nothing to do but note that the peer is alive.
    Pong(Vec<u8>),
    /// The peer starts or answers the close handshake, with a status code and reason or
    /// without. Answer with a close frame (echoing the code is customary) unless one was sent
    /// already, then close the connection. The decoder accepts no frame after this one.
    Close(Option<CloseFrame>),
}

/// What one successful [`decode`](crate::codec::Decoder::decode) of a
/// [`WsCodec`](super::WsCodec) produced.
///
/// A non-final fragment of a message is consumed and kept inside the decoder, so that the
/// caller can drop its bytes and no connection buffers more than one frame of input; the
/// caller just counts its bytes as consumed and decodes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A whole message or a control frame.
    Message(Message),
    /// A fragment of a message that is not finished yet: nothing to act on.
    Fragment,
}
