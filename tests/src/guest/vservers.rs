//! `vservers`: virtual NFS servers (ocf:handoff:nfs-server), one per export
//! group. node1 runs servers VA and VB, node2 runs VC; a client mounts all
//! three through their virtual IPs and holds locks on each. VA fails over
//! to node2 while the client keeps taking and releasing locks on VB and
//! VC: VA's client reclaims its locks within VA's own grace period and
//! reads back its data; VB and VC see no failure and no delay.
//!
//! The servers' names (nfs-va...) are in no /etc/hosts of the guest: each
//! server resolves its own name for sm-notify.

use std::time::{Duration, Instant};

use super::report::{check, metric, note};
use super::scenarios::{
    all_ok, export_params, fs_params, nodewide_members, run_member, start_members, stop_members,
    total_ms, vip_params, Group, Loop, Members, World, CLIENT_LIMIT,
};
use super::sys::{self, locks_on, rdev, wait_for};
use super::topo::Host;

const VA: Group = Group {
    id: "va",
    dev: "/dev/vda",
    dir: "/srv/va",
    vip: "192.0.2.110",
    name: "nfs-va",
    fsid: "11",
    mnt: "/mnt/va",
};
const VB: Group = Group {
    id: "vb",
    dev: "/dev/vdb",
    dir: "/srv/vb",
    vip: "192.0.2.111",
    name: "nfs-vb",
    fsid: "12",
    mnt: "/mnt/vb",
};
const VC: Group = Group {
    id: "vc",
    dev: "/dev/vdc",
    dir: "/srv/vc",
    vip: "192.0.2.112",
    name: "nfs-vc",
    fsid: "13",
    mnt: "/mnt/vc",
};

/// The grace period of each virtual server, in seconds.
const GRACE: &str = "20";

/// A virtual-server group's members in start order: fs, nfs-server,
/// export (inside the server), vip (inside the server).
fn members(g: &Group) -> Members {
    let server = vec![
        ("name", g.name.into()),
        ("directory", g.dir.into()),
        ("ip", g.vip.into()),
        ("nic", "eth0".into()),
        ("grace_time", GRACE.into()),
        ("lease_time", GRACE.into()),
        ("threads", "4".into()),
    ];
    let mut export = export_params(g);
    export.push(("nfs_server", g.name.into()));
    let mut vip = vip_params(g);
    vip.push(("network_namespace", g.name.into()));
    vec![
        ("fs", fs_params(g)),
        ("nfs-server", server),
        ("export", export),
        ("vip", vip),
    ]
}

fn start(h: &Host, g: &Group, what: &str) -> bool {
    let done = start_members(h, g, members(g));
    let (ok, detail) = all_ok(&done);
    metric(
        &format!("{}_start_{}_ms", g.id, h.name),
        total_ms(&done),
        "ms",
    );
    check(
        &format!("vservers: {what}: group {} starts on {}", g.id, h.name),
        ok,
        detail,
    )
}

/// Whether the server `g` on `h` is in grace: lockd's or NFSv4's grace
/// (either holds new locks back), read from inside the server.
fn in_grace(h: &Host, g: &Group) -> bool {
    let net = format!("--net=/run/netns/{}", g.name);
    let mnt = format!("--mount=/run/handoff/nfs-server/{}/mnt", g.name);
    ["/proc/fs/lockd/nlm_end_grace", "/proc/fs/nfsd/v4_end_grace"]
        .iter()
        .any(|f| {
            let d = h.run(&[
                "nsenter",
                &net,
                &mnt,
                "/handoff/bin/handoff-vmtest",
                "--read",
                f,
            ]);
            assert!(d.code == 0, "reading {}'s {f}: {}", g.name, d.stderr);
            d.stdout.trim() == "N"
        })
}

/// A server's network namespace file, as its node sees it.
fn netns_path(h: &Host, g: &Group) -> String {
    format!("/proc/{}/root/run/netns/{}", h.pid, g.name)
}

/// Resident memory (kB) of the processes in a server's network namespace.
fn server_rss_kb(h: &Host, g: &Group) -> (usize, u64) {
    let netns = std::fs::metadata(netns_path(h, g));
    let Ok(netns) = netns else { return (0, 0) };
    use std::os::unix::fs::MetadataExt;
    let mut n = 0;
    let mut kb = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let same =
            std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == netns.ino());
        if !same {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
        if let Some(rss) = rss {
            n += 1;
            kb += rss;
        }
    }
    (n, kb)
}

fn mem_available_kb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn kernel_threads(name: &str) -> usize {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .count()
}

/// Whether nothing holds the device any more (an exclusive open succeeds
/// only when no mount, in any namespace, has it).
fn device_free(dev: &str) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(dev)
        .is_ok()
}

fn summary(name: &str, d: &serde_json::Value) -> (u64, f64) {
    note(format!("{name} lock/unlock during the failover: {d}"));
    let errors = d["errors"].as_u64().unwrap_or(u64::MAX);
    let max = d["max_ms"].as_f64().unwrap_or(f64::NAN);
    metric(
        &format!("{name}_during_count"),
        d["count"].as_f64().unwrap_or(f64::NAN),
        "ops",
    );
    metric(&format!("{name}_during_errors"), errors as f64, "ops");
    metric(&format!("{name}_during_max_ms"), max, "ms");
    metric(
        &format!("{name}_during_median_ms"),
        d["median_ms"].as_f64().unwrap_or(f64::NAN),
        "ms",
    );
    (errors, max)
}

/// Kernel stacks of the processes that wait in the kernel, for a log.
fn stacks() -> String {
    let mut out = String::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let p = e.path();
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let interesting = state == Some('D')
            || [
                "nfs-server",
                "lockd",
                "nfsd",
                "rpcbind",
                "rpc.statd",
                "rpc.mountd",
            ]
            .contains(&comm.trim());
        if interesting {
            let stack = std::fs::read_to_string(p.join("stack")).unwrap_or_default();
            out.push_str(&format!(
                "{} {} {:?}\n{stack}\n",
                p.display(),
                comm.trim(),
                state
            ));
        }
    }
    out.push_str(&super::scenarios::kmsg());
    out
}

/// The scenario.
pub fn run(w: &mut World) {
    sys::ok(&["mkfs.ext4", "-q", "-F", "-L", "export_vc", VC.dev]);
    for g in [&VA, &VB, &VC] {
        let _ = std::fs::create_dir_all(g.dir);
        let _ = std::fs::create_dir_all(g.mnt);
    }
    let (a_dev, b_dev, c_dev) = (rdev(VA.dev), rdev(VB.dev), rdev(VC.dev));

    let mem_before = mem_available_kb();
    let nfsd_before = kernel_threads("nfsd");
    let ok = start(&w.node1, &VA, "setup")
        & start(&w.node1, &VB, "setup")
        & start(&w.node2, &VC, "setup");
    assert!(ok, "the virtual servers did not start");
    let (procs, rss) = server_rss_kb(&w.node2, &VC);
    metric("server_processes", procs as f64, "processes");
    metric("server_daemons_rss_kb", rss as f64, "kB");
    metric(
        "servers_mem_available_drop_kb_per_server",
        mem_before.saturating_sub(mem_available_kb()) as f64 / 3.0,
        "kB",
    );
    metric(
        "server_nfsd_threads",
        (kernel_threads("nfsd") - nfsd_before) as f64 / 3.0,
        "threads",
    );
    for (h, g) in [(&w.node1, &VA), (&w.node1, &VB), (&w.node2, &VC)] {
        for (name, params) in members(g) {
            let m = run_member(h, g, name, "monitor", &params);
            check(
                &format!("vservers: {name} of {} monitors 0 on {}", g.id, h.name),
                m.code == 0,
                m.reason(),
            );
        }
    }
    check(
        "vservers: node1's own network namespace has none of the servers' addresses",
        !w.node1.run(&["ip", "-o", "addr"]).stdout.contains(VA.vip),
        "",
    );
    // Every first start is a grace period too (each its own).
    let settled = wait_for(Duration::from_secs(60), || {
        !in_grace(&w.node1, &VA) && !in_grace(&w.node1, &VB) && !in_grace(&w.node2, &VC)
    });
    check(
        "vservers: the first grace periods end",
        settled.is_some(),
        "",
    );

    for g in [&VA, &VB, &VC] {
        w.mount(g);
    }
    let wrote = w.data("write", &VA, "7");
    check(
        "vservers: the client wrote 1 MiB to VA",
        wrote.code == 0,
        wrote.stdout.trim(),
    );
    let held = [
        format!("{}/f1", VA.mnt),
        format!("{}/f2", VA.mnt),
        format!("{}/f1", VB.mnt),
        format!("{}/f1", VC.mnt),
    ]
    .iter()
    .all(|p| w.hold(p));
    let seen = wait_for(Duration::from_secs(10), || {
        locks_on(a_dev) == 2 && locks_on(b_dev) == 1 && locks_on(c_dev) == 1
    });
    check(
        "vservers: the client holds 2 locks on VA, 1 on VB, 1 on VC",
        held && seen.is_some(),
        format!(
            "{} {} {}",
            locks_on(a_dev),
            locks_on(b_dev),
            locks_on(c_dev)
        ),
    );
    let records = std::fs::read_dir(format!(
        "/proc/{}/root{}/.handoff-nfs/sm",
        w.node1.pid, VA.dir
    ))
    .map(|d| d.count())
    .unwrap_or(0);
    check(
        "vservers: VA's statd records its client on VA's own filesystem",
        records == 1,
        format!("{records} record(s)"),
    );

    // Fail VA over while the client keeps locking on VB (same node) and VC
    // (the taking node).
    let on_b = Loop::on(&w.client, VB.mnt, "vb");
    let on_c = Loop::on(&w.client, VC.mnt, "vc");
    std::thread::sleep(Duration::from_millis(500));
    let sampler = sys::Sampler::start();
    let t0 = Instant::now();
    let release = std::thread::scope(|scope| {
        let node1 = &w.node1;
        let job = scope.spawn(move || stop_members(node1, &VA, members(&VA)));
        if wait_for(Duration::from_secs(8), || job.is_finished()).is_none() {
            note(format!("VA's stop is slow; kernel stacks:\n{}", stacks()));
        }
        job.join().unwrap_or_default()
    });
    let (ok, detail) = all_ok(&release);
    if !check(
        "vservers: VA stops on node1 (vip, export, nfs-server, fs)",
        ok,
        &detail,
    ) {
        // Nothing after this would mean anything.
        let _ = (on_b.finish(), on_c.finish());
        panic!("VA was not released on node1");
    }
    metric("va_release_ms", total_ms(&release), "ms");
    check(
        "vservers: VA's locks are gone from node1",
        locks_on(a_dev) == 0,
        format!("{} left", locks_on(a_dev)),
    );
    check(
        "vservers: VB's and VC's locks are still held",
        locks_on(b_dev) >= 1 && locks_on(c_dev) >= 1,
        format!("{} on VB, {} on VC", locks_on(b_dev), locks_on(c_dev)),
    );
    check(
        "vservers: nothing on node1 holds VA's disk any more",
        !w.node1.is_mounted(VA.dir)
            && device_free(VA.dev)
            && !std::path::Path::new(&netns_path(&w.node1, &VA)).exists(),
        "",
    );
    let takeover = start_members(&w.node2, &VA, members(&VA));
    let taken = Instant::now();
    let (ok, detail) = all_ok(&takeover);
    if !check("vservers: VA starts on node2 beside VC", ok, &detail) {
        let _ = (on_b.finish(), on_c.finish());
        panic!("VA did not start on node2");
    }
    metric("va_takeover_ms", total_ms(&takeover), "ms");
    let reclaimed = wait_for(Duration::from_secs(60), || locks_on(a_dev) == 2);
    let grace_left = in_grace(&w.node2, &VA);
    check(
        "vservers: the client reclaims its 2 locks on VA at node2, within VA's grace",
        reclaimed.is_some() && grace_left,
        format!(
            "{} locks on VA; in grace: {grace_left}; node2 log: {}",
            locks_on(a_dev),
            w.node2
                .read("/run/agents.log")
                .lines()
                .filter(|l| l.contains("nfs-server"))
                .collect::<Vec<_>>()
                .join(" | ")
        ),
    );
    w.after_takeover("vservers", "va_", &VA, "7", (t0, taken, reclaimed));
    std::thread::sleep(Duration::from_millis(500));
    let (b_errors, b_max) = summary("vb", &on_b.finish());
    let (c_errors, c_max) = summary("vc", &on_c.finish());
    let waits = sampler.finish();
    if b_max >= 1000.0 || c_max >= 1000.0 {
        note(format!(
            "tasks in D state during the move:\n{}",
            waits.join("\n")
        ));
    }
    check(
        "vservers: VB's and VC's clients saw no failed lock operation",
        b_errors == 0 && c_errors == 0,
        format!("{b_errors} on VB, {c_errors} on VC"),
    );
    // A grace period would hold new locks back for 20 s. Before
    // nfs-server woke lockd after stopping nfsd, VB and VC sometimes paused
    // 1.5 to 6 s here (see vserver::lockd).
    check(
        "vservers: VB's and VC's clients were never held back (no pause of 5 s or more)",
        b_max < 5000.0 && c_max < 5000.0,
        format!("VB {b_max:.1} ms, VC {c_max:.1} ms"),
    );
    for (name, params) in members(&VA) {
        let m = run_member(&w.node2, &VA, name, "monitor", &params);
        check(
            &format!("vservers: {name} of VA monitors 0 on node2"),
            m.code == 0,
            m.reason(),
        );
    }
    let ended = wait_for(Duration::from_secs(60), || !in_grace(&w.node2, &VA));
    let probe = w.client.run_for(
        &[
            "/handoff/bin/handoff-vmtest",
            "--lock",
            "try",
            &format!("{}/after-grace", VA.mnt),
        ],
        CLIENT_LIMIT,
    );
    check(
        "vservers: after VA's grace a new lock on VA is granted at once",
        ended.is_some() && probe.code == 0 && probe.ms() < 5000.0,
        format!("{} in {:.0} ms", probe.stdout.trim(), probe.ms()),
    );
}

/// `nodewide`: the same move with one NFS server per node (groups fs,
/// nlm-locks, export, vip), for comparison. node1 serves NA, node2 serves
/// NC, each from the node's own server; the client locks on both and keeps
/// locking on NC. NA leaves node1, then comes to node2, which can give NA's
/// clients a grace period only by restarting its server: nlm-locks refuses
/// that while NC holds locks, so the restart is done by hand, as the classic
/// recipe does, and NC pays for it.
pub fn nodewide(w: &mut World) {
    const NA: Group = Group {
        id: "na",
        dev: "/dev/vdd",
        dir: "/srv/na",
        vip: "192.0.2.120",
        name: "nfs-na",
        fsid: "21",
        mnt: "/mnt/na",
    };
    const NC: Group = Group {
        id: "nc",
        dev: "/dev/vde",
        dir: "/srv/nc",
        vip: "192.0.2.122",
        name: "nfs-nc",
        fsid: "23",
        mnt: "/mnt/nc",
    };
    for (g, label) in [(&NA, "export_na"), (&NC, "export_nc")] {
        sys::ok(&["mkfs.ext4", "-q", "-F", "-L", label, g.dev]);
        let _ = std::fs::create_dir_all(g.dir);
        let _ = std::fs::create_dir_all(g.mnt);
    }
    let (a_dev, c_dev) = (rdev(NA.dev), rdev(NC.dev));
    let group = |g: &Group, grace: &str| nodewide_members(g, grace, "procfs");
    for (h, g) in [(&w.node1, &NA), (&w.node2, &NC)] {
        let (ok, detail) = all_ok(&start_members(h, g, group(g, "existing")));
        assert!(
            check(
                &format!("nodewide: {} starts on {}", g.id, h.name),
                ok,
                detail
            ),
            "{} did not start",
            g.id
        );
        w.mount(g);
    }
    let held = w.hold(&format!("{}/f1", NA.mnt)) && w.hold(&format!("{}/f1", NC.mnt));
    check(
        "nodewide: the client holds a lock on NA and one on NC",
        held && wait_for(Duration::from_secs(10), || {
            locks_on(a_dev) == 1 && locks_on(c_dev) == 1
        })
        .is_some(),
        format!("{} {}", locks_on(a_dev), locks_on(c_dev)),
    );
    let on_c = Loop::on(&w.client, NC.mnt, "nc");
    std::thread::sleep(Duration::from_millis(500));
    let (ok, detail) = all_ok(&stop_members(&w.node1, &NA, group(&NA, "existing")));
    check("nodewide: NA stops on node1", ok, detail);
    let refused = start_members(&w.node2, &NA, group(&NA, "restart"));
    let locks = refused.iter().find(|(a, _)| *a == "nlm-locks");
    check(
        "nodewide: nlm-locks refuses to restart node2's server while NC holds locks",
        locks.is_some_and(|(_, d)| d.code != 0 && d.reason().contains("would drop")),
        locks.map(|(_, d)| d.reason()).unwrap_or_default(),
    );
    // What is left: restart node2's server by hand for a fresh grace period.
    let t0 = Instant::now();
    w.node2.ok(&["rpc.nfsd", "0"]);
    w.node2.set_grace(20);
    w.node2.ok(&["rpc.nfsd", "8"]);
    let takeover = start_members(&w.node2, &NA, group(&NA, "existing"));
    let taken = Instant::now();
    let (ok, detail) = all_ok(&takeover);
    check("nodewide: NA starts on node2 after the restart", ok, detail);
    let reclaimed = wait_for(Duration::from_secs(60), || locks_on(a_dev) == 1);
    check(
        "nodewide: NA's client reclaims its lock on node2",
        reclaimed.is_some(),
        format!("{} on NA", locks_on(a_dev)),
    );
    if let Some(r) = reclaimed {
        metric(
            "nodewide_na_reclaim_after_takeover_ms",
            r.as_secs_f64() * 1000.0,
            "ms",
        );
    }
    metric(
        "nodewide_na_failover_from_restart_ms",
        (t0.elapsed() - taken.elapsed()).as_secs_f64() * 1000.0,
        "ms",
    );
    std::thread::sleep(Duration::from_secs(2));
    // Whether the restart dropped NC's lock (nothing would tell its
    // client): reported, not asserted; the classic scenario asserts it.
    let kept = locks_on(c_dev);
    note(format!(
        "nodewide: {kept} lock(s) on NC after node2's restart"
    ));
    metric("nodewide_nc_locks_after_restart", kept as f64, "locks");
    // NC's client waits out the grace period on its next lock.
    let _ = wait_for(Duration::from_secs(90), || {
        let d = w.node2.read("/proc/fs/nfsd/v4_end_grace");
        d.trim() == "Y" && !w.node2.in_grace()
    });
    std::thread::sleep(Duration::from_secs(1));
    let (errors, max) = summary("nc", &on_c.finish());
    metric("nodewide_nc_blocked_max_ms", max, "ms");
    check(
        "nodewide: NC's client is blocked for the grace period (> 10 s)",
        errors == 0 && max > 10_000.0,
        format!("{errors} errors, slowest {max:.0} ms"),
    );
}
