//! CPU time read from `/proc`: a process's (every thread) and the whole machine's, so a
//! figure per line can be divided out and the load of other processes shown beside it.

use std::io;
use std::time::Duration;

use crate::sys;

/// utime + stime of process `pid` (every thread), from `/proc/PID/stat`.
///
/// # Errors
///
/// The process is gone, or the file is not what Linux writes.
pub fn cpu_time(pid: &str) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let bad = || io::Error::other(format!("unexpected /proc/{pid}/stat"));
    // Fields after the command name, which may hold spaces and ends at the last `)`.
    let rest = stat.rsplit_once(')').ok_or_else(bad)?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(bad)
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(
        total as f64 / sys::clock_ticks_per_sec() as f64,
    ))
}

/// The CPU time every core spent on anything but idling and waiting for I/O, from the `cpu`
/// line of `/proc/stat`.
///
/// # Errors
///
/// The file is missing or not what Linux writes.
pub fn machine_cpu_time() -> io::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| io::Error::other("no cpu line in /proc/stat"))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice, inside user and nice]
    let busy: u64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|&(i, _)| i != 3 && i != 4)
        .map(|(_, v)| v)
        .sum();
    Ok(Duration::from_secs_f64(
        busy as f64 / sys::clock_ticks_per_sec() as f64,
    ))
}
