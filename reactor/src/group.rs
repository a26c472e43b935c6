//! Thread-per-core: N reactors on N threads, each with its own `SO_REUSEPORT` listener (S12).
//!
//! Nothing is shared between the reactors: each thread builds its own reactor, user state and
//! listener (with [`ListenOptions::reuse_port`](crate::ListenOptions::reuse_port) set, so the
//! kernel spreads incoming connections across the listeners). The only cross-thread link is each
//! reactor's [`Handle`], used to post work and to shut the group down.

use std::io;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{Handle, Reactor};

/// A set of reactors, one per thread.
///
/// ```
/// use evdrive_reactor::{Group, ListenOptions, Reactor};
/// use protocols_free_echo::Echo;
/// # mod protocols_free_echo {
/// #     pub struct Echo;
/// #     impl<A> evdrive_reactor::Protocol<A> for Echo {
/// #         fn on_data(&mut self, cx: &mut evdrive_reactor::Cx<'_, A>, d: &[u8]) -> usize { cx.write(d); d.len() }
/// #     }
/// # }
/// use std::time::Duration;
///
/// // Find a free port first, then let two reactors share it.
/// let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
/// let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
/// let group = Group::start(2, move |_thread| {
///     let mut reactor = Reactor::new(())?;
///     let opts = ListenOptions::default()
///         .with_reuse_port(true);
///     reactor.listen(addr, opts, |_, _| Echo)?;
///     Ok(reactor)
/// })?;
/// assert_eq!(group.handles().len(), 2);
/// group.shutdown(Duration::from_secs(1))?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Group<App: 'static> {
    handles: Vec<Handle<App>>,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

impl<App: 'static> Group<App> {
    /// Starts `threads` reactors. `setup(i)` runs on thread `i` and builds its reactor (user
    /// state, listeners with `reuse_port`); then the thread runs it until shutdown. Returns once
    /// every reactor is set up, or the first setup error (the threads already started are shut
    /// down).
    ///
    /// # Errors
    /// The first error of a thread's spawn or `setup`; `Other` if a thread died during setup.
    pub fn start<F>(threads: usize, setup: F) -> io::Result<Group<App>>
    where
        F: Fn(usize) -> io::Result<Reactor<App>> + Send + Sync + 'static,
    {
        let setup = std::sync::Arc::new(setup);
        let (tx, rx) = std::sync::mpsc::channel();
        let mut group = Group {
            handles: Vec::new(),
            threads: Vec::new(),
        };
        for i in 0..threads.max(1) {
            let setup = std::sync::Arc::clone(&setup);
            let tx = tx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("evdrive-{i}"))
                .spawn(move || -> io::Result<()> {
                    let mut reactor = match setup(i).and_then(|mut r| r.handle().map(|h| (r, h))) {
                        Ok((reactor, handle)) => {
                            let _ = tx.send(Ok(handle));
                            reactor
                        }
                        Err(e) => {
                            let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                            return Err(e);
                        }
                    };
                    // Reported: let `start` see the channel close once every thread reported.
                    drop(tx);
                    reactor.run()
                })?;
            group.threads.push(thread);
        }
        drop(tx);
        for _ in 0..group.threads.len() {
            match rx.recv() {
                Ok(Ok(handle)) => group.handles.push(handle),
                Ok(Err(e)) => {
                    // Threads still setting up report later: take their handles too, or the
                    // shutdown below would join reactors nobody asked to stop.
                    group
                        .handles
                        .extend(rx.iter().filter_map(|report| report.ok()));
                    let _ = group.shutdown(Duration::ZERO);
                    return Err(e);
                }
                Err(_) => {
                    let _ = group.shutdown(Duration::ZERO);
                    return Err(io::Error::other("a reactor thread died during setup"));
                }
            }
        }
        Ok(group)
    }

    /// One handle per reactor, in thread order.
    pub fn handles(&self) -> &[Handle<App>] {
        &self.handles
    }

    /// Shuts every reactor down gracefully (see [`Reactor::shutdown`]) and joins the threads.
    /// Returns the first error a reactor returned.
    ///
    /// # Errors
    /// The first error a reactor's `run` returned, or `Other` if a thread panicked.
    pub fn shutdown(self, grace: Duration) -> io::Result<()> {
        for handle in &self.handles {
            // A reactor that already stopped cannot be asked again; joining tells its result.
            let _ = handle.shutdown(grace);
        }
        self.join()
    }

    /// Asks every reactor to stop at once (aborting connections), then joins the threads.
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub fn stop_now(self) -> io::Result<()> {
        for handle in &self.handles {
            let _ = handle.stop_now();
        }
        self.join()
    }

    /// Whether every reactor thread has finished (without waiting).
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Waits for every reactor thread to finish.
    ///
    /// # Errors
    /// The first error a reactor's `run` returned, or `Other` if a thread panicked.
    pub fn join(self) -> io::Result<()> {
        let mut first = Ok(());
        for thread in self.threads {
            let result = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a reactor thread panicked")));
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}
