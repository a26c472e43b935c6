//! Property tests for the WebSocket frame decoder: decoding must not depend on how the stream
//! is cut.
//!
//! Client messages (fragmented or not, with control frames between fragments) are encoded and
//! must decode to what a model says, whole, at random cuts, and one byte at a time; the model
//! also says which limit error ends the stream. A valid stream followed by one bad frame must
//! give that frame's error, however cut. Damaged and arbitrary bytes must give the same
//! messages and the same error however they are cut, never a panic, and never a message over
//! the limits.

mod split_util;

use split_util::{apply, cuts_for, damage, decode_three_ways};

use std::fmt::Debug;

use proptest::prelude::*;
use proptest::sample::Index;

use evdrive_protocols::codec::ws::{
    encode_frame, CloseFrame, Incoming, Message, Opcode, WsCodec, WsError,
};

/// One thing a client sends.
#[derive(Debug, Clone)]
enum Part {
    /// A text or binary message, cut into fragments at `cuts` (offsets into the payload), with
    /// a ping after the fragment `ping_after` picks, if any.
    Data {
        text: bool,
        payload: Vec<u8>,
        cuts: Vec<Index>,
        ping_after: Option<(Index, Vec<u8>)>,
    },
    /// A ping or a pong on its own.
    Control { ping: bool, payload: Vec<u8> },
}

fn part() -> impl Strategy<Value = Part> {
    let text = prop::collection::vec(any::<char>(), 0..24)
        .prop_map(|cs| (true, cs.into_iter().collect::<String>().into_bytes()));
    let binary = prop::collection::vec(any::<u8>(), 0..80).prop_map(|b| (false, b));
    let control_payload = prop::collection::vec(any::<u8>(), 0..=125);
    prop_oneof![
        4 => (
            prop_oneof![text, binary],
            prop::collection::vec(any::<Index>(), 0..4),
            prop::option::of((any::<Index>(), prop::collection::vec(any::<u8>(), 0..8))),
        )
            .prop_map(|((text, payload), cuts, ping_after)| Part::Data {
                text,
                payload,
                cuts,
                ping_after
            }),
        1 => (any::<bool>(), control_payload).prop_map(|(ping, payload)| Part::Control { ping, payload }),
    ]
}

/// An optional close at the end: a valid code and a short reason, or no payload.
fn close() -> impl Strategy<Value = Option<Option<(u16, String)>>> {
    let code = prop::sample::select(vec![
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 3000, 4999,
    ]);
    let reason = prop::collection::vec(any::<char>(), 0..10).prop_map(|cs| {
        let mut s: String = cs.into_iter().collect();
        while s.len() > 123 {
            s.pop();
        }
        s
    });
    prop::option::of(prop::option::of((code, reason)))
}

/// The frames a client writes for `parts` then `close`: `(fin, opcode, payload)`.
fn frames(parts: &[Part], close: &Option<Option<(u16, String)>>) -> Vec<(bool, Opcode, Vec<u8>)> {
    let mut frames = Vec::new();
    for part in parts {
        match part {
            Part::Data {
                text,
                payload,
                cuts,
                ping_after,
            } => {
                let mut bounds: Vec<usize> =
                    cuts.iter().map(|i| i.index(payload.len() + 1)).collect();
                bounds.push(0);
                bounds.push(payload.len());
                bounds.sort_unstable();
                // Empty fragments are allowed: keep duplicates but the first zero.
                bounds.remove(0);
                let mut pieces = Vec::new();
                let mut start = 0;
                for end in bounds {
                    pieces.push(&payload[start..end]);
                    start = end;
                }
                let ping_at = ping_after.as_ref().map(|(i, p)| (i.index(pieces.len()), p));
                let last = pieces.len() - 1;
                for (k, piece) in pieces.into_iter().enumerate() {
                    let op = match (k, text) {
                        (0, true) => Opcode::Text,
                        (0, false) => Opcode::Binary,
                        _ => Opcode::Continuation,
                    };
                    frames.push((k == last, op, piece.to_vec()));
                    if let Some((at, p)) = ping_at {
                        if at == k && k != last {
                            frames.push((true, Opcode::Ping, p.clone()));
                        }
                    }
                }
            }
            Part::Control { ping, payload } => {
                let op = if *ping { Opcode::Ping } else { Opcode::Pong };
                frames.push((true, op, payload.clone()));
            }
        }
    }
    if let Some(close) = close {
        let payload = match close {
            Some((code, reason)) => {
                let mut p = code.to_be_bytes().to_vec();
                p.extend_from_slice(reason.as_bytes());
                p
            }
            None => Vec::new(),
        };
        frames.push((true, Opcode::Close, payload));
    }
    frames
}

/// What a correct decoder yields for `frames` with these limits, and the error ending it.
fn model(
    frames: &[(bool, Opcode, Vec<u8>)],
    max_frame: usize,
    max_message: usize,
) -> (Vec<Incoming>, Option<WsError>) {
    let mut got = Vec::new();
    let mut message: Option<(bool, Vec<u8>)> = None;
    for (fin, op, payload) in frames {
        let incoming = match op {
            Opcode::Ping => Message::Ping(payload.clone()),
            Opcode::Pong => Message::Pong(payload.clone()),
            Opcode::Close => Message::Close((payload.len() >= 2).then(|| CloseFrame {
                code: u16::from_be_bytes([payload[0], payload[1]]),
                reason: String::from_utf8(payload[2..].to_vec()).unwrap(),
            })),
            data => {
                let (text, mut so_far) = message
                    .take()
                    .unwrap_or((*data == Opcode::Text, Vec::new()));
                let len = (so_far.len() + payload.len()) as u64;
                if payload.len() > max_frame {
                    let len = payload.len() as u64;
                    return (
                        got,
                        Some(WsError::FrameTooLarge {
                            len,
                            max: max_frame,
                        }),
                    );
                }
                if len > max_message as u64 {
                    return (
                        got,
                        Some(WsError::MessageTooLarge {
                            len,
                            max: max_message,
                        }),
                    );
                }
                so_far.extend_from_slice(payload);
                if !fin {
                    message = Some((text, so_far));
                    got.push(Incoming::Fragment);
                    continue;
                }
                if text {
                    Message::Text(String::from_utf8(so_far).unwrap())
                } else {
                    Message::Binary(so_far)
                }
            }
        };
        got.push(Incoming::Message(incoming));
    }
    (got, None)
}

/// The client's bytes for `frames`, each masked with a key from `keys` in turn.
fn wire(frames: &[(bool, Opcode, Vec<u8>)], keys: &[[u8; 4]]) -> Vec<u8> {
    let mut wire = Vec::new();
    for (k, (fin, op, payload)) in frames.iter().enumerate() {
        let key = keys.get(k % keys.len().max(1)).copied().unwrap_or([0; 4]);
        encode_frame(*fin, *op, payload, Some(key), &mut wire);
    }
    wire
}

/// One frame breaking a rule, and the error it must give.
fn bad_frame() -> impl Strategy<Value = (Vec<u8>, WsError)> {
    let key = Some([9, 8, 7, 6]);
    let one = move |fin: bool, op: Opcode, payload: &[u8]| {
        let mut v = Vec::new();
        encode_frame(fin, op, payload, key, &mut v);
        v
    };
    let cases = vec![
        {
            let mut v = Vec::new();
            encode_frame(true, Opcode::Text, b"unmasked", None, &mut v);
            (v, WsError::Unmasked)
        },
        {
            let mut v = one(true, Opcode::Binary, b"x");
            v[0] |= 0x40;
            (v, WsError::ReservedBits(4))
        },
        (vec![0x83, 0x80, 0, 0, 0, 0], WsError::UnknownOpcode(3)),
        (vec![0x8f, 0x80, 0, 0, 0, 0], WsError::UnknownOpcode(0xf)),
        (
            one(true, Opcode::Ping, &[0; 126]),
            WsError::ControlTooLong(126),
        ),
        (one(false, Opcode::Pong, b""), WsError::FragmentedControl),
        (
            one(true, Opcode::Continuation, b"x"),
            WsError::UnexpectedContinuation,
        ),
        (
            [0x82, 0xff]
                .into_iter()
                .chain((1u64 << 63).to_be_bytes())
                .collect(),
            WsError::LengthOverflow,
        ),
        (one(true, Opcode::Close, b"\x03"), WsError::CloseTooShort),
        (
            one(true, Opcode::Close, b"\x03\xed"),
            WsError::InvalidCloseCode(1005),
        ),
        (
            one(true, Opcode::Close, b"\x03\xe8\xc3"),
            WsError::InvalidCloseReason,
        ),
        (one(true, Opcode::Text, b"a\xedb"), WsError::InvalidUtf8),
        (
            {
                let mut v = one(false, Opcode::Text, b"\xe2\x82");
                v.extend(one(true, Opcode::Continuation, b"\x41"));
                v
            },
            WsError::InvalidUtf8,
        ),
        (
            {
                let mut v = one(false, Opcode::Text, b"a");
                v.extend(one(true, Opcode::Text, b"b"));
                v
            },
            WsError::ExpectedContinuation,
        ),
        (
            {
                let mut v = one(true, Opcode::Close, b"");
                v.extend(one(true, Opcode::Text, b"b"));
                v
            },
            WsError::FrameAfterClose,
        ),
    ];
    prop::sample::select(cases)
}

/// Noise: mostly bytes that mean something in a frame header.
fn noisy_bytes() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: &[u8] = &[
        0x00, 0x01, 0x02, 0x80, 0x81, 0x82, 0x88, 0x89, 0x8a, 0x83, 0xc1, 0x85, 0xfe, 0xff, 0x7e,
        0x7f, 0x03, 0xe8,
    ];
    prop::collection::vec(
        prop_oneof![3 => prop::sample::select(alphabet), 1 => any::<u8>()],
        0..300,
    )
}

fn keys() -> impl Strategy<Value = Vec<[u8; 4]>> {
    prop::collection::vec(any::<[u8; 4]>(), 1..4)
}

/// The size of a message, for checking limits.
fn size(incoming: &Incoming) -> usize {
    match incoming {
        Incoming::Fragment => 0,
        Incoming::Message(Message::Text(t)) => t.len(),
        Incoming::Message(Message::Binary(b) | Message::Ping(b) | Message::Pong(b)) => b.len(),
        Incoming::Message(Message::Close(c)) => c.as_ref().map_or(0, |c| 2 + c.reason.len()),
    }
}

proptest! {
    #[test]
    fn ws_decodes_what_was_encoded(
        parts in prop::collection::vec(part(), 0..8),
        close in close(),
        keys in keys(),
        max_frame in prop_oneof![Just(usize::MAX), 0usize..100],
        max_message in prop_oneof![Just(usize::MAX), 0usize..200],
        picks in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let frames = frames(&parts, &close);
        let input = wire(&frames, &keys);
        let cuts = cuts_for(input.len(), &picks);
        let codec = || WsCodec::new().with_max_frame_length(max_frame).with_max_message_length(max_message);
        let got = decode_three_ways(codec, &input, &cuts, |f| f);

        let (want, error) = model(&frames, max_frame, max_message);
        prop_assert_eq!(&got.frames, &want);
        prop_assert_eq!(&got.error, &error);
        if error.is_none() {
            prop_assert_eq!(got.pending, 0);
        }
    }

    #[test]
    fn ws_bad_frame_after_valid_ones(
        parts in prop::collection::vec(part(), 0..4),
        keys in keys(),
        (bad, error) in bad_frame(),
        picks in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let frames = frames(&parts, &None);
        let mut input = wire(&frames, &keys);
        input.extend_from_slice(&bad);
        let cuts = cuts_for(input.len(), &picks);
        let got = decode_three_ways(WsCodec::new, &input, &cuts, |f| f);
        let (want, _) = model(&frames, usize::MAX, usize::MAX);
        // A frame that is fine on its own but follows a close adds its message.
        prop_assert!(got.frames.starts_with(&want));
        prop_assert!(got.frames.len() <= want.len() + 2);
        prop_assert_eq!(got.error, Some(error));
    }

    #[test]
    fn ws_damaged_or_arbitrary(
        parts in prop::collection::vec(part(), 0..6),
        close in close(),
        keys in keys(),
        damages in prop::collection::vec(damage(), 0..4),
        noise in noisy_bytes(),
        use_noise in any::<bool>(),
        max_frame in 0usize..100,
        max_message in 0usize..200,
        picks in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let input = if use_noise {
            noise
        } else {
            apply(wire(&frames(&parts, &close), &keys), &damages)
        };
        let cuts = cuts_for(input.len(), &picks);
        let codec = || WsCodec::new().with_max_frame_length(max_frame).with_max_message_length(max_message);
        let got = decode_three_ways(codec, &input, &cuts, |f| f);
        for incoming in &got.frames {
            match incoming {
                Incoming::Message(Message::Text(_) | Message::Binary(_)) => {
                    prop_assert!(size(incoming) <= max_message);
                }
                _ => prop_assert!(size(incoming) <= 125),
            }
        }
        if let Some(e) = &got.error {
            prop_assert!([1002, 1007, 1009].contains(&e.close_code()));
        } else {
            // What waits is at most one frame: a 14-byte header and its payload.
            prop_assert!(got.pending <= 14 + max_frame.max(125));
        }
    }
}
