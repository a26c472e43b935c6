//! `evdrive`: the sample servers on the command line.
//!
//! ```text
//! evdrive echo [--listen 127.0.0.1:7007]     TCP echo
//! evdrive chat [--listen 127.0.0.1:7000]     chat with rooms (nc, socat, telnet, a browser)
//! evdrive http [--listen 127.0.0.1:8080]     HTTP/1.1 with keep-alive (curl, wrk)
//! evdrive kv   [--listen 127.0.0.1:6380]     Redis-protocol key-value store (redis-cli)
//! evdrive proxy --upstream ADDR [--listen 127.0.0.1:7100] [--connect-timeout SECS]
//!                                             TCP forwarder
//! evdrive udp-echo [--listen 127.0.0.1:7007] UDP echo (nc -u, socat)
//! ```
//! `--listen unix:PATH` serves on a Unix-domain socket instead (`unix:@NAME`: a Linux abstract
//! name; `--unix-mode 660` sets the socket file's mode), e.g. `nc -U PATH` (S28).
//! Logging goes through `RUST_LOG` (e.g. `RUST_LOG=debug`). SIGINT or SIGTERM shuts down
//! gracefully (a second one stops at once); SIGUSR1 prints every connection; SIGUSR2 restarts
//! without dropping a connection (the listeners are handed to a successor). `--admin ADDR`
//! serves `GET /metrics` (Prometheus) and `GET /connections` (JSON) from the same reactor.
//! Started by socket activation (`LISTEN_FDS`), a sample serves the sockets it is given.
//!
//! Every subcommand is a call to [`serve()`] with its state and handler: the reactor setup, the
//! signals and the run loop are written once.
#![forbid(unsafe_code)]

mod handover;
mod help;
mod inherit;
mod options;
mod serve;
mod udp;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use help::*;
use options::{secs, with_conn, ChatArgs, Common, ProxyArgs};
use protocols::chat::{self, ChatConn, ChatRoom};
use protocols::echo::{self, Echo};
use protocols::http_server::{self, HttpServer};
use protocols::kv::{self, KvConn, KvStore};
use protocols::proxy::{ProxyClient, ProxyStats};
use serve::{link_chats, serve};

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
        snapshot of every connection to standard error. SIGUSR2 hands the listening sockets \
        to a new process of the same binary and drains this one (see `evdrive help echo`)."
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
    /// 7007`. SIGINT/SIGTERM send the echoes still queued (within a second), close the socket
    /// and exit; SIGUSR1 prints the socket and its counters.
    UdpEcho(udp::UdpEchoArgs),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Echo(c) => serve(
            "echo",
            c.addr(ECHO_PORT),
            c.unix_mode,
            c.with_at_limit(c.listen_options(0.0), echo::at_limit()),
            c.limits(),
            c.shutdown_grace,
            c.threads,
            c.admin,
            || (),
            |_| Echo,
            |_| {},
        ),
        Command::Chat(ChatArgs {
            common: c,
            heartbeat,
            bus,
        }) => {
            let opts = with_conn(c.listen_options(0.0), chat::conn_config);
            let opts = c.with_at_limit(opts, chat::at_limit());
            let heartbeat = secs(*heartbeat);
            serve(
                "chat",
                c.addr(CHAT_PORT),
                c.unix_mode,
                opts,
                c.limits(),
                c.shutdown_grace,
                c.threads,
                c.admin,
                move || ChatRoom::with_heartbeat(heartbeat),
                |_| ChatConn::new(),
                |handles| {
                    link_chats(handles);
                    // Each thread is a node of the bus (see `chat::start_bus`).
                    for (i, handle) in handles.iter().enumerate() {
                        if let Some(bus) = bus.clone() {
                            let _ = handle.post(move |cx| chat::start_bus(cx, bus, i));
                        }
                    }
                },
            )
        }
        Command::Http(c) => serve(
            "http",
            c.addr(HTTP_PORT),
            c.unix_mode,
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
            |_| HttpServer::new(),
            |_| {},
        ),
        Command::Kv(c) => serve(
            "kv",
            c.addr(KV_PORT),
            c.unix_mode,
            c.with_at_limit(
                with_conn(c.listen_options(0.0), kv::conn_config),
                kv::at_limit(),
            ),
            c.limits(),
            c.shutdown_grace,
            c.threads,
            c.admin,
            KvStore::new,
            |_| KvConn::new(),
            |_| {},
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
                c.unix_mode,
                opts,
                c.limits(),
                c.shutdown_grace,
                c.threads,
                c.admin,
                ProxyStats::default,
                move |_| ProxyClient::new(upstream, upstream_config.clone()),
                |_| {},
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
