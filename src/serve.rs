//! Serving one sample: the reactor (or one per thread), its listener, the admin endpoint and
//! the signals, written once for every subcommand.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use protocols::admin::{AdminServer, AppMetrics};
use protocols::chat::ChatRoom;
use reactor::activation::Inherited;
use reactor::sys::{SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use reactor::{
    Group, Handle, Limits, ListenAddr, ListenOptions, Protocol, Reactor, UnixListenOptions,
};

use crate::handover::Restarter;
use crate::inherit::{self, Given};

/// Adds the admin endpoint (`--admin`) to `reactor` on `addr`, or on the `inherited` socket
/// (socket activation, a hand-over), and returns the bound address.
///
/// A client that goes quiet is closed after a minute, as the HTTP sample's keep-alive
/// connections are: the endpoint has no request timeout of its own.
pub(crate) fn listen_admin<App: AppMetrics + 'static>(
    reactor: &mut Reactor<App>,
    addr: Option<SocketAddr>,
    inherited: Option<Inherited>,
) -> io::Result<Option<SocketAddr>> {
    let mut opts = ListenOptions::default();
    opts.conn.idle_timeout = Some(Duration::from_secs(60));
    let id = match (inherited, addr) {
        (Some(socket), addr) => {
            if let Some(addr) = addr {
                log::info!("serving the admin socket given to this process, not {addr}");
            }
            let listener = socket.into_tcp_listener()?;
            reactor.adopt_listener(listener, opts, |_, _| AdminServer::new())?
        }
        (None, Some(addr)) => reactor.listen(addr, opts, |_, _| AdminServer::new())?,
        (None, None) => return Ok(None),
    };
    reactor.listener_addr(id).map(Some)
}

/// Prints every connection of the reactor to standard error.
pub(crate) fn print_snapshot<App>(cx: &mut reactor::LoopCx<'_, App>) {
    let stats = cx.stats().clone();
    eprintln!(
        "-- {} open, {} accepted, {} closed, {} rejected ({} being told), {} B in, {} B out, \
         {} turns, longest {:?}",
        stats.open,
        stats.accepted,
        stats.closed_total(),
        stats.rejected,
        stats.rejecting,
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
/// `link` gets the reactors' handles (one with one thread) before the address is announced;
/// with one thread, what it posts runs once the loop starts.
///
/// With `admin`, the reactor (with several threads, thread 0's reactor) also serves the admin
/// endpoint there. Thread 0 reports on itself only: summing every thread's counters would need
/// a scrape to wait on the other loops, and a reactor thread must never wait.
#[allow(clippy::too_many_arguments)] // One call per sample; a struct would only rename them.
pub(crate) fn serve<App, P, F, M>(
    sample: &str,
    addr: ListenAddr,
    unix_mode: Option<u32>,
    opts: ListenOptions,
    limits: Limits,
    grace: f64,
    threads: usize,
    admin: Option<SocketAddr>,
    make_app: M,
    factory: F,
    link: impl FnOnce(&[Handle<App>]),
) -> io::Result<()>
where
    App: AppMetrics + 'static,
    P: Protocol<App> + 'static,
    F: Fn(&mut App) -> P + Clone + Send + Sync + 'static,
    M: Fn() -> App + Send + Sync + 'static,
{
    // A grace the user picks too large for a `Duration` (or infinite) is capped at a year,
    // which no shutdown waits for, instead of panicking.
    let grace =
        Duration::try_from_secs_f64(grace.max(0.0)).unwrap_or(Duration::from_secs(365 * 24 * 3600));
    // Sockets given by a predecessor or a service manager, taken before any thread starts.
    let mut given = Given::take()?;
    // HTTP connections between two requests end there in a drain; other protocols' idle
    // clients may be in the middle of a conversation.
    let mut restarter = Restarter::new().closing_idle(sample == "http");
    if threads <= 1 {
        let mut reactor = Reactor::new(make_app())?;
        reactor.set_limits(limits);
        let bound = match (given.for_threads(1)?.pop(), &addr) {
            (Some(socket), _) => {
                log::info!("serving the socket given to this process, not {addr}");
                inherit::adopt(&mut reactor.cx(), socket, opts, factory)?
            }
            (None, ListenAddr::Tcp(addr)) => {
                let listener = reactor.listen(*addr, opts, move |app, _| factory(app))?;
                reactor.listener_addr(listener)?.to_string()
            }
            (None, ListenAddr::Unix(path)) => {
                let opts = UnixListenOptions::from(opts).with_mode(unix_mode);
                reactor.listen_unix(path, opts, factory)?;
                format!("unix:{path}")
            }
        };
        if let Some(admin) = listen_admin(&mut reactor, admin, given.admin.take())? {
            restarter.set_admin(ListenAddr::Tcp(admin));
            eprintln!("evdrive {sample} admin on {admin}");
        }
        // Signals are caught before the address is announced, so a client that reacts to the
        // announcement can never find a default disposition.
        let handle = reactor.handle()?;
        reactor.catch_signals(
            &[SIGUSR1, SIGUSR2],
            Some(grace),
            Some(Box::new(move |cx, sig| match sig {
                SIGUSR1 => print_snapshot(cx),
                SIGUSR2 => restarter.hand_over_reactor(cx, &handle, grace),
                _ => {}
            })),
        )?;
        link(&[reactor.handle()?]);
        given.confirm(sample);
        eprintln!("evdrive {sample} listening on {bound}");
        return reactor.run();
    }

    let inherited = given.for_threads(threads)?;
    // One socket file cannot have a listener per thread (a given one is shared instead).
    let addr = match addr {
        ListenAddr::Tcp(addr) => addr,
        ListenAddr::Unix(_) if !inherited.is_empty() => SocketAddr::from(([127, 0, 0, 1], 0)),
        ListenAddr::Unix(_) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--threads above 1 needs a TCP address (one Unix socket file has one listener)",
            ))
        }
    };
    // Every thread's listener needs the same port: resolve port 0 once, up front.
    let addr = if addr.port() == 0 && inherited.is_empty() {
        std::net::TcpListener::bind(addr)?.local_addr()?
    } else {
        addr
    };
    let opts = opts.with_reuse_port(true);
    // Each thread takes its own given socket, if any.
    let inherited: Vec<std::sync::Mutex<Option<Inherited>>> = inherited
        .into_iter()
        .map(|s| std::sync::Mutex::new(Some(s)))
        .collect();
    let admin_given = std::sync::Mutex::new(given.admin.take());
    // Thread 0 tells the address its admin endpoint is bound to, and every thread how its
    // listener is bound; `start` returns once every setup is done, so they are waiting by then.
    let (admin_tx, admin_rx) = std::sync::mpsc::channel();
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let group = Group::start(threads, move |i| {
        let mut reactor = Reactor::new(make_app())?;
        reactor.set_limits(limits.clone());
        let factory = factory.clone();
        let socket = inherited
            .get(i)
            .and_then(|s| s.lock().unwrap_or_else(|e| e.into_inner()).take());
        let bound = match socket {
            Some(socket) => inherit::adopt(&mut reactor.cx(), socket, opts.clone(), factory)?,
            None => {
                let id = reactor.listen(addr, opts.clone(), move |app, _| factory(app))?;
                reactor.listener_addr(id)?.to_string()
            }
        };
        let _ = bound_tx.send(bound);
        if i == 0 {
            let socket = admin_given.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(admin) = listen_admin(&mut reactor, admin, socket)? {
                let _ = admin_tx.send(admin);
            }
        }
        Ok(reactor)
    })?;
    if let Ok(admin) = admin_rx.try_recv() {
        restarter.set_admin(ListenAddr::Tcp(admin));
        eprintln!("evdrive {sample} admin on {admin} (thread 0)");
    }
    let bound = bound_rx.try_recv().unwrap_or_else(|_| addr.to_string());
    // The threads' states that form one (the chat's rooms) learn of each other before the
    // address is announced.
    link(group.handles());
    // This thread only relays signals to the reactors.
    let handles = group.handles().to_vec();
    let mut signals = Reactor::new(0u32)?;
    signals.catch_signals(
        &[SIGUSR1, SIGUSR2, SIGINT, SIGTERM],
        None,
        Some(Box::new(move |cx, sig| {
            if sig == SIGUSR1 {
                for handle in &handles {
                    let _ = handle.post(|cx| print_snapshot(cx));
                }
                return;
            }
            if sig == SIGUSR2 {
                return restarter.hand_over_threads(&handles, grace);
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
    given.confirm(sample);
    eprintln!("evdrive {sample} listening on {bound} ({threads} threads)");
    while !group.is_finished() {
        signals.turn(Some(Duration::from_millis(100)))?;
    }
    group.join()
}

/// Makes the chat of every thread one chat: each learns the others' handles, and this returns
/// once all have, so no member arrives at a thread that does not know the others yet.
pub(crate) fn link_chats(handles: &[Handle<ChatRoom>]) {
    // One thread: nothing to link (and its loop is not running yet to answer).
    if handles.len() < 2 {
        return;
    }
    let (done, linked) = std::sync::mpsc::channel();
    for (i, handle) in handles.iter().enumerate() {
        let (all, done) = (handles.to_vec(), done.clone());
        let _ = handle.post(move |cx| {
            cx.app().link(i, all);
            let _ = done.send(());
        });
    }
    drop(done);
    // Ends early only if a thread is gone, which its own error reports.
    for _ in linked.iter().take(handles.len()) {}
}
