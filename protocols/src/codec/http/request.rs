//! The decoded request: its method, path, version, headers (inline up to a few, then on the
//! heap) and body, all borrowed from the input but a multi-chunk body.

use std::borrow::Cow;
use std::fmt;

use super::INLINE_HEADERS;

/// One request header, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The name, as sent (compare with `eq_ignore_ascii_case`).
    pub name: &'a str,
    /// The value, as sent minus surrounding whitespace; usually ASCII, not always.
    pub value: &'a [u8],
}

/// A request's headers: the first [`INLINE_HEADERS`] kept inline, more on the heap.
#[derive(Clone)]
pub(super) struct HeaderList<'a> {
    /// Headers when there are at most `INLINE_HEADERS`; `inline[..len]` is valid.
    pub(super) inline: [Header<'a>; INLINE_HEADERS],
    /// Number of valid entries in `inline`.
    pub(super) len: usize,
    /// All headers when there are more than `INLINE_HEADERS`; empty otherwise.
    pub(super) spilled: Vec<Header<'a>>,
}

impl<'a> HeaderList<'a> {
    /// Copies headers out of `httparse`'s array.
    pub(super) fn new(parsed: &[httparse::Header<'a>]) -> Self {
        let convert = |h: &httparse::Header<'a>| Header {
            name: h.name,
            value: h.value,
        };
        let mut list = HeaderList {
            inline: [Header {
                name: "",
                value: b"",
            }; INLINE_HEADERS],
            len: 0,
            spilled: Vec::new(),
        };
        if parsed.len() <= INLINE_HEADERS {
            for (slot, h) in list.inline.iter_mut().zip(parsed) {
                *slot = convert(h);
            }
            list.len = parsed.len();
        } else {
            list.spilled = parsed.iter().map(convert).collect();
        }
        list
    }

    /// The headers, in order.
    pub(super) fn as_slice(&self) -> &[Header<'a>] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }
}

impl fmt::Debug for HeaderList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// One decoded request, borrowing from the input.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The method, e.g. `GET`.
    pub(super) method: &'a str,
    /// The request target, e.g. `/index.html?x=1`.
    pub(super) path: &'a str,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub(super) version: u8,
    /// The headers, in order.
    pub(super) headers: HeaderList<'a>,
    /// The body: borrowed, except for a chunked body of several chunks.
    pub(super) body: Cow<'a, [u8]>,
    /// Whether the connection persists after this request.
    pub(super) keep_alive: bool,
    /// Whether the body came chunked.
    pub(super) chunked: bool,
}

impl<'a> Request<'a> {
    /// The method, e.g. `GET` (case-sensitive, as HTTP defines it).
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The request target as sent, e.g. `/index.html?x=1`.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The headers, in the order received.
    pub fn headers(&self) -> &[Header<'a>] {
        self.headers.as_slice()
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// The body; empty when the request has none.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body, taken out of the request.
    pub fn into_body(self) -> Cow<'a, [u8]> {
        self.body
    }

    /// Whether the body came with `Transfer-Encoding: chunked`.
    pub fn is_chunked(&self) -> bool {
        self.chunked
    }

    /// Whether the connection stays open after the response: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }
}
