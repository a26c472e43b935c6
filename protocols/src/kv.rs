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
//! Every expiry also carries a sequence number that the scheduled closure checks, so a closure
//! whose cancel was skipped (the key was dropped lazily) never removes a later key of the same
//! name: cancelling is resource hygiene, never what keeps the store correct.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reactor::{CloseReason, Cx, LoopCx, Protocol, TaskId};

use crate::codec::resp::{
    encode_array_header, encode_bulk, encode_error, encode_integer, encode_null_bulk,
    encode_simple_string,
};
use crate::codec::{Decoder, RespCodec, RespCommand};

/// The error reply for an argument that should be a 64-bit integer and is not, as Redis words it.
const NOT_AN_INTEGER: &[u8] = b"ERR value is not an integer or out of range";

/// Connection settings for the KV sample: the reactor's input limit sits above the RESP codec's
/// largest command, so an oversized command always gets the codec's precise error reply (and a
/// legal command of up to 2 MiB is never cut short by the generic limit).
pub fn conn_config(base: reactor::ConnConfig) -> reactor::ConnConfig {
    base.with_max_input(crate::codec::resp::DEFAULT_MAX_COMMAND_LENGTH + 64 * 1024)
}

/// The keys and values: the reactor's user state for the KV server.
///
/// ```
/// use evdrive_protocols::kv::{KvConn, KvStore};
/// use reactor::{ListenOptions, Reactor};
///
/// let mut reactor = Reactor::new(KvStore::new())?;
/// let addr = reactor.listen(
///     "127.0.0.1:0".parse().unwrap(),
///     ListenOptions::default(),
///     |_store, _peer| KvConn::new(),
/// )?;
/// assert!(reactor.app().is_empty());
/// # let _ = addr;
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

/// Arms the expiry of `key` (which must exist) for `at`: schedules the removal on the timer
/// wheel and keeps the task with the key, replacing and cancelling any earlier expiry.
fn arm_expiry(cx: &mut LoopCx<'_, KvStore>, key: &[u8], at: Instant, now: Instant) {
    let store = cx.app();
    store.next_seq += 1;
    let seq = store.next_seq;
    let owned: Box<[u8]> = key.into();
    let task = cx.schedule(at.saturating_duration_since(now), move |cx| {
        expire(cx, &owned, seq)
    });
    let store = cx.app();
    match store.map.get_mut(key) {
        Some(entry) => {
            if let Some(old) = entry.expiry.replace(Expiry { at, task, seq }) {
                store.stale.push(old.task);
            }
        }
        None => store.stale.push(task),
    }
    cancel_stale(cx);
}

/// The scheduled removal of `key`: runs when its deadline comes, unless cancelled.
fn expire(cx: &mut LoopCx<'_, KvStore>, key: &[u8], seq: u64) {
    let now = Instant::now();
    let store = cx.app();
    let Some(expiry) = store.map.get(key).and_then(|e| e.expiry) else {
        return;
    };
    if expiry.seq != seq {
        // A later expiry owns the key: this closure's cancel was skipped. Nothing to do.
        return;
    }
    if expiry.at <= now {
        store.map.remove(key);
    } else {
        // The wheel's clock is the loop turn's, a little behind ours: wait for the rest.
        arm_expiry(cx, key, expiry.at, now);
    }
}

/// Cancels the expiry tasks the store has dropped since the last call.
fn cancel_stale(cx: &mut LoopCx<'_, KvStore>) {
    if cx.app().stale.is_empty() {
        return;
    }
    let mut stale = std::mem::take(&mut cx.app().stale);
    for task in stale.drain(..) {
        cx.cancel(task);
    }
    // Hand the (now empty) vector back so its allocation is reused.
    cx.app().stale = stale;
}

/// What serving a batch of input achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// Bytes of the input used by complete commands.
    pub consumed: usize,
    /// Whether the connection must now be closed (after `QUIT` or a protocol error).
    pub close: bool,
}

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
        let now = Instant::now();
        let mut consumed = 0;
        loop {
            match self.codec.decode(&data[consumed..]) {
                // A whole command: run it, then look for the next one (pipelining).
                Ok(Some((cmd, n))) => {
                    consumed += n;
                    let flow = execute(cx, &cmd, now, out);
                    cancel_stale(cx);
                    if flow == Flow::Close {
                        return Served {
                            consumed: data.len(),
                            close: true,
                        };
                    }
                }
                // Only part of a command is left: keep it for the next call.
                Ok(None) => {
                    return Served {
                        consumed,
                        close: false,
                    }
                }
                // A broken frame: say why, as Redis does, and close.
                Err(e) => {
                    let msg = format!("ERR {e}");
                    encode_error(out, msg.as_bytes());
                    return Served {
                        consumed: data.len(),
                        close: true,
                    };
                }
            }
        }
    }
}

impl Protocol<KvStore> for KvConn {
    fn on_data(&mut self, cx: &mut Cx<'_, KvStore>, data: &[u8]) -> usize {
        let mut out = Vec::new();
        let served = self.serve(cx, data, &mut out);
        // One buffer for every reply of the batch: one chunk, one gather write (S15).
        let _ = cx.write_vec(out);
        if served.close {
            cx.close_with(CloseReason::Local);
        }
        served.consumed
    }
}

/// Whether the connection stays open after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// The longest command name we know, for the stack copy used to match names.
const MAX_NAME: usize = 16;

/// Arguments kept on the stack; longer commands (`DEL` with many keys) spill to the heap.
const INLINE_ARGS: usize = 8;

/// Runs one command and appends its reply to `out`.
fn execute(
    cx: &mut LoopCx<'_, KvStore>,
    cmd: &RespCommand<'_>,
    now: Instant,
    out: &mut Vec<u8>,
) -> Flow {
    // Step 1: the arguments, as slices of the input, without allocating for short commands.
    let mut inline: [&[u8]; INLINE_ARGS] = [&[]; INLINE_ARGS];
    let spilled: Vec<&[u8]>;
    let argv: &[&[u8]] = if cmd.len() <= INLINE_ARGS {
        for (slot, arg) in inline.iter_mut().zip(cmd.args()) {
            *slot = arg;
        }
        &inline[..cmd.len()]
    } else {
        spilled = cmd.args().collect();
        &spilled
    };
    // An empty command (`*0`, a blank line) gets no reply, as in Redis.
    let Some(&name) = argv.first() else {
        return Flow::Continue;
    };

    // Step 2: the name, upper-cased on the stack; anything longer than we know is unknown.
    let mut upper = [0u8; MAX_NAME];
    let known = name.len() <= MAX_NAME;
    if known {
        upper[..name.len()].copy_from_slice(name);
        upper[..name.len()].make_ascii_uppercase();
    }
    let upper = if known { &upper[..name.len()] } else { &[][..] };

    // Step 3: arity, then the command itself. `arity` follows Redis: n means exactly n
    // arguments (name included), -n means at least n.
    let (canonical, arity): (&str, i32) = match upper {
        b"PING" => ("ping", -1),
        b"ECHO" => ("echo", 2),
        b"SET" => ("set", -3),
        b"GET" => ("get", 2),
        b"DEL" => ("del", -2),
        b"EXISTS" => ("exists", -2),
        b"INCR" => ("incr", 2),
        b"DECR" => ("decr", 2),
        b"INCRBY" => ("incrby", 3),
        b"DECRBY" => ("decrby", 3),
        b"EXPIRE" => ("expire", -3),
        b"PEXPIRE" => ("pexpire", -3),
        b"PERSIST" => ("persist", 2),
        b"TTL" => ("ttl", 2),
        b"PTTL" => ("pttl", 2),
        b"DBSIZE" => ("dbsize", 1),
        b"FLUSHALL" => ("flushall", -1),
        b"FLUSHDB" => ("flushdb", -1),
        b"SELECT" => ("select", 2),
        b"QUIT" => ("quit", -1),
        b"CONFIG" => ("config", -2),
        b"COMMAND" => ("command", -1),
        _ => {
            unknown_command(out, argv);
            return Flow::Continue;
        }
    };
    let argc = argv.len() as i32;
    if (arity > 0 && argc != arity) || (arity < 0 && argc < -arity) {
        wrong_arity(out, canonical);
        return Flow::Continue;
    }
    let store = cx.app();
    match upper {
        b"PING" => match argv {
            [_] => encode_simple_string(out, b"PONG"),
            [_, msg] => encode_bulk(out, msg),
            _ => wrong_arity(out, canonical),
        },
        b"ECHO" => encode_bulk(out, argv[1]),
        b"SET" => set(cx, argv, now, out),
        b"GET" => match store.live(argv[1], now) {
            Some(entry) => encode_bulk(out, &entry.value),
            None => encode_null_bulk(out),
        },
        b"DEL" => {
            let mut n = 0;
            for key in &argv[1..] {
                // An expired key is removed but not counted, as in Redis.
                if store.live(key, now).is_some() {
                    n += 1;
                }
                store.remove(key);
            }
            encode_integer(out, n);
        }
        b"EXISTS" => {
            let n = argv[1..]
                .iter()
                .filter(|key| store.live(key, now).is_some())
                .count();
            encode_integer(out, n as i64);
        }
        b"INCR" => incr_by(store, argv[1], 1, now, out),
        b"DECR" => incr_by(store, argv[1], -1, now, out),
        b"INCRBY" | b"DECRBY" => match parse_i64(argv[2]) {
            Some(by) if upper == b"INCRBY" => incr_by(store, argv[1], by, now, out),
            Some(by) => match by.checked_neg() {
                Some(by) => incr_by(store, argv[1], by, now, out),
                None => encode_error(out, b"ERR decrement would overflow"),
            },
            None => encode_error(out, NOT_AN_INTEGER),
        },
        b"EXPIRE" | b"PEXPIRE" => expire_command(cx, argv, upper == b"EXPIRE", now, out),
        b"PERSIST" => {
            let had = store.live(argv[1], now).is_some() && store.persist(argv[1]);
            encode_integer(out, i64::from(had));
        }
        b"TTL" | b"PTTL" => {
            let reply = match store.live(argv[1], now) {
                None => -2,
                Some(Entry { expiry: None, .. }) => -1,
                Some(Entry {
                    expiry: Some(e), ..
                }) => {
                    let ms = e.at.saturating_duration_since(now).as_millis() as i64;
                    // Redis rounds seconds to the nearest.
                    if upper == b"TTL" {
                        (ms + 500) / 1000
                    } else {
                        ms
                    }
                }
            };
            encode_integer(out, reply);
        }
        b"DBSIZE" => encode_integer(out, store.len() as i64),
        b"FLUSHALL" | b"FLUSHDB" => match argv {
            [_] => {
                store.clear();
                encode_simple_string(out, b"OK");
            }
            [_, mode]
                if mode.eq_ignore_ascii_case(b"ASYNC") || mode.eq_ignore_ascii_case(b"SYNC") =>
            {
                store.clear();
                encode_simple_string(out, b"OK");
            }
            _ => encode_error(out, b"ERR syntax error"),
        },
        b"SELECT" => match parse_i64(argv[1]) {
            Some(0) => encode_simple_string(out, b"OK"),
            Some(_) => encode_error(out, b"ERR DB index is out of range"),
            None => encode_error(out, NOT_AN_INTEGER),
        },
        b"QUIT" => {
            encode_simple_string(out, b"OK");
            return Flow::Close;
        }
        b"CONFIG" => config(argv, out),
        b"COMMAND" => match argv.get(1) {
            Some(sub) if sub.eq_ignore_ascii_case(b"COUNT") => encode_integer(out, 0),
            // `COMMAND`, `COMMAND DOCS` (what redis-cli asks for its hints), `COMMAND INFO`…:
            // nothing to describe, which clients accept.
            _ => encode_array_header(out, 0),
        },
        _ => unreachable!("every name matched above is handled here"),
    }
    Flow::Continue
}

/// `SET key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]`.
fn set(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) {
    let (key, value) = (argv[1], argv[2]);
    // Step 1: the options. Syntax is checked before any number, as Redis does.
    let (mut nx, mut xx, mut get, mut keep_ttl) = (false, false, false, false);
    let mut expire: Option<(&[u8], u64)> = None;
    let mut i = 3;
    while i < argv.len() {
        let opt = argv[i];
        let is = |name: &[u8]| opt.eq_ignore_ascii_case(name);
        let next = argv.get(i + 1);
        if is(b"NX") && !xx {
            nx = true;
        } else if is(b"XX") && !nx {
            xx = true;
        } else if is(b"GET") {
            get = true;
        } else if is(b"KEEPTTL") && expire.is_none() {
            keep_ttl = true;
        } else if (is(b"EX") || is(b"PX")) && expire.is_none() && !keep_ttl && next.is_some() {
            let unit = if is(b"EX") { 1000 } else { 1 };
            expire = Some((next.copied().unwrap_or_default(), unit));
            i += 1;
        } else {
            return encode_error(out, b"ERR syntax error");
        }
        i += 1;
    }
    // Step 2: the time to live, if any.
    let deadline = match expire {
        None => None,
        Some((arg, unit)) => match parse_i64(arg) {
            None => return encode_error(out, NOT_AN_INTEGER),
            Some(n) => match deadline_after(now, n, unit) {
                Some(at) if n > 0 => Some(at),
                _ => return encode_error(out, b"ERR invalid expire time in 'set' command"),
            },
        },
    };
    // Step 3: the conditions, then the write.
    let store = cx.app();
    let old = store.live(key, now);
    let exists = old.is_some();
    if get {
        match &old {
            Some(entry) => encode_bulk(out, &entry.value),
            None => encode_null_bulk(out),
        }
    }
    if (nx && exists) || (xx && !exists) {
        if !get {
            encode_null_bulk(out);
        }
        return;
    }
    store.set(key, value, keep_ttl);
    if let Some(at) = deadline {
        arm_expiry(cx, key, at, now);
    }
    if !get {
        encode_simple_string(out, b"OK");
    }
}

/// `EXPIRE key seconds` and `PEXPIRE key milliseconds`.
fn expire_command(
    cx: &mut LoopCx<'_, KvStore>,
    argv: &[&[u8]],
    seconds: bool,
    now: Instant,
    out: &mut Vec<u8>,
) {
    let name = if seconds { "expire" } else { "pexpire" };
    let Some(n) = parse_i64(argv[2]) else {
        return encode_error(out, NOT_AN_INTEGER);
    };
    if let Some(opt) = argv.get(3) {
        let msg = format!("ERR Unsupported option {}", String::from_utf8_lossy(opt));
        return encode_error(out, msg.as_bytes());
    }
    let unit = if seconds { 1000 } else { 1 };
    let store = cx.app();
    if store.live(argv[1], now).is_none() {
        return encode_integer(out, 0);
    }
    if n <= 0 {
        // A deadline in the past deletes the key at once, as in Redis.
        store.remove(argv[1]);
        return encode_integer(out, 1);
    }
    match deadline_after(now, n, unit) {
        Some(at) => {
            arm_expiry(cx, argv[1], at, now);
            encode_integer(out, 1);
        }
        None => {
            let msg = format!("ERR invalid expire time in '{name}' command");
            encode_error(out, msg.as_bytes());
        }
    }
}

/// `now + n × unit` milliseconds, or `None` if that overflows (or `n` is negative).
fn deadline_after(now: Instant, n: i64, unit: u64) -> Option<Instant> {
    let ms = u64::try_from(n).ok()?.checked_mul(unit)?;
    now.checked_add(Duration::from_millis(ms))
}

/// `INCR`, `DECR`, `INCRBY`, `DECRBY`: adds `by` to the integer stored at `key` (0 if missing),
/// keeping its expiry.
fn incr_by(store: &mut KvStore, key: &[u8], by: i64, now: Instant, out: &mut Vec<u8>) {
    let current = match store.live(key, now) {
        Some(entry) => match parse_i64(&entry.value) {
            Some(n) => n,
            None => return encode_error(out, NOT_AN_INTEGER),
        },
        None => 0,
    };
    let Some(new) = current.checked_add(by) else {
        return encode_error(out, b"ERR increment or decrement would overflow");
    };
    let text = new.to_string();
    store.set(key, text.as_bytes(), true);
    encode_integer(out, new);
}

/// `CONFIG GET param…` answers the parameters clients ask about at start (redis-benchmark asks
/// for `save` and `appendonly`); other parameters match nothing, other subcommands are unknown.
fn config(argv: &[&[u8]], out: &mut Vec<u8>) {
    const PARAMS: [(&[u8], &[u8]); 3] =
        [(b"save", b""), (b"appendonly", b"no"), (b"databases", b"1")];
    let sub = argv[1];
    if !sub.eq_ignore_ascii_case(b"GET") {
        let msg = format!(
            "ERR unknown subcommand '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(sub)
        );
        return encode_error(out, msg.as_bytes());
    }
    if argv.len() < 3 {
        return wrong_arity(out, "config|get");
    }
    let matches: Vec<(&[u8], &[u8])> = PARAMS
        .iter()
        .copied()
        .filter(|(name, _)| {
            argv[2..]
                .iter()
                .any(|p| *p == b"*" || p.eq_ignore_ascii_case(name))
        })
        .collect();
    encode_array_header(out, matches.len() * 2);
    for (name, value) in matches {
        encode_bulk(out, name);
        encode_bulk(out, value);
    }
}

/// Redis's reply to an unknown command: the name and the first arguments, quoted.
fn unknown_command(out: &mut Vec<u8>, argv: &[&[u8]]) {
    // Redis shows at most 128 bytes of the name and of the arguments together.
    const SHOWN: usize = 128;
    let name = argv[0];
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(&name[..name.len().min(SHOWN)]);
    msg.extend_from_slice(b"', with args beginning with: ");
    let mut args_len = 0;
    for arg in &argv[1..] {
        if args_len >= SHOWN {
            break;
        }
        let take = arg.len().min(SHOWN - args_len);
        msg.push(b'\'');
        msg.extend_from_slice(&arg[..take]);
        msg.extend_from_slice(b"' ");
        args_len += take + 3;
    }
    encode_error(out, &msg);
}

/// Redis's reply to a command with the wrong number of arguments.
fn wrong_arity(out: &mut Vec<u8>, name: &str) {
    let msg = format!("ERR wrong number of arguments for '{name}' command");
    encode_error(out, msg.as_bytes());
}

/// Parses a 64-bit signed integer the way Redis does (`string2ll`): an optional `-`, then
/// digits, no `+`, no spaces, no leading zeros, nothing out of range.
fn parse_i64(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    // Accumulate as a negative number, whose range includes i64::MIN.
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative {
        Some(n)
    } else {
        n.checked_neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::resp::encode_command;
    use reactor::Reactor;

    /// A value as large as the codec allows is stored, not cut off by the reactor's input limit.
    #[test]
    fn the_largest_legal_value_fits_the_connection_limits() {
        use crate::codec::resp::DEFAULT_MAX_BULK_LENGTH;
        use reactor::testing::Harness;
        use reactor::ListenOptions;
        let mut h = Harness::new(KvStore::new()).unwrap();
        let opts = ListenOptions::default().with_conn(conn_config(reactor::ConnConfig::default()));
        let l = h.listen(opts, |_, _| KvConn::new());
        let peer = l.connect();
        let value = vec![b'v'; DEFAULT_MAX_BULK_LENGTH];
        let mut cmd = Vec::new();
        encode_command(&mut cmd, &[b"SET", b"big", &value]);
        encode_command(&mut cmd, &[b"EXISTS", b"big"]);
        peer.send(&cmd);
        h.settle().unwrap();
        let reply = peer.take_received();
        assert!(
            reply.starts_with(b"+OK\r\n"),
            "{:?}",
            String::from_utf8_lossy(&reply)
        );
        assert!(reply.ends_with(b":1\r\n"));
        assert!(!peer.fin_received());
    }

    /// Runs the byte stream `input` through a fresh handler as the reactor would, delivered in
    /// pieces cut at `cuts`: the unconsumed tail is offered again with the next piece. Returns
    /// the replies and whether the connection was closed.
    fn run(reactor: &mut Reactor<KvStore>, input: &[u8], cuts: &[usize]) -> (Vec<u8>, bool) {
        let mut conn = KvConn::new();
        let mut out = Vec::new();
        let mut buffered = Vec::new();
        let mut bounds: Vec<usize> = cuts.to_vec();
        bounds.push(input.len());
        let mut start = 0;
        for end in bounds {
            buffered.extend_from_slice(&input[start..end]);
            start = end;
            let served = conn.serve(&mut reactor.cx(), &buffered, &mut out);
            if served.close {
                return (out, true);
            }
            buffered.drain(..served.consumed);
        }
        (out, false)
    }

    /// The replies to `input` on a fresh store.
    fn replies(input: &[u8]) -> String {
        let mut reactor = Reactor::new(KvStore::new()).unwrap();
        String::from_utf8(run(&mut reactor, input, &[]).0).unwrap()
    }

    fn command(args: &[&str]) -> Vec<u8> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let mut out = Vec::new();
        encode_command(&mut out, &args);
        out
    }

    #[test]
    fn basic_commands() {
        let input = b"PING\r\nPING hi\r\nECHO yo\r\nSET k v\r\nGET k\r\nGET nope\r\n\
                      EXISTS k k nope\r\nDEL k nope\r\nDBSIZE\r\nSELECT 0\r\nSELECT 1\r\n";
        assert_eq!(
            replies(input),
            "+PONG\r\n$2\r\nhi\r\n$2\r\nyo\r\n+OK\r\n$1\r\nv\r\n$-1\r\n:2\r\n:1\r\n:0\r\n\
             +OK\r\n-ERR DB index is out of range\r\n"
        );
    }

    #[test]
    fn incr_like_redis() {
        let input = b"INCR n\r\nINCRBY n 41\r\nDECR n\r\nDECRBY n -2\r\nSET s abc\r\nINCR s\r\n\
                      SET z 007\r\nINCR z\r\nINCRBY n x\r\nSET m 9223372036854775807\r\nINCR m\r\n\
                      SET p +1\r\nINCR p\r\nGET n\r\n";
        assert_eq!(
            replies(input),
            ":1\r\n:42\r\n:41\r\n:43\r\n+OK\r\n-ERR value is not an integer or out of range\r\n\
             +OK\r\n-ERR value is not an integer or out of range\r\n\
             -ERR value is not an integer or out of range\r\n\
             +OK\r\n-ERR increment or decrement would overflow\r\n\
             +OK\r\n-ERR value is not an integer or out of range\r\n$2\r\n43\r\n"
        );
    }

    #[test]
    fn set_options() {
        let input = b"SET k a NX\r\nSET k b NX\r\nSET k c XX\r\nSET q c XX\r\nSET k d GET\r\n\
                      SET k e NX XX\r\nSET k e EX\r\nSET k e EX x\r\nSET k e EX 0\r\n\
                      SET k e PX -5\r\nSET k e BOGUS\r\nSET k e EX 10 KEEPTTL\r\nGET k\r\n";
        assert_eq!(
            replies(input),
            "+OK\r\n$-1\r\n+OK\r\n$-1\r\n$1\r\nc\r\n-ERR syntax error\r\n-ERR syntax error\r\n\
             -ERR value is not an integer or out of range\r\n\
             -ERR invalid expire time in 'set' command\r\n\
             -ERR invalid expire time in 'set' command\r\n-ERR syntax error\r\n\
             -ERR syntax error\r\n$1\r\nd\r\n"
        );
    }

    #[test]
    fn errors_are_redis_words() {
        assert_eq!(
            replies(b"FOO a b\r\n"),
            "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n"
        );
        assert_eq!(
            replies(b"GET\r\nSET k\r\nPING a b\r\nCONFIG\r\n"),
            "-ERR wrong number of arguments for 'get' command\r\n\
             -ERR wrong number of arguments for 'set' command\r\n\
             -ERR wrong number of arguments for 'ping' command\r\n\
             -ERR wrong number of arguments for 'config' command\r\n"
        );
        // A very long name is quoted, shortened, never a crash.
        let long = format!("{}\r\n", "X".repeat(1000));
        assert!(replies(long.as_bytes()).starts_with("-ERR unknown command 'XXX"));
    }

    #[test]
    fn client_start_up_commands() {
        let mut input = command(&["CONFIG", "GET", "save"]);
        input.extend(command(&["CONFIG", "GET", "appendonly"]));
        input.extend(command(&["CONFIG", "GET", "maxmemory"]));
        input.extend(command(&["COMMAND", "DOCS"]));
        input.extend(command(&["COMMAND"]));
        assert_eq!(
            replies(&input),
            "*2\r\n$4\r\nsave\r\n$0\r\n\r\n*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n*0\r\n*0\r\n*0\r\n"
        );
    }

    #[test]
    fn quit_replies_then_closes() {
        let mut reactor = Reactor::new(KvStore::new()).unwrap();
        let (out, closed) = run(&mut reactor, b"PING\r\nQUIT\r\nPING\r\n", &[]);
        assert_eq!(out, b"+PONG\r\n+OK\r\n");
        assert!(closed);
    }

    #[test]
    fn protocol_error_replies_then_closes() {
        let mut reactor = Reactor::new(KvStore::new()).unwrap();
        let (out, closed) = run(&mut reactor, b"PING\r\n*1\r\n$x\r\n", &[]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"
        );
        assert!(closed);
        // The codec's limit is a protocol error too, refused from the length line alone.
        let (out, closed) = run(
            &mut reactor,
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$99999999\r\n",
            &[],
        );
        assert!(out.starts_with(b"-ERR Protocol error: bulk string over"));
        assert!(closed);
    }

    #[test]
    fn every_split_gives_the_same_replies() {
        let mut input = Vec::new();
        input.extend(command(&["SET", "key", "hello world"]));
        input.extend_from_slice(b"GET key\r\n");
        input.extend(command(&["INCR", "n"]));
        input.extend(command(&["BOGUS", "x"]));
        input.extend_from_slice(b"\r\n"); // an empty inline command: no reply
        input.extend(command(&["DEL", "key", "n", "other"]));
        input.extend(command(&["ECHO", "a\r\nb"]));
        input.extend_from_slice(b"PING\n");
        let whole = run(&mut Reactor::new(KvStore::new()).unwrap(), &input, &[]);
        assert!(!whole.1);
        for cut in 0..=input.len() {
            let mut reactor = Reactor::new(KvStore::new()).unwrap();
            assert_eq!(run(&mut reactor, &input, &[cut]), whole, "cut at {cut}");
        }
        // And one byte at a time.
        let every: Vec<usize> = (1..input.len()).collect();
        let mut reactor = Reactor::new(KvStore::new()).unwrap();
        assert_eq!(run(&mut reactor, &input, &every), whole);
    }

    #[test]
    fn ttl_and_persist() {
        let mut reactor = Reactor::new(KvStore::new()).unwrap();
        let (out, _) = run(
            &mut reactor,
            b"TTL none\r\nSET k v\r\nTTL k\r\nEXPIRE k 100\r\nTTL k\r\nPTTL k\r\n\
              PERSIST k\r\nTTL k\r\nPERSIST k\r\nEXPIRE none 5\r\nEXPIRE k x\r\n",
            &[],
        );
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(&lines[..5], [":-2", "+OK", ":-1", ":1", ":100"]);
        let pttl: i64 = lines[5][1..].parse().unwrap();
        assert!((99_000..=100_000).contains(&pttl), "{pttl}");
        assert_eq!(
            &lines[6..11],
            [
                ":1",
                ":-1",
                ":0",
                ":0",
                "-ERR value is not an integer or out of range"
            ]
        );
        // PERSIST cancelled the expiry task.
        assert_eq!(reactor.timers_armed(), 0);
    }

    #[test]
    fn overwrite_and_delete_cancel_expiry_tasks() {
        let mut reactor = Reactor::new(KvStore::new()).unwrap();
        run(
            &mut reactor,
            b"SET a 1 EX 100\r\nSET b 1 PX 100000\r\n",
            &[],
        );
        assert_eq!(reactor.timers_armed(), 2);
        run(&mut reactor, b"SET a 2\r\nDEL b\r\n", &[]);
        assert_eq!(reactor.timers_armed(), 0);
        run(
            &mut reactor,
            b"SET a 1 EX 100\r\nEXPIRE a 200\r\nFLUSHALL\r\n",
            &[],
        );
        assert_eq!(reactor.timers_armed(), 0);
        run(
            &mut reactor,
            b"SET a 1 EX 100\r\nEXPIRE a 0\r\nEXISTS a\r\n",
            &[],
        );
        assert_eq!(reactor.timers_armed(), 0);
    }

    #[test]
    fn keys_expire_on_the_timer_wheel() {
        let mut reactor = Reactor::new(KvStore::new()).unwrap();
        let (out, _) = run(
            &mut reactor,
            b"SET short v PX 30\r\nSET long v EX 100\r\nINCR short\r\n",
            &[],
        );
        // INCR on a non-integer fails and leaves the key and its expiry alone.
        assert!(out.ends_with(b"-ERR value is not an integer or out of range\r\n"));
        assert_eq!(reactor.app().len(), 2);
        let start = Instant::now();
        while reactor.app().len() > 1 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "key never expired"
            );
            reactor.turn(Some(Duration::from_millis(10))).unwrap();
        }
        assert!(start.elapsed() >= Duration::from_millis(25));
        assert_eq!(run(&mut reactor, b"GET short\r\n", &[]).0, b"$-1\r\n");
        assert_eq!(reactor.timers_armed(), 1);
    }

    #[test]
    fn reads_never_see_an_expired_key() {
        let mut reactor = Reactor::new(KvStore::new()).unwrap();
        run(&mut reactor, b"SET k v PX 1\r\n", &[]);
        std::thread::sleep(Duration::from_millis(5));
        // No turn ran: the task has not fired, the read must still miss.
        assert_eq!(reactor.app().len(), 1);
        assert_eq!(
            run(&mut reactor, b"GET k\r\nEXISTS k\r\nTTL k\r\n", &[]).0,
            b"$-1\r\n:0\r\n:-2\r\n"
        );
        assert_eq!(reactor.app().len(), 0);
        // The public read checks the deadline too.
        run(&mut reactor, b"SET x y PX 1\r\n", &[]);
        assert_eq!(reactor.app().get(b"x", Instant::now()), Some(&b"y"[..]));
        let later = Instant::now() + Duration::from_millis(2);
        assert_eq!(reactor.app().get(b"x", later), None);
    }

    #[test]
    fn parse_i64_is_strict() {
        for (s, v) in [
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("42", Some(42)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-0", None),
            ("+1", None),
            ("01", None),
            ("", None),
            ("-", None),
            (" 1", None),
            ("1 ", None),
            ("1.5", None),
        ] {
            assert_eq!(parse_i64(s.as_bytes()), v, "{s:?}");
        }
    }
}
