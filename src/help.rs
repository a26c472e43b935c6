//! The long help of each subcommand: what it serves, how to try it, its limits.

/// What every subcommand's long help ends with.
pub(crate) const RUNTIME_HELP: &str =
    "Logging: RUST_LOG=error|warn|info|debug (default info). Signals: \
    SIGINT or SIGTERM shut down gracefully (queued output is flushed, connections get \
    --shutdown-grace seconds to finish; a second signal stops at once); SIGUSR1 prints every \
    connection to standard error; SIGUSR2 restarts without refusing or cutting a connection: \
    the binary at the path this process started from is started with the same arguments and \
    handed every listening socket (the --admin one too, one per thread with --threads) over \
    the channel named by EVDRIVE_HANDOVER_FD; once it says it serves, this process stops \
    accepting, lets its connections end on their own for four fifths of --shutdown-grace (http \
    closes a keep-alive connection between two requests), closes what is left gracefully and \
    exits 0. A successor that fails to start or to confirm \
    within 10 s is killed, this process serves on, and the log says why; a second SIGUSR2 \
    during a hand-over is ignored.\n\n\
    Socket activation: started by systemd (a .socket unit) or systemd-socket-activate, the \
    sample serves the sockets passed in LISTEN_FDS (LISTEN_PID must be its own) instead of \
    binding --listen; a socket named admin (LISTEN_FDNAMES, FileDescriptorName=admin) serves \
    the admin endpoint instead of --admin. With --threads N, one passed socket is shared by \
    every thread (each has its own descriptor of it).";

pub(crate) const ECHO_HELP: &str = "TCP echo: every byte received is sent back, in order.\n\n\
    Listens on 127.0.0.1:7007 unless --listen says otherwise. Try: nc 127.0.0.1 7007\n\n\
    A client that sends but does not read its echo is paused by backpressure, never buffered \
    without bound.";

pub(crate) const CHAT_HELP: &str =
    "A chat with rooms over lines of text: what a member types reaches \
    every other member of its room.\n\n\
    Listens on 127.0.0.1:7000 unless --listen says otherwise. Try `nc 127.0.0.1 7000` from two \
    terminals (or `socat - TCP:127.0.0.1:7000`), or open http://127.0.0.1:7000/ in a browser: \
    the same port serves a page that joins over WebSocket, and browsers and terminals share \
    the rooms (a terminal whose first line starts with `GET ` is taken for a browser).\n\n\
    A member joins #lobby as guestN and is told so; the others see `* guestN joined` and, \
    later, `* guestN left`. A terminal greeted after staying silent sees the room at once but \
    is announced (and listed by /who) only at its first line or after 30 seconds, so that a \
    browser's spare silent connection never shows; if that first line is an HTTP request \
    line, it is answered as HTTP. A line not starting with / is a message: the others in the room \
    receive `<nick> text`, in the order the server received the lines. Commands:\n\
    \x20 /nick NAME   change nickname (1-20 of A-Z a-z 0-9 _ -, unique ignoring case)\n\
    \x20 /join #ROOM  go to another room; /part goes back to #lobby\n\
    \x20 /rooms       list the rooms (also /list)\n\
    \x20 /who         list the members of your room\n\
    \x20 /msg NICK TEXT  a private message\n\
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
    in a row is disconnected. Any line counts as a sign of life.\n\n\
    One chat across processes and machines: --bus redis://HOST:PORT joins every `evdrive chat` \
    using that Redis server (its pub/sub; evdrive itself is the Redis client). Lines, /me, \
    joins, parts, nickname changes and private messages cross it; /who and /rooms count \
    everyone's members; each member's lines arrive everywhere in the order sent. Nicknames \
    are unique across the chat, best effort: checked against every known member and claimed \
    in Redis (SET NX; released when the member leaves or renames, expiring within 30 s if \
    its server vanishes); while Redis is away only local \
    checks apply, so two members may then share a name. If Redis goes away, members get \
    `* the bus is down: only this server's members see you`, the local chat goes on, and the \
    server reconnects with back-off (0.1 s doubling to 5 s, with jitter), then says `* the \
    bus is back`. A server that vanishes disappears from the others' /who within about 9 s. \
    With --threads N, each thread is a node of the bus with its own connections, and the \
    threads of one process ignore each other's messages (their handles carry them already).";

pub(crate) const HTTP_HELP: &str = "A small HTTP/1.1 server.\n\n\
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

pub(crate) const KV_HELP: &str =
    "An in-memory key-value store speaking the Redis protocol (RESP2).\n\n\
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

pub(crate) const PROXY_HELP: &str = "A TCP forwarder: every client accepted on --listen (default \
    127.0.0.1:7100) gets a connection to --upstream, and bytes flow both ways until both sides \
    are done.\n\n\
    Try: evdrive echo & evdrive proxy --upstream 127.0.0.1:7007, then nc 127.0.0.1 7100\n\n\
    A slow reader on either end pauses the other end (memory per pair stays within the water \
    marks); one side's end of stream is passed on as a half-close, so a reply after a client's \
    FIN still arrives; a reset or timeout on one side closes the other. A client whose upstream \
    refuses, or does not answer within --connect-timeout seconds, is closed, and the log says \
    why (at info).";
