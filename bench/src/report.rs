//! What a load run measured, and its two renderings: a table for people, JSON for scripts.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

/// The result of one load run (or of several threads' runs, merged).
#[derive(Debug, Clone)]
pub struct Summary {
    /// Which load shape produced it: `"echo"` or `"stream"`.
    pub mode: &'static str,
    /// Connections that were opened.
    pub connections: usize,
    /// Bytes per message (per write in stream mode).
    pub size: usize,
    /// Messages in flight per connection.
    pub depth: usize,
    /// Client threads, each with its own event loop.
    pub threads: usize,
    /// Length of the measured window (after warm-up, before the drain).
    pub window: Duration,
    /// Messages whose echo completed inside the window.
    pub messages: u64,
    /// Echoed bytes received inside the window.
    pub bytes: u64,
    /// Messages completed over the whole run, warm-up and drain included: the divisor for
    /// figures that a script measures over the client's whole life (server CPU, system calls).
    pub total_messages: u64,
    /// Echoed bytes received over the whole run.
    pub total_bytes: u64,
    /// Connections that failed (closed, reset, wrong echo) before the run ended.
    pub errors: u64,
    /// The first failure, to tell the user what went wrong.
    pub first_error: Option<String>,
    /// Round-trip latency of messages completed inside the window, in nanoseconds.
    pub latency: Histogram<u64>,
}

/// Largest latency the histograms hold: one minute, in nanoseconds.
pub const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// A histogram for round-trip latencies in nanoseconds with three significant figures.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds")
}

impl Summary {
    /// An empty summary for `mode`, to be filled by a run.
    pub fn new(mode: &'static str, connections: usize, size: usize, depth: usize) -> Self {
        Self {
            mode,
            connections,
            size,
            depth,
            threads: 1,
            window: Duration::ZERO,
            messages: 0,
            bytes: 0,
            total_messages: 0,
            total_bytes: 0,
            errors: 0,
            first_error: None,
            latency: latency_histogram(),
        }
    }

    /// Folds another thread's summary of the same run into this one. The window becomes the
    /// longer of the two, since the threads ran side by side.
    pub fn merge(&mut self, other: &Summary) {
        self.connections += other.connections;
        self.threads += other.threads;
        self.window = self.window.max(other.window);
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.total_messages += other.total_messages;
        self.total_bytes += other.total_bytes;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        self.latency
            .add(&other.latency)
            .expect("histograms with equal bounds");
    }

    /// Messages per second inside the window.
    pub fn msgs_per_sec(&self) -> f64 {
        per_sec(self.messages as f64, self.window)
    }

    /// Echoed megabytes (10^6 bytes, one direction) per second inside the window.
    pub fn mb_per_sec(&self) -> f64 {
        per_sec(self.bytes as f64 / 1e6, self.window)
    }

    /// Latency at `quantile` (0.0..=1.0) in microseconds.
    pub fn latency_us(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1e3
    }

    /// The summary as one JSON object on one line.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            concat!(
                "{{\"mode\":\"{}\",\"connections\":{},\"size\":{},\"depth\":{},\"threads\":{},",
                "\"window_s\":{:.6},\"messages\":{},\"bytes\":{},\"total_messages\":{},",
                "\"total_bytes\":{},\"msgs_per_s\":{:.1},\"mb_per_s\":{:.3},",
                "\"latency_us\":{{\"p50\":{:.1},\"p99\":{:.1},\"p999\":{:.1},\"max\":{:.1},",
                "\"mean\":{:.1}}},\"errors\":{},\"first_error\":{}}}"
            ),
            self.mode,
            self.connections,
            self.size,
            self.depth,
            self.threads,
            self.window.as_secs_f64(),
            self.messages,
            self.bytes,
            self.total_messages,
            self.total_bytes,
            self.msgs_per_sec(),
            self.mb_per_sec(),
            self.latency_us(0.50),
            self.latency_us(0.99),
            self.latency_us(0.999),
            self.latency.max() as f64 / 1e3,
            self.latency.mean() / 1e3,
            self.errors,
            match &self.first_error {
                Some(e) => json_string(e),
                None => "null".to_string(),
            },
        );
        s
    }

    /// The summary as a small table for people.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} mode: {} connections x {} B, depth {}, {} thread(s), window {:.2} s",
            self.mode,
            self.connections,
            self.size,
            self.depth,
            self.threads,
            self.window.as_secs_f64()
        );
        let rows = [
            ("messages", format!("{}", self.messages)),
            ("messages/s", format!("{:.0}", self.msgs_per_sec())),
            ("MB/s (echoed)", format!("{:.2}", self.mb_per_sec())),
            ("latency p50", format!("{:.1} us", self.latency_us(0.50))),
            ("latency p99", format!("{:.1} us", self.latency_us(0.99))),
            ("latency p99.9", format!("{:.1} us", self.latency_us(0.999))),
            (
                "latency max",
                format!("{:.1} us", self.latency.max() as f64 / 1e3),
            ),
            ("errors", format!("{}", self.errors)),
        ];
        for (name, value) in rows {
            let _ = writeln!(s, "  {name:<16} {value:>14}");
        }
        if let Some(e) = &self.first_error {
            let _ = writeln!(s, "  first error: {e}");
        }
        s
    }
}

/// `amount / window`, or 0 for an empty window.
fn per_sec(amount: f64, window: Duration) -> f64 {
    let secs = window.as_secs_f64();
    if secs > 0.0 {
        amount / secs
    } else {
        0.0
    }
}

/// `s` as a quoted JSON string.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parses a duration written as `10s`, `500ms`, `2m`, `1.5` (seconds) or `100us`.
///
/// # Errors
///
/// A message naming the text that is not a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 10s, 500ms, 2m)"))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" => 1e-6,
        "m" => 60.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{text}` (use us, ms, s or m)"
            ))
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("`{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_each_unit() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn merged_summaries_add_counts_and_keep_the_longer_window() {
        let mut a = Summary::new("echo", 2, 64, 1);
        a.window = Duration::from_secs(2);
        a.messages = 100;
        a.bytes = 6400;
        a.latency.record(1_000).unwrap();
        let mut b = a.clone();
        b.window = Duration::from_secs(3);
        b.first_error = Some("reset".into());
        a.merge(&b);
        assert_eq!(a.connections, 4);
        assert_eq!(a.messages, 200);
        assert_eq!(a.window, Duration::from_secs(3));
        assert_eq!(a.latency.len(), 2);
        assert_eq!(a.first_error.as_deref(), Some("reset"));
        assert!((a.msgs_per_sec() - 200.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        let json = Summary::new("echo", 1, 64, 1).to_json();
        assert!(json.starts_with("{\"mode\":\"echo\""));
        assert!(json.ends_with("\"first_error\":null}"));
    }
}
