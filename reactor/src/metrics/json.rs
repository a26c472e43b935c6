//! The connection and UDP socket snapshots as JSON.

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::{ConnSnapshot, UdpSnapshot};

/// The connections as a JSON array, one object per connection with the fields of
/// [`ConnSnapshot`]: `id` (a string, `"#index.generation"`), `peer` (a string, or `null`),
/// `age` and `idle` (seconds, a number), `queued`, `buffered` (bytes), `paused` (a boolean),
/// `state` (a string), `timers`, `bytes_in` and `bytes_out` (numbers).
///
/// ```
/// use evdrive_reactor::{metrics, Reactor};
///
/// let reactor = Reactor::new(())?;
/// assert_eq!(metrics::connections_json(&reactor.connections()), "[]");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn connections_json(conns: &[ConnSnapshot]) -> String {
    // Written by hand rather than with serde: a dozen fixed fields of numbers and short strings
    // need one small string escaper, not a dependency of the core crate and its derive macros.
    let mut out = String::from("[");
    for (i, c) in conns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"id\":");
        json_string(&mut out, &c.id.to_string());
        out.push_str(",\"peer\":");
        match c.peer {
            Some(peer) => json_string(&mut out, &peer.to_string()),
            None => out.push_str("null"),
        }
        out.push_str(",\"state\":");
        json_string(&mut out, c.state);
        // Durations as seconds; Rust writes finite floats without exponent, valid JSON.
        write!(
            out,
            ",\"age\":{},\"idle\":{},\"queued\":{},\"buffered\":{},\"paused\":{},\
             \"timers\":{},\"bytes_in\":{},\"bytes_out\":{}}}",
            c.age.as_secs_f64(),
            c.idle.as_secs_f64(),
            c.queued,
            c.buffered,
            c.paused,
            c.timers,
            c.bytes_in,
            c.bytes_out
        )
        .expect("writing to a String cannot fail");
    }
    out.push(']');
    out
}

/// The UDP sockets as a JSON array, one object per socket with the fields of
/// [`UdpSnapshot`]: `id` (a string, `"udp#index.generation"`), `local` and `peer` (strings, or
/// `null`), `state` (a string), `timers`, and its counters `received`, `sent`, `dropped`,
/// `truncated`, `queued` (numbers).
///
/// ```
/// use evdrive_reactor::{metrics, Reactor};
///
/// let reactor = Reactor::new(())?;
/// assert_eq!(metrics::udp_sockets_json(&reactor.udp_sockets()), "[]");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn udp_sockets_json(sockets: &[UdpSnapshot]) -> String {
    let addr = |out: &mut String, a: Option<SocketAddr>| match a {
        Some(a) => json_string(out, &a.to_string()),
        None => out.push_str("null"),
    };
    let mut out = String::from("[");
    for (i, u) in sockets.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"id\":");
        json_string(&mut out, &format!("{:?}", u.id));
        out.push_str(",\"local\":");
        addr(&mut out, u.local);
        out.push_str(",\"peer\":");
        addr(&mut out, u.peer);
        out.push_str(",\"state\":");
        json_string(&mut out, u.state);
        write!(
            out,
            ",\"timers\":{},\"received\":{},\"sent\":{},\"dropped\":{},\"truncated\":{},\
             \"queued\":{}}}",
            u.timers,
            u.stats.received,
            u.stats.sent,
            u.stats.dropped,
            u.stats.truncated,
            u.stats.queued
        )
        .expect("writing to a String cannot fail");
    }
    out.push(']');
    out
}

/// Appends `s` as a JSON string (RFC 8259 section 7): quote, backslash and the control
/// characters below U+0020 escaped, everything else as is (the output is UTF-8, as `s` is).
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                write!(out, "\\u{:04x}", u32::from(c)).expect("writing to a String cannot fail")
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConnId;
    use std::time::Duration;

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\nd\te\u{1}f\u{1f}é/");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\te\\u0001f\\u001fé/\"");
    }

    #[test]
    fn connections_render_as_a_json_array() {
        let conn = ConnSnapshot {
            id: ConnId {
                index: 3,
                generation: 1,
            },
            peer: Some("127.0.0.1:4000".parse().unwrap()),
            age: Duration::from_millis(1500),
            idle: Duration::ZERO,
            queued: 10,
            buffered: 2,
            paused: true,
            state: "open",
            timers: 1,
            bytes_in: 5,
            bytes_out: 6,
        };
        let connecting = ConnSnapshot {
            peer: None,
            state: "connecting",
            ..conn.clone()
        };
        assert_eq!(connections_json(&[]), "[]");
        assert_eq!(
            connections_json(&[conn, connecting]),
            "[{\"id\":\"#3.1\",\"peer\":\"127.0.0.1:4000\",\"state\":\"open\",\"age\":1.5,\
             \"idle\":0,\"queued\":10,\"buffered\":2,\"paused\":true,\"timers\":1,\
             \"bytes_in\":5,\"bytes_out\":6},\
             {\"id\":\"#3.1\",\"peer\":null,\"state\":\"connecting\",\"age\":1.5,\
             \"idle\":0,\"queued\":10,\"buffered\":2,\"paused\":true,\"timers\":1,\
             \"bytes_in\":5,\"bytes_out\":6}]"
        );
    }

    #[test]
    fn udp_sockets_render_as_a_json_array() {
        let stats = crate::UdpStats {
            received: 4,
            sent: 3,
            dropped: 1,
            queued: 2,
            ..Default::default()
        };
        let socket = UdpSnapshot {
            id: crate::UdpId {
                index: 2,
                generation: 7,
            },
            local: Some("127.0.0.1:7007".parse().unwrap()),
            peer: None,
            state: "draining",
            timers: 0,
            stats,
        };
        assert_eq!(udp_sockets_json(&[]), "[]");
        assert_eq!(
            udp_sockets_json(&[socket]),
            "[{\"id\":\"udp#2.7\",\"local\":\"127.0.0.1:7007\",\"peer\":null,\
             \"state\":\"draining\",\"timers\":0,\"received\":4,\"sent\":3,\"dropped\":1,\
             \"truncated\":0,\"queued\":2}]"
        );
    }
}
