//! The KV target: one valid RESP reply per command, in order, equal to a model store's.

use std::collections::BTreeMap;

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
use reactor::testing::{converse, Script};

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

/// The time to live the built commands set, in seconds: far longer than any run, so no key
/// expires by itself and the model needs no clock.
const TTL: i64 = 1000;

/// The reply the model expects to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    /// Exactly these bytes.
    Exact(Vec<u8>),
    /// The reply to `TTL` on a key with [`TTL`] seconds to live: that, or one less if the
    /// clock ticked past a half second since.
    Ttl,
}

/// A model of the store: values, and whether each key has a time to live.
#[derive(Debug, Default)]
struct Model {
    keys: BTreeMap<Vec<u8>, (Vec<u8>, bool)>,
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

impl Model {
    /// Adds `by` to the integer at `key`, as `INCRBY` does.
    fn incr(&mut self, key: &[u8], by: i64) -> Reply {
        let current = match self.keys.get(key) {
            Some((v, _)) => match strict_i64(v) {
                Some(n) => n,
                None => return error(NOT_AN_INTEGER),
            },
            None => 0,
        };
        let Some(new) = current.checked_add(by) else {
            return error("ERR increment or decrement would overflow");
        };
        let ttl = self.keys.get(key).is_some_and(|&(_, t)| t);
        self.keys
            .insert(key.to_vec(), (new.to_string().into_bytes(), ttl));
        integer(new)
    }

    /// Builds one command from script bytes; returns its arguments, the reply the model
    /// expects (`None`: no reply) and whether the server closes after it.
    fn command(&mut self, s: &mut Script<'_>) -> (Vec<Vec<u8>>, Option<Reply>, bool) {
        let which = s.below(27);
        let key = s.pick(&KEYS).as_bytes().to_vec();
        let value = s.pick(&VALUES).as_bytes().to_vec();
        let args = |words: &[&[u8]]| words.iter().map(|w| w.to_vec()).collect::<Vec<_>>();
        let exists = self.keys.contains_key(&key);
        let (argv, reply) = match which {
            0 => (args(&[b"PING"]), Reply::Exact(b"+PONG\r\n".to_vec())),
            1 => (args(&[b"PING", &value]), bulk(Some(&value))),
            2 => (args(&[b"ECHO", &value]), bulk(Some(&value))),
            3 => {
                self.keys.insert(key.clone(), (value.clone(), false));
                (args(&[b"SET", &key, &value]), ok())
            }
            4 | 5 => {
                let nx = which == 4;
                let opt: &[u8] = if nx { b"NX" } else { b"XX" };
                let reply = if nx == exists {
                    bulk(None)
                } else {
                    self.keys.insert(key.clone(), (value.clone(), false));
                    ok()
                };
                (args(&[b"SET", &key, &value, opt]), reply)
            }
            6 => {
                let old = self.keys.insert(key.clone(), (value.clone(), false));
                let reply = bulk(old.as_ref().map(|(v, _)| &v[..]));
                (args(&[b"SET", &key, &value, b"GET"]), reply)
            }
            7 => {
                self.keys.insert(key.clone(), (value.clone(), true));
                let ttl = TTL.to_string().into_bytes();
                (args(&[b"SET", &key, &value, b"EX", &ttl]), ok())
            }
            8 => {
                let ttl = self.keys.get(&key).is_some_and(|&(_, t)| t);
                self.keys.insert(key.clone(), (value.clone(), ttl));
                (args(&[b"SET", &key, &value, b"KEEPTTL"]), ok())
            }
            9 => {
                let reply = bulk(self.keys.get(&key).map(|(v, _)| &v[..]));
                (args(&[b"GET", &key]), reply)
            }
            10 => {
                // Each key counts if it existed when its turn came: a repeated key counts once.
                let other = s.pick(&KEYS).as_bytes().to_vec();
                let mut n = 0;
                for k in [&key, &other] {
                    n += i64::from(self.keys.remove(k).is_some());
                }
                (args(&[b"DEL", &key, &other]), integer(n))
            }
            11 => {
                let other = s.pick(&KEYS).as_bytes().to_vec();
                let n = [&key, &other]
                    .iter()
                    .filter(|k| self.keys.contains_key(**k))
                    .count();
                (args(&[b"EXISTS", &key, &other]), integer(n as i64))
            }
            12 => (args(&[b"INCR", &key]), self.incr(&key, 1)),
            13 => (args(&[b"DECR", &key]), self.incr(&key, -1)),
            14 | 15 => {
                let by = s.pick(&INCREMENTS).as_bytes().to_vec();
                let name: &[u8] = if which == 14 { b"INCRBY" } else { b"DECRBY" };
                let reply = match strict_i64(&by) {
                    None => error(NOT_AN_INTEGER),
                    Some(n) if which == 14 => self.incr(&key, n),
                    Some(n) => match n.checked_neg() {
                        Some(n) => self.incr(&key, n),
                        None => error("ERR decrement would overflow"),
                    },
                };
                (args(&[name, &key, &by]), reply)
            }
            16 => {
                if let Some(entry) = self.keys.get_mut(&key) {
                    entry.1 = true;
                }
                let ttl = TTL.to_string().into_bytes();
                (args(&[b"EXPIRE", &key, &ttl]), integer(i64::from(exists)))
            }
            17 => {
                // A deadline that has passed deletes the key at once.
                self.keys.remove(&key);
                (args(&[b"EXPIRE", &key, b"0"]), integer(i64::from(exists)))
            }
            18 => {
                let had = self
                    .keys
                    .get_mut(&key)
                    .is_some_and(|entry| std::mem::take(&mut entry.1));
                (args(&[b"PERSIST", &key]), integer(i64::from(had)))
            }
            19 => {
                let reply = match self.keys.get(&key) {
                    None => integer(-2),
                    Some((_, false)) => integer(-1),
                    Some((_, true)) => Reply::Ttl,
                };
                (args(&[b"TTL", &key]), reply)
            }
            20 => (args(&[b"DBSIZE"]), integer(self.keys.len() as i64)),
            21 => {
                self.keys.clear();
                (args(&[b"FLUSHALL"]), ok())
            }
            22 => (args(&[b"SELECT", b"0"]), ok()),
            23 => {
                // Lower case, so that the name quoted back is the same whatever case is sent.
                let msg = format!(
                    "ERR unknown command 'foo', with args beginning with: '{}' ",
                    String::from_utf8_lossy(&key)
                );
                (args(&[b"foo", &key]), error(&msg))
            }
            24 => (
                args(&[b"GET"]),
                error("ERR wrong number of arguments for 'get' command"),
            ),
            25 => return (args(&[b"QUIT"]), Some(ok()), true),
            // An empty command gets no reply.
            _ => return (Vec::new(), None, false),
        };
        (argv, Some(reply), false)
    }
}

/// Whether `args` can be sent as an inline command: every argument non-empty, without
/// whitespace, and not starting the line with `*`.
fn inline_safe(args: &[Vec<u8>]) -> bool {
    args.iter()
        .all(|a| !a.is_empty() && !a.iter().any(u8::is_ascii_whitespace))
        && args.first().is_some_and(|a| a[0] != b'*')
}

/// Commands built from a script: the wire bytes, and for each command the offset where it ends
/// with the reply it must get.
struct Built {
    wire: Vec<u8>,
    commands: Vec<(usize, Option<Reply>, bool)>,
}

fn build(payload: &[u8]) -> Built {
    let mut s = Script::new(payload);
    let mut model = Model::default();
    let mut built = Built {
        wire: Vec::new(),
        commands: Vec::new(),
    };
    while !s.is_empty() {
        let form = s.byte();
        let (mut argv, reply, close) = model.command(&mut s);
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
        built.commands.push((built.wire.len(), reply, close));
    }
    built
}

/// Checks the replies to built commands against the model, for the part that was sent.
fn check_built(built: &Built, sent: usize, received: &[u8]) -> bool {
    let mut want = Vec::new();
    let mut closes = false;
    for (end, reply, close) in &built.commands {
        if *end > sent {
            break;
        }
        want.extend(reply.iter().cloned());
        if *close {
            closes = true;
            break;
        }
    }
    let got = split_replies(received);
    assert_eq!(
        got.len(),
        want.len(),
        "{} replies, the model has {}",
        got.len(),
        want.len()
    );
    for (i, (got, want)) in got.iter().zip(&want).enumerate() {
        match want {
            Reply::Exact(bytes) => assert!(
                got == bytes,
                "reply {i}: {:?}, the model says {:?}",
                String::from_utf8_lossy(got),
                String::from_utf8_lossy(bytes)
            ),
            Reply::Ttl => assert!(
                *got == b":1000\r\n" || *got == b":999\r\n",
                "reply {i}: TTL {:?}",
                String::from_utf8_lossy(got)
            ),
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
/// commands (`SET` with its options, `GET`, `DEL`, `INCRBY`, `EXPIRE`, `TTL`, errors, `QUIT`…)
/// in array or inline form over a few keys.
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
    let listener = h.listen(patient(), |_, _| KvConn::new());
    let peer = listener.connect();
    let talk = converse(&mut h, &peer, &mut input.ops, payload);

    if talk.reset {
        // Whatever came back is whole replies, then maybe the start of one.
        assert!(peer.is_closed(), "a reset connection was kept open");
        return;
    }
    let closes = match &built {
        Some(built) => check_built(built, talk.sent.len(), &talk.received),
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
