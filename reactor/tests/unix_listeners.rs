//! Unix-domain listeners as handles (S28): their stats name the path or abstract name they are
//! bound to, and a `std` Unix listener bound elsewhere can be adopted, its socket file left to
//! whoever made it.

use std::io;
use std::path::PathBuf;

use evdrive_reactor::{
    Cx, ListenAddr, ListenOptions, Protocol, Reactor, UnixAddr, UnixListenOptions,
};

/// Echoes.
struct Echo;

impl<App> Protocol<App> for Echo {
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        cx.write(data);
        data.len()
    }
}

/// A directory of its own for this test's socket files, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> io::Result<TempDir> {
        let dir =
            std::env::temp_dir().join(format!("evdrive-reactor-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn unix_listener_stats_name_its_path_and_abstract_name() -> io::Result<()> {
    let dir = TempDir::new("stats")?;
    let path = dir.0.join("stats.sock");
    let name = format!("evdrive-reactor-stats-{}", std::process::id());
    let mut r = Reactor::new(())?;
    let on_path = r.listen_unix(
        &UnixAddr::from(path.clone()),
        UnixListenOptions::new(),
        |_| Echo,
    )?;
    let on_name = r.listen_unix(
        &UnixAddr::parse(&format!("@{name}")),
        UnixListenOptions::new(),
        |_| Echo,
    )?;
    let path_addr = r.cx().listener_stats(on_path).unwrap().local_addr;
    assert_eq!(path_addr, ListenAddr::Unix(UnixAddr::Path(path.clone())));
    assert_eq!(path_addr.to_string(), format!("unix:{}", path.display()));
    let name_addr = r.cx().listener_stats(on_name).unwrap().local_addr;
    assert_eq!(
        name_addr,
        ListenAddr::Unix(UnixAddr::Abstract(name.clone().into_bytes()))
    );
    assert_eq!(name_addr.unix().unwrap().to_string(), format!("@{name}"));
    assert_eq!(name_addr.to_string(), format!("unix:@{name}"));
    // No made-up IP address: asking for one is an error, not `0.0.0.0:0`.
    assert_eq!(
        r.listener_addr(on_path).unwrap_err().kind(),
        io::ErrorKind::Unsupported
    );
    // A TCP listener's stats carry its TCP address.
    let tcp = r.listen(
        "127.0.0.1:0".parse().unwrap(),
        ListenOptions::default(),
        |_, _| Echo,
    )?;
    let tcp_addr = r.cx().listener_stats(tcp).unwrap().local_addr;
    assert_eq!(tcp_addr.tcp(), Some(r.listener_addr(tcp)?));
    assert_ne!(tcp_addr.tcp().unwrap().port(), 0);
    Ok(())
}
