//! Reading fuzz bytes as a script, and playing a peer from it on the in-memory transport.

use std::time::Duration;

use reactor::testing::{Harness, MemPeer};
use reactor::{ConnConfig, ListenOptions};

/// Arbitrary bytes read front to back as small numbers and byte strings.
///
/// Reading past the end gives zeros and empty slices, so every byte string is a valid script
/// and a fuzzer that shortens an input only shortens what it does.
///
/// ```
/// use evdrive_protocols::fuzz::Script;
///
/// let mut s = Script::new(&[7, 1, 2, b'a', b'b']);
/// assert_eq!(s.below(4), 3); // 7 % 4
/// assert_eq!(s.u16(), 0x0102);
/// assert_eq!(s.bytes(5), b"ab"); // only two were left
/// assert_eq!(s.byte(), 0); // exhausted: zeros
/// ```
#[derive(Debug, Clone)]
pub struct Script<'a> {
    /// The bytes not read yet.
    rest: &'a [u8],
}

impl<'a> Script<'a> {
    /// A script reading `data` from the front.
    pub fn new(data: &'a [u8]) -> Self {
        Script { rest: data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next byte, or 0 past the end.
    pub fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    /// The next byte as a number below `n` (which must not be zero).
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    /// The next two bytes as a big-endian number.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// One of `choices`, picked by the next byte.
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.below(choices.len())]
    }

    /// The next `n` bytes, or as many as are left.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = rest;
        taken
    }

    /// Every byte not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.rest
    }
}

/// One step of a peer's script: what the peer, or its kernel, does next.
///
/// Read from two bytes by [`PeerOp::read`]: the first names the operation (modulo 10), the
/// second is its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerOp {
    /// Send the next this many bytes of the payload (a readable edge).
    Send(usize),
    /// Let writes take this many more bytes in all: short counts, then `WouldBlock`.
    Budget(usize),
    /// Lift the write budget: the peer reads everything (a writable edge if one was blocked).
    Unlimited,
    /// The next this many reads or writes fail with `EINTR`.
    Eintr(u32),
    /// Each read returns at most this many bytes (`None`: as many as fit).
    ReadChunk(Option<usize>),
    /// Run the reactor until nothing is pending.
    Settle,
    /// Move the clock forward and fire the timers now due.
    Advance(Duration),
    /// Half-close: FIN after the bytes sent so far. Nothing is sent after it.
    Fin,
    /// Reset the connection (`ECONNRESET`). Nothing happens on the connection after it.
    Reset,
    /// A writable edge with nothing behind it.
    Spurious,
}

impl PeerOp {
    /// Reads one operation from two bytes of `script`.
    pub fn read(script: &mut Script<'_>) -> PeerOp {
        let (op, arg) = (script.byte(), script.byte());
        let arg_usize = usize::from(arg);
        match op % 10 {
            // Small sends split frames at every byte; large ones fill the read buffer.
            0 if arg < 128 => PeerOp::Send(arg_usize + 1),
            0 => PeerOp::Send((arg_usize - 127) * 64),
            // Small budgets cut writes anywhere; large ones let bursts through.
            1 if arg < 128 => PeerOp::Budget(arg_usize),
            1 => PeerOp::Budget((arg_usize - 127) * 256),
            2 => PeerOp::Unlimited,
            3 => PeerOp::Eintr(u32::from(arg % 4) + 1),
            4 if arg == 0 => PeerOp::ReadChunk(None),
            4 => PeerOp::ReadChunk(Some(arg_usize)),
            5 => PeerOp::Settle,
            6 => PeerOp::Advance(Duration::from_millis(u64::from(arg) * 50)),
            7 => PeerOp::Fin,
            8 => PeerOp::Reset,
            _ => PeerOp::Spurious,
        }
    }
}

/// What one peer sent and received over a scripted connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    /// Every byte the peer sent, in order.
    pub sent: Vec<u8>,
    /// Every byte the peer received, in order.
    pub received: Vec<u8>,
    /// The peer half-closed.
    pub fin: bool,
    /// The peer reset the connection.
    pub reset: bool,
    /// `(bytes sent so far, clock)` at every settle, in order. Every settle reads all there is
    /// (unless reading is paused by backpressure), so the byte at offset `o` was read by the
    /// first settle whose count exceeds `o` ([`Conversation::read_by`]).
    pub settles: Vec<(usize, Duration)>,
    /// The index in `settles` of the settle that read the peer's FIN.
    pub fin_read: Option<usize>,
}

impl Conversation {
    /// The index in [`Conversation::settles`] of the settle that read the byte at `offset`.
    ///
    /// # Panics
    ///
    /// If that byte was never sent.
    pub fn read_by(&self, offset: usize) -> usize {
        self.settles
            .iter()
            .position(|&(sent, _)| sent > offset)
            .expect("every byte sent is read by a later settle")
    }

    /// Records a settle that just happened at `now`.
    fn settled(&mut self, now: Duration) {
        if self.fin && self.fin_read.is_none() {
            self.fin_read = Some(self.settles.len());
        }
        self.settles.push((self.sent.len(), now));
    }

    /// Takes what the reactor wrote since the last call.
    fn collect(&mut self, peer: &MemPeer) {
        self.received.extend(peer.take_received());
    }

    /// Sends up to `n` more bytes of `payload`, unless the peer has closed its side.
    fn send(&mut self, peer: &MemPeer, payload: &[u8], n: usize) {
        if self.fin || self.reset {
            return;
        }
        let at = self.sent.len();
        let end = at.saturating_add(n).min(payload.len());
        peer.send(&payload[at..end]);
        self.sent.extend_from_slice(&payload[at..end]);
    }
}

/// Settles the harness, or panics: a reactor that never rests is a bug.
pub(crate) fn settle<App>(h: &mut Harness<App>) {
    if let Err(e) = h.settle() {
        panic!("the reactor did not settle: {e}");
    }
}

/// Plays `peer` from the operations in `ops`, sending `payload` in the pieces they say, then
/// sends whatever is left of `payload` (unless the peer half-closed or reset), lifts the write
/// budget and settles, so everything sent has been answered. Returns what was sent and received.
///
/// This is the driver of the handler targets, made public so that a handler's author can fuzz
/// their own handler with it: build a [`Harness`], listen with the handler, connect a peer, call
/// `converse` with the fuzz bytes, and check the [`Conversation`] against what the protocol
/// says the answer to [`Conversation::sent`] must be.
///
/// ```
/// use evdrive_protocols::echo::Echo;
/// use evdrive_protocols::fuzz::{converse, Script};
/// use reactor::testing::Harness;
/// use reactor::ListenOptions;
///
/// let mut h = Harness::new(())?;
/// let listener = h.listen(ListenOptions::default(), |_, _| Echo);
/// let peer = listener.connect();
/// // Send 3 bytes, allow 1 byte of writes, settle; then the rest is sent by `converse`.
/// let mut ops = Script::new(&[0, 2, 1, 1, 5, 0]);
/// let talk = converse(&mut h, &peer, &mut ops, b"hello");
/// assert_eq!(talk.sent, b"hello");
/// assert_eq!(talk.received, b"hello");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// If the reactor never settles (something re-arms itself on every turn).
pub fn converse<App>(
    h: &mut Harness<App>,
    peer: &MemPeer,
    ops: &mut Script<'_>,
    payload: &[u8],
) -> Conversation {
    let mut talk = Conversation::default();
    // Step 1: the scripted part.
    while !ops.is_empty() && !talk.reset {
        match PeerOp::read(ops) {
            PeerOp::Send(n) => talk.send(peer, payload, n),
            PeerOp::Budget(n) => peer.set_write_budget(Some(n)),
            PeerOp::Unlimited => peer.set_write_budget(None),
            PeerOp::Eintr(n) => peer.inject_eintr(n),
            PeerOp::ReadChunk(n) => peer.set_read_chunk(n),
            PeerOp::Settle => {
                settle(h);
                talk.settled(h.now());
            }
            PeerOp::Advance(by) => {
                if let Err(e) = h.advance(by) {
                    panic!("the reactor did not settle: {e}");
                }
                talk.settled(h.now());
            }
            PeerOp::Fin if !talk.fin => {
                talk.fin = true;
                peer.shutdown_write();
            }
            PeerOp::Fin => {}
            PeerOp::Reset => {
                talk.reset = true;
                peer.reset();
            }
            PeerOp::Spurious => peer.spurious_wakeup(),
        }
        talk.collect(peer);
    }
    // Step 2: the rest of the payload, and a peer that reads everything.
    talk.send(peer, payload, payload.len());
    peer.set_write_budget(None);
    settle(h);
    talk.settled(h.now());
    talk.collect(peer);
    talk
}

/// A handler target's input: `[flags][n][n operations of two bytes][payload]`.
#[derive(Debug)]
pub(crate) struct HandlerInput<'a> {
    /// Bits whose meaning each target chooses (raw or built payload, settings).
    pub(crate) flags: u8,
    /// The peer's operations, read with [`PeerOp::read`].
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
