//! Writing responses: the status line, `Content-Length`, `Connection` and extra headers, with
//! the checks that keep a response well-formed.

use super::super::num::write_u64;
use super::request::Request;
use super::HttpError;

/// What a response says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Connection {
    /// No `Connection` header: the HTTP/1.1 default, the connection stays open.
    #[default]
    Default,
    /// `Connection: close`: the server closes after this response.
    Close,
    /// `Connection: keep-alive`: needed to keep an HTTP/1.0 client's connection open.
    KeepAlive,
}

impl Connection {
    /// The right choice for answering `req`: close if it does not keep the connection alive,
    /// say `keep-alive` explicitly to an HTTP/1.0 client that asked for it, nothing otherwise.
    pub fn for_request(req: &Request<'_>) -> Connection {
        match (req.keep_alive(), req.version()) {
            (false, _) => Connection::Close,
            (true, 0) => Connection::KeepAlive,
            (true, _) => Connection::Default,
        }
    }
}

/// A response to write: status line, `Content-Length`, optional `Connection`, extra headers,
/// body. Always written as HTTP/1.1, which HTTP/1.0 clients accept.
///
/// Build it with struct update syntax from [`Response::new`], as in the
/// [module example](crate::codec::http).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// Status code, 100 to 999; the reason phrase comes from [`reason_phrase`].
    pub status: u16,
    /// Extra headers, written in order. `Content-Length`, `Connection` and
    /// `Transfer-Encoding` are written by the encoder and refused here.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body. Statuses 1xx, 204 and 304 have none: it is not written, nor is
    /// `Content-Length`.
    pub body: &'a [u8],
    /// The `Connection` header to send.
    pub connection: Connection,
}

impl<'a> Response<'a> {
    /// A response with `status`, no extra headers, an empty body and no `Connection` header.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: &[],
            body: &[],
            connection: Connection::Default,
        }
    }

    /// Appends the whole response to `dst`.
    ///
    /// # Errors
    ///
    /// [`HttpError::InvalidResponse`] for a status outside 100..=999, a header name that is not
    /// an HTTP token or is written by the encoder, or a header value containing CR, LF or NUL
    /// (which would let a value inject headers). `dst` is then left unchanged.
    pub fn encode(&self, dst: &mut Vec<u8>) -> Result<(), HttpError> {
        self.encode_head(dst)?;
        if has_body(self.status) {
            dst.extend_from_slice(self.body);
        }
        Ok(())
    }

    /// Appends everything but the body, `Content-Length` giving the body's length; for sending
    /// a large or shared body without copying it into `dst`.
    ///
    /// # Errors
    ///
    /// As [`encode`](Self::encode).
    pub fn encode_head(&self, dst: &mut Vec<u8>) -> Result<(), HttpError> {
        // Step 1: check everything, so nothing half-written is left behind.
        if !(100..=999).contains(&self.status) {
            return Err(HttpError::InvalidResponse);
        }
        for (name, value) in self.headers {
            let reserved = ["content-length", "connection", "transfer-encoding"]
                .iter()
                .any(|r| name.eq_ignore_ascii_case(r));
            let bad_value = value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
            if reserved || !is_token(name.as_bytes()) || bad_value {
                return Err(HttpError::InvalidResponse);
            }
        }

        // Step 2: status line.
        let reason = reason_phrase(self.status);
        dst.reserve(
            64 + reason.len()
                + self
                    .headers
                    .iter()
                    .map(|(n, v)| n.len() + v.len() + 4)
                    .sum::<usize>(),
        );
        dst.extend_from_slice(b"HTTP/1.1 ");
        write_u64(dst, u64::from(self.status));
        dst.push(b' ');
        dst.extend_from_slice(reason.as_bytes());
        dst.extend_from_slice(b"\r\n");

        // Step 3: headers, ours last.
        for (name, value) in self.headers {
            dst.extend_from_slice(name.as_bytes());
            dst.extend_from_slice(b": ");
            dst.extend_from_slice(value);
            dst.extend_from_slice(b"\r\n");
        }
        if has_body(self.status) {
            dst.extend_from_slice(b"Content-Length: ");
            write_u64(dst, self.body.len() as u64);
            dst.extend_from_slice(b"\r\n");
        }
        match self.connection {
            Connection::Default => {}
            Connection::Close => dst.extend_from_slice(b"Connection: close\r\n"),
            Connection::KeepAlive => dst.extend_from_slice(b"Connection: keep-alive\r\n"),
        }
        dst.extend_from_slice(b"\r\n");
        Ok(())
    }
}

/// Whether a response with `status` carries a body (and so a `Content-Length`).
pub(super) fn has_body(status: u16) -> bool {
    !(100..200).contains(&status) && status != 204 && status != 304
}

/// Whether `s` is an HTTP token (RFC 9110 5.6.2), as header names must be.
pub(super) fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The standard reason phrase for `status`, or `""` for codes without one.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}
