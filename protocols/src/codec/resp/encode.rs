//! Replies a server sends, and requests for clients: free functions appending to a `Vec<u8>`.

use crate::codec::num::{write_i64, write_u64};

/// Appends `bytes` with `\r` and `\n` replaced by spaces, which would otherwise end a simple
/// string or an error early (Redis does the same).
fn extend_one_line(dst: &mut Vec<u8>, bytes: &[u8]) {
    dst.extend(
        bytes
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

/// Appends a simple string reply: `+OK\r\n`. `\r` and `\n` in `s` become spaces.
pub fn encode_simple_string(dst: &mut Vec<u8>, s: &[u8]) {
    dst.reserve(s.len() + 3);
    dst.push(b'+');
    extend_one_line(dst, s);
    dst.extend_from_slice(b"\r\n");
}

/// Appends an error reply: `-ERR unknown command\r\n` for `msg = b"ERR unknown command"`.
///
/// Start `msg` with an error code (`ERR`, `WRONGTYPE`…) as Redis does. `\r` and `\n` in `msg`
/// become spaces.
pub fn encode_error(dst: &mut Vec<u8>, msg: &[u8]) {
    dst.reserve(msg.len() + 3);
    dst.push(b'-');
    extend_one_line(dst, msg);
    dst.extend_from_slice(b"\r\n");
}

/// Appends an integer reply: `:42\r\n`.
pub fn encode_integer(dst: &mut Vec<u8>, n: i64) {
    dst.push(b':');
    write_i64(dst, n);
    dst.extend_from_slice(b"\r\n");
}

/// Appends a bulk string reply: `$5\r\nhello\r\n`. Any bytes are allowed in `data`.
pub fn encode_bulk(dst: &mut Vec<u8>, data: &[u8]) {
    dst.reserve(data.len() + 16);
    dst.push(b'$');
    write_u64(dst, data.len() as u64);
    dst.extend_from_slice(b"\r\n");
    dst.extend_from_slice(data);
    dst.extend_from_slice(b"\r\n");
}

/// Appends the null bulk reply, `$-1\r\n` (a missing key).
pub fn encode_null_bulk(dst: &mut Vec<u8>) {
    dst.extend_from_slice(b"$-1\r\n");
}

/// Appends an array header, `*<len>\r\n`; the `len` elements follow as replies of their own.
pub fn encode_array_header(dst: &mut Vec<u8>, len: usize) {
    dst.push(b'*');
    write_u64(dst, len as u64);
    dst.extend_from_slice(b"\r\n");
}

/// Appends the null array reply, `*-1\r\n`.
pub fn encode_null_array(dst: &mut Vec<u8>) {
    dst.extend_from_slice(b"*-1\r\n");
}

/// Appends a request as an array of bulk strings, the form client libraries send.
pub fn encode_command(dst: &mut Vec<u8>, args: &[&[u8]]) {
    encode_array_header(dst, args.len());
    for arg in args {
        encode_bulk(dst, arg);
    }
}
