//! [`MetricsWriter`]: the Prometheus text exposition format, version 0.0.4, checked as it is
//! written (see the [module notes](super#implementation-notes)).

use std::collections::HashSet;
use std::fmt::{self, Write as _};

/// Why a metric could not be written. The writer is left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricsError {
    /// A metric name outside `[a-zA-Z_:][a-zA-Z0-9_:]*`, a counter's not ending in `_total`, a
    /// gauge's ending in it, or either ending in `_sum`, `_count` or `_bucket`.
    InvalidName(String),
    /// A label name outside `[a-zA-Z_][a-zA-Z0-9_]*`, starting with `__`, or repeated.
    InvalidLabelName(String),
    /// A family of this name was already written.
    Duplicate(String),
    /// A series of this family has a different number of label values than label names, or
    /// the same label values as another series.
    InvalidSeries(String),
    /// Empty help text (scrapers and linters want every family explained).
    MissingHelp(String),
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsError::InvalidName(n) => write!(f, "invalid metric name {n:?}"),
            MetricsError::InvalidLabelName(n) => write!(f, "invalid label name {n:?}"),
            MetricsError::Duplicate(n) => write!(f, "metric family {n:?} written twice"),
            MetricsError::InvalidSeries(n) => write!(f, "invalid label values in {n:?}"),
            MetricsError::MissingHelp(n) => write!(f, "metric {n:?} has no help text"),
        }
    }
}

impl std::error::Error for MetricsError {}

/// The two metric types this writer emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Only goes up (until the process restarts); named `…_total`.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// A sample value: counters are integers, gauges may be fractions.
#[derive(Debug, Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

/// Builds a Prometheus text exposition (format 0.0.4), one metric family per call.
///
/// Each call writes a whole family: `# HELP`, `# TYPE` and its samples. Names and labels are
/// checked first (see the [module notes](super#implementation-notes)); a rejected call writes
/// nothing.
#[derive(Debug, Default)]
pub struct MetricsWriter {
    /// The text so far; always whole lines.
    out: String,
    /// Every family name written, so no name is written twice.
    families: HashSet<String>,
}

impl MetricsWriter {
    /// An empty exposition.
    pub fn new() -> Self {
        MetricsWriter::default()
    }

    /// Writes a counter without labels.
    ///
    /// # Errors
    ///
    /// [`MetricsError`] if `name` is invalid, does not end in `_total`, or was written already,
    /// or if `help` is empty.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> Result<(), MetricsError> {
        self.family(name, help, Kind::Counter, &[], [([], Value::Int(value))])
    }

    /// Writes a gauge without labels.
    ///
    /// # Errors
    ///
    /// As [`counter`](Self::counter), except that a gauge's name must not end in `_total`.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) -> Result<(), MetricsError> {
        self.family(name, help, Kind::Gauge, &[], [([], Value::Float(value))])
    }

    /// Writes a counter family with one series per item of `series`: each gives a value for
    /// every name of `labels`, in order.
    ///
    /// # Errors
    ///
    /// As [`counter`](Self::counter), and if a label name is invalid or repeated, or a series
    /// has the wrong number of values or repeats another's.
    pub fn labeled_counter<'a, V, I>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        series: I,
    ) -> Result<(), MetricsError>
    where
        V: AsRef<[&'a str]>,
        I: IntoIterator<Item = (V, u64)>,
    {
        let series = series.into_iter().map(|(v, n)| (v, Value::Int(n)));
        self.family(name, help, Kind::Counter, labels, series)
    }

    /// Writes a gauge family with one series per item of `series`, as
    /// [`labeled_counter`](Self::labeled_counter).
    ///
    /// # Errors
    ///
    /// As [`labeled_counter`](Self::labeled_counter), except that a gauge's name must not end in
    /// `_total`.
    pub fn labeled_gauge<'a, V, I>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        series: I,
    ) -> Result<(), MetricsError>
    where
        V: AsRef<[&'a str]>,
        I: IntoIterator<Item = (V, f64)>,
    {
        let series = series.into_iter().map(|(v, x)| (v, Value::Float(x)));
        self.family(name, help, Kind::Gauge, labels, series)
    }

    /// The exposition so far.
    pub fn as_str(&self) -> &str {
        &self.out
    }

    /// The exposition, ready to send.
    pub fn into_string(self) -> String {
        self.out
    }

    /// Checks then writes one family.
    fn family<'a, V, I>(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        labels: &[&str],
        series: I,
    ) -> Result<(), MetricsError>
    where
        V: AsRef<[&'a str]>,
        I: IntoIterator<Item = (V, Value)>,
    {
        // Step 1: the family's name, help and label names.
        check_name(name, kind)?;
        if self.families.contains(name) {
            return Err(MetricsError::Duplicate(name.to_string()));
        }
        if help.trim().is_empty() {
            return Err(MetricsError::MissingHelp(name.to_string()));
        }
        for (i, label) in labels.iter().enumerate() {
            if !is_label_name(label) || labels[..i].contains(label) {
                return Err(MetricsError::InvalidLabelName(label.to_string()));
            }
        }

        // Step 2: every sample line, into a buffer of its own so a bad series writes nothing.
        let mut lines = String::new();
        let mut seen = HashSet::new();
        for (values, value) in series {
            let values = values.as_ref();
            if values.len() != labels.len() {
                return Err(MetricsError::InvalidSeries(name.to_string()));
            }
            let start = lines.len();
            lines.push_str(name);
            if !labels.is_empty() {
                lines.push('{');
                for (i, (label, v)) in labels.iter().zip(values).enumerate() {
                    if i > 0 {
                        lines.push(',');
                    }
                    lines.push_str(label);
                    lines.push_str("=\"");
                    escape_label_value(&mut lines, v);
                    lines.push('"');
                }
                lines.push('}');
            }
            if !seen.insert(lines[start..].to_string()) {
                return Err(MetricsError::InvalidSeries(name.to_string()));
            }
            lines.push(' ');
            write_value(&mut lines, value);
            lines.push('\n');
        }

        // Step 3: the header, then the samples.
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_help(&mut self.out, help);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push_str(match kind {
            Kind::Counter => " counter\n",
            Kind::Gauge => " gauge\n",
        });
        self.out.push_str(&lines);
        self.families.insert(name.to_string());
        Ok(())
    }
}

/// Checks a metric name against the format and the naming conventions of its kind.
fn check_name(name: &str, kind: Kind) -> Result<(), MetricsError> {
    let mut bytes = name.bytes();
    let valid = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
    let total = name.ends_with("_total");
    let reserved = ["_sum", "_count", "_bucket"]
        .iter()
        .any(|s| name.ends_with(s));
    if !valid || reserved || total != (kind == Kind::Counter) {
        return Err(MetricsError::InvalidName(name.to_string()));
    }
    Ok(())
}

/// Whether `name` may be a label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`.
fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.starts_with("__")
}

/// Help text: a backslash and a line feed are the only characters escaped.
fn escape_help(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A label value: backslash, double quote and line feed are escaped.
fn escape_label_value(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value as the format spells it (Go's float syntax: `NaN`, `+Inf`, `-Inf`).
fn write_value(out: &mut String, value: Value) {
    match value {
        Value::Int(n) => write!(out, "{n}"),
        Value::Float(x) if x.is_nan() => write!(out, "NaN"),
        Value::Float(x) if x == f64::INFINITY => write!(out, "+Inf"),
        Value::Float(x) if x == f64::NEG_INFINITY => write!(out, "-Inf"),
        // Rust writes finite floats as plain decimals ("0.25", "1000000"), which Go parses.
        Value::Float(x) => write!(out, "{x}"),
    }
    .expect("writing to a String cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut w = MetricsWriter::new();
        w.labeled_gauge(
            "x",
            "a \\ b\nc \"q\"",
            &["path"],
            [(["C:\\dir\n\"quoted\" é"], 1.5)],
        )
        .unwrap();
        assert_eq!(
            w.as_str(),
            "# HELP x a \\\\ b\\nc \"q\"\n# TYPE x gauge\n\
             x{path=\"C:\\\\dir\\n\\\"quoted\\\" é\"} 1.5\n"
        );
    }

    #[test]
    fn values_use_the_formats_spelling() {
        let mut w = MetricsWriter::new();
        w.labeled_gauge(
            "g",
            "h",
            &["k"],
            [
                (["a"], f64::NAN),
                (["b"], f64::INFINITY),
                (["c"], f64::NEG_INFINITY),
                (["d"], 0.25),
                (["e"], 1e21),
            ],
        )
        .unwrap();
        let values: Vec<&str> = w
            .as_str()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(
            values,
            ["NaN", "+Inf", "-Inf", "0.25", "1000000000000000000000"]
        );
    }

    #[test]
    fn bad_names_and_series_are_refused_and_write_nothing() {
        let mut w = MetricsWriter::new();
        w.counter("ok_total", "h", 1).unwrap();
        let before = w.as_str().to_string();
        let invalid = |e: Result<(), MetricsError>| assert!(e.is_err(), "accepted");
        invalid(w.counter("ok_total", "h", 1)); // one family per name
        invalid(w.counter("requests", "h", 1)); // counters end in _total
        invalid(w.gauge("open_total", "h", 1.0)); // gauges do not
        invalid(w.gauge("9lives", "h", 1.0));
        invalid(w.gauge("a-b", "h", 1.0));
        invalid(w.gauge("", "h", 1.0));
        invalid(w.gauge("latency_count", "h", 1.0));
        invalid(w.gauge("nohelp", " ", 1.0));
        invalid(w.labeled_gauge("g", "h", &["__name"], [(["v"], 1.0)]));
        invalid(w.labeled_gauge("g", "h", &["a b"], [(["v"], 1.0)]));
        invalid(w.labeled_gauge("g", "h", &["k", "k"], [(["v", "w"], 1.0)]));
        invalid(w.labeled_gauge("g", "h", &["k"], [(["v", "w"], 1.0)]));
        invalid(w.labeled_gauge("g", "h", &["k"], [(["v"], 1.0), (["v"], 2.0)]));
        assert_eq!(w.as_str(), before);
        // A colon is allowed in metric names (recording rules use it), not in label names.
        w.gauge("job:rate", "h", 1.0).unwrap();
        invalid(w.labeled_gauge("g", "h", &["a:b"], [(["v"], 1.0)]));
    }
}
