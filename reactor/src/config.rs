//! Per-connection and per-listener settings.

use std::time::Duration;

use crate::sys::Keepalive;
use crate::AtLimit;

/// Settings of one connection: buffer limits, timeouts and socket options.
///
/// ```
/// use std::time::Duration;
/// use evdrive_reactor::ConnConfig;
///
/// let config = ConnConfig::new()
///     .with_first_byte_timeout(Some(Duration::from_secs(5)))
///     .with_idle_timeout(Some(Duration::from_secs(60)));
/// assert!(config.low_water < config.high_water);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnConfig {
    /// Queued output above which reading from the connection pauses (S21). Default 64 KiB.
    pub high_water: usize,
    /// Queued output below which paused reading resumes and `on_drained` runs. Default 16 KiB.
    pub low_water: usize,
    /// The hard output limit: queued output above which the connection is aborted with
    /// `SlowConsumer` at once (S21). Default 8 MiB.
    pub max_output: usize,
    /// The soft output limit: a connection whose queued output stays above it for
    /// [`soft_output_for`](Self::soft_output_for) without a break is aborted with
    /// `SlowConsumer` (Redis's `client-output-buffer-limit <hard> <soft> <seconds>`). A reader
    /// that is briefly behind keeps its place; one that stopped reading is dropped. Default
    /// 2 MiB, so a reader within about 1 MiB of the producer is never at risk.
    pub soft_output: usize,
    /// How long queued output may stay above [`soft_output`](Self::soft_output). Default 10 s.
    pub soft_output_for: Duration,
    /// Unconsumed input above which the connection is closed with a protocol error (S11).
    /// Default 1 MiB.
    pub max_input: usize,
    /// Close a connection whose peer sends nothing this long after it opened (S24).
    pub first_byte_timeout: Option<Duration>,
    /// Close a connection with no traffic either way for this long.
    pub idle_timeout: Option<Duration>,
    /// Give up an outgoing connect after this long (S4, S8). Default 10 s.
    pub connect_timeout: Duration,
    /// After a graceful close has flushed and half-closed, wait this long for the peer's end of
    /// stream before closing anyway (S14). Default 5 s.
    pub linger_timeout: Duration,
    /// Close a connection whose queued output makes no progress (no byte accepted by the kernel)
    /// for this long, with `TimedOut`.
    pub write_stall_timeout: Option<Duration>,
    /// `TCP_NODELAY` (default on: writes are already coalesced per loop turn).
    pub nodelay: bool,
    /// TCP keepalive probing (S13); off by default.
    pub keepalive: Option<Keepalive>,
    /// `SO_SNDBUF`, applied before connect for outgoing connections (S19).
    pub send_buffer_size: Option<usize>,
    /// `SO_RCVBUF`, applied before connect for outgoing connections (S19).
    pub recv_buffer_size: Option<usize>,
}

impl ConnConfig {
    /// The defaults (see [`Default`]); change them with the `with_` methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`high_water`](Self::high_water).
    #[must_use]
    pub fn with_high_water(mut self, high_water: usize) -> Self {
        self.high_water = high_water;
        self
    }

    /// Sets [`low_water`](Self::low_water).
    #[must_use]
    pub fn with_low_water(mut self, low_water: usize) -> Self {
        self.low_water = low_water;
        self
    }

    /// Sets [`max_output`](Self::max_output), the hard output limit; the soft limit stays.
    #[must_use]
    pub fn with_max_output(mut self, max_output: usize) -> Self {
        self.max_output = max_output;
        self
    }

    /// Sets the output limits: [`max_output`](Self::max_output) (`hard`),
    /// [`soft_output`](Self::soft_output) (`soft`) and
    /// [`soft_output_for`](Self::soft_output_for) (`soft_for`). A `soft` at or above `hard`
    /// leaves only the hard limit.
    #[must_use]
    pub fn with_output_limits(mut self, hard: usize, soft: usize, soft_for: Duration) -> Self {
        self.max_output = hard;
        self.soft_output = soft;
        self.soft_output_for = soft_for;
        self
    }

    /// Sets [`max_input`](Self::max_input).
    #[must_use]
    pub fn with_max_input(mut self, max_input: usize) -> Self {
        self.max_input = max_input;
        self
    }

    /// Sets [`first_byte_timeout`](Self::first_byte_timeout).
    #[must_use]
    pub fn with_first_byte_timeout(mut self, first_byte_timeout: Option<Duration>) -> Self {
        self.first_byte_timeout = first_byte_timeout;
        self
    }

    /// Sets [`idle_timeout`](Self::idle_timeout).
    #[must_use]
    pub fn with_idle_timeout(mut self, idle_timeout: Option<Duration>) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn with_connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }

    /// Sets [`linger_timeout`](Self::linger_timeout).
    #[must_use]
    pub fn with_linger_timeout(mut self, linger_timeout: Duration) -> Self {
        self.linger_timeout = linger_timeout;
        self
    }

    /// Sets [`write_stall_timeout`](Self::write_stall_timeout).
    #[must_use]
    pub fn with_write_stall_timeout(mut self, write_stall_timeout: Option<Duration>) -> Self {
        self.write_stall_timeout = write_stall_timeout;
        self
    }

    /// Sets [`nodelay`](Self::nodelay).
    #[must_use]
    pub fn with_nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }

    /// Sets [`keepalive`](Self::keepalive).
    #[must_use]
    pub fn with_keepalive(mut self, keepalive: Option<Keepalive>) -> Self {
        self.keepalive = keepalive;
        self
    }

    /// Sets [`send_buffer_size`](Self::send_buffer_size).
    #[must_use]
    pub fn with_send_buffer_size(mut self, send_buffer_size: Option<usize>) -> Self {
        self.send_buffer_size = send_buffer_size;
        self
    }

    /// Sets [`recv_buffer_size`](Self::recv_buffer_size).
    #[must_use]
    pub fn with_recv_buffer_size(mut self, recv_buffer_size: Option<usize>) -> Self {
        self.recv_buffer_size = recv_buffer_size;
        self
    }
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            high_water: 64 * 1024,
            low_water: 16 * 1024,
            max_output: 8 * 1024 * 1024,
            soft_output: 2 * 1024 * 1024,
            soft_output_for: Duration::from_secs(10),
            max_input: 1024 * 1024,
            first_byte_timeout: None,
            idle_timeout: None,
            connect_timeout: Duration::from_secs(10),
            linger_timeout: Duration::from_secs(5),
            write_stall_timeout: None,
            nodelay: true,
            keepalive: None,
            send_buffer_size: None,
            recv_buffer_size: None,
        }
    }
}

/// Settings of a listening socket. Everything here is applied before `bind`/`listen`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ListenOptions {
    /// The `listen` backlog: connections the kernel completes and queues before `accept` (S23).
    /// Default 1024.
    pub backlog: i32,
    /// `SO_REUSEPORT`, for one listener per reactor thread on one port (S12). Default off.
    pub reuse_port: bool,
    /// `TCP_DEFER_ACCEPT`: accept only once the client sent data or this time passed (S24).
    pub defer_accept: Option<Duration>,
    /// `SO_RCVBUF` on the listener, inherited by accepted sockets (S19).
    pub recv_buffer_size: Option<usize>,
    /// `SO_SNDBUF` on the listener, inherited by accepted sockets (S19).
    pub send_buffer_size: Option<usize>,
    /// The most connections accepted in one loop turn, so a connect flood cannot starve the
    /// connections already open (S23). Default 128.
    pub accepts_per_turn: usize,
    /// The first pause after the listener ran out of descriptors or memory; doubled while the
    /// condition lasts (S27). Default 50 ms.
    pub backoff_min: Duration,
    /// The longest such pause. Default 1 s.
    pub backoff_max: Duration,
    /// What to do with new clients at the reactor's connection limit (S23): pause (the
    /// default), reject with a goodbye, or shed the longest-idle connection.
    pub at_limit: AtLimit,
    /// Settings of every accepted connection.
    pub conn: ConnConfig,
}

impl ListenOptions {
    /// The defaults (see [`Default`]); change them with the `with_` methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`backlog`](Self::backlog).
    #[must_use]
    pub fn with_backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Sets [`reuse_port`](Self::reuse_port).
    #[must_use]
    pub fn with_reuse_port(mut self, reuse_port: bool) -> Self {
        self.reuse_port = reuse_port;
        self
    }

    /// Sets [`defer_accept`](Self::defer_accept).
    #[must_use]
    pub fn with_defer_accept(mut self, defer_accept: Option<Duration>) -> Self {
        self.defer_accept = defer_accept;
        self
    }

    /// Sets [`recv_buffer_size`](Self::recv_buffer_size).
    #[must_use]
    pub fn with_recv_buffer_size(mut self, recv_buffer_size: Option<usize>) -> Self {
        self.recv_buffer_size = recv_buffer_size;
        self
    }

    /// Sets [`send_buffer_size`](Self::send_buffer_size).
    #[must_use]
    pub fn with_send_buffer_size(mut self, send_buffer_size: Option<usize>) -> Self {
        self.send_buffer_size = send_buffer_size;
        self
    }

    /// Sets [`accepts_per_turn`](Self::accepts_per_turn).
    #[must_use]
    pub fn with_accepts_per_turn(mut self, accepts_per_turn: usize) -> Self {
        self.accepts_per_turn = accepts_per_turn;
        self
    }

    /// Sets [`backoff_min`](Self::backoff_min).
    #[must_use]
    pub fn with_backoff_min(mut self, backoff_min: Duration) -> Self {
        self.backoff_min = backoff_min;
        self
    }

    /// Sets [`backoff_max`](Self::backoff_max).
    #[must_use]
    pub fn with_backoff_max(mut self, backoff_max: Duration) -> Self {
        self.backoff_max = backoff_max;
        self
    }

    /// Sets [`at_limit`](Self::at_limit).
    #[must_use]
    pub fn with_at_limit(mut self, at_limit: AtLimit) -> Self {
        self.at_limit = at_limit;
        self
    }

    /// Sets [`conn`](Self::conn).
    #[must_use]
    pub fn with_conn(mut self, conn: ConnConfig) -> Self {
        self.conn = conn;
        self
    }
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            backlog: 1024,
            reuse_port: false,
            defer_accept: None,
            recv_buffer_size: None,
            send_buffer_size: None,
            accepts_per_turn: 128,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            at_limit: AtLimit::Pause,
            conn: ConnConfig::default(),
        }
    }
}
