//! The README's demonstration. Part 1: two Pacemaker nodes on this machine
//! run two export groups created with the README's pcs commands; export A
//! fails over and back while a client keeps reaching export B, a failure
//! injected behind the cluster's back is repaired, and each node's agents'
//! own log lines give the timeline. Part 2: the same move of one export
//! against a real nfsd with clients holding locks, in a VM (this machine's
//! kernel has no nfsd). `handoff-demo --no-vm` skips part 2.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use handoff_tests::plot::Plot;
use handoff_tests::{timeline, vm, Cluster, LoopDev, Scratch};

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
        let base = self.since;
        for e in timeline::events(&self.cluster, base) {
            let rel = e.at.duration_since(base).unwrap_or_default().as_secs_f64();
            println!(
                "            {}  +{:6.3}s  {:<24} {}",
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
    PathBuf::from(format!(
        "/proc/{}/root{}",
        c.node(node).init_pid(),
        path.display()
    ))
}

fn group(demo: &Demo, id: &str, dev: &str, dir: &Path, fsid: &str, vip: &str, prefers: &str) {
    let grp = format!("export_{id}");
    demo.pcs(&[
        "resource",
        "create",
        &format!("export_{id}_fs"),
        "ocf:handoff:fs",
        &format!("device={dev}"),
        &format!("directory={}", dir.display()),
        "fstype=ext4",
        "op",
        "monitor",
        "interval=10s",
        "timeout=40s",
        "--group",
        &grp,
    ]);
    demo.pcs(&[
        "resource",
        "create",
        &format!("export_{id}_export"),
        "ocf:handoff:export",
        &format!("directory={}", dir.display()),
        &format!("fsid={fsid}"),
        "clientspec=192.0.2.0/24",
        "options=rw,sync,no_root_squash",
        "op",
        "monitor",
        "interval=10s",
        "timeout=20s",
        "--group",
        &grp,
    ]);
    demo.pcs(&[
        "resource",
        "create",
        &format!("export_{id}_vip"),
        "ocf:handoff:vip",
        &format!("ip={vip}"),
        "cidr_netmask=24",
        "op",
        "monitor",
        "interval=10s",
        "timeout=20s",
        "--group",
        &grp,
    ]);
    demo.pcs(&[
        "constraint",
        "location",
        &grp,
        "prefers",
        &format!("{prefers}=50"),
    ]);
}

fn cluster_part(scratch: &Scratch) {
    let disk_a = LoopDev::ext4(scratch.path(), "shared-disk-a");
    let disk_b = LoopDev::ext4(scratch.path(), "shared-disk-b");
    let (dir_a, dir_b) = (scratch.join("srv/nfs/a"), scratch.join("srv/nfs/b"));
    let t0 = Instant::now();
    println!("Part 1: a two-node Pacemaker cluster on this machine (each node its own namespaces, corosync and pacemakerd)");
    println!(
        "shared disks: {} (export A) and {} (export B), loop devices both nodes see",
        disk_a.dev(),
        disk_b.dev()
    );
    println!("(nlm-locks joins each group on real NFS servers; this kernel has no nfsd, so part 2 shows it in a VM)\n");
    let cluster = Cluster::start(2);
    let mut demo = Demo {
        t0,
        since: SystemTime::now(),
        cluster,
    };
    demo.cluster.wait_online(Duration::from_secs(90));
    demo.say("cluster up: n1 and n2 online with quorum (stonith disabled for the demo)");
    demo.pcs(&["resource", "defaults", "update", "resource-stickiness=100"]);
    let created = Instant::now();
    group(&demo, "a", &disk_a.dev(), &dir_a, "1", "192.0.2.100", "n1");
    group(&demo, "b", &disk_b.dev(), &dir_b, "2", "192.0.2.101", "n2");
    demo.wait_on("export_a_vip", "n1", created);
    demo.wait_on("export_b_vip", "n2", created);
    demo.say("export A runs on n1, export B on n2");
    demo.agents();
    let data = dir_a.join("written-on-n1.txt");
    std::fs::write(
        on_node(&demo.cluster, "n1", &data),
        b"every byte of this survives the move\n",
    )
    .expect("write");
    demo.say("wrote written-on-n1.txt through n1's mount of A");

    demo.say("a client (192.0.2.250) pings export B's address every 100 ms from now on");
    let mut ping = demo
        .cluster
        .client("ping")
        .args(["-n", "-i", "0.1", "192.0.2.101"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ping");
    let issued = demo.pcs(&["node", "standby", "n1"]);
    let took = demo.wait_on("export_a_vip", "n2", issued);
    demo.say(&format!(
        "failover: export A runs on n2, {:.0} ms after the standby was issued",
        took.as_secs_f64() * 1000.0
    ));
    demo.agents();
    let back = std::fs::read(on_node(&demo.cluster, "n2", &data)).expect("read on n2");
    demo.say(&format!(
        "n2 reads written-on-n1.txt: {:?}",
        String::from_utf8_lossy(&back).trim()
    ));
    demo.pcs(&["node", "unstandby", "n1"]);
    let issued = demo.pcs(&["resource", "move", "export_a", "n1"]);
    let took = demo.wait_on("export_a_vip", "n1", issued);
    demo.say(&format!("failback: export A runs on n1 again, {:.0} ms after the move was issued (pcs waits, then drops its constraint)", took.as_secs_f64() * 1000.0));
    demo.agents();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(ping.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let _ = ping.wait();
    let mut out = String::new();
    let _ = ping.stdout.take().map(|mut s| s.read_to_string(&mut out));
    demo.say(&format!(
        "export B meanwhile, as its client saw it: {}",
        out.lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or("no ping summary")
    ));

    demo.say("breaking A behind the cluster's back: its address deleted on n1");
    demo.cluster
        .node("n1")
        .ok("ip", &["addr", "del", "192.0.2.100/24", "dev", "eth0"]);
    let t = Instant::now();
    let repaired =
        handoff_tests::wait_until(Duration::from_secs(60), Duration::from_millis(100), || {
            demo.cluster
                .node("n1")
                .ok("ip", &["-o", "addr", "show", "dev", "eth0"])
                .contains("192.0.2.100/24")
        });
    assert!(repaired, "not repaired");
    demo.say(&format!(
        "the 10 s monitor saw it missing and Pacemaker restored it on n1 after {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    demo.agents();
    demo.pcs(&["resource", "disable", "export_a", "export_b", "--wait=60"]);
    demo.agents();
    demo.say("stopping the nodes");
    drop(demo);
    drop((disk_a, disk_b));
    println!("part 1 done: cluster stopped, namespaces and loop devices removed\n");
}

fn vm_part(scratch: &Scratch) {
    println!("Part 2: one export moved between nodes with locked clients, in a VM (Debian 6.12 kernel, real nfsd)");
    println!("first with a virtual NFS server per export (ocf:handoff:nfs-server): node1 serves VA and VB, node2 VC;");
    println!("VA moves to node2 while the client keeps locking on VB and VC. Then the same move with one NFS server");
    println!("per node (NA to node2, which also serves NC), for comparison. Grace periods: 20 s.");
    println!("(first run: builds and caches the VM image; under TCG emulation every program start costs ~200 ms)\n");
    let run = vm::run(
        scratch.path(),
        "handoff.scenarios=vservers,nodewide",
        Duration::from_secs(900),
    );
    for c in &run.checks {
        println!("  {} {}", if c.ok { "ok  " } else { "FAIL" }, c.name);
    }
    let m = |name: &str| {
        run.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
            .unwrap_or(f64::NAN)
    };
    println!();
    println!("                                              virtual servers   one server per node");
    println!(
        "  moved export's locks reclaimed after takeover {:9.0} ms      {:9.0} ms",
        m("va_reclaim_after_takeover_ms"),
        m("nodewide_na_reclaim_after_takeover_ms")
    );
    println!(
        "  other exports' slowest lock operation         {:9.0} ms      {:9.0} ms",
        m("vb_during_max_ms").max(m("vc_during_max_ms")),
        m("nodewide_nc_blocked_max_ms")
    );
    println!(
        "  other exports' failed lock operations         {:9.0}         {:9.0}",
        m("vb_during_errors") + m("vc_during_errors"),
        m("nc_during_errors")
    );
    println!(
        "  VA: releasing node1 {:.0} ms, taking node2 {:.0} ms (4 agents each)",
        m("va_release_ms"),
        m("va_takeover_ms")
    );
    println!("\n  the nodes' agents' own log, as the VM printed it:");
    for line in run.log.lines().filter(|l| {
        !l.contains("HANDOFF-") && l.contains(")[") && (l.contains("INFO") || l.contains("ERROR"))
    }) {
        println!("    {line}");
    }
    // The move as a picture: VA's client, VB's and VC's, and the agents.
    let dir = handoff_tests::util::workspace_root().join("target/demo");
    for (plot, written) in Plot::write_all_in_log(&run.log, "demo", &dir) {
        match written {
            Ok(path) => println!("\n  timeline plot: {}", path.display()),
            Err(e) => println!("\n  timeline plot {plot} not written: {e}"),
        }
    }
    let failed = run.checks.iter().filter(|c| !c.ok).count();
    println!(
        "\npart 2 done ({}): {} checks, {failed} failed",
        run.accel,
        run.checks.len()
    );
    if failed > 0 || !run.finished {
        std::process::exit(1);
    }
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("handoff-demo needs root (namespaces, loop devices, Pacemaker, qemu)");
        std::process::exit(1);
    }
    let scratch = Scratch::new("demo");
    cluster_part(&scratch);
    if !std::env::args().any(|a| a == "--no-vm") {
        vm_part(&scratch);
    }
}
