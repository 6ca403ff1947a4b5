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
    load_configuration, located, server_params, stickiness, virtual_group, STALL,
};
use super::lockd_trace;
use super::report::{check, metric, note};
use super::scale::{devices_locked, group, still_result, STILL};
use super::scenarios::{kill, lock_cmd, spawn_ready, Group, Loop, World};
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
    let mut all = vec![stickiness()];
    for i in (0..n).chain([STILL]) {
        let g = group(i, &dev_link(i));
        let mut server = server_params(g.name, g.dir, g.vip, "eth0", "60");
        server.retain(|p| !p.starts_with("threads="));
        let prefers = if i == STILL { "n2" } else { "n1" };
        virtual_group(&mut all, &g, server, prefers);
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
    std::env::set_var("HANDOFF_BIN_DIR", "/handoff/bin");
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
        World::mount_v3(&client, g);
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

    // The drain, as the site's Pacemaker runs it.
    let on_still = Loop::on(&client, still.mnt, "pcsstill");
    std::thread::sleep(Duration::from_millis(500));
    let drains = Drains {
        c: &c,
        groups: &groups,
        locked: &locked,
    };
    let lockd = lockd_trace::start(Duration::from_millis(25));
    drains.run(
        ("n1", "n2"),
        &format!("standby_n{n}"),
        &["crm_standby", "-N", "n1", "-v", "on"],
    );
    let throttled = lockd.map(sys::Sampler::finish).unwrap_or_default();
    throttle_report(&c);
    // The same groups back to n1 with Pacemaker's throttle out of the way
    // (a load threshold no node reaches): what its pace cost the drain.
    // The controller looks at the load every 30 s; the move waits for it
    // to leave its high-load mode.
    let modes = |node: &crate::cluster::Node| -> Vec<String> {
        node.pacemaker_log()
            .lines()
            .filter(|l| l.contains("New throttle mode"))
            .map(str::to_owned)
            .collect()
    };
    let seen: Vec<usize> = c.nodes.iter().map(|node| modes(node).len()).collect();
    let n2 = c.node("n2");
    n2.ok(
        "crm_attribute",
        &[
            "--type",
            "crm_config",
            "--name",
            "load-threshold",
            "--update",
            "10000%",
        ],
    );
    n2.ok("crm_standby", &["-N", "n1", "-v", "off"]);
    let eased =
        crate::util::wait_until(Duration::from_secs(90), Duration::from_millis(500), || {
            c.nodes.iter().zip(&seen).all(|(node, &k)| {
                let m = modes(node);
                m.len() > k
                    && m.last()
                        .is_some_and(|l| !l.contains(": high") && !l.contains(": extreme"))
            })
        });
    note(format!(
        "standby: the controllers left their high-load mode: {eased}"
    ));
    let lockd = lockd_trace::start(Duration::from_millis(25));
    drains.run(
        ("n2", "n1"),
        &format!("standby_n{n}_unthrottled"),
        &[
            "crm_attribute",
            "--type",
            "rsc_defaults",
            "--name",
            "resource-stickiness",
            "--update",
            "0",
        ],
    );
    let unthrottled = lockd.map(sys::Sampler::finish).unwrap_or_default();
    throttle_report(&c);
    let (errors, max, d) = still_result(on_still, &format!("standby_n{n}"));
    // What held the one lockd thread while the group that stays waited.
    let slowest = d["slowest_at"].as_str();
    lockd_trace::report(&format!("standby_n{n}"), &throttled, slowest, max);
    lockd_trace::report(
        &format!("standby_n{n}_unthrottled"),
        &unthrottled,
        slowest,
        max,
    );
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

/// The drained groups and what tells that they are back.
struct Drains<'a> {
    c: &'a Cluster,
    groups: &'a [Group],
    locked: &'a [(u32, u32)],
}

impl Drains<'_> {
    /// Run `trigger` (a cluster command, on n2) and wait until every group
    /// serves on `to` with its client's lock back. Metrics under `prefix`:
    /// until all serve, until every lock is back, and the agents' own span
    /// (the first stop on `from` to the last address up on `to`).
    fn run(&self, (from, to): (&str, &str), prefix: &str, trigger: &[&str]) {
        let (c, n) = (self.c, self.groups.len());
        let all_held = || devices_locked(self.locked) == n;
        let since = SystemTime::now();
        let t = Instant::now();
        c.node("n2").ok(trigger[0], &trigger[1..]);
        let moved = self.groups.iter().all(|g| located(c, g, to, STALL));
        let serving = t.elapsed();
        let back = moved
            .then(|| wait_for(Duration::from_secs(180), all_held))
            .flatten();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        metric(&format!("{prefix}_all_serving_ms"), ms(serving), "ms");
        metric(
            &format!("{prefix}_locks_back_ms"),
            back.map_or(f64::NAN, |b| ms(serving + b)),
            "ms",
        );
        check(
            &format!(
                "standby: {} brings every one of the {n} group(s) from {from} to {to}, and every lock back",
                trigger.join(" ")
            ),
            moved && back.is_some(),
            format!(
                "{} of {n} devices with a lock; {}",
                devices_locked(self.locked),
                c.any().crm_mon_xml()
            ),
        );
        let events = timeline::events(c, since);
        let first_stop = events
            .iter()
            .find(|e| e.node == from && e.what.starts_with("stop succeeded"));
        let last_up = events.iter().rfind(|e| {
            e.node == to && e.who.ends_with("_vip)") && e.what.starts_with("start succeeded")
        });
        if let (Some(a), Some(b)) = (first_stop, last_up) {
            let span = b.at.duration_since(a.at).unwrap_or_default();
            metric(
                &format!("{prefix}_first_stop_to_last_up_ms"),
                ms(span),
                "ms",
            );
        }
        // Each action as the span its log line gives ("... succeeded in X
        // ms", logged at its end): their time in all, and how many ran at
        // once at most (what Pacemaker's scheduling allowed).
        let spans: Vec<(SystemTime, SystemTime)> = events
            .iter()
            .filter(|e| {
                e.what.starts_with("stop succeeded") || e.what.starts_with("start succeeded")
            })
            .filter_map(|e| {
                let ms: f64 = e
                    .what
                    .rsplit_once(" in ")?
                    .1
                    .strip_suffix(" ms")?
                    .parse()
                    .ok()?;
                Some((e.at - Duration::from_secs_f64(ms / 1000.0), e.at))
            })
            .collect();
        let busy: f64 = spans
            .iter()
            .map(|(a, b)| b.duration_since(*a).unwrap_or_default().as_secs_f64())
            .sum();
        let peak = spans
            .iter()
            .map(|(a, _)| spans.iter().filter(|(x, y)| x <= a && a < y).count())
            .max()
            .unwrap_or(0);
        metric(&format!("{prefix}_actions_busy_ms"), busy * 1000.0, "ms");
        metric(
            &format!("{prefix}_actions_at_once_max"),
            peak as f64,
            "actions",
        );
        note(format!(
            "standby: {} start and stop actions from {from} to {to} ({prefix}): {busy:.1} s of their own, at most {peak} at once",
            spans.len()
        ));
    }
}

/// Pacemaker's own pace: the controller lowers how many actions a node may
/// run at once when it finds the node's CPU loaded (its throttle: one at a
/// time under high load), and says so in its log.
fn throttle_report(c: &Cluster) {
    for node in &c.nodes {
        let log = node.pacemaker_log();
        let throttle: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("New throttle mode") || l.contains("supports at most"))
            .collect();
        note(format!(
            "standby: {}'s controller changed its throttle {} time(s):\n{}",
            node.name,
            throttle.len(),
            throttle.join("\n")
        ));
    }
}
