//! The KV target: one valid RESP reply per command, in order, equal to a model store's.

use std::collections::BTreeMap;
use std::time::Duration;

use reactor::testing::Harness;

use super::resp_reply::{count_replies, split_replies};
use super::script::{patient, HandlerInput};
use crate::codec::resp::{
    encode_bulk, encode_command, encode_error, encode_integer, encode_null_bulk,
    encode_simple_string,
};
use crate::codec::split::decode_chunked;
use crate::codec::RespCodec;
use crate::kv::{KvConn, KvStore};
use reactor::testing::{converse, Conversation, Script};

/// Keys the built commands use: few, so commands meet the same keys often.
const KEYS: [&str; 3] = ["k0", "k1", "k2"];

/// Values the built commands store: integers at the edges of `i64`, and strings that are not
/// integers in Redis's strict sense.
const VALUES: [&str; 9] = [
    "v",
    "10",
    "-5",
    "abc",
    "9223372036854775807",
    "-9223372036854775808",
    "007",
    "",
    "a b",
];

/// Increments `INCRBY` and `DECRBY` use.
const INCREMENTS: [&str; 7] = [
    "0",
    "5",
    "-7",
    "9223372036854775807",
    "-9223372036854775808",
    "x",
    "+1",
];

/// Times to live the built commands use, over their whole range: zero, negatives, small
/// numbers that the clock's moves reach, the edges of `i64` in milliseconds and in seconds
/// (where seconds overflow into milliseconds), numbers past `i64`, and strings that are not
/// integers in Redis's strict sense. [`draw_ttl`] adds any 16-bit number too.
const TTLS: [&str; 24] = [
    "0",
    "1",
    "-1",
    "2",
    "30",
    "50",
    "999",
    "1000",
    "12750",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775806",
    "9223372036854775",
    "9223372036854776",
    "-9223372036854775",
    "-9223372036854776",
    "18446744073709551",
    "18446744073709551615",
    "9223372036854775808",
    "-9223372036854775809",
    "x",
    "+5",
    "007",
    "",
];

/// Where the clock starts before the peer connects, in milliseconds: a reactor just started,
/// one past the 615 ms after which `EX 18446744073709551` used to wrap the wheel, and ones that
/// have run for a day, for 50 days, for 35 years, and for 146 million years (2^62 ms).
const CLOCK_STARTS: [u64; 8] = [
    0,
    616,
    1_000,
    86_400_000,
    1 << 32,
    1 << 40,
    1 << 50,
    1 << 62,
];

/// A time to live from the script.
fn draw_ttl(s: &mut Script<'_>) -> Vec<u8> {
    match s.below(TTLS.len() + 1) {
        i if i < TTLS.len() => TTLS[i].as_bytes().to_vec(),
        _ => s.u16().to_string().into_bytes(),
    }
}

/// The reply the model expects to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    /// Exactly these bytes.
    Exact(Vec<u8>),
    /// An integer in this range: `DBSIZE` counts keys whose time is up until their removal
    /// runs, which may come in the same settle as the command or after it.
    Range(i64, i64),
}

/// A model of the store: values and deadlines (milliseconds on the harness clock), kept the
/// way Redis documents them, in wider integers than any value drawn so nothing overflows.
#[derive(Debug, Default)]
struct Model {
    keys: BTreeMap<Vec<u8>, (Vec<u8>, Option<i128>)>,
}

/// Redis's strict integers: exactly the canonical decimal form of an `i64`.
fn strict_i64(s: &[u8]) -> Option<i64> {
    let n: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == s).then_some(n)
}

fn error(msg: &str) -> Reply {
    let mut out = Vec::new();
    encode_error(&mut out, msg.as_bytes());
    Reply::Exact(out)
}

fn integer(n: i64) -> Reply {
    let mut out = Vec::new();
    encode_integer(&mut out, n);
    Reply::Exact(out)
}

fn bulk(value: Option<&[u8]>) -> Reply {
    let mut out = Vec::new();
    match value {
        Some(v) => encode_bulk(&mut out, v),
        None => encode_null_bulk(&mut out),
    }
    Reply::Exact(out)
}

fn ok() -> Reply {
    let mut out = Vec::new();
    encode_simple_string(&mut out, b"OK");
    Reply::Exact(out)
}

const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";

fn invalid_expire_time(name: &str) -> Reply {
    error(&format!("ERR invalid expire time in '{name}' command"))
}

/// A time to live as Redis's `SET … EX|PX`, `SETEX` and `PSETEX` check it: an integer, above
/// zero, whose milliseconds fit in an `i64` (the server's documented stand-in for Redis's
/// "plus the Unix time"). `unit` is 1000 for seconds.
fn set_ttl(arg: &[u8], unit: i64, name: &str) -> Result<i64, Reply> {
    let n = strict_i64(arg).ok_or_else(|| error(NOT_AN_INTEGER))?;
    match n.checked_mul(unit) {
        Some(ms) if n > 0 => Ok(ms),
        _ => Err(invalid_expire_time(name)),
    }
}

impl Model {
    /// The live entry of `key` at `now`; an entry whose time is up is dropped, as a read of it
    /// drops it in Redis.
    fn live(&mut self, key: &[u8], now: i128) -> Option<&mut (Vec<u8>, Option<i128>)> {
        if matches!(self.keys.get(key), Some((_, Some(at))) if *at <= now) {
            self.keys.remove(key);
        }
        self.keys.get_mut(key)
    }

    /// Forgets keys whose removal has surely run: their deadline was reached by a settle
    /// before the one that runs the next command.
    fn expired_by(&mut self, then: i128) {
        self.keys.retain(|_, (_, at)| at.is_none_or(|at| at > then));
    }

    /// Adds `by` to the integer at `key`, as `INCRBY` does, keeping its time to live.
    fn incr(&mut self, key: &[u8], by: i64, now: i128) -> Reply {
        let (current, ttl) = match self.live(key, now) {
            Some((v, ttl)) => match strict_i64(v) {
                Some(n) => (n, *ttl),
                None => return error(NOT_AN_INTEGER),
            },
            None => (0, None),
        };
        let Some(new) = current.checked_add(by) else {
            return error("ERR increment or decrement would overflow");
        };
        self.keys
            .insert(key.to_vec(), (new.to_string().into_bytes(), ttl));
        integer(new)
    }

    /// `SET key value [NX|XX] [GET] [EX n|PX n|KEEPTTL]` with the options already split out.
    fn set(&mut self, key: &[u8], value: &[u8], opts: &[Vec<u8>], now: i128) -> Reply {
        let has = |o: &[u8]| opts.iter().any(|x| x.eq_ignore_ascii_case(o));
        let (nx, xx, get, keep) = (has(b"NX"), has(b"XX"), has(b"GET"), has(b"KEEPTTL"));
        let mut deadline = None;
        if let Some(i) = opts
            .iter()
            .position(|o| o.eq_ignore_ascii_case(b"EX") || o.eq_ignore_ascii_case(b"PX"))
        {
            let unit = if opts[i].eq_ignore_ascii_case(b"EX") {
                1000
            } else {
                1
            };
            match set_ttl(&opts[i + 1], unit, "set") {
                Ok(ms) => deadline = Some(now + i128::from(ms)),
                Err(reply) => return reply,
            }
        }
        let old = self.live(key, now).cloned();
        let get_reply = bulk(old.as_ref().map(|(v, _)| &v[..]));
        if (nx && old.is_some()) || (xx && old.is_none()) {
            return if get { get_reply } else { bulk(None) };
        }
        let kept = if keep {
            old.and_then(|(_, at)| at)
        } else {
            None
        };
        self.keys
            .insert(key.to_vec(), (value.to_vec(), deadline.or(kept)));
        if get {
            get_reply
        } else {
            ok()
        }
    }

    /// `EXPIRE key n` (`unit` 1000) or `PEXPIRE key n` (`unit` 1): negative times delete, times
    /// whose milliseconds overflow are refused before the key is looked at.
    fn expire(&mut self, key: &[u8], arg: &[u8], unit: i64, now: i128) -> Reply {
        let name = if unit == 1000 { "expire" } else { "pexpire" };
        let Some(n) = strict_i64(arg) else {
            return error(NOT_AN_INTEGER);
        };
        let Some(ms) = n.checked_mul(unit) else {
            return invalid_expire_time(name);
        };
        if self.live(key, now).is_none() {
            return integer(0);
        }
        if ms <= 0 {
            self.keys.remove(key);
        } else if let Some(entry) = self.keys.get_mut(key) {
            entry.1 = Some(now + i128::from(ms));
        }
        integer(1)
    }

    /// `TTL` (seconds, rounded to the nearest) or `PTTL`.
    fn ttl(&mut self, key: &[u8], seconds: bool, now: i128) -> Reply {
        match self.live(key, now) {
            None => integer(-2),
            Some((_, None)) => integer(-1),
            Some((_, Some(at))) => {
                let ms = *at - now;
                let left = if seconds { (ms + 500) / 1000 } else { ms };
                integer(i64::try_from(left).expect("a deadline within i64 milliseconds"))
            }
        }
    }

    /// The reply to one built command run at `now` (milliseconds on the harness clock), or
    /// `None` for an empty command.
    fn reply(&mut self, argv: &[Vec<u8>], now: i128) -> Option<Reply> {
        let name = argv.first()?.to_ascii_uppercase();
        let arg = |i: usize| &argv[i][..];
        let reply = match (&name[..], argv.len()) {
            (b"PING", 1) => Reply::Exact(b"+PONG\r\n".to_vec()),
            (b"PING" | b"ECHO", 2) => bulk(Some(arg(1))),
            (b"SET", n) if n >= 3 => self.set(arg(1), arg(2), &argv[3..], now),
            (b"SETEX" | b"PSETEX", 4) => {
                let (unit, cmd) = if name == b"SETEX" {
                    (1000, "setex")
                } else {
                    (1, "psetex")
                };
                match set_ttl(arg(2), unit, cmd) {
                    Ok(ms) => {
                        let at = Some(now + i128::from(ms));
                        self.keys.insert(arg(1).to_vec(), (arg(3).to_vec(), at));
                        ok()
                    }
                    Err(reply) => reply,
                }
            }
            (b"GET", 2) => {
                let value = self.live(arg(1), now).map(|(v, _)| v.clone());
                bulk(value.as_deref())
            }
            (b"GET", _) => error("ERR wrong number of arguments for 'get' command"),
            (b"DEL", _) => {
                // Each key counts if it existed when its turn came: a repeated key counts once.
                let mut n = 0;
                for k in &argv[1..] {
                    n += i64::from(self.live(k, now).is_some());
                    self.keys.remove(k);
                }
                integer(n)
            }
            (b"EXISTS", _) => {
                let mut n = 0;
                for k in &argv[1..] {
                    n += i64::from(self.live(k, now).is_some());
                }
                integer(n)
            }
            (b"INCR", 2) => self.incr(arg(1), 1, now),
            (b"DECR", 2) => self.incr(arg(1), -1, now),
            (b"INCRBY" | b"DECRBY", 3) => match strict_i64(arg(2)) {
                None => error(NOT_AN_INTEGER),
                Some(n) if name == b"INCRBY" => self.incr(arg(1), n, now),
                Some(n) => match n.checked_neg() {
                    Some(n) => self.incr(arg(1), n, now),
                    None => error("ERR decrement would overflow"),
                },
            },
            (b"EXPIRE", 3) => self.expire(arg(1), arg(2), 1000, now),
            (b"PEXPIRE", 3) => self.expire(arg(1), arg(2), 1, now),
            (b"PERSIST", 2) => {
                let had = self
                    .live(arg(1), now)
                    .is_some_and(|entry| entry.1.take().is_some());
                integer(i64::from(had))
            }
            (b"TTL", 2) => self.ttl(arg(1), true, now),
            (b"PTTL", 2) => self.ttl(arg(1), false, now),
            (b"DBSIZE", 1) => {
                let live = self
                    .keys
                    .values()
                    .filter(|(_, at)| at.is_none_or(|at| at > now))
                    .count() as i64;
                Reply::Range(live, self.keys.len() as i64)
            }
            (b"FLUSHALL", 1) => {
                self.keys.clear();
                ok()
            }
            (b"SELECT", 2) => ok(),
            (b"QUIT", 1) => ok(),
            // Lower case, so that the name quoted back is the same whatever case is sent.
            (b"FOO", 2) => error(&format!(
                "ERR unknown command 'foo', with args beginning with: '{}' ",
                String::from_utf8_lossy(arg(1))
            )),
            _ => unreachable!("the model builds no other command: {name:?}"),
        };
        Some(reply)
    }
}

/// Builds one command from script bytes: its arguments (none: an empty command) and whether
/// the server closes after it.
fn draw(s: &mut Script<'_>) -> (Vec<Vec<u8>>, bool) {
    let which = s.below(30);
    let key = s.pick(&KEYS).as_bytes().to_vec();
    let value = s.pick(&VALUES).as_bytes().to_vec();
    let args = |words: &[&[u8]]| words.iter().map(|w| w.to_vec()).collect::<Vec<_>>();
    let argv = match which {
        0 => args(&[b"PING"]),
        1 => args(&[b"PING", &value]),
        2 => args(&[b"ECHO", &value]),
        3 => args(&[b"SET", &key, &value]),
        4 => args(&[b"SET", &key, &value, b"NX"]),
        5 => args(&[b"SET", &key, &value, b"XX"]),
        6 => args(&[b"SET", &key, &value, b"GET"]),
        7 => {
            let unit: &[u8] = s.pick(&[b"EX", b"PX"]);
            let cond: &[u8] = s.pick(&[b"", b"NX", b"XX", b"GET"]);
            let mut argv = args(&[b"SET", &key, &value, unit, &draw_ttl(s)]);
            if !cond.is_empty() {
                argv.push(cond.to_vec());
            }
            argv
        }
        8 => args(&[b"SET", &key, &value, b"KEEPTTL"]),
        9 => args(&[b"GET", &key]),
        10 => args(&[b"DEL", &key, s.pick(&KEYS).as_bytes()]),
        11 => args(&[b"EXISTS", &key, s.pick(&KEYS).as_bytes()]),
        12 => args(&[b"INCR", &key]),
        13 => args(&[b"DECR", &key]),
        14 | 15 => {
            let by = s.pick(&INCREMENTS).as_bytes();
            let name: &[u8] = if which == 14 { b"INCRBY" } else { b"DECRBY" };
            args(&[name, &key, by])
        }
        16 | 17 => {
            let name: &[u8] = if which == 16 { b"EXPIRE" } else { b"PEXPIRE" };
            args(&[name, &key, &draw_ttl(s)])
        }
        18 => args(&[b"PERSIST", &key]),
        19 => args(&[b"TTL", &key]),
        20 => args(&[b"PTTL", &key]),
        21 | 22 => {
            let name: &[u8] = if which == 21 { b"SETEX" } else { b"PSETEX" };
            args(&[name, &key, &draw_ttl(s), &value])
        }
        23 => args(&[b"DBSIZE"]),
        24 => args(&[b"FLUSHALL"]),
        25 => args(&[b"SELECT", b"0"]),
        26 => args(&[b"foo", &key]),
        27 => args(&[b"GET"]),
        28 => return (args(&[b"QUIT"]), true),
        // An empty command gets no reply.
        _ => Vec::new(),
    };
    (argv, false)
}

/// Whether `args` can be sent as an inline command: every argument non-empty, without
/// whitespace, and not starting the line with `*`.
fn inline_safe(args: &[Vec<u8>]) -> bool {
    args.iter()
        .all(|a| !a.is_empty() && !a.iter().any(u8::is_ascii_whitespace))
        && args.first().is_some_and(|a| a[0] != b'*')
}

/// Commands built from a script: the wire bytes, and for each command the offset where it
/// ends, its arguments and whether the server closes after it.
struct Built {
    wire: Vec<u8>,
    commands: Vec<(usize, Vec<Vec<u8>>, bool)>,
}

fn build(payload: &[u8]) -> Built {
    let mut s = Script::new(payload);
    let mut built = Built {
        wire: Vec::new(),
        commands: Vec::new(),
    };
    while !s.is_empty() {
        let form = s.byte();
        let (mut argv, close) = draw(&mut s);
        if form & 2 != 0 {
            // Command names are not case-sensitive.
            if let Some(name) = argv.first_mut() {
                name.make_ascii_lowercase();
            }
        }
        if form & 1 != 0 && inline_safe(&argv) {
            built.wire.extend_from_slice(&argv.join(&b' '));
            built.wire.extend_from_slice(b"\r\n");
        } else if argv.is_empty() && form & 4 != 0 {
            built.wire.extend_from_slice(b"\r\n");
        } else {
            let refs: Vec<&[u8]> = argv.iter().map(|a| &a[..]).collect();
            encode_command(&mut built.wire, &refs);
        }
        built.commands.push((built.wire.len(), argv, close));
    }
    built
}

/// Checks the replies to built commands against the model, for the part that was sent. Each
/// command runs at the clock of the settle that read its last byte (see
/// [`Conversation::read_by`]). Returns whether the server must have closed.
fn check_built(built: &Built, talk: &Conversation) -> bool {
    let mut model = Model::default();
    let mut want = Vec::new();
    let mut closes = false;
    for (end, argv, close) in &built.commands {
        if *end > talk.sent.len() {
            break;
        }
        let settle = talk.read_by(end - 1);
        if settle > 0 {
            model.expired_by(talk.settles[settle - 1].1.as_millis() as i128);
        }
        let now = talk.settles[settle].1.as_millis() as i128;
        want.extend(model.reply(argv, now).map(|reply| (reply, argv)));
        if *close {
            closes = true;
            break;
        }
    }
    let got = split_replies(&talk.received);
    assert_eq!(
        got.len(),
        want.len(),
        "{} replies, the model has {}",
        got.len(),
        want.len()
    );
    for (i, (got, (want, argv))) in got.iter().zip(&want).enumerate() {
        let argv: Vec<_> = argv.iter().map(|a| String::from_utf8_lossy(a)).collect();
        match want {
            Reply::Exact(bytes) => assert!(
                got == bytes,
                "reply {i} to {argv:?}: {:?}, the model says {:?}",
                String::from_utf8_lossy(got),
                String::from_utf8_lossy(bytes)
            ),
            Reply::Range(lo, hi) => {
                let n: Option<i64> = got
                    .strip_prefix(b":")
                    .and_then(|n| std::str::from_utf8(n).ok())
                    .and_then(|n| n.trim_end().parse().ok());
                assert!(
                    n.is_some_and(|n| (*lo..=*hi).contains(&n)),
                    "reply {i} to {argv:?}: {:?}, the model says {lo} to {hi}",
                    String::from_utf8_lossy(got)
                );
            }
        }
    }
    closes
}

/// For arbitrary bytes: how many replies the server owes (one per non-empty command up to
/// `QUIT` or a broken frame, which gets an error reply), and whether it closes.
fn expected_count(sent: &[u8]) -> (usize, bool) {
    let decoded = decode_chunked(&mut RespCodec::new(), sent, &[], |cmd| {
        cmd.name().map(|n| n.eq_ignore_ascii_case(b"QUIT"))
    });
    let mut count = 0;
    for quit in decoded.frames.iter().flatten() {
        count += 1;
        if *quit {
            return (count, true);
        }
    }
    match decoded.error {
        Some(_) => (count + 1, true),
        None => (count, false),
    }
}

/// Checks [`KvConn`] on the in-memory transport: every command gets exactly one reply, in
/// order, and the replies are valid RESP; built commands get exactly the replies of a model
/// store; the connection closes after `QUIT` or a broken frame, and not before.
///
/// Input: see the [module documentation](super). Flag bit 0 chooses whether the payload is
/// raw bytes (then only the count, validity and closing are checked) or a script building
/// commands (`SET` with its options, `SETEX`, `GET`, `DEL`, `INCRBY`, `EXPIRE`, `TTL`, `DBSIZE`,
/// errors, `QUIT`…) in array or inline form over a few keys, with times to live drawn over their
/// whole range (zero, negatives, the edges of `i64` in seconds and milliseconds, beyond them,
/// not integers). Flag bits 1 to 3 choose where the clock starts (from zero to 2^62 ms), and
/// the peer's clock moves run keys out of time; the model runs each command at the clock of the
/// settle that read it and answers as Redis would.
///
/// # Panics
///
/// If an invariant is broken.
pub fn kv(data: &[u8]) {
    let mut input = HandlerInput::read(data);
    let built = (input.flags & 1 == 1).then(|| build(input.payload));
    let payload = built.as_ref().map_or(input.payload, |b| &b.wire[..]);

    let mut h =
        Harness::new(KvStore::new()).expect("a harness needs no system resource but a poller");
    // A reactor that has run for a while: deadlines far from the wheel's zero.
    let start = CLOCK_STARTS[usize::from(input.flags >> 1) % CLOCK_STARTS.len()];
    if let Err(e) = h.advance(Duration::from_millis(start)) {
        panic!("the reactor did not settle: {e}");
    }
    let listener = h.listen(patient(), |_, _| KvConn::new());
    let peer = listener.connect();
    let talk = converse(&mut h, &peer, &mut input.ops, payload);
    // At rest, the reactor sleeps until its next timer: one due at once would make it spin (a
    // deadline wrapped into the past re-arming itself every turn).
    let next = h.reactor().next_timeout();
    assert_ne!(next, Some(Duration::ZERO), "the reactor would spin");

    if talk.reset {
        // Whatever came back is whole replies, then maybe the start of one.
        assert!(peer.is_closed(), "a reset connection was kept open");
        return;
    }
    let closes = match &built {
        Some(built) => check_built(built, &talk),
        None => {
            let (count, closes) = expected_count(&talk.sent);
            assert_eq!(
                count_replies(&talk.received),
                count,
                "one reply per command"
            );
            closes
        }
    };
    assert_eq!(
        peer.fin_received(),
        closes || talk.fin,
        "closed {} (must close: {closes}, peer FIN: {})",
        peer.fin_received(),
        talk.fin
    );
}
