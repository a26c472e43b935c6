//! An in-memory transport that runs any handler exactly as the reactor would, with no sockets
//! (feature `testing`).
//!
//! A [`Harness`] is a real [`Reactor`](crate::Reactor) whose connections are in-memory pipes instead of
//! sockets, and whose clock moves only when the harness says so. The pipes sit behind the same
//! syscall seam as sockets (the crate's `Stream`), so the reactor's own accept loop, connect
//! verdict, read loop, output queue, partial-write handling, backpressure and close logic are
//! what runs — not a copy of them. What the kernel would do is scripted through a [`MemPeer`],
//! the far end of a pipe:
//!
//! - input arrives in chunks the test chooses ([`MemPeer::send`]), and each read returns at most
//!   [`MemPeer::set_read_chunk`] bytes, so frames split at arbitrary points;
//! - writes are accepted only up to a budget ([`MemPeer::set_write_budget`]): short counts and
//!   `WouldBlock` at any point, with a writable edge when the budget grows again;
//! - `EINTR` on the next calls ([`MemPeer::inject_eintr`]), retried inside the seam as the
//!   system-call layer retries it for sockets, and counted ([`MemPeer::interrupted`]); a half-close
//!   ([`MemPeer::shutdown_write`]) and `ECONNRESET` ([`MemPeer::reset`]) at any moment;
//! - any `SO_ERROR` as the verdict of an outgoing connect ([`MemPeer::complete_connect`]);
//! - any errno from `accept` ([`MemListener::inject_accept_error`], e.g. `EMFILE`,
//!   `ECONNABORTED`), and a failing reserve of the listener's spare descriptor
//!   ([`MemListener::fail_spare_reserve`]);
//! - a peer made by [`MemListener::connect`] stands in for TCP (the reactor serves it by the
//!   same read path as a TCP connection); one made by [`MemListener::connect_with_fds`] carries
//!   descriptors with its bytes, as a Unix-domain socket does ([`MemPeer::send_with_fds`]);
//! - time moves only through [`Harness::advance`];
//! - UDP sockets are in-memory datagram pipes ([`Harness::bind_udp`], [`MemUdpPeer`]): `EAGAIN`
//!   on a send, truncation, and any errno (refused) on the next operation.
//!
//! Readiness is edge-triggered as with epoll: a pipe raises a readable edge when bytes, a FIN or
//! a reset arrive, and a writable edge when a blocked writer's budget grows. An edge is queued
//! on the reactor once (the reactor never scans its sources for them). A handler or
//! reactor bug that relies on level-triggered readiness hangs here as it would in production.
//!
//! ```
//! use evdrive_reactor::testing::Harness;
//! use evdrive_reactor::{Cx, ListenOptions, Protocol};
//!
//! struct Echo;
//! impl Protocol<()> for Echo {
//!     fn on_data(&mut self, cx: &mut Cx<'_, ()>, data: &[u8]) -> usize {
//!         cx.write(data);
//!         data.len()
//!     }
//! }
//!
//! let mut h = Harness::new(())?;
//! let listener = h.listen(ListenOptions::default(), |_, _| Echo);
//! let peer = listener.connect();
//! peer.set_write_budget(Some(3)); // the kernel takes 3 bytes, then would block
//! peer.send(b"hello");
//! h.settle()?;
//! assert_eq!(peer.take_received(), b"hel");
//! peer.set_write_budget(None); // the peer reads: a writable edge
//! h.settle()?;
//! assert_eq!(peer.take_received(), b"lo");
//! # Ok::<(), std::io::Error>(())
//! ```

mod datagram;
mod harness;
mod script;
mod transport;

pub use datagram::MemUdpPeer;
pub use harness::Harness;
pub use script::{converse, Conversation, PeerOp, Script};
pub use transport::{MemListener, MemPeer};
