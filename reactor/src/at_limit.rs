//! What a listener does with new clients at the reactor's connection limit (S23, S24).
//!
//! Three answers, as the servers operators know give them:
//!
//! - [`AtLimit::Pause`]: stop accepting; new clients wait in the kernel's backlog until a
//!   connection closes (nginx). Nothing is said to them, so a client with no timeout of its own
//!   hangs.
//! - [`AtLimit::Reject`]: accept, write an optional protocol goodbye, and close gracefully (Redis
//!   answers `-ERR max number of clients reached`). The client learns at once; the descriptor is
//!   held only until the client's end of stream or a short linger.
//! - [`AtLimit::ShedIdle`]: close the longest-idle connection to admit the new one.
//!
//! The policy lives in [`ListenOptions`](crate::ListenOptions), so two listeners of one reactor
//! may answer differently (a public port rejects, an admin port pauses). The options travel to
//! other threads ([`Group`](crate::Group)), so the goodbye is shared with `Arc`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// A listener's policy at the reactor's connection limit ([`Limits::max_connections`]).
///
/// ```
/// use evdrive_reactor::{AtLimit, Goodbye, ListenOptions};
/// let opts = ListenOptions::new()
///     .with_at_limit(AtLimit::Reject(Goodbye::bytes("-ERR max number of clients reached\r\n")));
/// assert!(matches!(opts.at_limit, AtLimit::Reject(_)));
/// ```
///
/// [`Limits::max_connections`]: crate::Limits::max_connections
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum AtLimit {
    /// Stop accepting until a connection closes; new clients wait in the backlog (the default).
    #[default]
    Pause,
    /// Accept, send the goodbye, close gracefully. Counted in
    /// [`Stats::rejected`](crate::Stats::rejected).
    Reject(Goodbye),
    /// Abort the longest-idle connection (its handler sees `IdleTimeout`) to admit the new one.
    /// Counted in [`Stats::idle_sheds`](crate::Stats::idle_sheds).
    ShedIdle,
}

/// The bytes a rejected client gets before the close: none, fixed bytes, or bytes made for
/// each client by a function of its address.
#[derive(Clone, Default)]
pub struct Goodbye(Kind);

#[derive(Clone, Default)]
enum Kind {
    #[default]
    Nothing,
    Bytes(Arc<[u8]>),
    With(Arc<dyn Fn(Option<SocketAddr>) -> Vec<u8> + Send + Sync>),
}

impl Goodbye {
    /// A plain close: end of stream, no bytes.
    pub fn none() -> Self {
        Goodbye(Kind::Nothing)
    }

    /// The same bytes for every rejected client.
    pub fn bytes(bytes: impl AsRef<[u8]>) -> Self {
        Goodbye(Kind::Bytes(bytes.as_ref().into()))
    }

    /// Bytes made for each rejected client from its address: `Some` for a TCP client, `None`
    /// for a Unix-domain one, which has no address (as its connection's
    /// [`Cx::peer_addr`](crate::Cx::peer_addr) would say). Called on the reactor's thread; it
    /// must not block.
    ///
    /// ```
    /// use evdrive_reactor::Goodbye;
    /// let goodbye = Goodbye::with(|peer| match peer {
    ///     Some(addr) => format!("-ERR full, {addr}\r\n").into_bytes(),
    ///     None => b"-ERR full\r\n".to_vec(),
    /// });
    /// # let _ = goodbye;
    /// ```
    pub fn with(make: impl Fn(Option<SocketAddr>) -> Vec<u8> + Send + Sync + 'static) -> Self {
        Goodbye(Kind::With(Arc::new(make)))
    }

    /// The bytes for a client from `peer` (`None`: a Unix-domain client); empty: none.
    pub(crate) fn render(&self, peer: Option<SocketAddr>) -> Vec<u8> {
        match &self.0 {
            Kind::Nothing => Vec::new(),
            Kind::Bytes(b) => b.to_vec(),
            Kind::With(make) => make(peer),
        }
    }
}

impl fmt::Debug for Goodbye {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Nothing => f.write_str("Goodbye::none()"),
            Kind::Bytes(b) => write!(f, "Goodbye::bytes({:?})", String::from_utf8_lossy(b)),
            Kind::With(_) => f.write_str("Goodbye::with(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goodbyes_render_per_peer() {
        let peer: Option<SocketAddr> = Some("127.0.0.1:9".parse().unwrap());
        assert!(Goodbye::none().render(peer).is_empty());
        assert_eq!(Goodbye::bytes("full\n").render(peer), b"full\n");
        let made = Goodbye::with(|p| match p {
            Some(p) => format!("bye {}\n", p.port()).into_bytes(),
            None => b"bye, unix client\n".to_vec(),
        });
        assert_eq!(made.render(peer), b"bye 9\n");
        assert_eq!(made.render(None), b"bye, unix client\n");
        assert_eq!(format!("{made:?}"), "Goodbye::with(..)");
    }
}
