//! Instruments for measuring evdrive against its peers.
//!
//! The crate holds the load generator's parts (`loadgen` is a thin command line over them) and
//! the code the peer servers share. The load is driven by one mio event loop per client thread
//! over all of that thread's connections, so the client spends its core on sockets rather than
//! on scheduling: on a two-core machine it competes with the server it measures.
//!
//! - [`echo`]: ping-pong, pipelined and streaming echo load with latency percentiles;
//! - [`fanout`]: one sender, many chat members, every line checked: a chat's broadcast cost;
//! - [`idle`]: many idle connections, held open to measure a server's memory per connection;
//! - [`report`]: the results, as a table or as JSON;
//! - [`pattern`]: the bytes sent, so that echoes are checked with one `memcmp`;
//! - [`sys`]: the few socket calls std and mio lack (`SO_LINGER`, binding a source address).
//!
//! See `bench/README.md` for the tools, the comparison script and how to read its output.
//!
//! # Examples
//!
//! A short ping-pong run against an echo server on a thread of its own:
//!
//! ```no_run
//! use std::time::Duration;
//! use bench::echo::{self, EchoConfig};
//!
//! let cfg = EchoConfig {
//!     mode: "echo",
//!     addr: "127.0.0.1:7000".parse().unwrap(),
//!     sources: Vec::new(),
//!     first_index: 0,
//!     connections: 50,
//!     size: 64,
//!     depth: 1,
//!     duration: Duration::from_secs(2),
//!     messages: None,
//!     warmup: Duration::from_millis(200),
//!     rate: None,
//!     verify: true,
//!     grace: echo::DEFAULT_GRACE,
//!     unix: None,
//! };
//! let summary = echo::run(&cfg)?;
//! println!("{}", summary.to_table());
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
// Every `unsafe` of the workspace lives in the reactor's `sys` module.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

pub mod echo;
pub mod fanout;
pub mod idle;
pub mod pattern;
pub mod report;
pub mod sys;
