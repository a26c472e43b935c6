//! The listening sockets a sample is given instead of binding its own: by a service manager
//! (socket activation: `LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`), or by the process it
//! succeeds in a restart (the channel named by [`HANDOVER_VAR`]).
//!
//! Names decide the use: a socket named `admin` serves the admin endpoint, every other one the
//! sample. With one thread the sample takes one socket. With `--threads N` it takes either one
//! socket, which every thread serves through a descriptor of its own (the threads accept from
//! one backlog), or exactly N (a predecessor with N threads hands over its N `SO_REUSEPORT`
//! listeners, one per thread).
//!
//! Sockets given this way win over `--listen` (and an `admin` socket over `--admin`): a
//! successor has its predecessor's arguments, and the sockets handed over are the ones it must
//! serve, already bound; under a service manager the sockets are the manager's to choose. The
//! log says which address was not bound.

use std::io;
use std::time::Duration;

use reactor::activation::{self, Inherited, SocketKind};
use reactor::restart::Channel;
use reactor::{ListenOptions, LoopCx, Protocol};

/// The environment variable naming, in a successor, its end of the hand-over channel.
pub(crate) const HANDOVER_VAR: &str = "EVDRIVE_HANDOVER_FD";

/// How long a successor waits for its predecessor's listeners.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The name of the admin endpoint's socket.
pub(crate) const ADMIN_NAME: &str = "admin";

/// The name of the sample's listening sockets when handed over.
pub(crate) const LISTEN_NAME: &str = "listen";

/// What this process was given.
#[derive(Debug, Default)]
pub(crate) struct Given {
    /// The sample's sockets.
    pub(crate) main: Vec<Inherited>,
    /// The admin endpoint's socket.
    pub(crate) admin: Option<Inherited>,
    /// In a successor: the channel to confirm on once serving.
    pub(crate) channel: Option<Channel>,
}

impl Given {
    /// Takes what the environment passes: a hand-over first, else socket activation. Call
    /// at start-up, before threads are spawned (the variables are removed).
    ///
    /// # Errors
    /// A malformed hand-over or activation.
    pub(crate) fn take() -> io::Result<Given> {
        let (sockets, channel) = match Channel::from_env(HANDOVER_VAR)? {
            Some(channel) => (channel.receive_listeners(RECEIVE_TIMEOUT)?, Some(channel)),
            None => (activation::listen_fds()?, None),
        };
        let mut given = Given {
            channel,
            ..Given::default()
        };
        for socket in sockets {
            if socket.name() == Some(ADMIN_NAME) {
                given.admin = Some(socket);
            } else {
                given.main.push(socket);
            }
        }
        Ok(given)
    }

    /// In a successor, tells the predecessor this process serves (it then stops accepting),
    /// after announcing it with its pid. A predecessor already gone (stopped meanwhile) is
    /// logged and this process serves on: the sockets are its own now, and no one else's.
    pub(crate) fn confirm(self, sample: &str) {
        let Some(channel) = self.channel else {
            return;
        };
        eprintln!(
            "evdrive {sample} pid {} took over the listeners",
            std::process::id()
        );
        if let Err(e) = channel.confirm_serving() {
            log::warn!("the predecessor is gone before this process confirmed ({e}); serving on");
        }
    }

    /// The sample's sockets for `threads` threads: one each, or none (bind as usual).
    ///
    /// # Errors
    /// A count that is neither 0, 1 nor `threads`; out of descriptors for the copies.
    pub(crate) fn for_threads(&mut self, threads: usize) -> io::Result<Vec<Inherited>> {
        let main = std::mem::take(&mut self.main);
        match main.len() {
            0 => Ok(Vec::new()),
            n if n == threads => Ok(main),
            1 => {
                let one = &main[0];
                let mut each = (1..threads)
                    .map(|_| one.try_clone())
                    .collect::<io::Result<Vec<_>>>()?;
                each.extend(main);
                Ok(each)
            }
            n => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{n} listening sockets given for {threads} threads: expected 1 or {threads}"
                ),
            )),
        }
    }
}

/// Serves an inherited socket with the reactor's accept loop, and returns how it is bound, as
/// the command line writes it.
///
/// # Errors
/// A socket that is not listening (or a UDP one); the errors of adopting it.
pub(crate) fn adopt<App, P, F>(
    cx: &mut LoopCx<'_, App>,
    socket: Inherited,
    opts: ListenOptions,
    factory: F,
) -> io::Result<String>
where
    App: 'static,
    P: Protocol<App> + 'static,
    F: Fn(&mut App) -> P + 'static,
{
    if socket.kind() == SocketKind::UnixListener {
        let id = cx.adopt_unix_listener(socket.into_unix_listener()?, opts, factory)?;
        return Ok(cx
            .listener_stats(id)
            .map(|s| s.local_addr.to_string())
            .unwrap_or_default());
    }
    let id = cx.adopt_listener(socket.into_tcp_listener()?, opts, move |app, _| {
        factory(app)
    })?;
    Ok(cx.listener_addr(id)?.to_string())
}
