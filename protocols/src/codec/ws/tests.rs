//! One test per rule of RFC 6455 the codec enforces, and the encoder's output byte for byte.

use super::*;
use crate::codec::{Decoder, HttpCodec};

const MASK: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

/// A client frame: masked.
fn frame(fin: bool, op: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_frame(fin, op, payload, MASK, &mut v);
    v
}

/// Frames decoded from `wire` until it runs out or an error.
fn decode(codec: &mut WsCodec, wire: &[u8]) -> (Vec<Incoming>, Option<WsError>, usize) {
    let mut got = Vec::new();
    let mut consumed = 0;
    loop {
        match codec.decode(&wire[consumed..]) {
            Ok(Some((incoming, n))) => {
                assert!(n > 0);
                consumed += n;
                got.push(incoming);
            }
            Ok(None) => return (got, None, wire.len() - consumed),
            Err(e) => return (got, Some(e), wire.len() - consumed),
        }
    }
}

/// The error decoding `wire` from the start ends with.
fn error(wire: &[u8]) -> Option<WsError> {
    decode(&mut WsCodec::new(), wire).1
}

fn msg(m: Message) -> Incoming {
    Incoming::Message(m)
}

#[test]
fn rfc_example_frames() {
    // RFC 6455 5.7: a masked "Hello", and a single-frame unmasked "Hello" as a server sends it.
    let wire = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    assert_eq!(
        WsCodec::new().decode(wire),
        Ok(Some((msg(Message::Text("Hello".into())), wire.len())))
    );
    let mut out = Vec::new();
    encode_text("Hello", &mut out);
    assert_eq!(out, b"\x81\x05\x48\x65\x6c\x6c\x6f");
    // A masked ping with "Hello", and the pong answering it, unmasked.
    let ping = frame(true, Opcode::Ping, b"Hello");
    let (got, err, _) = decode(&mut WsCodec::new(), &ping);
    assert_eq!(
        (got, err),
        (vec![msg(Message::Ping(b"Hello".to_vec()))], None)
    );
    let mut out = Vec::new();
    encode_pong(b"Hello", &mut out).unwrap();
    assert_eq!(out, b"\x8a\x05\x48\x65\x6c\x6c\x6f");
}

#[test]
fn partial_frames_wait() {
    let wire = frame(true, Opcode::Binary, &[9; 300]);
    for end in 0..wire.len() {
        assert_eq!(WsCodec::new().decode(&wire[..end]), Ok(None), "{end} bytes");
    }
    assert_eq!(
        WsCodec::new().decode(&wire),
        Ok(Some((msg(Message::Binary(vec![9; 300])), wire.len())))
    );
}

#[test]
fn unmasked_client_frame_is_1002() {
    let mut wire = Vec::new();
    encode_text("hi", &mut wire);
    assert_eq!(error(&wire), Some(WsError::Unmasked));
    assert_eq!(WsError::Unmasked.close_code(), 1002);
    // Found from the second byte, before the payload.
    assert_eq!(error(&wire[..2]), Some(WsError::Unmasked));
}

#[test]
fn reserved_bits_are_1002() {
    for bit in [0x40u8, 0x20, 0x10] {
        let mut wire = frame(true, Opcode::Text, b"x");
        wire[0] |= bit;
        let e = error(&wire[..1]).unwrap();
        assert_eq!(e, WsError::ReservedBits(bit >> 4));
        assert_eq!(e.close_code(), 1002);
    }
}

#[test]
fn unknown_opcodes_are_1002() {
    for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        let e = error(&[0x80 | op]).unwrap();
        assert_eq!(e, WsError::UnknownOpcode(op));
        assert_eq!(e.close_code(), 1002);
    }
}

#[test]
fn control_frames_at_most_125_bytes_and_whole() {
    for op in [Opcode::Ping, Opcode::Pong, Opcode::Close] {
        let e = error(&frame(true, op, &[b'a'; 126])).unwrap();
        assert_eq!(e, WsError::ControlTooLong(126));
        assert_eq!(e.close_code(), 1002);
        assert_eq!(
            error(&frame(false, op, b"")),
            Some(WsError::FragmentedControl)
        );
    }
    let (got, err, _) = decode(&mut WsCodec::new(), &frame(true, Opcode::Ping, &[1; 125]));
    assert_eq!((got, err), (vec![msg(Message::Ping(vec![1; 125]))], None));
    // A pong is yielded as it is.
    let (got, _, _) = decode(&mut WsCodec::new(), &frame(true, Opcode::Pong, b"beat"));
    assert_eq!(got, [msg(Message::Pong(b"beat".to_vec()))]);
}

#[test]
fn fragments_reassemble_around_control_frames() {
    let mut wire = frame(false, Opcode::Binary, b"ab");
    wire.extend(frame(false, Opcode::Continuation, b""));
    wire.extend(frame(true, Opcode::Pong, b"p"));
    wire.extend(frame(false, Opcode::Continuation, b"cd"));
    wire.extend(frame(true, Opcode::Continuation, b"e"));
    wire.extend(frame(true, Opcode::Text, b"next"));
    let (got, err, pending) = decode(&mut WsCodec::new(), &wire);
    assert_eq!(err, None);
    assert_eq!(pending, 0);
    assert_eq!(
        got,
        [
            Incoming::Fragment,
            Incoming::Fragment,
            msg(Message::Pong(b"p".to_vec())),
            Incoming::Fragment,
            msg(Message::Binary(b"abcde".to_vec())),
            msg(Message::Text("next".into())),
        ]
    );
}

#[test]
fn bad_fragmentation_is_1002() {
    // A continuation with no message open.
    let e = error(&frame(true, Opcode::Continuation, b"x")).unwrap();
    assert_eq!(
        (e.clone(), e.close_code()),
        (WsError::UnexpectedContinuation, 1002)
    );
    // A new message while one is open.
    let mut wire = frame(false, Opcode::Text, b"a");
    wire.extend(frame(true, Opcode::Binary, b"b"));
    let e = error(&wire).unwrap();
    assert_eq!(
        (e.clone(), e.close_code()),
        (WsError::ExpectedContinuation, 1002)
    );
    // After a finished message, a continuation is unexpected again.
    let mut wire = frame(false, Opcode::Text, b"a");
    wire.extend(frame(true, Opcode::Continuation, b"b"));
    wire.extend(frame(true, Opcode::Continuation, b"c"));
    assert_eq!(error(&wire), Some(WsError::UnexpectedContinuation));
}

#[test]
fn utf8_checked_across_fragments() {
    // "é" (C3 A9) and "€" (E2 82 AC) cut between fragments are fine.
    let mut wire = frame(false, Opcode::Text, b"caf\xc3");
    wire.extend(frame(false, Opcode::Continuation, b"\xa9 \xe2"));
    wire.extend(frame(false, Opcode::Continuation, b"\x82"));
    wire.extend(frame(true, Opcode::Continuation, b"\xac"));
    let (got, err, _) = decode(&mut WsCodec::new(), &wire);
    assert_eq!(err, None);
    assert_eq!(got.last(), Some(&msg(Message::Text("café €".into()))));

    // An invalid byte fails in the fragment that holds it, before the message ends.
    let mut wire = frame(false, Opcode::Text, b"ok");
    wire.extend(frame(false, Opcode::Continuation, b"\xff"));
    let (got, err, _) = decode(&mut WsCodec::new(), &wire);
    assert_eq!((got.len(), err.clone()), (1, Some(WsError::InvalidUtf8)));
    assert_eq!(err.unwrap().close_code(), 1007);
    // Code points over U+10FFFF fail as soon as their second byte shows it.
    let mut wire = frame(false, Opcode::Text, b"\xf4");
    wire.extend(frame(false, Opcode::Continuation, b"\x90"));
    assert_eq!(error(&wire), Some(WsError::InvalidUtf8));
    // A character still cut when the message ends.
    let mut wire = frame(false, Opcode::Text, b"a");
    wire.extend(frame(true, Opcode::Continuation, b"\xe2\x82"));
    assert_eq!(error(&wire), Some(WsError::InvalidUtf8));
    // Unfragmented.
    assert_eq!(
        error(&frame(true, Opcode::Text, b"\xc0\xaf")),
        Some(WsError::InvalidUtf8)
    );
    // Binary is not checked.
    assert_eq!(error(&frame(true, Opcode::Binary, b"\xff")), None);
}

#[test]
fn limits_are_1009_from_the_header() {
    let mut codec = WsCodec::new()
        .with_max_frame_length(10)
        .with_max_message_length(15);
    let wire = frame(true, Opcode::Binary, &[0; 11]);
    // Refused from the 2-byte header alone, before the payload arrives.
    let e = decode(&mut codec, &wire[..2]).1.unwrap();
    assert_eq!(e, WsError::FrameTooLarge { len: 11, max: 10 });
    assert_eq!(e.close_code(), 1009);

    let mut codec = WsCodec::new()
        .with_max_frame_length(10)
        .with_max_message_length(15);
    let mut wire = frame(false, Opcode::Text, &[b'a'; 10]);
    wire.extend(frame(true, Opcode::Continuation, &[b'a'; 5]));
    let (got, err, _) = decode(&mut codec, &wire);
    assert_eq!(err, None);
    assert_eq!(got[1], msg(Message::Text("a".repeat(15))));
    let mut wire = frame(false, Opcode::Text, &[b'a'; 10]);
    wire.extend(frame(true, Opcode::Continuation, &[b'a'; 6]));
    let e = decode(&mut codec, &wire).1.unwrap();
    assert_eq!(e, WsError::MessageTooLarge { len: 16, max: 15 });
    assert_eq!(e.close_code(), 1009);

    // A 64-bit length announcing far more than the limit: refused at once.
    let mut wire = vec![0x82, 0xff];
    wire.extend((1u64 << 40).to_be_bytes());
    assert_eq!(
        error(&wire),
        Some(WsError::FrameTooLarge {
            len: 1 << 40,
            max: DEFAULT_MAX_FRAME_LENGTH
        })
    );
}

#[test]
fn length_with_top_bit_is_1002() {
    let mut wire = vec![0x82, 0xff];
    wire.extend((1u64 << 63 | 5).to_be_bytes());
    let e = error(&wire).unwrap();
    assert_eq!((e.clone(), e.close_code()), (WsError::LengthOverflow, 1002));
}

#[test]
fn non_minimal_lengths_accepted() {
    // 3 bytes announced with the 16-bit form, then with the 64-bit form, then a ping with the
    // 16-bit form.
    let key = [1, 2, 3, 4];
    let masked: Vec<u8> = b"abc".iter().zip(key.iter()).map(|(b, k)| b ^ k).collect();
    let mut wire = vec![0x82, 0x80 | 126, 0, 3];
    wire.extend(key);
    wire.extend(&masked);
    wire.extend([0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 3]);
    wire.extend(key);
    wire.extend(&masked);
    wire.extend([0x89, 0x80 | 126, 0, 3]);
    wire.extend(key);
    wire.extend(&masked);
    let (got, err, pending) = decode(&mut WsCodec::new(), &wire);
    assert_eq!((err, pending), (None, 0));
    assert_eq!(
        got,
        [
            msg(Message::Binary(b"abc".to_vec())),
            msg(Message::Binary(b"abc".to_vec())),
            msg(Message::Ping(b"abc".to_vec())),
        ]
    );
}

#[test]
fn close_frames() {
    let (got, err, _) = decode(&mut WsCodec::new(), &frame(true, Opcode::Close, b""));
    assert_eq!((got, err), (vec![msg(Message::Close(None))], None));

    let (got, _, _) = decode(
        &mut WsCodec::new(),
        &frame(true, Opcode::Close, b"\x03\xe8bye"),
    );
    let close = CloseFrame {
        code: 1000,
        reason: "bye".into(),
    };
    assert_eq!(got, [msg(Message::Close(Some(close)))]);

    let e = error(&frame(true, Opcode::Close, b"\x03")).unwrap();
    assert_eq!((e.clone(), e.close_code()), (WsError::CloseTooShort, 1002));
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let e = error(&frame(true, Opcode::Close, &code.to_be_bytes())).unwrap();
        assert_eq!(
            (e.clone(), e.close_code()),
            (WsError::InvalidCloseCode(code), 1002)
        );
    }
    for code in [1000u16, 1001, 1002, 1003, 1007, 1011, 3000, 4999] {
        assert_eq!(
            error(&frame(true, Opcode::Close, &code.to_be_bytes())),
            None
        );
    }
    let e = error(&frame(true, Opcode::Close, b"\x03\xe8\xff")).unwrap();
    assert_eq!(
        (e.clone(), e.close_code()),
        (WsError::InvalidCloseReason, 1007)
    );

    // Nothing may follow a close; the decoder says it is closed.
    let mut codec = WsCodec::new();
    let mut wire = frame(true, Opcode::Close, b"");
    wire.extend(frame(true, Opcode::Text, b"late"));
    let (got, err, _) = decode(&mut codec, &wire);
    assert_eq!(got.len(), 1);
    assert_eq!(err, Some(WsError::FrameAfterClose));
    assert!(codec.is_closed());
    // A close may come between fragments, ending the stream.
    let mut wire = frame(false, Opcode::Text, b"a");
    wire.extend(frame(true, Opcode::Close, b"\x03\xe9"));
    assert_eq!(error(&wire), None);
}

#[test]
fn encoder_writes_minimal_unmasked_frames() {
    let mut out = Vec::new();
    encode_binary(&[7; 126], &mut out);
    assert_eq!(&out[..4], [0x82, 126, 0, 126]);
    assert_eq!(out.len(), 4 + 126);
    let mut out = Vec::new();
    encode_binary(&vec![7; 70_000], &mut out);
    assert_eq!(&out[..10], [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    let mut out = Vec::new();
    encode_ping(b"", &mut out).unwrap();
    encode_close(None, &mut out).unwrap();
    encode_close(Some((close::GOING_AWAY, "bye")), &mut out).unwrap();
    assert_eq!(out, b"\x89\x00\x88\x00\x88\x05\x03\xe9bye");

    // Refused control frames leave the output alone.
    let mut out = Vec::new();
    assert_eq!(
        encode_ping(&[0; 126], &mut out),
        Err(WsError::ControlTooLong(126))
    );
    assert_eq!(
        encode_close(Some((1000, &"x".repeat(124))), &mut out),
        Err(WsError::ControlTooLong(126))
    );
    assert_eq!(
        encode_close(Some((1005, "")), &mut out),
        Err(WsError::InvalidCloseCode(1005))
    );
    assert!(out.is_empty());
}

#[test]
fn messages_round_trip_through_a_client_encoding() {
    let messages = [
        Message::Text("héllo".into()),
        Message::Binary(vec![0; 65_536]),
        Message::Ping(vec![]),
        Message::Pong(b"x".to_vec()),
        Message::Close(Some(CloseFrame {
            code: 4000,
            reason: "done".into(),
        })),
    ];
    let mut wire = Vec::new();
    for m in &messages {
        // The server's encoding, then masked as a client would send it.
        let mut server = Vec::new();
        m.encode(&mut server).unwrap();
        let header = if server[1] == 127 {
            10
        } else if server[1] == 126 {
            4
        } else {
            2
        };
        let op = Opcode::from_bits(server[0] & 0x0F).unwrap();
        encode_frame(true, op, &server[header..], MASK, &mut wire);
    }
    let (got, err, pending) = decode(&mut WsCodec::new(), &wire);
    assert_eq!((err, pending), (None, 0));
    let want: Vec<Incoming> = messages.into_iter().map(Incoming::Message).collect();
    assert_eq!(got, want);
}

/// An upgrade request head: `method /chat http`, then `headers` (each ending in CRLF).
fn upgrade(method: &str, http: &str, headers: &str) -> Vec<u8> {
    format!("{method} /chat {http}\r\n{headers}\r\n").into_bytes()
}

const GOOD: &str = "Host: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

fn handshake_of(wire: &[u8]) -> Result<handshake::Accepted, handshake::HandshakeError> {
    let (req, _) = HttpCodec::new().decode(wire).unwrap().unwrap();
    handshake::accept(&req)
}

#[test]
fn handshake_rfc_example() {
    let accepted = handshake_of(&upgrade("GET", "HTTP/1.1", GOOD)).unwrap();
    assert_eq!(accepted.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let mut out = Vec::new();
    accepted.encode(&mut out);
    assert_eq!(
        out,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    );
}

#[test]
fn handshake_tokens_are_case_insensitive_lists() {
    let headers = "Host: x\r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n\
                   sec-websocket-key: AQIDBAUGBwgJCgsMDQ4PEA==\r\nsec-websocket-version: 13\r\n";
    assert!(handshake_of(&upgrade("GET", "HTTP/1.1", headers)).is_ok());
    // Connection split over two headers.
    let headers =
        "Host: x\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nConnection: upgrade\r\n\
                   Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\nSec-WebSocket-Version: 13\r\n";
    assert!(handshake_of(&upgrade("GET", "HTTP/1.1", headers)).is_ok());
}

#[test]
fn handshake_refusals() {
    use handshake::HandshakeError as E;
    let cases: &[(&str, &str, String, E, u16)] = &[
        ("POST", "HTTP/1.1", GOOD.into(), E::NotGet, 400),
        ("GET", "HTTP/1.0", GOOD.into(), E::NotHttp11, 400),
        (
            "GET",
            "HTTP/1.1",
            GOOD.replace("Host", "Hos"),
            E::NoHost,
            400,
        ),
        (
            "GET",
            "HTTP/1.1",
            GOOD.replace("websocket", "h2c"),
            E::NoUpgrade,
            400,
        ),
        (
            "GET",
            "HTTP/1.1",
            GOOD.replace("Connection: Upgrade", "Connection: close"),
            E::NoConnectionUpgrade,
            400,
        ),
        (
            "GET",
            "HTTP/1.1",
            GOOD.replace("Version: 13", "Version: 8"),
            E::UnsupportedVersion,
            426,
        ),
        (
            "GET",
            "HTTP/1.1",
            GOOD.replace("Sec-WebSocket-Version: 13\r\n", ""),
            E::UnsupportedVersion,
            426,
        ),
        (
            "GET",
            "HTTP/1.1",
            GOOD.replace("Sec-WebSocket-Key", "X"),
            E::BadKey,
            400,
        ),
        // 15 bytes, 17 bytes, not base64.
        (
            "GET",
            "HTTP/1.1",
            GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "AQIDBAUGBwgJCgsMDQ4P"),
            E::BadKey,
            400,
        ),
        (
            "GET",
            "HTTP/1.1",
            GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "AQIDBAUGBwgJCgsMDQ4PEBE="),
            E::BadKey,
            400,
        ),
        (
            "GET",
            "HTTP/1.1",
            GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "!!!!!!!!!!!!!!!!!!!!!!=="),
            E::BadKey,
            400,
        ),
        (
            "GET",
            "HTTP/1.1",
            format!("{GOOD}Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n"),
            E::BadKey,
            400,
        ),
    ];
    for (method, http, headers, want, status) in cases {
        let got = handshake_of(&upgrade(method, http, headers)).unwrap_err();
        assert_eq!((got, got.status()), (*want, *status), "{headers}");
    }

    let mut out = Vec::new();
    E::UnsupportedVersion.encode_response(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 426 "), "{text}");
    assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{text}");
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    let mut out = Vec::new();
    E::BadKey.encode_response(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 400 ") && !text.contains("Sec-WebSocket-Version"));
}

#[test]
fn ordinary_requests_are_not_upgrades() {
    let (req, _) = HttpCodec::new()
        .decode(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!handshake::is_upgrade(&req));
    let wire = upgrade("GET", "HTTP/1.1", GOOD);
    let (req, _) = HttpCodec::new().decode(&wire).unwrap().unwrap();
    assert!(handshake::is_upgrade(&req));
}
