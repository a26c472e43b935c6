//! The HTTP target: one response per complete request, in order, as a reference router says.

use std::time::Duration;

use reactor::testing::Harness;

use super::codecs::{build_request, own_request, OwnedRequest};
use super::script::{patient, HandlerInput};
use crate::codec::{Decoder, HttpCodec};
use crate::http_server::{HttpServer, REQUEST_TIMEOUT};
use reactor::testing::{converse, Conversation, Script};

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

/// One answer the server may give: `(status, whether it has no body)` for each response.
#[derive(Debug, Clone, Default)]
struct Expected {
    /// The responses owed, in order.
    responses: Vec<(u16, bool)>,
    /// The server must close after them.
    closes: bool,
    /// A `408` may follow: the request timer of a request cut short by the peer's FIN may
    /// still fire while the connection flushes its last responses.
    late_408: bool,
}

impl Expected {
    /// The statuses, in order.
    fn statuses(&self) -> Vec<u16> {
        self.responses.iter().map(|&(s, _)| s).collect()
    }

    /// This answer ending with a `408` and a close.
    fn timed_out(mut self) -> Expected {
        self.responses.push((408, false));
        self.closes = true;
        self
    }
}

/// When a request timer armed for `deadline` fires, relative to the settle `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fired {
    /// At an earlier settle.
    Before,
    /// In that settle. Its first loop turn reads before it runs timers, but a read cut short
    /// leaves the rest to later turns of the same settle, so the bytes it reads may come
    /// before or after the timer.
    During,
    /// Not before that settle is over.
    After,
}

fn fired(talk: &Conversation, deadline: Duration, until: usize) -> Fired {
    if talk.settles[..until].iter().any(|&(_, at)| at >= deadline) {
        Fired::Before
    } else if talk
        .settles
        .get(until)
        .is_some_and(|&(_, at)| at >= deadline)
    {
        Fired::During
    } else {
        Fired::After
    }
}

/// Computes the answers the server may give to what `talk` sent, and when: every request
/// decoded from the whole input, answered as the router says, up to one that ends the
/// connection; a broken request gets its error status; a request still unfinished
/// [`REQUEST_TIMEOUT`] after its first byte was read gets `408` instead, and the connection
/// ends there. Where the timer and the last bytes of a request meet in one settle, both
/// outcomes are allowed, so there may be several answers.
fn expected_responses(talk: &Conversation) -> Vec<Expected> {
    let sent = &talk.sent[..];
    let mut codec = HttpCodec::new();
    let mut answers = Vec::new();
    let mut cur = Expected::default();
    let mut at = 0;
    loop {
        // The request starting at `at`: its timer runs from the read of its first byte.
        let deadline =
            (at < sent.len()).then(|| talk.settles[talk.read_by(at)].1 + REQUEST_TIMEOUT);
        match codec.decode(&sent[at..]) {
            Ok(Some((req, n))) => {
                let req = own_request(req);
                let deadline = deadline.expect("a request has a first byte");
                match fired(talk, deadline, talk.read_by(at + n - 1)) {
                    Fired::Before => {
                        answers.push(cur.timed_out());
                        return answers;
                    }
                    Fired::During => answers.push(cur.clone().timed_out()),
                    Fired::After => {}
                }
                cur.responses.push((route(&req), req.method == "HEAD"));
                at += n;
                if !req.keep_alive {
                    cur.closes = true;
                    answers.push(cur);
                    return answers;
                }
            }
            Ok(None) => {
                // Unfinished: it times out, unless the peer's FIN closed the connection first.
                if let Some(deadline) = deadline {
                    let ever = fired(talk, deadline, talk.settles.len()) == Fired::Before;
                    match talk.fin_read {
                        None if ever => cur = cur.timed_out(),
                        Some(fin) if fired(talk, deadline, fin) == Fired::Before => {
                            cur = cur.timed_out();
                        }
                        Some(_) => cur.late_408 = ever,
                        None => {}
                    }
                }
                answers.push(cur);
                return answers;
            }
            Err(e) => {
                // The error is seen at the first settle whose bytes prove it.
                let deadline = deadline.expect("an error has a first byte");
                let seen = talk
                    .settles
                    .iter()
                    .position(|&(n, _)| n > at && HttpCodec::new().decode(&sent[at..n]).is_err())
                    .unwrap_or(talk.settles.len() - 1);
                let when = fired(talk, deadline, seen);
                if when != Fired::After {
                    answers.push(cur.clone().timed_out());
                }
                if when != Fired::Before {
                    cur.responses.push((e.status(), false));
                    cur.closes = true;
                    answers.push(cur);
                }
                return answers;
            }
        }
    }
}

/// Splits `out` into HTTP/1.1 responses and returns their statuses; if `cut`, the last one
/// may be cut short and is then left out.
///
/// # Panics
///
/// If a response is malformed, lacks `Content-Length` (bodies are never chunked here), or is
/// cut short when `cut` is false.
fn parse_responses(mut out: &[u8], expected: &[(u16, bool)], cut: bool) -> Vec<u16> {
    // A 408 comes from the timer, never for a HEAD; every other response answers the request
    // at its place in the longest answer.
    let mut statuses = Vec::new();
    while !out.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        let head = match resp.parse(out) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if cut => break,
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
        let head_only = status != 408 && expected.get(statuses.len()).is_some_and(|&(_, h)| h);
        let end = head + if head_only { 0 } else { length };
        if cut && out.len() < end {
            break;
        }
        assert!(out.len() >= end, "a response cut short");
        statuses.push(status);
        out = &out[end..];
    }
    statuses
}

/// Checks [`HttpServer`] on the in-memory transport: every complete request gets one response,
/// in order, with the status a reference router gives (`200`, `404`, `405`), and a broken
/// request its error status; a request still unfinished [`REQUEST_TIMEOUT`] after its first
/// byte gets `408`; the connection closes after `Connection: close`, HTTP/1.0, an error or a
/// `408`, and not before; without a `408`, what comes back is the same as from
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
    let answers = expected_responses(&talk);
    if talk.reset {
        // What came back before the reset is the start of an answer, the last response maybe
        // cut short. (Bytes sent but never read before the reset are answered by nobody.)
        let longest = &answers[answers.len() - 1].responses;
        let statuses = parse_responses(&talk.received, longest, true);
        let answer = answers
            .iter()
            .find(|a| {
                let mut want = a.statuses();
                if a.late_408 {
                    want.push(408);
                }
                want.starts_with(&statuses)
            })
            .unwrap_or_else(|| {
                panic!("before the reset: {statuses:?}, the reference says one of {answers:?}")
            });
        if !answer.late_408 && !answer.statuses().contains(&408) {
            assert!(
                at_once.starts_with(&talk.received),
                "before the reset, something else than the start of the answer came back"
            );
        }
        assert!(peer.is_closed(), "a reset connection was kept open");
        return;
    }
    let longest = &answers[answers.len() - 1].responses;
    let statuses = parse_responses(&talk.received, longest, false);
    let answer = answers
        .iter()
        .find(|a| {
            let want = a.statuses();
            statuses == want || (a.late_408 && statuses[..] == [&want[..], &[408]].concat()[..])
        })
        .unwrap_or_else(|| panic!("statuses {statuses:?}, the reference says one of {answers:?}"));
    if !statuses.contains(&408) {
        assert!(
            talk.received == at_once,
            "the responses depend on how the input was cut"
        );
    }
    let closes = answer.closes;
    // The server closes after the last response it owes, or when the peer half-closes.
    assert_eq!(
        peer.fin_received(),
        closes || talk.fin,
        "closed {} (must close: {closes}, peer FIN: {})",
        peer.fin_received(),
        talk.fin
    );
}
