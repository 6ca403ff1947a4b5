//! NSM, the protocol that tells NFSv3 clients to reclaim their locks:
//! rpc.statd keeps one record per client that holds locks (`sm/` in its
//! state directory), and after a move the server sends each of them a
//! reboot notification (SM_NOTIFY, with sm-notify(8)) from the address the
//! clients use, so that they reclaim their locks there.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub mod reclaim;
pub mod tickle;

/// Replace `dir/name` with `bytes` so that a crash leaves the old or the
/// new content, never a part: a synced temporary file renamed over it,
/// then the directory synced.
fn replace_durably(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

/// The sm-notify binary, if installed.
pub fn sm_notify() -> Option<PathBuf> {
    systables::sbin("sm-notify")
}

/// Whether `ip` is an address of this network namespace (binding to it
/// succeeds).
pub fn is_local(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Wait until `ip` is local, checking every 20 ms; false at `until`.
pub fn wait_local(ip: IpAddr, until: Instant) -> bool {
    while !is_local(ip) {
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// How many client records a state directory holds (files in `sm/`).
pub fn records(state_dir: &Path) -> usize {
    std::fs::read_dir(state_dir.join("sm"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .count()
        })
        .unwrap_or(0)
}

/// Send SM_NOTIFY as `name` to every client recorded in `state_dir`, and
/// wait for sm-notify's verdict; how long it took, or why it failed.
/// sm-notify binds to the address `name` resolves to, which must be the
/// virtual IP the clients know; it moves the records it notified to
/// `sm.bak` and bumps the NSM state number in `state_dir/state`.
pub fn notify(name: &str, state_dir: &Path) -> Result<Duration, String> {
    let bin = sm_notify().ok_or("sm-notify is not installed")?;
    let started = Instant::now();
    // -d: in the foreground, so that its verdict is seen; -f: this is not
    // the node's own reboot, so its "already notified" mark must not stop it.
    let out = Command::new(bin)
        .args(["-f", "-d", "-v", name, "-P"])
        .arg(state_dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run sm-notify: {e}"))?;
    if out.status.success() {
        Ok(started.elapsed())
    } else {
        Err(format!(
            "sm-notify -v {name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', "; ")
        ))
    }
}

/// Make `dst` hold exactly the files of `src` (records are small files).
/// Returns how many records `dst` holds.
pub fn mirror(src: &Path, dst: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dst)?;
    let mut names = Vec::new();
    if let Ok(entries) = std::fs::read_dir(src) {
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let name = e.file_name();
            let content = std::fs::read(e.path())?;
            let target = dst.join(&name);
            if std::fs::read(&target).ok().as_deref() != Some(content.as_slice()) {
                let tmp = dst.join(format!(".{}.tmp", name.to_string_lossy()));
                std::fs::write(&tmp, &content)?;
                std::fs::rename(&tmp, &target)?;
            }
            names.push(name);
        }
    }
    for e in std::fs::read_dir(dst)?.flatten() {
        if !names.contains(&e.file_name()) {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(names.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_copies_and_prunes() {
        let base = std::env::temp_dir().join(format!("nsm-mirror-{}", std::process::id()));
        let (src, dst) = (base.join("src"), base.join("dst"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(src.join("192.0.2.50"), "record").unwrap();
        std::fs::write(dst.join("stale"), "old").unwrap();
        assert_eq!(mirror(&src, &dst).unwrap(), 1);
        assert_eq!(std::fs::read(dst.join("192.0.2.50")).unwrap(), b"record");
        assert!(!dst.join("stale").exists());
        assert_eq!(records(&base.join("nothing")), 0);
        std::fs::create_dir_all(base.join("st/sm")).unwrap();
        std::fs::write(base.join("st/sm/a"), "").unwrap();
        assert_eq!(records(&base.join("st")), 1);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn loopback_is_local_and_documentation_addresses_are_not() {
        assert!(is_local("127.0.0.1".parse().unwrap()));
        assert!(!wait_local(
            "198.51.100.254".parse().unwrap(),
            Instant::now()
        ));
    }
}
