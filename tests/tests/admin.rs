//! The admin endpoint of the real `evdrive` samples (`--admin ADDR`): `GET /metrics` fetched
//! with `curl` reflects the traffic the test made, passes a strict parser of the Prometheus text
//! format and `promtool check metrics`; `GET /connections` is strict JSON naming the
//! connections the test holds open.
//!
//! The server runs as a child process, built on first use as `signals.rs` does (see there why
//! the path is derived from this test's own).

mod formats_util;
mod samples_util;

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Instant;

use evdrive_tests::evdrive_binary;
use formats_util::{parse_exposition, Json};
use samples_util::{connect, read_until, require, run, WAIT};

/// A running sample with its admin endpoint; killed when dropped.
struct Evdrive {
    child: Child,
    /// Where the sample serves its protocol.
    addr: SocketAddr,
    /// Where it serves `/metrics` and `/connections`.
    admin: SocketAddr,
    /// The line announcing the admin endpoint.
    admin_line: String,
}

impl Evdrive {
    /// Starts `evdrive <sample> --listen 127.0.0.1:0 --admin 127.0.0.1:0 <args>` and waits
    /// for both addresses on standard error.
    fn start(sample: &str, args: &[&str]) -> io::Result<Evdrive> {
        let mut child = Command::new(evdrive_binary())
            .args([sample, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines): (_, Receiver<String>) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // The admin line comes first, then the sample's own.
        let (mut admin, mut addr, mut admin_line) = (None, None, String::new());
        let after = |line: &str, marker: &str| -> Option<SocketAddr> {
            let at = line.find(marker)? + marker.len();
            line[at..].split_whitespace().next()?.parse().ok()
        };
        let deadline = Instant::now() + WAIT;
        while addr.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).map_err(|_| {
                io::Error::other(format!("evdrive {sample} did not announce its addresses"))
            })?;
            if let Some(a) = after(&line, &format!("evdrive {sample} admin on ")) {
                admin = Some(a);
                admin_line = line;
            } else if let Some(a) = after(&line, &format!("evdrive {sample} listening on ")) {
                addr = Some(a);
            }
        }
        Ok(Evdrive {
            child,
            addr: addr.expect("seen"),
            admin: admin.expect("the admin line comes before the listening line"),
            admin_line,
        })
    }

    /// `curl -i` of `path` on the admin endpoint with `extra` options: (status, headers, body).
    fn curl(&self, path: &str, extra: &[&str]) -> io::Result<(u16, String, String)> {
        let url = format!("http://{}{path}", self.admin);
        let mut args = vec!["-sS", "-i", "--max-time", "10"];
        args.extend_from_slice(extra);
        args.push(&url);
        let out = run("curl", &args)?;
        let (head, body) = out.split_once("\r\n\r\n").expect("a response head");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        Ok((status, head.to_string(), body.to_string()))
    }

    /// The metrics, checked against the format, as samples by series.
    fn metrics(&self) -> io::Result<HashMap<String, f64>> {
        let (status, head, body) = self.curl("/metrics", &[])?;
        assert_eq!(status, 200, "{head}");
        assert!(
            head.contains("\r\nContent-Type: text/plain; version=0.0.4"),
            "{head}"
        );
        Ok(parse_exposition(&body))
    }

    /// Waits until `f` holds of the metrics; returns them.
    fn wait_metrics(
        &self,
        what: &str,
        f: impl Fn(&HashMap<String, f64>) -> bool,
    ) -> io::Result<HashMap<String, f64>> {
        let deadline = Instant::now() + WAIT;
        loop {
            let m = self.metrics()?;
            if f(&m) {
                return Ok(m);
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {m:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for Evdrive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `promtool check metrics` on `text`; fails the test on any complaint.
fn promtool_check(text: &str) -> io::Result<()> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics ({}): {said}",
        out.status
    );
    Ok(())
}

#[test]
fn kv_metrics_and_connections_reflect_the_traffic() -> io::Result<()> {
    for tool in ["curl", "promtool", "redis-cli"] {
        require(tool);
    }
    let server = Evdrive::start("kv", &[])?;
    let port = server.addr.port().to_string();

    // Five clients that set a key each and leave, two that stay.
    for i in 0..5 {
        let out = run("redis-cli", &["-p", &port, "SET", &format!("key{i}"), "v"])?;
        assert_eq!(out, "OK\n");
    }
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = connect(server.addr)?;
        c.write_all(b"*1\r\n$4\r\nPING\r\n")?;
        read_until(&mut c, &mut Vec::new(), b"+PONG\r\n")?;
        held.push(c);
    }

    // The leavers' closes are counted once the server has read their FIN: wait for it.
    let closed = |m: &HashMap<String, f64>| {
        m.iter()
            .filter(|(k, _)| k.starts_with("evdrive_connections_closed_total{"))
            .map(|(_, v)| v)
            .sum::<f64>()
    };
    let m = server.wait_metrics("five closes", |m| closed(m) >= 5.0)?;
    // Accepted: the seven clients and the admin's own curl connections.
    assert!(m["evdrive_connections_accepted_total"] >= 7.0, "{m:?}");
    assert!(m["evdrive_connections_open"] >= 2.0, "{m:?}");
    assert!(m["evdrive_connections_closed_total{reason=\"peer_closed\"}"] >= 5.0);
    assert_eq!(m["evdrive_accept_errors_total{errno=\"EMFILE\"}"], 0.0);
    assert!(m["evdrive_received_bytes_total"] >= 5.0 * 14.0, "{m:?}");
    assert_eq!(m["evdrive_kv_keys"], 5.0, "one key per SET");
    let (_, _, body) = server.curl("/metrics", &[])?;
    promtool_check(&body)?;

    // The connections: strict JSON, the held clients among them with their traffic.
    let (status, head, body) = server.curl("/connections", &[])?;
    assert_eq!(status, 200);
    assert!(
        head.contains("\r\nContent-Type: application/json"),
        "{head}"
    );
    let conns = match Json::parse(&body).expect("valid JSON") {
        Json::Arr(conns) => conns,
        other => panic!("not an array: {other:?}"),
    };
    let fields = [
        "id",
        "peer",
        "state",
        "age",
        "idle",
        "queued",
        "buffered",
        "paused",
        "timers",
        "bytes_in",
        "bytes_out",
    ];
    for conn in &conns {
        let keys: Vec<&str> = conn.keys();
        assert_eq!(keys, fields, "{conn:?}");
    }
    for client in &held {
        let me = client.local_addr()?.to_string();
        let conn = conns
            .iter()
            .find(|c| c.get("peer") == Some(&Json::Str(me.clone())))
            .unwrap_or_else(|| panic!("{me} missing from {body}"));
        assert_eq!(conn.get("state"), Some(&Json::Str("open".into())));
        assert_eq!(conn.get("bytes_in"), Some(&Json::Num(14.0)));
        assert_eq!(conn.get("bytes_out"), Some(&Json::Num(7.0)));
        assert_eq!(conn.get("paused"), Some(&Json::Bool(false)));
    }
    Ok(())
}

#[test]
fn other_paths_and_methods_are_refused() -> io::Result<()> {
    require("curl");
    let server = Evdrive::start("http", &[])?;
    assert_eq!(server.curl("/", &[])?.0, 404);
    assert_eq!(server.curl("/metrics/x", &[])?.0, 404);
    let (status, head, _) = server.curl("/metrics", &["-X", "POST"])?;
    assert_eq!(status, 405);
    assert!(head.contains("\r\nAllow: GET"), "{head}");
    assert_eq!(server.curl("/connections", &["-X", "DELETE"])?.0, 405);
    assert_eq!(server.curl("/connections", &["-I"])?.0, 405);
    // The sample itself still serves on its own port.
    let mut c = connect(server.addr)?;
    c.write_all(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")?;
    read_until(&mut c, &mut Vec::new(), b"\r\n\r\nok\n")?;
    Ok(())
}

#[test]
fn chat_members_are_counted() -> io::Result<()> {
    for tool in ["curl", "promtool"] {
        require(tool);
    }
    let server = Evdrive::start("chat", &[])?;
    let mut members = Vec::new();
    for _ in 0..3 {
        let mut c = connect(server.addr)?;
        // Welcomed: the member is in the room.
        read_until(&mut c, &mut Vec::new(), b"guest")?;
        members.push(c);
    }
    let m = server.metrics()?;
    assert_eq!(m["evdrive_chat_members"], 3.0);
    drop(members.pop());
    server.wait_metrics("a member leaving", |m| m["evdrive_chat_members"] == 2.0)?;
    promtool_check(&server.curl("/metrics", &[])?.2)
}

#[test]
fn with_threads_thread_zero_serves_its_own_reactor() -> io::Result<()> {
    for tool in ["curl", "promtool"] {
        require(tool);
    }
    let server = Evdrive::start("echo", &["--threads", "2"])?;
    assert!(
        server.admin_line.ends_with("(thread 0)"),
        "{}",
        server.admin_line
    );
    let m = server.metrics()?;
    // No client of the sample yet: only the endpoint's own connections were accepted.
    assert_eq!(m["evdrive_connections_closed_total{reason=\"reset\"}"], 0.0);
    assert!(m["evdrive_connections_accepted_total"] >= 1.0);
    let (_, _, body) = server.curl("/metrics", &[])?;
    promtool_check(&body)?;
    let mut c = connect(server.addr)?;
    c.write_all(b"x\n")?;
    read_until(&mut c, &mut Vec::new(), b"x\n")?;
    Ok(())
}
