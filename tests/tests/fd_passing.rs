//! Descriptor passing over Unix-domain connections (S29): descriptors arrive owned and
//! close-on-exec, before the bytes they came with; a truncated control message closes the
//! connection with an error instead of losing descriptors silently; and a live TCP connection
//! is handed from this process's reactor to another process's reactor, its client talking on
//! without noticing.

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use evdrive_tests::{is_child, localhost, observe, spawn_child, Event, Server, TempDir, WAIT};
use reactor::{
    CloseKind, ConnConfig, ConnId, Cx, ListenOptions, Protocol, Reactor, UnixAddr,
    UnixListenOptions,
};

fn no_tcp_addr() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

/// What a receiving handler saw, in order.
#[derive(Debug, PartialEq)]
enum Seen {
    /// `on_fds`: how many, whether each was close-on-exec, and the bytes received before.
    Fds(usize, bool, usize),
    /// `on_data`: the bytes offered.
    Data(Vec<u8>),
}

/// Records what arrives; writes a line through every received descriptor.
#[derive(Default)]
struct Receiver {
    received: usize,
}

impl Protocol<Vec<Seen>> for Receiver {
    fn on_fds(&mut self, cx: &mut Cx<'_, Vec<Seen>>, fds: Vec<OwnedFd>) {
        let cloexec = fds
            .iter()
            .all(|fd| reactor::sys::is_cloexec(fd.as_fd()).unwrap_or(false));
        cx.app().push(Seen::Fds(fds.len(), cloexec, self.received));
        for fd in fds {
            let mut through = UnixStream::from(fd);
            let _ = through.write_all(b"through the passed descriptor\n");
        }
    }

    fn on_data(&mut self, cx: &mut Cx<'_, Vec<Seen>>, data: &[u8]) -> usize {
        self.received += data.len();
        cx.app().push(Seen::Data(data.to_vec()));
        data.len()
    }
}

/// Sends `before`, then `with` carrying `fds`, then `after`, from inside a reactor.
struct Sender {
    fds: Vec<OwnedFd>,
}

impl<App> Protocol<App> for Sender {
    fn on_open(&mut self, cx: &mut Cx<'_, App>) {
        cx.write(b"before|");
        let fds = std::mem::take(&mut self.fds);
        assert!(cx.write_with_fds(b"with|".to_vec(), fds).is_ok());
        cx.write(b"after");
    }
    fn on_data(&mut self, _: &mut Cx<'_, App>, data: &[u8]) -> usize {
        data.len()
    }
}

#[test]
fn descriptors_arrive_owned_cloexec_and_before_their_bytes() -> io::Result<()> {
    let dir = TempDir::new("fds")?;
    let path = dir.join("recv.sock");
    let addr = UnixAddr::from(path.clone());
    let server = Server::start(Vec::new, move |r| {
        r.listen_unix(&addr, UnixListenOptions::new(), |_| Receiver::default())?;
        Ok(no_tcp_addr())
    })?;
    // Two ends of a socket pair: one travels, the test keeps the other to hear through it.
    let (kept, travels) = UnixStream::pair()?;
    kept.set_read_timeout(Some(WAIT))?;
    let addr = UnixAddr::from(path.clone());
    let sender = Server::start(
        || (),
        move |r| {
            let fds = vec![OwnedFd::from(travels)];
            r.cx()
                .connect_unix(&addr, Sender { fds }, ConnConfig::default())?;
            Ok(no_tcp_addr())
        },
    )?;
    let mut line = String::new();
    BufReader::new(&kept).read_line(&mut line)?;
    assert_eq!(line, "through the passed descriptor\n");
    let seen = server
        .wait_for(WAIT, |r| {
            let total: usize = r
                .app()
                .iter()
                .map(|s| match s {
                    Seen::Data(d) => d.len(),
                    Seen::Fds(..) => 0,
                })
                .sum();
            (total == "before|with|after".len()).then(|| std::mem::take(r.app()))
        })
        .expect("the bytes never all arrived");
    let fds_at = seen
        .iter()
        .position(|s| matches!(s, Seen::Fds(..)))
        .expect("no descriptors arrived");
    let Seen::Fds(n, cloexec, before) = seen[fds_at] else {
        unreachable!()
    };
    assert_eq!(n, 1);
    assert!(cloexec, "a received descriptor is not close-on-exec");
    // Before their bytes: none of "with|" was offered yet, and the next offer holds its first
    // byte.
    assert!(
        before <= "before|".len(),
        "descriptors came after their bytes: {seen:?}"
    );
    let Some(Seen::Data(next)) = seen.get(fds_at + 1) else {
        panic!("no bytes followed the descriptors: {seen:?}");
    };
    let offset = "before|".len() - before;
    assert_eq!(next.get(offset), Some(&b'w'), "{seen:?}");
    sender.shutdown(Duration::from_secs(1))?;
    server.shutdown(Duration::from_secs(1))
}

/// Sends one byte with `n` descriptors from a plain socket (more than a reactor sends).
fn send_many_fds(stream: &UnixStream, n: usize) -> io::Result<()> {
    let files: Vec<std::fs::File> = (0..n)
        .map(|_| std::fs::File::open("/dev/null"))
        .collect::<io::Result<_>>()?;
    let fds: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
    reactor::sys::send_with_fds(stream.as_fd(), b"x", &fds)?;
    Ok(())
}

#[test]
fn a_truncated_control_message_is_an_error_not_a_silent_loss() -> io::Result<()> {
    let dir = TempDir::new("fds")?;
    let path = dir.join("trunc.sock");
    let addr = UnixAddr::from(path.clone());
    let (watch, mut seen) = observe();
    let server = Server::start(Vec::new, move |r| {
        r.listen_unix(&addr, UnixListenOptions::new(), move |_| {
            watch.wrap(Receiver::default())
        })?;
        Ok(no_tcp_addr())
    })?;
    let client = UnixStream::connect(&path)?;
    // More than the reactor's receive buffer holds (`MAX_FDS`).
    send_many_fds(&client, reactor::sys::MAX_FDS + 8)?;
    let (_, kind) = seen.wait_any_close();
    assert_eq!(kind, CloseKind::Io);
    let text = seen
        .seen()
        .iter()
        .find_map(|e| match e {
            Event::Close(_, _, text) => Some(text.clone()),
            _ => None,
        })
        .unwrap();
    assert!(text.contains("MSG_CTRUNC"), "{text}");
    let got = server.with(|r| std::mem::take(r.app()));
    assert!(
        !got.iter()
            .any(|s| matches!(s, Seen::Fds(..) | Seen::Data(_))),
        "part of a truncated message was passed on: {got:?}"
    );
    server.shutdown(Duration::from_secs(1))
}

// ---------------------------------------------------------------------------------------------
// Hand-over of a live TCP connection to another process.

const HANDOVER_CHILD: &str = "handover_child";
const SOCK_ENV: &str = "EVDRIVE_HANDOVER_SOCK";

/// Answers each line with `<tag> <line>`; on `move` hands its connection over through the
/// courier connection, with the bytes it read after `move` (the next process answers them).
struct Tagged {
    tag: String,
    courier: Option<ConnId>,
    /// Bytes received before adoption that this handler must answer first.
    leftover: Vec<u8>,
}

impl Tagged {
    fn answer(&self, cx: &mut Cx<'_, AppState>, line: &[u8]) {
        let mut out = format!("{} ", self.tag).into_bytes();
        out.extend_from_slice(line);
        out.push(b'\n');
        cx.write(&out);
    }
}

/// The state of a reactor in the hand-over test.
#[derive(Default)]
struct AppState {
    /// How each Tagged connection ended.
    closes: Vec<CloseKind>,
}

impl Protocol<AppState> for Tagged {
    fn on_open(&mut self, cx: &mut Cx<'_, AppState>) {
        // Whole lines only in this test: the first process cuts after `move\n`, and its client
        // sends whole lines.
        let leftover = std::mem::take(&mut self.leftover);
        self.on_data(cx, &leftover);
    }

    fn on_data(&mut self, cx: &mut Cx<'_, AppState>, data: &[u8]) -> usize {
        let mut used = 0;
        while let Some(nl) = data[used..].iter().position(|&b| b == b'\n') {
            let line = &data[used..used + nl];
            used += nl + 1;
            if line == b"move" {
                if let Some(courier) = self.courier {
                    let fd = cx.detach().expect("detach");
                    // The frame: the bytes read past `move`, which the next process answers.
                    let rest = &data[used..];
                    let mut frame = (rest.len() as u32).to_be_bytes().to_vec();
                    frame.extend_from_slice(rest);
                    let sent = cx.send_with_fds_to(courier, frame, vec![fd]);
                    assert!(sent.is_ok(), "courier refused the descriptor");
                    return data.len();
                }
            }
            self.answer(cx, line);
        }
        used
    }

    fn on_close(&mut self, cx: &mut Cx<'_, AppState>, reason: reactor::CloseReason) {
        cx.app().closes.push(reason.kind());
    }
}

/// The courier of the receiving process: adopts each descriptor with the bytes framed with it.
struct Adopter {
    fds: Rc<RefCell<Vec<OwnedFd>>>,
}

impl Protocol<AppState> for Adopter {
    fn on_fds(&mut self, _: &mut Cx<'_, AppState>, fds: Vec<OwnedFd>) {
        self.fds.borrow_mut().extend(fds);
    }

    fn on_data(&mut self, cx: &mut Cx<'_, AppState>, data: &[u8]) -> usize {
        let mut used = 0;
        while data.len() - used >= 4 {
            let len = u32::from_be_bytes(data[used..used + 4].try_into().unwrap()) as usize;
            if data.len() - used - 4 < len {
                break;
            }
            let leftover = data[used + 4..used + 4 + len].to_vec();
            used += 4 + len;
            let fd = self.fds.borrow_mut().remove(0);
            let handler = Tagged {
                tag: format!("b{}", std::process::id()),
                courier: None,
                leftover,
            };
            cx.adopt_stream(fd, handler, ConnConfig::default())
                .expect("adopt");
        }
        used
    }
}

/// The receiving process: listens on the courier socket, adopts the connection it is handed,
/// and serves it until its client closes.
#[test]
#[ignore = "runs only as the child process of handover_to_another_process"]
fn handover_child() -> io::Result<()> {
    if !is_child(HANDOVER_CHILD) {
        return Ok(());
    }
    let path = std::env::var_os(SOCK_ENV).expect("no socket path");
    let mut r = Reactor::new(AppState::default())?;
    r.listen_unix(
        &UnixAddr::from(std::path::PathBuf::from(path)),
        UnixListenOptions::new(),
        |_| Adopter { fds: Rc::default() },
    )?;
    println!("handover-ready");
    io::stdout().flush()?;
    let deadline = std::time::Instant::now() + WAIT * 4;
    while r.app().closes.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the adopted client never finished"
        );
        r.turn(Some(Duration::from_millis(100)))?;
    }
    assert_eq!(r.app().closes, [CloseKind::PeerClosed]);
    r.shutdown(Duration::from_secs(1));
    r.run()
}

#[test]
fn handover_to_another_process() -> io::Result<()> {
    let dir = TempDir::new("handover")?;
    let path = dir.join("courier.sock");
    let mut child = spawn_child(HANDOVER_CHILD, &[(SOCK_ENV, path.as_os_str())])?;
    // Wait for the child's listener: it says so on its standard output (after the test
    // harness's "test ... " on the same line).
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    while !line.contains("handover-ready") {
        line.clear();
        if out.read_line(&mut line)? == 0 {
            panic!("the child ended before listening: {:?}", child.wait()?);
        }
    }
    let courier_path = UnixAddr::from(path.clone());
    let server = Server::start(AppState::default, move |r| {
        let courier = r.cx().connect_unix(
            &courier_path,
            Tagged {
                tag: "courier".into(),
                courier: None,
                leftover: Vec::new(),
            },
            ConnConfig::default(),
        )?;
        let listener = r.listen(localhost(), ListenOptions::default(), move |_, _| Tagged {
            tag: "a".into(),
            courier: Some(courier),
            leftover: Vec::new(),
        })?;
        r.listener_addr(listener)
    })?;

    let mut client = TcpStream::connect(server.addr())?;
    client.set_read_timeout(Some(WAIT))?;
    let mut replies = BufReader::new(client.try_clone()?);
    let mut reply = String::new();
    client.write_all(b"one\n")?;
    replies.read_line(&mut reply)?;
    assert_eq!(reply, "a one\n");
    // `move` and the next line in one segment: the first process reads both, and the second
    // must answer the line it never read from the socket.
    client.write_all(b"move\ntwo\n")?;
    let theirs = format!("b{}", child.id());
    for line in ["two", "three"] {
        if line == "three" {
            client.write_all(b"three\n")?;
        }
        reply.clear();
        replies.read_line(&mut reply)?;
        assert_eq!(reply, format!("{theirs} {line}\n"));
    }
    // The first process let go of it: its handler ended with `Detached`.
    let closes = server
        .wait_for(WAIT, |r| {
            (!r.app().closes.is_empty()).then(|| r.app().closes.clone())
        })
        .expect("the first process never let go");
    assert_eq!(closes, [CloseKind::Detached]);
    // The client ends; the second process sees its end of stream and finishes.
    drop(replies);
    drop(client);
    let status = child.wait()?;
    let mut rest = String::new();
    out.read_to_string(&mut rest)?;
    assert!(
        status.success(),
        "the receiving process failed ({status}):\n{rest}"
    );
    assert!(
        rest.contains("1 passed"),
        "the child test did not run:\n{rest}"
    );
    server.shutdown(Duration::from_secs(1))
}
