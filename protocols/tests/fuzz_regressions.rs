//! Replays every input kept under `fuzz/regressions/<target>/` through the entry point its fuzz
//! target calls, plus a few hand-written scripts, so that `cargo test` on stable Rust checks
//! what the fuzzer found (S11).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use evdrive_protocols::fuzz;

/// An entry point of `evdrive_protocols::fuzz`.
type Check = fn(&[u8]);

/// Every protocol fuzz target and the entry point it calls.
const TARGETS: &[(&str, Check)] = &[
    ("codec_lines", fuzz::codec_lines),
    ("codec_length", fuzz::codec_length),
    ("codec_resp", fuzz::codec_resp),
    ("codec_http", fuzz::codec_http),
    ("codec_ws", fuzz::codec_ws),
    ("echo", fuzz::echo),
    ("output_queue", fuzz::output_queue),
    ("http", fuzz::http),
    ("kv", fuzz::kv),
    ("chat", fuzz::chat),
    ("chat_bus", fuzz::chat_bus),
];

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

/// The inputs kept for `target`, sorted by name (`.gitkeep` and other dot files skipped).
fn inputs(target: &str) -> io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(regressions().join(target))? {
        let path = entry?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if path.is_file() && !hidden {
            let bytes = fs::read(&path)?;
            files.push((path, bytes));
        }
    }
    files.sort();
    Ok(files)
}

#[test]
fn every_kept_input_passes() -> io::Result<()> {
    for &(target, check) in TARGETS {
        let files = inputs(target)?;
        assert!(!files.is_empty(), "no input kept for {target}");
        for (path, bytes) in files {
            eprintln!("{target}: {}", path.display());
            check(&bytes);
        }
    }
    Ok(())
}

/// `[flags][n][n operations][payload]` with the operations given as `(op, arg)` pairs.
fn script(flags: u8, ops: &[(u8, u8)], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, ops.len() as u8];
    for &(op, arg) in ops {
        v.extend([op, arg]);
    }
    v.extend_from_slice(payload);
    v
}

// The operation codes of `PeerOp::read`.
const SEND: u8 = 0;
const BUDGET: u8 = 1;
const UNLIMITED: u8 = 2;
const EINTR: u8 = 3;
const READ_CHUNK: u8 = 4;
const SETTLE: u8 = 5;
const ADVANCE: u8 = 6;
const FIN: u8 = 7;
const RESET: u8 = 8;

#[test]
fn echo_under_short_writes_fin_and_reset() {
    let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let trickle = [
        (READ_CHUNK, 7),
        (BUDGET, 0),
        (SEND, 100),
        (SETTLE, 0),
        (BUDGET, 3),
        (EINTR, 2),
        (SEND, 200),
        (SETTLE, 0),
        (BUDGET, 200),
        (SETTLE, 0),
        (UNLIMITED, 0),
    ];
    fuzz::echo(&script(0, &trickle, &payload));
    fuzz::output_queue(&script(0x10, &trickle, &payload));
    fuzz::output_queue(&script(0x53, &trickle, &payload));
    // The peer half-closes while its echo is still blocked.
    let fin = [(BUDGET, 1), (SEND, 50), (SETTLE, 0), (FIN, 0), (SETTLE, 0)];
    fuzz::echo(&script(0, &fin, &payload));
    // The peer resets with output queued, and before the connection is even accepted.
    let reset = [(BUDGET, 5), (SEND, 60), (SETTLE, 0), (RESET, 0)];
    fuzz::echo(&script(0, &reset, &payload));
    fuzz::echo(&script(0, &[(RESET, 0)], b"x"));
}

#[test]
fn http_pipelined_requests_and_errors() {
    let requests = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
                     HEAD /health HTTP/1.1\r\n\r\n\
                     POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\
                     GET /nope?x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n\
                     GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    let ops = [(READ_CHUNK, 5), (BUDGET, 20), (SEND, 40), (SETTLE, 0)];
    fuzz::http(&script(0, &ops, requests));
    fuzz::http(&script(
        0,
        &[],
        b"GET / HTTP/1.1\r\n\r\nBAD REQUEST\r\n\r\n",
    ));
    fuzz::http(&script(0, &[(SEND, 10), (FIN, 0)], requests));
    // Built requests.
    fuzz::http(&script(1, &ops, &[7; 300]));
}

#[test]
fn http_request_timeout_runs_from_each_requests_first_byte() {
    // The first request trickles in over 15 s; the second starts in the read that completes
    // it. Six seconds later the second has had only 6 of its 20 s: no 408 yet.
    let ops = [
        (SEND, 15),
        (SETTLE, 0),
        (ADVANCE, 255),
        (ADVANCE, 45),
        (SEND, 23),
        (SETTLE, 0),
        (ADVANCE, 120),
    ];
    fuzz::http(&script(
        0,
        &ops,
        b"GET / HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\n",
    ));
    // A request unfinished 20 s after its first byte gets 408 and the connection closes.
    let ops = [(SEND, 9), (SETTLE, 0), (ADVANCE, 255), (ADVANCE, 145)];
    fuzz::http(&script(0, &ops, b"GET / HTTP/1.1\r\n\r\n"));
}

#[test]
fn kv_model_and_raw_commands() {
    let raw = b"PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nGET k\r\n\r\n*0\r\nINCR k\r\nQUIT\r\nPING\r\n";
    fuzz::kv(&script(0, &[(READ_CHUNK, 3), (BUDGET, 4)], raw));
    fuzz::kv(&script(0, &[], b"PING\r\n*1\r\n$x\r\n"));
    // Built commands: every command kind, in both forms and both cases.
    let built: Vec<u8> = (0..=255u8)
        .flat_map(|i| [i, i / 3, i / 7, i / 11])
        .collect();
    fuzz::kv(&script(
        1,
        &[(SEND, 30), (ADVANCE, 200), (SETTLE, 0)],
        &built,
    ));
}

/// Regression: times to live over their whole range, on a reactor that has run for 616 ms
/// (past which `EX 18446744073709551` wrapped the wheel's deadline into the past, where it
/// re-armed every turn), then clock moves past the short ones.
#[test]
fn kv_times_to_live_over_their_whole_range() {
    // Built commands: `[form][which][key][value]…`, as `fuzz::kv` reads them.
    let set_ex = |key: u8, unit: u8, ttl: u8| [0, 7, key, 0, unit, 0, ttl];
    let cmd = |which: u8, key: u8| [0, which, key, 0];
    let mut built = Vec::new();
    built.extend(set_ex(0, 0, 16)); // SET k0 v EX 18446744073709551: refused
    built.extend(cmd(19, 0)); // TTL k0: -2
    built.extend(set_ex(1, 1, 9)); // SET k1 v PX 9223372036854775807
    built.extend(cmd(19, 1)); // TTL k1, without overflowing
    built.extend(cmd(20, 1)); // PTTL k1
    built.extend([0, 16, 1, 0, 13]); // EXPIRE k1 9223372036854776: refused
    built.extend(set_ex(2, 1, 5)); // SET k2 v PX 50
    built.extend([0, 21, 0, 0, 12]); // SETEX k0 9223372036854775 v
    built.extend(cmd(23, 0)); // DBSIZE
    built.extend(cmd(9, 2)); // GET k2, after the clock moved
    built.extend(cmd(23, 0)); // DBSIZE
                              // Flags: built commands (bit 0), the clock starting at 616 ms (bits 1 to 3).
    let ops = [
        (SEND, 60),
        (SETTLE, 0),
        (ADVANCE, 1),
        (SEND, 8),
        (SETTLE, 0),
    ];
    fuzz::kv(&script(1 | 1 << 1, &ops, &built));
}

#[test]
fn codecs_on_hand_written_inputs() {
    fuzz::codec_lines(b"\x04\x00\x82\x00\x03\x00\x07one\ntwo\r\nthree is long\n");
    fuzz::codec_lines(b"\x84\x00\x81\x00\x02one\ntwenty-five bytes of line\nx");
    fuzz::codec_length(b"\x81\x04\x80\x03abc\x00\x01z\xff");
    fuzz::codec_resp(b"\x03\x0f\x81\x00\x05*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n");
    fuzz::codec_resp(b"\x83\x0f\x80\x02\x03GET\x01k\x00\x04\x01a\x01b\x01c\x01d");
    fuzz::codec_http(b"\x0f\x03\x81\x00\x09GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    fuzz::codec_http(b"\x8f\x03\x80\x01\x02\x30\x05hello\x00\x03\x12");
}

#[test]
fn chat_lines_commands_and_departures() {
    // Raw lines dealt to three members: messages, a nick change, /who, /me, /quit.
    let raw = b"hello there\n/nick ann\n/who\n/me waves\n\x1b[2Jboo\r\n/quit\nlate\n";
    let ops = [
        (SEND, 20),
        (8 | SEND, 40),
        (16 | SEND, 127),
        (BUDGET, 3),
        (SEND, 127),
    ];
    fuzz::chat(&script(1, &ops, raw));
    // Built lines; one member half-closes, one is reset.
    let built: Vec<u8> = (0..=255u8).flat_map(|i| [i, i / 5, i / 3]).collect();
    let ops = [
        (SEND, 200),
        (8 | BUDGET, 2),
        (8 | SEND, 200),
        (16 | SEND, 100),
        (6, 0),
        (8 | 7, 0),
        (16 | SEND, 255),
    ];
    fuzz::chat(&script(4 | 2, &ops, &built));
    // Built lines at the length limit and one past it: the sender alone is closed.
    let long = [
        0, 12, 1, 0, 1, 12, 2, 1, 0, 11, 0, 0, 0, 0, 1, 12, 0, 0, 0, 11, 1, 0, 0, 0,
    ];
    let ops = [
        (SEND, 255),
        (8 | SEND, 255),
        (SEND, 255),
        (8 | SEND, 255),
        (8 | SEND, 255),
    ];
    fuzz::chat(&script(4, &ops, &long));
}
