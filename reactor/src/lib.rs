//! A single-threaded event loop on mio that does the hard parts of non-blocking networking.
//!
//! The [`Reactor`] runs listeners, connections, outgoing connects, timers and signals from one
//! `poll` (S1). Protocol handlers implement [`Protocol`] and see only events: bytes arrived,
//! output drained, a timer fired, the peer closed. The reactor takes care of partial writes and
//! gather writes, backpressure, the non-blocking connect verdict, accept errors and descriptor
//! exhaustion, graceful and abortive close, and every kind of timeout.
//!
//! ```no_run
//! use evdrive_reactor::{ConnConfig, Cx, ListenOptions, Protocol, Reactor};
//! use std::time::Duration;
//!
//! /// Sends every byte back.
//! struct Echo;
//!
//! impl<App> Protocol<App> for Echo {
//!     fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
//!         cx.write(data);
//!         data.len()
//!     }
//! }
//!
//! let mut reactor = Reactor::new(())?;
//! let opts = ListenOptions::default()
//!     .with_conn(ConnConfig::default()
//!         .with_idle_timeout(Some(Duration::from_secs(60))));
//! reactor.listen("127.0.0.1:7000".parse().unwrap(), opts, |_app, _peer| Echo)?;
//! reactor.catch_signals(&[], Some(Duration::from_secs(5)), None)?;
//! reactor.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
// Every `unsafe` lives in `sys`, each with its `// SAFETY:` reason; the rest of the crate is
// safe code over it.
#![deny(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

pub mod activation;
mod at_limit;
mod config;
mod core;
mod cx;
mod error;
mod group;
mod handle;
mod listen;
pub mod metrics;
mod outbuf;
mod protocol;
mod reactor;
pub mod restart;
mod socket;
mod source;
mod stats;
#[allow(unsafe_code)]
pub mod sys;
#[cfg(feature = "testing")]
pub mod testing;
mod timer;
mod transport;
mod udp;
mod unix_addr;

pub use at_limit::{AtLimit, Goodbye};
pub use config::{ConnConfig, ListenOptions};
pub use core::conn::ConnId;
pub use core::limits::Limits;
pub use core::listener::{ListenAddr, ListenerId, ListenerStats};
pub use core::snapshot::{ConnSnapshot, ConnStats};
pub use core::tasks::TaskId;
pub use core::{READ_BYTES_PER_TURN, READ_SIZE, READ_SIZE_MAX};
pub use cx::{Conns, Cx, LoopCx};
pub use error::{CloseKind, CloseReason, Error, Result};
pub use group::Group;
pub use handle::{Handle, PostError};
/// What a user source is watched for ([`LoopCx::add_fd`], [`LoopCx::add_source`]).
pub use mio::Interest;
pub use outbuf::Shared;
pub use protocol::Protocol;
pub use reactor::Reactor;
pub use socket::SocketRef;
pub use source::{PostAction, SourceEvent, SourceId};
pub use stats::{AcceptErrors, Stats};
pub use sys::{Keepalive, PeerCredentials};
pub use timer::TimerId;
pub use udp::{Datagrams, SendPolicy, Sent, UdpConfig, UdpCx, UdpId, UdpSnapshot, UdpStats};
pub use unix_addr::{UnixAddr, UnixListenOptions};
