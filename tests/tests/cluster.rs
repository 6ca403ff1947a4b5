//! A real two-node Pacemaker cluster on this machine running two export
//! groups (fs, export, vip; nlm-locks needs an nfsd, see nfs_vm.rs), built
//! with the pcs commands of the README. The failover sequence is carried out
//! by Pacemaker's ordering, and read back from the agents' own log lines.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use handoff_tests::timeline::{self, Event};
use handoff_tests::util::{have, run_ok, stdout_ok};
use handoff_tests::{needs_root, wait_until, Cluster, LoopDev, Scratch};

struct Group {
    id: &'static str,
    vip: &'static str,
    fsid: &'static str,
    prefers: &'static str,
}

const A: Group = Group {
    id: "a",
    vip: "192.0.2.100",
    fsid: "1",
    prefers: "n1",
};
const B: Group = Group {
    id: "b",
    vip: "192.0.2.101",
    fsid: "2",
    prefers: "n2",
};

fn create(c: &Cluster, g: &Group, dev: &str, dir: &str) {
    let n = c.any();
    let grp = format!("export_{}", g.id);
    n.pcs(&[
        "resource",
        "create",
        &format!("{}_fs", g.id),
        "ocf:handoff:fs",
        &format!("device={dev}"),
        &format!("directory={dir}"),
        "fstype=ext4",
        "op",
        "monitor",
        "interval=5s",
        "timeout=40s",
        "op",
        "stop",
        "timeout=10s",
        "--group",
        &grp,
    ]);
    n.pcs(&[
        "resource",
        "create",
        &format!("{}_export", g.id),
        "ocf:handoff:export",
        &format!("directory={dir}"),
        &format!("fsid={}", g.fsid),
        "clientspec=192.0.2.0/24",
        "op",
        "monitor",
        "interval=5s",
        "timeout=20s",
        "--group",
        &grp,
    ]);
    n.pcs(&[
        "resource",
        "create",
        &format!("{}_vip", g.id),
        "ocf:handoff:vip",
        &format!("ip={}", g.vip),
        "cidr_netmask=24",
        "op",
        "monitor",
        "interval=5s",
        "timeout=20s",
        "--group",
        &grp,
    ]);
    n.pcs(&[
        "constraint",
        "location",
        &grp,
        "prefers",
        &format!("{}=50", g.prefers),
    ]);
}

fn vip_of(g: &Group) -> String {
    format!("{}_vip", g.id)
}

/// Pings a VIP from the client side until stopped.
struct Pinger(Child);

impl Pinger {
    fn start(c: &Cluster, ip: &str) -> Pinger {
        Pinger(
            c.client("ping")
                .args(["-n", "-i", "0.1", ip])
                .stdout(Stdio::piped())
                .spawn()
                .expect("ping"),
        )
    }

    /// (sent, received)
    fn stop(mut self) -> (u32, u32) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let _ = self.0.wait();
        let mut out = String::new();
        let _ = self.0.stdout.take().map(|mut s| s.read_to_string(&mut out));
        let line = out
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_default();
        let num = |w: &str| {
            line.split(", ")
                .find(|p| p.contains(w))
                .and_then(|p| p.split(' ').next()?.parse().ok())
                .unwrap_or(0)
        };
        (num("transmitted"), num("received"))
    }
}

/// Positions of the events matching (node, who, what), in the order given;
/// panics with the timeline when one is missing.
fn sequence(events: &[Event], steps: &[(&str, &str, &str)]) -> Vec<usize> {
    steps
        .iter()
        .map(|(node, who, what)| {
            events
                .iter()
                .position(|e| {
                    e.node == *node && e.who.ends_with(&format!("({who})")) && e.what.contains(what)
                })
                .unwrap_or_else(|| panic!("no '{what}' of {who} on {node} in:\n{events:#?}"))
        })
        .collect()
}

fn wait_on(c: &Cluster, g: &Group, node: &str) {
    assert!(
        c.wait_location(&vip_of(g), Some(node), Duration::from_secs(90)),
        "{} did not come up on {node}:\n{}",
        vip_of(g),
        c.any().crm_mon_xml()
    );
}

fn other(node: &str) -> &'static str {
    if node == "n1" {
        "n2"
    } else {
        "n1"
    }
}

fn node_mac(c: &Cluster, name: &str) -> String {
    let out = stdout_ok(Command::new("ip").args([
        "-n",
        &c.node(name).netns,
        "-o",
        "link",
        "show",
        "eth0",
    ]));
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn two_node_cluster_moves_one_export_group() {
    needs_root!("two_node_cluster_moves_one_export_group");
    for p in ["pacemakerd", "corosync", "pcs", "exportfs", "ping"] {
        if !have(p, "two_node_cluster_moves_one_export_group") {
            return;
        }
    }
    let scratch = Scratch::new("cluster-groups");
    let disk_a = LoopDev::ext4(scratch.path(), "disk-a");
    let disk_b = LoopDev::ext4(scratch.path(), "disk-b");
    let (dir_a, dir_b) = (
        scratch.join("srv/a").display().to_string(),
        scratch.join("srv/b").display().to_string(),
    );
    let mut c = Cluster::start(2);
    c.wait_online(Duration::from_secs(90));
    c.any()
        .pcs(&["resource", "defaults", "update", "resource-stickiness=100"]);
    create(&c, &A, &disk_a.dev(), &dir_a);
    create(&c, &B, &disk_b.dev(), &dir_b);
    wait_on(&c, &A, "n1");
    wait_on(&c, &B, "n2");

    // 1. Standby of A's node: A stops there in reverse order and starts on
    // the other node in order; B never moves and stays reachable.
    let since = SystemTime::now();
    let ping = Pinger::start(&c, B.vip);
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    c.any().pcs(&["node", "standby", "n1"]);
    wait_on(&c, &A, "n2");
    eprintln!("standby of n1: A on n2 after {:?}", t.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    let (sent, got) = ping.stop();
    assert!(
        sent > 10 && got == sent,
        "B's address missed pings while A moved: {got}/{sent}"
    );
    let events = timeline::events(&c, since);
    let order = sequence(
        &events,
        &[
            ("n1", "a_vip", "stop succeeded"),
            ("n1", "a_export", "stop succeeded"),
            ("n1", "a_fs", "stop succeeded"),
            ("n2", "a_fs", "start succeeded"),
            ("n2", "a_export", "start succeeded"),
            ("n2", "a_vip", "start succeeded"),
        ],
    );
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "wrong order {order:?} in:\n{events:#?}"
    );
    assert!(!events.iter().any(|e| e.who.contains("(b_") && (e.what.contains("stop") || e.what.contains("start"))), "B moved:\n{events:#?}");
    c.any().pcs(&["node", "unstandby", "n1"]);

    // 2. pcs resource move, and back (pcs 0.11 removes its constraint).
    for to in ["n1", "n2", "n1"] {
        let ping = Pinger::start(&c, B.vip);
        c.any().pcs(&["resource", "move", "export_a", to]);
        wait_on(&c, &A, to);
        let (sent, got) = ping.stop();
        assert_eq!(got, sent, "B's address missed pings while A moved to {to}");
    }
    assert_eq!(c.location(&vip_of(&B)).as_deref(), Some("n2"), "B moved");

    // 3. Broken behind the cluster's back: each is repaired where it is.
    let n1 = c.node("n1");
    let words = |ws: &[&str]| ws.iter().map(|w| w.to_string()).collect::<Vec<String>>();
    let breakages = [
        (
            "a_vip",
            words(&["ip", "addr", "del", "192.0.2.100/24", "dev", "eth0"]),
            "a_vip_monitor_5000",
        ),
        (
            "a_export",
            words(&["exportfs", "-u", &format!("192.0.2.0/24:{dir_a}")]),
            "a_export_monitor_5000",
        ),
        ("a_fs", words(&["umount", &dir_a]), "a_fs_monitor_5000"),
    ];
    for (rsc, cmd, op) in breakages {
        // Let the previous repair settle before the next break.
        assert!(wait_until(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || c.any()
                .crm_mon_xml()
                .contains(&format!("<resource id=\"{}\"", vip_of(&A)))
                && c.location(&vip_of(&A)).as_deref() == Some("n1")
        ));
        run_ok(n1.command(&cmd[0]).args(&cmd[1..]));
        let repaired = wait_until(Duration::from_secs(40), Duration::from_millis(200), || {
            let xml = c.any().crm_mon_xml();
            xml.contains(op)
                && c.location(&vip_of(&A)).as_deref() == Some("n1")
                && n1.is_mounted(std::path::Path::new(&dir_a))
        });
        assert!(
            repaired,
            "{rsc} broken behind the cluster's back was not repaired on n1:\n{}",
            c.any().crm_mon_xml()
        );
        eprintln!("{rsc}: detected by {op} and repaired on n1");
    }
    c.any().pcs(&["resource", "cleanup"]);

    // 4. A stop that fails: the cluster does not start the group elsewhere.
    let holder = n1
        .command("env")
        .args([&format!("--chdir={dir_a}"), "sleep", "600"])
        .stdout(Stdio::null())
        .spawn()
        .expect("holder");
    std::thread::sleep(Duration::from_millis(300));
    c.any()
        .pcs(&["resource", "update", "a_fs", "force_unmount=false"]);
    // (pcs resource move would wait for a move that must not happen.)
    run_ok(
        c.any()
            .command("crm_resource")
            .args(["--move", "-r", "export_a", "-N", "n2"]),
    );
    let blocked = wait_until(Duration::from_secs(40), Duration::from_millis(250), || {
        let xml = c.any().crm_mon_xml();
        xml.lines().any(|l| {
            l.contains("<resource id=\"a_fs\"")
                && l.contains("failed=\"true\"")
                && l.contains("blocked=\"true\"")
        })
    });
    let xml = c.any().crm_mon_xml();
    assert!(blocked, "the failed stop did not block a_fs:\n{xml}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !c.node("n2").is_mounted(std::path::Path::new(&dir_a)),
        "A was mounted on n2 while n1 may hold it"
    );
    assert!(
        n1.is_mounted(std::path::Path::new(&dir_a)),
        "A was unmounted although its stop failed"
    );
    let mut holder = holder;
    let _ = holder.kill();
    let _ = holder.wait();
    c.any()
        .pcs(&["resource", "update", "a_fs", "force_unmount=true"]);
    c.any().pcs(&["resource", "cleanup", "export_a"]);
    wait_on(&c, &A, "n2");
    c.any().pcs(&["resource", "clear", "export_a"]);
    c.any().pcs(&["resource", "move", "export_a", "n1"]);
    wait_on(&c, &A, "n1");

    // 5. A node crash: the survivor takes A over. While the dead node's
    // interface still answers for A's address, the duplicate-address guard
    // refuses it and names that node's MAC; once it is quiet, A starts.
    let dead_mac = node_mac(&c, "n1");
    let t = Instant::now();
    let i = c.index("n1");
    c.nodes[i].crash();
    let refused = wait_until(Duration::from_secs(40), Duration::from_millis(250), || {
        c.node("n2").crm_mon_xml().contains(&format!(
            "192.0.2.100 is already in use on eth0 by {dead_mac}"
        ))
    });
    assert!(
        refused,
        "the guard did not refuse the address the dead node still holds:\n{}",
        c.node("n2").crm_mon_xml()
    );
    c.quiet_nic("n1");
    c.node("n2").pcs(&["resource", "cleanup", "a_vip"]);
    wait_on(&c, &A, "n2");
    eprintln!(
        "crash of n1: A on n2 after {:?} (guard refusal included)",
        t.elapsed()
    );
    assert_eq!(c.location(&vip_of(&B)).as_deref(), Some("n2"));
    c.nic_up("n1");
    c.boot(i);
    c.wait_online(Duration::from_secs(90));

    // 6. crm_resource against the live CIB, on each member of B.
    let (here, there) = (c.node("n2"), c.node(other("n2")));
    for rsc in ["b_fs", "b_export", "b_vip"] {
        let code = |n: &handoff_tests::Node, a: &str| {
            n.output("crm_resource", &[a, "-r", rsc]).status.code()
        };
        assert_eq!(
            code(here, "--force-check"),
            Some(0),
            "{rsc} --force-check where it runs"
        );
        assert_eq!(
            code(there, "--force-check"),
            Some(7),
            "{rsc} --force-check where it does not"
        );
    }
    here.pcs(&["resource", "disable", "export_b", "--wait=60"]);
    for rsc in ["b_fs", "b_export", "b_vip"] {
        let out = here.output("crm_resource", &["--force-start", "-r", rsc]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{rsc} --force-start: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(
            here.output("crm_resource", &["--force-check", "-r", rsc])
                .status
                .code(),
            Some(0)
        );
    }
    for rsc in ["b_vip", "b_export", "b_fs"] {
        assert_eq!(
            here.output("crm_resource", &["--force-stop", "-r", rsc])
                .status
                .code(),
            Some(0),
            "{rsc} --force-stop"
        );
        assert_eq!(
            here.output("crm_resource", &["--force-check", "-r", rsc])
                .status
                .code(),
            Some(7)
        );
    }
    drop(c);
    drop((disk_a, disk_b));
}
