//! The WebSocket codec target: decoding must not depend on the cuts, must respect every limit,
//! and messages built from the input must come back through the encoder and the decoder.

use crate::codec::split::{self, Decoded};
use crate::codec::ws::{
    self, encode_frame, handshake, CloseFrame, Incoming, Message, Opcode, WsCodec, WsError,
};
use crate::codec::{Decoder, HttpCodec};
use reactor::testing::Script;

/// Inputs up to this size are also decoded one byte at a time.
const BYTEWISE_UP_TO: usize = 2048;

/// A frame as a client writes it: FIN, opcode, unmasked payload, masking key.
type ClientFrame = (bool, Opcode, Vec<u8>, [u8; 4]);

/// Checks [`WsCodec`] and the handshake.
///
/// Input: `[mode][spare][k][k cuts of 2 bytes][payload]`, as for the other codec targets. The
/// mode byte picks the frame limit (bits 0-1: 0, 3, 40 bytes or the default), the message
/// limit (bits 2-3: 0, 5, 100 bytes or the default), whether the payload is also read as an
/// HTTP request and put through [`handshake::accept`] (bit 6), and whether the payload is raw
/// bytes or a script of client messages to encode (bit 7; see `build`). Bit 7 of `k` asks
/// for a byte-by-byte decode too.
///
/// Checked: the frames and error are the same whole, at the cuts, and byte by byte; no message
/// is over a limit and no control frame over 125 bytes; an error maps to 1002, 1007 or 1009;
/// what waits is at most one frame; every decoded message, encoded by the server and masked
/// again as a client would, decodes to itself; and for built input, the decoder yields exactly
/// what a model of the RFC says, up to the limit error the model predicts.
///
/// # Panics
///
/// If an invariant is broken.
pub fn codec_ws(data: &[u8]) {
    // Step 1: read the mode, the cuts and the payload.
    let mut s = Script::new(data);
    let mode = s.byte();
    let _spare = s.byte();
    let k = s.byte();
    let payload_cuts: Vec<usize> = (0..k % 32).map(|_| usize::from(s.u16())).collect();
    let payload = s.rest();
    let max_frame = [0, 3, 40, ws::DEFAULT_MAX_FRAME_LENGTH][usize::from(mode & 3)];
    let max_message = [0, 5, 100, ws::DEFAULT_MAX_MESSAGE_LENGTH][usize::from((mode >> 2) & 3)];
    let codec = || {
        WsCodec::new()
            .with_max_frame_length(max_frame)
            .with_max_message_length(max_message)
    };

    if mode & 0x40 != 0 {
        check_handshake(payload);
    }

    // Step 2: the wire bytes, and for built input the frames that went into them.
    let built = (mode & 0x80 != 0).then(|| build(payload));
    let wire = match &built {
        Some(frames) => {
            let mut wire = Vec::new();
            for (fin, op, p, key) in frames {
                encode_frame(*fin, *op, p, Some(*key), &mut wire);
            }
            wire
        }
        None => payload.to_vec(),
    };

    // Step 3: decode all ways; they must agree.
    let cuts: Vec<usize> = payload_cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    let bytewise = k & 0x80 != 0 && wire.len() <= BYTEWISE_UP_TO;
    let got: Decoded<Incoming, WsError> =
        split::decode_all_ways(codec, &wire, &cuts, bytewise, |f| f);

    // Step 4: limits, close codes, bounded waiting.
    for incoming in &got.frames {
        match incoming {
            Incoming::Message(Message::Text(t)) => assert!(t.len() <= max_message),
            Incoming::Message(Message::Binary(b)) => assert!(b.len() <= max_message),
            Incoming::Message(Message::Ping(p) | Message::Pong(p)) => assert!(p.len() <= 125),
            Incoming::Message(Message::Close(Some(c))) => {
                assert!(ws::close::is_valid(c.code) && c.reason.len() <= 123)
            }
            Incoming::Message(Message::Close(None)) | Incoming::Fragment => {}
        }
    }
    match &got.error {
        Some(e) => assert!([1002, 1007, 1009].contains(&e.close_code()), "{e:?}"),
        None => assert!(
            got.pending <= 14 + max_frame.max(ws::MAX_CONTROL_PAYLOAD),
            "{} bytes pending",
            got.pending
        ),
    }

    // Step 5: every message survives the server's encoding, masked again as a client's frame.
    for incoming in &got.frames {
        if let Incoming::Message(m) = incoming {
            round_trip(m);
        }
    }

    // Step 6: built input decodes as the model says.
    if let Some(frames) = &built {
        let (want, error) = model(frames, max_frame, max_message);
        assert_eq!(got.frames, want, "built frames did not come back");
        assert_eq!(got.error, error);
        if error.is_none() {
            assert_eq!(got.pending, 0);
        }
    }
}

/// Parses `payload` as an HTTP request and runs the handshake on it: no panic, and an accepted
/// request is an upgrade with the key's accept value.
fn check_handshake(payload: &[u8]) {
    let Ok(Some((req, _))) = HttpCodec::new().decode(payload) else {
        return;
    };
    let mut out = Vec::new();
    match handshake::accept(&req) {
        Ok(accepted) => {
            assert!(handshake::is_upgrade(&req));
            let key = req.header("sec-websocket-key").unwrap_or_default();
            assert_eq!(accepted.accept_key(), handshake::accept_key(key));
            accepted.encode(&mut out);
            assert!(out.starts_with(b"HTTP/1.1 101 "));
        }
        Err(e) => {
            e.encode_response(&mut out)
                .expect("an error response always encodes");
            assert!(out.starts_with(format!("HTTP/1.1 {} ", e.status()).as_bytes()));
        }
    }
}

/// Encodes `m` as the server does, masks the same frame as a client would, and checks it
/// decodes back to `m`.
fn round_trip(m: &Message) {
    let mut server = Vec::new();
    m.encode(&mut server)
        .expect("a decoded message is within the encoder's rules");
    let header = match server.get(1) {
        Some(127) => 10,
        Some(126) => 4,
        _ => 2,
    };
    let op = Opcode::from_bits(server[0] & 0x0F).expect("the encoder writes known opcodes");
    assert_eq!(server[0] & 0xF0, 0x80, "one final frame, no reserved bits");
    let mut client = Vec::new();
    encode_frame(
        true,
        op,
        &server[header..],
        Some([0xa5, 0x5a, 0x0f, 0xf0]),
        &mut client,
    );
    let back = WsCodec::new()
        .with_max_frame_length(usize::MAX)
        .with_max_message_length(usize::MAX)
        .decode(&client);
    assert_eq!(back, Ok(Some((Incoming::Message(m.clone()), client.len()))));
}

/// Reads client frames from a script, stopping after a close.
///
/// Each message starts with a byte: bits 0-2 pick text, binary, ping, pong or close (5 to 7
/// are binary too), bits 3-4 the number of fragments minus one, bit 5 a ping between the
/// first two fragments. Then four bytes of masking key, a length byte and that many bytes
/// (text is the lossy UTF-8 reading of them, control payloads are cut to fit), then one byte
/// per fragment boundary.
fn build(payload: &[u8]) -> Vec<ClientFrame> {
    let mut s = Script::new(payload);
    let mut frames = Vec::new();
    while !s.is_empty() {
        let op = s.byte();
        let key = {
            let k = s.bytes(4);
            let mut key = [0; 4];
            key[..k.len()].copy_from_slice(k);
            key
        };
        let n = usize::from(s.byte());
        let bytes = s.bytes(n);
        match op & 7 {
            kind @ (2 | 3) => {
                let op = if kind == 2 {
                    Opcode::Ping
                } else {
                    Opcode::Pong
                };
                frames.push((true, op, bytes[..bytes.len().min(125)].to_vec(), key));
            }
            4 => {
                let payload = if bytes.is_empty() {
                    Vec::new()
                } else {
                    let code = s.pick(&[
                        1000u16, 1001, 1002, 1003, 1007, 1009, 1011, 1014, 3000, 4999,
                    ]);
                    let mut reason = String::from_utf8_lossy(bytes).into_owned();
                    while reason.len() > 123 {
                        reason.pop();
                    }
                    let mut p = code.to_be_bytes().to_vec();
                    p.extend_from_slice(reason.as_bytes());
                    p
                };
                frames.push((true, Opcode::Close, payload, key));
                break;
            }
            kind => {
                let text = kind == 0;
                let message = if text {
                    String::from_utf8_lossy(bytes).into_owned().into_bytes()
                } else {
                    bytes.to_vec()
                };
                let fragments = usize::from((op >> 3) & 3) + 1;
                let mut bounds: Vec<usize> =
                    (1..fragments).map(|_| s.below(message.len() + 1)).collect();
                bounds.sort_unstable();
                bounds.push(message.len());
                let mut start = 0;
                for (i, &end) in bounds.iter().enumerate() {
                    let opcode = match (i, text) {
                        (0, true) => Opcode::Text,
                        (0, false) => Opcode::Binary,
                        _ => Opcode::Continuation,
                    };
                    let fin = i + 1 == bounds.len();
                    frames.push((fin, opcode, message[start..end].to_vec(), key));
                    start = end;
                    if i == 0 && !fin && op & 0x20 != 0 {
                        frames.push((true, Opcode::Ping, b"mid".to_vec(), key));
                    }
                }
            }
        }
    }
    frames
}

/// What a correct decoder yields for valid client `frames` under these limits, and the limit
/// error that ends the stream, if any.
fn model(
    frames: &[ClientFrame],
    max_frame: usize,
    max_message: usize,
) -> (Vec<Incoming>, Option<WsError>) {
    let mut got = Vec::new();
    // The open message: whether it is text, and its bytes so far.
    let mut open: Option<(bool, Vec<u8>)> = None;
    for (fin, op, payload, _) in frames {
        let message = match op {
            Opcode::Ping => Message::Ping(payload.clone()),
            Opcode::Pong => Message::Pong(payload.clone()),
            Opcode::Close => Message::Close(match payload.as_slice() {
                [hi, lo, reason @ ..] => Some(CloseFrame {
                    code: u16::from_be_bytes([*hi, *lo]),
                    reason: String::from_utf8_lossy(reason).into_owned(),
                }),
                _ => None,
            }),
            data => {
                let (text, mut so_far) = open.take().unwrap_or((*data == Opcode::Text, Vec::new()));
                let len = payload.len() as u64;
                if payload.len() > max_frame {
                    return (
                        got,
                        Some(WsError::FrameTooLarge {
                            len,
                            max: max_frame,
                        }),
                    );
                }
                let total = (so_far.len() + payload.len()) as u64;
                if total > max_message as u64 {
                    return (
                        got,
                        Some(WsError::MessageTooLarge {
                            len: total,
                            max: max_message,
                        }),
                    );
                }
                so_far.extend_from_slice(payload);
                if !fin {
                    open = Some((text, so_far));
                    got.push(Incoming::Fragment);
                    continue;
                }
                if text {
                    Message::Text(String::from_utf8_lossy(&so_far).into_owned())
                } else {
                    Message::Binary(so_far)
                }
            }
        };
        got.push(Incoming::Message(message));
    }
    (got, None)
}
