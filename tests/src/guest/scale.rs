//! `scale`: N = 1, 8 and 32 export groups on one node, each with its own
//! virtual server (fs, nfs-server, export, vip) on a loop device, and a
//! client holding a lock on each. Per N: what the servers cost (memory,
//! processes, nfsd threads), what their monitors cost, and a drain of the
//! node: every group stops on node3 and starts on node2, each group's
//! members in order and the groups side by side, no more actions at once
//! per node than Pacemaker's default node-action-limit (twice the cores),
//! until every client holds its lock again; meanwhile a group that does not
//! move keeps locking on node2. At the sizes above 1, the same drain with
//! the ClusterLabs group around the nodes' own servers, for comparison.
//! Last, the drain of the largest size through Pacemaker (standby.rs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::lockd_trace;
use super::report::{check, metric, note};
use super::scenarios::{
    agent_at, all_ok, export_params, fs_params, run_member, start_members, stop_members,
    vip_params, Group, Loop, Members, Params, World,
};
use super::sys::{self, rdev, wait_for};
use super::topo::Host;
use super::vservers;

/// The sizes measured by default, in order (ci/test's run); the kernel
/// argument `handoff.scale=1,8,32` (from `HANDOFF_SCALE` on the host)
/// measures others.
const ROUNDS: [usize; 2] = [1, 8];

/// The exports the node-wide table grows to, whatever the sizes.
const CURVE: usize = 32;

/// The sizes of this run.
fn rounds() -> Vec<usize> {
    super::cmdline("handoff.scale")
        .map(|v| {
            v.split(',')
                .filter_map(|n| n.parse().ok())
                .collect::<Vec<usize>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| ROUNDS.to_vec())
}

/// The export member's start times since the last look (ms).
static EXPORT_STARTS: std::sync::Mutex<Vec<f64>> = std::sync::Mutex::new(Vec::new());

/// The group that stays on node2 through every drain.
pub(crate) const STILL: usize = 40;

/// Group `i`: its loop device, directory, address and server name.
pub(crate) fn group(i: usize, dev: &str) -> Group {
    let s = |t: String| -> &'static str { Box::leak(t.into_boxed_str()) };
    Group {
        id: s(format!("s{i:02}")),
        dev: s(dev.to_owned()),
        dir: s(format!("/srv/s{i:02}")),
        vip: s(format!("192.0.2.{}", 150 + i)),
        name: s(format!("nfs-s{i:02}")),
        fsid: s(format!("{}", 200 + i)),
        mnt: s(format!("/mnt/s{i:02}")),
    }
}

/// A group's members with the agents' defaults for the server (threads
/// above all), but the suite's short grace period.
fn members(g: &Group) -> Members {
    members_with(g, None)
}

/// As [`members`], with `threads` nfsd threads when given.
fn members_with(g: &Group, threads: Option<&str>) -> Members {
    let mut list = vservers::members(g);
    for (name, params) in &mut list {
        if *name == "nfs-server" {
            // A longer window than vserver_vm's 20 s: on a loaded 2-core
            // machine 32 clients reclaim late (a run beside two other VMs
            // lost 12 of 32 locks to a 20 s window). It ends as soon as
            // every recorded lock is back, so a quiet run is no slower.
            params.retain(|(k, _)| !matches!(*k, "threads" | "grace_time" | "lease_time"));
            params.push(("grace_time", "60".into()));
            params.push(("lease_time", "60".into()));
            if let Some(t) = threads {
                params.push(("threads", t.into()));
            }
        }
    }
    list
}

/// A filesystem for each group on a loop device over a sparse file.
fn make_groups(n: usize) -> Vec<Group> {
    let _ = std::fs::create_dir_all("/tmp/scale");
    (0..n)
        .map(|i| {
            let file = format!("/tmp/scale/s{i:02}.img");
            let f = std::fs::File::create(&file).expect("backing file");
            f.set_len(64 << 20).expect("backing file size");
            let dev = sys::ok(&["losetup", "-f"]).trim().to_owned();
            sys::ok(&["losetup", &dev, &file]);
            sys::ok(&["mkfs.ext4", "-q", "-F", &dev]);
            let g = group(i, &dev);
            for d in [g.dir, g.mnt] {
                let _ = std::fs::create_dir_all(d);
            }
            g
        })
        .collect()
}

/// Pacemaker's default node-action-limit: twice the node's cores.
fn action_limit() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Run `job` for every group, at most `limit` at once; true if every
/// job returned true.
fn each(groups: &[Group], limit: usize, job: impl Fn(&Group) -> bool + Sync) -> bool {
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..limit.min(groups.len()) {
            s.spawn(|| {
                while let Some(g) = groups.get(next.fetch_add(1, Ordering::SeqCst)) {
                    if !job(g) {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    failed.load(Ordering::SeqCst) == 0
}

/// Start a group's members in order on `h`; false (and a note) on failure.
fn start_on(h: &Host, g: &Group) -> bool {
    start_with(h, g, None)
}

/// As [`start_on`], with `threads` nfsd threads when given.
fn start_with(h: &Host, g: &Group, threads: Option<&str>) -> bool {
    let steps = start_members(h, g, members_with(g, threads));
    if let Some((_, d)) = steps.iter().find(|(a, _)| *a == "export") {
        if let Ok(mut v) = EXPORT_STARTS.lock() {
            v.push(d.ms());
        }
    }
    let (ok, detail) = all_ok(&steps);
    if !ok {
        note(format!(
            "scale: group {} did not start on {}: {detail}",
            g.id, h.name
        ));
    }
    ok
}

/// Stop a group's members in reverse order on `h`.
fn stop_on(h: &Host, g: &Group) -> bool {
    let (ok, detail) = all_ok(&stop_members(h, g, members(g)));
    if !ok {
        note(format!(
            "scale: group {} did not stop on {}: {detail}",
            g.id, h.name
        ));
    }
    ok
}

fn processes() -> usize {
    sys::pids().count()
}

/// Each member's default monitor interval, from its agent's metadata.
fn monitor_interval(agent: &str) -> Duration {
    let meta = sys::ok(&[&format!("/handoff/bin/{agent}"), "meta-data"]);
    let secs = meta
        .lines()
        .find(|l| l.contains("name=\"monitor\""))
        .and_then(|l| l.split("interval=\"").nth(1))
        .and_then(|v| v.split('"').next())
        .and_then(|v| v.trim_end_matches('s').parse::<u64>().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

pub fn run(w: &mut World) {
    // node3 runs an NFS server of its own, as a node may: a stop there can
    // then wake lockd through the node (lockd is one thread for the whole
    // kernel, which the nodes of this VM share, so a stop that cannot wake
    // it stalls the group that stays on node2).
    w.node3.start_nfs_server(10);
    let rounds = rounds();
    let n_max = rounds.iter().copied().max().unwrap_or(1);
    // The drain through Pacemaker, at the size the host made its
    // configuration for (see standby.rs).
    let standby: Option<usize> = super::cmdline("handoff.standby").and_then(|v| v.parse().ok());
    let made = n_max.max(standby.unwrap_or(0));
    let groups = make_groups(made + 1);
    let still = group(STILL, groups[made].dev);
    for d in [still.dir, still.mnt] {
        let _ = std::fs::create_dir_all(d);
    }
    assert!(
        start_on(&w.node2, &still),
        "the group that stays did not start"
    );
    w.mount(&still);
    let intervals: Vec<(&str, Duration)> = members(&still)
        .iter()
        .map(|(a, _)| (*a, monitor_interval(a)))
        .collect();
    note(format!("scale: default monitor intervals {intervals:?}"));
    let mut drains = Vec::new();
    for &n in &rounds {
        drains.push((n, round(w, &groups[..n], &still, &intervals)));
    }
    threads(w, &groups[..n_max.min(8)]);
    // The same drain with the ClusterLabs group, at the sizes of more than
    // one group (8 by default).
    let mut cl_drains = Vec::new();
    for &n in rounds.iter().filter(|&&n| n > 1) {
        cl_drains.push((n, clusterlabs_round(w, &groups[..n], &still)));
    }
    export_curve(w, CURVE);
    for (who, d) in [("", &drains), ("clusterlabs_", &cl_drains)] {
        let ms = |n| d.iter().find(|(m, _)| *m == n).and_then(|(_, d)| *d);
        if let (Some(d8), Some(d32)) = (ms(8), ms(32)) {
            metric(&format!("{who}drain_32_over_8"), d32 / d8, "x");
        }
    }
    let _ = w.client.run(&["umount", "-l", still.mnt]);
    stop_on(&w.node2, &still);
    match standby {
        Some(n) => {
            let devs: Vec<String> = groups[..n].iter().map(|g| g.dev.to_owned()).collect();
            super::standby::run(&devs, still.dev);
        }
        None => {
            check(
                "scale: the host asked for the drain through Pacemaker (handoff.standby)",
                false,
                "",
            );
        }
    }
}

/// One size: start, cost, monitors, a client lock on each, the drain,
/// and the groups stopped again. Returns the drain's time in ms.
fn round(
    w: &mut World,
    groups: &[Group],
    still: &Group,
    intervals: &[(&str, Duration)],
) -> Option<f64> {
    let n = groups.len();
    let limit = action_limit();
    note(format!(
        "scale: {n} group(s), {limit} actions at once per node"
    ));
    let mem0 = vservers::mem_available_kb();
    let (info0, slab0) = (meminfo(), slabs());
    let (procs0, nfsd0) = (processes(), vservers::kernel_threads("nfsd"));
    let t = Instant::now();
    let _ = EXPORT_STARTS.lock().map(|mut v| v.clear());
    let started = each(groups, limit, |g| start_on(&w.node3, g));
    if let Ok(v) = EXPORT_STARTS.lock() {
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        metric(&format!("n{n}_export_start_mean_ms"), mean, "ms");
    }
    metric(
        &format!("n{n}_start_all_ms"),
        t.elapsed().as_secs_f64() * 1000.0,
        "ms",
    );
    if !check(&format!("scale: {n} group(s) start on node3"), started, "") {
        each(groups, limit, |g| stop_on(&w.node3, g));
        return None;
    }
    let per = |v: f64| v / n as f64;
    // statd and mountd, which the one lockd waits for, at nfs-server's
    // default daemon_nice.
    let nice: Vec<(&str, Vec<i32>)> = ["rpc.statd", "rpc.mountd"]
        .iter()
        .map(|c| {
            let all = groups
                .iter()
                .flat_map(|g| vservers::server_nice(&w.node3, g, c))
                .collect();
            (*c, all)
        })
        .collect();
    check(
        &format!("scale: the {n} server(s)' statd and mountd run at nice -10"),
        nice.iter()
            .all(|(_, v)| v.len() == n && v.iter().all(|&x| x == -10)),
        format!("{nice:?}"),
    );
    metric(
        &format!("n{n}_mem_available_drop_kb_per_server"),
        per(mem0.saturating_sub(vservers::mem_available_kb()) as f64),
        "kB",
    );
    memory_breakdown(n, &info0, &slab0);
    let sum = |file: &str, field: &str| {
        groups
            .iter()
            .map(|g| vservers::server_kb(&w.node3, g, file, field))
            .fold((0, 0), |(p, r), (a, b)| (p + a, r + b))
    };
    let (procs, rss) = sum("status", "VmRSS:");
    let (_, pss) = sum("smaps_rollup", "Pss:");
    metric(
        &format!("n{n}_server_pss_kb_per_server"),
        per(pss as f64),
        "kB",
    );
    metric(
        &format!("n{n}_server_rss_kb_per_server"),
        per(rss as f64),
        "kB",
    );
    metric(
        &format!("n{n}_server_processes_per_server"),
        per(procs as f64),
        "processes",
    );
    metric(
        &format!("n{n}_processes_per_group"),
        per(processes().saturating_sub(procs0) as f64),
        "processes",
    );
    metric(
        &format!("n{n}_nfsd_threads"),
        vservers::kernel_threads("nfsd").saturating_sub(nfsd0) as f64,
        "threads",
    );
    // The pool mode (how a server's threads are spread over CPUs) is one
    // setting of the whole kernel's sunrpc, which refuses a change while
    // any server runs: no virtual server can have its own.
    let mode = "/sys/module/sunrpc/parameters/pool_mode";
    let now = std::fs::read_to_string(mode).unwrap_or_default();
    let changed = std::fs::write(mode, "percpu");
    check(
        &format!("scale: with {n} server(s) running, the kernel refuses another pool mode"),
        changed
            .as_ref()
            .is_err_and(|e| e.raw_os_error() == Some(libc::EBUSY)),
        format!("pool_mode {}: {changed:?}", now.trim()),
    );

    // The monitors: one group's, and every group's per minute at the
    // default intervals (each monitor a process of its own, as Pacemaker
    // runs them).
    let t = Instant::now();
    let monitored = each(groups, limit, |g| {
        members(g)
            .iter()
            .all(|(a, p)| run_member(&w.node3, g, a, "monitor", p).code == 0)
    });
    let all_ms = t.elapsed().as_secs_f64() * 1000.0;
    check(
        &format!("scale: every member of the {n} group(s) monitors 0"),
        monitored,
        "",
    );
    let one: Vec<(&str, f64)> = members(&groups[0])
        .iter()
        .map(|(a, p)| (*a, run_member(&w.node3, &groups[0], a, "monitor", p).ms()))
        .collect();
    let per_minute: f64 = one
        .iter()
        .map(|(a, ms)| {
            let every = intervals
                .iter()
                .find(|(m, _)| m == a)
                .map_or(10.0, |(_, d)| d.as_secs_f64());
            ms * 60.0 / every
        })
        .sum();
    metric(
        &format!("n{n}_monitor_one_group_ms"),
        one.iter().map(|(_, ms)| ms).sum(),
        "ms",
    );
    metric(&format!("n{n}_monitor_all_groups_wall_ms"), all_ms, "ms");
    metric(
        &format!("n{n}_monitor_cpu_ms_per_minute_all_groups"),
        per_minute * n as f64,
        "ms",
    );

    // A client lock on each.
    let (holding, devs) = lock_each(w, groups);
    let with_lock = || devices_locked(&devs);
    let all_held = || with_lock() == devs.len();
    check(
        &format!("scale: the client holds a lock on each of the {n} export(s)"),
        holding && wait_for(Duration::from_secs(30), all_held).is_some(),
        "",
    );

    // The drain.
    let on_still = Loop::on(&w.client, still.mnt, &format!("still{n}"));
    let writer = MovedWriter::start(w, &groups[0], &format!("n{n}"));
    // Pacemaker's recurring monitor of the writer's server, which records
    // the connections its next start tickles.
    for (a, p) in members(&groups[0])
        .iter()
        .filter(|(a, _)| *a == "nfs-server")
    {
        let _ = run_member(&w.node3, &groups[0], a, "monitor", p);
    }
    std::thread::sleep(Duration::from_millis(500));
    let lockd = lockd_trace::start(Duration::from_millis(25));
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let moved = each(groups, limit, |g| {
        let ok = stop_on(&w.node3, g) && start_on(&w.node2, g);
        writer.started(g);
        ok
    });
    let serving = t.elapsed();
    writer.report(&format!("n{n}"));
    let back = moved
        .then(|| wait_for(Duration::from_secs(180), all_held))
        .flatten();
    let drain = back.map(|b| (serving + b).as_secs_f64() * 1000.0);
    drain_cpu(&format!("n{n}"), cpu0, n);
    metric(
        &format!("n{n}_drain_all_started_ms"),
        serving.as_secs_f64() * 1000.0,
        "ms",
    );
    metric(
        &format!("n{n}_drain_locks_back_ms"),
        drain.unwrap_or(f64::NAN),
        "ms",
    );
    check(
        &format!(
            "scale: drain of {n} group(s): every group serves on node2 and every lock is back"
        ),
        moved && back.is_some(),
        format!("{} of {n} devices with a lock", with_lock()),
    );
    // One run showed 7 of 8 in the detail just after all 8 were seen: a
    // lock lost after its reclaim, or a torn read of a lock table longer
    // than the page the kernel fills per read (entries move between the
    // reads while other clients lock). Three more reads, a second apart,
    // tell which; reported, for the issue that follows it up.
    let later: Vec<usize> = (0..3)
        .map(|_| {
            std::thread::sleep(Duration::from_secs(1));
            with_lock()
        })
        .collect();
    let table = std::fs::read_to_string("/proc/locks").map_or(0, |t| t.len());
    note(format!(
        "scale: drain of {n}: devices with a lock 1, 2 and 3 s later {later:?}; /proc/locks is {table} bytes"
    ));
    metric(
        &format!("n{n}_locks_held_3s_after"),
        later.last().copied().unwrap_or(0) as f64,
        "locks",
    );
    let (errors, max, d) = still_result(on_still, &format!("n{n}"));
    let samples = lockd.map(sys::Sampler::finish).unwrap_or_default();
    lockd_trace::report(&format!("n{n}"), &samples, d["slowest_at"].as_str(), max);
    check(
        &format!("scale: drain of {n}: the group that does not move saw no failed lock operation and no pause of 5 s or more"),
        errors == 0 && max < 5000.0,
        d.to_string(),
    );

    // Clean up: the client lets go, the groups stop on node2.
    for c in w.holders.drain(..) {
        super::scenarios::kill(c);
    }
    for g in groups {
        let _ = w.client.run(&["umount", "-l", g.mnt]);
    }
    let stopped = each(groups, limit, |g| stop_on(&w.node2, g));
    check(
        &format!("scale: the {n} group(s) stop on node2"),
        stopped,
        "",
    );
    drain
}

/// Stop the loop of the group that stays: its failed operations, its
/// slowest (also metric `{prefix}_still_group_max_ms`) and its summary.
pub(crate) fn still_result(on_still: Loop, prefix: &str) -> (u64, f64, serde_json::Value) {
    let d = on_still.finish();
    let errors = d["errors"].as_u64().unwrap_or(u64::MAX);
    let max = d["max_ms"].as_f64().unwrap_or(f64::NAN);
    metric(&format!("{prefix}_still_group_max_ms"), max, "ms");
    (errors, max, d)
}

/// A writer (fsync'd records) on one group through a drain: how long
/// after that group's start ended on the taking node (its address is the
/// last member up) the writer's longest wait ended.
struct MovedWriter<'a> {
    group: &'a Group,
    writer: std::sync::Mutex<Option<Loop>>,
    up: std::sync::Mutex<Option<std::time::SystemTime>>,
}

impl<'a> MovedWriter<'a> {
    /// Start writing to `g`, mounted on the client.
    fn start(w: &World, g: &'a Group, tag: &str) -> Self {
        MovedWriter {
            group: g,
            writer: std::sync::Mutex::new(Some(Loop::journal(&w.client, g.mnt, tag))),
            up: std::sync::Mutex::new(None),
        }
    }

    /// `g`'s start on the taking node has just ended.
    fn started(&self, g: &Group) {
        if g.id == self.group.id {
            if let Ok(mut up) = self.up.lock() {
                *up = Some(std::time::SystemTime::now());
            }
        }
    }

    /// Metrics `{prefix}_writer_after_address_ms` and `_stall_ms`.
    fn report(&self, prefix: &str) {
        let Some(l) = self.writer.lock().ok().and_then(|mut w| w.take()) else {
            return;
        };
        let d = l.finish();
        let up = self.up.lock().ok().and_then(|u| *u);
        let after = up.map_or(f64::NAN, |up| crate::timeline::stall_after(&d, up));
        note(format!(
            "scale: {prefix}: the writer on {} resumed {after:.0} ms after its group started on node2: {d}",
            self.group.id
        ));
        metric(&format!("{prefix}_writer_after_address_ms"), after, "ms");
        metric(
            &format!("{prefix}_writer_stall_ms"),
            d["max_ms"].as_f64().unwrap_or(f64::NAN),
            "ms",
        );
    }
}

/// The client mounts each group's export and holds a lock on it: whether
/// every lock was taken, and the groups' devices.
fn lock_each(w: &mut World, groups: &[Group]) -> (bool, Vec<(u32, u32)>) {
    for g in groups {
        w.mount(g);
    }
    let holding = groups.iter().all(|g| w.hold(&format!("{}/lock", g.mnt)));
    (holding, groups.iter().map(|g| rdev(g.dev)).collect())
}

/// How many of `devs` have a lock, from one read of /proc/locks.
pub(crate) fn devices_locked(devs: &[(u32, u32)]) -> usize {
    let m = sys::locks_by_dev();
    devs.iter()
        .filter(|d| m.get(d).copied().unwrap_or(0) >= 1)
        .count()
}

/// What a server's nfsd threads cost: 8 servers started with 4 and 8
/// threads each, the memory the node lost per server each time.
fn threads(w: &World, groups: &[Group]) {
    let limit = action_limit();
    for t in ["4", "8"] {
        let mem0 = vservers::mem_available_kb();
        let started = each(groups, limit, |g| start_with(&w.node3, g, Some(t)));
        let per = mem0.saturating_sub(vservers::mem_available_kb()) as f64 / groups.len() as f64;
        metric(
            &format!("threads{t}_mem_available_drop_kb_per_server"),
            per,
            "kB",
        );
        let (n, pss) = groups
            .iter()
            .map(|g| vservers::server_kb(&w.node3, g, "smaps_rollup", "Pss:"))
            .fold((0, 0), |(p, r), (a, b)| (p + a, r + b));
        metric(
            &format!("threads{t}_daemons_pss_kb_per_server"),
            pss as f64 / groups.len() as f64,
            "kB",
        );
        let stopped = each(groups, limit, |g| stop_on(&w.node3, g));
        check(
            &format!(
                "scale: {} servers with {t} nfsd threads each start and stop",
                groups.len()
            ),
            started && stopped && n > 0,
            "",
        );
    }
}

/// The export table on a node-wide server as it grows: `n` exports added
/// one after another to node1's own server, by handoff's export and by
/// ClusterLabs' exportfs (each add runs exportfs(8), which rewrites the
/// node's whole table), the time of each add.
fn export_curve(w: &World, n: usize) {
    const EXPORTFS: &str = "/usr/lib/ocf/resource.d/heartbeat/exportfs";
    let h = &w.node1;
    let dirs: Vec<String> = (0..n).map(|k| format!("/srv/e{k:02}")).collect();
    let root = format!("/proc/{}/root", h.pid);
    for d in &dirs {
        let _ = std::fs::create_dir_all(format!("{root}{d}"));
        h.ok(&["mount", "-t", "tmpfs", "-o", "size=1m", "curve", d]);
    }
    let params = |k: usize| -> Vec<(&str, String)> {
        vec![
            ("clientspec", "192.0.2.0/24".into()),
            ("directory", dirs[k].clone()),
            ("fsid", format!("{}", 400 + k)),
            ("options", "rw,sync,no_root_squash,no_subtree_check".into()),
        ]
    };
    for (who, program) in [
        ("handoff", "/handoff/bin/export"),
        ("clusterlabs", EXPORTFS),
    ] {
        let act = |k: usize, action: &str| {
            let p = params(k);
            let p: Vec<(&str, &str)> = p.iter().map(|(a, b)| (*a, b.as_str())).collect();
            super::scenarios::agent_at(h, program, action, &format!("curve_{who}_{k}"), &p)
        };
        let mut ok = true;
        let mut total = 0.0;
        for k in 0..n {
            let d = act(k, "start");
            ok &= d.code == 0;
            total += d.ms();
            if [1, 8, 16, 32].contains(&(k + 1)) {
                metric(&format!("curve_{who}_add_{}_ms", k + 1), d.ms(), "ms");
            }
        }
        metric(&format!("curve_{who}_{n}_adds_total_ms"), total, "ms");
        let table = h.run(&["exportfs", "-v"]).stdout;
        let listed = dirs.iter().filter(|d| table.contains(d.as_str())).count();
        for k in (0..n).rev() {
            ok &= act(k, "stop").code == 0;
        }
        check(
            &format!("scale: {who} adds {n} exports to the node's own server, one after another, and removes them"),
            ok && listed == n,
            format!("{listed} of {n} in the table"),
        );
    }
    for d in &dirs {
        let _ = h.run(&["umount", d]);
    }
}

/// Where Debian's resource-agents keeps the ClusterLabs agents.
const HEARTBEAT: &str = "/usr/lib/ocf/resource.d/heartbeat";

/// The ClusterLabs group of a node-wide export, in start order: Filesystem,
/// exportfs (its default unlock_on_stop releases the locks, so that the
/// unmount can go) and IPaddr2, with the parameters handoff's fs, export
/// and vip take under the same names.
fn clusterlabs_members(g: &Group) -> Vec<(&'static str, Params)> {
    vec![
        ("Filesystem", fs_params(g)),
        ("exportfs", export_params(g)),
        ("IPaddr2", vip_params(g)),
    ]
}

/// One ClusterLabs agent's `action` for group `g` on `h`.
fn clusterlabs_act(h: &Host, g: &Group, agent: &str, action: &str, p: &Params) -> sys::Done {
    let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
    agent_at(
        h,
        &format!("{HEARTBEAT}/{agent}"),
        action,
        &format!("{}_{}", g.id, agent.to_lowercase()),
        &p,
    )
}

/// Start (in order) or stop (in reverse) the ClusterLabs group on `h`,
/// up to the first failure, as Pacemaker does; false (and a note) then.
fn clusterlabs_group(h: &Host, g: &Group, action: &str) -> bool {
    let mut list = clusterlabs_members(g);
    if action == "stop" {
        list.reverse();
    }
    for (agent, p) in &list {
        let d = clusterlabs_act(h, g, agent, action, p);
        if d.code != 0 {
            note(format!(
                "scale: ClusterLabs {agent} {action} of {} on {}: {} {} {}",
                g.id,
                h.name,
                d.code,
                d.reason(),
                d.stderr.lines().last().unwrap_or_default()
            ));
            return false;
        }
    }
    true
}

/// The drain of `groups` with the ClusterLabs agents around the nodes' own
/// servers (node3's to node2's), at the same node-action-limit as
/// handoff's: the time until every group serves on node2, its locks
/// afterwards (nothing tells the clients to reclaim, and node2's server is
/// not in grace: they are reported, not expected), and the group that
/// stays meanwhile. Returns the drain's time in ms.
fn clusterlabs_round(w: &mut World, groups: &[Group], still: &Group) -> Option<f64> {
    let n = groups.len();
    let limit = action_limit();
    let t = Instant::now();
    let started = each(groups, limit, |g| clusterlabs_group(&w.node3, g, "start"));
    metric(
        &format!("clusterlabs_n{n}_start_all_ms"),
        t.elapsed().as_secs_f64() * 1000.0,
        "ms",
    );
    if !check(
        &format!("scale: {n} ClusterLabs group(s) start on node3's own server"),
        started,
        "",
    ) {
        each(groups, limit, |g| clusterlabs_group(&w.node3, g, "stop"));
        return None;
    }
    let one: f64 = clusterlabs_members(&groups[0])
        .iter()
        .map(|(a, p)| clusterlabs_act(&w.node3, &groups[0], a, "monitor", p).ms())
        .sum();
    metric(&format!("clusterlabs_n{n}_monitor_one_group_ms"), one, "ms");
    let (holding, devs) = lock_each(w, groups);
    let with_lock = || devices_locked(&devs);
    check(
        &format!("scale: the client holds a lock on each of the {n} ClusterLabs export(s)"),
        holding && wait_for(Duration::from_secs(30), || with_lock() == n).is_some(),
        format!("{} of {n} devices with a lock", with_lock()),
    );
    let on_still = Loop::on(&w.client, still.mnt, &format!("clstill{n}"));
    let writer = MovedWriter::start(w, &groups[0], &format!("cl{n}"));
    std::thread::sleep(Duration::from_millis(500));
    let lockd = lockd_trace::start(Duration::from_millis(25));
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let moved = each(groups, limit, |g| {
        let ok = clusterlabs_group(&w.node3, g, "stop") && clusterlabs_group(&w.node2, g, "start");
        writer.started(g);
        ok
    });
    let serving = t.elapsed().as_secs_f64() * 1000.0;
    drain_cpu(&format!("clusterlabs_n{n}"), cpu0, n);
    writer.report(&format!("clusterlabs_n{n}"));
    metric(
        &format!("clusterlabs_n{n}_drain_all_started_ms"),
        serving,
        "ms",
    );
    // Every export answers its client from node2: a read through each
    // mount, its file handle now served by node2's nfsd.
    let answering = groups
        .iter()
        .filter(|g| {
            w.client
                .run_for(
                    &["stat", "-c", "%s", &format!("{}/lock", g.mnt)],
                    Duration::from_secs(60),
                )
                .code
                == 0
        })
        .count();
    check(
        &format!("scale: ClusterLabs drain of {n} group(s): every group serves on node2"),
        moved && answering == n,
        format!("{answering} of {n} answer"),
    );
    // Past a client's reconnect back-off: whatever would come back has.
    std::thread::sleep(Duration::from_secs(10));
    let kept = with_lock();
    note(format!(
        "scale: ClusterLabs drain of {n}: {kept} of {n} locks on node2 afterwards"
    ));
    metric(
        &format!("clusterlabs_n{n}_locks_back"),
        kept as f64,
        "locks",
    );
    let (errors, max, d) = still_result(on_still, &format!("clusterlabs_n{n}"));
    let samples = lockd.map(sys::Sampler::finish).unwrap_or_default();
    lockd_trace::report(
        &format!("clusterlabs_n{n}"),
        &samples,
        d["slowest_at"].as_str(),
        max,
    );
    check(
        &format!("scale: ClusterLabs drain of {n}: the group that does not move saw no failed lock operation"),
        errors == 0,
        d.to_string(),
    );
    for c in w.holders.drain(..) {
        super::scenarios::kill(c);
    }
    for g in groups {
        let _ = w.client.run(&["umount", "-l", g.mnt]);
    }
    let stopped = each(groups, limit, |g| clusterlabs_group(&w.node2, g, "stop"));
    check(
        &format!("scale: the {n} ClusterLabs group(s) stop on node2"),
        stopped,
        "",
    );
    moved.then_some(serving)
}

/// The CPU time every CPU spent busy and in all since boot, in seconds
/// (/proc/stat's first line; its unit, USER_HZ, is 100 a second on
/// Linux whatever the kernel's tick).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let all: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (all.saturating_sub(idle) as f64 / 100.0, all as f64 / 100.0)
}

/// Whether a drain of `n` groups since `cpu0` ([`cpu_seconds`]) was bound
/// by the CPUs: metrics `{prefix}_drain_cpu_busy_pct` (how busy they
/// were) and `_drain_cpu_s_per_group` (the client's loops included).
fn drain_cpu(prefix: &str, cpu0: (f64, f64), n: usize) {
    let cpu1 = cpu_seconds();
    let (busy, all) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1);
    metric(
        &format!("{prefix}_drain_cpu_busy_pct"),
        100.0 * busy / all.max(0.01),
        "%",
    );
    metric(
        &format!("{prefix}_drain_cpu_s_per_group"),
        busy / n.max(1) as f64,
        "s",
    );
}

/// /proc/meminfo, field name to kB.
fn meminfo() -> HashMap<String, i64> {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_owned(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// The kernel's slab caches, name to kB in use (objects times their size).
fn slabs() -> HashMap<String, i64> {
    std::fs::read_to_string("/proc/slabinfo")
        .unwrap_or_default()
        .lines()
        .skip(2)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let objs: i64 = f.get(2)?.parse().ok()?;
            let size: i64 = f.get(3)?.parse().ok()?;
            Some((f.first()?.to_string(), objs * size / 1024))
        })
        .collect()
}

/// Where the memory of `n` servers went since `info0` and `slab0`: per
/// server, the meminfo fields a server's kernel state and daemons grow,
/// and the slab caches that grew most (a note), to show what a server
/// costs beyond its daemons and threads.
fn memory_breakdown(n: usize, info0: &HashMap<String, i64>, slab0: &HashMap<String, i64>) {
    let info = meminfo();
    for field in [
        "AnonPages",
        "Shmem",
        "Slab",
        "SUnreclaim",
        "KernelStack",
        "PageTables",
        "Percpu",
        "VmallocUsed",
    ] {
        let grew = info.get(field).copied().unwrap_or(0) - info0.get(field).copied().unwrap_or(0);
        metric(
            &format!("n{n}_{}_kb_per_server", field.to_lowercase()),
            grew as f64 / n as f64,
            "kB",
        );
    }
    let mut grown: Vec<(String, i64)> = slabs()
        .into_iter()
        .map(|(k, v)| {
            let before = slab0.get(&k).copied().unwrap_or(0);
            (k, v - before)
        })
        .filter(|(_, d)| *d > 0)
        .collect();
    grown.sort_by_key(|(_, d)| -d);
    let top: Vec<String> = grown
        .iter()
        .take(8)
        .map(|(k, d)| format!("{k} {:.0} kB", *d as f64 / n as f64))
        .collect();
    note(format!(
        "scale: {n} server(s), slab growth per server: {}",
        top.join(", ")
    ));
}
