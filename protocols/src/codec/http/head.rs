//! The request head: finding where it ends without re-parsing a trickling head on every byte,
//! and parsing it with `httparse` into borrowed parts.

use std::mem::MaybeUninit;

use super::request::HeaderList;
use super::{HttpCodec, HttpError, MAX_HEADERS_LIMIT};

impl HttpCodec {
    /// Parses the head at the front of `window` (at most the head limit): `Ok(None)` if it is
    /// unfinished.
    pub(super) fn parse_head<'a>(&self, window: &'a [u8]) -> Result<Option<Head<'a>>, HttpError> {
        let mut storage =
            [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_LIMIT];
        let mut req = httparse::Request::new(&mut []);
        match req.parse_with_uninit_headers(window, &mut storage[..self.max_headers]) {
            Ok(httparse::Status::Complete(len)) => Ok(Some(Head {
                len,
                method: req.method.unwrap_or(""),
                path: req.path.unwrap_or(""),
                version: req.version.unwrap_or(1),
                headers: HeaderList::new(req.headers),
            })),
            Ok(httparse::Status::Partial) => Ok(None),
            Err(httparse::Error::TooManyHeaders) => Err(HttpError::TooManyHeaders {
                max: self.max_headers,
            }),
            Err(e) => Err(HttpError::Malformed(e)),
        }
    }
}

/// The part of the head limit parsed on every arrival, as a fraction: with the 8 KiB default,
/// the first 1 KiB. Beyond it, the head is parsed again only when a blank line arrives.
pub(super) const EAGER_FRACTION: usize = 8;

/// How far an unfinished head has been looked at.
///
/// The head is parsed with `httparse` up to a target that depends only on the bytes: the whole
/// window once it is full; otherwise the end of the last blank line (`\n\n` or `\n\r\n`, where
/// a head can end) or the eager prefix, whichever is longer. Whatever the cuts, the last call
/// parses the same prefix as a single call would, so the outcome cannot depend on them; and
/// past the eager prefix a trickling head is parsed once per blank line, not once per byte.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct HeadProgress {
    /// Bytes already searched for blank lines.
    pub(super) scanned: usize,
    /// Just past the last blank line found, or zero.
    pub(super) blank_line_end: usize,
    /// Length of the prefix last parsed (which was incomplete).
    pub(super) parsed: usize,
}

impl HeadProgress {
    /// Searches the bytes of `window` not yet searched for blank lines.
    pub(super) fn scan(&mut self, window: &[u8]) {
        // A stale state (the caller broke the contract) must not index out of bounds.
        if self.scanned > window.len() {
            *self = HeadProgress::default();
        }
        for i in self.scanned..window.len() {
            let blank = window[i] == b'\n'
                && ((i >= 1 && window[i - 1] == b'\n')
                    || (i >= 2 && window[i - 1] == b'\r' && window[i - 2] == b'\n'));
            if blank {
                self.blank_line_end = i + 1;
            }
        }
        self.scanned = window.len();
    }
}

/// A parsed request head, borrowing from the input.
pub(super) struct Head<'a> {
    /// Length of the head, blank line included.
    pub(super) len: usize,
    /// Request method.
    pub(super) method: &'a str,
    /// Request target.
    pub(super) path: &'a str,
    /// Minor version: 0 or 1.
    pub(super) version: u8,
    /// The headers, in order.
    pub(super) headers: HeaderList<'a>,
}
