//! What a request's headers say about its framing: how its body is delimited (none,
//! `Content-Length` or chunked), whether the connection persists, and the smuggling defences
//! that refuse every ambiguous combination.

use super::chunked::ChunkedBody;
use super::head::Head;
use super::{BodyProgress, HttpError};

/// What the headers say about the body and the connection: the body's framing and whether the
/// connection persists.
pub(super) fn framing(head: &Head<'_>, max_body: usize) -> Result<(BodyProgress, bool), HttpError> {
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive = false;
    for h in head.headers.as_slice() {
        if h.name.eq_ignore_ascii_case("content-length") {
            // `Content-Length: 5, 5` and repeated equal headers are tolerated (RFC 9110 8.6).
            for part in h.value.split(|&b| b == b',') {
                let n = parse_decimal(trim(part))?;
                match content_length {
                    Some(prev) if prev != n => return Err(HttpError::ConflictingContentLength),
                    _ => content_length = Some(n),
                }
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            for coding in h
                .value
                .split(|&b| b == b',')
                .map(trim)
                .filter(|c| !c.is_empty())
            {
                // Only one coding, `chunked`, once: gzip and friends are not supported, and
                // `chunked, chunked` is an attempt to confuse.
                if chunked || !coding.eq_ignore_ascii_case(b"chunked") {
                    return Err(HttpError::UnsupportedTransferEncoding);
                }
                chunked = true;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(trim) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    if transfer_encoding {
        if content_length.is_some() {
            return Err(HttpError::ContentLengthWithTransferEncoding);
        }
        // An empty Transfer-Encoding, or one in HTTP/1.0 (RFC 9112 6.1: faulty framing).
        if !chunked || head.version == 0 {
            return Err(HttpError::UnsupportedTransferEncoding);
        }
    }
    let persistent = if head.version >= 1 {
        !close
    } else {
        keep_alive && !close
    };
    let body = match content_length {
        _ if chunked => BodyProgress::Chunked(ChunkedBody::new()),
        Some(n) if n > max_body as u64 => return Err(HttpError::BodyTooLarge { max: max_body }),
        // `n <= max_body`, so it fits a usize.
        Some(n) => BodyProgress::Length(n as usize),
        None => BodyProgress::Length(0),
    };
    Ok((body, persistent))
}

/// Removes leading and trailing spaces and tabs.
pub(super) fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Parses a `Content-Length` value: one or more decimal digits.
pub(super) fn parse_decimal(s: &[u8]) -> Result<u64, HttpError> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::InvalidContentLength);
    }
    s.iter()
        .try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        // Too many digits for a u64: certainly too large.
        .ok_or(HttpError::BodyTooLarge { max: usize::MAX })
}
