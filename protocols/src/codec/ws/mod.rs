//! WebSocket (RFC 6455), server side: the opening handshake, a frame decoder that yields whole
//! messages, and the frame encoder.
//!
//! A browser opens a WebSocket with an HTTP/1.1 `GET` carrying `Upgrade: websocket`. The
//! server reads it with the HTTP codec, checks it with [`handshake::accept`], answers
//! `101 Switching Protocols`, and from then on the connection carries frames: the client's,
//! masked, are decoded by [`WsCodec`]; the server's, unmasked, are written by [`encode_text`],
//! [`encode_binary`], [`encode_pong`], [`encode_close`] and friends.
//!
//! ```text
//!   client                                   server
//!   GET /chat, Upgrade: websocket, Key  ──▶  handshake::accept → 101, Sec-WebSocket-Accept
//!   masked frames                       ──▶  WsCodec: Message::{Text, Binary, Ping, Pong, Close}
//!                                       ◀──  encode_text / encode_pong / encode_close (unmasked)
//! ```
//!
//! # What the decoder enforces
//!
//! | rule | error | close code |
//! |---|---|---|
//! | client frames are masked | [`WsError::Unmasked`] | 1002 |
//! | reserved bits are 0 (no extension is negotiated) | [`WsError::ReservedBits`] | 1002 |
//! | opcodes 0, 1, 2, 8, 9, 10 only | [`WsError::UnknownOpcode`] | 1002 |
//! | control frames: at most 125 bytes, not fragmented | [`WsError::ControlTooLong`], [`WsError::FragmentedControl`] | 1002 |
//! | continuation only inside a fragmented message, which nothing else interrupts but control frames | [`WsError::UnexpectedContinuation`], [`WsError::ExpectedContinuation`] | 1002 |
//! | 64-bit lengths have the top bit clear | [`WsError::LengthOverflow`] | 1002 |
//! | close payload: empty, or a valid code and a UTF-8 reason | [`WsError::CloseTooShort`], [`WsError::InvalidCloseCode`], [`WsError::InvalidCloseReason`] | 1002, 1002, 1007 |
//! | nothing after a close frame | [`WsError::FrameAfterClose`] | 1002 |
//! | text is UTF-8, checked across fragments as they come | [`WsError::InvalidUtf8`] | 1007 |
//! | frame payload and reassembled message within limits (1 MiB each by default) | [`WsError::FrameTooLarge`], [`WsError::MessageTooLarge`] | 1009 |
//!
//! Non-minimal length encodings are accepted (see [`WsCodec`]). Pings are yielded for the
//! caller to answer with [`encode_pong`]; pongs are yielded too, for a caller that keeps a
//! heartbeat.
//!
//! # The close handshake
//!
//! On [`Message::Close`], answer with a close frame (usually echoing the code, or `None`)
//! and close the connection once it is written. On a decoding error, send a close frame with
//! [`WsError::close_code`] and close. To close from the server side, send a close frame, stop
//! sending, and close when the client's close arrives (or after a timeout).
//!
//! # Example
//!
//! ```
//! use evdrive_protocols::codec::ws::{self, Incoming, Message, WsCodec};
//! use evdrive_protocols::codec::Decoder;
//!
//! /// Echoes text and binary messages, answers pings and the close handshake; returns the bytes
//! /// consumed, or `None` once the connection should close after `out` is written.
//! fn on_data(codec: &mut WsCodec, data: &[u8], out: &mut Vec<u8>) -> Option<usize> {
//!     let mut consumed = 0;
//!     loop {
//!         match codec.decode(&data[consumed..]) {
//!             // Messages: echo them.
//!             Ok(Some((Incoming::Message(m @ (Message::Text(_) | Message::Binary(_))), n))) => {
//!                 consumed += n;
//!                 m.encode(out).ok()?;
//!             }
//!             // A ping: the pong carries its payload.
//!             Ok(Some((Incoming::Message(Message::Ping(p)), n))) => {
//!                 consumed += n;
//!                 ws::encode_pong(&p, out).ok()?;
//!             }
//!             // A pong, or a fragment kept by the codec: nothing to do.
//!             Ok(Some((Incoming::Message(Message::Pong(_)) | Incoming::Fragment, n))) => {
//!                 consumed += n;
//!             }
//!             // The client closes: answer in kind, then close.
//!             Ok(Some((Incoming::Message(Message::Close(_)), _))) => {
//!                 ws::encode_close(Some((ws::close::NORMAL, "")), out).ok()?;
//!                 return None;
//!             }
//!             // Only part of a frame: keep it for next time.
//!             Ok(None) => return Some(consumed),
//!             // The client broke the protocol: say why, then close.
//!             Err(e) => {
//!                 ws::encode_close(Some((e.close_code(), "")), out).ok()?;
//!                 return None;
//!             }
//!         }
//!     }
//! }
//!
//! let mask = Some([7, 7, 7, 7]);
//! let mut wire = Vec::new();
//! ws::encode_frame(true, ws::Opcode::Text, b"hi", mask, &mut wire);
//! ws::encode_frame(true, ws::Opcode::Ping, b"", mask, &mut wire);
//! let mut out = Vec::new();
//! assert_eq!(on_data(&mut WsCodec::new(), &wire, &mut out), Some(wire.len()));
//! assert_eq!(out, b"\x81\x02hi\x8a\x00");
//! ```

pub mod close;
mod decode;
mod encode;
mod error;
pub mod handshake;
mod message;

pub use decode::{
    WsCodec, DEFAULT_MAX_FRAME_LENGTH, DEFAULT_MAX_MESSAGE_LENGTH, MAX_CONTROL_PAYLOAD,
};
pub use encode::{
    encode_binary, encode_close, encode_frame, encode_ping, encode_pong, encode_text,
};
pub use error::WsError;
pub use message::{CloseFrame, Incoming, Message, Opcode};

#[cfg(test)]
mod tests;
