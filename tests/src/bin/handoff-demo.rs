//! The README's demonstration: two Pacemaker nodes on this machine, an
//! export group created with the README's pcs commands, a failover and a
//! failback, a failure injected behind the cluster's back, and a timeline
//! of what each node's agents did, read from their own logs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use handoff_tests::timeline;
use handoff_tests::{Cluster, LoopDev, Scratch};

struct Demo {
    t0: Instant,
    since: SystemTime,
    cluster: Cluster,
}

impl Demo {
    fn say(&self, msg: &str) {
        println!("[{:7.3}s] {msg}", self.t0.elapsed().as_secs_f64());
    }

    /// Run a pcs command on the first node, printed as a user types it;
    /// returns when it was issued.
    fn pcs(&self, args: &[&str]) -> Instant {
        let issued = Instant::now();
        self.say(&format!("$ pcs {}", args.join(" ")));
        self.cluster.nodes[0].pcs(args);
        issued
    }

    /// Print what the agents logged since the last call.
    fn agents(&mut self) {
        let now = SystemTime::now();
        for e in timeline::events(&self.cluster, self.since) {
            let rel =
                e.at.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64()
                    - self
                        .since
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_secs_f64();
            println!(
                "            {}  +{:6.3}s  {:<22} {}",
                e.node, rel, e.who, e.what
            );
        }
        self.since = now;
    }

    /// Wait until `rsc` runs on `node`; the time since `issued`.
    fn wait_on(&self, rsc: &str, node: &str, issued: Instant) -> Duration {
        assert!(
            self.cluster
                .wait_location(rsc, Some(node), Duration::from_secs(90)),
            "{rsc} did not start on {node}:\n{}",
            self.cluster.any().crm_mon_xml()
        );
        issued.elapsed()
    }
}

/// A file on a node's view of the filesystem (its mount namespace).
fn on_node(c: &Cluster, node: &str, path: &Path) -> PathBuf {
    let n = c.nodes.iter().find(|n| n.name == node).expect("node");
    PathBuf::from(format!("/proc/{}/root{}", n.init_pid(), path.display()))
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("handoff-demo needs root (namespaces, loop devices, Pacemaker)");
        std::process::exit(1);
    }
    let scratch = Scratch::new("demo");
    let disk = LoopDev::ext4(scratch.path(), "shared-disk-a");
    let dir = scratch.join("srv/nfs/a");
    let t0 = Instant::now();
    println!("handoff demonstration: a two-node Pacemaker cluster in namespaces on this machine");
    println!("shared disk: {} (a loop device both nodes see)", disk.dev());
    let cluster = Cluster::start(2);
    let mut demo = Demo {
        t0,
        since: SystemTime::now(),
        cluster,
    };
    demo.cluster.wait_online(Duration::from_secs(90));
    demo.say("cluster up: n1 and n2 online, quorum, stonith disabled for the demo");

    demo.pcs(&["resource", "defaults", "update", "resource-stickiness=100"]);
    let created = demo.pcs(&[
        "resource",
        "create",
        "export_a_fs",
        "ocf:handoff:fs",
        &format!("device={}", disk.dev()),
        &format!("directory={}", dir.display()),
        "fstype=ext4",
        "op",
        "monitor",
        "interval=10s",
        "timeout=40s",
        "--group",
        "export_a",
    ]);
    demo.pcs(&[
        "resource",
        "create",
        "export_a_vip",
        "ocf:handoff:vip",
        "ip=192.0.2.100",
        "cidr_netmask=24",
        "op",
        "monitor",
        "interval=10s",
        "timeout=20s",
        "--group",
        "export_a",
    ]);
    demo.pcs(&["constraint", "location", "export_a", "prefers", "n1=50"]);
    let took = demo.wait_on("export_a_vip", "n1", created);
    demo.say(&format!(
        "export_a runs on n1, {:.0} ms after pcs resource create was issued",
        took.as_secs_f64() * 1000.0
    ));
    demo.agents();

    let data = dir.join("written-on-n1.txt");
    std::fs::write(
        on_node(&demo.cluster, "n1", &data),
        b"every byte of this survives the move\n",
    )
    .expect("write data");
    demo.say("wrote written-on-n1.txt through n1's mount");

    let issued = demo.pcs(&["node", "standby", "n1"]);
    let took = demo.wait_on("export_a_vip", "n2", issued);
    demo.say(&format!(
        "failover: export_a runs on n2, {:.0} ms after the standby was issued",
        took.as_secs_f64() * 1000.0
    ));
    demo.agents();
    let back = std::fs::read(on_node(&demo.cluster, "n2", &data)).expect("read data on n2");
    demo.say(&format!(
        "n2 reads written-on-n1.txt: {:?}",
        String::from_utf8_lossy(&back).trim()
    ));

    demo.pcs(&["node", "unstandby", "n1"]);
    // pcs 0.11 moves, waits, then removes the constraint it used.
    let issued = demo.pcs(&["resource", "move", "export_a", "n1"]);
    let took = demo.wait_on("export_a_vip", "n1", issued);
    demo.say(&format!(
        "failback: export_a runs on n1 again, {:.0} ms after the move was issued",
        took.as_secs_f64() * 1000.0
    ));
    demo.agents();

    demo.say("breaking it behind the cluster's back: umount on n1");
    demo.cluster.nodes[0].ok("umount", &[&dir.display().to_string()]);
    let t = Instant::now();
    let recovered =
        handoff_tests::wait_until(Duration::from_secs(60), Duration::from_millis(100), || {
            demo.cluster.nodes[0].is_mounted(&dir)
        });
    assert!(recovered, "not recovered");
    demo.say(&format!(
        "the 10 s monitor saw it (not running) and Pacemaker remounted it on n1 after {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    demo.agents();

    demo.pcs(&["resource", "disable", "export_a", "--wait=60"]);
    demo.agents();
    demo.say("stopping the nodes");
    drop(demo);
    drop(disk);
    println!("done: cluster stopped, namespaces and loop device removed");
}
