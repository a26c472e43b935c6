//! A strict reader of RESP2 replies, to check what a server sends back.

/// How deep arrays may nest before a reply counts as invalid (the KV server never nests).
const MAX_DEPTH: usize = 8;

/// Splits `out` into whole RESP2 replies.
///
/// # Panics
///
/// If `out` is not a sequence of whole, valid replies: a bad type byte, a bad number, a missing
/// `\r\n`, a line with a stray `\r` or `\n`, or a reply cut short.
pub(crate) fn split_replies(out: &[u8]) -> Vec<&[u8]> {
    let mut at = 0;
    let mut replies = Vec::new();
    while at < out.len() {
        match reply(out, at, 0) {
            Some(end) => {
                replies.push(&out[at..end]);
                at = end;
            }
            None => panic!(
                "invalid RESP reply at byte {at}: {:?}",
                String::from_utf8_lossy(&out[at..out.len().min(at + 80)])
            ),
        }
    }
    replies
}

/// The number of whole RESP2 replies in `out`.
///
/// # Panics
///
/// As [`split_replies`].
pub(crate) fn count_replies(out: &[u8]) -> usize {
    split_replies(out).len()
}

/// The end of the reply starting at `at`, or `None` if it is invalid or unfinished.
fn reply(out: &[u8], at: usize, depth: usize) -> Option<usize> {
    let (&kind, _) = out.get(at..)?.split_first()?;
    let (line, next) = line(out, at + 1)?;
    match kind {
        // Simple strings and errors: any bytes but CR and LF.
        b'+' | b'-' => Some(next),
        b':' => number(line).map(|_| next),
        b'$' => match number(line)? {
            -1 => Some(next),
            n if n >= 0 => {
                let end = next.checked_add(usize::try_from(n).ok()?)?;
                (out.get(end..end + 2)? == b"\r\n").then_some(end + 2)
            }
            _ => None,
        },
        b'*' if depth < MAX_DEPTH => match number(line)? {
            -1 => Some(next),
            n if n >= 0 => (0..n).try_fold(next, |at, _| reply(out, at, depth + 1)),
            _ => None,
        },
        _ => None,
    }
}

/// The line starting at `at` without its `\r\n`, and where the next one starts; `None` if it
/// holds a lone `\r` or `\n` or has no end.
fn line(out: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = out.get(at..)?;
    let end = rest.iter().position(|&b| b == b'\r' || b == b'\n')?;
    (rest.get(end..end + 2)? == b"\r\n").then_some((&rest[..end], at + end + 2))
}

/// A RESP integer: an optional `-` and at least one digit, within `i64`.
fn number(line: &[u8]) -> Option<i64> {
    let digits = line.strip_prefix(b"-").unwrap_or(line);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(line).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_kind() {
        let out = b"+OK\r\n-ERR x\r\n:42\r\n:-1\r\n$3\r\na\rb\r\n$-1\r\n$0\r\n\r\n*2\r\n$1\r\nx\r\n:1\r\n*-1\r\n*0\r\n";
        assert_eq!(count_replies(out), 10);
        assert_eq!(count_replies(b""), 0);
    }

    #[test]
    #[should_panic(expected = "invalid RESP reply")]
    fn refuses_a_cut_bulk() {
        count_replies(b"$3\r\nab\r\n");
    }

    #[test]
    fn refuses_bad_replies() {
        for bad in [
            &b"+a\nb\r\n"[..],
            b"?x\r\n",
            b":x\r\n",
            b":\r\n",
            b"$-2\r\n",
            b"*2\r\n:1\r\n",
            b"+OK",
        ] {
            assert_eq!(
                reply(bad, 0, 0).filter(|&e| e == bad.len()),
                None,
                "{bad:?}"
            );
        }
    }
}
