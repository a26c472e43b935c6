//! Unit tests of the RESP decoder and encoders.

use super::*;
use crate::codec::Decoder;

/// Decodes one command into owned arguments and the consumed count.
/// A command's arguments, owned.
type Owned = Vec<Vec<u8>>;

fn one(codec: &mut RespCodec, buf: &[u8]) -> Result<Option<(Owned, usize)>, RespError> {
    codec
        .decode(buf)
        .map(|o| o.map(|(cmd, n)| (cmd.args().map(<[u8]>::to_vec).collect(), n)))
}

fn args(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|s| s.as_bytes().to_vec()).collect()
}

#[test]
fn array_command() {
    let mut c = RespCodec::new();
    let wire = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    assert_eq!(
        one(&mut c, wire),
        Ok(Some((args(&["GET", "k"]), wire.len())))
    );
    let (cmd, _) = c.decode(wire).unwrap().unwrap();
    assert_eq!(cmd.len(), 2);
    assert_eq!(cmd.args().len(), 2);
    assert!(!cmd.is_inline());
    assert_eq!(format!("{cmd:?}"), r#"RespCommand["GET", "k"]"#);
}

#[test]
fn binary_and_empty_bulk_strings() {
    let mut c = RespCodec::new();
    let wire = b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\n\r\n\0\xff\r\n";
    let expected = vec![b"SET".to_vec(), Vec::new(), b"\r\n\0\xff".to_vec()];
    assert_eq!(one(&mut c, wire), Ok(Some((expected, wire.len()))));
}

#[test]
fn inline_commands() {
    let mut c = RespCodec::new();
    assert_eq!(one(&mut c, b"PING\r\n"), Ok(Some((args(&["PING"]), 6))));
    assert_eq!(one(&mut c, b"PING\n"), Ok(Some((args(&["PING"]), 5))));
    assert_eq!(
        one(&mut c, b"  SET\tk  v \r\n"),
        Ok(Some((args(&["SET", "k", "v"]), 13)))
    );
    // Quotes are plain bytes.
    assert_eq!(
        one(&mut c, b"ECHO \"a b\"\n"),
        Ok(Some((args(&["ECHO", "\"a", "b\""]), 11)))
    );
    let (cmd, _) = c.decode(b"get k\n").unwrap().unwrap();
    assert!(cmd.is_inline());
    assert!(cmd.name().unwrap().eq_ignore_ascii_case(b"GET"));
}

#[test]
fn empty_commands() {
    let mut c = RespCodec::new();
    assert_eq!(one(&mut c, b"\r\n"), Ok(Some((Vec::new(), 2))));
    assert_eq!(one(&mut c, b"   \n"), Ok(Some((Vec::new(), 4))));
    assert_eq!(one(&mut c, b"*0\r\n"), Ok(Some((Vec::new(), 4))));
    assert_eq!(one(&mut c, b"*-1\r\n"), Ok(Some((Vec::new(), 5))));
    let (cmd, _) = c.decode(b"*0\r\n").unwrap().unwrap();
    assert!(cmd.is_empty());
    assert_eq!(cmd.name(), None);
}

#[test]
fn partial_commands() {
    let mut c = RespCodec::new();
    let wire = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    for end in 0..wire.len() {
        assert_eq!(one(&mut c, &wire[..end]), Ok(None), "prefix of {end} bytes");
    }
    assert_eq!(
        one(&mut c, wire),
        Ok(Some((args(&["GET", "k"]), wire.len())))
    );
    assert_eq!(one(&mut c, b"PIN"), Ok(None));
}

#[test]
fn pipelined_commands() {
    let mut c = RespCodec::new();
    let wire = b"*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*1\r\n$3\r\nGE";
    let mut off = 0;
    let mut cmds = Vec::new();
    while let Some((cmd, n)) = one(&mut c, &wire[off..]).unwrap() {
        cmds.push(cmd);
        off += n;
    }
    assert_eq!(
        cmds,
        vec![args(&["PING"]), args(&["PING"]), args(&["ECHO", "hi"])]
    );
    assert_eq!(&wire[off..], b"*1\r\n$3\r\nGE");
}

#[test]
fn bad_type_byte_in_array() {
    let mut c = RespCodec::new();
    assert_eq!(
        one(&mut c, b"*1\r\n+OK\r\n"),
        Err(RespError::ExpectedBulk { found: b'+' })
    );
    assert_eq!(
        one(&mut c, b"*2\r\n$1\r\na\r\n:1\r\n"),
        Err(RespError::ExpectedBulk { found: b':' })
    );
}

#[test]
fn bad_lengths() {
    let mut c = RespCodec::new();
    for wire in [
        &b"*x\r\n"[..],
        b"*\r\n",
        b"*-\r\n",
        b"*1-\r\n",
        b"*-2\r\n",
        b"* 1\r\n",
        b"*99999999999999999999\r\n",
    ] {
        assert_eq!(
            one(&mut c, wire),
            Err(RespError::InvalidMultibulkLength),
            "{wire:?}"
        );
    }
    for wire in [
        &b"*1\r\n$x\r\n"[..],
        b"*1\r\n$-1\r\n",
        b"*1\r\n$-5\r\n",
        b"*1\r\n$\r\n",
        b"*1\r\n$1a\r\n",
    ] {
        assert_eq!(
            one(&mut c, wire),
            Err(RespError::InvalidBulkLength),
            "{wire:?}"
        );
    }
    // Garbage is refused as soon as it arrives, before any `\r\n`.
    assert_eq!(one(&mut c, b"*1x"), Err(RespError::InvalidMultibulkLength));
    assert_eq!(one(&mut c, b"*1\r\n$y"), Err(RespError::InvalidBulkLength));
}

#[test]
fn missing_crlf() {
    let mut c = RespCodec::new();
    assert_eq!(one(&mut c, b"*1\rX"), Err(RespError::MissingCrlf));
    assert_eq!(one(&mut c, b"*1\r\n$3\rX"), Err(RespError::MissingCrlf));
    assert_eq!(
        one(&mut c, b"*1\r\n$3\r\nGETX\r\n"),
        Err(RespError::MissingCrlf)
    );
    assert_eq!(
        one(&mut c, b"*1\r\n$3\r\nGET\rX"),
        Err(RespError::MissingCrlf)
    );
    assert_eq!(
        one(&mut c, b"*1\r\n$3\r\nGET\n\r"),
        Err(RespError::MissingCrlf)
    );
}

#[test]
fn bulk_limit() {
    let mut c = RespCodec::new().with_max_bulk_length(3);
    assert_eq!(
        one(&mut c, b"*1\r\n$3\r\nabc\r\n"),
        Ok(Some((args(&["abc"]), 13)))
    );
    // Refused from the length line alone.
    assert_eq!(
        one(&mut c, b"*1\r\n$4\r\n"),
        Err(RespError::BulkTooLong { max: 3 })
    );
}

#[test]
fn argument_limit() {
    let mut c = RespCodec::new().with_max_arguments(2);
    assert_eq!(
        one(&mut c, b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
        Ok(Some((args(&["a", "b"]), 18)))
    );
    assert_eq!(
        one(&mut c, b"*3\r\n"),
        Err(RespError::TooManyArguments { max: 2 })
    );
    assert_eq!(one(&mut c, b"a b\n"), Ok(Some((args(&["a", "b"]), 4))));
    assert_eq!(
        one(&mut c, b"a b c\n"),
        Err(RespError::TooManyArguments { max: 2 })
    );
}

#[test]
fn inline_limit() {
    let mut c = RespCodec::new().with_max_inline_length(4);
    assert_eq!(one(&mut c, b"PING\r\n"), Ok(Some((args(&["PING"]), 6))));
    assert_eq!(one(&mut c, b"PING"), Ok(None));
    assert_eq!(
        one(&mut c, b"PINGS"),
        Err(RespError::InlineTooLong { max: 4 })
    );
}

#[test]
fn command_limit() {
    // `*1\r\n$3\r\nabc\r\n` is 13 bytes.
    let mut c = RespCodec::new().with_max_command_length(13);
    assert_eq!(
        one(&mut c, b"*1\r\n$3\r\nabc\r\n"),
        Ok(Some((args(&["abc"]), 13)))
    );
    assert_eq!(
        one(&mut c, b"*1\r\n$4\r\nabcd\r"),
        Err(RespError::CommandTooLong { max: 13 })
    );
    assert_eq!(one(&mut c, b"*1\r\n$4\r\nabc"), Ok(None));
    let mut c = RespCodec::new().with_max_command_length(3);
    assert_eq!(
        one(&mut c, b"*1\r"),
        Err(RespError::CommandTooLong { max: 3 })
    );
}

#[test]
fn long_bulk_in_small_pieces() {
    let mut c = RespCodec::new();
    let mut wire = Vec::new();
    encode_command(&mut wire, &[b"SET", b"key", &[b'v'; 100_000]]);
    for end in (0..wire.len()).step_by(7) {
        assert_eq!(c.decode(&wire[..end]), Ok(None));
    }
    let (cmd, n) = c.decode(&wire).unwrap().unwrap();
    assert_eq!(n, wire.len());
    assert_eq!(cmd.args().nth(2).unwrap().len(), 100_000);
}

#[test]
fn reply_encoders() {
    let mut out = Vec::new();
    encode_simple_string(&mut out, b"OK");
    encode_simple_string(&mut out, b"a\r\nb");
    encode_error(&mut out, b"ERR bad\nthing");
    encode_integer(&mut out, 0);
    encode_integer(&mut out, i64::MIN);
    encode_bulk(&mut out, b"");
    encode_null_bulk(&mut out);
    encode_array_header(&mut out, 12);
    encode_null_array(&mut out);
    let expected: &[u8] = b"+OK\r\n+a  b\r\n-ERR bad thing\r\n:0\r\n:-9223372036854775808\r\n\
                            $0\r\n\r\n$-1\r\n*12\r\n*-1\r\n";
    assert_eq!(out, expected);
}

#[test]
fn encode_command_round_trip() {
    let mut out = Vec::new();
    encode_command(&mut out, &[b"SET", b"k", b"v\r\n"]);
    assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n");
    let mut c = RespCodec::new();
    assert_eq!(
        one(&mut c, &out),
        Ok(Some((args(&["SET", "k", "v\r\n"]), out.len())))
    );
}
