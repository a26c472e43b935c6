//! An in-memory key-value server speaking the Redis protocol (RESP2), enough for `redis-cli`
//! and `redis-benchmark`.
//!
//! Run it with `evdrive kv` (127.0.0.1:6380) and talk to it with `redis-cli -p 6380`.
//!
//! # Commands
//!
//! | command | reply |
//! |---|---|
//! | `PING [msg]`, `ECHO msg` | `PONG` or `msg` |
//! | `SET key value [NX\|XX] [GET] [EX s\|PX ms\|KEEPTTL]` | `OK`, or nil when `NX`/`XX` says no |
//! | `SETEX key s value`, `PSETEX key ms value` | `OK` |
//! | `GET key` | the value or nil |
//! | `DEL key…`, `EXISTS key…` | how many of the keys existed |
//! | `INCR`, `DECR`, `INCRBY`, `DECRBY` | the new value (64-bit signed, as Redis) |
//! | `EXPIRE key s`, `PEXPIRE key ms`, `PERSIST key` | 1 if the key exists, else 0 |
//! | `TTL key`, `PTTL key` | time left; -1 no expiry, -2 no such key |
//! | `DBSIZE`, `FLUSHALL`, `FLUSHDB`, `SELECT 0`, `QUIT` | as Redis |
//! | `CONFIG GET param…`, `COMMAND [DOCS…]` | what `redis-benchmark` and `redis-cli` ask for at start |
//!
//! Error replies are Redis's own, word for word, so clients and scripts behave as against a
//! real server: `-ERR unknown command 'x', with args beginning with: …`, `-ERR wrong number of
//! arguments for 'get' command`, `-ERR value is not an integer or out of range`, `-ERR syntax
//! error`. An unknown command or a bad argument is answered, not punished; only a broken frame
//! (the [`resp`](crate::codec::resp) codec's error, such as a bulk string over its 1 MiB limit)
//! gets `-ERR Protocol error: …` and a close, as Redis does.
//!
//! # Why it is shaped so
//!
//! The store, [`KvStore`], is the reactor's user state: every connection reaches it as
//! `&mut KvStore` through its `Cx`, with no lock, because every callback runs on the reactor's
//! one thread. A connection's handler, [`KvConn`], keeps only the codec's progress; idle
//! connections cost a few bytes.
//!
//! Pipelined commands (`redis-benchmark -P 16`) are answered in order from one `on_data` call:
//! every complete command in the input is executed, its reply appended to one buffer, and the
//! buffer queued once, so the reactor sends all the replies with one write (S15).
//!
//! # Expiry
//!
//! A key with a time to live is removed by the reactor's timer wheel (S9): setting the expiry
//! schedules a closure with [`LoopCx::schedule`] and keeps its [`TaskId`] with the key; overwriting,
//! deleting or persisting the key cancels the task, so a store of keys that are rewritten before
//! they expire holds no stale timers. Reads also check the deadline themselves ("lazy expiry"),
//! so a read never returns a key whose time is up even if its task has not run yet in this loop
//! turn.
//!
//! Times to live are checked as Redis checks them, so no value a client picks can overflow a
//! deadline: `SET … EX`/`PX`, `SETEX` and `PSETEX` refuse zero and negative times, and every
//! command refuses a time whose milliseconds do not fit in an `i64` (`EX`/`EXPIRE` above
//! 9,223,372,036,854,775 seconds), with Redis's `-ERR invalid expire time in 'set' command`
//! (naming the command). Redis adds the time to the Unix time and refuses a sum over `i64::MAX`;
//! our deadlines are on the reactor's clock, so the time itself must fit, which accepts a few
//! times within 1.7 × 10¹² ms (55 years) of 292 million years that Redis refuses. Such a
//! deadline stays far in the future on the reactor's timer wheel, whose ticks count
//! milliseconds in a `u64`. `TTL` and `PTTL` saturate, so they never overflow either.
//!
//! Every expiry also carries a sequence number that the scheduled closure checks, so a closure
//! whose cancel was skipped (the key was dropped lazily) never removes a later key of the same
//! name: cancelling is resource hygiene, never what keeps the store correct.

use std::collections::HashMap;
use std::time::Instant;

use reactor::{Cx, LoopCx, Protocol, TaskId};

use crate::codec::resp::encode_error;
use crate::codec::RespCodec;
use crate::framing::{self, serve};
use commands::execute;
use expiry::cancel_stale;

/// The error reply for an argument that should be a 64-bit integer and is not, as Redis words it.
const NOT_AN_INTEGER: &[u8] = b"ERR value is not an integer or out of range";

/// Connection settings for the KV sample: the reactor's input limit sits above the RESP codec's
/// largest command, so an oversized command always gets the codec's precise error reply (and a
/// legal command of up to 2 MiB is never cut short by the generic limit).
pub fn conn_config(base: reactor::ConnConfig) -> reactor::ConnConfig {
    base.with_max_input(crate::codec::resp::DEFAULT_MAX_COMMAND_LENGTH + 64 * 1024)
}

/// The goodbye of a client past the connection limit, as Redis words it.
pub const MAX_CLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";

/// What the KV sample does at the reactor's connection limit (S23): answer
/// [`MAX_CLIENTS_REPLY`] and close, as Redis does, so `redis-cli` prints the error instead of
/// waiting.
pub fn at_limit() -> reactor::AtLimit {
    reactor::AtLimit::Reject(reactor::Goodbye::bytes(MAX_CLIENTS_REPLY))
}

/// The keys and values: the reactor's user state for the KV server.
///
/// ```
/// use evdrive_protocols::kv::{KvConn, KvStore};
/// use reactor::{ListenOptions, Reactor};
///
/// let mut reactor = Reactor::new(KvStore::new())?;
/// let listener = reactor.listen(
///     "127.0.0.1:0".parse().unwrap(),
///     ListenOptions::default(),
///     |_store, _peer| KvConn::new(),
/// )?;
/// assert!(reactor.app().is_empty());
/// # let _ = listener;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct KvStore {
    /// Every key with its value and expiry. A key whose deadline has passed may linger here
    /// until its expiry task runs or a command touches it; no command ever returns it.
    map: HashMap<Box<[u8]>, Entry>,
    /// The sequence number of the next expiry armed (see the module's notes on expiry).
    next_seq: u64,
    /// Expiry tasks that no longer guard a key and should be cancelled. Store methods cannot
    /// reach the reactor, so they leave the ids here and the handler cancels them after each
    /// command (see [`cancel_stale`]).
    stale: Vec<TaskId>,
    /// The replies of the batch being served, reused from one batch to the next so a request
    /// allocates nothing; one buffer per reactor, never per connection.
    replies: Vec<u8>,
}

/// One key's value and time to live.
#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expiry: Option<Expiry>,
}

/// When a key expires, and the task that will remove it.
#[derive(Debug, Clone, Copy)]
struct Expiry {
    /// The deadline.
    at: Instant,
    /// The scheduled closure removing the key; cancelled when the expiry is dropped.
    task: TaskId,
    /// Matches the closure's own copy: a closure only removes the key it was armed for.
    seq: u64,
}

impl KvStore {
    /// An empty store.
    pub fn new() -> Self {
        KvStore::default()
    }

    /// The number of keys, counting any whose deadline passed and whose removal is still due.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The value of `key`, unless missing or expired at `now`.
    pub fn get(&self, key: &[u8], now: Instant) -> Option<&[u8]> {
        let entry = self.map.get(key)?;
        match entry.expiry {
            Some(e) if e.at <= now => None,
            _ => Some(&entry.value),
        }
    }

    /// The entry of `key`, removing it first if it expired at `now` (lazy expiry).
    fn live(&mut self, key: &[u8], now: Instant) -> Option<&mut Entry> {
        let expired = matches!(
            self.map.get(key),
            Some(Entry { expiry: Some(e), .. }) if e.at <= now
        );
        if expired {
            self.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    /// Removes `key`; returns whether it was there (expired or not).
    fn remove(&mut self, key: &[u8]) -> bool {
        match self.map.remove(key) {
            Some(entry) => {
                if let Some(e) = entry.expiry {
                    self.stale.push(e.task);
                }
                true
            }
            None => false,
        }
    }

    /// Stores `value` under `key`, dropping any expiry unless `keep_ttl`.
    fn set(&mut self, key: &[u8], value: &[u8], keep_ttl: bool) {
        match self.map.get_mut(key) {
            Some(entry) => {
                entry.value.clear();
                entry.value.extend_from_slice(value);
                if !keep_ttl {
                    if let Some(e) = entry.expiry.take() {
                        self.stale.push(e.task);
                    }
                }
            }
            None => {
                self.map.insert(
                    key.into(),
                    Entry {
                        value: value.to_vec(),
                        expiry: None,
                    },
                );
            }
        }
    }

    /// Drops the expiry of `key`; returns whether it had one.
    fn persist(&mut self, key: &[u8]) -> bool {
        match self.map.get_mut(key).and_then(|e| e.expiry.take()) {
            Some(e) => {
                self.stale.push(e.task);
                true
            }
            None => false,
        }
    }

    /// Removes every key.
    fn clear(&mut self) {
        for (_, entry) in self.map.drain() {
            if let Some(e) = entry.expiry {
                self.stale.push(e.task);
            }
        }
        // Give the memory back: a flushed store should be as small as a new one.
        self.map.shrink_to_fit();
    }
}

pub use crate::framing::Served;

/// The handler of one KV connection: decodes commands, runs them on the [`KvStore`], replies.
#[derive(Debug, Default)]
pub struct KvConn {
    /// Progress on the unfinished command, if any.
    codec: RespCodec,
}

impl KvConn {
    /// A handler with the codec's default limits (1 MiB per argument, 2 MiB per command).
    pub fn new() -> Self {
        KvConn::default()
    }

    /// Runs every complete command at the front of `data` and appends the replies to `out`.
    ///
    /// This is `on_data` without the queueing, so tests can see the replies: `consumed` bytes
    /// were used; the rest is an unfinished command to offer again with more bytes behind it.
    /// After `QUIT` or a protocol error `close` is set, and the input after it is ignored.
    pub fn serve(
        &mut self,
        cx: &mut LoopCx<'_, KvStore>,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Served {
        // Deadlines are on the reactor's clock, the one its timer wheel runs on.
        let now = cx.now();
        serve(
            &mut self.codec,
            data,
            &mut (cx, out),
            // A whole command: run it; `QUIT` ends the batch.
            |(cx, out), cmd| {
                let flow = execute(cx, &cmd, now, out);
                cancel_stale(cx);
                flow
            },
            // A broken frame: say why, as Redis does (the connection closes).
            |(_, out), e| {
                let msg = format!("ERR {e}");
                encode_error(out, msg.as_bytes());
            },
        )
    }
}

/// Replies up to this size are copied into the output queue and their buffer kept for the next
/// batch; a larger batch is queued as it is.
const REPLIES_KEPT: usize = 16 * 1024;

impl Protocol<KvStore> for KvConn {
    fn on_data(&mut self, cx: &mut Cx<'_, KvStore>, data: &[u8]) -> usize {
        let mut out = std::mem::take(&mut cx.app().replies);
        let served = self.serve(cx, data, &mut out);
        if out.len() > REPLIES_KEPT {
            // A large batch (a big value) is handed over without a copy.
            return framing::finish(cx, out, served);
        }
        // One buffer for every reply of the batch: one chunk, one gather write (S15). The copy
        // lands in a reused output queue; the buffer goes back to the store.
        cx.write(&out);
        out.clear();
        cx.app().replies = out;
        if served.close {
            cx.close_with(reactor::CloseReason::Local);
        }
        served.consumed
    }
}

mod commands;
mod expiry;
#[cfg(test)]
mod tests;
