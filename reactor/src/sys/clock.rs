//! The monotonic clock in nanoseconds, read without the standard library's `Instant` arithmetic.
//!
//! The loop reads the clock at least twice a turn and only ever wants the time since its own
//! start; `Instant` offers that through a subtraction that handles both signs, which cost a
//! turn about a hundred instructions. This is the same clock (`CLOCK_MONOTONIC`, which
//! `Instant` reads on Linux) as a count of nanoseconds.

/// The monotonic clock's reading in nanoseconds (584 years fit), or `None` if the kernel
/// refused it (it does not for `CLOCK_MONOTONIC`; the caller then falls back on `Instant`).
#[inline]
pub(crate) fn monotonic_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the duration of the call, and
    // `clock_gettime` writes nothing else; `CLOCK_MONOTONIC` is a clock every Linux has.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// It never goes back, and it moves with `Instant` (the same clock).
    #[test]
    fn monotonic_moves_with_instant() {
        let a = monotonic_ns().expect("CLOCK_MONOTONIC");
        let i = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let b = monotonic_ns().expect("CLOCK_MONOTONIC");
        let elapsed = i.elapsed();
        let slept = Duration::from_nanos(b - a);
        assert!(slept >= Duration::from_millis(20), "{a} -> {b}");
        // Both measured the same sleep: they differ by the few instructions between them.
        let diff = slept.abs_diff(elapsed);
        assert!(
            diff < Duration::from_millis(5),
            "monotonic {slept:?}, Instant {elapsed:?}"
        );
    }
}
