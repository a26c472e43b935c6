//! TCP echo: every byte received is sent back, in order.
//!
//! The smallest useful handler, and the one the benchmarks compare with other echo servers. It
//! keeps no state, so the handler costs no allocation per connection; reading pauses by itself
//! when a peer does not read its echo (the reactor's backpressure), so a peer that only sends
//! cannot grow the server's memory.

use reactor::{Cx, Protocol};

use crate::codec::BytesCodec;
use crate::framing::{serve, Flow};

/// Sends every byte back.
///
/// ```
/// use evdrive_protocols::echo::Echo;
/// use reactor::{ListenOptions, Reactor};
///
/// let mut reactor = Reactor::new(())?;
/// let listener = reactor.listen("127.0.0.1:0".parse().unwrap(), ListenOptions::default(), |_, _| Echo)?;
/// assert_ne!(reactor.listener_addr(listener)?.port(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl<App> Protocol<App> for Echo {
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        // The frame is all of `data`, copied once into the output queue; the codec costs nothing.
        let served = serve(
            &mut BytesCodec,
            data,
            cx,
            |cx, bytes| {
                cx.write(bytes);
                Flow::Continue
            },
            |_, never| match never {},
        );
        served.consumed
    }

    /// The peer half-closed: finish sending what it sent, then close.
    fn on_eof(&mut self, cx: &mut Cx<'_, App>) {
        cx.close();
    }
}

/// What the echo sample does at the reactor's connection limit (S23): accept and close at once,
/// with no bytes (echo has nothing to say), so the client sees end of stream instead of waiting.
pub fn at_limit() -> reactor::AtLimit {
    reactor::AtLimit::Reject(reactor::Goodbye::none())
}
