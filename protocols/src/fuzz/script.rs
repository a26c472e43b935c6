//! What the handler targets share on top of the reactor's scripted peer
//! ([`reactor::testing::converse`]): the layout of their input, and their listening options.

use reactor::testing::{Harness, Script};
use reactor::{ConnConfig, ListenOptions};

/// Settles the harness, or panics: a reactor that never rests is a bug.
pub(crate) fn settle<App>(h: &mut Harness<App>) {
    if let Err(e) = h.settle() {
        panic!("the reactor did not settle: {e}");
    }
}

/// A handler target's input: `[flags][n][n operations of two bytes][payload]`.
#[derive(Debug)]
pub(crate) struct HandlerInput<'a> {
    /// Bits whose meaning each target chooses (raw or built payload, settings).
    pub(crate) flags: u8,
    /// The peer's operations, read with [`PeerOp::read`](reactor::testing::PeerOp::read).
    pub(crate) ops: Script<'a>,
    /// The rest of the input.
    pub(crate) payload: &'a [u8],
}

impl<'a> HandlerInput<'a> {
    /// Splits `data` into flags, operations and payload.
    pub(crate) fn read(data: &'a [u8]) -> Self {
        let mut s = Script::new(data);
        let flags = s.byte();
        let n = usize::from(s.byte());
        let ops = Script::new(s.bytes(2 * n));
        HandlerInput {
            flags,
            ops,
            payload: s.rest(),
        }
    }
}

/// Listening options whose connections wait for a slow peer longer than any script can move
/// the clock (255 steps of at most 12.75 s): a graceful close then always sends everything
/// queued before it, so what a peer receives depends only on what it sent. (With the default
/// 5 s linger timeout, a peer that stops reading loses the rest of its answer, by design.)
pub(crate) fn patient() -> ListenOptions {
    ListenOptions::default().with_conn(
        ConnConfig::default().with_linger_timeout(std::time::Duration::from_secs(24 * 3600)),
    )
}
