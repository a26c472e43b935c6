//! The HTTP target: one response per complete request, in order, as a reference router says.

use reactor::testing::Harness;

use super::codecs::{build_request, own_request, OwnedRequest};
use super::script::{converse, patient, HandlerInput, Script};
use crate::codec::split::decode_chunked;
use crate::codec::HttpCodec;
use crate::http_server::HttpServer;

/// The status the server must answer `req` with: written from the routing table in the
/// server's documentation, not from its code.
fn route(req: &OwnedRequest) -> u16 {
    let path = req.path.split('?').next().unwrap_or("");
    match (path, req.method.as_str()) {
        ("/" | "/health", "GET" | "HEAD") => 200,
        ("/" | "/health", _) => 405,
        _ => 404,
    }
}

/// The responses a client must get for `sent`: `(status, whether it has no body)` for each,
/// and whether the server must close afterwards.
fn expected_responses(sent: &[u8]) -> (Vec<(u16, bool)>, bool) {
    let decoded = decode_chunked(&mut HttpCodec::new(), sent, &[], own_request);
    let mut responses = Vec::new();
    for req in &decoded.frames {
        responses.push((route(req), req.method == "HEAD"));
        if !req.keep_alive {
            return (responses, true);
        }
    }
    match decoded.error {
        Some(e) => {
            responses.push((e.status(), false));
            (responses, true)
        }
        None => (responses, false),
    }
}

/// Splits `out` into HTTP/1.1 responses and returns their statuses.
///
/// # Panics
///
/// If a response is malformed, lacks `Content-Length` (bodies are never chunked here), or is
/// cut short.
fn parse_responses(mut out: &[u8], expected: &[(u16, bool)]) -> Vec<u16> {
    let mut statuses = Vec::new();
    while !out.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        let head = match resp.parse(out) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!(
                "response {} is not valid HTTP: {other:?} in {:?}",
                statuses.len(),
                String::from_utf8_lossy(&out[..out.len().min(200)])
            ),
        };
        let status = resp.code.expect("a complete response has a status");
        assert_eq!(resp.version, Some(1), "not an HTTP/1.1 response");
        let length: usize = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
            .expect("every response has a valid Content-Length");
        // A response to HEAD has GET's Content-Length and no body.
        let head_only = expected.get(statuses.len()).is_some_and(|&(_, h)| h);
        let end = head + if head_only { 0 } else { length };
        assert!(out.len() >= end, "a response cut short");
        statuses.push(status);
        out = &out[end..];
    }
    statuses
}

/// Checks [`HttpServer`] on the in-memory transport: every complete request gets one response,
/// in order, with the status a reference router gives (`200`, `404`, `405`), and a broken
/// request its error status; the connection closes after `Connection: close`, HTTP/1.0 or an
/// error, and not before; what comes back is the same as from
/// [`HttpServer::serve`] called once on everything sent, however the input was cut.
///
/// Input: see the [module documentation](super). Flag bit 0 chooses whether the payload is
/// raw bytes or a script building valid requests (methods, paths, headers, `Content-Length`
/// and chunked bodies, `Connection: close`).
///
/// # Panics
///
/// If an invariant is broken.
pub fn http(data: &[u8]) {
    let mut input = HandlerInput::read(data);
    let built;
    let payload = if input.flags & 1 == 1 {
        let mut s = Script::new(input.payload);
        let mut wire = Vec::new();
        while !s.is_empty() {
            wire.extend(build_request(&mut s).wire);
        }
        built = wire;
        &built[..]
    } else {
        input.payload
    };

    let mut h = Harness::new(()).expect("a harness needs no system resource but a poller");
    let listener = h.listen(patient(), |_, _| HttpServer::new());
    let peer = listener.connect();
    let talk = converse(&mut h, &peer, &mut input.ops, payload);

    // The same server, given everything at once, outside the reactor.
    let mut at_once = Vec::new();
    HttpServer::new().serve(&talk.sent, &mut at_once);
    if talk.reset {
        assert!(
            at_once.starts_with(&talk.received),
            "before the reset, something else than the start of the answer came back"
        );
        assert!(peer.is_closed(), "a reset connection was kept open");
        return;
    }
    let (expected, closes) = expected_responses(&talk.sent);
    let statuses = parse_responses(&talk.received, &expected);
    let want: Vec<u16> = expected.iter().map(|&(s, _)| s).collect();
    assert_eq!(statuses, want, "statuses differ from the reference");
    assert!(
        talk.received == at_once,
        "the responses depend on how the input was cut"
    );
    // The server closes after the last response it owes, or when the peer half-closes.
    assert_eq!(
        peer.fin_received(),
        closes || talk.fin,
        "closed {} (must close: {closes}, peer FIN: {})",
        peer.fin_received(),
        talk.fin
    );
}
