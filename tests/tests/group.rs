//! `Group`: one reactor per thread, each with its own `SO_REUSEPORT` listener on one address.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use evdrive_tests::{connect, localhost, wait_until, WAIT};
use protocols::echo::Echo;
use reactor::{Group, ListenOptions, Reactor};

/// The port the first reactor bound, handed to the others.
#[derive(Default)]
struct SharedPort {
    port: Mutex<Option<u16>>,
    set: Condvar,
}

impl SharedPort {
    fn publish(&self, port: u16) {
        *self.port.lock().unwrap() = Some(port);
        self.set.notify_all();
    }

    fn wait(&self) -> io::Result<u16> {
        let guard = self.port.lock().unwrap();
        let (guard, _) = self
            .set
            .wait_timeout_while(guard, WAIT, |p| p.is_none())
            .unwrap();
        guard.ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "no port published"))
    }
}

/// S12: two reactors on two threads listen on one address with `reuse_port`; reactor 0 binds
/// port 0 and reactor 1 joins the port it got. 200 clients are all echoed, the kernel spread
/// them across both reactors (each counts its accepts in its own user state), and a graceful
/// `shutdown` joins both threads without error.
#[test]
fn two_reactors_share_one_port_and_both_serve() -> io::Result<()> {
    evdrive_tests::init_log();
    const CLIENTS: usize = 200;
    let shared = Arc::new(SharedPort::default());
    let port = Arc::clone(&shared);
    let group = Group::start(2, move |thread| {
        let mut reactor = Reactor::new(0usize)?;
        let opts = ListenOptions::default().with_reuse_port(true);
        let addr = match thread {
            0 => localhost(),
            _ => SocketAddr::from(([127, 0, 0, 1], port.wait()?)),
        };
        let listener = reactor.listen(addr, opts, |accepted: &mut usize, _| {
            *accepted += 1;
            Echo
        })?;
        let bound = reactor.listener_addr(listener)?;
        if thread == 0 {
            port.publish(bound.port());
        }
        Ok(reactor)
    })?;
    let addr = SocketAddr::from(([127, 0, 0, 1], shared.wait()?));

    // 1. All clients connect, then each is echoed.
    let mut clients = (0..CLIENTS)
        .map(|_| connect(addr))
        .collect::<io::Result<Vec<_>>>()?;
    for (i, client) in clients.iter_mut().enumerate() {
        let msg = format!("client {i}\n");
        client.write_all(msg.as_bytes())?;
        let mut echo = vec![0u8; msg.len()];
        client.read_exact(&mut echo)?;
        assert_eq!(echo, msg.as_bytes());
    }

    // 2. Ask each reactor, through its handle, how many it accepted.
    let mut per_thread = Vec::new();
    for handle in group.handles() {
        let (tx, rx) = mpsc::channel();
        handle
            .post(move |cx| {
                let _ = tx.send(*cx.app());
            })
            .expect("the reactor is running");
        per_thread.push(rx.recv_timeout(WAIT).expect("no answer from a reactor"));
    }
    assert_eq!(per_thread.iter().sum::<usize>(), CLIENTS, "{per_thread:?}");
    assert!(
        per_thread.iter().all(|&n| n > 0),
        "not spread: {per_thread:?}"
    );
    eprintln!("connections per reactor: {per_thread:?}");

    drop(clients);
    group.shutdown(Duration::from_secs(1))
}

/// S12: when one thread's setup fails, `Group::start` returns that error (kind and message)
/// and shuts down the reactor that did start — also when that reactor reports in only after
/// the failure was received, the order in which a slow setup finishes.
///
/// That order is made certain, not hoped for: reactor 0's setup finishes only once reactor 1's
/// thread has ended (a thread-local value of that thread is dropped), and a thread reports its
/// setup's result before it ends, so the error is first in `start`'s channel.
#[test]
fn a_setup_error_in_one_thread_fails_start() -> io::Result<()> {
    /// Sets its flag when dropped: kept in a thread-local, that is when its thread ends.
    struct OnThreadExit(Arc<AtomicBool>);
    impl Drop for OnThreadExit {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    thread_local! {
        static AT_EXIT: std::cell::RefCell<Option<OnThreadExit>> =
            const { std::cell::RefCell::new(None) };
    }
    let failed_thread_ended = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    // `start` runs on a thread of its own, so that a hang fails the test instead of blocking it.
    std::thread::spawn(move || {
        let result = Group::start(2, move |thread| {
            if thread == 1 {
                let guard = OnThreadExit(Arc::clone(&failed_thread_ended));
                AT_EXIT.with(|slot| *slot.borrow_mut() = Some(guard));
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "reactor 1 cannot listen",
                ));
            }
            // Finish only after reactor 1's thread reported its error and ended.
            wait_until(WAIT, || {
                failed_thread_ended.load(Ordering::SeqCst).then_some(())
            })
            .expect("reactor 1's thread did not end");
            Reactor::new(())
        });
        let _ = tx.send(result.map(|_group| ()));
    });
    let result = rx
        .recv_timeout(WAIT)
        .expect("Group::start did not return after a setup error");
    let err = result.expect_err("start should fail");
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains("reactor 1 cannot listen"), "{err}");
    Ok(())
}
