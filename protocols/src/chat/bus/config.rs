//! Where the bus is ([`BusConfig`], from `redis://HOST:PORT`), and the random ids of this
//! process's nodes.

use std::net::{SocketAddr, ToSocketAddrs};

/// Where the bus is, and this process's share of the node ids.
#[derive(Debug, Clone)]
pub struct BusConfig {
    pub(super) addr: SocketAddr,
    pub(super) process: String,
}

impl BusConfig {
    /// The bus at `url`, `redis://HOST:PORT` (the port defaults to 6379), for this process:
    /// the process gets a fresh random id, shared by its threads.
    ///
    /// # Errors
    /// A message saying what is wrong if `url` is not of that form or `HOST` does not resolve.
    pub fn from_url(url: &str) -> Result<BusConfig, String> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| format!("{url}: expected redis://HOST:PORT"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '@', '?']) {
            return Err(format!(
                "{url}: expected redis://HOST:PORT (no user, database or options)"
            ));
        }
        let with_port = if rest
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            rest.to_string()
        } else {
            format!("{rest}:6379")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("{url}: {e}"))?
            .next()
            .ok_or_else(|| format!("{url}: no address"))?;
        Ok(BusConfig::new(addr))
    }

    /// The bus at `addr`, for this process (a fresh random process id).
    pub fn new(addr: SocketAddr) -> BusConfig {
        BusConfig {
            addr,
            process: format!("{:012x}", seed() & 0xffff_ffff_ffff),
        }
    }

    /// The Redis server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A seed for ids and jitter: the standard library's per-process random hash keys, mixed with
/// the time and process id.
pub(super) fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}
