//! Framing codecs and sample protocol handlers for the evdrive reactor.
//!
//! Codecs ([`codec`]) turn byte slices into frames with a maximum frame size (S11, S26); the
//! handlers implement [`reactor::Protocol`] on top of them, each through the one decode loop in
//! [`framing`]. Nothing here depends on clap or on anything heavy: this is the crate the fuzzer
//! compiles.
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
// Every `unsafe` of the workspace lives in the reactor's `sys` module.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

pub mod admin;
pub mod chat;
pub mod codec;
pub mod echo;
pub mod framing;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod http_server;
pub mod kv;
pub mod proxy;
pub mod udp_echo;
