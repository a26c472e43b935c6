//! A member's side of the load: the form of the sender's lines, and the checks each member
//! makes of its stream (every line, in order, nothing else once the lines have begun).
//!
//! Line `k` of the sender is `m` + `k` in ten digits + a space + `x` padding, `size` bytes in
//! all; a member receives it as `<NICK> ` + that + `\r\n`. A member checks a line by its
//! length, prefix, number and padding, without formatting anything.

use std::io::{self, Read};

use mio::net::TcpStream;

/// Digits of a line's number.
pub(super) const DIGITS: usize = 10;

/// Bytes of a line's text before its padding: `m`, the number, a space.
pub(super) const HEAD: usize = DIGITS + 2;

/// Where a member is in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Waiting for the welcome line.
    Joining,
    /// Greeted; notices (`* …`) may come until the first line from the sender.
    Greeted,
    /// Received lines `0..next` from the sender, in order.
    Receiving,
    /// Received something wrong: no longer checked.
    Failed,
}

/// One connection of the load.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) stage: Stage,
    /// The next line number expected.
    pub(super) next: u64,
    /// The unfinished line left from the last read.
    pub(super) partial: Vec<u8>,
    /// Whether the peer closed.
    pub(super) closed: bool,
}

/// What a line must look like.
#[derive(Debug)]
pub(super) struct Expect {
    /// `<NICK> ` of the sender.
    pub(super) prefix: Vec<u8>,
    /// The padding after the number (without `\r\n`).
    pub(super) padding: Vec<u8>,
}

impl Expect {
    /// The number of `line` (terminator stripped), if it is one of the sender's lines.
    pub(super) fn number(&self, line: &[u8]) -> Option<u64> {
        let rest = line.strip_prefix(self.prefix.as_slice())?;
        let (head, pad) = (rest.get(..HEAD)?, &rest[HEAD..]);
        if head[0] != b'm' || head[HEAD - 1] != b' ' || pad != self.padding.as_slice() {
            return None;
        }
        head[1..=DIGITS].iter().try_fold(0u64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
        })
    }
}

/// The first problem, kept; later ones only counted.
pub(super) fn fail(first: &mut Option<String>, what: String) {
    if first.is_none() {
        *first = Some(what);
    }
}

/// Reads what `conn` has, splits it into lines and checks each. Returns the lines it
/// received from the sender.
pub(super) fn read_member(
    conn: &mut Conn,
    i: usize,
    buf: &mut [u8],
    expect: Option<&Expect>,
    first_error: &mut Option<String>,
) -> u64 {
    let mut got = 0;
    loop {
        let n = match conn.stream.read(buf) {
            Ok(0) => {
                conn.closed = true;
                return got;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                fail(first_error, format!("member {i}: {e}"));
                conn.closed = true;
                conn.stage = Stage::Failed;
                return got;
            }
        };
        let mut data = &buf[..n];
        while let Some(end) = data.iter().position(|&b| b == b'\n') {
            let line = if conn.partial.is_empty() {
                &data[..end]
            } else {
                conn.partial.extend_from_slice(&data[..end]);
                &conn.partial[..]
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match check_line(conn.stage, conn.next, line, expect) {
                Ok(stage) => {
                    let one = u64::from(stage == Stage::Receiving);
                    conn.stage = stage;
                    conn.next += one;
                    got += one;
                }
                Err(why) => {
                    if conn.stage != Stage::Failed {
                        let text = String::from_utf8_lossy(&line[..line.len().min(80)]);
                        fail(first_error, format!("member {i}: {why}: {text:?}"));
                    }
                    conn.stage = Stage::Failed;
                }
            }
            conn.partial.clear();
            data = &data[end + 1..];
        }
        conn.partial.extend_from_slice(data);
        // A short read: whatever arrives later raises a new edge.
        if n < buf.len() {
            return got;
        }
    }
}

/// The stage after `line` arrives at a member at `stage` expecting line `next`, or why the
/// line is wrong.
pub(super) fn check_line(
    stage: Stage,
    next: u64,
    line: &[u8],
    expect: Option<&Expect>,
) -> Result<Stage, &'static str> {
    match stage {
        Stage::Failed => Ok(Stage::Failed),
        Stage::Joining if line.starts_with(b"* welcome") => Ok(Stage::Greeted),
        Stage::Joining => Err("expected the welcome line"),
        Stage::Greeted | Stage::Receiving => {
            match expect.and_then(|e| e.number(line)) {
                Some(n) if n == next => Ok(Stage::Receiving),
                Some(_) => Err("line out of order (or one missing)"),
                // Notices about other members joining, before the first line.
                None if stage == Stage::Greeted && line.starts_with(b"* ") => Ok(Stage::Greeted),
                None => Err("unexpected line"),
            }
        }
    }
}

/// Appends line `k` (`size` bytes of text and `\n`) to `out`.
pub(super) fn push_line(out: &mut Vec<u8>, k: u64, size: usize) {
    out.push(b'm');
    let digits = format!("{k:0width$}", width = DIGITS);
    out.extend_from_slice(&digits.as_bytes()[digits.len() - DIGITS..]);
    out.push(b' ');
    out.resize(out.len() + size - HEAD, b'x');
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(size: usize) -> Expect {
        Expect {
            prefix: b"<guest9> ".to_vec(),
            padding: vec![b'x'; size - HEAD],
        }
    }

    #[test]
    fn a_line_sent_is_the_line_a_member_checks() {
        let mut out = Vec::new();
        push_line(&mut out, 42, 64);
        assert_eq!(out.len(), 65);
        let mut line = b"<guest9> ".to_vec();
        line.extend_from_slice(&out[..64]);
        assert_eq!(expect(64).number(&line), Some(42));
        line[20] = b'y';
        assert_eq!(expect(64).number(&line), None);
        assert_eq!(expect(64).number(b"<guest9> m12"), None);
    }

    #[test]
    fn members_accept_notices_only_before_the_first_line() {
        let e = expect(20);
        let mut out = Vec::new();
        push_line(&mut out, 0, 20);
        let mut line = b"<guest9> ".to_vec();
        line.extend_from_slice(&out[..20]);
        assert_eq!(
            check_line(Stage::Greeted, 0, b"* guest3 joined", Some(&e)),
            Ok(Stage::Greeted)
        );
        assert_eq!(
            check_line(Stage::Greeted, 0, &line, Some(&e)),
            Ok(Stage::Receiving)
        );
        assert!(check_line(Stage::Receiving, 1, b"* guest3 joined", Some(&e)).is_err());
        assert!(check_line(Stage::Receiving, 1, &line, Some(&e)).is_err());
        assert!(check_line(Stage::Joining, 0, &line, Some(&e)).is_err());
    }
}
