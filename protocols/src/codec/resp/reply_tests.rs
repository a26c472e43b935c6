//! Tests of the reply decoder: each reply type, the limits, and the property every codec has
//! (the same replies however the stream is cut; no panic on any input).

use proptest::prelude::*;

use super::*;
use crate::codec::split::decode_all_ways;
use crate::codec::Decoder;

/// An owned copy of a reply, to compare after the input is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Integer(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Owned>),
}

fn own(reply: Reply<'_>) -> Owned {
    match reply {
        Reply::Simple(s) => Owned::Simple(s.to_vec()),
        Reply::Error(s) => Owned::Error(s.to_vec()),
        Reply::Integer(n) => Owned::Integer(n),
        Reply::Bulk(s) => Owned::Bulk(s.to_vec()),
        Reply::Null => Owned::Null,
        Reply::Array(items) => Owned::Array(items.into_iter().map(own).collect()),
    }
}

fn encode(reply: &Owned, out: &mut Vec<u8>) {
    match reply {
        Owned::Simple(s) => encode_simple_string(out, s),
        Owned::Error(s) => encode_error(out, s),
        Owned::Integer(n) => encode_integer(out, *n),
        Owned::Bulk(s) => encode_bulk(out, s),
        Owned::Null => encode_null_bulk(out),
        Owned::Array(items) => {
            encode_array_header(out, items.len());
            for item in items {
                encode(item, out);
            }
        }
    }
}

fn one(buf: &[u8]) -> Result<Option<(Owned, usize)>, RespError> {
    ReplyCodec::new()
        .decode(buf)
        .map(|o| o.map(|(r, n)| (own(r), n)))
}

#[test]
fn each_type() {
    assert_eq!(
        one(b"+OK\r\n"),
        Ok(Some((Owned::Simple(b"OK".to_vec()), 5)))
    );
    assert_eq!(
        one(b"-ERR no\r\n"),
        Ok(Some((Owned::Error(b"ERR no".to_vec()), 9)))
    );
    assert_eq!(one(b":-42\r\n"), Ok(Some((Owned::Integer(-42), 6))));
    assert_eq!(
        one(b"$5\r\nhe\r\no\r\n"),
        Ok(Some((Owned::Bulk(b"he\r\no".to_vec()), 11)))
    );
    assert_eq!(one(b"$-1\r\n"), Ok(Some((Owned::Null, 5))));
    assert_eq!(one(b"*-1\r\n"), Ok(Some((Owned::Null, 5))));
    assert_eq!(one(b"*0\r\n"), Ok(Some((Owned::Array(vec![]), 4))));
}

#[test]
fn subscribed_pushes() {
    let wire = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n";
    let (first, n) = one(wire).unwrap().unwrap();
    assert_eq!(
        first,
        Owned::Array(vec![
            Owned::Bulk(b"subscribe".to_vec()),
            Owned::Bulk(b"ch".to_vec()),
            Owned::Integer(1)
        ])
    );
    let (second, m) = one(&wire[n..]).unwrap().unwrap();
    assert_eq!(n + m, wire.len());
    assert!(matches!(second, Owned::Array(ref v) if v[2] == Owned::Bulk(b"hi".to_vec())));
}

#[test]
fn unfinished_waits() {
    for wire in [
        &b"+O"[..],
        b"+OK\r",
        b":12",
        b"$5\r\nhel",
        b"$5\r\nhello\r",
        b"*2\r\n:1\r\n",
    ] {
        assert_eq!(one(wire), Ok(None), "{wire:?}");
    }
}

#[test]
fn malformed_is_an_error() {
    assert_eq!(one(b"?x\r\n"), Err(RespError::InvalidReply { found: b'?' }));
    assert_eq!(
        one(b":1x\r\n"),
        Err(RespError::InvalidReply { found: b':' })
    );
    assert_eq!(one(b"$-2\r\n"), Err(RespError::InvalidBulkLength));
    assert_eq!(one(b"*-2\r\n"), Err(RespError::InvalidMultibulkLength));
    assert_eq!(one(b"$1\r\nab\r\n"), Err(RespError::MissingCrlf));
    assert_eq!(one(b"+a\rb\r\n"), Err(RespError::MissingCrlf));
    assert_eq!(
        one(b"$2000000\r\n"),
        Err(RespError::BulkTooLong {
            max: DEFAULT_MAX_BULK_LENGTH
        })
    );
    assert_eq!(
        one(&b"*1\r\n".repeat(MAX_REPLY_DEPTH + 1)),
        Err(RespError::NestedTooDeep {
            max: MAX_REPLY_DEPTH
        })
    );
    let mut long = b"+".to_vec();
    long.resize(DEFAULT_MAX_INLINE_LENGTH + 10, b'a');
    assert!(matches!(one(&long), Err(RespError::InlineTooLong { .. })));
}

fn reply_strategy() -> impl Strategy<Value = Owned> {
    let text = proptest::collection::vec(32u8..127, 0..12);
    let leaf = prop_oneof![
        text.clone().prop_map(Owned::Simple),
        text.prop_map(Owned::Error),
        any::<i64>().prop_map(Owned::Integer),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Owned::Bulk),
        Just(Owned::Null),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        proptest::collection::vec(inner, 0..4).prop_map(Owned::Array)
    })
}

proptest! {
    #[test]
    fn same_replies_however_cut(
        replies in proptest::collection::vec(reply_strategy(), 1..5),
        cuts in proptest::collection::vec(0usize..400, 0..6),
    ) {
        let mut wire = Vec::new();
        for r in &replies {
            encode(r, &mut wire);
        }
        let decoded = decode_all_ways(ReplyCodec::new, &wire, &cuts, true, own);
        prop_assert_eq!(decoded.frames, replies);
        prop_assert_eq!(decoded.error, None);
        prop_assert_eq!(decoded.pending, 0);
    }

    #[test]
    fn any_bytes_decode_the_same_however_cut(
        wire in proptest::collection::vec(
            prop_oneof![Just(b'*'), Just(b'$'), Just(b'\r'), Just(b'\n'), Just(b':'), Just(b'1'), Just(b'-'), any::<u8>()],
            0..64,
        ),
        cuts in proptest::collection::vec(0usize..64, 0..4),
    ) {
        // Never panics, and the outcome does not depend on where the input was cut.
        decode_all_ways(ReplyCodec::new, &wire, &cuts, true, own);
    }
}
