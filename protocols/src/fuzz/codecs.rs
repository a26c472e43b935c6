//! The codec targets: decoding must not depend on the cuts, and must respect every limit.

use std::fmt::Debug;

use crate::codec::http::{HttpCodec, Request};
use crate::codec::resp::{encode_command, RespCodec, RespCommand};
use crate::codec::split::{self, Decoded};
use crate::codec::{Decoder, HeaderWidth, LengthCodec, LinesCodec, LinesError};
use reactor::testing::Script;

/// Inputs up to this size are also decoded one byte at a time (longer ones would make each run
/// too slow to be worth it).
const BYTEWISE_UP_TO: usize = 2048;

/// The common part of a codec target's input: the mode byte, the cuts and the payload.
struct CodecInput<'a> {
    /// Chooses the limits (and whether the payload is raw or turned into valid frames).
    mode: Script<'a>,
    /// Offsets where the stream is cut, in any order.
    cuts: Vec<usize>,
    /// Whether to also decode one byte at a time.
    bytewise: bool,
    /// The rest of the input.
    payload: &'a [u8],
}

impl<'a> CodecInput<'a> {
    /// Reads `[limits: 2][k][k cuts of 2 bytes][payload]`; bit 7 of `k` asks for bytewise too.
    fn read(data: &'a [u8]) -> Self {
        let mut s = Script::new(data);
        let mode = Script::new(s.bytes(2));
        let k = s.byte();
        let cuts = (0..k % 32).map(|_| usize::from(s.u16())).collect();
        CodecInput {
            mode,
            cuts,
            bytewise: k & 0x80 != 0,
            payload: s.rest(),
        }
    }
}

/// [`decode_all_ways`](crate::codec::split::decode_all_ways) with the cut offsets taken modulo
/// the length (so every cut lands in the input) and the byte-by-byte pass only for inputs up to
/// [`BYTEWISE_UP_TO`].
pub(crate) fn decode_all_ways<D, T, F>(
    make: impl Fn() -> D,
    input: &[u8],
    cuts: &[usize],
    bytewise: bool,
    own: F,
) -> Decoded<T, D::Error>
where
    D: Decoder,
    D::Error: PartialEq + Debug,
    T: PartialEq + Debug,
    F: for<'b> Fn(D::Frame<'b>) -> T,
{
    let cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    let bytewise = bytewise && input.len() <= BYTEWISE_UP_TO;
    split::decode_all_ways(make, input, &cuts, bytewise, own)
}

/// Checks [`LinesCodec`]: the frames and error do not depend on the cuts, no line is longer
/// than the maximum or holds a `\n`, and encoded lines decode to themselves.
///
/// Input: the first byte picks the maximum line length (0 to 16 KiB) and, in bit 7, whether the
/// payload is raw bytes or split at `\n` into lines that are encoded with
/// [`LinesCodec::encode_line`] (the frames must then come back exactly, up to the first
/// overlong one, which must be the error). The second byte is spare, then `k` and `k` cut
/// offsets of two bytes each (bit 7 of `k`: also decode byte by byte), then the payload.
///
/// # Panics
///
/// If an invariant is broken.
pub fn codec_lines(data: &[u8]) {
    let mut input = CodecInput::read(data);
    let mode = input.mode.byte();
    let max = [
        0,
        1,
        2,
        8,
        24,
        100,
        crate::codec::lines::DEFAULT_MAX_LINE_LENGTH,
    ][mode as usize % 7];
    let encoded = mode & 0x80 != 0;

    let lines: Vec<&[u8]> = input.payload.split(|&b| b == b'\n').collect();
    let wire = if encoded {
        let mut wire = Vec::new();
        for line in &lines {
            LinesCodec::encode_line(line, &mut wire);
        }
        wire
    } else {
        input.payload.to_vec()
    };
    let got = decode_all_ways(
        || LinesCodec::with_max_length(max),
        &wire,
        &input.cuts,
        input.bytewise,
        |l| l.to_vec(),
    );

    for line in &got.frames {
        assert!(line.len() <= max, "a line of {} over {max}", line.len());
        assert!(!line.contains(&b'\n'), "a line holds its terminator");
    }
    if let Some(e) = got.error {
        assert_eq!(e, LinesError::MaxLineLengthExceeded { max });
    } else {
        // A line still waiting may be the maximum plus a `\r` that may start `\r\n`.
        assert!(got.pending <= max + 1, "{} bytes pending", got.pending);
    }
    if encoded {
        let ok: Vec<Vec<u8>> = lines
            .iter()
            .take_while(|l| l.len() <= max)
            .map(|l| l.to_vec())
            .collect();
        let overlong = ok.len() < lines.len();
        assert_eq!(got.frames, ok, "encoded lines did not come back");
        assert_eq!(got.error.is_some(), overlong);
        if !overlong {
            assert_eq!(got.pending, 0);
        }
    }
}

/// Checks [`LengthCodec`]: the frames and error do not depend on the cuts, no frame is over the
/// maximum, the frames encoded again are exactly the bytes consumed, and encoded frames decode
/// to themselves.
///
/// Input: the first byte picks the header width and, in bit 7, whether the payload is raw or
/// read as frames (a length byte, then that many bytes, repeated) to be encoded; the second
/// picks the maximum length; then cuts and payload as for [`codec_lines`].
///
/// # Panics
///
/// If an invariant is broken.
pub fn codec_length(data: &[u8]) {
    let mut input = CodecInput::read(data);
    let mode = input.mode.byte();
    let width = [HeaderWidth::U8, HeaderWidth::U16, HeaderWidth::U32][mode as usize % 3];
    let max = input.mode.pick(&[0, 1, 5, 255, 1000, 64 * 1024]);
    let encoded = mode & 0x80 != 0;
    let codec = || LengthCodec::with_max_length(width, max);
    let max = codec().max_length();

    let mut frames: Vec<&[u8]> = Vec::new();
    let wire = if encoded {
        // Encoded with no limit but the header's, so that overlong frames reach the decoder.
        let unlimited = LengthCodec::with_max_length(width, usize::MAX);
        let mut s = Script::new(input.payload);
        let mut wire = Vec::new();
        while !s.is_empty() {
            let n = usize::from(s.byte());
            let frame = s.bytes(n);
            unlimited
                .encode(frame, &mut wire)
                .expect("a frame of at most 255 bytes fits every header");
            frames.push(frame);
        }
        wire
    } else {
        input.payload.to_vec()
    };
    let got = decode_all_ways(codec, &wire, &input.cuts, input.bytewise, |f| f.to_vec());

    // The frames, encoded again, are the bytes the decoder consumed.
    let mut again = Vec::new();
    for frame in &got.frames {
        assert!(frame.len() <= max, "a frame of {} over {max}", frame.len());
        codec()
            .encode(frame, &mut again)
            .expect("a decoded frame is within the limit");
    }
    assert!(
        wire.starts_with(&again),
        "frames encoded again differ from the input"
    );
    if got.error.is_none() {
        assert_eq!(again.len() + got.pending, wire.len());
        assert!(
            got.pending < width.size() + max.max(1),
            "a frame too long waits"
        );
    }
    if encoded {
        let ok: Vec<Vec<u8>> = frames
            .iter()
            .take_while(|f| f.len() <= max)
            .map(|f| f.to_vec())
            .collect();
        let overlong = ok.len() < frames.len();
        assert_eq!(got.frames, ok, "encoded frames did not come back");
        assert_eq!(got.error.is_some(), overlong);
        assert_eq!(got.pending, 0);
    }
}

/// A decoded RESP command, owned: whether it was inline, and its arguments.
type OwnedCommand = (bool, Vec<Vec<u8>>);

fn own_command(cmd: RespCommand<'_>) -> OwnedCommand {
    (cmd.is_inline(), cmd.args().map(<[u8]>::to_vec).collect())
}

/// Checks [`RespCodec`]: the commands and error do not depend on the cuts, no command breaks a
/// limit (arguments, bulk length, inline length), and commands encoded as arrays decode to
/// themselves.
///
/// Input: the first byte picks the argument and bulk limits and, in bit 7, whether the payload
/// is raw or read as commands (an argument count, then for each argument a length byte and
/// that many bytes) encoded with [`encode_command`]; the second picks the inline and command
/// length limits; then cuts and payload as for [`codec_lines`].
///
/// # Panics
///
/// If an invariant is broken.
pub fn codec_resp(data: &[u8]) {
    let mut input = CodecInput::read(data);
    let mode = input.mode.byte();
    let limits = input.mode.byte();
    let max_args = [0, 1, 3, 1024][usize::from(mode) % 4];
    let max_bulk = [0, 3, 16, 1024 * 1024][usize::from(mode >> 2) % 4];
    let max_inline = [0, 5, 64, 64 * 1024][usize::from(limits) % 4];
    let max_command = [8, 40, 300, 2 * 1024 * 1024][usize::from(limits >> 2) % 4];
    let encoded = mode & 0x80 != 0;
    let codec = || {
        RespCodec::new()
            .with_max_arguments(max_args)
            .with_max_bulk_length(max_bulk)
            .with_max_inline_length(max_inline)
            .with_max_command_length(max_command)
    };

    let mut commands: Vec<(Vec<Vec<u8>>, usize)> = Vec::new();
    let wire = if encoded {
        let mut s = Script::new(input.payload);
        let mut wire = Vec::new();
        while !s.is_empty() {
            let argc = s.below(5);
            let args: Vec<&[u8]> = (0..argc)
                .map(|_| {
                    let n = s.below(24);
                    s.bytes(n)
                })
                .collect();
            let start = wire.len();
            encode_command(&mut wire, &args);
            let owned = args.iter().map(|a| a.to_vec()).collect();
            commands.push((owned, wire.len() - start));
        }
        wire
    } else {
        input.payload.to_vec()
    };
    let got = decode_all_ways(codec, &wire, &input.cuts, input.bytewise, own_command);

    for (inline, args) in &got.frames {
        assert!(
            args.len() <= max_args,
            "{} arguments over {max_args}",
            args.len()
        );
        for arg in args {
            if *inline {
                assert!(arg.len() <= max_inline, "inline argument over {max_inline}");
                assert!(!arg.is_empty(), "an empty inline argument");
            } else {
                assert!(
                    arg.len() <= max_bulk,
                    "bulk of {} over {max_bulk}",
                    arg.len()
                );
            }
        }
    }
    if encoded {
        // A command fits if its count, its arguments and its length on the wire do.
        let fits = |(args, len): &(Vec<Vec<u8>>, usize)| {
            args.len() <= max_args
                && args.iter().all(|a| a.len() <= max_bulk)
                && *len <= max_command
        };
        let ok: Vec<OwnedCommand> = commands
            .iter()
            .take_while(|c| fits(c))
            .map(|(args, _)| (false, args.clone()))
            .collect();
        let broken = ok.len() < commands.len();
        assert_eq!(got.frames, ok, "encoded commands did not come back");
        assert_eq!(got.error.is_some(), broken, "{:?}", got.error);
        assert_eq!(got.pending, 0);
    }
}

/// A decoded HTTP request, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnedRequest {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) version: u8,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Vec<u8>,
    pub(crate) keep_alive: bool,
    pub(crate) chunked: bool,
}

pub(crate) fn own_request(req: Request<'_>) -> OwnedRequest {
    OwnedRequest {
        method: req.method().to_owned(),
        path: req.path().to_owned(),
        version: req.version(),
        headers: req
            .headers()
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect(),
        keep_alive: req.keep_alive(),
        chunked: req.is_chunked(),
        body: req.into_body().into_owned(),
    }
}

/// A valid request built from script bytes, with what its decoding must give.
pub(crate) struct BuiltRequest {
    /// The request on the wire.
    pub(crate) wire: Vec<u8>,
    /// What decoding it must give.
    pub(crate) expected: OwnedRequest,
    /// Length of its head on the wire.
    pub(crate) head_len: usize,
    /// Its body's length on the wire.
    pub(crate) body_wire_len: usize,
}

/// Reads a text of `0..max` characters from the alphabet `a-z0-9`.
fn word(s: &mut Script<'_>, max: usize) -> String {
    let n = s.below(max);
    (0..n)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[s.below(36)]))
        .collect()
}

/// Builds one valid HTTP/1.1 request from script bytes: a method, a path, up to three headers,
/// maybe `Connection: close`, and a body that is absent, sized by `Content-Length` or chunked.
pub(crate) fn build_request(s: &mut Script<'_>) -> BuiltRequest {
    let method = s.pick(&["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS"]);
    let path = match s.below(4) {
        0 => "/".to_owned(),
        1 => "/health".to_owned(),
        2 => format!("/?{}", word(s, 8)),
        _ => format!("/{}", word(s, 12)),
    };
    let flags = s.byte();
    let mut headers: Vec<(String, Vec<u8>)> = (0..flags % 4)
        .map(|i| (format!("X-H{i}"), word(s, 10).into_bytes()))
        .collect();
    let close = flags & 0x10 != 0;
    if close {
        headers.push(("Connection".to_owned(), b"close".to_vec()));
    }
    let body_len = s.below(40);
    let body_bytes = s.bytes(body_len);
    let (body, body_wire, chunked) = match (flags >> 5) % 3 {
        0 => (Vec::new(), Vec::new(), false),
        1 => {
            headers.push((
                "Content-Length".to_owned(),
                body_bytes.len().to_string().into_bytes(),
            ));
            (body_bytes.to_vec(), body_bytes.to_vec(), false)
        }
        _ => {
            headers.push(("Transfer-Encoding".to_owned(), b"chunked".to_vec()));
            let mut wire = Vec::new();
            let mut rest = body_bytes;
            let mut step = 1 + usize::from(flags & 0x07);
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(step.min(rest.len()));
                wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
                rest = tail;
                step = step * 2 + 1;
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            (body_bytes.to_vec(), wire, true)
        }
    };
    let mut wire = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    for (name, value) in &headers {
        wire.extend_from_slice(name.as_bytes());
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(value);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"\r\n");
    let head_len = wire.len();
    wire.extend_from_slice(&body_wire);
    BuiltRequest {
        wire,
        expected: OwnedRequest {
            method: method.to_owned(),
            path,
            version: 1,
            headers,
            body,
            keep_alive: !close,
            chunked,
        },
        head_len,
        body_wire_len: body_wire.len(),
    }
}

/// Checks [`HttpCodec`]: the requests and error do not depend on the cuts, no request breaks a
/// limit (headers, body), and requests built valid decode to themselves up to the first one
/// over a limit.
///
/// Input: the first byte picks the head and header-count limits and, in bit 7, whether the
/// payload is raw or read as a script building valid requests (method, path, headers,
/// `Content-Length` or chunked body); the second picks the body limit; then cuts and payload
/// as for [`codec_lines`].
///
/// # Panics
///
/// If an invariant is broken.
pub fn codec_http(data: &[u8]) {
    let mut input = CodecInput::read(data);
    let mode = input.mode.byte();
    let limits = input.mode.byte();
    let max_head = [32, 64, 256, 8 * 1024][usize::from(mode) % 4];
    let max_headers = [0, 1, 4, 64][usize::from(mode >> 2) % 4];
    let max_body = [0, 5, 64, 1024 * 1024][usize::from(limits) % 4];
    let encoded = mode & 0x80 != 0;
    let codec = || {
        HttpCodec::new()
            .with_max_head_length(max_head)
            .with_max_headers(max_headers)
            .with_max_body_length(max_body)
    };

    let mut built = Vec::new();
    let wire = if encoded {
        let mut s = Script::new(input.payload);
        let mut wire = Vec::new();
        while !s.is_empty() {
            let req = build_request(&mut s);
            wire.extend_from_slice(&req.wire);
            built.push(req);
        }
        wire
    } else {
        input.payload.to_vec()
    };
    let got = decode_all_ways(codec, &wire, &input.cuts, input.bytewise, own_request);

    for req in &got.frames {
        assert!(req.headers.len() <= max_headers, "too many headers");
        assert!(req.body.len() <= max_body, "a body over the limit");
        assert!(req.version <= 1);
    }
    if encoded {
        let fits = |r: &BuiltRequest| {
            r.head_len <= max_head
                && r.expected.headers.len() <= max_headers
                && r.body_wire_len <= max_body
        };
        let ok: Vec<OwnedRequest> = built
            .iter()
            .take_while(|r| fits(r))
            .map(|r| r.expected.clone())
            .collect();
        let broken = ok.len() < built.len();
        assert_eq!(got.frames, ok, "built requests did not come back");
        assert_eq!(got.error.is_some(), broken, "{:?}", got.error);
        assert_eq!(got.pending, 0);
    }
}
