//! Framing codecs and sample protocol handlers for the evdrive reactor.
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod codec;
