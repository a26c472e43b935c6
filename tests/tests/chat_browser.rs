//! The chat in a real browser: headless Chromium, driven through WebDriver (`chromedriver`),
//! opens the page the chat port serves, joins over WebSocket, sends a line an `nc` member
//! receives, and shows a line the `nc` member sent. A screenshot of the page is taken through
//! WebDriver too; with `EVDRIVE_UPDATE_SCREENSHOT=1` it replaces `docs/chat.png`.
//!
//! The WebDriver client is a few lines of HTTP/1.1 and JSON over a `TcpStream` (the W3C
//! WebDriver protocol: `POST /session`, `/url`, `/element`, `/value`, `/execute/sync`,
//! `GET /screenshot`), so the test needs nothing but Debian's `chromium` and
//! `chromium-driver`.

mod samples_util;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use protocols::chat::{self, ChatConn, ChatRoom};
use reactor::{ConnConfig, ListenOptions};
use samples_util::{require, Sample, Tool, WAIT};

/// Chromium's flags for running headless as root in a container, without reaching out to any
/// service of its own.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=800,500",
];

/// `chromedriver` on a port of its own, stopped (with its browser) when dropped.
struct Driver {
    child: Child,
    addr: SocketAddr,
    /// The browser's profile, a fresh folder per run.
    profile: std::path::PathBuf,
}

impl Driver {
    /// Starts chromedriver on a port the kernel picks (`--port=0`) and returns once it says
    /// which: it prints "ChromeDriver was started successfully on port N." after binding, so
    /// no port can be taken from under it and no polling is needed.
    fn start() -> io::Result<Driver> {
        let mut child = Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel::<String>();
        // Drained for chromedriver's whole life, so its pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other("chromedriver never said it had started"));
            };
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                let port = rest.trim_end_matches('.').trim().parse::<u16>();
                match port {
                    Ok(port) => break port,
                    Err(_) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(io::Error::other(format!("chromedriver said {line:?}")));
                    }
                }
            }
        };
        let profile =
            std::env::temp_dir().join(format!("evdrive-chromium-{}-{port}", std::process::id()));
        let driver = Driver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            profile,
        };
        let status = driver.request("GET", "/status", None)?;
        if !status.contains("\"ready\":true") {
            return Err(io::Error::other(format!(
                "chromedriver not ready: {status}"
            )));
        }
        Ok(driver)
    }

    /// One HTTP/1.1 request with a JSON body; returns the response body. A WebDriver error
    /// (status 4xx or 5xx) is an `Err` carrying the body.
    fn request(&self, method: &str, path: &str, body: Option<&str>) -> io::Result<String> {
        let mut stream = TcpStream::connect(self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let body = body.unwrap_or("");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        // The driver keeps the connection open whatever the request says: read the head,
        // then as many bytes as it announces.
        let mut raw = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        let (head, body) = loop {
            let text = String::from_utf8_lossy(&raw).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let lower = head.to_ascii_lowercase();
                let length = lower
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                match length {
                    Some(n) if body.len() >= n => break (head.to_owned(), body[..n].to_owned()),
                    None if lower.contains("transfer-encoding: chunked")
                        && body.ends_with("0\r\n\r\n") =>
                    {
                        break (head.to_owned(), unchunk(body))
                    }
                    _ => {}
                }
            }
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::other(format!("cut short: {text:?}")));
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status >= 400 {
            return Err(io::Error::other(format!(
                "{method} {path}: {status} {body}"
            )));
        }
        Ok(body)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The body of a chunked HTTP message.
fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The JSON string that follows `"key":` in `json` (the first one), unescaped.
fn json_string(json: &str, key: &str) -> Option<String> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = json[at..].trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// `text` as a JSON string literal.
fn json_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || (0xe000..0xf900).contains(&(c as u32)) => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A browser session of the driver.
struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.id)
    }

    /// The text of the page's message list.
    fn log_text(&self) -> io::Result<String> {
        let body = self.driver.request(
            "POST",
            &self.path("/execute/sync"),
            Some(r#"{"script":"return document.getElementById('log').innerText","args":[]}"#),
        )?;
        Ok(json_string(&body, "value").unwrap_or_default())
    }

    /// Waits until the page's message list contains `needle`; returns the list.
    fn wait_for(&self, needle: &str) -> io::Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.log_text()?;
            if text.contains(needle) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{needle:?} never shown; page: {text}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn chromium_joins_sends_and_shows_lines_of_an_nc_member() -> io::Result<()> {
    require("nc");
    require("chromium");
    require("chromedriver");
    let opts = ListenOptions::default().with_conn(chat::conn_config(ConnConfig::default()));
    let server = Sample::start(ChatRoom::new, opts, |_, _| ChatConn::new())?;
    let port = server.port().to_string();
    let mut terminal = Tool::spawn("nc", &["127.0.0.1", &port])?;
    terminal.wait_for("you are guest1;");
    // A first line, so that the others know of the terminal.
    terminal.send("/who\n");
    terminal.wait_for("* 1 here: guest1 (you)\r\n");

    let driver = Driver::start()?;
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| json_quote(f)).collect();
    args.push(json_quote(&format!(
        "--user-data-dir={}",
        driver.profile.display()
    )));
    let caps = format!(
        r#"{{"capabilities":{{"alwaysMatch":{{"goog:chromeOptions":{{"binary":"/usr/bin/chromium","args":[{}]}}}}}}}}"#,
        args.join(",")
    );
    let body = driver.request("POST", "/session", Some(&caps))?;
    let id = json_string(&body, "sessionId").ok_or_else(|| io::Error::other(body.clone()))?;
    let session = Session {
        driver: &driver,
        id,
    };

    // The page opens and joins over WebSocket.
    let url = format!("http://127.0.0.1:{port}/");
    driver.request(
        "POST",
        &session.path("/url"),
        Some(&format!("{{\"url\":{}}}", json_quote(&url))),
    )?;
    session.wait_for("you are guest2; 1 other is here")?;
    terminal.wait_for("* guest2 joined\r\n");

    // A line typed in the page reaches the nc member.
    let found = driver.request(
        "POST",
        &session.path("/element"),
        Some(r##"{"using":"css selector","value":"#line"}"##),
    )?;
    let element = json_string(&found, "element-6066-11e4-a52e-4f735466cecf")
        .ok_or_else(|| io::Error::other(found.clone()))?;
    let typed = format!(
        "{{\"text\":{}}}",
        json_quote("/nick chromium\u{e007}hello from the browser\u{e007}")
    );
    driver.request(
        "POST",
        &session.path(&format!("/element/{element}/value")),
        Some(&typed),
    )?;
    terminal.wait_for("* guest2 is now known as chromium\r\n");
    terminal.wait_for("<chromium> hello from the browser\r\n");

    // A line the nc member sends shows in the page.
    terminal.send("hello from nc\n");
    let log = session.wait_for("<guest1> hello from nc")?;
    // A spare connection the browser may have opened and left silent is greeted like a
    // terminal, but never shows as a member.
    assert!(!log.contains(" joined"), "{log}");

    // The page, as it looks: a PNG.
    let shot = driver.request("GET", &session.path("/screenshot"), None)?;
    let png = base64::engine::general_purpose::STANDARD
        .decode(json_string(&shot, "value").unwrap_or_default())
        .map_err(|e| io::Error::other(format!("screenshot: {e}")))?;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    if std::env::var_os("EVDRIVE_UPDATE_SCREENSHOT").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/chat.png");
        std::fs::write(docs, &png)?;
    }
    driver.request("DELETE", &session.path(""), None)?;
    Ok(())
}
