//! The opening handshake, server side (RFC 6455 section 4.2): checking a client's upgrade
//! request and writing the `101 Switching Protocols` answer.
//!
//! The request is read by the HTTP codec like any other ([`HttpCodec`](crate::codec::HttpCodec)
//! gives a [`Request`]); [`is_upgrade`] tells a WebSocket upgrade from an ordinary request, and
//! [`accept`] checks it and computes the `Sec-WebSocket-Accept` value. After writing the 101
//! response the connection speaks frames ([`WsCodec`](super::WsCodec)) in both directions.
//!
//! No subprotocol and no extension is negotiated: `Sec-WebSocket-Protocol` and
//! `Sec-WebSocket-Extensions` are not answered, which is how a server declines them, and that
//! is why the frame decoder refuses every reserved bit.
//!
//! # Example
//!
//! ```
//! use evdrive_protocols::codec::ws::handshake;
//! use evdrive_protocols::codec::{Decoder, HttpCodec};
//!
//! let wire = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
//!              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!              Sec-WebSocket-Version: 13\r\n\r\n";
//! let (req, _) = HttpCodec::new().decode(wire)?.unwrap();
//! assert!(handshake::is_upgrade(&req));
//!
//! let mut out = Vec::new();
//! match handshake::accept(&req) {
//!     Ok(accepted) => accepted.encode(&mut out),
//!     Err(e) => e.encode_response(&mut out)?,
//! }
//! assert_eq!(out, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
//!                   Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
//! # Ok::<(), evdrive_protocols::codec::HttpError>(())
//! ```

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::codec::http::Connection;
use crate::codec::{HttpError, Request, Response};

/// The GUID appended to the client's key before hashing (RFC 6455 1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The one protocol version this server speaks, as sent in `Sec-WebSocket-Version`.
pub const VERSION: &str = "13";

/// A checked upgrade request: what the 101 response needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The `Sec-WebSocket-Accept` value computed from the client's key.
    accept: String,
}

impl Accepted {
    /// The `Sec-WebSocket-Accept` value.
    pub fn accept_key(&self) -> &str {
        &self.accept
    }

    /// Appends the `101 Switching Protocols` response. The connection speaks WebSocket right
    /// after it.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        dst.extend_from_slice(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Accept: ",
        );
        dst.extend_from_slice(self.accept.as_bytes());
        dst.extend_from_slice(b"\r\n\r\n");
    }
}

/// Why an upgrade request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// The method is not `GET`.
    NotGet,
    /// The request is HTTP/1.0; RFC 6455 needs HTTP/1.1.
    NotHttp11,
    /// No `Host` header.
    NoHost,
    /// No `Upgrade` header with the `websocket` token.
    NoUpgrade,
    /// No `Connection` header with the `upgrade` token.
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Version` missing or not 13: answered with 426 and the version spoken.
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` missing, repeated, or not the base64 of 16 bytes.
    BadKey,
}

impl HandshakeError {
    /// The status to answer with: 426 (Upgrade Required) for a version other than 13, 400
    /// (Bad Request) for everything else.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::UnsupportedVersion => 426,
            _ => 400,
        }
    }

    /// Appends the error response: the [`status`](Self::status), `Sec-WebSocket-Version: 13`
    /// with a 426, a one-line plain text body saying what was wrong, and `Connection: close`
    /// (the caller closes after writing it).
    ///
    /// # Errors
    ///
    /// None in practice: the response is fixed and valid. The HTTP encoder's error is passed on
    /// rather than hidden.
    pub fn encode_response(&self, dst: &mut Vec<u8>) -> Result<(), HttpError> {
        let version: &[(&str, &[u8])] = &[
            ("Sec-WebSocket-Version", VERSION.as_bytes()),
            ("Content-Type", b"text/plain"),
        ];
        let body = format!("{self}\n");
        Response {
            headers: if *self == HandshakeError::UnsupportedVersion {
                version
            } else {
                &version[1..]
            },
            body: body.as_bytes(),
            connection: Connection::Close,
            ..Response::new(self.status())
        }
        .encode(dst)
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandshakeError::NotGet => "a WebSocket upgrade must be a GET",
            HandshakeError::NotHttp11 => "a WebSocket upgrade needs HTTP/1.1",
            HandshakeError::NoHost => "no Host header",
            HandshakeError::NoUpgrade => "no Upgrade: websocket header",
            HandshakeError::NoConnectionUpgrade => "no Connection: upgrade header",
            HandshakeError::UnsupportedVersion => "only WebSocket version 13 is supported",
            HandshakeError::BadKey => "Sec-WebSocket-Key is not the base64 of 16 bytes",
        })
    }
}

impl std::error::Error for HandshakeError {}

/// Whether `req` asks for a WebSocket: an `Upgrade` header lists the `websocket` token
/// (case-insensitive). Such a request gets [`accept`] or its error; others are ordinary HTTP.
pub fn is_upgrade(req: &Request<'_>) -> bool {
    has_token(req, "upgrade", "websocket")
}

/// Checks an upgrade request (RFC 6455 4.2.1) and computes its accept key.
///
/// Required: `GET`, HTTP/1.1, a `Host`, `Upgrade` listing `websocket` and `Connection`
/// listing `upgrade` (tokens compared case-insensitively, in comma-separated lists, across
/// repeated headers), `Sec-WebSocket-Version: 13`, and exactly one `Sec-WebSocket-Key` that is
/// the base64 of 16 bytes. Nothing else is looked at (`Origin` is the application's business).
///
/// # Errors
///
/// The first rule broken, in the order above; answer with
/// [`HandshakeError::encode_response`] and close.
pub fn accept(req: &Request<'_>) -> Result<Accepted, HandshakeError> {
    if req.method() != "GET" {
        return Err(HandshakeError::NotGet);
    }
    if req.version() < 1 {
        return Err(HandshakeError::NotHttp11);
    }
    if req.header("host").is_none() {
        return Err(HandshakeError::NoHost);
    }
    if !is_upgrade(req) {
        return Err(HandshakeError::NoUpgrade);
    }
    if !has_token(req, "connection", "upgrade") {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    if req.header("sec-websocket-version") != Some(VERSION.as_bytes()) {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let mut keys = req
        .headers()
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"));
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(HandshakeError::BadKey);
    };
    match BASE64.decode(key.value) {
        Ok(nonce) if nonce.len() == 16 => Ok(Accepted {
            accept: accept_key(key.value),
        }),
        _ => Err(HandshakeError::BadKey),
    }
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: the base64 of the SHA-1 of the
/// key (as sent, not decoded) followed by [`GUID`].
///
/// ```
/// use evdrive_protocols::codec::ws::handshake::accept_key;
///
/// // The example of RFC 6455 section 1.3.
/// assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// Whether some header called `name` holds `token` in its comma-separated list.
fn has_token(req: &Request<'_>, name: &str, token: &str) -> bool {
    req.headers()
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}
