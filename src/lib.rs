#![doc = include_str!("../README.md")]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
// Every `unsafe` of the workspace lives in the reactor's `sys` module.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

pub use protocols;
pub use reactor;
pub use timers;
