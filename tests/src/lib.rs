//! Helpers shared by the end-to-end tests of the reactor.
//!
//! The tests run a real [`Reactor`](reactor::Reactor) on a background thread ([`Server`]) and drive it with
//! blocking clients over 127.0.0.1. Handlers are wrapped in [`Observed`], which reports every
//! callback of interest to the test thread as an [`Event`]; an [`Observer`] waits for those
//! events with a deadline and checks at the end that every connection was closed exactly once.
//!
//! Every wait here is bounded: clients get read and write timeouts of [`WAIT`], and every
//! `wait_*` function takes or uses a deadline, so a broken reactor fails a test instead of
//! hanging it.
//!
//! ```no_run
//! use evdrive_tests::{connect, observe, Server};
//! use protocols::echo::Echo;
//! use std::io::{Read, Write};
//!
//! let (watch, mut observer) = observe();
//! let server = Server::listen(|| (), Default::default(), move |_, _| watch.wrap(Echo))?;
//! let mut client = connect(server.addr())?;
//! client.write_all(b"ping")?;
//! let mut reply = [0; 4];
//! client.read_exact(&mut reply)?;
//! assert_eq!(&reply, b"ping");
//! drop(client);
//! server.shutdown(std::time::Duration::from_secs(1))?;
//! observer.assert_closed_once();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The helpers are grouped by subject: the reactor on its thread (`server`), the observation of
//! handlers (`observe`), blocking clients and raw sockets (`client`), tests run in a child
//! process (`child`), the `evdrive` binary (`binary`) and other programs (`process`), and ports for
//! programs that take no port 0 (`ports`). Everything is re-exported here, so a
//! test names it `evdrive_tests::NAME`; the set-up of the tests under a low descriptor limit is
//! named by its module, `evdrive_tests::low_fds::NAME`.
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
// Every `unsafe` of the workspace lives in the reactor's `sys` module.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

mod binary;
mod child;
mod client;
pub mod low_fds;
mod observe;
mod ports;
mod process;
mod server;

pub use binary::evdrive_binary;
pub use child::{is_child, run_in_child, spawn_child, TempDir};
pub use client::*;
pub use observe::{observe, Event, Observed, Observer, Watch};
pub use ports::unassigned_port;
pub use process::{wait_child, wait_child_on, Running};
pub use server::Server;

/// The longest any single wait of a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// Turns on the reactor's log output (`RUST_LOG=debug cargo test …`), once per process.
pub fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// 127.0.0.1 with port 0: a fresh port chosen by the kernel.
pub fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Calls `f` until it returns `Some`, for at most `limit`, pausing briefly between calls.
/// For conditions that have no event to wait on.
pub fn wait_until<R>(limit: Duration, mut f: impl FnMut() -> Option<R>) -> Option<R> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(r) = f() {
            return Some(r);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `attempt` up to `attempts` times until it is conclusive (`Some`) and returns that.
///
/// For tests of a client that must keep a pace (a byte every 50 ms against a 200 ms idle
/// timeout): on a loaded machine the client itself can be kept from running for longer than the
/// timeout, and then a close is the right answer, not a failure. Such an attempt measures its
/// own longest gap and returns `None` when the gap broke its premise; a close *without* such a
/// gap is a failure, which the attempt reports by panicking or with an error.
///
/// # Panics
/// If no attempt was conclusive, naming `what`.
pub fn until_conclusive<T>(
    what: &str,
    attempts: usize,
    mut attempt: impl FnMut() -> io::Result<Option<T>>,
) -> io::Result<T> {
    for i in 0..attempts {
        if let Some(result) = attempt()? {
            return Ok(result);
        }
        eprintln!(
            "{what}: attempt {} inconclusive (the client lost its pace)",
            i + 1
        );
    }
    panic!("{what}: the machine kept the client from its pace in all {attempts} attempts");
}
