//! The KV sample with `redis-cli` and `redis-benchmark`, plus a raw socket for pipelining and
//! `QUIT` (S9 for expiry on the timer wheel, S15 for pipelined replies).

mod samples_util;

use std::io::{self, Write};
use std::time::{Duration, Instant};

use protocols::codec::resp::encode_command;
use protocols::kv::{KvConn, KvStore};
use reactor::ListenOptions;
use samples_util::{connect, read_to_end, read_until, require, run, Sample};

fn kv_server() -> io::Result<Sample<KvStore>> {
    Sample::start(KvStore::new, ListenOptions::default(), |_, _| KvConn::new())
}

/// Runs one `redis-cli` command against `port`; returns its output (raw format: no
/// decorations, a nil reply is an empty line, an error is followed by an empty line).
fn cli(port: u16, args: &[&str]) -> io::Result<String> {
    let port = port.to_string();
    let mut all = vec!["-p", &port];
    all.extend_from_slice(args);
    run("redis-cli", &all)
}

#[test]
fn redis_cli_commands() -> io::Result<()> {
    require("redis-cli");
    let server = kv_server()?;
    let port = server.port();

    assert_eq!(cli(port, &["PING"])?, "PONG\n");
    assert_eq!(cli(port, &["SET", "greeting", "hello world"])?, "OK\n");
    assert_eq!(cli(port, &["GET", "greeting"])?, "hello world\n");
    assert_eq!(cli(port, &["GET", "missing"])?, "\n");
    assert_eq!(cli(port, &["INCR", "counter"])?, "1\n");
    assert_eq!(cli(port, &["INCRBY", "counter", "41"])?, "42\n");
    assert_eq!(
        cli(port, &["INCR", "greeting"])?,
        "ERR value is not an integer or out of range\n\n"
    );
    assert_eq!(cli(port, &["TTL", "counter"])?, "-1\n");
    assert_eq!(cli(port, &["TTL", "missing"])?, "-2\n");
    assert_eq!(cli(port, &["EXPIRE", "counter", "100"])?, "1\n");
    assert_eq!(cli(port, &["TTL", "counter"])?, "100\n");
    assert_eq!(
        cli(port, &["EXISTS", "counter", "greeting", "missing"])?,
        "2\n"
    );
    assert_eq!(cli(port, &["DEL", "counter", "missing"])?, "1\n");
    assert_eq!(cli(port, &["DBSIZE"])?, "1\n");
    assert_eq!(
        cli(port, &["FROB", "a", "b"])?,
        "ERR unknown command 'FROB', with args beginning with: 'a' 'b' \n\n"
    );
    assert_eq!(
        cli(port, &["GET"])?,
        "ERR wrong number of arguments for 'get' command\n\n"
    );
    // Only `greeting` is left.
    assert_eq!(server.query(|cx| cx.app().len()), 1);
    Ok(())
}

#[test]
fn keys_expire_on_their_own() -> io::Result<()> {
    require("redis-cli");
    let server = kv_server()?;
    let port = server.port();
    let start = Instant::now();
    assert_eq!(cli(port, &["SET", "short", "v", "PX", "50"])?, "OK\n");
    assert_eq!(cli(port, &["SET", "long", "v", "EX", "100"])?, "OK\n");
    // Nobody reads the key: the timer wheel removes it.
    server.wait_until("the key expired", |cx| cx.app().len() == 1);
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(cli(port, &["GET", "short"])?, "\n");
    assert_eq!(cli(port, &["TTL", "short"])?, "-2\n");
    assert_eq!(cli(port, &["GET", "long"])?, "v\n");
    Ok(())
}

#[test]
fn redis_benchmark_completes() -> io::Result<()> {
    require("redis-benchmark");
    let server = kv_server()?;
    let port = server.port().to_string();
    let out = run(
        "redis-benchmark",
        &[
            "-p",
            &port,
            "-t",
            "ping,set,get,incr",
            "-n",
            "2000",
            "-P",
            "16",
            "-q",
        ],
    )?;
    for test in ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR"] {
        assert!(
            out.lines()
                .any(|l| l.contains(&format!("{test}: ")) && l.contains("requests per second")),
            "no result for {test}:\n{out}"
        );
    }
    // Every INCR of the run landed on the one counter.
    let counter = server.query(|cx| {
        cx.app()
            .get(b"counter:__rand_int__", Instant::now())
            .map(<[u8]>::to_vec)
    });
    assert_eq!(counter.as_deref(), Some(&b"2000"[..]));
    Ok(())
}

#[test]
fn pipelined_commands_are_answered_in_order_then_quit_closes() -> io::Result<()> {
    let server = kv_server()?;
    let mut client = connect(server.addr())?;
    let mut batch = Vec::new();
    for i in 0..100 {
        encode_command(&mut batch, &[b"INCR", b"n"]);
        if i % 10 == 0 {
            batch.extend_from_slice(b"PING\r\n");
        }
    }
    encode_command(&mut batch, &[b"QUIT"]);
    encode_command(&mut batch, &[b"PING"]); // after QUIT: ignored
    client.write_all(&batch)?;
    let got = String::from_utf8(read_to_end(&mut client)?).unwrap();
    let mut expected = String::new();
    for i in 0..100 {
        expected.push_str(&format!(":{}\r\n", i + 1));
        if i % 10 == 0 {
            expected.push_str("+PONG\r\n");
        }
    }
    expected.push_str("+OK\r\n");
    assert_eq!(got, expected);
    Ok(())
}

#[test]
fn protocol_error_is_reported_then_closed() -> io::Result<()> {
    let server = kv_server()?;
    let mut client = connect(server.addr())?;
    let mut got = Vec::new();
    client.write_all(b"PING\r\n")?;
    read_until(&mut client, &mut got, b"+PONG\r\n")?;
    client.write_all(b"*1\r\n$abc\r\n")?;
    let rest = read_to_end(&mut client)?;
    assert_eq!(rest, b"-ERR Protocol error: invalid bulk length\r\n");
    // The server is still there for others.
    let mut other = connect(server.addr())?;
    other.write_all(b"PING\r\n")?;
    let mut got = Vec::new();
    read_until(&mut other, &mut got, b"+PONG\r\n")?;
    Ok(())
}
