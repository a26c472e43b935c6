//! The chat target's script: lines for each member built from fuzz bytes, so that the fuzzer
//! reaches every command with good and bad arguments rather than only random bytes.

use reactor::testing::Script;

use crate::chat::MAX_LINE;

/// Builds the members' lines from a script: messages (with control characters, tabs, leading
/// slashes escaped or not), and every command with good and bad arguments.
pub(super) fn build_lines(payload: &[u8], members: usize) -> Vec<Vec<u8>> {
    const NICKS: [&str; 8] = [
        "guest1",
        "GUEST2",
        "ann",
        "Ann",
        "bob_-9",
        "",
        "bad nick",
        "x23456789012345678901",
    ];
    const WORDS: [&str; 8] = [
        "hi",
        "\x1b[31mred",
        "tab\there",
        "  pad ",
        "é",
        "/",
        "a\rb",
        "x",
    ];
    let mut s = Script::new(payload);
    let mut streams = vec![Vec::new(); members];
    // Lines at the length limit and past it; a few, as each costs 16 KiB per member.
    let mut long_lines = 0;
    while !s.is_empty() {
        let who = s.below(members);
        let kind = s.below(13);
        let line = match kind {
            12 if long_lines < 4 => {
                long_lines += 1;
                "x".repeat(MAX_LINE - 1 + s.below(4))
            }
            12 => String::new(),
            0 => "/who".to_owned(),
            1 => format!("/nick {}", s.pick(&NICKS)),
            2 => format!("/nick  {} ", s.pick(&NICKS)),
            3 => format!("/me {}", s.pick(&WORDS)),
            4 => "/me".to_owned(),
            5 => "/quit".to_owned(),
            6 => "/help".to_owned(),
            7 => format!(
                "/{}",
                s.pick(&[
                    "bogus",
                    "NICK x",
                    "who?",
                    "nickname",
                    "",
                    "join #Side",
                    "join side",
                    "part",
                    "rooms",
                    "list",
                    "msg guest1 hi there",
                    "msg nobody x",
                    "msg guest2",
                ])
            ),
            8 => format!("//{}", s.pick(&WORDS)),
            9 => String::new(),
            _ => {
                let n = s.below(4) + 1;
                (0..n).map(|_| s.pick(&WORDS)).collect::<Vec<_>>().join(" ")
            }
        };
        let stream = &mut streams[who];
        stream.extend_from_slice(line.as_bytes());
        stream.extend_from_slice(if s.byte() & 1 == 0 { b"\n" } else { b"\r\n" });
    }
    streams
}
