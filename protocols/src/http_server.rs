//! A small HTTP/1.1 server: two fixed pages, keep-alive, pipelining, and strict limits.
//!
//! Run it with `evdrive http` (127.0.0.1:8080) and try `curl -v http://127.0.0.1:8080/`.
//!
//! | request | response |
//! |---|---|
//! | `GET /` | `200`, `Hello from evdrive` |
//! | `GET /health` | `200`, `ok` |
//! | `HEAD` of either | the same headers, no body |
//! | another method on either | `405 Method Not Allowed`, with `Allow: GET, HEAD` |
//! | any other path | `404 Not Found` |
//! | a malformed request | `400 Bad Request`, then close |
//! | a head over 8 KiB or over 64 headers | `431 Request Header Fields Too Large`, then close |
//! | a body over 1 MiB | `413 Content Too Large`, then close |
//! | `Transfer-Encoding` other than `chunked` | `501 Not Implemented`, then close |
//!
//! Every response has `Server: evdrive`, `Content-Type` and `Content-Length`. The query string
//! is ignored when routing.
//!
//! # Why it is shaped so
//!
//! The parsing, its limits and the keep-alive rules live in the [`http`](crate::codec::http)
//! codec; this handler only routes. Its per-connection state is the codec's progress, so an idle
//! keep-alive connection costs a few bytes.
//!
//! Pipelined requests are answered in order from one `on_data` call: every complete request in
//! the input gets its response appended to one buffer, queued once, and the reactor sends them
//! all with one write (S15). A request that ends the connection (`Connection: close`, or
//! HTTP/1.0 without `keep-alive`) is answered with `Connection: close`, the connection is closed
//! gracefully after the response is flushed (S14), and whatever the client sent after it is
//! ignored. A broken request is answered with its status and `Connection: close`; there is no
//! way to find where the next request would start, so the connection ends there (S11).
//!
//! A request must arrive whole within the request timeout (20 s by default) of its first
//! byte, or it is answered `408 Request Timeout` and the connection closed: a client that
//! trickles a request in a byte at a time (slowloris) cannot hold a connection, whatever the
//! idle timeout says (S24).
//!
//! The handler does not depend on the reactor's user state, so it serves inside any reactor.

use std::time::Duration;

use reactor::{CloseReason, Cx, Protocol, TimerId};

use crate::codec::http::{Connection, HttpCodec, Request, Response};
use crate::framing::{self, serve, Flow};

/// The body of `GET /`.
pub const HELLO: &[u8] = b"Hello from evdrive\n";

/// The body of `GET /health`.
pub const HEALTH: &[u8] = b"ok\n";

/// Headers on every response.
const SERVER: (&str, &[u8]) = ("Server", b"evdrive");
/// The type of every body we write.
const TEXT: (&str, &[u8]) = ("Content-Type", b"text/plain; charset=utf-8");

pub use crate::framing::Served;

/// The handler of one HTTP connection.
///
/// ```
/// use evdrive_protocols::http_server::HttpServer;
///
/// let mut server = HttpServer::new();
/// let mut out = Vec::new();
/// let served = server.serve(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /", &mut out);
/// assert_eq!(served.consumed, 33); // the second request is unfinished
/// assert!(!served.close);
/// assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
/// assert!(out.ends_with(b"\r\n\r\nok\n"));
/// ```
#[derive(Debug)]
pub struct HttpServer {
    /// Progress on the unfinished request, if any.
    codec: HttpCodec,
    /// How long a request may take from its first byte to its last (S24, S11).
    request_timeout: Duration,
    /// Armed while part of a request is buffered: a client trickling a request in (slowloris)
    /// gets `408` and a close when it fires.
    request_timer: Option<TimerId>,
}

/// The default of [`HttpServer::with_request_timeout`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Connection settings for the HTTP sample: the reactor's input limit sits above the codec's
/// largest request (an 8 KiB head and a 1 MiB body, plus chunk framing), so an oversized
/// request always gets the codec's status (413, 431) rather than a bare close.
pub fn conn_config(base: reactor::ConnConfig) -> reactor::ConnConfig {
    use crate::codec::http::{DEFAULT_MAX_BODY_LENGTH, DEFAULT_MAX_HEAD_LENGTH};
    base.with_max_input(DEFAULT_MAX_HEAD_LENGTH + DEFAULT_MAX_BODY_LENGTH + 64 * 1024)
}

/// The response of a client past the connection limit: a complete `503` (with its length, so a
/// client need not wait for the close to know it has it all) that closes the connection.
pub const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Server: evdrive\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 28\r\n\
Connection: close\r\n\
Retry-After: 1\r\n\
\r\n\
too many connections; retry\n";

/// What the HTTP sample does at the reactor's connection limit (S23): answer [`UNAVAILABLE`]
/// and close.
pub fn at_limit() -> reactor::AtLimit {
    reactor::AtLimit::Reject(reactor::Goodbye::bytes(UNAVAILABLE))
}

/// The tag of the request timer.
const REQUEST_TIMER: u64 = 1;

impl Default for HttpServer {
    fn default() -> Self {
        HttpServer::with_request_timeout(REQUEST_TIMEOUT)
    }
}

impl HttpServer {
    /// A handler with the codec's default limits (8 KiB head, 64 headers, 1 MiB body) and a
    /// 20 s request timeout.
    pub fn new() -> Self {
        HttpServer::default()
    }

    /// A handler whose requests must arrive whole within `timeout` of their first byte; a
    /// slower one is answered `408 Request Timeout` and the connection closed. An idle
    /// keep-alive connection (nothing buffered) is the idle timeout's business, not this one's.
    pub fn with_request_timeout(timeout: Duration) -> Self {
        HttpServer {
            codec: HttpCodec::new(),
            request_timeout: timeout,
            request_timer: None,
        }
    }

    /// Answers every complete request at the front of `data`, appending the responses to `out`.
    ///
    /// This is `on_data` without the queueing, so tests can see the responses: `consumed`
    /// bytes were used; the rest is an unfinished request to offer again with more bytes behind
    /// it. Once `close` is set the input after it is ignored.
    pub fn serve(&mut self, data: &[u8], out: &mut Vec<u8>) -> Served {
        serve(
            &mut self.codec,
            data,
            out,
            // A whole request: answer it; the last one of the connection ends the batch.
            |out, req| {
                respond(&req, out);
                if req.keep_alive() {
                    Flow::Continue
                } else {
                    Flow::Close
                }
            },
            // Malformed or too large: answer with the error's status (the connection closes).
            |out, e| {
                let body = format!("{e}\n");
                let response = Response {
                    headers: &[SERVER, TEXT],
                    body: body.as_bytes(),
                    connection: Connection::Close,
                    ..Response::new(e.status())
                };
                response
                    .encode(out)
                    .expect("fixed headers and a known status are valid");
            },
        )
    }
}

/// Routes one request and appends its response.
fn respond(req: &Request<'_>, out: &mut Vec<u8>) {
    // The path without its query string.
    let path = req.path().split('?').next().unwrap_or("");
    let page = match path {
        "/" => Some(HELLO),
        "/health" => Some(HEALTH),
        _ => None,
    };
    let (method, head_only) = (req.method(), req.method() == "HEAD");
    let (status, body, allow): (u16, &[u8], bool) = match page {
        Some(body) if method == "GET" || head_only => (200, body, false),
        Some(_) => (405, b"method not allowed\n", true),
        None => (404, b"not found\n", false),
    };
    let with_allow = [SERVER, TEXT, ("Allow", b"GET, HEAD")];
    let response = Response {
        headers: if allow { &with_allow } else { &with_allow[..2] },
        body,
        connection: Connection::for_request(req),
        ..Response::new(status)
    };
    // `HEAD` gets the headers `GET` would get, `Content-Length` included, and no body.
    let encoded = if head_only {
        response.encode_head(out)
    } else {
        response.encode(out)
    };
    encoded.expect("fixed headers and a known status are valid");
}

impl<App> Protocol<App> for HttpServer {
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        let mut out = Vec::new();
        let served = self.serve(data, &mut out);
        // One buffer for every response of the batch: one chunk, one gather write (S15).
        let consumed = framing::finish(cx, out, served);
        match (served.close, consumed < data.len()) {
            // Closing: the request timer goes with the connection.
            (true, _) => {}
            // Part of a request is waiting: it has until the request timer to finish. If a
            // request completed in this call, the waiting one began in it: its own timer starts.
            (false, true) => {
                if consumed > 0 {
                    if let Some(timer) = self.request_timer.take() {
                        cx.cancel_timer(timer);
                    }
                }
                if self.request_timer.is_none() {
                    self.request_timer = cx.set_timer(self.request_timeout, REQUEST_TIMER);
                }
            }
            // Nothing waiting: no request timer.
            (false, false) => {
                if let Some(timer) = self.request_timer.take() {
                    cx.cancel_timer(timer);
                }
            }
        }
        consumed
    }

    /// The client half-closed: an unfinished request can never complete, so its timer goes,
    /// and the connection closes once the responses already queued are flushed.
    fn on_eof(&mut self, cx: &mut Cx<'_, App>) {
        if let Some(timer) = self.request_timer.take() {
            cx.cancel_timer(timer);
        }
        cx.close();
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, App>, timer: TimerId) {
        if timer.tag() != REQUEST_TIMER {
            return;
        }
        self.request_timer = None;
        let mut out = Vec::new();
        let response = Response {
            headers: &[SERVER, TEXT],
            body: b"request timeout\n",
            connection: Connection::Close,
            ..Response::new(408)
        };
        response
            .encode(&mut out)
            .expect("fixed headers and a known status are valid");
        let _ = cx.write_vec(out);
        cx.close_with(CloseReason::IdleTimeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_503_says_its_length_and_closes() {
        let text = std::str::from_utf8(UNAVAILABLE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains("\r\nConnection: close"));
        let length = format!("\r\nContent-Length: {}\r\n", body.len());
        assert!(
            head.contains(length.trim_end()),
            "{head:?} vs {}",
            body.len()
        );
    }

    #[test]
    fn a_trickled_request_gets_408_at_the_request_timeout() {
        use reactor::testing::Harness;
        use reactor::ListenOptions;
        let mut h = Harness::new(()).unwrap();
        let l = h.listen(ListenOptions::default(), |_, _| {
            HttpServer::with_request_timeout(Duration::from_secs(2))
        });
        let slow = l.connect();
        let quick = l.connect();
        // One byte a second: the idle timeout would never fire.
        for byte in b"GET / H" {
            slow.send(&[*byte]);
            quick.send(&[*byte]);
            h.advance(Duration::from_millis(200)).unwrap();
        }
        // 1.4 s in: the quick client finishes its request, the slow one does not.
        quick.send(b"TTP/1.1\r\n\r\n");
        h.advance(Duration::from_millis(100)).unwrap();
        assert!(String::from_utf8(quick.take_received())
            .unwrap()
            .starts_with("HTTP/1.1 200 OK"));
        assert!(slow.take_received().is_empty());
        // The first byte was read at 0.2 s (the harness reads after moving the clock), so the
        // request timer fires at 2.2 s.
        h.advance(Duration::from_millis(600)).unwrap();
        assert!(slow.take_received().is_empty());
        h.advance(Duration::from_millis(200)).unwrap();
        let reply = String::from_utf8(slow.take_received()).unwrap();
        assert!(reply.starts_with("HTTP/1.1 408 "), "{reply}");
        assert!(slow.fin_received());
        // The quick client's completed request disarmed its timer: it stays open.
        h.advance(Duration::from_secs(10)).unwrap();
        assert!(!quick.fin_received());
    }

    /// Serves `input` delivered in pieces cut at `cuts`, as the reactor would: the unconsumed
    /// tail is offered again with the next piece. Returns the responses and whether the
    /// connection was closed.
    fn run(input: &[u8], cuts: &[usize]) -> (String, bool) {
        let mut server = HttpServer::new();
        let mut out = Vec::new();
        let mut buffered = Vec::new();
        let mut bounds = cuts.to_vec();
        bounds.push(input.len());
        let mut start = 0;
        for end in bounds {
            buffered.extend_from_slice(&input[start..end]);
            start = end;
            let served = server.serve(&buffered, &mut out);
            if served.close {
                return (String::from_utf8(out).unwrap(), true);
            }
            buffered.drain(..served.consumed);
        }
        (String::from_utf8(out).unwrap(), false)
    }

    fn status_lines(out: &str) -> Vec<&str> {
        out.lines().filter(|l| l.starts_with("HTTP/")).collect()
    }

    #[test]
    fn routes() {
        let (out, closed) = run(
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /health?probe=1 HTTP/1.1\r\n\r\n\
              GET /nope HTTP/1.1\r\n\r\n\
              POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\
              HEAD / HTTP/1.1\r\n\r\n",
            &[],
        );
        assert!(!closed);
        assert_eq!(
            status_lines(&out),
            [
                "HTTP/1.1 200 OK",
                "HTTP/1.1 200 OK",
                "HTTP/1.1 404 Not Found",
                "HTTP/1.1 405 Method Not Allowed",
                "HTTP/1.1 200 OK"
            ]
        );
        assert!(out.starts_with(
            "HTTP/1.1 200 OK\r\nServer: evdrive\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 19\r\n\r\nHello from evdrive\n"
        ));
        assert!(out.contains("Content-Length: 3\r\n\r\nok\n"));
        assert!(out.contains("Allow: GET, HEAD\r\n"));
        // HEAD: GET's Content-Length, no body, nothing after the blank line.
        assert!(out.ends_with("Content-Length: 19\r\n\r\n"));
    }

    #[test]
    fn connection_close_and_http10() {
        let (out, closed) = run(
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET /health HTTP/1.1\r\n\r\n",
            &[],
        );
        assert!(closed);
        assert_eq!(
            status_lines(&out).len(),
            1,
            "nothing after Connection: close"
        );
        assert!(out.contains("Connection: close\r\n"));

        let (out, closed) = run(b"GET / HTTP/1.0\r\n\r\n", &[]);
        assert!(closed);
        assert!(out.contains("Connection: close\r\n"));

        let (out, closed) = run(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &[]);
        assert!(!closed);
        assert!(out.contains("Connection: keep-alive\r\n"));
    }

    #[test]
    fn malformed_requests_get_400_and_close() {
        let (out, closed) = run(b"GET / HTTP/1.1\r\n\r\nHELLO THERE\r\n\r\n", &[]);
        assert!(closed);
        assert_eq!(
            status_lines(&out),
            ["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"]
        );
        assert!(out.ends_with("Connection: close\r\n\r\nmalformed request head: invalid token\n"));
        // Garbage such as a TLS hello is refused on its first bytes.
        let (out, closed) = run(b"\x16\x03\x01\x02\x00", &[]);
        assert!(closed && out.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    }

    #[test]
    fn limits() {
        let mut big = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        big.extend_from_slice(&[b'a'; 10_000]);
        let (out, closed) = run(&big, &[]);
        assert!(closed);
        assert!(out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));

        let (out, closed) = run(b"POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", &[]);
        assert!(closed);
        assert!(out.starts_with("HTTP/1.1 413 Content Too Large\r\n"));

        let (out, closed) = run(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", &[]);
        assert!(closed);
        assert!(out.starts_with("HTTP/1.1 501 Not Implemented\r\n"));
    }

    #[test]
    fn every_split_gives_the_same_responses() {
        let input: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
                             POST /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                             3\r\nabc\r\n0\r\n\r\n\
                             HEAD /health HTTP/1.1\r\n\r\n\
                             GET /x HTTP/1.1\r\nContent-Length: 1\r\n\r\nz\
                             GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
        let whole = run(input, &[]);
        assert!(whole.1);
        assert_eq!(status_lines(&whole.0).len(), 5);
        for cut in 0..=input.len() {
            assert_eq!(run(input, &[cut]), whole, "cut at {cut}");
        }
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(run(input, &every), whole);
    }
}
