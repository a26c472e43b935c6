#![doc = include_str!("../README.md")]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![doc(test(attr(deny(warnings))))]

pub use protocols;
pub use reactor;
pub use timers;
