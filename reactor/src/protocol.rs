//! The handler trait: what a protocol implements to run on the reactor.

use std::os::fd::OwnedFd;

use crate::{CloseReason, Cx, TimerId};

/// A protocol handler: one value per connection, called by the reactor when something happens
/// on that connection.
///
/// Every callback gets a [`Cx`], through which the handler reaches the user state `App` shared
/// by all handlers of the reactor, writes to its own or any other connection, arms timers and
/// closes. Callbacks never run concurrently and never re-enter the same handler.
///
/// # Contract
/// - [`on_open`](Self::on_open) runs once the connection is established (accepted, or an
///   outgoing connect succeeded), or when this handler took over a live connection through
///   [`Cx::replace_handler`]; a replaced handler is dropped without `on_close`.
/// - [`on_data`](Self::on_data) gets every byte received and not yet consumed. Consume every
///   complete frame you can and return how many bytes that was; the unconsumed tail is kept and
///   offered again, followed by new bytes, on the next call. A handler that never consumes hits
///   the connection's input limit and is closed with [`CloseReason::Protocol`].
/// - [`on_close`](Self::on_close) runs exactly once for every connection the reactor created a
///   handler slot for — including outgoing attempts that failed before `on_open`.
///
/// ```
/// use evdrive_reactor::{Cx, Protocol};
///
/// /// Sends every byte back.
/// struct Echo;
///
/// impl<App> Protocol<App> for Echo {
///     fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
///         cx.write(data);
///         data.len()
///     }
/// }
///
/// let handler: Box<dyn Protocol<()>> = Box::new(Echo);
/// # drop(handler);
/// ```
pub trait Protocol<App> {
    /// The connection is established.
    fn on_open(&mut self, cx: &mut Cx<'_, App>) {
        let _ = cx;
    }

    /// Bytes arrived; return how many were consumed.
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize;

    /// Descriptors arrived (`SCM_RIGHTS`, on a Unix connection, S29), called just before the
    /// [`on_data`](Self::on_data) that carries the bytes they came with (that call may offer
    /// earlier bytes too: the kernel attaches descriptors to the end of a read, never to a byte
    /// it cannot name). They are owned and close-on-exec; any not kept are closed when dropped,
    /// which is what the default does.
    fn on_fds(&mut self, cx: &mut Cx<'_, App>, fds: Vec<OwnedFd>) {
        let _ = (cx, fds);
    }

    /// The connection's queued output went above its high-water mark: reading from it is paused
    /// until the output drains below the low-water mark.
    fn on_high_water(&mut self, cx: &mut Cx<'_, App>) {
        let _ = cx;
    }

    /// Queued output fell below the low-water mark after having passed the high-water mark;
    /// reading has resumed.
    fn on_drained(&mut self, cx: &mut Cx<'_, App>) {
        let _ = cx;
    }

    /// A timer armed with [`Cx::set_timer`] expired.
    fn on_timer(&mut self, cx: &mut Cx<'_, App>, timer: TimerId) {
        let _ = (cx, timer);
    }

    /// The peer half-closed its side (end of stream). The default closes the connection
    /// gracefully; a handler may instead keep writing and close later.
    fn on_eof(&mut self, cx: &mut Cx<'_, App>) {
        cx.close();
    }

    /// The connection is gone. Writes to it are ignored; writes to other connections work.
    fn on_close(&mut self, cx: &mut Cx<'_, App>, reason: CloseReason) {
        let _ = (cx, reason);
    }
}

impl<App, P: Protocol<App> + ?Sized> Protocol<App> for Box<P> {
    fn on_open(&mut self, cx: &mut Cx<'_, App>) {
        (**self).on_open(cx)
    }
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        (**self).on_data(cx, data)
    }
    fn on_fds(&mut self, cx: &mut Cx<'_, App>, fds: Vec<OwnedFd>) {
        (**self).on_fds(cx, fds)
    }
    fn on_high_water(&mut self, cx: &mut Cx<'_, App>) {
        (**self).on_high_water(cx)
    }
    fn on_drained(&mut self, cx: &mut Cx<'_, App>) {
        (**self).on_drained(cx)
    }
    fn on_timer(&mut self, cx: &mut Cx<'_, App>, timer: TimerId) {
        (**self).on_timer(cx, timer)
    }
    fn on_eof(&mut self, cx: &mut Cx<'_, App>) {
        (**self).on_eof(cx)
    }
    fn on_close(&mut self, cx: &mut Cx<'_, App>, reason: CloseReason) {
        (**self).on_close(cx, reason)
    }
}
