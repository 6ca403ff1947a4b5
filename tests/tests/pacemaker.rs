//! ocf:handoff:fs under a live Pacemaker: a one-node cluster (corosync and
//! pacemakerd in their own namespaces), `pcs resource create`, and
//! recovery after the filesystem is unmounted behind the cluster's back.

use std::time::Duration;

use handoff_tests::util::have;
use handoff_tests::{needs_root, wait_until, Cluster, LoopDev, Scratch};

#[test]
fn pcs_creates_it_and_pacemaker_recovers_a_foreign_unmount() {
    needs_root!("pcs_creates_it_and_pacemaker_recovers_a_foreign_unmount");
    if !have("pacemakerd", "pacemaker")
        || !have("corosync", "pacemaker")
        || !have("pcs", "pacemaker")
    {
        return;
    }
    let scratch = Scratch::new("pcmk-fs");
    let dev = LoopDev::ext4(scratch.path(), "disk");
    let dir = scratch.join("mnt/a");
    let cluster = Cluster::start(1);
    cluster.wait_online(Duration::from_secs(60));
    let n1 = &cluster.nodes[0];

    n1.pcs(&[
        "resource",
        "create",
        "fsA",
        "ocf:handoff:fs",
        &format!("device={}", dev.dev()),
        &format!("directory={}", dir.display()),
        "op",
        "monitor",
        "interval=2s",
        "timeout=20s",
        "--wait=60",
    ]);
    assert_eq!(
        cluster.location("fsA").as_deref(),
        Some("n1"),
        "{}",
        n1.crm_mon_xml()
    );
    assert!(
        n1.is_mounted(&dir),
        "Pacemaker says started but nothing is mounted"
    );

    // The recurring monitor at depth 20 through the cluster.
    n1.pcs(&[
        "resource",
        "op",
        "add",
        "fsA",
        "monitor",
        "interval=5s",
        "timeout=20s",
        "OCF_CHECK_LEVEL=20",
    ]);

    // Unmount behind the cluster's back: the monitor returns 7 and
    // Pacemaker recovers the resource on the same node.
    n1.ok("umount", &[&dir.display().to_string()]);
    assert!(!n1.is_mounted(&dir));
    let recovered = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
        n1.is_mounted(&dir) && n1.crm_mon_xml().contains("fsA_monitor_2000")
    });
    let mon = n1.crm_mon_xml();
    assert!(recovered, "not recovered:\n{mon}");
    assert!(
        mon.contains(r#"exitstatus="not running""#),
        "the failure was not recorded as 'not running':\n{mon}"
    );
    assert_eq!(cluster.location("fsA").as_deref(), Some("n1"));

    // The agent's own log lines reach Pacemaker's log (HA_LOGFILE).
    let log = n1.pacemaker_log();
    assert!(log.contains("fs(fsA)["), "no agent lines in pacemaker.log");
    assert!(
        log.contains(&format!("INFO: mounted {} on {}", dev.dev(), dir.display())),
        "{log}"
    );

    // A live parameter change of a reloadable option: Pacemaker reloads
    // (legacy reload for OCF 1.0 metadata) and the mount changes in place.
    n1.pcs(&["resource", "update", "fsA", "options=noatime", "--wait=60"]);
    let remounted = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
        n1.mountinfo()
            .lines()
            .any(|l| l.contains(&format!(" {} ", dir.display())) && l.contains("noatime"))
    });
    assert!(remounted, "options change not applied:\n{}", n1.mountinfo());
    assert!(
        n1.pacemaker_log().contains("remounted"),
        "applied by a restart, not a reload"
    );

    // crm_resource against the live CIB.
    let check = n1.output("crm_resource", &["--force-check", "-r", "fsA"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    n1.pcs(&["resource", "disable", "fsA", "--wait=60"]);
    assert!(!n1.is_mounted(&dir), "disabled but still mounted");
    let check = n1.output("crm_resource", &["--force-check", "-r", "fsA"]);
    assert_eq!(check.status.code(), Some(7));
}

#[test]
fn pcs_creates_a_vip_and_pacemaker_recovers_a_foreign_delete() {
    needs_root!("pcs_creates_a_vip_and_pacemaker_recovers_a_foreign_delete");
    if !have("pacemakerd", "pacemaker")
        || !have("corosync", "pacemaker")
        || !have("pcs", "pacemaker")
    {
        return;
    }
    let cluster = Cluster::start(1);
    cluster.wait_online(Duration::from_secs(60));
    let n1 = &cluster.nodes[0];
    n1.pcs(&[
        "resource",
        "create",
        "vipA",
        "ocf:handoff:vip",
        "ip=192.0.2.100",
        "cidr_netmask=24",
        "op",
        "monitor",
        "interval=2s",
        "timeout=20s",
        "--wait=60",
    ]);
    let present = || {
        n1.ok("ip", &["-o", "addr", "show", "dev", "eth0"])
            .contains(" 192.0.2.100/24")
    };
    assert!(
        present(),
        "Pacemaker says started but the address is missing"
    );
    n1.ok("ip", &["addr", "del", "192.0.2.100/24", "dev", "eth0"]);
    let recovered = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
        present() && n1.crm_mon_xml().contains("vipA_monitor_2000")
    });
    assert!(recovered, "not recovered:\n{}", n1.crm_mon_xml());
    assert!(
        n1.pacemaker_log().contains("vip(vipA)["),
        "no agent lines in pacemaker.log"
    );
    n1.pcs(&["resource", "disable", "vipA", "--wait=60"]);
    assert!(!present(), "disabled but the address is still there");
}
