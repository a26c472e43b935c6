//! Property tests for the framing codecs: decoding must not depend on how the stream is cut.
//!
//! For every codec: valid frame sequences are encoded and must decode to exactly the frames
//! that went in, whether the bytes arrive at once, at random cuts, or one byte at a time;
//! damaged and arbitrary bytes must give the same frames and the same error however they are
//! cut, never a panic, and never a frame over the limits.

mod split_util;

use split_util::{apply, cuts_for, damage, decode_three_ways};

use std::fmt::Debug;

use proptest::prelude::*;
use proptest::sample::Index;

use evdrive_protocols::codec::http::{HttpCodec, Request};
use evdrive_protocols::codec::resp::{self, RespCodec};
use evdrive_protocols::codec::{HeaderWidth, LengthCodec, LinesCodec};

/// Bytes that are mostly protocol punctuation, so arbitrary input reaches deep states.
fn noisy_bytes(alphabet: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![3 => prop::sample::select(alphabet), 1 => any::<u8>()],
        0..300,
    )
}

// ---------------------------------------------------------------------------------------------
// Lines

const LINE_MAX: usize = 24;

fn line_frames() -> impl Strategy<Value = Vec<(Vec<u8>, bool)>> {
    // Lines without `\n`, and without a final `\r` (which a `\n` terminator would absorb);
    // some longer than the limit.
    let line = prop::collection::vec(any::<u8>().prop_filter("no LF", |&b| b != b'\n'), 0..32)
        .prop_filter("no final CR", |l| l.last() != Some(&b'\r'));
    prop::collection::vec((line, any::<bool>()), 0..12)
}

proptest! {
    #[test]
    fn lines_decode_what_was_encoded(frames in line_frames(), picks in prop::collection::vec(any::<Index>(), 0..8)) {
        let mut input = Vec::new();
        for (line, crlf) in &frames {
            input.extend_from_slice(line);
            input.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
        }
        let cuts = cuts_for(input.len(), &picks);
        let got = decode_three_ways(|| LinesCodec::with_max_length(LINE_MAX), &input, &cuts, |l| l.to_vec());

        // The model: every line up to the first overlong one, which is an error.
        let ok: Vec<Vec<u8>> = frames.iter().map(|(l, _)| l.clone()).take_while(|l| l.len() <= LINE_MAX).collect();
        let overlong = ok.len() < frames.len();
        prop_assert_eq!(&got.frames, &ok);
        prop_assert_eq!(got.error.is_some(), overlong);
        if !overlong {
            prop_assert_eq!(got.pending, 0);
        }
    }

    #[test]
    fn lines_damaged_or_arbitrary(
        frames in line_frames(),
        damages in prop::collection::vec(damage(), 0..4),
        noise in noisy_bytes(b"ab\r\n"),
        use_noise in any::<bool>(),
        picks in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let input = if use_noise {
            noise
        } else {
            let mut v = Vec::new();
            for (line, _) in &frames {
                LinesCodec::encode_line(line, &mut v);
            }
            apply(v, &damages)
        };
        let cuts = cuts_for(input.len(), &picks);
        let got = decode_three_ways(|| LinesCodec::with_max_length(LINE_MAX), &input, &cuts, |l| l.to_vec());
        prop_assert!(got.frames.iter().all(|l| l.len() <= LINE_MAX));
        // A partial line that is still waiting may be LINE_MAX bytes plus a `\r`.
        prop_assert!(got.pending <= LINE_MAX + 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Length prefix

fn width() -> impl Strategy<Value = HeaderWidth> {
    prop::sample::select(vec![HeaderWidth::U8, HeaderWidth::U16, HeaderWidth::U32])
}

proptest! {
    #[test]
    fn length_decodes_what_was_encoded(
        width in width(),
        max in 0usize..300,
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8),
        picks in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let codec = LengthCodec::with_max_length(width, max);
        let max = codec.max_length();
        let mut input = Vec::new();
        let mut expected = Vec::new();
        let mut overlong = false;
        for p in &payloads {
            if p.len() <= max {
                codec.encode(p, &mut input).unwrap();
                expected.push(p.clone());
            } else {
                // Too long for the encoder: write the header by hand, if the width can carry it,
                // so the decoder has to refuse it.
                let len = (p.len() as u64).to_be_bytes();
                if p.len() > width.max_length() {
                    continue;
                }
                input.extend_from_slice(&len[8 - width.size()..]);
                input.extend_from_slice(p);
                overlong = true;
                break;
            }
        }
        let cuts = cuts_for(input.len(), &picks);
        let got = decode_three_ways(|| codec.clone(), &input, &cuts, |f| f.to_vec());
        prop_assert_eq!(got.frames, expected);
        prop_assert_eq!(got.error.is_some(), overlong);
        if !overlong {
            prop_assert_eq!(got.pending, 0);
        }
    }

    #[test]
    fn length_damaged_or_arbitrary(
        width in width(),
        max in 0usize..300,
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..8),
        damages in prop::collection::vec(damage(), 0..4),
        noise in noisy_bytes(b"\0\x01\x02\x10"),
        use_noise in any::<bool>(),
        picks in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let codec = LengthCodec::with_max_length(width, max);
        let max = codec.max_length();
        let input = if use_noise {
            noise
        } else {
            let mut v = Vec::new();
            for p in payloads.iter().filter(|p| p.len() <= max) {
                codec.encode(p, &mut v).unwrap();
            }
            apply(v, &damages)
        };
        let cuts = cuts_for(input.len(), &picks);
        let got = decode_three_ways(|| codec.clone(), &input, &cuts, |f| f.to_vec());
        prop_assert!(got.frames.iter().all(|f| f.len() <= max));
        prop_assert!(got.pending < width.size() + max);
    }
}

// ---------------------------------------------------------------------------------------------
// RESP

const RESP_MAX_BULK: usize = 16;
const RESP_MAX_ARGS: usize = 4;
const RESP_MAX_INLINE: usize = 32;
const RESP_MAX_COMMAND: usize = 64;

fn resp_codec() -> RespCodec {
    RespCodec::new()
        .with_max_bulk_length(RESP_MAX_BULK)
        .with_max_arguments(RESP_MAX_ARGS)
        .with_max_inline_length(RESP_MAX_INLINE)
        .with_max_command_length(RESP_MAX_COMMAND)
}

/// A command to encode: arguments, and whether to send it inline.
fn resp_commands() -> impl Strategy<Value = Vec<(Vec<Vec<u8>>, bool)>> {
    let array = prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 0..5)
        .prop_map(|a| (a, false));
    let inline = prop::collection::vec("[a-z0-9]{1,8}", 0..5)
        .prop_map(|a| (a.into_iter().map(String::into_bytes).collect(), true));
    prop::collection::vec(prop_oneof![array, inline], 0..8)
}

fn encode_resp(cmd: &[Vec<u8>], inline: bool, crlf: bool, out: &mut Vec<u8>) {
    if inline {
        out.extend_from_slice(&cmd.join(&b' '));
        out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
    } else {
        let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
        resp::encode_command(out, &args);
    }
}

/// Whether `cmd` is within the test limits once encoded as `encoded`.
fn resp_fits(cmd: &[Vec<u8>], inline: bool, encoded: &[u8]) -> bool {
    cmd.len() <= RESP_MAX_ARGS
        && if inline {
            encoded.len() - 2 <= RESP_MAX_INLINE
        } else {
            cmd.iter().all(|a| a.len() <= RESP_MAX_BULK) && encoded.len() <= RESP_MAX_COMMAND
        }
}

fn resp_args(cmd: evdrive_protocols::codec::RespCommand<'_>) -> Vec<Vec<u8>> {
    cmd.args().map(<[u8]>::to_vec).collect()
}

proptest! {
    #[test]
    fn resp_decodes_what_was_encoded(commands in resp_commands(), picks in prop::collection::vec(any::<Index>(), 0..8)) {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        let mut over = false;
        for (cmd, inline) in &commands {
            let mut encoded = Vec::new();
            encode_resp(cmd, *inline, true, &mut encoded);
            input.extend_from_slice(&encoded);
            if !resp_fits(cmd, *inline, &encoded) {
                over = true;
                break;
            }
            expected.push(cmd.clone());
        }
        let cuts = cuts_for(input.len(), &picks);
        let got = decode_three_ways(resp_codec, &input, &cuts, resp_args);
        prop_assert_eq!(got.frames, expected);
        prop_assert_eq!(got.error.is_some(), over);
        if !over {
            prop_assert_eq!(got.pending, 0);
        }
    }

    #[test]
    fn resp_damaged_or_arbitrary(
        commands in resp_commands(),
        damages in prop::collection::vec(damage(), 0..4),
        noise in noisy_bytes(b"*$-0123\r\n a"),
        use_noise in any::<bool>(),
        picks in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let input = if use_noise {
            noise
        } else {
            let mut v = Vec::new();
            for (cmd, inline) in &commands {
                encode_resp(cmd, *inline, false, &mut v);
            }
            apply(v, &damages)
        };
        let cuts = cuts_for(input.len(), &picks);
        let got = decode_three_ways(resp_codec, &input, &cuts, resp_args);
        for cmd in &got.frames {
            prop_assert!(cmd.len() <= RESP_MAX_ARGS);
            prop_assert!(cmd.iter().all(|a| a.len() <= RESP_MAX_INLINE.max(RESP_MAX_BULK)));
        }
        prop_assert!(got.pending < RESP_MAX_COMMAND.max(RESP_MAX_INLINE + 2));
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

const HTTP_MAX_HEAD: usize = 256;
const HTTP_MAX_HEADERS: usize = 6;
const HTTP_MAX_BODY: usize = 128;

fn http_codec() -> HttpCodec {
    HttpCodec::new()
        .with_max_head_length(HTTP_MAX_HEAD)
        .with_max_headers(HTTP_MAX_HEADERS)
        .with_max_body_length(HTTP_MAX_BODY)
}

/// A decoded request in owned form.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OwnedRequest {
    method: String,
    path: String,
    version: u8,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    keep_alive: bool,
}

fn own_request(req: Request<'_>) -> OwnedRequest {
    OwnedRequest {
        method: req.method().into(),
        path: req.path().into(),
        version: req.version(),
        headers: req
            .headers()
            .iter()
            .map(|h| (h.name.into(), h.value.to_vec()))
            .collect(),
        body: req.body().to_vec(),
        keep_alive: req.keep_alive(),
    }
}

/// How a generated request carries its body.
#[derive(Debug, Clone)]
enum BodyForm {
    None,
    Length,
    /// Chunked, cut into chunks at these points, with extensions and a trailer on request.
    Chunked(Vec<Index>, bool),
}

#[derive(Debug, Clone)]
struct GenRequest {
    method: &'static str,
    path: String,
    version: u8,
    headers: Vec<(String, String)>,
    connection: Option<&'static str>,
    body: Vec<u8>,
    form: BodyForm,
}

fn gen_request() -> impl Strategy<Value = GenRequest> {
    let header = (
        "X-[A-Za-z0-9-]{1,8}",
        "([a-zA-Z0-9]([a-zA-Z0-9 ;=,]{0,14}[a-zA-Z0-9])?)?",
    );
    let form = prop_oneof![
        Just(BodyForm::None),
        Just(BodyForm::Length),
        (prop::collection::vec(any::<Index>(), 0..4), any::<bool>())
            .prop_map(|(c, x)| BodyForm::Chunked(c, x)),
    ];
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
        "/[a-z0-9/._-]{0,12}",
        0u8..=1,
        prop::collection::vec(header, 0..5),
        prop::sample::select(vec![
            None,
            Some("close"),
            Some("keep-alive"),
            Some("Keep-Alive, Upgrade"),
        ]),
        prop::collection::vec(any::<u8>(), 0..60),
        form,
    )
        .prop_map(|(method, path, version, headers, connection, body, form)| {
            // HTTP/1.0 has no chunked bodies.
            let form = match form {
                BodyForm::Chunked(..) if version == 0 => BodyForm::Length,
                f => f,
            };
            let body = if matches!(form, BodyForm::None) {
                Vec::new()
            } else {
                body
            };
            GenRequest {
                method,
                path,
                version,
                headers,
                connection,
                body,
                form,
            }
        })
}

impl GenRequest {
    /// The request on the wire; the head's and body's lengths.
    fn encode(&self, out: &mut Vec<u8>) -> (usize, usize) {
        let start = out.len();
        out.extend_from_slice(
            format!("{} {} HTTP/1.{}\r\n", self.method, self.path, self.version).as_bytes(),
        );
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if let Some(c) = self.connection {
            out.extend_from_slice(format!("Connection: {c}\r\n").as_bytes());
        }
        match &self.form {
            BodyForm::None => {}
            BodyForm::Length => {
                out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes())
            }
            BodyForm::Chunked(..) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        }
        out.extend_from_slice(b"\r\n");
        let head_len = out.len() - start;
        match &self.form {
            BodyForm::None => {}
            BodyForm::Length => out.extend_from_slice(&self.body),
            BodyForm::Chunked(picks, extras) => {
                let mut cuts: Vec<usize> =
                    picks.iter().map(|i| i.index(self.body.len() + 1)).collect();
                cuts.push(0);
                cuts.push(self.body.len());
                cuts.sort_unstable();
                cuts.dedup();
                for w in cuts.windows(2) {
                    let ext = if *extras { ";x=1" } else { "" };
                    out.extend_from_slice(format!("{:x}{ext}\r\n", w[1] - w[0]).as_bytes());
                    out.extend_from_slice(&self.body[w[0]..w[1]]);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n");
                if *extras {
                    out.extend_from_slice(b"X-Trailer: t\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        (head_len, out.len() - start - head_len)
    }

    /// What the decoder should give for this request.
    fn expected(&self) -> OwnedRequest {
        let mut headers: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
            .collect();
        if let Some(c) = self.connection {
            headers.push(("Connection".into(), c.into()));
        }
        match &self.form {
            BodyForm::None => {}
            BodyForm::Length => headers.push((
                "Content-Length".into(),
                self.body.len().to_string().into_bytes(),
            )),
            BodyForm::Chunked(..) => {
                headers.push(("Transfer-Encoding".into(), b"chunked".to_vec()))
            }
        }
        let conn = self.connection.unwrap_or("").to_ascii_lowercase();
        let keep_alive = if self.version == 1 {
            conn != "close"
        } else {
            conn.contains("keep-alive")
        };
        OwnedRequest {
            method: self.method.into(),
            path: self.path.clone(),
            version: self.version,
            headers,
            body: self.body.clone(),
            keep_alive,
        }
    }
}

proptest! {
    #[test]
    fn http_decodes_what_was_encoded(
        requests in prop::collection::vec(gen_request(), 0..5),
        picks in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        let mut over = false;
        for r in &requests {
            let (head, body) = r.encode(&mut input);
            let want = r.expected();
            if head > HTTP_MAX_HEAD || want.headers.len() > HTTP_MAX_HEADERS || body > HTTP_MAX_BODY {
                over = true;
                break;
            }
            expected.push(want);
        }
        let cuts = cuts_for(input.len(), &picks);
        let got = decode_three_ways(http_codec, &input, &cuts, own_request);
        prop_assert_eq!(got.frames, expected);
        prop_assert_eq!(got.error.is_some(), over);
        if !over {
            prop_assert_eq!(got.pending, 0);
        }
    }

    #[test]
    fn http_damaged_or_arbitrary(
        requests in prop::collection::vec(gen_request(), 0..4),
        damages in prop::collection::vec(damage(), 0..4),
        noise in noisy_bytes(b"GET / HTTP/1.1\r\n:0;a"),
        use_noise in any::<bool>(),
        picks in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let input = if use_noise {
            noise
        } else {
            let mut v = Vec::new();
            for r in &requests {
                r.encode(&mut v);
            }
            apply(v, &damages)
        };
        let cuts = cuts_for(input.len(), &picks);
        let got = decode_three_ways(http_codec, &input, &cuts, own_request);
        for r in &got.frames {
            prop_assert!(r.headers.len() <= HTTP_MAX_HEADERS);
            prop_assert!(r.body.len() <= HTTP_MAX_BODY);
        }
        prop_assert!(got.pending < HTTP_MAX_HEAD + HTTP_MAX_BODY);
    }
}
