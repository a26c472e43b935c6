//! TCP forwarder: every accepted client gets a connection to one upstream address, and the two
//! are linked, so bytes flow both ways until both sides are done.
//!
//! Written only with the reactor's public API: [`ProxyClient::on_open`] connects upstream and
//! calls [`LoopCx::link`](reactor::LoopCx::link); from then on the reactor moves the bytes
//! itself, with backpressure crossing the link (S21: a slow reader on either end pauses the
//! other end's reading, so memory per pair stays within the water marks), end of stream
//! passed on as a half-close (S14: nothing is lost, replies after a client's FIN still arrive),
//! and an error on one side closing the other. The handlers are left with what only they know:
//! saying why a client was closed when its upstream could not be reached.
//!
//! ```text
//! evdrive proxy --listen 127.0.0.1:7100 --upstream 127.0.0.1:7007 --connect-timeout 5
//! nc 127.0.0.1 7100
//! ```

use std::net::SocketAddr;

use reactor::{CloseKind, CloseReason, ConnConfig, Cx, Protocol};

/// The proxy's state: counters of how pairs ended, shared by every handler of one reactor.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyStats {
    /// Upstream connections that opened (pairs that started forwarding).
    pub pairs: u64,
    /// Clients closed because the upstream refused the connection.
    pub upstream_refused: u64,
    /// Clients closed because the upstream did not answer within the connect timeout.
    pub upstream_timeouts: u64,
    /// Clients closed because the upstream could not be reached for another reason
    /// (unreachable, out of descriptors).
    pub upstream_failed: u64,
}

/// The handler of an accepted client: connects to the upstream and links the two.
///
/// ```
/// use evdrive_protocols::proxy::{ProxyClient, ProxyStats};
/// use reactor::{ConnConfig, ListenOptions, Reactor};
///
/// let upstream = "127.0.0.1:7007".parse().unwrap();
/// let mut reactor = Reactor::new(ProxyStats::default())?;
/// let config = ConnConfig::new();
/// reactor.listen("127.0.0.1:0".parse().unwrap(), ListenOptions::default(), move |_, _| {
///     ProxyClient::new(upstream, config.clone())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ProxyClient {
    /// Where every client is forwarded.
    upstream: SocketAddr,
    /// The upstream connection's settings (connect timeout, water marks).
    config: ConnConfig,
}

impl ProxyClient {
    /// A client to forward to `upstream`, whose connection gets `config` (its
    /// `connect_timeout` bounds how long a client waits for an upstream that does not answer).
    pub fn new(upstream: SocketAddr, config: ConnConfig) -> Self {
        ProxyClient { upstream, config }
    }
}

impl Protocol<ProxyStats> for ProxyClient {
    fn on_open(&mut self, cx: &mut Cx<'_, ProxyStats>) {
        let client = cx.id();
        let peer = cx.peer_addr();
        let upstream = Upstream {
            addr: self.upstream,
            client: peer,
            opened: false,
        };
        match cx.connect(self.upstream, upstream, self.config.clone()) {
            // Either side may be closing only if it failed already, and then the link's
            // error path has nothing to do: `link` refusing is not an error here.
            Ok(up) => {
                cx.link(client, up);
            }
            // No socket for the upstream (out of descriptors): nothing to forward to.
            Err(e) => {
                cx.app().upstream_failed += 1;
                log::info!(
                    "closing client {}: no connection to upstream {}: {e}",
                    fmt_peer(peer),
                    self.upstream
                );
                cx.close();
            }
        }
    }

    /// Never called once linked (the reactor forwards); before the link nothing is read.
    fn on_data(&mut self, _cx: &mut Cx<'_, ProxyStats>, data: &[u8]) -> usize {
        data.len()
    }

    fn on_close(&mut self, _cx: &mut Cx<'_, ProxyStats>, reason: CloseReason) {
        log::debug!("client closed: {reason}");
    }
}

/// The handler of the upstream side of a pair: counts and logs why an upstream that never
/// opened ended its client.
#[derive(Debug)]
struct Upstream {
    addr: SocketAddr,
    /// The client's address, for the log line.
    client: Option<SocketAddr>,
    /// The connect succeeded.
    opened: bool,
}

impl Protocol<ProxyStats> for Upstream {
    fn on_open(&mut self, cx: &mut Cx<'_, ProxyStats>) {
        self.opened = true;
        cx.app().pairs += 1;
    }

    /// Never called once linked.
    fn on_data(&mut self, _cx: &mut Cx<'_, ProxyStats>, data: &[u8]) -> usize {
        data.len()
    }

    fn on_close(&mut self, cx: &mut Cx<'_, ProxyStats>, reason: CloseReason) {
        if self.opened {
            log::debug!("upstream {} closed: {reason}", self.addr);
            return;
        }
        // The client was linked to this attempt, so the link closes it; say why.
        let why = match reason.kind() {
            CloseKind::Refused => {
                cx.app().upstream_refused += 1;
                "refused the connection"
            }
            CloseKind::ConnectTimeout => {
                cx.app().upstream_timeouts += 1;
                "did not answer within the connect timeout"
            }
            // The client went first (its peer reset): not the upstream's fault.
            CloseKind::LinkClosed => return,
            _ => {
                cx.app().upstream_failed += 1;
                "could not be reached"
            }
        };
        log::info!(
            "closing client {}: upstream {} {why} ({reason})",
            fmt_peer(self.client),
            self.addr
        );
    }
}

/// A peer address for the log, or `?` if the socket no longer knows it.
fn fmt_peer(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "?".to_owned(), |p| p.to_string())
}
