//! `standby`: the scale suite's drain through Pacemaker itself. N export
//! groups (fs, nfs-server, export, vip, each with its own virtual server,
//! made with the README's pcs commands on the host; see
//! [`pcs_commands`]) prefer n1 of a two-node cluster in the VM, and a
//! group that stays prefers n2; a client holds a lock on each. Then
//! `crm_standby -N n1 -v on` (what `pcs node standby n1` runs, without
//! pcs' own start-up, seconds under emulation) drains n1 while the client
//! keeps locking on the group that stays. Measured: from the command until
//! every group answers on n2 and until every lock is back, the agents'
//! span in it (first stop to last address up, from their own log), and
//! the slowest lock operation of the group that stays. Pacemaker's
//! scheduling is whatever the rest of the drain is: its default
//! node-action-limit (twice the cores) and batch-limit, as a site has
//! them.

use std::time::{Duration, Instant, SystemTime};

use super::cluster::{
    export_params, fs_params, group_commands, load_configuration, located, server_params,
    server_vip_params, words, STALL,
};
use super::report::{check, metric, note};
use super::scale::{devices_locked, group, STILL};
use super::scenarios::{kill, lock_cmd, spawn_ready, Group, Loop};
use super::sys::{self, rdev, wait_for};
use super::topo::Host;
use crate::cluster::Cluster;
use crate::timeline;

/// Where the host puts the CIB its `pcs -f` commands made.
pub const CIB: &str = "/handoff/standby-cib.xml";

/// The device group `i`'s fs names: a link the guest makes to the loop
/// device it gets (its name is known only then).
fn dev_link(i: usize) -> String {
    format!("/dev/handoff-s{i:02}")
}

/// The `pcs resource create` commands of `n` groups preferring n1 and of
/// the group that stays, preferring n2: the README's, with the agents'
/// default threads and the scale suite's 60 s reclaim window.
pub fn pcs_commands(n: usize) -> Vec<Vec<String>> {
    let mut all = vec![words(&[
        "resource",
        "defaults",
        "update",
        "resource-stickiness=100",
    ])];
    for i in (0..n).chain([STILL]) {
        let g = group(i, &dev_link(i));
        let mut server = server_params(g.name, g.dir, g.vip, "eth0", "60");
        server.retain(|p| !p.starts_with("threads="));
        let members = [
            ("fs", "fs", fs_params(g.dev, g.dir)),
            ("server", "nfs-server", server),
            (
                "export",
                "export",
                export_params(Some(g.name), g.dir, g.fsid),
            ),
            ("vip", "vip", server_vip_params(g.name, g.vip)),
        ];
        let prefers = if i == STILL { "n2" } else { "n1" };
        group_commands(&mut all, &g, members, prefers);
    }
    all
}

/// The drain of `devs.len()` groups (their loop devices, in group order)
/// and the group that stays on `still_dev`.
pub fn run(devs: &[String], still_dev: &str) {
    let n = devs.len();
    let groups: Vec<Group> = (0..n).map(|i| group(i, &dev_link(i))).collect();
    let still = group(STILL, &dev_link(STILL));
    for (i, dev) in (0..n).zip(devs).chain([(STILL, &still_dev.to_owned())]) {
        sys::ok(&["mkfs.ext4", "-q", "-F", dev]);
        let _ = std::fs::remove_file(dev_link(i));
        std::os::unix::fs::symlink(dev, dev_link(i)).expect("a link to the loop device");
    }
    let t = Instant::now();
    let c = Cluster::start_with_nfs(2, 20);
    let online = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        c.wait_online(Duration::from_secs(150))
    }));
    metric(
        &format!("standby_n{n}_cluster_online_ms"),
        t.elapsed().as_secs_f64() * 1000.0,
        "ms",
    );
    assert!(
        check("standby: two nodes online with quorum", online.is_ok(), ""),
        "the cluster did not form"
    );
    load_configuration(&c, CIB);
    let t = Instant::now();
    let started =
        groups.iter().all(|g| located(&c, g, "n1", STALL)) && located(&c, &still, "n2", STALL);
    metric(
        &format!("standby_n{n}_start_all_ms"),
        t.elapsed().as_secs_f64() * 1000.0,
        "ms",
    );
    assert!(
        check(
            &format!(
                "standby: Pacemaker starts the {n} group(s) on n1 and the one that stays on n2"
            ),
            started,
            c.any().crm_mon_xml(),
        ),
        "the groups did not start"
    );

    // The client, in the cluster's switch namespace, with a lock on each.
    let client = Host::in_netns("pcsclient", &c.switch, "192.0.2.250");
    client.start_nfs_client();
    let mut holders = Vec::new();
    for g in groups.iter().chain([&still]) {
        let _ = std::fs::create_dir_all(format!("/proc/{}/root{}", client.pid, g.mnt));
        client.ok(&[
            "mount.nfs",
            &format!("{}:{}", g.vip, g.dir),
            g.mnt,
            "-o",
            "vers=3,proto=tcp",
        ]);
        let (child, line) = spawn_ready(
            lock_cmd(&client, &["hold", &format!("{}/lock", g.mnt)]),
            Duration::from_secs(60),
        );
        holders.push((child, line));
    }
    let locked: Vec<(u32, u32)> = groups.iter().map(|g| rdev(g.dev)).collect();
    let all_held = || devices_locked(&locked) == n;
    check(
        &format!("standby: the client holds a lock on each of the {n} export(s)"),
        holders.iter().all(|(_, l)| l == "HELD")
            && wait_for(Duration::from_secs(30), all_held).is_some(),
        format!("{} of {n} devices with a lock", devices_locked(&locked)),
    );

    // The drain.
    let on_still = Loop::on(&client, still.mnt, "pcsstill");
    std::thread::sleep(Duration::from_millis(500));
    let since = SystemTime::now();
    let t = Instant::now();
    c.node("n2").ok("crm_standby", &["-N", "n1", "-v", "on"]);
    let moved = groups.iter().all(|g| located(&c, g, "n2", STALL));
    let serving = t.elapsed();
    let back = moved
        .then(|| wait_for(Duration::from_secs(180), all_held))
        .flatten();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    metric(&format!("standby_n{n}_all_serving_ms"), ms(serving), "ms");
    metric(
        &format!("standby_n{n}_locks_back_ms"),
        back.map_or(f64::NAN, |b| ms(serving + b)),
        "ms",
    );
    check(
        &format!(
            "standby: n1's standby brings every one of the {n} group(s) to n2, and every lock back"
        ),
        moved && back.is_some(),
        format!(
            "{} of {n} devices with a lock; {}",
            devices_locked(&locked),
            c.any().crm_mon_xml()
        ),
    );
    // The agents' own share: n1's first stop to n2's last address up.
    let events = timeline::events(&c, since);
    let first_stop = events
        .iter()
        .find(|e| e.node == "n1" && e.what.starts_with("stop succeeded"));
    let last_up = events.iter().rfind(|e| {
        e.node == "n2" && e.who.ends_with("_vip)") && e.what.starts_with("start succeeded")
    });
    if let (Some(a), Some(b)) = (first_stop, last_up) {
        let span = b.at.duration_since(a.at).unwrap_or_default();
        metric(
            &format!("standby_n{n}_first_stop_to_last_up_ms"),
            ms(span),
            "ms",
        );
    }
    let actions = events
        .iter()
        .filter(|e| e.what.starts_with("stop succeeded") || e.what.starts_with("start succeeded"))
        .count();
    note(format!(
        "standby: {actions} start and stop actions in the drain of {n} group(s)"
    ));
    let d = on_still.finish();
    let errors = d["errors"].as_u64().unwrap_or(u64::MAX);
    let max = d["max_ms"].as_f64().unwrap_or(f64::NAN);
    metric(&format!("standby_n{n}_still_group_max_ms"), max, "ms");
    check(
        &format!("standby: drain of {n}: the group that stays (n2) saw no failed lock operation and no pause of 5 s or more"),
        errors == 0 && max < 5000.0 && c.location(&format!("{}_vip", still.id)).as_deref() == Some("n2"),
        d.to_string(),
    );
    for (h, _) in holders {
        kill(h);
    }
    for g in groups.iter().chain([&still]) {
        let _ = client.run(&["umount", "-l", g.mnt]);
    }
    drop(client);
    let t = Instant::now();
    drop(c);
    note(format!("standby: cluster gone after {:?}", t.elapsed()));
}
