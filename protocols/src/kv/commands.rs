//! The commands: one table of name, arity and function, and the functions.

use std::time::Instant;

use reactor::LoopCx;

use super::expiry::{arm_expiry, expire_command, ms_left, set_deadline};
use super::{Entry, KvStore, NOT_AN_INTEGER};
use crate::codec::resp::{
    encode_array_header, encode_bulk, encode_error, encode_integer, encode_null_bulk,
    encode_simple_string,
};
use crate::codec::RespCommand;
use crate::framing::Flow;

/// Arguments kept on the stack; longer commands (`DEL` with many keys) spill to the heap.
const INLINE_ARGS: usize = 8;

/// What runs a command: the store through `cx`, the arguments (name first), the time the
/// batch is served at, and the buffer its reply is appended to.
type Run = fn(&mut LoopCx<'_, KvStore>, &[&[u8]], Instant, &mut Vec<u8>) -> Flow;

/// One command the server knows.
#[derive(Clone, Copy)]
struct Command {
    /// The name, in lower case as Redis quotes it in errors; matched in any case.
    name: &'static str,
    /// Redis's arity: `n` means exactly `n` arguments (the name included), `-n` at least `n`.
    arity: i32,
    /// What the command does, once its arity is right.
    run: Run,
}

impl Command {
    const fn new(name: &'static str, arity: i32, run: Run) -> Self {
        Command { name, arity, run }
    }
}

/// Every command, in one place: a name is matched once, its arity checked from here, and its
/// function run.
const COMMANDS: &[Command] = &[
    Command::new("ping", -1, ping),
    Command::new("echo", 2, echo),
    Command::new("set", -3, set),
    Command::new("setex", 4, setex),
    Command::new("psetex", 4, psetex),
    Command::new("get", 2, get),
    Command::new("del", -2, del),
    Command::new("exists", -2, exists),
    Command::new("incr", 2, incr),
    Command::new("decr", 2, decr),
    Command::new("incrby", 3, incrby),
    Command::new("decrby", 3, decrby),
    Command::new("expire", -3, expire_seconds),
    Command::new("pexpire", -3, expire_millis),
    Command::new("persist", 2, persist),
    Command::new("ttl", 2, ttl),
    Command::new("pttl", 2, pttl),
    Command::new("dbsize", 1, dbsize),
    Command::new("flushall", -1, flush),
    Command::new("flushdb", -1, flush),
    Command::new("select", 2, select),
    Command::new("quit", -1, quit),
    Command::new("config", -2, config),
    Command::new("command", -1, command),
];

/// The command named `name`, in any case.
fn lookup(name: &[u8]) -> Option<&'static Command> {
    COMMANDS
        .iter()
        .find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Runs one command and appends its reply to `out`.
pub(super) fn execute(
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
    // Step 2: the command, then its arity, then the command itself.
    let Some(command) = lookup(name) else {
        unknown_command(out, argv);
        return Flow::Continue;
    };
    let argc = i32::try_from(argv.len()).unwrap_or(i32::MAX);
    let arity = command.arity;
    if (arity > 0 && argc != arity) || (arity < 0 && argc < -arity) {
        wrong_arity(out, command.name);
        return Flow::Continue;
    }
    (command.run)(cx, argv, now, out)
}

/// `PING [message]`.
fn ping(_: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], _: Instant, out: &mut Vec<u8>) -> Flow {
    match argv {
        [_] => encode_simple_string(out, b"PONG"),
        [_, msg] => encode_bulk(out, msg),
        _ => wrong_arity(out, "ping"),
    }
    Flow::Continue
}

/// `ECHO message`.
fn echo(_: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], _: Instant, out: &mut Vec<u8>) -> Flow {
    encode_bulk(out, argv[1]);
    Flow::Continue
}

/// `GET key`.
fn get(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) -> Flow {
    match cx.app().live(argv[1], now) {
        Some(entry) => encode_bulk(out, &entry.value),
        None => encode_null_bulk(out),
    }
    Flow::Continue
}

/// `DEL key…`.
fn del(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) -> Flow {
    let store = cx.app();
    let mut n = 0;
    for key in &argv[1..] {
        // An expired key is removed but not counted, as in Redis.
        if store.live(key, now).is_some() {
            n += 1;
        }
        store.remove(key);
    }
    encode_integer(out, n);
    Flow::Continue
}

/// `EXISTS key…`: a key named twice counts twice, as in Redis.
fn exists(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) -> Flow {
    let store = cx.app();
    let n = argv[1..]
        .iter()
        .filter(|key| store.live(key, now).is_some())
        .count();
    encode_integer(out, n as i64);
    Flow::Continue
}

/// `INCR key`.
fn incr(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) -> Flow {
    incr_by(cx.app(), argv[1], 1, now, out);
    Flow::Continue
}

/// `DECR key`.
fn decr(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) -> Flow {
    incr_by(cx.app(), argv[1], -1, now, out);
    Flow::Continue
}

/// `INCRBY key increment`.
fn incrby(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) -> Flow {
    match parse_i64(argv[2]) {
        Some(by) => incr_by(cx.app(), argv[1], by, now, out),
        None => encode_error(out, NOT_AN_INTEGER),
    }
    Flow::Continue
}

/// `DECRBY key decrement`.
fn decrby(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) -> Flow {
    match parse_i64(argv[2]).map(i64::checked_neg) {
        Some(Some(by)) => incr_by(cx.app(), argv[1], by, now, out),
        Some(None) => encode_error(out, b"ERR decrement would overflow"),
        None => encode_error(out, NOT_AN_INTEGER),
    }
    Flow::Continue
}

/// `EXPIRE key seconds`.
fn expire_seconds(
    cx: &mut LoopCx<'_, KvStore>,
    argv: &[&[u8]],
    now: Instant,
    out: &mut Vec<u8>,
) -> Flow {
    expire_command(cx, argv, true, now, out);
    Flow::Continue
}

/// `PEXPIRE key milliseconds`.
fn expire_millis(
    cx: &mut LoopCx<'_, KvStore>,
    argv: &[&[u8]],
    now: Instant,
    out: &mut Vec<u8>,
) -> Flow {
    expire_command(cx, argv, false, now, out);
    Flow::Continue
}

/// `PERSIST key`.
fn persist(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) -> Flow {
    let store = cx.app();
    let had = store.live(argv[1], now).is_some() && store.persist(argv[1]);
    encode_integer(out, i64::from(had));
    Flow::Continue
}

/// `TTL key`: seconds left, rounded to the nearest.
fn ttl(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) -> Flow {
    // Redis rounds with `(ms + 500) / 1000`, which overflows near `i64::MAX`; this cannot.
    let reply = time_left(cx.app(), argv[1], now).map(|ms| ms / 1000 + i64::from(ms % 1000 >= 500));
    encode_integer(out, reply.unwrap_or_else(|missing| missing));
    Flow::Continue
}

/// `PTTL key`: milliseconds left.
fn pttl(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) -> Flow {
    let reply = time_left(cx.app(), argv[1], now);
    encode_integer(out, reply.unwrap_or_else(|missing| missing));
    Flow::Continue
}

/// The milliseconds `key` has left, or the reply when it has no time to live: -2 for no such
/// key, -1 for a key without expiry.
fn time_left(store: &mut KvStore, key: &[u8], now: Instant) -> Result<i64, i64> {
    match store.live(key, now) {
        None => Err(-2),
        Some(Entry { expiry: None, .. }) => Err(-1),
        Some(Entry {
            expiry: Some(e), ..
        }) => Ok(ms_left(e.at, now)),
    }
}

/// `DBSIZE`.
fn dbsize(cx: &mut LoopCx<'_, KvStore>, _: &[&[u8]], _: Instant, out: &mut Vec<u8>) -> Flow {
    encode_integer(out, cx.app().len() as i64);
    Flow::Continue
}

/// `FLUSHALL [ASYNC|SYNC]` and `FLUSHDB [ASYNC|SYNC]`.
fn flush(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], _: Instant, out: &mut Vec<u8>) -> Flow {
    let mode_ok = match argv {
        [_] => true,
        [_, mode] => mode.eq_ignore_ascii_case(b"ASYNC") || mode.eq_ignore_ascii_case(b"SYNC"),
        _ => false,
    };
    if mode_ok {
        cx.app().clear();
        encode_simple_string(out, b"OK");
    } else {
        encode_error(out, b"ERR syntax error");
    }
    Flow::Continue
}

/// `SELECT index`: only database 0 exists.
fn select(_: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], _: Instant, out: &mut Vec<u8>) -> Flow {
    match parse_i64(argv[1]) {
        Some(0) => encode_simple_string(out, b"OK"),
        Some(_) => encode_error(out, b"ERR DB index is out of range"),
        None => encode_error(out, NOT_AN_INTEGER),
    }
    Flow::Continue
}

/// `QUIT`: `OK`, then the connection closes.
fn quit(_: &mut LoopCx<'_, KvStore>, _: &[&[u8]], _: Instant, out: &mut Vec<u8>) -> Flow {
    encode_simple_string(out, b"OK");
    Flow::Close
}

/// `COMMAND [COUNT|DOCS…|INFO…]`.
fn command(_: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], _: Instant, out: &mut Vec<u8>) -> Flow {
    match argv.get(1) {
        Some(sub) if sub.eq_ignore_ascii_case(b"COUNT") => encode_integer(out, 0),
        // `COMMAND`, `COMMAND DOCS` (what redis-cli asks for its hints), `COMMAND INFO`…:
        // nothing to describe, which clients accept.
        _ => encode_array_header(out, 0),
    }
    Flow::Continue
}

/// What `SET`'s options ask for.
#[derive(Debug, Default)]
struct SetOptions {
    /// `NX`: only if the key does not exist.
    nx: bool,
    /// `XX`: only if the key exists.
    xx: bool,
    /// `GET`: reply with the old value.
    get: bool,
    /// `KEEPTTL`: keep the key's expiry.
    keep_ttl: bool,
    /// `EX`/`PX`: the new expiry.
    deadline: Option<Instant>,
}

/// `SET key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]`.
fn set(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) -> Flow {
    set_with_options(cx, argv, now, out);
    Flow::Continue
}

/// `SETEX key seconds value`.
fn setex(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) -> Flow {
    set_with_ttl(cx, argv, true, now, out);
    Flow::Continue
}

/// `PSETEX key milliseconds value`.
fn psetex(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) -> Flow {
    set_with_ttl(cx, argv, false, now, out);
    Flow::Continue
}

/// `CONFIG subcommand…`.
fn config(_: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], _: Instant, out: &mut Vec<u8>) -> Flow {
    config_get(argv, out);
    Flow::Continue
}

/// `SET`, once its arity is checked: the options, the time to live, then the write.
fn set_with_options(cx: &mut LoopCx<'_, KvStore>, argv: &[&[u8]], now: Instant, out: &mut Vec<u8>) {
    // Step 1: the options. Syntax is checked before any number, as Redis does.
    let mut opts = SetOptions::default();
    let mut expire: Option<(&[u8], i64)> = None;
    let mut i = 3;
    while i < argv.len() {
        let opt = argv[i];
        let is = |name: &[u8]| opt.eq_ignore_ascii_case(name);
        let next = argv.get(i + 1);
        if is(b"NX") && !opts.xx {
            opts.nx = true;
        } else if is(b"XX") && !opts.nx {
            opts.xx = true;
        } else if is(b"GET") {
            opts.get = true;
        } else if is(b"KEEPTTL") && expire.is_none() {
            opts.keep_ttl = true;
        } else if (is(b"EX") || is(b"PX")) && expire.is_none() && !opts.keep_ttl && next.is_some() {
            let unit = if is(b"EX") { 1000 } else { 1 };
            expire = Some((next.copied().unwrap_or_default(), unit));
            i += 1;
        } else {
            return encode_error(out, b"ERR syntax error");
        }
        i += 1;
    }
    // Step 2: the time to live, if any.
    if let Some((arg, unit)) = expire {
        match set_deadline(arg, unit, now, "set") {
            Ok(at) => opts.deadline = Some(at),
            Err(msg) => return encode_error(out, msg.as_bytes()),
        }
    }
    // Step 3: the conditions, then the write.
    write(cx, argv[1], argv[2], &opts, now, out);
}

/// `SETEX key seconds value` and `PSETEX key milliseconds value`: `SET key value EX|PX n`.
fn set_with_ttl(
    cx: &mut LoopCx<'_, KvStore>,
    argv: &[&[u8]],
    seconds: bool,
    now: Instant,
    out: &mut Vec<u8>,
) {
    let (name, unit) = if seconds {
        ("setex", 1000)
    } else {
        ("psetex", 1)
    };
    match set_deadline(argv[2], unit, now, name) {
        Ok(at) => {
            let opts = SetOptions {
                deadline: Some(at),
                ..SetOptions::default()
            };
            write(cx, argv[1], argv[3], &opts, now, out);
        }
        Err(msg) => encode_error(out, msg.as_bytes()),
    }
}

/// The store write of `SET` and `SETEX`: the `NX`/`XX` condition, the `GET` reply, the value
/// and its expiry.
fn write(
    cx: &mut LoopCx<'_, KvStore>,
    key: &[u8],
    value: &[u8],
    opts: &SetOptions,
    now: Instant,
    out: &mut Vec<u8>,
) {
    let store = cx.app();
    let old = store.live(key, now);
    let exists = old.is_some();
    if opts.get {
        match &old {
            Some(entry) => encode_bulk(out, &entry.value),
            None => encode_null_bulk(out),
        }
    }
    if (opts.nx && exists) || (opts.xx && !exists) {
        if !opts.get {
            encode_null_bulk(out);
        }
        return;
    }
    store.set(key, value, opts.keep_ttl);
    if let Some(at) = opts.deadline {
        arm_expiry(cx, key, at, now);
    }
    if !opts.get {
        encode_simple_string(out, b"OK");
    }
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
fn config_get(argv: &[&[u8]], out: &mut Vec<u8>) {
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
pub(super) fn parse_i64(s: &[u8]) -> Option<i64> {
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
