//! Decoding a stream cut into pieces, the way the reactor delivers it: the reference for
//! tests and fuzz targets.
//!
//! [`decode_chunked`] feeds a [`Decoder`] as a handler's `on_data` would be fed: each piece is
//! appended to the unconsumed tail, frames are decoded until `Ok(None)`, the consumed bytes are
//! dropped. Decoding must not depend on where the stream was cut, so for any cuts
//! `decode_chunked(d, input, cuts, f)` should equal `decode_chunked(d, input, &[], f)`; the
//! property tests and fuzz targets check exactly that.
//!
//! It also checks the decoder's side of the contract, and panics (a bug in the decoder, which
//! is what tests and fuzzers want to hear about) if a frame claims to consume zero bytes or more
//! bytes than it was given.
//!
//! # Example
//!
//! ```
//! use evdrive_protocols::codec::split::decode_chunked;
//! use evdrive_protocols::codec::LinesCodec;
//!
//! let input = b"one\r\ntwo\nthr";
//! let whole = decode_chunked(&mut LinesCodec::new(), input, &[], |l| l.to_vec());
//! let split = decode_chunked(&mut LinesCodec::new(), input, &[1, 4, 5, 9], |l| l.to_vec());
//! assert_eq!(whole, split);
//! assert_eq!(whole.frames, [b"one".to_vec(), b"two".to_vec()]);
//! assert_eq!(whole.pending, 3); // "thr" waits for its newline
//! ```

use super::Decoder;

/// What decoding a whole stream produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<T, E> {
    /// The frames, in order, made owned by the caller's conversion.
    pub frames: Vec<T>,
    /// The error that stopped decoding, if any; no input is offered after it.
    pub error: Option<E>,
    /// Bytes left unconsumed at the end (an unfinished frame); zero after an error means
    /// nothing, as decoding stopped there.
    pub pending: usize,
}

/// Decodes `input` delivered in pieces cut at `cuts` (offsets into `input`, in any order; out of
/// range ones are ignored), converting each frame with `own` before its bytes are dropped.
///
/// Returns the frames, the error if one stopped decoding, and the unconsumed tail's length.
/// An empty `cuts` delivers `input` in one piece.
///
/// # Panics
///
/// If the decoder returns a frame that consumed no bytes, or more bytes than it was given.
pub fn decode_chunked<D, T, F>(
    decoder: &mut D,
    input: &[u8],
    cuts: &[usize],
    mut own: F,
) -> Decoded<T, D::Error>
where
    D: Decoder,
    F: for<'a> FnMut(D::Frame<'a>) -> T,
{
    // Piece boundaries: sorted, distinct, inside the input, ending with its end.
    let mut bounds: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < input.len())
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    bounds.push(input.len());

    let mut result = Decoded {
        frames: Vec::new(),
        error: None,
        pending: 0,
    };
    // The connection's own buffer: the unconsumed tail, then the new piece.
    let mut buffered: Vec<u8> = Vec::new();
    let mut start = 0;
    for end in bounds {
        // Step 1: a read delivers the next piece after what is still buffered.
        buffered.extend_from_slice(&input[start..end]);
        start = end;

        // Step 2: `on_data` decodes until the decoder wants more bytes.
        let mut consumed = 0;
        loop {
            let rest = &buffered[consumed..];
            match decoder.decode(rest) {
                Ok(Some((frame, n))) => {
                    assert!(
                        n > 0 && n <= rest.len(),
                        "decoder consumed {n} bytes of {} for one frame",
                        rest.len()
                    );
                    result.frames.push(own(frame));
                    consumed += n;
                }
                Ok(None) => break,
                Err(e) => {
                    result.error = Some(e);
                    return result;
                }
            }
        }

        // Step 3: the consumed bytes are dropped, the tail is kept for next time.
        buffered.drain(..consumed);
    }
    result.pending = buffered.len();
    result
}

/// Decodes `input` whole and cut at `cuts` (and, with `bytewise`, one byte at a time), each with
/// a fresh decoder from `make`, and panics unless every way gives the same frames, error and
/// pending tail: the property every codec must have, since the reactor cuts input wherever the
/// kernel does. Returns the whole decode.
///
/// ```
/// use evdrive_protocols::codec::split::decode_all_ways;
/// use evdrive_protocols::codec::LinesCodec;
///
/// let decoded = decode_all_ways(LinesCodec::new, b"a\nbc\nd", &[1, 3], true, |l| l.to_vec());
/// assert_eq!(decoded.frames, vec![b"a".to_vec(), b"bc".to_vec()]);
/// ```
pub fn decode_all_ways<D, T, F>(
    make: impl Fn() -> D,
    input: &[u8],
    cuts: &[usize],
    bytewise: bool,
    own: F,
) -> Decoded<T, D::Error>
where
    D: Decoder,
    D::Error: PartialEq + std::fmt::Debug,
    T: PartialEq + std::fmt::Debug,
    F: for<'a> Fn(D::Frame<'a>) -> T,
{
    let whole = decode_chunked(&mut make(), input, &[], &own);
    let cut = decode_chunked(&mut make(), input, cuts, &own);
    assert_eq!(whole, cut, "decoded whole vs cut at {cuts:?}");
    if bytewise {
        let every: Vec<usize> = (1..input.len()).collect();
        let bytes = decode_chunked(&mut make(), input, &every, &own);
        assert_eq!(whole, bytes, "decoded whole vs one byte at a time");
    }
    whole
}
