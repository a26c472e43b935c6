//! The cross-thread side of a reactor: post closures into it and wake it (S1).
//!
//! # Implementation notes
//! Posted closures wait in a mutex-protected queue; a `mio::Waker` (an eventfd) makes the
//! reactor's `poll` return, and the loop then takes the whole queue in one lock and runs it in
//! order. The lock is held only to push or to swap the queue out, never while a closure runs.
//! When the reactor is dropped it marks the queue closed under the same lock, so a post either
//! lands before that (and runs, or is dropped with the reactor) or fails with
//! [`Error::Stopped`]: it never blocks and never panics.

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
    /// [`Error::Stopped`] if the reactor is gone (the closure is dropped unrun);
    /// [`Error::Io`] if waking it failed (the closure stays queued and runs on its next turn).
    pub fn post(&self, f: impl FnOnce(&mut LoopCx<'_, App>) + Send + 'static) -> crate::Result<()> {
        {
            let mut inbox = self.mailbox.queue.lock().unwrap_or_else(|e| e.into_inner());
            if inbox.closed {
                return Err(Error::Stopped);
            }
            inbox.posted.push_back(Box::new(f));
        }
        self.mailbox.waker.wake().map_err(Error::Io)
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
