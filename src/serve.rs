//! Serving one sample: the reactor (or one per thread), its listener, the admin endpoint and
//! the signals, written once for every subcommand.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use protocols::admin::{AdminServer, AppMetrics};
use protocols::chat::ChatRoom;
use reactor::sys::{SIGINT, SIGTERM, SIGUSR1};
use reactor::{
    Group, Handle, Limits, ListenAddr, ListenOptions, Protocol, Reactor, UnixListenOptions,
};

/// Adds the admin endpoint (`--admin`) to `reactor` on `addr`, and returns the bound address.
///
/// A client that goes quiet is closed after a minute, as the HTTP sample's keep-alive
/// connections are: the endpoint has no request timeout of its own.
pub(crate) fn listen_admin<App: AppMetrics + 'static>(
    reactor: &mut Reactor<App>,
    addr: SocketAddr,
) -> io::Result<SocketAddr> {
    let mut opts = ListenOptions::default();
    opts.conn.idle_timeout = Some(Duration::from_secs(60));
    let id = reactor.listen(addr, opts, |_, _| AdminServer::new())?;
    reactor.listener_addr(id)
}

/// Prints every connection of the reactor to standard error.
pub(crate) fn print_snapshot<App>(cx: &mut reactor::LoopCx<'_, App>) {
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
    if threads <= 1 {
        let mut reactor = Reactor::new(make_app())?;
        reactor.set_limits(limits);
        let bound = match &addr {
            ListenAddr::Tcp(addr) => {
                let listener = reactor.listen(*addr, opts, move |app, _| factory(app))?;
                reactor.listener_addr(listener)?.to_string()
            }
            ListenAddr::Unix(path) => {
                let opts = UnixListenOptions::from(opts).with_mode(unix_mode);
                reactor.listen_unix(path, opts, factory)?;
                format!("unix:{path}")
            }
        };
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
        link(&[reactor.handle()?]);
        eprintln!("evdrive {sample} listening on {bound}");
        return reactor.run();
    }

    // One socket file cannot have a listener per thread.
    let ListenAddr::Tcp(addr) = addr else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--threads above 1 needs a TCP address (one Unix socket file has one listener)",
        ));
    };
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
        let factory = factory.clone();
        reactor.listen(addr, opts.clone(), move |app, _| factory(app))?;
        if let (0, Some(admin)) = (i, admin) {
            let _ = admin_tx.send(listen_admin(&mut reactor, admin)?);
        }
        Ok(reactor)
    })?;
    if let Ok(admin) = admin_rx.try_recv() {
        eprintln!("evdrive {sample} admin on {admin} (thread 0)");
    }
    // The threads' states that form one (the chat's rooms) learn of each other before the
    // address is announced.
    link(group.handles());
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
