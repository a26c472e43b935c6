//! HTTP/1.x requests, and the responses a server writes back.
//!
//! The request head (request line and headers) is parsed by [`httparse`]; this module adds the
//! framing around it:
//! - limits: the head's size, the number of headers, the body's size;
//! - the body: none, `Content-Length`, or `Transfer-Encoding: chunked` (chunk extensions
//!   ignored, trailers skipped);
//! - request smuggling defences: several different `Content-Length` values, `Content-Length`
//!   together with `Transfer-Encoding`, any transfer coding other than a lone `chunked`, and
//!   `Transfer-Encoding` in an HTTP/1.0 request are all errors, never guesses;
//! - persistence: [`Request::keep_alive`] says whether the connection stays open afterwards
//!   (HTTP/1.1: yes unless `Connection: close`; HTTP/1.0: no unless `Connection: keep-alive`);
//! - pipelining: requests are decoded one after another from the same buffer.
//!
//! A frame is a [`Request`] borrowing method, path, headers and body from the input; a chunked
//! body of more than one chunk is the only thing copied. An error is a malformed or oversized
//! request: answer with [`HttpError::status`] (400, 413, 431 or 501) and
//! [`Connection::Close`], then close.
//!
//! # Limits
//!
//! | limit | default | error |
//! |---|---|---|
//! | head, request line to blank line | 8 KiB | [`HttpError::HeadTooLarge`] (431) |
//! | headers | 64 (at most [`MAX_HEADERS_LIMIT`]) | [`HttpError::TooManyHeaders`] (431) |
//! | body on the wire | 1 MiB | [`HttpError::BodyTooLarge`] (413) |
//!
//! For a chunked body, the body limit counts the encoded bytes, chunk sizes and trailers
//! included, so a request never needs more than head limit + body limit bytes of buffer.
//!
//! # Example
//!
//! ```
//! use evdrive_protocols::codec::http::{Connection, HttpCodec, HttpError, Response};
//! use evdrive_protocols::codec::Decoder;
//!
//! let mut codec = HttpCodec::new();
//! let wire = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
//!              GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
//!
//! let (req, n) = codec.decode(wire)?.unwrap();
//! assert_eq!((req.method(), req.path(), req.version()), ("POST", "/echo", 1));
//! assert_eq!(req.header("host"), Some(&b"x"[..]));
//! assert_eq!(req.body(), b"hello");
//! assert!(req.keep_alive());
//!
//! let mut out = Vec::new();
//! let response = Response {
//!     headers: &[("Content-Type", b"text/plain")],
//!     body: req.body(),
//!     connection: Connection::for_request(&req),
//!     ..Response::new(200)
//! };
//! response.encode(&mut out)?;
//! assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello");
//!
//! let (req, m) = codec.decode(&wire[n..])?.unwrap(); // the pipelined second request
//! assert!(!req.keep_alive());
//! assert_eq!(n + m, wire.len());
//! # Ok::<(), HttpError>(())
//! ```
//!
//! # Implementation notes
//!
//! The decoder and its errors live here; the rest is split by subject: `head` (where a head
//! ends, and parsing it), `framing` (what the headers say about the body and the connection,
//! and the smuggling defences), `chunked` (chunked bodies), `request` (the decoded [`Request`])
//! and `response` (encoding a [`Response`]).
//!
//! Between calls returning `Ok(None)` the decoder remembers how far it searched for blank lines
//! (where a head can end) and, once the head is complete, the head's length and how far the body
//! has been read (for a chunked body, the chunk parser's state). `httparse` runs on every arrival
//! while the head is within its first eighth of the limit (1 KiB by default, so garbage such as a
//! TLS hello is refused at once), then only when a blank line arrives or the limit is reached: a
//! head trickling in a byte at a time is not re-parsed on every byte. Its output borrows the
//! input and is not kept between calls, so a request whose body arrives later has its head
//! parsed a second time, once, when the body is complete. Which prefix gets parsed depends only
//! on the bytes, never on how they were cut, so neither does the outcome.
//!
//! One pathological input still costs quadratic time: a stream of empty lines before the request
//! line (which `httparse` skips, as RFC 9112 allows) makes every byte a blank line. The head
//! limit bounds it: about 32 MB of scanning for an 8 KiB limit delivered one byte per read.

mod chunked;
mod framing;
mod head;
mod request;
mod response;
#[cfg(test)]
mod tests;

pub use request::{Header, Request};
pub use response::{reason_phrase, Connection, Response};

use std::borrow::Cow;
use std::fmt;

use super::Decoder;
use chunked::{assemble_chunked, ChunkedBody};
use framing::framing;
use head::{HeadProgress, EAGER_FRACTION};

/// Default maximum size of a request head, request line to blank line: 8 KiB.
pub const DEFAULT_MAX_HEAD_LENGTH: usize = 8 * 1024;
/// Default maximum number of headers.
pub const DEFAULT_MAX_HEADERS: usize = 64;
/// The most headers a decoder can be set to accept (the parser's header array lives on the
/// stack).
pub const MAX_HEADERS_LIMIT: usize = 128;
/// Default maximum size of a body on the wire: 1 MiB.
pub const DEFAULT_MAX_BODY_LENGTH: usize = 1024 * 1024;

/// Headers kept inside a [`Request`] without a heap allocation; more spill to a `Vec`.
const INLINE_HEADERS: usize = 16;

/// Decoder for HTTP/1.x requests, with limits on head, headers and body.
#[derive(Debug, Clone)]
pub struct HttpCodec {
    /// Longest head accepted.
    max_head_length: usize,
    /// Most headers accepted; at most [`MAX_HEADERS_LIMIT`].
    max_headers: usize,
    /// Longest body accepted, as bytes on the wire.
    max_body_length: usize,
    /// Progress on the unfinished request.
    state: State,
}

/// How far an unfinished request has been read; valid while the caller offers the same prefix
/// again.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Waiting for the end of the head.
    Head(HeadProgress),
    /// The head is complete and valid; waiting for the body.
    Body {
        /// Length of the head: the body starts there.
        head_len: usize,
        /// The body's framing and progress.
        body: BodyProgress,
    },
}

/// How a body is delimited, and how far it has been read.
#[derive(Debug, Clone, Copy)]
enum BodyProgress {
    /// Exactly this many bytes (zero when the request has no body).
    Length(usize),
    /// Chunked; the parser's state.
    Chunked(ChunkedBody),
}

/// Errors of [`HttpCodec`] and [`Response::encode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The head is not valid HTTP/1.x, as `httparse` reports.
    Malformed(httparse::Error),
    /// The head is longer than the maximum.
    HeadTooLarge {
        /// The maximum head length.
        max: usize,
    },
    /// The head has more headers than the maximum.
    TooManyHeaders {
        /// The maximum number of headers.
        max: usize,
    },
    /// A `Content-Length` value is not a decimal number.
    InvalidContentLength,
    /// `Content-Length` values that differ.
    ConflictingContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`: a request smuggling attempt, or a broken
    /// client.
    ContentLengthWithTransferEncoding,
    /// A `Transfer-Encoding` other than a lone `chunked`, or any `Transfer-Encoding` in an
    /// HTTP/1.0 request.
    UnsupportedTransferEncoding,
    /// A chunked body's framing is broken: bad chunk size, missing CRLF, bad trailer line.
    InvalidChunk,
    /// The body is longer than the maximum.
    BodyTooLarge {
        /// The maximum body length.
        max: usize,
    },
    /// A [`Response`] that cannot be written: status outside 100..=999, a header name that is
    /// not a token or is one the encoder writes itself, or a header value with CR, LF or NUL.
    InvalidResponse,
}

impl HttpError {
    /// The status code to answer this error with before closing the connection.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::HeadTooLarge { .. } | HttpError::TooManyHeaders { .. } => 431,
            HttpError::BodyTooLarge { .. } => 413,
            HttpError::UnsupportedTransferEncoding => 501,
            HttpError::InvalidResponse => 500,
            _ => 400,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Malformed(e) => write!(f, "malformed request head: {e}"),
            HttpError::HeadTooLarge { max } => write!(f, "request head over {max} bytes"),
            HttpError::TooManyHeaders { max } => write!(f, "more than {max} request headers"),
            HttpError::InvalidContentLength => f.write_str("invalid Content-Length"),
            HttpError::ConflictingContentLength => f.write_str("conflicting Content-Length values"),
            HttpError::ContentLengthWithTransferEncoding => {
                f.write_str("both Content-Length and Transfer-Encoding")
            }
            HttpError::UnsupportedTransferEncoding => f.write_str("unsupported Transfer-Encoding"),
            HttpError::InvalidChunk => f.write_str("invalid chunked encoding"),
            HttpError::BodyTooLarge { max } => write!(f, "request body over {max} bytes"),
            HttpError::InvalidResponse => f.write_str("invalid response status or header"),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HttpError::Malformed(e) => Some(e),
            _ => None,
        }
    }
}

impl HttpCodec {
    /// A decoder with the default limits (see the [module documentation](self)).
    pub fn new() -> Self {
        HttpCodec {
            max_head_length: DEFAULT_MAX_HEAD_LENGTH,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_length: DEFAULT_MAX_BODY_LENGTH,
            state: State::Head(HeadProgress::default()),
        }
    }

    /// Sets the longest head accepted, request line to blank line included.
    pub fn with_max_head_length(mut self, max: usize) -> Self {
        self.max_head_length = max;
        self
    }

    /// Sets the most headers accepted; values over [`MAX_HEADERS_LIMIT`] are lowered to it.
    pub fn with_max_headers(mut self, max: usize) -> Self {
        self.max_headers = max.min(MAX_HEADERS_LIMIT);
        self
    }

    /// Sets the longest body accepted, as bytes on the wire.
    pub fn with_max_body_length(mut self, max: usize) -> Self {
        self.max_body_length = max;
        self
    }

    /// Decodes one request, leaving the progress state as it should be for the next call only
    /// when the answer is `Ok(None)`.
    fn decode_request<'a>(
        &mut self,
        buf: &'a [u8],
    ) -> Result<Option<(Request<'a>, usize)>, HttpError> {
        // Step 1: the head, unless an earlier call already validated it.
        let (head, head_len, mut body) = match self.state {
            State::Body { head_len, body } if head_len <= buf.len() => (None, head_len, body),
            State::Head { .. } | State::Body { .. } => {
                let mut progress = match self.state {
                    State::Head(progress) => progress,
                    State::Body { .. } => HeadProgress::default(),
                };
                let window = &buf[..buf.len().min(self.max_head_length)];
                let window_full = buf.len() >= self.max_head_length;
                // Parse up to the last blank line (where the head may end), or up to the eager
                // prefix if that is longer, or everything once the window is full.
                progress.scan(window);
                let eager = window.len().min(self.max_head_length / EAGER_FRACTION);
                let target = if window_full {
                    window.len()
                } else {
                    progress.blank_line_end.max(eager)
                };
                // Parsing the same prefix again would give the same `Partial`.
                let head = if target > progress.parsed {
                    self.parse_head(&window[..target])?
                } else {
                    None
                };
                let Some(head) = head else {
                    if window_full {
                        return Err(HttpError::HeadTooLarge {
                            max: self.max_head_length,
                        });
                    }
                    progress.parsed = target;
                    self.state = State::Head(progress);
                    return Ok(None);
                };
                let (framing, _) = framing(&head, self.max_body_length)?;
                let len = head.len;
                (Some(head), len, framing)
            }
        };

        // Step 2: the body.
        let region = &buf[head_len..];
        let (body_bytes, body_len) = match &mut body {
            BodyProgress::Length(n) => match region.get(..*n) {
                Some(bytes) => (Cow::Borrowed(bytes), *n),
                None => {
                    self.state = State::Body { head_len, body };
                    return Ok(None);
                }
            },
            BodyProgress::Chunked(chunked) => {
                let window = &region[..region.len().min(self.max_body_length)];
                if !chunked.advance(window, self.max_body_length, |_, _| {})? {
                    if region.len() >= self.max_body_length {
                        return Err(HttpError::BodyTooLarge {
                            max: self.max_body_length,
                        });
                    }
                    self.state = State::Body { head_len, body };
                    return Ok(None);
                }
                let len = chunked.pos;
                (assemble_chunked(&window[..len], self.max_body_length)?, len)
            }
        };

        // Step 3: the head's borrowed parts, parsing it again if it was parsed by an earlier call.
        let head = match head {
            Some(head) => head,
            None => match self.parse_head(&buf[..head_len])? {
                Some(head) if head.len == head_len => head,
                // Cannot happen while the caller keeps the contract.
                _ => {
                    return Err(HttpError::HeadTooLarge {
                        max: self.max_head_length,
                    })
                }
            },
        };
        let (_, keep_alive) = framing(&head, self.max_body_length)?;
        let chunked = matches!(body, BodyProgress::Chunked(_));
        let request = Request {
            method: head.method,
            path: head.path,
            version: head.version,
            headers: head.headers,
            body: body_bytes,
            keep_alive,
            chunked,
        };
        Ok(Some((request, head_len + body_len)))
    }
}

impl Default for HttpCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for HttpCodec {
    type Frame<'a> = Request<'a>;
    type Error = HttpError;

    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(Request<'a>, usize)>, HttpError> {
        let result = self.decode_request(buf);
        if !matches!(result, Ok(None)) {
            self.reset();
        }
        result
    }

    fn reset(&mut self) {
        self.state = State::Head(HeadProgress::default());
    }
}
