//! The server's helper, detached at start: it keeps the grace period open
//! until the export's clients have been told to reclaim, tells them, and
//! ends the grace period once they are back or `grace_time` after they
//! were told.
//!
//! The grace period starts with nfsd, but the clients can reach the server
//! only once the group's vip has started, after export and whatever else
//! Pacemaker does meanwhile; counting `grace_time` from nfsd's start would
//! let it run out before the clients hear of it. So start opens a long
//! kernel grace (lockd's longest, 240 s; NFSv4's as long) and this helper:
//!
//! 1. waits for the virtual IP; should it still be down when the kernel's
//!    grace nears its end, restarts nfsd for a fresh one (no client can
//!    have reached the server yet, so nothing is lost), and gives up after
//!    [`ADDRESS_WAIT`];
//! 2. sends SM_NOTIFY from the address to the clients statd recorded;
//! 3. waits until every client is back (nsm::reclaim) or `grace_time` has
//!    passed since, and ends the grace period.
//!
//! Its progress is in the server's /run, where monitor reads it.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use nsm::reclaim::{self, Closed, Expect, LockdGrace, LOCKD_GRACE_MAX};
use ocf::{Logger, ParamValue};

use crate::nfsd;
use crate::params::Versions;

/// The helper flag.
pub const FLAG: &str = "--grace-helper";

/// How long the helper waits for the virtual IP in all.
const ADDRESS_WAIT: Duration = Duration::from_secs(900);

/// How long before the kernel's grace ends the helper reopens it, when the
/// address is still down: enough for the clients' whole window.
fn reopen_margin(grace: Duration) -> Duration {
    grace + Duration::from_secs(10)
}

/// The helper's last phase.
pub const ENDED: &str = "ended";

/// Where the helper says how far it is, in the server's own /run.
pub const PROGRESS: &str = "/run/handoff/reclaim";

/// The grace period the kernel opens at start, in seconds: lockd's
/// longest, or `grace_time` if longer (NFSv4's can be).
pub fn kernel_grace(grace_time: u64) -> u64 {
    grace_time.max(LOCKD_GRACE_MAX)
}

/// What the helper needs, passed as its arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// The resource instance (for the log).
    pub instance: String,
    /// The server's name.
    pub server: String,
    /// The virtual IP.
    pub ip: IpAddr,
    /// The name SM_NOTIFY carries.
    pub notify_name: String,
    /// The clients' reclaim window, in seconds.
    pub grace_secs: u64,
    /// What comes back over NLM.
    pub expect: Expect,
    /// nfsd's threads, versions and lease, to reopen the grace.
    pub threads: u64,
    /// Versions served.
    pub versions: Versions,
    /// NFSv4 lease.
    pub lease_secs: u64,
    /// Whether to tickle the recorded client connections.
    pub tickle: bool,
}

impl Job {
    /// As arguments.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            self.instance.clone(),
            self.server.clone(),
            self.ip.to_string(),
            self.notify_name.clone(),
            self.grace_secs.to_string(),
            self.expect.to_arg(),
            self.threads.to_string(),
            self.versions.to_string(),
            self.lease_secs.to_string(),
            self.tickle.to_string(),
        ]
    }

    /// From arguments.
    pub fn from_args(args: &[String]) -> Option<Job> {
        let [instance, server, ip, name, grace, expect, threads, versions, lease, tickle] = args
        else {
            return None;
        };
        Some(Job {
            instance: instance.clone(),
            server: vserver::ServerName::parse_value(server).ok()?.0,
            ip: ip.parse().ok()?,
            notify_name: name.clone(),
            grace_secs: grace.parse().ok()?,
            expect: Expect::from_arg(expect)?,
            threads: threads.parse().ok()?,
            versions: Versions::parse_value(versions).ok()?,
            lease_secs: lease.parse().ok()?,
            tickle: tickle.parse().ok()?,
        })
    }
}

/// The helper's progress, as monitor shows it.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// "waiting for the address", "reclaiming" or "ended".
    pub phase: String,
    /// Since when (seconds since the epoch).
    pub since: u64,
    /// What the NLM side waits for.
    pub expect: String,
    /// How it ended, once it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

fn report(phase: &str, expect: Expect, outcome: Option<String>) {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let p = Progress {
        phase: phase.into(),
        since,
        expect: expect.to_arg(),
        outcome,
    };
    if let Ok(text) = serde_json::to_vec(&p) {
        let tmp = format!("{PROGRESS}.tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, PROGRESS);
        }
    }
}

/// The helper's progress, read inside the server.
pub fn progress() -> Option<Progress> {
    serde_json::from_slice(&std::fs::read(PROGRESS).ok()?).ok()
}

/// Restart nfsd in the server for a fresh grace period (its address is
/// down: no client can have reached it).
fn reopen(job: &Job, setting: Option<&LockdGrace>) -> Result<(), String> {
    let held = setting.map(|s| s.hold(LOCKD_GRACE_MAX)).transpose();
    let held = held.map_err(|e| format!("setting lockd's grace: {e}"))?;
    nfsd::set_threads(0).map_err(|e| e.to_string())?;
    let started = nfsd::start(&nfsd::Start {
        threads: job.threads,
        versions: &job.versions,
        grace: kernel_grace(job.grace_secs),
        lease: job.lease_secs,
        scope: &job.server,
    });
    drop(held);
    started.map(drop)
}

/// The server's /var/lib/nfs, inside it.
const STATE: &str = "/var/lib/nfs";

/// `nfs-server --grace-helper ARGS` (see [`Job`]), started in the node's
/// namespaces right after nfsd started; the exit code.
pub fn main(args: &[String]) -> i32 {
    let nfsd_started = Instant::now();
    let Some(job) = Job::from_args(args) else {
        eprintln!(
            "usage: nfs-server {FLAG} INSTANCE SERVER IP NAME GRACE EXPECT THREADS VERSIONS LEASE TICKLE"
        );
        return 2;
    };
    let log = Logger::from_env("nfs-server", &job.instance);
    // Opened here: the lock file is in the node's /run.
    let setting = LockdGrace::open()
        .map_err(|e| log.warn(format!("grace helper: lockd's grace setting: {e}")))
        .ok();
    let server = vserver::Server {
        name: job.server.clone(),
    };
    if let Err(e) = server.enter(true, &log) {
        log.err(format!("grace helper: {e}"));
        return 1;
    }
    // Read before anything else: once the address is up, monitor records
    // this node's own connections (none yet) over the last node's.
    let conns = if job.tickle {
        nsm::tickle::recorded(Path::new(STATE))
    } else {
        Vec::new()
    };
    let grace = Duration::from_secs(job.grace_secs);
    let kernel = Duration::from_secs(LOCKD_GRACE_MAX.min(kernel_grace(job.grace_secs)));
    let give_up = nfsd_started + ADDRESS_WAIT;
    let mut opened = nfsd_started;
    report("waiting for the address", job.expect, None);
    loop {
        let margin = reopen_margin(grace);
        let reopen_at = (kernel > margin).then(|| opened + kernel - margin);
        let until = reopen_at.map_or(give_up, |r| r.min(give_up));
        if nsm::wait_local(job.ip, until) {
            break;
        }
        if Instant::now() >= give_up || reopen_at.is_none() {
            log.err(format!(
                "{} did not come up within {} s: no SM_NOTIFY sent, the grace period ends; clients cannot reclaim their locks",
                job.ip,
                nfsd_started.elapsed().as_secs()
            ));
            let _ = nfsd::end_grace();
            report(ENDED, job.expect, Some("the address never came up".into()));
            return 1;
        }
        match reopen(&job, setting.as_ref()) {
            Ok(()) => log.warn(format!(
                "{} is still down {} s after nfsd started: restarted nfsd for a fresh grace period",
                job.ip,
                nfsd_started.elapsed().as_secs()
            )),
            Err(why) => log.err(format!("cannot reopen the grace period: {why}")),
        }
        opened = Instant::now();
    }
    let waited = nfsd_started.elapsed();
    let state = Path::new(STATE);
    // Before SM_NOTIFY, whose reclaims need the connections anyway.
    let rounds = nsm::tickle::start(&log, job.ip, &conns);
    let clients = nsm::records(state);
    let mut code = 0;
    match nsm::notify(&job.notify_name, state) {
        Ok(took) => log.info(format!(
            "{} up {:.1} s after nfsd started: sent SM_NOTIFY as {} to {clients} client(s) in {:.1} ms; they reclaim within {} s",
            job.ip,
            waited.as_secs_f64(),
            job.notify_name,
            took.as_secs_f64() * 1000.0,
            job.grace_secs
        )),
        Err(why) => {
            log.err(format!("{why}; NFSv3 clients cannot reclaim their locks"));
            code = 1;
        }
    }
    let notified = Instant::now();
    report("reclaiming", job.expect, None);
    let closed = reclaim::wait(notified, grace, job.expect, nfsd::v4_grace_ended);
    let outcome = match closed {
        Closed::AllBack(d) => format!(
            "every client reclaimed {:.1} s after the notification",
            d.as_secs_f64()
        ),
        Closed::TimeUp => format!("{} s after the notification", job.grace_secs),
    };
    if nfsd::in_grace() == Some(true) {
        match nfsd::end_grace() {
            Ok(()) => log.info(format!("grace period ended: {outcome}")),
            Err(e) => {
                log.err(format!("cannot end the grace period: {e}"));
                code = 1;
            }
        }
    } else {
        log.info(format!("grace period over already: {outcome}"));
    }
    report(ENDED, job.expect, Some(outcome));
    if let Some(r) = rounds {
        r.wait();
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_round_trips_through_its_arguments() {
        let job = Job {
            instance: "a_server".into(),
            server: "nfs-a".into(),
            ip: "192.0.2.100".parse().unwrap(),
            notify_name: "nfs-a.example.com".into(),
            grace_secs: 30,
            expect: Expect::Locks((254, 1), 2),
            threads: 8,
            versions: Versions::parse_value("3,4.2").unwrap(),
            lease_secs: 90,
            tickle: true,
        };
        assert_eq!(Job::from_args(&job.to_args()), Some(job));
        assert_eq!(Job::from_args(&["x".into()]), None);
    }

    #[test]
    fn the_kernel_grace_leaves_room_for_the_group() {
        assert_eq!(kernel_grace(90), 240);
        assert_eq!(kernel_grace(600), 600);
    }
}
