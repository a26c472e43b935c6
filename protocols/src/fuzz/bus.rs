//! The chat bus target: what a node reads on its subscribed Redis connection, which anyone
//! who can reach the Redis server can shape.

use crate::chat::bus::message;
use crate::codec::resp::{Reply, ReplyCodec};

use super::codecs::decode_all_ways;

/// Checks what the chat bus does with its subscriber's input: [`ReplyCodec`] decodes it the same
/// however it is cut, never panics, and every `message` push's payload either is refused by the
/// bus message decoder or re-encodes to the same bytes; the whole input is also tried as one
/// payload.
///
/// Input: the first byte `k` (bit 7: also decode byte by byte), then `k % 4` cut offsets of two
/// bytes each, then the stream.
///
/// # Panics
///
/// If an invariant is broken.
pub fn chat_bus(data: &[u8]) {
    check_payload(data);
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(k % 4);
    if rest.len() < 2 * n {
        return;
    }
    let (cut_bytes, stream) = rest.split_at(2 * n);
    let cuts: Vec<usize> = cut_bytes
        .chunks(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    let decoded = decode_all_ways(
        ReplyCodec::new,
        stream,
        &cuts,
        k & 0x80 != 0,
        |reply| match reply {
            Reply::Array(items) => match items.as_slice() {
                [Reply::Bulk(b"message"), _, Reply::Bulk(payload)] => Some(payload.to_vec()),
                _ => None,
            },
            _ => None,
        },
    );
    for payload in decoded.frames.iter().flatten() {
        check_payload(payload);
    }
}

/// A payload is refused, or re-encodes to itself.
fn check_payload(payload: &[u8]) {
    if let Ok((node, msg)) = message::decode(payload) {
        let mut again = Vec::new();
        message::encode(node, &msg, &mut again);
        assert_eq!(again, payload, "{msg:?} does not re-encode to its payload");
    }
}
