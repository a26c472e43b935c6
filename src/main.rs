//! `evdrive`: the sample servers on the command line.
//!
//! ```text
//! evdrive echo [--listen 127.0.0.1:7007]     TCP echo
//! evdrive chat [--listen 127.0.0.1:7000]     line-based chat room (nc, socat, telnet)
//! evdrive http [--listen 127.0.0.1:8080]     HTTP/1.1 with keep-alive (curl, wrk)
//! evdrive kv   [--listen 127.0.0.1:6380]     Redis-protocol key-value store (redis-cli)
//! evdrive proxy --upstream ADDR [--listen 127.0.0.1:7100] [--connect-timeout SECS]
//!                                             TCP forwarder
//! evdrive udp-echo [--listen 127.0.0.1:7007] UDP echo (nc -u, socat)
//! ```
//! Logging goes through `RUST_LOG` (e.g. `RUST_LOG=debug`). SIGINT or SIGTERM shuts down
//! gracefully (a second one stops at once); SIGUSR1 prints every connection. `--admin ADDR`
//! serves `GET /metrics` (Prometheus) and `GET /connections` (JSON) from the same reactor.
//!
//! Every subcommand is a call to [`serve`] with its state and handler: the reactor setup, the
//! signals and the run loop are written once.

mod udp;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use protocols::admin::{AdminServer, AppMetrics};
use protocols::chat::{self, ChatConn, ChatRoom};
use protocols::echo::{self, Echo};
use protocols::http_server::{self, HttpServer};
use protocols::kv::{self, KvConn, KvStore};
use protocols::proxy::{ProxyClient, ProxyStats};
use reactor::sys::{SIGINT, SIGTERM, SIGUSR1};
use reactor::{AtLimit, ConnConfig, Group, Limits, ListenOptions, Protocol, Reactor};

/// Default port of `evdrive echo`.
const ECHO_PORT: u16 = 7007;
/// Default port of `evdrive chat`.
const CHAT_PORT: u16 = 7000;
/// Default port of `evdrive http`.
const HTTP_PORT: u16 = 8080;
/// Default port of `evdrive kv` (next to Redis's 6379, so both can run).
const KV_PORT: u16 = 6380;
/// Default port of `evdrive proxy`.
const PROXY_PORT: u16 = 7100;

#[derive(Parser, Debug)]
#[command(
    name = "evdrive",
    version,
    about = "Sample servers on the evdrive event-driven reactor",
    long_about = "Sample servers on the evdrive event-driven reactor.\n\n\
        Each subcommand serves one protocol on a default port of 127.0.0.1, ready for a real \
        client: echo on 7007 (nc), chat on 7000 (nc, socat), http on 8080 (curl, wrk), kv on \
        6380 (redis-cli, redis-benchmark). `evdrive help <subcommand>` lists the protocol's \
        commands.\n\n\
        Log level through RUST_LOG (error, warn, info, debug). SIGINT/SIGTERM shut down \
        gracefully: listeners close, queued output is flushed, every connection is half-closed \
        and given the grace period to finish; a second signal stops at once. SIGUSR1 prints a \
        snapshot of every connection to standard error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// TCP echo: every byte is sent back (default 127.0.0.1:7007). Try `nc 127.0.0.1 7007`.
    #[command(long_about = ECHO_HELP, after_long_help = RUNTIME_HELP)]
    Echo(Common),
    /// Chat room over lines of text (default 127.0.0.1:7000). Try `nc 127.0.0.1 7000` twice.
    #[command(long_about = CHAT_HELP, after_long_help = RUNTIME_HELP)]
    Chat(ChatArgs),
    /// HTTP/1.1 server with two pages (default 127.0.0.1:8080). Try `curl 127.0.0.1:8080`.
    #[command(long_about = HTTP_HELP, after_long_help = RUNTIME_HELP)]
    Http(Common),
    /// Redis-protocol key-value store (default 127.0.0.1:6380). Try `redis-cli -p 6380`.
    #[command(long_about = KV_HELP, after_long_help = RUNTIME_HELP)]
    Kv(Common),
    /// TCP forwarder to --upstream (default 127.0.0.1:7100). Try `nc 127.0.0.1 7100`.
    #[command(long_about = PROXY_HELP, after_long_help = RUNTIME_HELP)]
    Proxy(ProxyArgs),
    /// UDP echo: every datagram is sent back (default 127.0.0.1:7007). Try `nc -u 127.0.0.1
    /// 7007`.
    UdpEcho(udp::UdpEchoArgs),
}

/// What every subcommand's long help ends with.
const RUNTIME_HELP: &str = "Logging: RUST_LOG=error|warn|info|debug (default info). Signals: \
    SIGINT or SIGTERM shut down gracefully (queued output is flushed, connections get \
    --shutdown-grace seconds to finish; a second signal stops at once); SIGUSR1 prints every \
    connection to standard error.";

const ECHO_HELP: &str = "TCP echo: every byte received is sent back, in order.\n\n\
    Listens on 127.0.0.1:7007 unless --listen says otherwise. Try: nc 127.0.0.1 7007\n\n\
    A client that sends but does not read its echo is paused by backpressure, never buffered \
    without bound.";

const CHAT_HELP: &str = "A chat room over lines of text: what a member types reaches every \
    other member.\n\n\
    Listens on 127.0.0.1:7000 unless --listen says otherwise. Try `nc 127.0.0.1 7000` from two \
    terminals (or `socat - TCP:127.0.0.1:7000`).\n\n\
    A member joins as guestN and is told so; the others see `* guestN joined` and, later, \
    `* guestN left`. A line not starting with / is a message: the others receive `<nick> text`, \
    in the order the server received the lines. Commands:\n\
    \x20 /nick NAME   change nickname (1-20 of A-Z a-z 0-9 _ -, unique ignoring case)\n\
    \x20 /who         list the members\n\
    \x20 /me ACTION   the others see `* nick ACTION`\n\
    \x20 /quit        leave\n\
    \x20 /help        list the commands\n\
    \x20 //text       a message starting with /\n\
    An unknown command gets an error line; the connection stays.\n\n\
    Limits: a line is at most 16 KiB (a longer one gets an error line, then that connection \
    closes); a member who stops reading is disconnected (slow consumer) once 4 MiB wait for \
    it, or more than 2 MiB for 5 seconds, without holding up the others; one who reads but is \
    briefly behind keeps its place. Past --max-connections a client gets `* the room is \
    full` and a close.\n\n\
    Timeouts: --idle-timeout closes a connection with no traffic either way, so in a busy room \
    it does not catch a member who only listens. --heartbeat SECS does: every SECS, a member \
    who sent nothing during the interval gets a `* ping` line, and one silent for 3 intervals \
    in a row is disconnected. Any line counts as a sign of life.";

const HTTP_HELP: &str = "A small HTTP/1.1 server.\n\n\
    Listens on 127.0.0.1:8080 unless --listen says otherwise. Try: curl -v \
    http://127.0.0.1:8080/ http://127.0.0.1:8080/health\n\n\
    \x20 GET /          200, `Hello from evdrive`\n\
    \x20 GET /health    200, `ok`\n\
    \x20 HEAD           the same headers, no body\n\
    \x20 other methods  405 on those paths\n\
    \x20 other paths    404\n\n\
    Keep-alive and pipelining: every complete request is answered in order, and the \
    connection stays open unless the client sends `Connection: close` or speaks HTTP/1.0 \
    without `Connection: keep-alive`. A malformed request gets 400, a request head over 8 KiB \
    or 64 headers 431, a body over 1 MiB 413, then the connection closes. A request that does \
    not arrive whole within 20 s of its first byte gets 408 and a close (slow clients cannot \
    hold a connection), and keep-alive connections idle for --idle-timeout seconds (default \
    60) are closed.";

const KV_HELP: &str = "An in-memory key-value store speaking the Redis protocol (RESP2).\n\n\
    Listens on 127.0.0.1:6380 unless --listen says otherwise. Try: redis-cli -p 6380, or \
    redis-benchmark -p 6380 -t ping,set,get,incr -P 16 -q\n\n\
    Commands:\n\
    \x20 PING [msg]   ECHO msg\n\
    \x20 SET key value [NX|XX] [GET] [EX s|PX ms|KEEPTTL]   GET key\n\
    \x20 DEL key...   EXISTS key...\n\
    \x20 INCR key   DECR key   INCRBY key n   DECRBY key n\n\
    \x20 EXPIRE key s   PEXPIRE key ms   PERSIST key   TTL key   PTTL key\n\
    \x20 DBSIZE   FLUSHALL   FLUSHDB   SELECT 0   QUIT\n\
    \x20 CONFIG GET param...   COMMAND [DOCS]   (what clients ask for at start)\n\
    Replies and error messages are Redis's own. Keys expire on the reactor's timer wheel and \
    are checked on every read. Pipelined commands are answered in order. An unknown command \
    gets an error reply; a malformed request (or an argument over 1 MiB) gets \
    `-ERR Protocol error` and a close.";

const PROXY_HELP: &str = "A TCP forwarder: every client accepted on --listen (default \
    127.0.0.1:7100) gets a connection to --upstream, and bytes flow both ways until both sides \
    are done.\n\n\
    Try: evdrive echo & evdrive proxy --upstream 127.0.0.1:7007, then nc 127.0.0.1 7100\n\n\
    A slow reader on either end pauses the other end (memory per pair stays within the water \
    marks); one side's end of stream is passed on as a half-close, so a reply after a client's \
    FIN still arrives; a reset or timeout on one side closes the other. A client whose upstream \
    refuses, or does not answer within --connect-timeout seconds, is closed, and the log says \
    why (at info).";

/// Options every sample server takes.
#[derive(Args, Debug)]
struct Common {
    /// Address to listen on; default 127.0.0.1 and the sample's port (port 0 picks a free
    /// port; the bound address is printed).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Close a connection that sends nothing this many seconds after connecting (0: never).
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    first_byte_timeout: f64,
    /// Close a connection with no traffic either way for this many seconds (0: never).
    /// Default: 60 for http (as nginx's keep-alive timeout), never for the others.
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<f64>,
    /// Seconds a graceful shutdown may take before remaining connections are aborted.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    shutdown_grace: f64,
    /// Listen backlog (queued, not yet accepted connections).
    #[arg(long, default_value_t = 1024)]
    backlog: i32,
    /// Reactor threads, each with its own SO_REUSEPORT listener on the address and its own
    /// state (a chat room or key-value store per thread); the kernel spreads connections.
    #[arg(long, default_value_t = 1, value_name = "N")]
    threads: usize,
    /// Also serve, on this address, `GET /metrics` (Prometheus text format: the reactor's
    /// counters and gauges and the sample's own, such as keys in kv and members in chat) and
    /// `GET /connections` (every connection, as JSON), from the same reactor. Port 0 picks a
    /// free port; the bound address is printed. With --threads N, thread 0's reactor serves it
    /// and reports on itself only (its counters, its connections, its state).
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,
    /// The most connections served at once (per thread); default: the descriptor limit less a
    /// margin.
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// What to do with clients past --max-connections: `reject` (the default: the sample's
    /// goodbye, such as kv's `-ERR max number of clients reached` or http's 503, then a close),
    /// `pause` (they wait in the backlog until a connection closes) or `shed-idle` (the
    /// longest-idle connection is closed to make room).
    #[arg(long, value_enum, default_value_t = AtLimitArg::Reject, value_name = "POLICY")]
    at_limit: AtLimitArg,
}

/// `--at-limit`: the listener's policy at the connection limit (S23).
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum AtLimitArg {
    Reject,
    Pause,
    ShedIdle,
}

/// Options of `evdrive chat`.
#[derive(Args, Debug)]
struct ChatArgs {
    #[command(flatten)]
    common: Common,
    /// Every this many seconds, ping members silent during the interval and disconnect those
    /// silent for 3 intervals in a row (0: no heartbeat).
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    heartbeat: f64,
}

/// Options of `evdrive proxy`.
#[derive(Args, Debug)]
struct ProxyArgs {
    #[command(flatten)]
    common: Common,
    /// Address every client is forwarded to.
    #[arg(long, value_name = "ADDR")]
    upstream: SocketAddr,
    /// Seconds an upstream may take to accept the connection before its client is closed.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    connect_timeout: f64,
}

/// `opts` with its connection settings passed through a sample's `conn_config`.
fn with_conn(opts: ListenOptions, conn_config: fn(ConnConfig) -> ConnConfig) -> ListenOptions {
    let conn = conn_config(opts.conn.clone());
    opts.with_conn(conn)
}

/// `s` seconds as a timeout: `None` (no timeout) for zero, negative, NaN, or more seconds than a
/// `Duration` holds, which would otherwise panic.
fn secs(s: f64) -> Option<Duration> {
    if s > 0.0 {
        Duration::try_from_secs_f64(s).ok()
    } else {
        None
    }
}

impl Common {
    /// The listener and connection settings, with `idle_default` seconds of idle timeout unless
    /// `--idle-timeout` says otherwise.
    fn listen_options(&self, idle_default: f64) -> ListenOptions {
        ListenOptions::default()
            .with_backlog(self.backlog)
            .with_conn(
                ConnConfig::default()
                    .with_first_byte_timeout(secs(self.first_byte_timeout))
                    .with_idle_timeout(secs(self.idle_timeout.unwrap_or(idle_default))),
            )
    }

    /// `opts` with the policy of `--at-limit`; `reject` answers with the sample's own goodbye.
    fn with_at_limit(&self, opts: ListenOptions, reject: AtLimit) -> ListenOptions {
        opts.with_at_limit(match self.at_limit {
            AtLimitArg::Reject => reject,
            AtLimitArg::Pause => AtLimit::Pause,
            AtLimitArg::ShedIdle => AtLimit::ShedIdle,
        })
    }

    /// The reactor's limits: `--max-connections`, or the default.
    fn limits(&self) -> Limits {
        let limits = Limits::default();
        match self.max_connections {
            Some(n) => limits.with_max_connections(n),
            None => limits,
        }
    }

    /// The address to listen on: `--listen`, or 127.0.0.1 and the sample's port.
    fn addr(&self, default_port: u16) -> SocketAddr {
        self.listen.unwrap_or(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            default_port,
        ))
    }
}

/// Adds the admin endpoint (`--admin`) to `reactor` on `addr`, and returns the bound address.
///
/// A client that goes quiet is closed after a minute, as the HTTP sample's keep-alive
/// connections are: the endpoint has no request timeout of its own.
fn listen_admin<App: AppMetrics + 'static>(
    reactor: &mut Reactor<App>,
    addr: SocketAddr,
) -> io::Result<SocketAddr> {
    let mut opts = ListenOptions::default();
    opts.conn.idle_timeout = Some(Duration::from_secs(60));
    let id = reactor.listen(addr, opts, |_, _| AdminServer::new())?;
    reactor.listener_addr(id)
}

/// Prints every connection of the reactor to standard error.
fn print_snapshot<App>(cx: &mut reactor::LoopCx<'_, App>) {
    let stats = cx.stats().clone();
    eprintln!(
        "-- {} open, {} accepted, {} closed, {} B in, {} B out, {} turns, longest {:?}",
        stats.open,
        stats.accepted,
        stats.closed_total(),
        stats.bytes_in,
        stats.bytes_out,
        stats.turns,
        stats.longest_turn
    );
    for conn in cx.connections() {
        eprintln!("{conn}");
    }
}

/// Serves `sample` on `addr` until a shutdown signal: `make_app` makes the state every handler
/// of one reactor reaches, `factory` makes the handler of each accepted connection.
///
/// With one thread the reactor runs on the calling thread and catches the signals itself. With
/// more (S12), each thread runs its own reactor with its own `SO_REUSEPORT` listener and its own
/// state, and the calling thread only catches signals and relays them through the reactors'
/// handles: the first SIGINT/SIGTERM shuts them down gracefully, a second stops them at once,
/// SIGUSR1 makes each print its connections.
///
/// With `admin`, the reactor (with several threads, thread 0's reactor) also serves the admin
/// endpoint there. Thread 0 reports on itself only: summing every thread's counters would need
/// a scrape to wait on the other loops, and a reactor thread must never wait.
#[allow(clippy::too_many_arguments)] // One call per sample; a struct would only rename them.
fn serve<App, P, F, M>(
    sample: &str,
    addr: SocketAddr,
    opts: ListenOptions,
    limits: Limits,
    grace: f64,
    threads: usize,
    admin: Option<SocketAddr>,
    make_app: M,
    factory: F,
) -> io::Result<()>
where
    App: AppMetrics + 'static,
    P: Protocol<App> + 'static,
    F: Fn(&mut App, SocketAddr) -> P + Clone + Send + Sync + 'static,
    M: Fn() -> App + Send + Sync + 'static,
{
    // A grace the user picks too large for a `Duration` (or infinite) is capped at a year,
    // which no shutdown waits for, instead of panicking.
    let grace =
        Duration::try_from_secs_f64(grace.max(0.0)).unwrap_or(Duration::from_secs(365 * 24 * 3600));
    if threads <= 1 {
        let mut reactor = Reactor::new(make_app())?;
        reactor.set_limits(limits);
        let listener = reactor.listen(addr, opts, factory)?;
        let bound = reactor.listener_addr(listener)?;
        if let Some(admin) = admin {
            let admin = listen_admin(&mut reactor, admin)?;
            eprintln!("evdrive {sample} admin on {admin}");
        }
        // Signals are caught before the address is announced, so a client that reacts to the
        // announcement can never find a default disposition.
        reactor.catch_signals(
            &[SIGUSR1],
            Some(grace),
            Some(Box::new(|cx, sig| {
                if sig == SIGUSR1 {
                    print_snapshot(cx);
                }
            })),
        )?;
        eprintln!("evdrive {sample} listening on {bound}");
        return reactor.run();
    }

    // Every thread's listener needs the same port: resolve port 0 once, up front.
    let addr = if addr.port() == 0 {
        std::net::TcpListener::bind(addr)?.local_addr()?
    } else {
        addr
    };
    let opts = opts.with_reuse_port(true);
    // Thread 0 tells the address its admin endpoint is bound to; `start` returns once every
    // setup is done, so the address is waiting by then.
    let (admin_tx, admin_rx) = std::sync::mpsc::channel();
    let group = Group::start(threads, move |i| {
        let mut reactor = Reactor::new(make_app())?;
        reactor.set_limits(limits.clone());
        reactor.listen(addr, opts.clone(), factory.clone())?;
        if let (0, Some(admin)) = (i, admin) {
            let _ = admin_tx.send(listen_admin(&mut reactor, admin)?);
        }
        Ok(reactor)
    })?;
    if let Ok(admin) = admin_rx.try_recv() {
        eprintln!("evdrive {sample} admin on {admin} (thread 0)");
    }
    // This thread only relays signals to the reactors.
    let handles = group.handles().to_vec();
    let mut signals = Reactor::new(0u32)?;
    signals.catch_signals(
        &[SIGUSR1, SIGINT, SIGTERM],
        None,
        Some(Box::new(move |cx, sig| {
            if sig == SIGUSR1 {
                for handle in &handles {
                    let _ = handle.post(|cx| print_snapshot(cx));
                }
                return;
            }
            *cx.app() += 1;
            for handle in &handles {
                let _ = if *cx.app() == 1 {
                    handle.shutdown(grace)
                } else {
                    handle.stop_now()
                };
            }
        })),
    )?;
    eprintln!("evdrive {sample} listening on {addr} ({threads} threads)");
    while !group.is_finished() {
        signals.turn(Some(Duration::from_millis(100)))?;
    }
    group.join()
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Echo(c) => serve(
            "echo",
            c.addr(ECHO_PORT),
            c.with_at_limit(c.listen_options(0.0), echo::at_limit()),
            c.limits(),
            c.shutdown_grace,
            c.threads,
            c.admin,
            || (),
            |_, _| Echo,
        ),
        Command::Chat(ChatArgs {
            common: c,
            heartbeat,
        }) => {
            let opts = with_conn(c.listen_options(0.0), chat::conn_config);
            let opts = c.with_at_limit(opts, chat::at_limit());
            let heartbeat = secs(*heartbeat);
            serve(
                "chat",
                c.addr(CHAT_PORT),
                opts,
                c.limits(),
                c.shutdown_grace,
                c.threads,
                c.admin,
                move || ChatRoom::with_heartbeat(heartbeat),
                |_, _| ChatConn::new(),
            )
        }
        Command::Http(c) => serve(
            "http",
            c.addr(HTTP_PORT),
            // Keep-alive connections left idle are closed after a minute, as nginx does.
            c.with_at_limit(
                with_conn(c.listen_options(60.0), http_server::conn_config),
                http_server::at_limit(),
            ),
            c.limits(),
            c.shutdown_grace,
            c.threads,
            c.admin,
            || (),
            |_, _| HttpServer::new(),
        ),
        Command::Kv(c) => serve(
            "kv",
            c.addr(KV_PORT),
            c.with_at_limit(
                with_conn(c.listen_options(0.0), kv::conn_config),
                kv::at_limit(),
            ),
            c.limits(),
            c.shutdown_grace,
            c.threads,
            c.admin,
            KvStore::new,
            |_, _| KvConn::new(),
        ),
        Command::Proxy(ProxyArgs {
            common: c,
            upstream,
            connect_timeout,
        }) => {
            let opts = c.listen_options(0.0);
            let timeout = secs(*connect_timeout).unwrap_or(Duration::from_secs(10));
            // The upstream side gets the clients' settings (timeouts, water marks) too.
            let upstream_config = opts.conn.clone().with_connect_timeout(timeout);
            let upstream = *upstream;
            serve(
                "proxy",
                c.addr(PROXY_PORT),
                opts,
                c.limits(),
                c.shutdown_grace,
                c.threads,
                c.admin,
                ProxyStats::default,
                move |_, _| ProxyClient::new(upstream, upstream_config.clone()),
            )
        }
        Command::UdpEcho(args) => udp::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
