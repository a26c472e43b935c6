//! The command line's options: what every sample takes ([`Common`]) and what some add, with
//! the conversions from option values to the reactor's settings.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Args;
use reactor::{AtLimit, ConnConfig, Limits, ListenAddr, ListenOptions};

/// Parses an octal file mode (`660`, `0o660` or `0660`).
pub(crate) fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{s}: expected an octal mode such as 660"))
}

/// Options every sample server takes.
#[derive(Args, Debug)]
pub(crate) struct Common {
    /// Address to listen on: HOST:PORT (default 127.0.0.1 and the sample's port; port 0 picks
    /// a free port, and the bound address is printed), or unix:PATH for a Unix-domain socket
    /// (a stale socket file is replaced, a live server's never; the file is removed on
    /// shutdown), or unix:@NAME for a Linux abstract name. Sockets passed by socket activation
    /// (LISTEN_FDS) or by a restart's predecessor are served instead.
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<ListenAddr>,
    /// Permission bits of the unix:PATH socket file, in octal (e.g. 660); default: the umask's.
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub(crate) unix_mode: Option<u32>,
    /// Close a connection that sends nothing this many seconds after connecting (0: never).
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub(crate) first_byte_timeout: f64,
    /// Close a connection with no traffic either way for this many seconds (0: never).
    /// Default: 60 for http (as nginx's keep-alive timeout), never for the others.
    #[arg(long, value_name = "SECS")]
    pub(crate) idle_timeout: Option<f64>,
    /// Seconds a graceful shutdown may take before remaining connections are aborted.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub(crate) shutdown_grace: f64,
    /// Listen backlog (queued, not yet accepted connections).
    #[arg(long, default_value_t = 1024)]
    pub(crate) backlog: i32,
    /// Reactor threads, each with its own SO_REUSEPORT listener on the address and its own
    /// state (a chat room or key-value store per thread); the kernel spreads connections.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub(crate) threads: usize,
    /// Also serve, on this address, `GET /metrics` (Prometheus text format: the reactor's
    /// counters and gauges and the sample's own, such as keys in kv and members in chat) and
    /// `GET /connections` (every connection, as JSON), from the same reactor. Port 0 picks a
    /// free port; the bound address is printed. With --threads N, thread 0's reactor serves it
    /// and reports on itself only (its counters, its connections, its state).
    #[arg(long, value_name = "ADDR")]
    pub(crate) admin: Option<SocketAddr>,
    /// The most connections served at once (per thread); default: the descriptor limit less a
    /// margin.
    #[arg(long, value_name = "N")]
    pub(crate) max_connections: Option<usize>,
    /// What to do with clients past --max-connections: `reject` (the default: the sample's
    /// goodbye, such as kv's `-ERR max number of clients reached` or http's 503, then a close),
    /// `pause` (they wait in the backlog until a connection closes) or `shed-idle` (the
    /// longest-idle connection is closed to make room).
    #[arg(long, value_enum, default_value_t = AtLimitArg::Reject, value_name = "POLICY")]
    pub(crate) at_limit: AtLimitArg,
}

/// `--at-limit`: the listener's policy at the connection limit (S23).
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum AtLimitArg {
    Reject,
    Pause,
    ShedIdle,
}

/// Options of `evdrive chat`.
#[derive(Args, Debug)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Every this many seconds, ping members silent during the interval and disconnect those
    /// silent for 3 intervals in a row (0: no heartbeat).
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub(crate) heartbeat: f64,
    /// Join the chat of every `evdrive chat` on this Redis server (redis://HOST:PORT), through
    /// its pub/sub: one chat across processes and machines. Each process (each thread with
    /// --threads N) is a node; the chat goes on locally while Redis is away, and reconnects.
    #[arg(long, value_name = "URL", value_parser = protocols::chat::BusConfig::from_url)]
    pub(crate) bus: Option<protocols::chat::BusConfig>,
}

/// Options of `evdrive proxy`.
#[derive(Args, Debug)]
pub(crate) struct ProxyArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Address every client is forwarded to.
    #[arg(long, value_name = "ADDR")]
    pub(crate) upstream: SocketAddr,
    /// Seconds an upstream may take to accept the connection before its client is closed.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub(crate) connect_timeout: f64,
}

/// `opts` with its connection settings passed through a sample's `conn_config`.
pub(crate) fn with_conn(
    opts: ListenOptions,
    conn_config: fn(ConnConfig) -> ConnConfig,
) -> ListenOptions {
    let conn = conn_config(opts.conn.clone());
    opts.with_conn(conn)
}

/// `s` seconds as a timeout: `None` (no timeout) for zero, negative, NaN, or more seconds than a
/// `Duration` holds, which would otherwise panic.
pub(crate) fn secs(s: f64) -> Option<Duration> {
    if s > 0.0 {
        Duration::try_from_secs_f64(s).ok()
    } else {
        None
    }
}

impl Common {
    /// The listener and connection settings, with `idle_default` seconds of idle timeout unless
    /// `--idle-timeout` says otherwise.
    pub(crate) fn listen_options(&self, idle_default: f64) -> ListenOptions {
        ListenOptions::default()
            .with_backlog(self.backlog)
            .with_conn(
                ConnConfig::default()
                    .with_first_byte_timeout(secs(self.first_byte_timeout))
                    .with_idle_timeout(secs(self.idle_timeout.unwrap_or(idle_default))),
            )
    }

    /// `opts` with the policy of `--at-limit`; `reject` answers with the sample's own goodbye.
    pub(crate) fn with_at_limit(&self, opts: ListenOptions, reject: AtLimit) -> ListenOptions {
        opts.with_at_limit(match self.at_limit {
            AtLimitArg::Reject => reject,
            AtLimitArg::Pause => AtLimit::Pause,
            AtLimitArg::ShedIdle => AtLimit::ShedIdle,
        })
    }

    /// The reactor's limits: `--max-connections`, or the default.
    pub(crate) fn limits(&self) -> Limits {
        let limits = Limits::default();
        match self.max_connections {
            Some(n) => limits.with_max_connections(n),
            None => limits,
        }
    }

    /// The address to listen on: `--listen`, or 127.0.0.1 and the sample's port.
    pub(crate) fn addr(&self, default_port: u16) -> ListenAddr {
        self.listen
            .clone()
            .unwrap_or(ListenAddr::Tcp(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                default_port,
            )))
    }
}
