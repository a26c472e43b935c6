//! Restarting without dropping a connection: a running program hands its listening sockets to
//! its successor over a Unix socket (`SCM_RIGHTS`, S29), the successor serves them and says
//! so, and only then does the old program stop accepting and let its connections end.
//!
//! # The sequence
//! 1. **Old process**: [`Channel::pair`] and start the successor with one end
//!    ([`spawn_successor`] does both: the end is inherited under an environment variable the
//!    program chooses, e.g. `EVDRIVE_HANDOVER_FD`).
//! 2. **Old process**: [`LoopCx::export_listeners`] duplicates every listener's descriptor
//!    (the reactor keeps serving its own), and [`Channel::send_listeners`] sends them, each
//!    with a name the successor understands.
//! 3. **Successor**: [`Channel::from_env`] takes its end, [`Channel::receive_listeners`]
//!    returns the sockets as [`Inherited`], classified like socket activation's; it adopts them
//!    ([`LoopCx::adopt_listener`], [`LoopCx::adopt_unix_listener`]), never binding anew: a
//!    listener bound again (even with `SO_REUSEPORT`) would be another socket, and the clients
//!    queued in the old one's backlog would be reset when it closes.
//! 4. **Successor**: once it serves, [`Channel::confirm_serving`].
//! 5. **Old process**: [`Channel::await_serving`] (bounded: a successor that exits or stays
//!    silent is killed and reaped, and the old process goes on serving as before). Both now
//!    accept from the same sockets, which is harmless.
//! 6. **Old process**: [`LoopCx::release_listener`] for each listener: out of the poller, its
//!    descriptor closed, the socket (and its backlog) alive in the successor, a Unix socket's
//!    file left in place. Then it lets its connections end (see the samples' drain) and exits.
//!
//! Every step before 6 leaves the old process serving; no client is refused at any step,
//! because the listening sockets never close.
//!
//! # Implementation notes
//! The channel is a `SOCK_SEQPACKET` pair: a message and the descriptors it carries arrive
//! together and apart from the next, so the wire format needs no framing. Messages are text:
//! `L<name>` carrying one descriptor per listener, `E` at the end, and the successor's
//! `S<pid>` when it serves. Waiting on the channel blocks the calling thread (with a bound), so
//! a reactor's thread hands the exported descriptors to another thread for steps 1, 2 and 5.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::activation::Inherited;
use crate::{sys, ListenAddr, ListenerId, LoopCx};

/// A listener's descriptor, duplicated for a successor ([`LoopCx::export_listeners`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct Exported {
    /// The listener it came from (still serving here until released).
    pub id: ListenerId,
    /// Where it is bound.
    pub addr: ListenAddr,
    /// A second descriptor of the same socket, close-on-exec.
    pub fd: OwnedFd,
}

impl<App> LoopCx<'_, App> {
    /// Every listener of this reactor, in the order they were added (slot order).
    pub fn listeners(&self) -> Vec<ListenerId> {
        self.core_ref().listener_ids()
    }

    /// A second descriptor (close-on-exec) of a listener's socket, to send to a successor.
    /// The listener goes on serving here.
    ///
    /// # Errors
    /// `NotFound` if the listener is gone; `Unsupported` for one without a descriptor (the
    /// in-memory test transport); the error of duplicating it.
    pub fn export_listener(&self, id: ListenerId) -> io::Result<OwnedFd> {
        self.core_ref().export_listener(id)
    }

    /// [`export_listener`](Self::export_listener) for every listener, with their addresses.
    ///
    /// # Errors
    /// As `export_listener`; nothing is returned if one fails.
    pub fn export_listeners(&self) -> io::Result<Vec<Exported>> {
        self.listeners()
            .into_iter()
            .map(|id| {
                let addr = self
                    .listener_stats(id)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no {id}")))?
                    .local_addr;
                let fd = self.export_listener(id)?;
                Ok(Exported { id, addr, fd })
            })
            .collect()
    }

    /// Stops serving a listener whose socket a successor now serves: this reactor stops
    /// accepting on it and closes its own descriptor, but the socket stays open in the
    /// successor, with the clients queued in its backlog, and a Unix-domain listener's socket
    /// file is left in place. (Compare [`close_listener`](Self::close_listener), which also
    /// removes the file the listener made.) Connections already accepted go on. Returns
    /// whether the listener existed.
    pub fn release_listener(&mut self, id: ListenerId) -> bool {
        let released = self.core_mut().release_listener(id);
        if released {
            log::info!("{id} released: its socket is served elsewhere now");
        }
        released
    }
}

/// One end of a hand-over channel between a process and its successor.
#[derive(Debug)]
pub struct Channel {
    /// One end of a Unix-domain `SOCK_SEQPACKET` pair.
    fd: OwnedFd,
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The message that ends the list of listeners.
const END: &[u8] = b"E";

impl Channel {
    /// A connected pair of channel ends, both close-on-exec.
    ///
    /// # Errors
    /// The error of `socketpair`.
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = sys::seqpacket_pair()?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    /// The channel end this process inherited under environment variable `var` (a descriptor
    /// number), if the variable is set. The variable is removed, so this process's own
    /// successor does not see it; as with socket activation, call this at start-up, before
    /// threads are spawned.
    ///
    /// # Errors
    /// `InvalidData` if the value is not a descriptor number, `InvalidInput` if that
    /// descriptor is not a `SOCK_SEQPACKET` socket; the error of taking it.
    pub fn from_env(var: &str) -> io::Result<Option<Channel>> {
        let Some(value) = std::env::var_os(var) else {
            return Ok(None);
        };
        std::env::remove_var(var);
        let raw = value
            .to_str()
            .and_then(|v| v.trim().parse::<i32>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{var}={value:?}: not a descriptor number"),
                )
            })?;
        let fd = sys::take_inherited(raw)?;
        if sys::socket_type(fd.as_fd()).ok() != Some(libc::SOCK_SEQPACKET) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{var}={raw}: not a hand-over channel (a SOCK_SEQPACKET socket)"),
            ));
        }
        Ok(Some(Channel { fd }))
    }

    /// Sends listening sockets to the successor, each with its name (step 2), then the end
    /// of the list. The descriptors stay open here: close them (drop the [`Exported`]) once
    /// sent.
    ///
    /// # Errors
    /// `BrokenPipe` if the successor is gone; the error of `sendmsg`.
    pub fn send_listeners(&self, listeners: &[(&str, BorrowedFd<'_>)]) -> io::Result<()> {
        for (name, fd) in listeners {
            let msg = [b"L", name.as_bytes()].concat();
            sys::sendmsg_fds(self.fd.as_fd(), &[io::IoSlice::new(&msg)], &[*fd])?;
        }
        sys::send_blocking(self.fd.as_fd(), END).map(drop)
    }

    /// Receives the listening sockets the predecessor sends (step 3), waiting at most
    /// `timeout` in all.
    ///
    /// # Errors
    /// `TimedOut`; `UnexpectedEof` if the predecessor closed the channel before the end of
    /// the list; `InvalidData` for a message that is not part of the hand-over.
    pub fn receive_listeners(&self, timeout: Duration) -> io::Result<Vec<Inherited>> {
        let deadline = Instant::now() + timeout;
        let mut listeners = Vec::new();
        loop {
            let mut fds = Vec::new();
            let msg = self.receive(deadline, &mut fds)?;
            match (msg.first(), fds.len()) {
                (Some(b'E'), 0) => return Ok(listeners),
                (Some(b'L'), 1) => {
                    let name = String::from_utf8_lossy(&msg[1..]).into_owned();
                    let fd = fds.pop().expect("one descriptor");
                    listeners.push(Inherited::new(fd, Some(name)));
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "unexpected hand-over message {:?} with {} descriptors",
                            String::from_utf8_lossy(&msg),
                            fds.len()
                        ),
                    ))
                }
            }
        }
    }

    /// Tells the predecessor this process serves its listeners (step 4).
    ///
    /// # Errors
    /// `BrokenPipe` if the predecessor is gone (it gave up waiting).
    pub fn confirm_serving(&self) -> io::Result<()> {
        let msg = format!("S{}", std::process::id());
        sys::send_blocking(self.fd.as_fd(), msg.as_bytes()).map(drop)
    }

    /// Waits at most `timeout` for the successor's confirmation (step 5) and returns the pid
    /// it gave.
    ///
    /// # Errors
    /// `TimedOut`; `UnexpectedEof` if the successor closed its end (it exited) without
    /// confirming; `InvalidData` for another message.
    pub fn await_serving(&self, timeout: Duration) -> io::Result<u32> {
        let mut fds = Vec::new();
        let msg = self.receive(Instant::now() + timeout, &mut fds)?;
        std::str::from_utf8(&msg)
            .ok()
            .and_then(|m| m.strip_prefix('S'))
            .and_then(|pid| pid.parse().ok())
            .filter(|_| fds.is_empty())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "unexpected confirmation {:?}",
                        String::from_utf8_lossy(&msg)
                    ),
                )
            })
    }

    /// One message, waiting until `deadline`.
    fn receive(&self, deadline: Instant, fds: &mut Vec<OwnedFd>) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if !sys::poll_readable(&[self.fd.as_fd()], Some(left))?[0] {
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no hand-over message in time",
                    ));
                }
                continue; // EINTR: wait again for what is left.
            }
            match sys::recvmsg_fds(self.fd.as_fd(), &mut buf, fds) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the other process closed the hand-over channel",
                    ))
                }
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Starts `cmd` as the successor (step 1) with one end of a new channel, whose descriptor
/// number it finds in environment variable `var`, and returns the child and the other end.
///
/// The successor's end is made inheritable only for the spawn and closed here right after,
/// so the channel reports end of file as soon as the successor exits. (A program that forks
/// on other threads at the same moment could inherit it too; the samples do not.)
///
/// # Errors
/// The errors of making the channel and of spawning `cmd`.
pub fn spawn_successor(mut cmd: Command, var: &str) -> io::Result<(Child, Channel)> {
    let (ours, theirs) = Channel::pair()?;
    sys::set_cloexec(theirs.fd.as_fd(), false)?;
    cmd.env(var, theirs.fd.as_raw_fd().to_string());
    let child = cmd.spawn();
    drop(theirs);
    Ok((child?, ours))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::SocketKind;

    #[test]
    fn listeners_cross_the_channel_with_their_names() -> io::Result<()> {
        let (old, new) = Channel::pair()?;
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = tcp.local_addr()?;
        old.send_listeners(&[("web", tcp.as_fd())])?;
        let got = new.receive_listeners(Duration::from_secs(5))?;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name(), Some("web"));
        assert_eq!(got[0].kind(), SocketKind::TcpListener);
        let adopted = got.into_iter().next().unwrap().into_tcp_listener()?;
        assert_eq!(adopted.local_addr()?, addr);
        new.confirm_serving()?;
        assert_eq!(
            old.await_serving(Duration::from_secs(5))?,
            std::process::id()
        );
        Ok(())
    }

    #[test]
    fn a_successor_gone_is_end_of_file_and_silence_times_out() -> io::Result<()> {
        let (old, new) = Channel::pair()?;
        let e = old.await_serving(Duration::from_millis(10)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        drop(new);
        let e = old.await_serving(Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        Ok(())
    }
}
