//! The frame encoder: what a server writes (unmasked frames), and masked frames as a client
//! writes them, for clients and tests.
//!
//! A server's messages are each written as one frame: nothing here fragments, since a server
//! that has the whole message gains nothing from cutting it up.

use super::close;
use super::decode::MAX_CONTROL_PAYLOAD;
use super::message::{Message, Opcode};
use super::WsError;

/// Appends one frame to `dst`: FIN bit, opcode, the minimal length encoding, then the payload,
/// masked with `mask` if one is given (a client must mask, a server must not).
///
/// This writes whatever it is told, including control frames that break the RFC, so that tests
/// can build bad input; the `encode_*` functions are the checked way to write frames.
pub fn encode_frame(
    fin: bool,
    opcode: Opcode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
    dst: &mut Vec<u8>,
) {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    dst.reserve(14 + payload.len());
    dst.push(if fin { 0x80 } else { 0 } | opcode.bits());
    // The shortest of the three length forms (RFC 6455 5.2: a sender must use it).
    match payload.len() {
        n @ 0..=125 => dst.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            dst.push(mask_bit | 126);
            dst.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            dst.push(mask_bit | 127);
            dst.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            dst.extend_from_slice(&key);
            dst.extend(payload.iter().zip(key.iter().cycle()).map(|(b, m)| b ^ m));
        }
        None => dst.extend_from_slice(payload),
    }
}

/// Appends a text message as one unmasked frame.
pub fn encode_text(text: &str, dst: &mut Vec<u8>) {
    encode_frame(true, Opcode::Text, text.as_bytes(), None, dst);
}

/// Appends a binary message as one unmasked frame.
pub fn encode_binary(data: &[u8], dst: &mut Vec<u8>) {
    encode_frame(true, Opcode::Binary, data, None, dst);
}

/// Appends an unmasked ping.
///
/// # Errors
///
/// [`WsError::ControlTooLong`] for a payload over 125 bytes; `dst` is left unchanged.
pub fn encode_ping(payload: &[u8], dst: &mut Vec<u8>) -> Result<(), WsError> {
    control(Opcode::Ping, payload, dst)
}

/// Appends an unmasked pong: the answer to a [`Message::Ping`], with the ping's payload.
///
/// # Errors
///
/// [`WsError::ControlTooLong`] for a payload over 125 bytes; `dst` is left unchanged. A ping
/// the decoder yielded never has one.
pub fn encode_pong(payload: &[u8], dst: &mut Vec<u8>) -> Result<(), WsError> {
    control(Opcode::Pong, payload, dst)
}

/// Appends an unmasked close frame: with a status code and a reason, or empty for `None`.
///
/// # Errors
///
/// [`WsError::InvalidCloseCode`] for a code [`close::is_valid`] refuses (1005 and 1006 stand
/// for "no code" and must be sent as `None`); [`WsError::ControlTooLong`] for a reason over
/// 123 bytes. `dst` is then left unchanged.
pub fn encode_close(close: Option<(u16, &str)>, dst: &mut Vec<u8>) -> Result<(), WsError> {
    let Some((code, reason)) = close else {
        return control(Opcode::Close, &[], dst);
    };
    if !close::is_valid(code) {
        return Err(WsError::InvalidCloseCode(code));
    }
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    control(Opcode::Close, &payload, dst)
}

/// Appends a control frame after checking its payload's length.
fn control(opcode: Opcode, payload: &[u8], dst: &mut Vec<u8>) -> Result<(), WsError> {
    if payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(WsError::ControlTooLong(payload.len() as u64));
    }
    encode_frame(true, opcode, payload, None, dst);
    Ok(())
}

impl Message {
    /// Appends this message as one unmasked frame, as a server sends it.
    ///
    /// # Errors
    ///
    /// As [`encode_ping`], [`encode_pong`] and [`encode_close`] for control frames; text and
    /// binary messages always encode.
    pub fn encode(&self, dst: &mut Vec<u8>) -> Result<(), WsError> {
        match self {
            Message::Text(text) => encode_text(text, dst),
            Message::Binary(data) => encode_binary(data, dst),
            Message::Ping(payload) => encode_ping(payload, dst)?,
            Message::Pong(payload) => encode_pong(payload, dst)?,
            Message::Close(close) => {
                encode_close(close.as_ref().map(|c| (c.code, c.reason.as_str())), dst)?
            }
        }
        Ok(())
    }
}
