//! The export's NSM records: which clients to tell, after a move, that
//! their server "rebooted" so that they reclaim their locks.
//!
//! rpc.statd keeps one record per client in `<nfs state dir>/sm`. They
//! are mirrored onto the exported filesystem (stop, monitor), staged in a
//! private copy at start (sm-notify deletes what it notified), and sent
//! by a detached notifier once the export's virtual IP is up, because
//! sm-notify sends from that address and clients reclaim through it.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ocf::{Logger, StateFile};

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

/// The sm-notify binary, if installed.
pub fn sm_notify() -> Option<PathBuf> {
    ["/usr/sbin/sm-notify", "/sbin/sm-notify"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Build sm-notify's private state directory `work` from the export's
/// records; returns how many clients it will notify.
pub fn stage(export_dir: &Path, work: &Path) -> std::io::Result<usize> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work.join("sm.bak"))?;
    let n = mirror(&export_dir.join("sm"), &work.join("sm"))?;
    if let Ok(state) = std::fs::read(export_dir.join("state")) {
        std::fs::write(work.join("state"), state)?;
    }
    Ok(n)
}

/// Start the detached notifier; its PID goes to `pid_file`.
#[allow(clippy::too_many_arguments)]
pub fn spawn_notifier(
    instance: &str,
    ip: IpAddr,
    name: &str,
    work: &Path,
    export_dir: &Path,
    wait: Duration,
    pid_file: &StateFile,
    log: &Logger,
) {
    let child = Command::new("/proc/self/exe")
        .arg("--notify")
        .arg(instance)
        .arg(ip.to_string())
        .arg(name)
        .arg(work)
        .arg(export_dir)
        .arg(wait.as_secs().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    match child {
        Ok(c) => {
            let _ = pid_file.write(c.id().to_string().as_bytes());
            log.info(format!(
                "notifier {} waits for {ip} to come up, then sends SM_NOTIFY as {name}",
                c.id()
            ));
        }
        Err(e) => log.err(format!(
            "cannot start the notifier: {e}; clients will not reclaim their locks"
        )),
    }
}

/// Whether `ip` is an address of this node (binding to it succeeds).
fn is_local(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Kill a notifier that is still running (stop of the export).
pub fn stop_notifier(pid_file: &StateFile, log: &Logger) {
    let pid = pid_file
        .read()
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8_lossy(&b).trim().parse::<i32>().ok());
    if let Some(pid) = pid {
        let is_ours = std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|&b| b == 0).nth(1) == Some(b"--notify"));
        if is_ours {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
            log.info(format!("stopped the notifier {pid}"));
        }
    }
    let _ = pid_file.remove();
}

/// `nlm-locks --notify INSTANCE IP NAME WORK EXPORT_DIR WAIT_SECS`: wait for
/// the virtual IP, run sm-notify from it, keep the NSM state number on the
/// export. Returns the exit code.
pub fn notifier_main(args: &[String]) -> i32 {
    let [instance, ip, name, work, export_dir, wait] = args else {
        eprintln!("usage: nlm-locks --notify INSTANCE IP NAME WORK EXPORT_DIR WAIT_SECS");
        return 2;
    };
    let log = Logger::from_env("nlm-locks", instance);
    let (Ok(ip), Ok(wait)) = (ip.parse::<IpAddr>(), wait.parse::<u64>()) else {
        log.err("notifier: bad arguments");
        return 2;
    };
    let end = Instant::now() + Duration::from_secs(wait);
    while !is_local(ip) {
        if Instant::now() >= end {
            log.err(format!(
                "{ip} did not come up within {wait} s: no SM_NOTIFY sent; clients cannot reclaim"
            ));
            return 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let Some(bin) = sm_notify() else {
        log.err("sm-notify is not installed: no SM_NOTIFY sent");
        return 1;
    };
    let started = Instant::now();
    // -d keeps it in the foreground so that its verdict is seen; -f because
    // this is not the node's own reboot.
    let out = Command::new(bin)
        .args(["-f", "-d", "-v", name, "-P", work])
        .stdin(Stdio::null())
        .output();
    let work = Path::new(work);
    let export_dir = Path::new(export_dir);
    match out {
        Ok(o) if o.status.success() => {
            log.info(format!(
                "sent SM_NOTIFY as {name} from {ip} in {:.1} ms",
                started.elapsed().as_secs_f64() * 1000.0
            ));
            // The NSM state number only grows, across every node.
            if let Ok(state) = std::fs::read(work.join("state")) {
                let _ = std::fs::write(export_dir.join("state"), state);
            }
            0
        }
        Ok(o) => {
            log.err(format!(
                "sm-notify -v {name} failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
                    .trim()
                    .replace('\n', "; ")
            ));
            1
        }
        Err(e) => {
            log.err(format!("cannot run sm-notify: {e}"));
            1
        }
    }
}
