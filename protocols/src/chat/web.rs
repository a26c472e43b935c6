//! The chat for browsers: the HTTP side of the chat port (`GET /` serves the page, an upgrade
//! request switches to WebSocket) and the chat over WebSocket frames.
//!
//! # Implementation notes
//! A connection arrives here from [`ChatConn`](super::ChatConn) once its first bytes read
//! `GET `, and [`WebConn`] reads HTTP requests with the HTTP codec. An upgrade request that
//! passes [`handshake::accept`] is answered `101 Switching Protocols`, and the connection's
//! handler becomes a [`WsMember`] through [`Cx::replace_handler`]; frames the browser sent
//! right behind its request, in the same read, reach the new handler unconsumed. From then on
//! every text message is one or more lines (split at `\n`) handled exactly as a line from
//! `nc`, and every line to the member is one text message: the browser and the terminal share
//! the rooms.

use reactor::{CloseReason, Cx, Protocol};

use crate::codec::http::{Connection, HttpCodec, Request, Response};
use crate::codec::ws::{self, handshake, Incoming, Message, WsCodec};
use crate::codec::Decoder;

use super::commands::on_line;
use super::line::member_closed;
use super::room::{depart, dismiss, welcome, ChatRoom, Wire};
use super::MAX_LINE;

/// The browser client: one self-contained page (HTML, inline CSS and script, nothing fetched
/// from elsewhere) that opens a WebSocket to the server that served it.
pub const PAGE: &str = include_str!("page.html");

/// The HTTP side of the chat port: serves [`PAGE`] and upgrades to WebSocket.
#[derive(Debug)]
pub struct WebConn {
    /// Progress on the unfinished request.
    codec: HttpCodec,
}

impl Default for WebConn {
    fn default() -> Self {
        WebConn::new()
    }
}

impl WebConn {
    /// A handler for requests without bodies worth reading (4 KiB at most).
    pub fn new() -> Self {
        WebConn {
            codec: HttpCodec::new().with_max_body_length(4096),
        }
    }
}

/// Answers one request into `out`. Returns whether the connection goes on as HTTP
/// (`Some(true)`), closes (`Some(false)`), or was upgraded (`None`).
fn respond(cx: &mut Cx<'_, ChatRoom>, req: &Request<'_>, out: &mut Vec<u8>) -> Option<bool> {
    if handshake::is_upgrade(req) {
        return match handshake::accept(req) {
            Ok(accepted) => {
                accepted.encode(out);
                cx.replace_handler(Box::new(WsMember::new()));
                None
            }
            Err(e) => {
                e.encode_response(out)
                    .expect("fixed headers and a known status are valid");
                Some(false)
            }
        };
    }
    let path = req.path().split('?').next().unwrap_or("");
    let (status, body): (u16, &[u8]) = match (req.method(), path) {
        ("GET" | "HEAD", "/") => (200, PAGE.as_bytes()),
        ("GET" | "HEAD", _) => (404, b"not found\n"),
        _ => (405, b"only GET\n"),
    };
    let content_type: &[u8] = if status == 200 {
        b"text/html; charset=utf-8"
    } else {
        b"text/plain; charset=utf-8"
    };
    let headers = [
        ("Server", &b"evdrive"[..]),
        ("Content-Type", content_type),
        ("Cache-Control", b"no-store"),
    ];
    let connection = Connection::for_request(req);
    let response = Response {
        headers: &headers,
        body,
        connection,
        ..Response::new(status)
    };
    let encoded = if req.method() == "HEAD" {
        response.encode_head(out)
    } else {
        response.encode(out)
    };
    encoded.expect("fixed headers and a known status are valid");
    Some(req.keep_alive())
}

impl Protocol<ChatRoom> for WebConn {
    fn on_data(&mut self, cx: &mut Cx<'_, ChatRoom>, data: &[u8]) -> usize {
        let mut out = Vec::new();
        let mut consumed = 0;
        let close = loop {
            match self.codec.decode(&data[consumed..]) {
                Ok(Some((req, n))) => {
                    consumed += n;
                    match respond(cx, &req, &mut out) {
                        Some(true) => {}
                        Some(false) => break true,
                        // Upgraded: the rest is WebSocket, for the new handler.
                        None => break false,
                    }
                }
                Ok(None) => break false,
                Err(e) => {
                    let body = format!("{e}\n");
                    Response {
                        headers: &[("Server", b"evdrive")],
                        body: body.as_bytes(),
                        connection: Connection::Close,
                        ..Response::new(e.status())
                    }
                    .encode(&mut out)
                    .expect("fixed headers and a known status are valid");
                    break true;
                }
            }
        };
        let _ = cx.write_vec(out);
        if close {
            cx.close();
            return data.len();
        }
        consumed
    }
}

/// A chat member over WebSocket: text messages in, one text message per line out.
#[derive(Debug)]
pub struct WsMember {
    /// Progress on the unfinished frame; messages are limited to [`MAX_LINE`] bytes.
    codec: WsCodec,
}

impl Default for WsMember {
    fn default() -> Self {
        WsMember::new()
    }
}

impl WsMember {
    /// A member whose messages are at most [`MAX_LINE`] bytes (closed with 1009 beyond).
    pub fn new() -> Self {
        WsMember {
            codec: WsCodec::new()
                .with_max_frame_length(MAX_LINE)
                .with_max_message_length(MAX_LINE),
        }
    }
}

impl Protocol<ChatRoom> for WsMember {
    fn on_open(&mut self, cx: &mut Cx<'_, ChatRoom>) {
        welcome(cx, Wire::WebSocket, true);
    }

    fn on_data(&mut self, cx: &mut Cx<'_, ChatRoom>, data: &[u8]) -> usize {
        let mut consumed = 0;
        loop {
            match self.codec.decode(&data[consumed..]) {
                // A text message: each of its lines, as if typed at a terminal.
                Ok(Some((Incoming::Message(Message::Text(text)), n))) => {
                    consumed += n;
                    for line in text.split('\n') {
                        let line = line.strip_suffix('\r').unwrap_or(line);
                        if !on_line(cx, line.as_bytes()) {
                            return data.len();
                        }
                    }
                }
                // A ping: the pong carries its payload.
                Ok(Some((Incoming::Message(Message::Ping(p)), n))) => {
                    consumed += n;
                    let mut out = Vec::new();
                    if ws::encode_pong(&p, &mut out).is_ok() {
                        let _ = cx.write_vec(out);
                    }
                }
                // A pong, a fragment kept by the codec: nothing to do.
                Ok(Some((Incoming::Message(Message::Pong(_)) | Incoming::Fragment, n))) => {
                    consumed += n;
                }
                // Binary messages are not chat lines.
                Ok(Some((Incoming::Message(Message::Binary(_)), _))) => {
                    let id = cx.id();
                    dismiss(
                        cx,
                        id,
                        b"! only text messages are chat lines; closing",
                        ws::close::UNSUPPORTED_DATA,
                        CloseReason::protocol("binary message"),
                        " (sent binary data)",
                    );
                    return data.len();
                }
                // The browser closes: answer in kind (echoing its code), then close.
                Ok(Some((Incoming::Message(Message::Close(frame)), _))) => {
                    let code = frame.map_or(ws::close::NORMAL, |f| f.code);
                    let mut out = Vec::new();
                    let _ = ws::encode_close(Some((code, "")), &mut out);
                    let _ = cx.write_vec(out);
                    cx.close();
                    let id = cx.id();
                    depart(cx, id, "");
                    return data.len();
                }
                // Only part of a frame: keep it for next time.
                Ok(None) => return consumed,
                // The browser broke the protocol: say why, with the right close code.
                Err(e) => {
                    let why = e.to_string();
                    let id = cx.id();
                    dismiss(
                        cx,
                        id,
                        format!("! {why}; closing").as_bytes(),
                        e.close_code(),
                        CloseReason::protocol(why.as_str()),
                        &format!(" ({why})"),
                    );
                    return data.len();
                }
            }
        }
    }

    fn on_close(&mut self, cx: &mut Cx<'_, ChatRoom>, reason: CloseReason) {
        member_closed(cx, reason);
    }
}
