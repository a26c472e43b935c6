//! The KV sample's tests: replies word for word as Redis, every split of the input, and expiry on
//! the harness clock.

use super::commands::parse_i64;
use super::*;
use crate::codec::resp::encode_command;
use reactor::testing::Harness;
use reactor::Reactor;
use std::time::Duration;

/// A value as large as the codec allows is stored, not cut off by the reactor's input limit.
#[test]
fn the_largest_legal_value_fits_the_connection_limits() {
    use crate::codec::resp::DEFAULT_MAX_BULK_LENGTH;
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
    let mut h = Harness::new(KvStore::new()).unwrap();
    let (out, _) = run(
        h.reactor(),
        b"SET short v PX 30\r\nSET long v EX 100\r\nINCR short\r\n",
        &[],
    );
    // INCR on a non-integer fails and leaves the key and its expiry alone.
    assert!(out.ends_with(b"-ERR value is not an integer or out of range\r\n"));
    assert_eq!(h.app().len(), 2);
    // Not a tick early: the removal waits for the whole 30 ms on the reactor's clock.
    h.advance(Duration::from_millis(29)).unwrap();
    assert_eq!(h.app().len(), 2, "expired early");
    h.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(h.app().len(), 1, "never expired");
    assert_eq!(run(h.reactor(), b"GET short\r\n", &[]).0, b"$-1\r\n");
    assert_eq!(h.reactor().timers_armed(), 1);
}

#[test]
fn reads_never_see_an_expired_key() {
    let mut h = Harness::new(KvStore::new()).unwrap();
    // Half a tick in, a 1 ms expiry ends at 1.5 ms, and the wheel removes it at tick 2.
    h.advance(Duration::from_micros(500)).unwrap();
    run(h.reactor(), b"SET k v PX 1\r\n", &[]);
    h.advance(Duration::from_millis(1)).unwrap();
    // The key's time is up but its task has not fired: the read must still miss.
    assert_eq!(h.app().len(), 1);
    assert_eq!(
        run(h.reactor(), b"GET k\r\nEXISTS k\r\nTTL k\r\n", &[]).0,
        b"$-1\r\n:0\r\n:-2\r\n"
    );
    assert_eq!(h.app().len(), 0);
    // The public read checks the deadline too.
    run(h.reactor(), b"SET x y PX 1\r\n", &[]);
    let now = h.reactor().cx().now();
    assert_eq!(h.app().get(b"x", now), Some(&b"y"[..]));
    let later = now + Duration::from_millis(1);
    assert_eq!(h.app().get(b"x", later), None);
}

/// Regression: a time to live whose milliseconds overflow an `i64` was accepted and, once
/// past `u64::MAX` on the timer wheel, wrapped into the past.
#[test]
fn expire_times_out_of_range_are_refused_like_redis() {
    let input = b"SET k v EX 18446744073709551\r\nSET k v EX 9223372036854776\r\n\
                  SET k v EX -1\r\nSET k v PX 0\r\nSET k v EX 9223372036854775\r\n\
                  SET k v PX 9223372036854775807\r\n\
                  SETEX k 0 v\r\nPSETEX k -1 v\r\nSETEX k 18446744073709551 v\r\n\
                  SETEX k x v\r\nSETEX k 10 v\r\nPSETEX k 9223372036854775807 v\r\n\
                  EXPIRE k 9223372036854776\r\nEXPIRE k -9223372036854776\r\n\
                  EXPIRE none 9223372036854776\r\nPEXPIRE k 9223372036854775807\r\n\
                  EXPIRE k 9223372036854775\r\nPEXPIRE k -9223372036854775808\r\n\
                  EXISTS k\r\n";
    assert_eq!(
        replies(input),
        "-ERR invalid expire time in 'set' command\r\n\
         -ERR invalid expire time in 'set' command\r\n\
         -ERR invalid expire time in 'set' command\r\n\
         -ERR invalid expire time in 'set' command\r\n+OK\r\n+OK\r\n\
         -ERR invalid expire time in 'setex' command\r\n\
         -ERR invalid expire time in 'psetex' command\r\n\
         -ERR invalid expire time in 'setex' command\r\n\
         -ERR value is not an integer or out of range\r\n+OK\r\n+OK\r\n\
         -ERR invalid expire time in 'expire' command\r\n\
         -ERR invalid expire time in 'expire' command\r\n\
         -ERR invalid expire time in 'expire' command\r\n:1\r\n:1\r\n:1\r\n:0\r\n"
    );
}

/// Regression: `TTL` on a key with about `i64::MAX` ms to live overflowed `ms + 500` (a
/// panic in a debug build, taking the reactor thread down).
#[test]
fn ttl_of_the_longest_expiry_does_not_overflow() {
    let mut h = Harness::new(KvStore::new()).unwrap();
    let (out, _) = run(
        h.reactor(),
        b"SET k v PX 9223372036854775807\r\nTTL k\r\nPTTL k\r\n",
        &[],
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "+OK\r\n:9223372036854776\r\n:9223372036854775807\r\n"
    );
}

/// Regression: `SET k v EX 18446744073709551`, once the reactor had run for over 615 ms,
/// wrapped the wheel deadline into the past and the expiry re-armed itself every turn (a
/// loop at 100 % CPU). Refused now; and the longest expiry accepted leaves the reactor
/// asleep until a deadline that far away.
#[test]
fn a_far_expiry_never_makes_the_loop_spin() {
    let mut h = Harness::new(KvStore::new()).unwrap();
    h.advance(Duration::from_secs(1)).unwrap();
    let (out, _) = run(
        h.reactor(),
        b"SET spin v EX 18446744073709551\r\nSET far v EX 9223372036854775\r\n\
          SET farther v PX 9223372036854775807\r\n",
        &[],
    );
    let years = Duration::from_secs(100 * 365 * 24 * 3600);
    for _ in 0..100 {
        h.settle().unwrap();
        let next = h.reactor().next_timeout();
        assert!(next.is_some_and(|t| t > years), "next wake-up in {next:?}");
    }
    assert!(out.starts_with(b"-ERR invalid expire time"), "{out:?}");
    h.advance(years).unwrap();
    assert_eq!(h.reactor().timers_armed(), 2);
    assert_eq!(h.app().len(), 2);
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
