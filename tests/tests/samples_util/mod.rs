//! Helpers for the sample servers' tests (`chat.rs`, `http.rs`, `kv.rs`): run a sample's
//! reactor on a thread of its own, and drive real command-line clients against it.
//!
//! Every wait is bounded by [`WAIT`], so a broken server fails a test instead of hanging it.

#![allow(dead_code)] // Each test file uses a different part.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reactor::{Handle, ListenOptions, LoopCx, Protocol, Reactor};

/// The longest any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A sample server: a reactor listening on a free port of 127.0.0.1, run by a thread of its own.
///
/// The reactor is not `Send`, so it is built on that thread; the test keeps its `Send` side,
/// a [`Handle`], to look inside ([`query`](Self::query)) and to shut it down. Dropping the
/// server shuts it down gracefully and joins the thread.
pub struct Sample<App: 'static> {
    addr: SocketAddr,
    handle: Handle<App>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl<App: 'static> Sample<App> {
    /// Starts a server whose state comes from `app` and whose connections are served by the
    /// handlers `factory` makes, with `opts`.
    pub fn start<P, F>(
        app: impl FnOnce() -> App + Send + 'static,
        opts: ListenOptions,
        factory: F,
    ) -> io::Result<Self>
    where
        P: Protocol<App> + 'static,
        F: FnMut(&mut App, SocketAddr) -> P + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || -> io::Result<()> {
            let setup = || -> io::Result<(Reactor<App>, SocketAddr, Handle<App>)> {
                let mut reactor = Reactor::new(app())?;
                let listener = reactor.listen("127.0.0.1:0".parse().unwrap(), opts, factory)?;
                let addr = reactor.listener_addr(listener)?;
                let handle = reactor.handle()?;
                Ok((reactor, addr, handle))
            };
            match setup() {
                Ok((mut reactor, addr, handle)) => {
                    let _ = tx.send(Ok((addr, handle)));
                    reactor.run()
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    Ok(())
                }
            }
        });
        let (addr, handle) = rx
            .recv_timeout(WAIT)
            .map_err(|_| io::Error::other("the server thread did not start"))??;
        Ok(Sample {
            addr,
            handle,
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Runs `f` inside the server's loop and returns its result.
    pub fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LoopCx<'_, App>) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = mpsc::channel();
        self.handle
            .post(move |cx| {
                let _ = tx.send(f(cx));
            })
            .expect("the server is running");
        rx.recv_timeout(WAIT).expect("the server answered")
    }

    /// Waits until `f`, run inside the server's loop, returns true.
    pub fn wait_until(
        &self,
        what: &str,
        f: impl Fn(&mut LoopCx<'_, App>) -> bool + Send + Sync + 'static,
    ) {
        let f = Arc::new(f);
        let deadline = Instant::now() + WAIT;
        loop {
            let g = Arc::clone(&f);
            if self.query(move |cx| g(cx)) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl<App: 'static> Drop for Sample<App> {
    fn drop(&mut self) {
        let _ = self.handle.shutdown(Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let result = thread.join();
            if !std::thread::panicking() {
                result
                    .expect("the server thread panicked")
                    .expect("the server ran");
            }
        }
    }
}

/// Fails the test unless `program` is on the `PATH`. A test of a real client must not pass
/// without having run it; `bash .ci/run` installs every client the tests use.
///
/// # Panics
/// If `program` is not installed, with a message naming it.
pub fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    assert!(
        found,
        "`{program}` is not installed, and this test needs it: install it \
         (bash .ci/run installs every client the tests use)"
    );
}

/// A client program whose output is collected by a thread, so the test can wait for text.
pub struct Tool {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Everything the program wrote to its standard output so far.
    out: Arc<Mutex<Vec<u8>>>,
    /// The thread copying the output; it ends when the program closes its output.
    reader: Option<JoinHandle<()>>,
}

impl Tool {
    /// Starts `program args…` with piped standard input and output.
    pub fn spawn(program: &str, args: &[&str]) -> io::Result<Tool> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("piped");
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Ok(Tool {
            child,
            stdin,
            out,
            reader: Some(reader),
        })
    }

    /// Writes `text` to the program's standard input.
    pub fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// The output so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Waits until the output contains `needle`; returns the output.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?}; got:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the program to exit on its own.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the client did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `program args…` to completion with a deadline; returns its standard output.
pub fn run(program: &str, args: &[&str]) -> io::Result<String> {
    let mut tool = Tool::spawn(program, args)?;
    drop(tool.stdin.take());
    let status = tool.wait_exit();
    // The reader thread may still be copying the last bytes.
    if let Some(reader) = tool.reader.take() {
        let _ = reader.join();
    }
    if !status.success() {
        return Err(io::Error::other(format!(
            "{program} {args:?} failed ({status}): {}",
            tool.text()
        )));
    }
    Ok(tool.text())
}

/// A blocking client socket with read and write timeouts of [`WAIT`].
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(WAIT))?;
    stream.set_write_timeout(Some(WAIT))?;
    Ok(stream)
}

/// Reads from `stream` until what was read contains `needle` (or fails after [`WAIT`]).
pub fn read_until(stream: &mut TcpStream, got: &mut Vec<u8>, needle: &[u8]) -> io::Result<()> {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 16 * 1024];
    while !got.windows(needle.len()).any(|w| w == needle) {
        if Instant::now() > deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "closed before {:?}; got {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(got)
                ),
            ));
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

/// Reads from `stream` until `got` holds `needle`, then takes from `got` what came up to the
/// needle's end and returns it; what came after stays in `got` for the next call. `who` names
/// the reader in the error, with everything it had received.
pub fn take_until(
    stream: &mut TcpStream,
    got: &mut Vec<u8>,
    needle: &str,
    who: &str,
) -> io::Result<String> {
    if let Err(e) = read_until(stream, got, needle.as_bytes()) {
        let seen = String::from_utf8_lossy(got);
        return Err(io::Error::other(format!(
            "{who} waiting for {needle:?}: {e}; got {seen:?}"
        )));
    }
    let needle = needle.as_bytes();
    let end = got
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("read_until found it")
        + needle.len();
    let text = String::from_utf8_lossy(&got[..end]).into_owned();
    got.drain(..end);
    Ok(text)
}

/// Reads from `stream` until the peer closes; returns everything read.
pub fn read_to_end(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    stream.read_to_end(&mut got)?;
    Ok(got)
}
