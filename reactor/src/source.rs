//! User sources: any descriptor or `mio` source watched by the reactor's poll beside its own
//! sockets, with a callback that gets the loop-wide context and the readiness (S1).
//!
//! A program that embeds the reactor often has one more thing to watch (standard input, a
//! pipe from a child, a UDP socket, a device). Instead of owning the loop around the reactor
//! (see the `foreign_loop` example), it registers the descriptor here: the callback runs inside
//! the turn, between the reactor's own events, and says what to do next with a [`PostAction`].
//!
//! ```
//! use evdrive_reactor::{Interest, PostAction, Reactor};
//! use std::io::{Read, Write};
//!
//! let (mut tx, rx) = mio::unix::pipe::new()?;
//! // The reactor is only lent the descriptor: we keep the pipe open (one owner here), and the
//! // callback reads through the other.
//! let rx = std::rc::Rc::new(rx);
//! let reader = std::rc::Rc::clone(&rx);
//! let mut reactor = Reactor::new(Vec::<u8>::new())?;
//! reactor.cx().add_fd(&*rx, Interest::READABLE, move |cx, event| {
//!     assert!(event.readable);
//!     let mut buf = [0u8; 64];
//!     // Edge-triggered: read until WouldBlock, or no new edge will come for what is left.
//!     loop {
//!         match (&*reader).read(&mut buf) {
//!             Ok(0) => return PostAction::Remove,
//!             Ok(n) => cx.app().extend_from_slice(&buf[..n]),
//!             Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return PostAction::Continue,
//!             Err(e) => panic!("{e}"),
//!         }
//!     }
//! })?;
//! tx.write_all(b"hello")?;
//! while reactor.app().len() < 5 {
//!     reactor.turn(Some(std::time::Duration::from_secs(1)))?;
//! }
//! assert_eq!(reactor.app(), b"hello");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use mio::{Interest, Registry, Token};

use crate::LoopCx;

/// Names a user source of one reactor, for [`LoopCx::remove_source`] and the other calls that
/// change it. Carries a generation, so a kept id never reaches a later source in the same slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl fmt::Debug for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "source#{}.{}", self.index, self.generation)
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a user source's readiness event says. Readiness is edge-triggered: it reports a change,
/// and the callback must read (or write) until `WouldBlock`, or return [`PostAction::Rearm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceEvent {
    /// The source whose callback this is.
    pub id: SourceId,
    /// Reading would not block.
    pub readable: bool,
    /// Writing would not block.
    pub writable: bool,
    /// The descriptor has an error pending (`EPOLLERR`).
    pub error: bool,
    /// The other end hung up (`EPOLLHUP`/`EPOLLRDHUP`): reads drain what is left, then end.
    pub hup: bool,
}

/// What a user source's callback asks the reactor to do next (the model is calloop's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostAction {
    /// Keep the source as it is: the next edge calls back again.
    Continue,
    /// Register it again: if it is still ready (the callback did not drain it), the callback
    /// runs again on the next turn without a new edge.
    Rearm,
    /// Stop watching it but keep its id; [`LoopCx::enable_source`] starts again.
    Disable,
    /// Deregister it and forget it. A descriptor lent with [`LoopCx::add_fd`] is not closed; a
    /// `mio` source given with [`LoopCx::add_source`] is dropped.
    Remove,
}

/// A source as the reactor keeps it: registration, and the callback.
pub(crate) trait UserSource<App> {
    fn register(&mut self, registry: &Registry, token: Token, interest: Interest)
        -> io::Result<()>;
    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()>;
    fn deregister(&mut self, registry: &Registry) -> io::Result<()>;
    fn ready(&mut self, cx: &mut LoopCx<'_, App>, event: SourceEvent) -> PostAction;
}

/// A descriptor the reactor was lent: it keeps the number, never the ownership.
struct Lent<F> {
    fd: RawFd,
    callback: F,
}

impl<App, F> UserSource<App> for Lent<F>
where
    F: FnMut(&mut LoopCx<'_, App>, SourceEvent) -> PostAction,
{
    fn register(&mut self, r: &Registry, token: Token, interest: Interest) -> io::Result<()> {
        r.register(&mut mio::unix::SourceFd(&self.fd), token, interest)
    }
    fn reregister(&mut self, r: &Registry, token: Token, interest: Interest) -> io::Result<()> {
        r.reregister(&mut mio::unix::SourceFd(&self.fd), token, interest)
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        r.deregister(&mut mio::unix::SourceFd(&self.fd))
    }
    fn ready(&mut self, cx: &mut LoopCx<'_, App>, event: SourceEvent) -> PostAction {
        (self.callback)(cx, event)
    }
}

/// A `mio` source the reactor owns, handed to its callback on every event.
struct Owned<S, F> {
    source: S,
    callback: F,
}

impl<App, S, F> UserSource<App> for Owned<S, F>
where
    S: mio::event::Source,
    F: FnMut(&mut LoopCx<'_, App>, &mut S, SourceEvent) -> PostAction,
{
    fn register(&mut self, r: &Registry, token: Token, interest: Interest) -> io::Result<()> {
        r.register(&mut self.source, token, interest)
    }
    fn reregister(&mut self, r: &Registry, token: Token, interest: Interest) -> io::Result<()> {
        r.reregister(&mut self.source, token, interest)
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        r.deregister(&mut self.source)
    }
    fn ready(&mut self, cx: &mut LoopCx<'_, App>, event: SourceEvent) -> PostAction {
        (self.callback)(cx, &mut self.source, event)
    }
}

impl<App> LoopCx<'_, App> {
    /// Watches a descriptor the reactor is lent: `callback` runs inside the loop whenever it
    /// becomes ready for `interest` (edge-triggered: drain it until `WouldBlock`, or return
    /// [`PostAction::Rearm`]), with the loop-wide context.
    ///
    /// # Lifetime of the descriptor
    /// The reactor keeps only the descriptor's number and never closes it: it stays the
    /// caller's. Keep it open until the source is removed ([`PostAction::Remove`],
    /// [`remove_source`](Self::remove_source)) or the reactor is dropped; a descriptor closed
    /// while registered leaves the reactor watching a number the system may give to another
    /// file. The usual way is to move the owner into `callback` (as the example of this
    /// module does), so they live and die together.
    ///
    /// # Errors
    /// Registering with the poller failed (`EPERM` for a regular file, which `epoll` cannot
    /// watch; `EEXIST` if this descriptor is registered already).
    pub fn add_fd<F>(
        &mut self,
        fd: &impl AsFd,
        interest: Interest,
        callback: F,
    ) -> io::Result<SourceId>
    where
        F: FnMut(&mut LoopCx<'_, App>, SourceEvent) -> PostAction + 'static,
    {
        let fd = fd.as_fd().as_raw_fd();
        self.core_mut()
            .add_user_source(Box::new(Lent { fd, callback }), interest)
    }

    /// Watches a `mio` source the reactor takes ownership of (a `mio::net::UdpSocket`, a pipe
    /// end): `callback` gets it with each event. It is dropped (and its descriptor closed) when
    /// the source is removed or the reactor is dropped.
    ///
    /// # Errors
    /// Registering with the poller failed.
    pub fn add_source<S, F>(
        &mut self,
        source: S,
        interest: Interest,
        callback: F,
    ) -> io::Result<SourceId>
    where
        S: mio::event::Source + 'static,
        F: FnMut(&mut LoopCx<'_, App>, &mut S, SourceEvent) -> PostAction + 'static,
    {
        self.core_mut()
            .add_user_source(Box::new(Owned { source, callback }), interest)
    }

    /// Stops watching a user source and forgets it (a lent descriptor is not closed). From
    /// inside the source's own callback it takes effect when the callback returns. Returns
    /// whether the source existed.
    pub fn remove_source(&mut self, id: SourceId) -> bool {
        self.core_mut().remove_user_source(id)
    }

    /// Stops watching a user source until [`enable_source`](Self::enable_source), keeping its
    /// id. Returns whether the source existed.
    ///
    /// # Errors
    /// Deregistering failed; the source is then removed.
    pub fn disable_source(&mut self, id: SourceId) -> io::Result<bool> {
        self.core_mut()
            .change_user_source(id, |s| s.enabled = false)
    }

    /// Watches a disabled user source again.
    ///
    /// # Errors
    /// Registering failed; the source is then removed.
    pub fn enable_source(&mut self, id: SourceId) -> io::Result<bool> {
        self.core_mut().change_user_source(id, |s| s.enabled = true)
    }

    /// Changes what a user source is watched for.
    ///
    /// # Errors
    /// Registering again failed; the source is then removed.
    pub fn set_source_interest(&mut self, id: SourceId, interest: Interest) -> io::Result<bool> {
        self.core_mut()
            .change_user_source(id, |s| s.interest = interest)
    }

    /// User sources registered now (disabled ones included).
    pub fn user_sources(&self) -> usize {
        self.core_ref().user_sources()
    }
}
