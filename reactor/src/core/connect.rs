//! Opening: a new connection's slot (accepted or outgoing), the non-blocking connect and its
//! verdict (S4, S19).
//!
//! # Implementation notes
//! An outgoing connection starts in [`Phase::Connecting`] with its connect timeout; output
//! queued meanwhile is sent once it opens. The verdict is read on writability: `SO_ERROR`
//! first, then `getpeername`, whose `ENOTCONN` means a spurious wake-up (the handshake is
//! still under way). An immediate success is judged the same way, since registration reports
//! writability at once.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use crate::core::conn::{Conn, Phase, WriteHalf};
use crate::core::{Core, Net, Source};
use crate::transport::Stream;
use crate::{sys, CloseReason, ConnConfig, ConnId, Protocol};

impl<App> Net<App> {
    /// Adds a connection slot in `phase`, registers its transport and arms its opening timer.
    pub(crate) fn insert_conn(
        &mut self,
        mut stream: Stream,
        handler: Box<dyn Protocol<App>>,
        config: Rc<ConnConfig>,
        phase: Phase,
    ) -> io::Result<ConnId> {
        let index = self.sources.vacant_key();
        stream.register(self.registration(index))?;
        self.next_generation = self.next_generation.wrapping_add(1);
        let generation = self.next_generation;
        let now = self.clock.now_ceil();
        let inserted = self.sources.insert(Source::Conn(Conn::new(
            stream, generation, phase, config, now,
        )));
        debug_assert_eq!(inserted, index);
        if self.handlers.len() <= index {
            self.handlers.resize_with(index + 1, || None);
            self.activity.resize(index + 1, 0);
        }
        self.handlers[index] = Some(handler);
        self.activity[index] = now;
        self.arm_opening(index);
        self.stats.open += 1;
        Ok(ConnId {
            index: index as u32,
            generation,
        })
    }

    /// Starts an outgoing connection over `stream`, whose connect is under way.
    pub(crate) fn start_connect(
        &mut self,
        stream: Stream,
        handler: Box<dyn Protocol<App>>,
        config: Rc<ConnConfig>,
    ) -> io::Result<ConnId> {
        let phase = Phase::Connecting {
            timer: None,
            write: WriteHalf::Open,
        };
        self.insert_conn(stream, handler, config, phase)
    }

    /// Starts an outgoing Unix-domain connection (S28), as [`connect`](Self::connect) does.
    pub(crate) fn connect_unix(
        &mut self,
        addr: &crate::UnixAddr,
        handler: Box<dyn Protocol<App>>,
        config: Rc<ConnConfig>,
    ) -> io::Result<ConnId> {
        let (stream, attempt) = crate::transport::unix::connect(addr, &config)?;
        let id = self.start_connect(stream, handler, config)?;
        if let Err(e) = attempt {
            self.kill(id.index as usize, CloseReason::from_io(e));
        }
        Ok(id)
    }

    /// Starts an outgoing TCP connection; the handler later gets `on_open`, or `on_close` with
    /// the precise reason (S4). Errors before any attempt (no descriptor left) are returned.
    pub(crate) fn connect(
        &mut self,
        addr: SocketAddr,
        handler: Box<dyn Protocol<App>>,
        config: Rc<ConnConfig>,
    ) -> io::Result<ConnId> {
        let (stream, attempt) = crate::transport::tcp::connect(addr, &config)?;
        // An immediate success is judged like a later one: registration reports writability at
        // once, and `finish_connect` reads the verdict.
        let id = self.start_connect(stream, handler, config)?;
        if let Err(e) = attempt {
            self.kill(id.index as usize, CloseReason::from_io(e));
        }
        Ok(id)
    }
}

impl<App> Core<App> {
    /// Judges a non-blocking connect on writability: `SO_ERROR`, then `getpeername` (S4).
    pub(crate) fn finish_connect(&mut self, index: usize) {
        let Some(conn) = self.conn_at(index) else {
            return;
        };
        let Phase::Connecting { write, .. } = conn.phase() else {
            return;
        };
        match conn.stream.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => {
                let reason = CloseReason::from_io(e);
                log::debug!("connect #{index}: {reason}");
                self.kill(index, reason);
                return;
            }
        }
        match conn.stream.check_connected() {
            Ok(()) => {}
            // Spurious wake-up: the handshake is still under way.
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => return,
            Err(e) => {
                self.kill(index, CloseReason::from_io(e));
                return;
            }
        }
        apply_conn_options(&conn.stream, &conn.config);
        let has_output = !conn.output.is_empty();
        // The verdict ends the connect timeout.
        self.end_phase_timer(index);
        if let Some(conn) = self.conn_at(index) {
            conn.set_phase(Phase::Open {
                first_byte: None,
                write,
            });
        }
        let now = self.net.clock.now_ceil();
        if let Some(at) = self.net.activity.get_mut(index) {
            *at = now;
        }
        self.net.stats.connected += 1;
        self.arm_watchdog(index);
        self.call(index, |h, cx| h.on_open(cx));
        if has_output || write == WriteHalf::ShutRequested {
            self.mark_dirty(index);
        }
    }
}

/// Applies the per-connection socket options of `config` to a connected stream.
pub(crate) fn apply_conn_options(stream: &Stream, config: &ConnConfig) {
    let Some(fd) = stream.fd() else {
        return;
    };
    // The options here are TCP's; a stream that carries descriptors is a Unix socket.
    if stream.carries_fds() {
        return;
    }
    if config.nodelay {
        if let Err(e) = sys::set_nodelay(fd, true) {
            log::debug!("TCP_NODELAY: {e}");
        }
    }
    if let Some(ka) = config.keepalive {
        if let Err(e) = sys::set_keepalive(fd, Some(ka)) {
            log::debug!("SO_KEEPALIVE: {e}");
        }
    }
}
