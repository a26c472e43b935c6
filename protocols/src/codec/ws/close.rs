//! Close status codes (RFC 6455 section 7.4): the ones this codec sends, and which ones a peer
//! may send.
//!
//! Codes are plain `u16`s, because a peer may send any code in the ranges left to libraries,
//! frameworks and applications (3000 to 4999); the constants name the ones that matter here.

/// 1000: the purpose of the connection has been fulfilled.
pub const NORMAL: u16 = 1000;
/// 1001: the endpoint is going away (server shutting down, browser leaving the page).
pub const GOING_AWAY: u16 = 1001;
/// 1002: the peer broke the protocol (unmasked frame, bad opcode, bad fragmentation...).
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1003: a kind of data the endpoint cannot accept (binary where only text is understood).
pub const UNSUPPORTED_DATA: u16 = 1003;
/// 1007: a text message or close reason that is not valid UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// 1008: a message that violates the endpoint's policy.
pub const POLICY_VIOLATION: u16 = 1008;
/// 1009: a frame or message too big to process.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// 1011: the server met an unexpected condition.
pub const INTERNAL_ERROR: u16 = 1011;

/// Whether a peer may put `code` in a close frame.
///
/// Allowed: 1000 to 1003, 1007 to 1014 (1012 to 1014 were registered with IANA after the RFC:
/// service restart, try again later, bad gateway), and 3000 to 4999 (registered and private
/// codes). Refused: everything below 1000; 1004 (reserved); 1005, 1006 and 1015 (which only
/// stand in for "no code", "closed abnormally" and "TLS failure" locally and must never be
/// sent); 1016 to 2999 (reserved for future revisions of the protocol); 5000 and above.
pub fn is_valid(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_codes() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1014, 3000, 4999,
        ] {
            assert!(is_valid(code), "{code}");
        }
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid(code), "{code}");
        }
    }
}
