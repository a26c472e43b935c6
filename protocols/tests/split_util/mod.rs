//! Stream damage shared by the split-invariance property tests: what a corrupted or cut-off
//! peer stream looks like, drawn by proptest.

use proptest::prelude::*;
use proptest::sample::Index;

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
