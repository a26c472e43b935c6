//! The echo targets: exactly the bytes sent come back, whatever the kernel does to the writes.

use reactor::testing::{Harness, MemPeer};
use reactor::{ConnConfig, Cx, ListenOptions, Protocol, Shared};

use super::script::{patient, HandlerInput};
use crate::echo::Echo;
use reactor::testing::{converse, Conversation};

/// Checks what one echo connection saw. `gave_up` says whether the clock passed the linger
/// timeout, after which a graceful close stops waiting for a peer that does not read.
fn check_echo(talk: &Conversation, peer: &MemPeer, gave_up: bool) {
    if talk.fin && gave_up && talk.received.len() < talk.sent.len() {
        // The close gave up on a peer that stopped reading: what came back is a prefix.
        assert!(
            talk.sent.starts_with(&talk.received),
            "{} bytes back of {} sent, not a prefix",
            talk.received.len(),
            talk.sent.len()
        );
        assert!(
            peer.is_closed(),
            "unsent output, yet not closed after the linger timeout"
        );
        return;
    }
    if talk.reset {
        // Whatever came back before the reset is the start of what was sent.
        assert!(
            talk.sent.starts_with(&talk.received),
            "{} bytes back of {} sent, not a prefix",
            talk.received.len(),
            talk.sent.len()
        );
        assert!(peer.is_closed(), "a reset connection was kept open");
        return;
    }
    assert!(
        talk.received == talk.sent,
        "{} bytes back of {} sent (first difference at {:?})",
        talk.received.len(),
        talk.sent.len(),
        talk.received
            .iter()
            .zip(&talk.sent)
            .position(|(a, b)| a != b)
    );
    if talk.fin {
        // Echo closes on FIN: everything flushed, then FIN, then closed (the peer's FIN is in).
        assert!(peer.fin_received(), "no FIN after the peer's FIN");
        assert!(peer.is_closed(), "not closed after both FINs");
    } else {
        assert!(!peer.fin_received(), "FIN without a reason");
    }
}

/// Checks [`Echo`] on the in-memory transport: exactly the bytes sent come back, in order,
/// however the input is cut and however the kernel cuts the writes (short counts,
/// `WouldBlock`, `EINTR`); after the peer's FIN everything is flushed, then FIN and close;
/// after a reset what came back is a prefix of what was sent and the connection is closed.
///
/// Input: see the [module documentation](super) (the flags are unused).
///
/// # Panics
///
/// If an invariant is broken.
pub fn echo(data: &[u8]) {
    let mut input = HandlerInput::read(data);
    let mut h = Harness::new(()).expect("a harness needs no system resource but a poller");
    let listener = h.listen(patient(), |_, _| Echo);
    let peer = listener.connect();
    let talk = converse(&mut h, &peer, &mut input.ops, input.payload);
    check_echo(&talk, &peer, false);
}

/// An echo that queues its output in pieces of `piece` bytes, each written a different way
/// (copied, handed over as a `Vec`, shared), so the output queue holds many chunks of every
/// kind and a gather write spans many of them.
#[derive(Debug)]
struct PieceEcho {
    /// The size of each piece written.
    piece: usize,
    /// How many pieces were written, choosing the next write's kind.
    written: usize,
}

impl Protocol<()> for PieceEcho {
    fn on_data(&mut self, cx: &mut Cx<'_, ()>, data: &[u8]) -> usize {
        for piece in data.chunks(self.piece) {
            match self.written % 3 {
                0 => cx.write(piece),
                1 => cx.write_vec(piece.to_vec()).is_ok(),
                _ => cx.write_shared(&Shared::from(piece)),
            };
            self.written += 1;
        }
        data.len()
    }
}

/// Checks the reactor's output queue: through an echo that writes in small pieces of every
/// kind, with high/low-water marks small enough that reading pauses and resumes all the time,
/// bytes out equal bytes in, in order, under any short writes and `EINTR`. One exception, by
/// design: a peer that half-closes and then reads nothing for the linger timeout (5 s) gets only
/// a prefix, and the connection is closed.
///
/// Input: as for [`echo`]; the flags choose the piece size (bits 0–3) and the water marks
/// (bits 4–7).
///
/// # Panics
///
/// If an invariant is broken.
pub fn output_queue(data: &[u8]) {
    let mut input = HandlerInput::read(data);
    let piece =
        [1, 2, 3, 7, 64, 500, 4095, 4096, 4097, 10_000][usize::from(input.flags & 0x0f) % 10];
    let high_water = [1, 10, 100, 1000, 4096, 64 * 1024][usize::from(input.flags >> 4) % 6];
    let low_water = high_water / (1 + usize::from(input.flags >> 6));
    let opts = ListenOptions::default().with_conn(
        ConnConfig::default()
            .with_high_water(high_water)
            .with_low_water(low_water),
    );
    let mut h = Harness::new(()).expect("a harness needs no system resource but a poller");
    let listener = h.listen(opts, move |_, _| PieceEcho { piece, written: 0 });
    let peer = listener.connect();
    let talk = converse(&mut h, &peer, &mut input.ops, input.payload);
    // The default linger timeout: a peer that half-closes and stops reading for that long
    // loses the rest of its echo, as designed (S14).
    let gave_up = h.now() >= ConnConfig::default().linger_timeout;
    check_echo(&talk, &peer, gave_up);
}
