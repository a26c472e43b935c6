//! An HTTP endpoint for operators, served by the reactor it describes: its metrics for
//! Prometheus and its connections and UDP sockets as JSON.
//!
//! | request | response |
//! |---|---|
//! | `GET /metrics` | `200`, the Prometheus text format 0.0.4: the reactor's counters and gauges, then the application's own |
//! | `GET /connections` | `200`, a JSON array with one object per connection (the snapshot SIGUSR1 prints) |
//! | `GET /udp` | `200`, a JSON array with one object per UDP socket (address, state, datagram counters) |
//! | another method on either | `405 Method Not Allowed`, with `Allow: GET` |
//! | any other path | `404 Not Found` |
//! | a malformed request | its status (400, 413, 431, 501), then close |
//!
//! Add it as a second listener of the reactor that serves the application, so what it reports
//! is that reactor's state, read inside its loop without locks or copies kept up to date:
//!
//! ```
//! use evdrive_protocols::admin::AdminServer;
//! use evdrive_protocols::kv::{KvConn, KvStore};
//! use reactor::{ListenOptions, Reactor};
//!
//! let mut reactor = Reactor::new(KvStore::new())?;
//! let any = "127.0.0.1:0".parse().unwrap();
//! reactor.listen(any, ListenOptions::default(), |_store, _peer| KvConn::new())?;
//! let admin = reactor.listen(any, ListenOptions::default(), |_store, _peer| AdminServer::new())?;
//! let admin = reactor.listener_addr(admin)?;
//! // `curl http://{admin}/metrics` now shows `evdrive_kv_keys 0` among the reactor's counters.
//! # let _ = admin;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Why it is shaped so
//!
//! The handler is generic over the reactor's user state through [`AppMetrics`]: the state
//! writes its own metrics (keys in the key-value store, members in the chat room) after the
//! reactor's, into the same [`MetricsWriter`], which refuses a name used twice. The rendering is
//! the reactor's [`reactor::metrics`] module, so an embedder who serves HTTP some other
//! way calls the same functions.
//!
//! Requests are decoded by the crate's [`http`](crate::codec::http) codec, so keep-alive,
//! pipelining and the limits behave as in the HTTP sample. A request body is refused above
//! 64 KiB: no route takes one. There is no request timeout of its own: the listener's idle
//! timeout bounds a client that stalls (the `evdrive` samples give it one).

use reactor::metrics::{self, MetricsError, MetricsWriter};
use reactor::{CloseReason, Cx, Protocol, Stats};

use crate::chat::ChatRoom;
use crate::codec::http::{Connection, HttpCodec, Request, Response};
use crate::codec::Decoder;
use crate::kv::KvStore;

/// The `Content-Type` of `GET /metrics`: the text format's version, as scrapers expect.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The largest request body accepted; no route takes a body.
const MAX_BODY: usize = 64 * 1024;

/// A reactor's user state that has metrics of its own to show on `GET /metrics`.
pub trait AppMetrics {
    /// Appends the state's metrics to `w`, after the reactor's (whose names start with
    /// `evdrive_`; use a prefix of your own).
    ///
    /// # Errors
    ///
    /// What [`MetricsWriter`] refuses: an invalid or repeated name. The endpoint then answers
    /// with the reactor's metrics and those written before the error, and logs it.
    fn write_metrics(&self, w: &mut MetricsWriter) -> Result<(), MetricsError>;
}

/// How the proxy's pairs ended: `proxy_pairs_total` and
/// `proxy_upstream_failures_total{reason}`.
impl AppMetrics for crate::proxy::ProxyStats {
    fn write_metrics(&self, w: &mut MetricsWriter) -> Result<(), MetricsError> {
        w.counter(
            "proxy_pairs_total",
            "Upstream connections opened.",
            self.pairs,
        )?;
        w.labeled_counter(
            "proxy_upstream_failures_total",
            "Clients closed because the upstream could not be reached, by reason.",
            &["reason"],
            [
                (["refused"], self.upstream_refused),
                (["connect_timeout"], self.upstream_timeouts),
                (["other"], self.upstream_failed),
            ],
        )?;
        Ok(())
    }
}

/// No state, no metrics of its own (the echo and HTTP samples).
impl AppMetrics for () {
    fn write_metrics(&self, _w: &mut MetricsWriter) -> Result<(), MetricsError> {
        Ok(())
    }
}

/// `evdrive_kv_keys`: the number of keys.
impl AppMetrics for KvStore {
    fn write_metrics(&self, w: &mut MetricsWriter) -> Result<(), MetricsError> {
        w.gauge(
            "evdrive_kv_keys",
            "Keys in the store, counting expired keys whose removal is still due.",
            self.len() as f64,
        )
    }
}

/// `evdrive_chat_members`: the number of members in the room.
impl AppMetrics for ChatRoom {
    fn write_metrics(&self, w: &mut MetricsWriter) -> Result<(), MetricsError> {
        w.gauge(
            "evdrive_chat_members",
            "Members in the chat room.",
            self.len() as f64,
        )
    }
}

/// The text of `GET /metrics`: the reactor's counters and gauges, then the application's.
pub fn render_metrics(stats: &Stats, app: &impl AppMetrics) -> String {
    let mut w = MetricsWriter::new();
    metrics::write_stats(&mut w, stats).expect("a fresh writer holds no family");
    if let Err(e) = app.write_metrics(&mut w) {
        log::warn!("application metrics left out: {e}");
    }
    w.into_string()
}

/// The handler of one connection to the admin endpoint.
#[derive(Debug)]
pub struct AdminServer {
    /// Progress on the unfinished request, if any.
    codec: HttpCodec,
}

impl Default for AdminServer {
    fn default() -> Self {
        AdminServer::new()
    }
}

impl AdminServer {
    /// A handler with the codec's default head limits and a 64 KiB body limit.
    pub fn new() -> Self {
        AdminServer {
            codec: HttpCodec::new().with_max_body_length(MAX_BODY),
        }
    }
}

/// Routes one request and appends its response.
fn respond<App: AppMetrics>(cx: &mut Cx<'_, App>, req: &Request<'_>, out: &mut Vec<u8>) {
    // The path without its query string.
    let path = req.path().split('?').next().unwrap_or("");
    let known = matches!(path, "/metrics" | "/connections" | "/udp");
    let (status, content_type, body): (u16, &str, Vec<u8>) = match path {
        _ if !known => (404, "text/plain; charset=utf-8", b"not found\n".to_vec()),
        _ if req.method() != "GET" => (405, "text/plain; charset=utf-8", b"only GET\n".to_vec()),
        "/metrics" => {
            let stats = cx.stats().clone();
            let text = render_metrics(&stats, cx.app());
            (200, METRICS_CONTENT_TYPE, text.into_bytes())
        }
        "/udp" => {
            let json = metrics::udp_sockets_json(&cx.udp_sockets());
            (200, "application/json", json.into_bytes())
        }
        _ => {
            let json = metrics::connections_json(&cx.connections());
            (200, "application/json", json.into_bytes())
        }
    };
    let with_allow = [
        ("Server", &b"evdrive"[..]),
        ("Content-Type", content_type.as_bytes()),
        ("Allow", b"GET"),
    ];
    let response = Response {
        headers: if status == 405 {
            &with_allow
        } else {
            &with_allow[..2]
        },
        body: &body,
        connection: Connection::for_request(req),
        ..Response::new(status)
    };
    // A response to `HEAD` has no body, whatever its status (RFC 9110 9.3.2).
    let encoded = if req.method() == "HEAD" {
        response.encode_head(out)
    } else {
        response.encode(out)
    };
    encoded.expect("fixed headers and a known status are valid");
}

impl<App: AppMetrics> Protocol<App> for AdminServer {
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        let mut out = Vec::new();
        let mut consumed = 0;
        let close = loop {
            match self.codec.decode(&data[consumed..]) {
                // A whole request: answer it, then look for the next one (pipelining).
                Ok(Some((req, n))) => {
                    consumed += n;
                    respond(cx, &req, &mut out);
                    if !req.keep_alive() {
                        consumed = data.len();
                        break true;
                    }
                }
                // Part of a request: keep it for the next call.
                Ok(None) => break false,
                // Malformed or too large: answer with the error's status and close.
                Err(e) => {
                    let body = format!("{e}\n");
                    let response = Response {
                        headers: &[("Server", b"evdrive")],
                        body: body.as_bytes(),
                        connection: Connection::Close,
                        ..Response::new(e.status())
                    };
                    response
                        .encode(&mut out)
                        .expect("fixed headers and a known status are valid");
                    consumed = data.len();
                    break true;
                }
            }
        };
        // Every response of the batch in one buffer: one write.
        // A connection that no longer takes writes hands the batch back: nobody to answer.
        let _ = cx.write_vec(out);
        if close {
            cx.close_with(CloseReason::Local);
        }
        consumed
    }

    /// The client half-closed: nothing more can arrive; close once the responses are sent.
    fn on_eof(&mut self, cx: &mut Cx<'_, App>) {
        cx.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor::testing::Harness;
    use reactor::{ListenOptions, UdpConfig};
    use std::time::Duration;

    /// The status line, the headers and the body of the one response in `raw`.
    fn split(raw: &[u8]) -> (String, String) {
        let text = String::from_utf8(raw.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("a whole head");
        (head.to_string(), body.to_string())
    }

    #[test]
    fn serves_metrics_connections_udp_sockets_and_refuses_the_rest() {
        let mut h = Harness::new(KvStore::new()).unwrap();
        let l = h.listen(ListenOptions::default(), |_, _| AdminServer::new());
        let local = "127.0.0.1:5353".parse().unwrap();
        let _udp = h.bind_udp(local, None, UdpConfig::new(), crate::udp_echo::UdpEcho);
        let c = l.connect();
        let ask = |h: &mut Harness<KvStore>, req: &str| {
            c.send(req.as_bytes());
            h.advance(Duration::from_millis(1)).unwrap();
            split(&c.take_received())
        };

        let (head, body) = ask(&mut h, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(body.contains("# TYPE evdrive_connections_accepted_total counter\n"));
        assert!(
            body.contains("evdrive_connections_accepted_total 1\n"),
            "{body}"
        );
        assert!(body.ends_with("# TYPE evdrive_kv_keys gauge\nevdrive_kv_keys 0\n"));

        let (head, body) = ask(&mut h, "GET /connections?x=1 HTTP/1.1\r\n\r\n");
        assert!(
            head.contains("Content-Type: application/json\r\n"),
            "{head}"
        );
        assert!(
            body.starts_with("[{\"id\":\"#") && body.ends_with("}]"),
            "{body}"
        );
        assert!(body.contains("\"state\":\"open\""), "{body}");

        let (head, body) = ask(&mut h, "GET /udp HTTP/1.1\r\n\r\n");
        assert!(
            head.contains("Content-Type: application/json\r\n"),
            "{head}"
        );
        assert!(
            body.starts_with("[{\"id\":") && body.ends_with("}]"),
            "{body}"
        );
        assert!(
            body.contains("\"local\":\"127.0.0.1:5353\",\"peer\":null,\"state\":\"open\""),
            "{body}"
        );

        let (head, _) = ask(&mut h, "GET /nope HTTP/1.1\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
        for method in ["POST", "HEAD", "DELETE"] {
            let (head, body) = ask(&mut h, &format!("{method} /metrics HTTP/1.1\r\n\r\n"));
            assert!(head.starts_with("HTTP/1.1 405 "), "{method}: {head}");
            assert_eq!(body.is_empty(), method == "HEAD");
            assert!(head.contains("Allow: GET\r\n"), "{head}");
        }
        assert!(!c.fin_received(), "keep-alive throughout");

        let (head, _) = ask(&mut h, "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(head.ends_with("\r\nConnection: close"), "{head}");
        assert!(c.fin_received());
    }

    #[test]
    fn a_malformed_request_gets_its_status_and_a_close() {
        let mut h = Harness::new(()).unwrap();
        let l = h.listen(ListenOptions::default(), |_, _| AdminServer::new());
        let c = l.connect();
        c.send(b"POST /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
        h.advance(Duration::from_millis(1)).unwrap();
        let (head, _) = split(&c.take_received());
        assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
        assert!(c.fin_received());
    }

    #[test]
    fn a_chat_room_shows_its_members() {
        let text = render_metrics(&Stats::default(), &ChatRoom::new());
        assert!(text.ends_with("evdrive_chat_members 0\n"), "{text}");
    }

    /// A state whose metrics clash with the reactor's.
    struct Clash;

    impl AppMetrics for Clash {
        fn write_metrics(&self, w: &mut MetricsWriter) -> Result<(), MetricsError> {
            w.gauge("evdrive_connections_open", "again", 1.0)
        }
    }

    #[test]
    fn a_clashing_application_metric_is_left_out() {
        let text = render_metrics(&Stats::default(), &Clash);
        assert_eq!(text.matches("# TYPE evdrive_connections_open ").count(), 1);
        assert_eq!(text, metrics::render_stats(&Stats::default()));
    }
}
