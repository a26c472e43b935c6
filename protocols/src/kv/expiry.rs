//! Keys with a time to live: arming, firing and cancelling their removal, and the `EXPIRE`
//! family's checks (see the module notes on expiry in the parent).

use std::time::{Duration, Instant};

use reactor::LoopCx;

use super::commands::parse_i64;
use super::{Expiry, KvStore, NOT_AN_INTEGER};
use crate::codec::resp::{encode_error, encode_integer};

/// Arms the expiry of `key` (which must exist) for `at`: schedules the removal on the timer
/// wheel and keeps the task with the key, replacing and cancelling any earlier expiry.
pub(super) fn arm_expiry(cx: &mut LoopCx<'_, KvStore>, key: &[u8], at: Instant, now: Instant) {
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
    let now = cx.now();
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
        // The wheel counts whole ticks from the turn's start, so it can run a task a little
        // before the clock reaches the deadline itself: wait for the rest.
        arm_expiry(cx, key, expiry.at, now);
    }
}

/// Cancels the expiry tasks the store has dropped since the last call.
pub(super) fn cancel_stale(cx: &mut LoopCx<'_, KvStore>) {
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

/// The deadline of a `SET`-like command's time to live `arg` (in units of `unit` ms), or its
/// error reply: not an integer, or an invalid expire time (zero, negative, or too large), as
/// Redis's `getExpireMillisecondsOrReply` words it for the command `name`.
pub(super) fn set_deadline(
    arg: &[u8],
    unit: i64,
    now: Instant,
    name: &str,
) -> Result<Instant, String> {
    let Some(n) = parse_i64(arg) else {
        return Err(String::from_utf8_lossy(NOT_AN_INTEGER).into_owned());
    };
    let ms = ttl_ms(n, unit).filter(|_| n > 0);
    match ms.and_then(|ms| deadline_after(now, ms)) {
        Some(at) => Ok(at),
        None => Err(invalid_expire_time(name)),
    }
}

/// Redis's reply to a time to live it refuses.
fn invalid_expire_time(name: &str) -> String {
    format!("ERR invalid expire time in '{name}' command")
}

/// `EXPIRE key seconds` and `PEXPIRE key milliseconds`.
pub(super) fn expire_command(
    cx: &mut LoopCx<'_, KvStore>,
    argv: &[&[u8]],
    seconds: bool,
    now: Instant,
    out: &mut Vec<u8>,
) {
    let name = if seconds { "expire" } else { "pexpire" };
    // Redis's order: options, then the number, then its range, then the key.
    if let Some(opt) = argv.get(3) {
        let msg = format!("ERR Unsupported option {}", String::from_utf8_lossy(opt));
        return encode_error(out, msg.as_bytes());
    }
    let Some(n) = parse_i64(argv[2]) else {
        return encode_error(out, NOT_AN_INTEGER);
    };
    let unit = if seconds { 1000 } else { 1 };
    // A negative time is allowed (the key goes at once); one whose milliseconds overflow is not.
    let Some(ms) = ttl_ms(n, unit) else {
        return encode_error(out, invalid_expire_time(name).as_bytes());
    };
    let store = cx.app();
    if store.live(argv[1], now).is_none() {
        return encode_integer(out, 0);
    }
    if ms <= 0 {
        // A deadline in the past deletes the key at once, as in Redis.
        store.remove(argv[1]);
        return encode_integer(out, 1);
    }
    match deadline_after(now, ms) {
        Some(at) => {
            arm_expiry(cx, argv[1], at, now);
            encode_integer(out, 1);
        }
        None => encode_error(out, invalid_expire_time(name).as_bytes()),
    }
}

/// `n` units of `unit` milliseconds, or `None` if that does not fit in an `i64` (Redis's
/// `LLONG_MAX / 1000` and `LLONG_MIN / 1000` bounds on seconds).
fn ttl_ms(n: i64, unit: i64) -> Option<i64> {
    n.checked_mul(unit)
}

/// `now + ms`, or `None` if `ms` is negative or the instant cannot be represented.
fn deadline_after(now: Instant, ms: i64) -> Option<Instant> {
    now.checked_add(Duration::from_millis(u64::try_from(ms).ok()?))
}

/// The milliseconds left until `at`, saturating at `i64::MAX` (never negative).
pub(super) fn ms_left(at: Instant, now: Instant) -> i64 {
    i64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(i64::MAX)
}
