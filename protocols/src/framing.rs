//! The decode loop of a handler, written once: any [`Decoder`] plus a callback per frame.
//!
//! Every handler on a framed protocol has the same `on_data`: decode frames from the front of
//! the input until only part of one is left, act on each, report how many bytes the whole
//! frames used so the reactor keeps the tail, and on a broken frame say why and close. [`serve`]
//! is that loop; a handler states only what a frame does and what a broken frame gets:
//!
//! ```
//! use evdrive_protocols::codec::LinesCodec;
//! use evdrive_protocols::framing::{serve, Flow};
//!
//! let mut codec = LinesCodec::with_max_length(8);
//! let mut out = Vec::new();
//! let served = serve(
//!     &mut codec,
//!     b"ping\r\nquit\nmore\n",
//!     &mut out,
//!     // A whole line: answer it, or stop at `quit`.
//!     |out, line| match line {
//!         b"quit" => Flow::Close,
//!         _ => {
//!             LinesCodec::encode_line(line, out);
//!             Flow::Continue
//!         }
//!     },
//!     // A line over 8 bytes: say so (the connection then closes).
//!     |out, e| LinesCodec::encode_line(e.to_string().as_bytes(), out),
//! );
//! assert!(served.close); // at `quit`; what follows it is ignored
//! assert_eq!(served.consumed, 16);
//! assert_eq!(out, b"ping\r\n");
//! ```
//!
//! # Why it is shaped so
//!
//! The handler's two callbacks get a `state` they share (the handler's `Cx`, an output buffer,
//! or both), so both can write to it without fighting over a borrow. Everything is generic and
//! taken by value or by reference: the loop allocates nothing and calls nothing through a
//! pointer, so a handler written with it costs what its hand-written loop cost. It returns a
//! [`Served`] instead of closing the connection itself so that a handler's `serve` can be
//! tested without a reactor, and so the handler picks the close reason; [`finish`] is the usual
//! end of an `on_data` that batched its replies in one buffer.

use reactor::{CloseReason, Cx};

use crate::codec::Decoder;

/// Whether to go on decoding after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Decode the next frame.
    Continue,
    /// Stop: the connection is to close, and the input after this frame is ignored.
    Close,
}

/// What serving a batch of input achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// Bytes of the input used: by whole frames, or all of it once `close` is set.
    pub consumed: usize,
    /// Whether the connection must be closed once the replies are sent (a frame asked to, or
    /// a frame was broken).
    pub close: bool,
}

/// Decodes every whole frame at the front of `data`, handing each to `on_frame`, until only
/// part of a frame is left, a frame asks to close, or the input breaks the protocol.
///
/// - Part of a frame left: `consumed` counts the whole frames, and the caller offers the tail
///   again with more bytes behind it (what an `on_data` returning `consumed` does).
/// - [`Flow::Close`] from `on_frame`: `close` is set and all of `data` counts as consumed.
/// - A decoder error: `on_error` gets it (to write a reply, or nothing), then the same.
///
/// Both callbacks get `state`. The decoder is left as the [`Decoder`] contract says: its
/// progress on an unfinished frame is kept for the next call with the same prefix.
#[inline]
pub fn serve<D, S>(
    codec: &mut D,
    data: &[u8],
    state: &mut S,
    mut on_frame: impl for<'a> FnMut(&mut S, D::Frame<'a>) -> Flow,
    on_error: impl FnOnce(&mut S, D::Error),
) -> Served
where
    D: Decoder,
    S: ?Sized,
{
    let mut consumed = 0;
    loop {
        match codec.decode(&data[consumed..]) {
            // A whole frame: act on it, then look for the next one (pipelining).
            Ok(Some((frame, n))) => {
                consumed += n;
                if on_frame(state, frame) == Flow::Close {
                    break;
                }
            }
            // Only part of a frame is left: keep it for the next call.
            Ok(None) => {
                return Served {
                    consumed,
                    close: false,
                }
            }
            // A broken frame: nothing after it can be framed. Reply if the handler wants to.
            Err(e) => {
                on_error(state, e);
                break;
            }
        }
    }
    Served {
        consumed: data.len(),
        close: true,
    }
}

/// The end of an `on_data` that batched its replies in `out`: queues them as one chunk (one
/// gather write for the batch, S15), closes gracefully after them if `served` says so, and
/// returns the count `on_data` returns.
pub fn finish<App>(cx: &mut Cx<'_, App>, out: Vec<u8>, served: Served) -> usize {
    // A connection that no longer takes writes (closing, or aborted) hands the batch back:
    // there is no one left to answer, so it is dropped.
    let _ = cx.write_vec(out);
    if served.close {
        cx.close_with(CloseReason::Local);
    }
    served.consumed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{LinesCodec, LinesError};

    /// Feeds `input` cut at `cuts` the way the reactor does (the unconsumed tail offered again
    /// with the next piece) through [`serve`] with a lines codec whose limit is 8 bytes.
    /// Returns the lines seen, the error seen, and whether and where it closed.
    fn feed(input: &[u8], cuts: &[usize]) -> (Vec<Vec<u8>>, Option<String>, Option<usize>) {
        let mut codec = LinesCodec::with_max_length(8);
        let mut seen: (Vec<Vec<u8>>, Option<String>) = (Vec::new(), None);
        let mut buffered = Vec::new();
        let mut start = 0;
        let mut bounds = cuts.to_vec();
        bounds.push(input.len());
        for end in bounds {
            buffered.extend_from_slice(&input[start..end]);
            start = end;
            let served = serve(
                &mut codec,
                &buffered,
                &mut seen,
                |(lines, _), line| {
                    lines.push(line.to_vec());
                    if line == b"bye" {
                        Flow::Close
                    } else {
                        Flow::Continue
                    }
                },
                |(_, error), e: LinesError| *error = Some(e.to_string()),
            );
            assert!(served.consumed <= buffered.len());
            if served.close {
                assert_eq!(served.consumed, buffered.len());
                return (seen.0, seen.1, Some(end));
            }
            buffered.drain(..served.consumed);
        }
        (seen.0, seen.1, None)
    }

    #[test]
    fn frames_tail_close_and_error() {
        let (lines, error, closed) = feed(b"a\nbb\r\nccc", &[]);
        assert_eq!(lines, [b"a".to_vec(), b"bb".to_vec()]);
        assert_eq!((error, closed), (None, None));
        let (lines, _, closed) = feed(b"a\nbye\nlost\n", &[]);
        assert_eq!(lines, [b"a".to_vec(), b"bye".to_vec()]);
        assert!(closed.is_some());
        let (lines, error, closed) = feed(b"a\n123456789\nlost\n", &[]);
        assert_eq!(lines, [b"a".to_vec()]);
        assert!(error.is_some() && closed.is_some());
    }

    /// Any split of the input gives the same frames, the same error and the same close.
    #[test]
    fn every_split_gives_the_same_frames() {
        for input in [
            &b"one\ntwo\r\n\nthree\nbye\nafter\n"[..],
            b"x\r\n12345678\r\n123456789012\nnever\n",
            b"tail without newline",
        ] {
            let (lines, error, closed) = feed(input, &[]);
            for a in 0..=input.len() {
                for b in a..=input.len() {
                    let (l, e, c) = feed(input, &[a, b]);
                    assert_eq!((&l, &e), (&lines, &error), "cuts at {a}, {b}");
                    assert_eq!(c.is_some(), closed.is_some(), "cuts at {a}, {b}");
                }
            }
            let every: Vec<usize> = (1..input.len()).collect();
            let (l, e, c) = feed(input, &every);
            assert_eq!((l, e, c.is_some()), (lines, error, closed.is_some()));
        }
    }
}
