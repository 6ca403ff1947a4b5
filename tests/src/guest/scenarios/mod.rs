//! The NFS scenarios, run in order on one topology: two cluster nodes with
//! their own NFS servers, two exports A and B on shared disks, a client
//! holding locks on both.
//!
//! - `failover`: release A on node1 (vip, export, nlm-locks, fs stop) while
//!   B keeps serving on node1; take A over on node2; the client reclaims
//!   and reads back its data; B's client sees no failure or delay.
//! - `refused`: a lock that cannot be dropped, and a missing backend: stop
//!   fails and nothing is unmounted.
//! - `dropbench`: lock-drop time for 1, 100 and 10,000 locks held on A, B's
//!   locks untouched.
//! - `classic`: the classic recipe (restart the node's nfsd) and how long it
//!   blocks a new lock on B.
//! - `failback`: A moves node2 to node1 and back with a writer, untickled
//!   then tickled by nlm-locks; the node A left keeps no socket on its
//!   address.
//! - `kmodload`, `kmod`, `kmodunload` (on the kernel ci/kernel builds): the
//!   handoff kernel module loads and registers /dev/folocks; every kind of
//!   bad request gets its errno and changes nothing; drops by devno, fd and
//!   server address take exactly A's locks and log the fsid; the agent
//!   drives it; it unloads cleanly. With `handoff.backend=kmod`, failover
//!   and dropbench run through it too.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod classic;
mod dropbench;
mod failover;
mod kmod;
mod members;
mod world;

pub(crate) use kmod::kmsg;
pub(crate) use members::*;
pub(crate) use world::*;

use super::cmdline;
use super::report::{check, metric, note};
use super::sys::{self, locks_on, rdev, wait_for, Done};
use super::topo::{self, Host};

const PATH: &str = "/handoff/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const DATA_BYTES: &str = "1048576";
/// How long a client operation may take before the harness gives up on it
/// (an NFS operation whose server is gone waits forever on a hard mount).
pub(crate) const CLIENT_LIMIT: Duration = Duration::from_secs(60);

/// One export group's settings.
pub(crate) struct Group {
    pub(crate) id: &'static str,
    pub(crate) dev: &'static str,
    pub(crate) dir: &'static str,
    pub(crate) vip: &'static str,
    pub(crate) name: &'static str,
    pub(crate) fsid: &'static str,
    pub(crate) mnt: &'static str,
}

pub(crate) const A: Group = Group {
    id: "a",
    dev: "/dev/vda",
    dir: "/srv/a",
    vip: "192.0.2.100",
    name: "nfs-a",
    fsid: "1",
    mnt: "/mnt/a",
};
pub(crate) const B: Group = Group {
    id: "b",
    dev: "/dev/vdb",
    dir: "/srv/b",
    vip: "192.0.2.101",
    name: "nfs-b",
    fsid: "2",
    mnt: "/mnt/b",
};

/// Run the named scenarios (comma-separated) in order.
pub fn run_all(list: &str) {
    std::env::set_var("PATH", PATH);
    // The Pacemaker scenarios build their own topology (a cluster).
    if list == "cluster" {
        if let Err(p) = std::panic::catch_unwind(super::cluster::run) {
            check("cluster: ran to the end", false, panic_text(&p));
        }
        return;
    }
    let mut world = match std::panic::catch_unwind(World::new) {
        Ok(w) => w,
        Err(p) => {
            check("setup", false, panic_text(&p));
            return;
        }
    };
    for name in list.split(',').filter(|s| !s.is_empty()) {
        note(format!("scenario {name}"));
        let w = &mut world;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match name {
            "failover" => failover::failover(w),
            "refused" => failover::refused(w),
            "failback" => failover::failback(w),
            "dropbench" => dropbench::dropbench(w, backend()),
            "dropbench-procfs" => dropbench::dropbench(w, "procfs"),
            "dropbench-kmod" => dropbench::dropbench(w, "kmod"),
            "classic" => classic::classic(w),
            "kmodload" => kmod::load(),
            "kmod" => kmod::requests(w),
            "kmodunload" => kmod::unload(),
            "vservers" => super::vservers::run(w),
            "dropin" => super::dropin::export(w),
            "nodewide" => super::vservers::nodewide(w),
            "scale" => super::scale::run(w),
            other => {
                check(
                    &format!("{other}: known scenario"),
                    false,
                    "no such scenario",
                );
            }
        }));
        if let Err(p) = r {
            check(&format!("{name}: ran to the end"), false, panic_text(&p));
        }
    }
    for c in world.holders.drain(..) {
        kill(c);
    }
    for h in [&world.node1, &world.node2, &world.node3] {
        note(format!(
            "{} agent log:\n{}",
            h.name,
            h.read("/run/agents.log")
        ));
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}
