//! The checks behind the fuzz targets and the property tests (feature `fuzz`).
//!
//! Each entry point takes arbitrary bytes, reads them as a script, runs a codec or a handler
//! under that script and panics if an invariant breaks. The fuzz targets in the repository's
//! `fuzz/` folder are one call each; the property tests feed the same functions random scripts
//! on stable Rust, and the regression tests replay every input the fuzzer ever found.
//!
//! | entry point | what runs | what must hold |
//! |---|---|---|
//! | [`codec_lines`], [`codec_length`], [`codec_resp`], [`codec_http`] | a codec, on the input whole, cut where the script says, and byte by byte | the same frames and error however the input is cut; no frame over a limit; frames that were encoded come back unchanged |
//! | [`echo`] | [`Echo`](crate::echo::Echo) on the in-memory transport | exactly the bytes sent come back, in order |
//! | [`output_queue`] | an echo that queues its output in many small pieces, with tiny high/low-water marks | bytes out equal bytes in, in order, under any short writes, `EINTR` and pauses |
//! | [`http`] | [`HttpServer`](crate::http_server::HttpServer) on the in-memory transport | one response per complete request, in order, with the status a reference router gives |
//! | [`kv`] | [`KvConn`](crate::kv::KvConn) on the in-memory transport | one valid RESP reply per command, in order, equal to a model store's |
//! | [`chat`] | [`ChatConn`](crate::chat::ChatConn) with two to four members | every complete line reaches every other member, in order, as a model room says |
//! | [`chat_bus`] | the chat bus's subscriber input: the RESP reply decoder, cut where the script says, and the bus message decoder on every pushed payload | the same replies however the input is cut; a payload is refused or re-encodes to itself; no panic |
//!
//! # Scripts
//!
//! A handler target's input is read as: one byte of flags, one byte `n`, then `n` operations
//! of two bytes each, then the payload. An operation plays the peer or the kernel (see
//! [`PeerOp`]): send the next part of the payload, change the write budget (short writes and
//! `WouldBlock`), inject `EINTR`, change the read size, let the reactor run, move the clock, send
//! FIN or RST. When the operations run out, the rest of the payload is sent, the write budget is
//! lifted and the reactor settles, so every byte sent is answered before the checks run.
//! Reading past the end of a script gives zeros, so every byte string is a valid script.
//!
//! A codec target's input is two bytes choosing limits and mode, one byte `k`, `k` cut offsets
//! of two bytes each, then the payload; see [`codec_lines`].
//!
//! # Example
//!
//! ```
//! // Any bytes are a valid script. This one sets a write budget of 2 bytes, sends 5 bytes of
//! // the payload and settles (2 bytes come back); then the rest is sent and everything read.
//! let script = [0, 3, 1, 2, 0, 4, 5, 0, b'h', b'e', b'l', b'l', b'o', b'!'];
//! evdrive_protocols::fuzz::echo(&script);
//! evdrive_protocols::fuzz::output_queue(&script);
//! evdrive_protocols::fuzz::codec_lines(b"\x00\x01\x00\x03one\ntwo\r\n");
//! ```

mod bus;
mod chat;
mod chat_script;
mod codecs;
mod echo;
mod http;
mod kv;
mod resp_reply;
mod script;
mod ws;

pub use bus::chat_bus;
pub use chat::chat;
pub use codecs::{codec_http, codec_length, codec_lines, codec_resp};
pub use echo::{echo, output_queue};
pub use http::http;
pub use kv::kv;
// The scripted peer lives in the reactor, so that fuzzing a handler needs only the reactor;
// re-exported under the paths the targets have always used.
pub use reactor::testing::{converse, Conversation, PeerOp, Script};
pub use ws::codec_ws;
