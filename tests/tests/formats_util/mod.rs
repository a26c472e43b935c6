//! Strict parsers of the two formats the admin endpoint serves (`admin.rs`): the Prometheus
//! text format 0.0.4 and JSON. Written from the specifications, sharing nothing with the
//! writers they check, so a writer's mistake cannot be mirrored by its checker.

use std::collections::{HashMap, HashSet};

/// Checks `text` against the Prometheus text format 0.0.4 and returns every sample by its
/// series (`name` or `name{labels}` as written). Every family has `# HELP`, then `# TYPE`, then
/// its samples, once; counters end in `_total`; names, label names, escapes and values are
/// those the format allows.
pub fn parse_exposition(text: &str) -> HashMap<String, f64> {
    fn ident(s: &str, colon: bool) -> bool {
        let ok = |c: char, first: bool| {
            c.is_ascii_alphabetic()
                || c == '_'
                || (colon && c == ':')
                || (!first && c.is_ascii_digit())
        };
        !s.is_empty() && s.chars().enumerate().all(|(i, c)| ok(c, i == 0))
    }
    assert!(text.ends_with('\n'), "the last line ends with a line feed");
    let mut families = HashSet::new();
    let mut family: Option<(String, bool)> = None; // (name, whether TYPE was seen)
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("# HELP name text");
            assert!(ident(name, true) && !help.is_empty(), "{line}");
            assert!(families.insert(name.to_string()), "family {name} twice");
            family = Some((name.to_string(), false));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            let f = family.as_mut().expect("# HELP before # TYPE");
            assert!(f.0 == name && !f.1, "{line}");
            assert!(matches!(kind, "counter" | "gauge"), "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            f.1 = true;
        } else {
            assert!(!line.starts_with('#'), "unknown comment {line}");
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.strip_suffix('}').expect("a closing brace")),
                None => (series, ""),
            };
            let f = family.as_ref().expect("a family");
            assert!(f.0 == name && f.1, "{line} outside its family");
            let mut rest = labels;
            while !rest.is_empty() {
                let (label, after) = rest.split_once("=\"").expect("label=\"value\"");
                assert!(ident(label, false) && !label.starts_with("__"), "{line}");
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next().expect("a closing quote") {
                        (_, '\\') => assert!(
                            matches!(chars.next(), Some((_, '\\' | '"' | 'n'))),
                            "bad escape in {line}"
                        ),
                        (i, '"') => break i,
                        _ => {}
                    }
                };
                rest = &after[end + 1..];
                rest = rest.strip_prefix(',').unwrap_or(rest);
            }
            let value = match value {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            assert!(
                samples.insert(series.to_string(), value).is_none(),
                "{series} twice"
            );
        }
    }
    samples
}

/// A strict JSON parser (RFC 8259), so the endpoint's JSON is checked by code that does not
/// share the writer's assumptions: no trailing commas, no bare control characters in strings,
/// no leading zeros, no NaN, no duplicate keys, nothing after the value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    /// Members in the order written.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses a whole document.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            s: text.as_bytes(),
            at: 0,
        };
        let value = p.value()?;
        p.ws();
        if p.at != p.s.len() {
            return Err(format!("trailing bytes at {}", p.at));
        }
        Ok(value)
    }

    /// The keys of an object, in order (none for anything else).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(members) => members.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Recursive descent over the bytes of one document.
struct JsonParser<'a> {
    s: &'a [u8],
    at: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.s.get(self.at) == Some(&b);
        self.at += usize::from(hit);
        hit
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.at))
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        let rest = &self.s[self.at..];
        for (word, value) in [
            (&b"null"[..], Json::Null),
            (b"true", Json::Bool(true)),
            (b"false", Json::Bool(false)),
        ] {
            if rest.starts_with(word) {
                self.at += word.len();
                return Ok(value);
            }
        }
        match rest.first() {
            Some(b'"') => self.string().map(Json::Str),
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat(b']') {
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    if self.eat(b']') {
                        return Ok(Json::Arr(items));
                    }
                    if !self.eat(b',') {
                        return self.err("expected , or ]");
                    }
                }
            }
            Some(b'{') => {
                self.at += 1;
                let mut members: Vec<(String, Json)> = Vec::new();
                self.ws();
                if self.eat(b'}') {
                    return Ok(Json::Obj(members));
                }
                loop {
                    self.ws();
                    if self.s.get(self.at) != Some(&b'"') {
                        return self.err("expected a key");
                    }
                    let key = self.string()?;
                    if members.iter().any(|(k, _)| *k == key) {
                        return self.err("duplicate key");
                    }
                    self.ws();
                    if !self.eat(b':') {
                        return self.err("expected :");
                    }
                    members.push((key, self.value()?));
                    self.ws();
                    if self.eat(b'}') {
                        return Ok(Json::Obj(members));
                    }
                    if !self.eat(b',') {
                        return self.err("expected , or }");
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.err("expected a value"),
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Result<Json, String> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let from = p.at;
            while p.s.get(p.at).is_some_and(u8::is_ascii_digit) {
                p.at += 1;
            }
            p.at - from
        };
        self.eat(b'-');
        if self.eat(b'0') {
            if self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
                return self.err("leading zero");
            }
        } else if digits(self) == 0 {
            return self.err("expected digits");
        }
        if self.eat(b'.') && digits(self) == 0 {
            return self.err("expected fraction digits");
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            if digits(self) == 0 {
                return self.err("expected exponent digits");
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.at]).expect("ASCII");
        Ok(Json::Num(text.parse().expect("a JSON number is a float")))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let hex = self.s.get(self.at..self.at + 4).ok_or("short \\u escape")?;
        let hex = std::str::from_utf8(hex).map_err(|e| e.to_string())?;
        self.at += 4;
        u32::from_str_radix(hex, 16).map_err(|e| e.to_string())
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1; // the opening quote
        let mut out = String::new();
        loop {
            let rest = &self.s[self.at..];
            // Runs of plain characters, copied as UTF-8.
            let run = rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .ok_or("unterminated string")?;
            out.push_str(std::str::from_utf8(&rest[..run]).map_err(|e| e.to_string())?);
            self.at += run;
            match self.s[self.at] {
                b'"' => {
                    self.at += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.at += 1;
                    let escape = *self.s.get(self.at).ok_or("unterminated escape")?;
                    self.at += 1;
                    out.push(match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut c = self.hex4()?;
                            if (0xd800..0xdc00).contains(&c) {
                                if !(self.eat(b'\\') && self.eat(b'u')) {
                                    return self.err("lone surrogate");
                                }
                                let low = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&low) {
                                    return self.err("bad low surrogate");
                                }
                                c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
                            }
                            char::from_u32(c).ok_or("lone surrogate")?
                        }
                        _ => return self.err("unknown escape"),
                    });
                }
                _ => return self.err("control character in a string"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_parser_is_strict() {
        let good = r#" [ {"a": -0.5e+2, "b": "x\"\\\n\u00e9\ud83d\ude00",
                        "c": [true, false, null]}, [] ] "#;
        let doc = Json::parse(good).unwrap();
        let Json::Arr(items) = doc else { panic!() };
        assert_eq!(items[0].get("a"), Some(&Json::Num(-50.0)));
        assert_eq!(items[0].get("b"), Some(&Json::Str("x\"\\\né😀".into())));
        for bad in [
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            "NaN",
            "\"a\nb\"",
            "\"\\x\"",
            "[1] 2",
            "{\"a\":1,\"a\":2}",
            "\"\\ud800\"",
            "{a:1}",
            "",
        ] {
            assert!(Json::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn the_exposition_parser_is_strict() {
        let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"v\\\"\\n\"} 1\n";
        assert_eq!(parse_exposition(good)["a_total{k=\"v\\\"\\n\"}"], 1.0);
        for bad in [
            "a_total 1\n",                                     // no family
            "# HELP a A.\n# TYPE a counter\na 1\n",            // counter without _total
            "# HELP a A.\n# TYPE a gauge\nb 1\n",              // another name
            "# HELP a A.\n# TYPE a gauge\na 1\n# HELP a A.\n", // a family twice
            "# HELP a A.\n# TYPE a gauge\na{k=\"\\x\"} 1\n",   // bad escape
            "# HELP a A.\n# TYPE a gauge\na{__k=\"v\"} 1\n",   // reserved label
            "# HELP a A.\n# TYPE a gauge\na one\n",            // not a number
            "# HELP a A.\n# TYPE a gauge\na 1",                // no final line feed
        ] {
            let caught = std::panic::catch_unwind(|| parse_exposition(bad));
            assert!(caught.is_err(), "accepted {bad:?}");
        }
    }
}
