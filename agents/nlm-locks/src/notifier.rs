//! The export's NSM records: which clients to tell, after a move, that
//! their server "rebooted" so that they reclaim their locks.
//!
//! rpc.statd keeps one record per client in `<nfs state dir>/sm`. They
//! are mirrored onto the exported filesystem (stop, monitor), staged in a
//! private copy at start (sm-notify deletes what it notified), and sent
//! by a detached notifier once the export's virtual IP is up, because
//! sm-notify sends from that address and clients reclaim through it.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ocf::{Logger, StateFile};

pub use nsm::{mirror, sm_notify};

/// The helper flag of the detached notifier.
pub const NOTIFY: &str = "--notify";

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
    let (ip_text, wait_text) = (ip.to_string(), wait.as_secs().to_string());
    let args: [&std::ffi::OsStr; 6] = [
        instance.as_ref(),
        ip_text.as_ref(),
        name.as_ref(),
        work.as_os_str(),
        export_dir.as_os_str(),
        wait_text.as_ref(),
    ];
    match ocf::helper::spawn(NOTIFY, args, pid_file) {
        Ok(pid) => log.info(format!(
            "notifier {pid} waits for {ip} to come up, then sends SM_NOTIFY as {name}"
        )),
        Err(e) => log.err(format!(
            "cannot start the notifier: {e}; clients will not reclaim their locks"
        )),
    }
}

/// Kill a notifier that is still running (stop of the export).
pub fn stop_notifier(pid_file: &StateFile, log: &Logger) {
    if let Some(pid) = ocf::helper::stop(NOTIFY, pid_file) {
        log.info(format!("stopped the notifier {pid}"));
    }
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
    if !nsm::wait_local(ip, Instant::now() + Duration::from_secs(wait)) {
        log.err(format!(
            "{ip} did not come up within {wait} s: no SM_NOTIFY sent; clients cannot reclaim"
        ));
        return 1;
    }
    let work = Path::new(work);
    match nsm::notify(name, work) {
        Ok(took) => {
            log.info(format!(
                "sent SM_NOTIFY as {name} from {ip} in {:.1} ms",
                took.as_secs_f64() * 1000.0
            ));
            // The NSM state number only grows, across every node.
            if let Ok(state) = std::fs::read(work.join("state")) {
                let _ = std::fs::write(Path::new(export_dir).join("state"), state);
            }
            0
        }
        Err(why) => {
            log.err(why);
            1
        }
    }
}
