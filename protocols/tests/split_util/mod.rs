//! What the split-invariance property tests share: decoding one input three ways (whole, at
//! random cuts, byte by byte), turning random indices into cuts, and stream damage (what a
//! corrupted or cut-off peer stream looks like, drawn by proptest).

use std::fmt::Debug;

use evdrive_protocols::codec::split::{decode_all_ways, Decoded};
use evdrive_protocols::codec::Decoder;
use proptest::prelude::*;
use proptest::sample::Index;

/// Decodes `input` whole, cut at `cuts`, and one byte at a time, with a fresh decoder from
/// `make` each time; checks the three agree and returns the result.
pub fn decode_three_ways<D, T, F>(
    make: impl Fn() -> D,
    input: &[u8],
    cuts: &[usize],
    own: F,
) -> Decoded<T, D::Error>
where
    D: Decoder,
    D::Error: PartialEq + Debug,
    T: PartialEq + Debug,
    F: for<'a> Fn(D::Frame<'a>) -> T,
{
    decode_all_ways(make, input, cuts, true, own)
}

/// Turns random indices into cut offsets in `0..=len`.
pub fn cuts_for(len: usize, picks: &[Index]) -> Vec<usize> {
    picks.iter().map(|i| i.index(len + 1)).collect()
}

/// Random damage to a valid stream: overwritten bytes, inserted bytes, and a cut-off end.
#[derive(Debug, Clone)]
pub enum Damage {
    Overwrite(Index, u8),
    Insert(Index, u8),
    Truncate(Index),
}

pub fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Overwrite(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Insert(i, b)),
        any::<Index>().prop_map(Damage::Truncate),
    ]
}

pub fn apply(mut bytes: Vec<u8>, damages: &[Damage]) -> Vec<u8> {
    for d in damages {
        match *d {
            Damage::Overwrite(ref i, b) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            Damage::Insert(ref i, b) => {
                let i = i.index(bytes.len() + 1);
                bytes.insert(i, b);
            }
            Damage::Truncate(ref i) => bytes.truncate(i.index(bytes.len() + 1)),
            _ => {}
        }
    }
    bytes
}
