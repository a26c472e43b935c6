//! The chat port for browsers: `GET /` serves the page (fetched with `curl`), and a WebSocket
//! upgrade turns the connection into a member who shares the rooms with `nc` members. The
//! WebSocket client here is a few lines over a plain socket: it sends its upgrade request and
//! its first frame in one write, so the server must hand the bytes after the request to the
//! handler it switched to (`Cx::replace_handler`). A client that sends its request only after
//! being greeted as a terminal is answered as HTTP too, and never seen by the members.

mod samples_util;

use std::io::{self, Read, Write};
use std::net::TcpStream;

use protocols::chat::{self, ChatConn, ChatRoom, PAGE};
use protocols::codec::ws::{self, Opcode};
use reactor::{ConnConfig, ListenOptions};
use samples_util::{connect, read_until, require, run, Sample, Tool};

/// A chat server with the settings `evdrive chat` uses.
fn chat_server() -> io::Result<Sample<ChatRoom>> {
    let opts = ListenOptions::default().with_conn(chat::conn_config(ConnConfig::default()));
    Sample::start(ChatRoom::new, opts, |_, _| ChatConn::new())
}

/// The upgrade request of RFC 6455's example.
const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// A browser-like WebSocket client: masked frames out, the server's frames parsed in.
struct WsClient {
    stream: TcpStream,
    /// Bytes read and not yet parsed into frames.
    buf: Vec<u8>,
}

impl WsClient {
    /// Connects, sends the upgrade request followed at once by `first` (text messages, one
    /// frame each, in the same write), and reads the 101 answer.
    fn open(server: &Sample<ChatRoom>, first: &[&str]) -> io::Result<WsClient> {
        let mut stream = connect(server.addr())?;
        let mut wire = UPGRADE.to_vec();
        for text in first {
            ws::encode_frame(
                true,
                Opcode::Text,
                text.as_bytes(),
                Some([1, 2, 3, 4]),
                &mut wire,
            );
        }
        stream.write_all(&wire)?;
        let mut got = Vec::new();
        read_until(&mut stream, &mut got, b"\r\n\r\n")?;
        let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&got[..end]).into_owned();
        assert!(
            head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{head}"
        );
        assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        Ok(WsClient {
            stream,
            buf: got[end..].to_vec(),
        })
    }

    /// Sends one masked text message.
    fn send(&mut self, text: &str) -> io::Result<()> {
        let mut wire = Vec::new();
        ws::encode_frame(
            true,
            Opcode::Text,
            text.as_bytes(),
            Some([9, 8, 7, 6]),
            &mut wire,
        );
        self.stream.write_all(&wire)
    }

    /// The next frame from the server: opcode and payload. Server frames are unmasked.
    fn frame(&mut self) -> io::Result<(u8, Vec<u8>)> {
        loop {
            if let Some((op, payload, n)) = parse(&self.buf) {
                self.buf.drain(..n);
                return Ok((op, payload));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads text messages until one contains `needle`; returns it.
    fn wait_for(&mut self, needle: &str) -> io::Result<String> {
        loop {
            let (op, payload) = self.frame()?;
            assert_eq!(op, 1, "a text frame, got opcode {op}");
            let text = String::from_utf8(payload).expect("text frames are UTF-8");
            if text.contains(needle) {
                return Ok(text);
            }
        }
    }
}

/// One whole unmasked frame at the start of `buf`: (opcode, payload, length on the wire).
fn parse(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    assert_eq!(b0 & 0x80, 0x80, "the server sends unfragmented frames");
    assert_eq!(b1 & 0x80, 0, "server frames are not masked");
    let (len, at) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => panic!("no chat line needs a 64-bit length"),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?;
    Some((b0 & 0x0f, payload.to_vec(), at + len))
}

#[test]
fn curl_gets_the_page_and_a_404_elsewhere() -> io::Result<()> {
    require("curl");
    let server = chat_server()?;
    let url = format!("http://127.0.0.1:{}/", server.port());
    let page = run("curl", &["-sS", "--max-time", "10", &url])?;
    assert_eq!(page, PAGE);
    assert!(page.contains("new WebSocket("));
    // Self-contained: nothing is fetched from elsewhere.
    assert!(!page.contains("src="), "the page loads no script or image");
    assert!(
        !page.contains("href="),
        "the page loads no style sheet or font"
    );
    let status = run(
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{url}nope"),
        ],
    )?;
    assert_eq!(status, "404");
    Ok(())
}

#[test]
fn a_websocket_member_and_an_nc_member_share_the_lobby() -> io::Result<()> {
    require("nc");
    let server = chat_server()?;
    let port = server.port().to_string();
    let mut terminal = Tool::spawn("nc", &["127.0.0.1", &port])?;
    terminal.wait_for("you are guest1;");
    // A first line, so that the others know of the terminal.
    terminal.send("/who\n");
    terminal.wait_for("* 1 here: guest1 (you)\r\n");

    // The request and two messages in one write: the messages reach the chat handler.
    let mut browser = WsClient::open(&server, &["/nick web", "hello from the browser"])?;
    let welcome = browser.wait_for("welcome")?;
    assert!(
        welcome.contains("you are guest2; 1 other is here"),
        "{welcome}"
    );
    browser.wait_for("* you are now web")?;
    terminal.wait_for("* guest2 joined\r\n");
    terminal.wait_for("* guest2 is now known as web\r\n");
    terminal.wait_for("<web> hello from the browser\r\n");

    // The terminal's line reaches the browser as one text message.
    terminal.send("hi web\n");
    assert_eq!(browser.wait_for("hi web")?, "<guest1> hi web");

    // One message, several lines; rooms work the same for both.
    browser.send("/join #side\n/who")?;
    browser.wait_for("* you are in #side now; 0 others are here")?;
    assert_eq!(browser.wait_for("here:")?, "* 1 here: web (you) (in #side)");
    terminal.wait_for("* web went to #side\r\n");
    terminal.send("/msg web psst\n");
    assert_eq!(browser.wait_for("psst")?, "<guest1 (private)> psst");

    // A ping is answered with a pong carrying its payload.
    let mut ping = Vec::new();
    ws::encode_frame(
        true,
        Opcode::Ping,
        b"are you there",
        Some([5, 5, 5, 5]),
        &mut ping,
    );
    browser.stream.write_all(&ping)?;
    assert_eq!(browser.frame()?, (0xa, b"are you there".to_vec()));

    // The close handshake: the server answers with the same code, then the member is gone.
    let mut close = Vec::new();
    ws::encode_frame(
        true,
        Opcode::Close,
        &1000u16.to_be_bytes(),
        Some([1, 1, 1, 1]),
        &mut close,
    );
    browser.stream.write_all(&close)?;
    assert_eq!(browser.frame()?, (0x8, 1000u16.to_be_bytes().to_vec()));
    terminal.send("/rooms\n");
    terminal.wait_for("* rooms: #lobby (1)\r\n");
    Ok(())
}

#[test]
fn an_unmasked_frame_is_refused_with_close_code_1002() -> io::Result<()> {
    let server = chat_server()?;
    let mut browser = WsClient::open(&server, &[])?;
    browser.wait_for("welcome")?;
    let mut wire = Vec::new();
    ws::encode_frame(true, Opcode::Text, b"no mask", None, &mut wire);
    browser.stream.write_all(&wire)?;
    let said = browser.wait_for("closing")?;
    assert!(said.starts_with("! "), "{said}");
    assert_eq!(browser.frame()?, (0x8, 1002u16.to_be_bytes().to_vec()));
    Ok(())
}

/// A client that connects, stays silent past the greeting grace and then sends an HTTP
/// request (here `nc`, typing it after the welcome) is answered as HTTP, behind the welcome
/// line it already has; the members never see it, neither as a member nor as a message.
#[test]
fn a_request_after_the_greeting_is_answered_not_said() -> io::Result<()> {
    require("nc");
    let server = chat_server()?;
    let port = server.port().to_string();
    let mut member = Tool::spawn("nc", &["127.0.0.1", &port])?;
    member.wait_for("you are guest1;");
    member.send("/who\n");
    member.wait_for("* 1 here: guest1 (you)\r\n");

    let mut late = Tool::spawn("nc", &["127.0.0.1", &port])?;
    late.wait_for("you are guest2; 1 other is here");
    late.send("GET / HTTP/1.1\r\nHost: chat\r\nConnection: close\r\n\r\n");
    let answer = late.wait_for("</html>");
    let http = answer.find("HTTP/1.1 200 OK\r\n").expect("an HTTP answer");
    assert!(answer[..http].starts_with("* welcome"), "{answer}");
    assert!(answer.contains(PAGE), "{answer}");

    // The member's next answer comes after anything the request could have caused, and
    // follows the first one directly.
    member.send("/who\n");
    let seen = member.wait_for("* 1 here: guest1 (you)\r\n* 1 here: guest1 (you)\r\n");
    assert!(!seen.contains("guest2") && !seen.contains("GET"), "{seen}");
    Ok(())
}
