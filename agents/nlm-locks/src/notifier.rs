//! The export's NSM records: which clients to tell, after a move, that
//! their server "rebooted" so that they reclaim their locks.
//!
//! rpc.statd keeps one record per client in `<nfs state dir>/sm`. They
//! are mirrored onto the exported filesystem (stop, monitor), staged in a
//! private copy at start (sm-notify deletes what it notified), and sent
//! by a detached notifier once the export's virtual IP is up, because
//! sm-notify sends from that address and clients reclaim through it.
//! When start restarted the node's nfsd for a grace period, the notifier
//! also ends lockd's grace once the clients are back, or `grace_time`
//! after it told them (see nsm::reclaim).

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use nsm::reclaim::{self, Closed, Expect};
use ocf::{Logger, StateFile};

pub use nsm::{mirror, sm_notify};

/// The helper flag of the detached notifier.
pub const NOTIFY: &str = "--notify";

/// What a start staged for its notifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Staged {
    /// Clients to notify.
    pub clients: usize,
    /// Client connections to tickle.
    pub conns: usize,
}

/// Build sm-notify's private state directory `work` from the export's
/// records, with the recorded client connections when `tickle`.
pub fn stage(export_dir: &Path, work: &Path, tickle: bool) -> std::io::Result<Staged> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work.join("sm.bak"))?;
    let clients = mirror(&export_dir.join("sm"), &work.join("sm"))?;
    if let Ok(state) = std::fs::read(export_dir.join("state")) {
        std::fs::write(work.join("state"), state)?;
    }
    let mut conns = 0;
    if tickle {
        // Read now: once the address is up here, this node's monitor
        // records its own connections (none yet) over the last node's.
        let recorded = nsm::tickle::recorded(export_dir);
        conns = recorded.len();
        nsm::tickle::record(work, &recorded)?;
    }
    Ok(Staged { clients, conns })
}

/// The grace period a notifier ends, when start opened it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Seconds from the notification.
    pub secs: u64,
    /// What comes back.
    pub expect: Expect,
}

/// What the notifier is told.
pub struct Job<'a> {
    /// The resource instance (for the log).
    pub instance: &'a str,
    /// The virtual IP.
    pub ip: IpAddr,
    /// The name SM_NOTIFY carries.
    pub name: &'a str,
    /// sm-notify's private state directory.
    pub work: &'a Path,
    /// The export's NSM directory (the state number is kept there).
    pub export_dir: &'a Path,
    /// How long to wait for the address.
    pub wait: Duration,
    /// The grace period to end, if start opened it.
    pub window: Option<Window>,
}

/// Start the detached notifier; its PID goes to `pid_file`.
pub fn spawn_notifier(job: &Job<'_>, pid_file: &StateFile, log: &Logger) {
    let window = job.window.map_or("none".to_owned(), |w| {
        format!("{}/{}", w.secs, w.expect.to_arg())
    });
    let args: [std::ffi::OsString; 7] = [
        job.instance.into(),
        job.ip.to_string().into(),
        job.name.into(),
        job.work.into(),
        job.export_dir.into(),
        job.wait.as_secs().to_string().into(),
        window.into(),
    ];
    let (ip, name) = (job.ip, job.name);
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

fn parse_window(s: &str) -> Option<Option<Window>> {
    if s == "none" {
        return Some(None);
    }
    let (secs, expect) = s.split_once('/')?;
    Some(Some(Window {
        secs: secs.parse().ok()?,
        expect: Expect::from_arg(expect)?,
    }))
}

/// `nlm-locks --notify INSTANCE IP NAME WORK EXPORT_DIR WAIT_SECS WINDOW`:
/// wait for the virtual IP, tickle the client connections staged in WORK,
/// run sm-notify from it, keep the NSM state
/// number on the export, and end the grace period start opened (WINDOW:
/// `none`, or `SECS/EXPECT`). Returns the exit code.
pub fn notifier_main(args: &[String]) -> i32 {
    let [instance, ip, name, work, export_dir, wait, window] = args else {
        eprintln!("usage: nlm-locks --notify INSTANCE IP NAME WORK EXPORT_DIR WAIT_SECS WINDOW");
        return 2;
    };
    let log = Logger::from_env("nlm-locks", instance);
    let (Ok(ip), Ok(wait), Some(window)) = (
        ip.parse::<IpAddr>(),
        wait.parse::<u64>(),
        parse_window(window),
    ) else {
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
    // Before SM_NOTIFY, whose reclaims need the connections anyway.
    let rounds = nsm::tickle::start(&log, ip, &nsm::tickle::recorded(work));
    let mut code = 0;
    if nsm::records(work) > 0 {
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
            }
            Err(why) => {
                log.err(why);
                code = 1;
            }
        }
    }
    if let Some(w) = window {
        code = code.max(end_window(&log, ip, w));
    }
    if let Some(r) = rounds {
        r.wait();
    }
    code
}

/// Keep the grace period start opened for `w`, then end it; the exit code.
fn end_window(log: &Logger, ip: IpAddr, w: Window) -> i32 {
    if crate::grace::in_grace() != Some(true) {
        log.err(format!(
            "the grace period ended before {ip} came up: the clients could not reclaim their locks"
        ));
        return 1;
    }
    let closed = reclaim::wait(
        Instant::now(),
        Duration::from_secs(w.secs),
        w.expect,
        || true,
    );
    match crate::grace::end() {
        Ok(()) => {
            log.info(match closed {
                Closed::AllBack(d) => format!(
                    "grace period ended: every lock reclaimed {:.1} s after the notification",
                    d.as_secs_f64()
                ),
                Closed::TimeUp => format!("grace period ended {} s after the notification", w.secs),
            });
            0
        }
        Err(e) => {
            log.err(format!("cannot end the grace period: {e}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_copies_the_records_and_the_connections_only_when_tickling() {
        let base = std::env::temp_dir().join(format!("nlm-stage-{}", std::process::id()));
        let (export, work) = (base.join("export"), base.join("work"));
        std::fs::create_dir_all(export.join("sm")).unwrap();
        std::fs::write(export.join("sm/192.0.2.50"), "record").unwrap();
        std::fs::write(export.join("state"), [7, 0, 0, 0]).unwrap();
        let c = nsm::tickle::Conn {
            server: "192.0.2.100:2049".parse().unwrap(),
            client: "192.0.2.50:812".parse().unwrap(),
        };
        nsm::tickle::record(&export, &[c]).unwrap();
        let staged = stage(&export, &work, true).unwrap();
        assert_eq!(
            staged,
            Staged {
                clients: 1,
                conns: 1
            }
        );
        assert_eq!(nsm::tickle::recorded(&work), vec![c]);
        assert_eq!(std::fs::read(work.join("state")).unwrap(), [7, 0, 0, 0]);
        let staged = stage(&export, &work, false).unwrap();
        assert_eq!(
            staged,
            Staged {
                clients: 1,
                conns: 0
            }
        );
        assert!(nsm::tickle::recorded(&work).is_empty());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn windows_read_back() {
        assert_eq!(parse_window("none"), Some(None));
        assert_eq!(parse_window("junk"), None);
    }
}
