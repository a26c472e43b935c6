//! The cross-thread side of a reactor: post closures into it and wake it (S1).
//!
//! # Implementation notes
//! Posted closures wait in a mutex-protected queue; a `mio::Waker` (an eventfd) makes the
//! reactor's `poll` return, and the loop then takes the whole queue in one lock and runs it in
//! order. The lock is held only to push or to swap the queue out, never while a closure runs.
//! When the reactor is dropped it marks the queue closed under the same lock, so a post either
//! lands before that (and runs, or is dropped with the reactor) or fails with
//! [`Error::Stopped`]: it never blocks and never panics. [`Handle::try_post`] fails with
//! [`PostError::Stopped`] instead, which hands the closure back.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{Error, LoopCx};

/// A closure posted from another thread.
pub(crate) type Posted<App> = Box<dyn FnOnce(&mut LoopCx<'_, App>) + Send>;

pub(crate) struct Mailbox<App> {
    pub(crate) queue: Mutex<Inbox<App>>,
    pub(crate) waker: mio::Waker,
}

pub(crate) struct Inbox<App> {
    pub(crate) posted: VecDeque<Posted<App>>,
    /// The reactor is gone: posts fail.
    pub(crate) closed: bool,
}

/// Posts work into a reactor from any thread, and wakes it.
///
/// `Handle` is `Send + Sync + Clone`. Closures run inside the loop, in the order they were
/// posted, with a [`LoopCx`] that reaches the user state and every connection.
///
/// ```
/// use evdrive_reactor::Reactor;
/// use std::time::Duration;
///
/// let mut reactor = Reactor::new(0u32)?;
/// let handle = reactor.handle()?;
/// std::thread::spawn(move || {
///     handle.post(|cx| *cx.app() += 1).unwrap();
///     handle.shutdown(Duration::from_secs(1)).unwrap();
/// });
/// reactor.run()?;
/// assert_eq!(*reactor.app(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Handle<App> {
    pub(crate) mailbox: Arc<Mailbox<App>>,
}

impl<App> Clone for Handle<App> {
    fn clone(&self) -> Self {
        Handle {
            mailbox: Arc::clone(&self.mailbox),
        }
    }
}

impl<App> fmt::Debug for Handle<App> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl<App> Handle<App> {
    /// Runs `f` inside the reactor's loop. Fails with [`Error::Stopped`] if the reactor is gone.
    ///
    /// # Errors
    /// [`Error::Stopped`] if the reactor is gone (the closure is dropped unrun; use
    /// [`try_post`](Self::try_post) to get it back);
    /// [`Error::Io`] if waking it failed (the closure stays queued and runs on its next turn).
    pub fn post(&self, f: impl FnOnce(&mut LoopCx<'_, App>) + Send + 'static) -> crate::Result<()> {
        self.try_post(f).map_err(|e| match e {
            PostError::Stopped(_) => Error::Stopped,
            PostError::Wake(e) => Error::Io(e),
        })
    }

    /// Runs `f` inside the reactor's loop, like [`post`](Self::post), but hands `f` back when
    /// the reactor is gone, so whatever it owns (a reply channel, a buffer, a socket) is not
    /// lost with it: the caller can run it elsewhere or report the failure through it.
    ///
    /// ```
    /// use evdrive_reactor::{PostError, Reactor};
    ///
    /// let mut reactor = Reactor::new(Vec::<String>::new())?;
    /// let handle = reactor.handle()?;
    /// drop(reactor);
    /// let message = String::from("not lost");
    /// let f = move |cx: &mut evdrive_reactor::LoopCx<'_, Vec<String>>| cx.app().push(message);
    /// let back = match handle.try_post(f) {
    ///     Err(PostError::Stopped(f)) => f,
    ///     other => panic!("the reactor is gone: {other:?}"),
    /// };
    /// // The closure, and the string it owns, can go to another reactor.
    /// let mut other = Reactor::new(Vec::new())?;
    /// back(&mut other.cx());
    /// assert_eq!(other.app(), &["not lost"]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`PostError::Stopped`] with `f` if the reactor is gone; [`PostError::Wake`] if waking it
    /// failed (then `f` is queued and runs on the reactor's next turn, so it cannot come back).
    pub fn try_post<F>(&self, f: F) -> Result<(), PostError<F>>
    where
        F: FnOnce(&mut LoopCx<'_, App>) + Send + 'static,
    {
        {
            let mut inbox = self.mailbox.queue.lock().unwrap_or_else(|e| e.into_inner());
            if inbox.closed {
                return Err(PostError::Stopped(f));
            }
            inbox.posted.push_back(Box::new(f));
        }
        self.mailbox.waker.wake().map_err(PostError::Wake)
    }

    /// Asks the reactor to shut down gracefully (see [`crate::Reactor::shutdown`]).
    ///
    /// # Errors
    /// As [`post`](Self::post).
    pub fn shutdown(&self, grace: Duration) -> crate::Result<()> {
        self.post(move |cx| cx.shutdown_reactor(grace))
    }

    /// Asks the reactor to abort every connection and stop at once.
    ///
    /// # Errors
    /// As [`post`](Self::post).
    pub fn stop_now(&self) -> crate::Result<()> {
        self.post(|cx| cx.stop_reactor_now())
    }

    /// Whether the reactor behind this handle is gone.
    pub fn is_stopped(&self) -> bool {
        self.mailbox
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed
    }
}

/// Why [`Handle::try_post`] failed, with the closure when it was not queued.
pub enum PostError<F> {
    /// The reactor is gone; the closure was not queued and comes back unrun.
    Stopped(F),
    /// Waking the reactor failed; the closure is queued and runs on the reactor's next turn.
    Wake(std::io::Error),
}

impl<F> PostError<F> {
    /// The closure, if it was not queued ([`Stopped`](Self::Stopped)).
    pub fn into_inner(self) -> Option<F> {
        match self {
            PostError::Stopped(f) => Some(f),
            PostError::Wake(_) => None,
        }
    }
}

// By hand: a closure has no `Debug`.
impl<F> fmt::Debug for PostError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::Stopped(_) => f.write_str("Stopped(..)"),
            PostError::Wake(e) => f.debug_tuple("Wake").field(e).finish(),
        }
    }
}

impl<F> fmt::Display for PostError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::Stopped(_) => f.write_str("the reactor has stopped"),
            PostError::Wake(e) => write!(f, "waking the reactor failed: {e}"),
        }
    }
}

impl<F> std::error::Error for PostError<F> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PostError::Stopped(_) => None,
            PostError::Wake(e) => Some(e),
        }
    }
}
