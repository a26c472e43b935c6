//! The reactor's counters in the Prometheus text format, and its connections as JSON, so a
//! program can expose both on an endpoint of its own.
//!
//! [`MetricsWriter`] writes the Prometheus text exposition format, version 0.0.4 (the format a
//! `GET /metrics` answers with `Content-Type: text/plain; version=0.0.4`): one `# HELP` and one
//! `# TYPE` line per metric family, then its samples. [`write_stats`] writes a [`Stats`] with
//! it, and a program appends its own metrics to the same writer. [`connections_json`] writes
//! the [`ConnSnapshot`](crate::ConnSnapshot)s of [`Reactor::connections`](crate::Reactor::connections) or
//! `Cx::connections` (what SIGUSR1 prints in the samples) as a JSON array, and
//! [`udp_sockets_json`] the UDP sockets of [`Reactor::udp_sockets`](crate::Reactor::udp_sockets).
//!
//! ```
//! use evdrive_reactor::metrics::{self, MetricsWriter};
//! use evdrive_reactor::Reactor;
//!
//! let reactor = Reactor::new(())?;
//! let mut w = MetricsWriter::new();
//! metrics::write_stats(&mut w, reactor.stats())?;
//! w.gauge("myapp_sessions", "Sessions open now.", 3.0)?;
//! w.labeled_counter("myapp_requests_total", "Requests served, by route.", &["route"],
//!     [(["/"], 10), (["/login"], 2)])?;
//! let text = w.into_string();
//! assert!(text.contains("# TYPE evdrive_connections_accepted_total counter\n"));
//! assert!(text.contains("myapp_requests_total{route=\"/login\"} 2\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Implementation notes
//!
//! The writer checks what the format and its conventions require before writing anything, so a
//! call that fails leaves the text as it was: metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*`,
//! label names `[a-zA-Z_][a-zA-Z0-9_]*` and do not start with `__` (reserved), a name is used by
//! one family only (a second family of the same name would be rejected by a scraper), counters
//! end in `_total` and gauges do not, neither ends in `_sum`, `_count` or `_bucket` (the
//! suffixes of histograms and summaries), every series of a family has the family's label names
//! and a label set of its own. Help text escapes `\` and line feeds, label values also `"`.
//!
//! `Stats` counts for the whole reactor: it has no per-listener counters yet, so none are
//! rendered; once it has, they belong here as a `listener` label.

mod json;
mod writer;

pub use json::{connections_json, udp_sockets_json};
pub use writer::{MetricsError, MetricsWriter};

use crate::{CloseKind, Stats};

/// The `reason` label value of a kind of close.
fn close_label(kind: CloseKind) -> &'static str {
    match kind {
        CloseKind::PeerClosed => "peer_closed",
        CloseKind::Reset => "reset",
        CloseKind::BrokenPipe => "broken_pipe",
        CloseKind::TimedOut => "timed_out",
        CloseKind::Unreachable => "unreachable",
        CloseKind::Refused => "refused",
        CloseKind::ConnectTimeout => "connect_timeout",
        CloseKind::IdleTimeout => "idle_timeout",
        CloseKind::SlowConsumer => "slow_consumer",
        CloseKind::Protocol => "protocol",
        CloseKind::Local => "local",
        CloseKind::Aborted => "aborted",
        CloseKind::Shutdown => "shutdown",
        CloseKind::Detached => "detached",
        CloseKind::Io => "io",
        CloseKind::LinkClosed => "link_closed",
    }
}

/// Writes the reactor's counters and gauges, every name starting with `evdrive_`.
///
/// Closes are one family with a `reason` label (one series per [`CloseKind`], zeros included,
/// so a rate over any reason is defined from the first scrape), accept errors one family with an
/// `errno` label. Byte counts are in bytes and the longest turn in seconds, the format's base
/// units. The counters are for the whole reactor ([`Stats`] has no per-listener counters).
///
/// # Errors
///
/// [`MetricsError::Duplicate`] if `w` already holds a family of one of these names.
pub fn write_stats(w: &mut MetricsWriter, stats: &Stats) -> Result<(), MetricsError> {
    // A new field of `Stats` gets its line here.
    let n = |x: u64| x as f64;
    w.counter(
        "evdrive_connections_accepted_total",
        "Connections accepted.",
        stats.accepted,
    )?;
    w.counter(
        "evdrive_connections_connected_total",
        "Outgoing connections established.",
        stats.connected,
    )?;
    w.gauge(
        "evdrive_connections_open",
        "Connections open now, outgoing attempts in progress included (rejected clients not).",
        n(stats.open),
    )?;
    w.gauge(
        "evdrive_rejecting_clients",
        "Clients rejected at the connection limit whose goodbye is being sent now.",
        n(stats.rejecting),
    )?;
    w.labeled_counter(
        "evdrive_connections_closed_total",
        "Connections closed, by reason.",
        &["reason"],
        CloseKind::ALL.map(|k| ([close_label(k)], stats.closed_by(k))),
    )?;
    let e = &stats.accept_errors;
    w.labeled_counter(
        "evdrive_accept_errors_total",
        "Errors of accept, by errno (ENOBUFS and ENOMEM counted together).",
        &["errno"],
        [
            (["ECONNABORTED"], e.aborted),
            (["EPROTO"], e.proto),
            (["EINTR"], e.interrupted),
            (["EPERM"], e.perm),
            (["EMFILE"], e.emfile),
            (["ENFILE"], e.enfile),
            (["ENOBUFS_ENOMEM"], e.nomem),
            (["other"], e.other),
        ],
    )?;
    w.counter(
        "evdrive_accept_shed_total",
        "Pending connections accepted and closed at once because descriptors ran out.",
        stats.accept_shed,
    )?;
    w.counter(
        "evdrive_slow_consumer_aborts_total",
        "Connections aborted because their queued output passed the hard cap.",
        stats.slow_consumers,
    )?;
    w.counter(
        "evdrive_budget_sheds_total",
        "Connections aborted to keep the loop-wide output budget.",
        stats.budget_sheds,
    )?;
    w.counter(
        "evdrive_idle_sheds_total",
        "Idle connections closed to admit new ones at the connection limit.",
        stats.idle_sheds,
    )?;
    w.counter(
        "evdrive_rejected_total",
        "Clients accepted at the connection limit only to get a goodbye and be closed (never in \
         the connection counters).",
        stats.rejected,
    )?;
    w.gauge(
        "evdrive_output_queued_bytes",
        "Output bytes queued across all connections now.",
        n(stats.queued_bytes),
    )?;
    w.gauge(
        "evdrive_timers_armed",
        "Timers armed in the wheel at the end of the last loop turn.",
        n(stats.timers_armed),
    )?;
    w.gauge(
        "evdrive_udp_sockets_open",
        "UDP sockets open now, those draining in a shutdown included.",
        n(stats.udp_sockets),
    )?;
    w.counter(
        "evdrive_udp_datagrams_received_total",
        "Datagrams received by UDP sockets, truncated ones included.",
        stats.datagrams_in,
    )?;
    w.counter(
        "evdrive_udp_datagrams_sent_total",
        "Datagrams the kernel took for sending from UDP sockets.",
        stats.datagrams_out,
    )?;
    w.counter(
        "evdrive_udp_datagrams_dropped_total",
        "Datagrams handed to a UDP send and never sent: queue full, drop policy, send error, or \
         still queued at the close.",
        stats.datagrams_dropped,
    )?;
    w.counter(
        "evdrive_received_bytes_total",
        "Bytes received, on connections and UDP sockets.",
        stats.bytes_in,
    )?;
    w.counter(
        "evdrive_sent_bytes_total",
        "Bytes the kernel accepted for sending, on connections and UDP sockets.",
        stats.bytes_out,
    )?;
    w.counter("evdrive_loop_turns_total", "Loop turns.", stats.turns)?;
    w.gauge(
        "evdrive_longest_turn_seconds",
        "The longest time one loop turn spent on work, not waiting in poll.",
        stats.longest_turn.as_secs_f64(),
    )
}

/// The reactor's counters and gauges alone, as [`write_stats`] writes them.
pub fn render_stats(stats: &Stats) -> String {
    let mut w = MetricsWriter::new();
    write_stats(&mut w, stats).expect("a fresh writer holds no family");
    w.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::time::Duration;

    /// Whether `s` is a metric name (`colon`) or a label name of the format.
    fn ident(s: &str, colon: bool) -> bool {
        let ok = |c: char, first: bool| {
            c.is_ascii_alphabetic()
                || c == '_'
                || (colon && c == ':')
                || (!first && c.is_ascii_digit())
        };
        !s.is_empty() && s.chars().enumerate().all(|(i, c)| ok(c, i == 0))
    }

    /// Checks `text` line by line against the exposition format 0.0.4 and returns the samples
    /// by name and labels. Strict where scrapers are: every family has HELP then TYPE then its
    /// samples, once, with the family's own name.
    fn parse(text: &str) -> Vec<(String, String, f64)> {
        assert!(text.ends_with('\n'), "the last line ends with a line feed");
        let mut families = HashSet::new();
        let mut current: Option<(String, bool)> = None; // (name, TYPE seen)
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP name text");
                assert!(!help.is_empty());
                assert!(families.insert(name.to_string()), "{name} twice");
                current = Some((name.to_string(), false));
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                let cur = current.as_mut().expect("HELP before TYPE");
                assert!(cur.0 == name && !cur.1, "{line}");
                assert!(kind == "counter" || kind == "gauge", "{line}");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
                cur.1 = true;
            } else {
                let (series, value) = line.rsplit_once(' ').expect("series value");
                let (name, labels) = match series.split_once('{') {
                    Some((n, l)) => (n, l.strip_suffix('}').expect("closing brace")),
                    None => (series, ""),
                };
                let cur = current.as_ref().expect("a family");
                assert!(cur.0 == name && cur.1, "{line}");
                assert!(ident(name, true), "{line}");
                // Labels: name="value" pairs, values with only \\, \" and \n escaped.
                let mut rest = labels;
                while !rest.is_empty() {
                    let (label, after) = rest.split_once("=\"").expect("label=\"");
                    assert!(ident(label, false) && !label.starts_with("__"), "{line}");
                    let mut chars = after.char_indices();
                    let end = loop {
                        match chars.next().expect("closing quote") {
                            (_, '\\') => {
                                assert!(matches!(chars.next(), Some((_, '\\' | '"' | 'n'))))
                            }
                            (i, '"') => break i,
                            (_, c) => assert!(c != '\n'),
                        }
                    };
                    rest = after[end + 1..]
                        .strip_prefix(',')
                        .unwrap_or(&after[end + 1..]);
                }
                let value = match value {
                    "NaN" => f64::NAN,
                    "+Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    v => v.parse().expect("a number"),
                };
                samples.push((name.to_string(), labels.to_string(), value));
            }
        }
        samples
    }

    #[test]
    fn stats_render_as_valid_exposition() {
        let mut stats = Stats {
            accepted: 7,
            open: 2,
            rejected: 6,
            rejecting: 3,
            udp_sockets: 1,
            datagrams_in: 11,
            datagrams_out: 9,
            datagrams_dropped: 2,
            bytes_in: 100,
            longest_turn: Duration::from_micros(1500),
            ..Stats::default()
        };
        stats.closed[CloseKind::Reset as usize] = 3;
        stats.accept_errors.emfile = 4;
        let mut w = MetricsWriter::new();
        write_stats(&mut w, &stats).unwrap();
        w.gauge("app_keys", "Keys.", 5.0).unwrap();
        let samples = parse(w.as_str());
        let get = |name: &str, labels: &str| {
            samples
                .iter()
                .find(|s| s.0 == name && s.1 == labels)
                .unwrap_or_else(|| panic!("no {name}{{{labels}}}"))
                .2
        };
        assert_eq!(get("evdrive_connections_accepted_total", ""), 7.0);
        assert_eq!(get("evdrive_connections_open", ""), 2.0);
        assert_eq!(get("evdrive_rejecting_clients", ""), 3.0);
        assert_eq!(get("evdrive_rejected_total", ""), 6.0);
        assert_eq!(
            get("evdrive_connections_closed_total", "reason=\"reset\""),
            3.0
        );
        assert_eq!(get("evdrive_accept_errors_total", "errno=\"EMFILE\""), 4.0);
        assert_eq!(get("evdrive_received_bytes_total", ""), 100.0);
        assert_eq!(get("evdrive_udp_sockets_open", ""), 1.0);
        assert_eq!(get("evdrive_udp_datagrams_received_total", ""), 11.0);
        assert_eq!(get("evdrive_udp_datagrams_sent_total", ""), 9.0);
        assert_eq!(get("evdrive_udp_datagrams_dropped_total", ""), 2.0);
        assert_eq!(get("evdrive_longest_turn_seconds", ""), 0.0015);
        assert_eq!(get("app_keys", ""), 5.0);
        let reasons = samples
            .iter()
            .filter(|s| s.0 == "evdrive_connections_closed_total")
            .count();
        assert_eq!(reasons, CloseKind::ALL.len());
        // Writing the stats twice is refused: one family per name.
        assert!(write_stats(&mut w, &stats).is_err());
        assert_eq!(render_stats(&stats), {
            let mut w = MetricsWriter::new();
            write_stats(&mut w, &stats).unwrap();
            w.into_string()
        });
    }
}
