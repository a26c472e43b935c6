//! The fuzz targets' invariants as property tests on stable Rust (S11): random scripts fed to
//! the same `evdrive_protocols::fuzz` entry points, so `cargo test` checks every codec and handler
//! under split input, short writes, `EINTR`, FIN and RST without a fuzzer.
//!
//! Scripts are built with a bias toward what the entry points read: a flags byte, a list of
//! peer operations, then a payload that is either protocol-shaped text or raw bytes. Case
//! counts stay small so each test takes a few seconds.

use evdrive_protocols::fuzz;
use proptest::prelude::*;

/// `[flags][n][n operations][payload]`, the input of the handler targets.
fn handler_script(flags: u8, ops: Vec<(u8, u8)>, payload: Vec<u8>) -> Vec<u8> {
    let mut v = vec![flags, ops.len() as u8];
    for (op, arg) in ops {
        v.extend([op, arg]);
    }
    v.extend(payload);
    v
}

/// Peer operations, mostly sends, budgets and settles (codes as in `PeerOp::read`).
fn ops() -> impl Strategy<Value = Vec<(u8, u8)>> {
    let op = prop_oneof![
        4 => (Just(0u8), any::<u8>()),
        3 => (Just(1u8), 0u8..40),
        1 => (Just(1u8), any::<u8>()),
        1 => (Just(2u8), Just(0u8)),
        1 => (Just(3u8), any::<u8>()),
        1 => (Just(4u8), any::<u8>()),
        2 => (Just(5u8), Just(0u8)),
        1 => (Just(6u8), any::<u8>()),
        1 => (0u8..=255, any::<u8>()),
    ];
    prop::collection::vec(op, 0..24)
}

/// Bytes drawn mostly from `alphabet`, so random input looks like the protocol.
fn text(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![4 => prop::sample::select(alphabet), 1 => any::<u8>()],
        0..max,
    )
}

/// The input of a codec target: limits, cuts, payload.
fn codec_script(payload: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 2]>(),
        prop::collection::vec(any::<u16>(), 0..8),
        any::<bool>(),
        payload,
    )
        .prop_map(|(mode, cuts, bytewise, payload)| {
            let mut v = mode.to_vec();
            v.push(cuts.len() as u8 | if bytewise { 0x80 } else { 0 });
            for c in cuts {
                v.extend(c.to_be_bytes());
            }
            v.extend(payload);
            v
        })
}

const LINES: &[u8] = b"ab\r\n /";
const RESP: &[u8] = b"*$0123\r\n-GETSET k";
const HTTP: &[u8] = b"GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n:0\r\n";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn codec_lines(data in codec_script(text(LINES, 300))) {
        fuzz::codec_lines(&data);
    }

    #[test]
    fn codec_length(data in codec_script(prop::collection::vec(any::<u8>(), 0..300))) {
        fuzz::codec_length(&data);
    }

    #[test]
    fn codec_resp(data in codec_script(text(RESP, 300))) {
        fuzz::codec_resp(&data);
    }

    #[test]
    fn codec_http(data in codec_script(text(HTTP, 300))) {
        fuzz::codec_http(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn echo_returns_exactly_its_input(
        ops in ops(),
        payload in prop::collection::vec(any::<u8>(), 0..3000),
    ) {
        fuzz::echo(&handler_script(0, ops, payload));
    }

    #[test]
    fn output_queue_keeps_every_byte_in_order(
        flags in any::<u8>(),
        ops in ops(),
        payload in prop::collection::vec(any::<u8>(), 0..3000),
    ) {
        fuzz::output_queue(&handler_script(flags, ops, payload));
    }

    #[test]
    fn http_answers_every_request_in_order(
        built in any::<bool>(),
        ops in ops(),
        raw in text(HTTP, 600),
        script in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let payload = if built { script } else { raw };
        fuzz::http(&handler_script(u8::from(built), ops, payload));
    }

    #[test]
    fn kv_answers_every_command_like_the_model(
        built in any::<bool>(),
        clock_start in 0u8..8,
        ops in ops(),
        raw in text(RESP, 600),
        script in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let payload = if built { script } else { raw };
        // Flag bits 1 to 3: where the clock starts, from zero to 2^62 ms.
        fuzz::kv(&handler_script(u8::from(built) | clock_start << 1, ops, payload));
    }

    #[test]
    fn chat_delivers_every_line_to_every_other_member(
        members in 0u8..3,
        built in any::<bool>(),
        ops in prop::collection::vec((any::<u8>(), any::<u8>()), 0..24),
        raw in text(b"hi /nickwome\r\n ", 600),
        script in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let payload = if built { script } else { raw };
        // Mostly sends: the low three bits pick the operation, 0 being a send.
        let ops = ops.into_iter().map(|(op, arg)| if op & 0x40 == 0 { (op & !7, arg) } else { (op, arg) }).collect();
        fuzz::chat(&handler_script(members | u8::from(built) << 2, ops, payload));
    }
}
