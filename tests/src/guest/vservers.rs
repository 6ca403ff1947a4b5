//! `vservers`: virtual NFS servers (ocf:handoff:nfs-server), one per export
//! group. node3, which runs no NFS server of its own (the layout for
//! exports whose clients lock), runs servers VA and VB; node2 runs VC; a
//! client mounts all three through their virtual IPs and holds locks on
//! each. VA fails over to node2 while the client keeps taking and
//! releasing locks on VB and VC, and its group's export and vip start
//! longer than its grace_time after its server (as when Pacemaker is busy
//! elsewhere): VA's client still reclaims its locks, because the window
//! counts from its notification, and the grace ends as soon as they are
//! back; it reads back its data; VB and VC see no failure and no delay,
//! and node3's lockd is woken through VB's server.
//!
//! The servers' names (nfs-va...) are in no /etc/hosts of the guest: each
//! server resolves its own name for sm-notify.

use std::time::{Duration, Instant, SystemTime};

use super::report::{check, metric, note, plot};
use super::scenarios::{
    all_of_ok, all_ok, export_params, fs_params, nodewide_members, run_member, start_members,
    start_members_paused, stop_members, total_ms, vip_params, Group, Loop, Members, World,
    CLIENT_LIMIT,
};
use super::sys::{self, delegations_on, locks_on, posix_locks_on, rdev, wait_for, Done};
use super::topo::Host;
use crate::plot::Plot;
use crate::timeline;

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
pub(crate) fn members(g: &Group) -> Members {
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

/// A file as seen from inside the server `g` on `h` (its proc files
/// answer for its namespaces); None when it cannot be read.
fn read_in_server(h: &Host, g: &Group, file: &str) -> Option<String> {
    let net = format!("--net=/run/netns/{}", g.name);
    let mnt = format!("--mount=/run/handoff/nfs-server/{}/mnt", g.name);
    let d = h.run(&[
        "nsenter",
        &net,
        &mnt,
        "/handoff/bin/handoff-vmtest",
        "--read",
        file,
    ]);
    (d.code == 0).then_some(d.stdout)
}

/// Whether the server `g` on `h` is in grace: lockd's or NFSv4's grace
/// (either holds new locks back), read from inside the server.
fn in_grace(h: &Host, g: &Group) -> bool {
    ["/proc/fs/lockd/nlm_end_grace", "/proc/fs/nfsd/v4_end_grace"]
        .iter()
        .any(|f| {
            let text = read_in_server(h, g, f);
            assert!(text.is_some(), "cannot read {}'s {f}", g.name);
            text.is_some_and(|t| t.starts_with('N'))
        })
}

/// From a new client host (name, address), mounting `g` over NFSv4.2: ask
/// for a lock on `file` without waiting (GRANTED or REFUSED).
fn probe_from_another_client((name, addr): (&str, &str), g: &Group, file: &str) -> Done {
    let other = Host::new(name, addr);
    other.start_nfs_client();
    let at = World::mount_v4(&other, g);
    let probe = other.run_for(
        &[
            "/handoff/bin/handoff-vmtest",
            "--lock",
            "probe",
            &format!("{at}/{file}"),
        ],
        CLIENT_LIMIT,
    );
    let _ = other.run(&["umount", "-l", &at]);
    probe
}

/// What the server holds for an NFSv4 client on `dev`, besides the `nlm`
/// locks of its NFSv3 clients: its byte-range locks and its delegations.
fn v4_state_on(dev: (u32, u32), nlm: usize) -> usize {
    delegations_on(dev) + posix_locks_on(dev).saturating_sub(nlm)
}

/// lockd's and NFSv4's end_grace files of `g` on `h`, and its helper's
/// progress, for a log.
fn grace_files(h: &Host, g: &Group) -> String {
    [
        "/proc/fs/lockd/nlm_end_grace",
        "/proc/fs/nfsd/v4_end_grace",
        "/run/handoff/reclaim",
    ]
    .iter()
    .map(|f| {
        let text = read_in_server(h, g, f).unwrap_or_default();
        let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        format!("{f}={text}")
    })
    .collect::<Vec<_>>()
    .join(" ")
}

/// A server's network namespace file, as its node sees it.
fn netns_path(h: &Host, g: &Group) -> String {
    format!("/proc/{}/root/run/netns/{}", h.pid, g.name)
}

/// The processes in a server's network namespace, and the sum of one
/// `field` (kB) of their /proc/PID/`file`: VmRSS of status, Pss of
/// smaps_rollup (shared pages split between their users).
pub(crate) fn server_kb(h: &Host, g: &Group, file: &str, field: &str) -> (usize, u64) {
    let mut n = 0;
    let mut kb = 0;
    for pid in server_pids(h, g) {
        let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
        if let Some(v) = value {
            n += 1;
            kb += v;
        }
    }
    (n, kb)
}

/// The processes in a server's network namespace.
fn server_pids(h: &Host, g: &Group) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(netns) = std::fs::metadata(netns_path(h, g)) else {
        return Vec::new();
    };
    sys::pids()
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == netns.ino())
        })
        .collect()
}

/// The nice value of each process named `comm` in a server.
pub(crate) fn server_nice(h: &Host, g: &Group, comm: &str) -> Vec<i32> {
    server_pids(h, g)
        .into_iter()
        .filter(|&pid| sys::comm(pid).as_deref() == Some(comm))
        .filter_map(|pid| sys::stat_field(pid, 16)?.parse().ok())
        .collect()
}

pub(crate) fn mem_available_kb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn kernel_threads(name: &str) -> usize {
    sys::pids_named(name).len()
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
    start_servers(w);
    hold_v3(w);
    let v4 = hold_v4(w);
    // Fail VA over while the client keeps locking on VB (same node) and VC
    // (the taking node).
    let others = Others::start(w, &v4);
    let t0 = Instant::now();
    if !release_va(w) {
        others.abandon();
        panic!("VA was not released on node3");
    }
    let Some((taken, reclaimed, ended)) = take_va_over(w) else {
        others.abandon();
        panic!("VA did not start on node2");
    };
    w.after_takeover("vservers", "va_", &VA, "7", (t0, taken, reclaimed));
    after_move(w, &v4[0]);
    std::thread::sleep(Duration::from_millis(500));
    others.check(w);
    va_serves_on_node2(w, ended.is_some());
    release_order(w, &v4[1]);
}

/// The order of a release, measured: VB moves to node2 and back twice, a
/// writer on VB over NFSv3 and NFSv4.2 each time, stopped on the releasing
/// node in one of three orders: its export first (the clients still reach
/// the server, which no longer exports it), its server first (they see
/// the FIN while the address is still here, and reconnect to a node that
/// no longer listens), or its address first, the group's order (they see
/// nothing, and the taking node tickles them). How long after VB's
/// address answered each writer resumed, and what it saw fail; only the
/// group's order must fail nothing.
fn release_order(w: &World, vb4: &str) {
    let group = ["vip", "export", "nfs-server", "fs"];
    let moves = [
        (
            "export_first",
            &w.node3,
            &w.node2,
            ["export", "nfs-server", "vip", "fs"],
        ),
        (
            "server_first",
            &w.node2,
            &w.node3,
            ["nfs-server", "export", "vip", "fs"],
        ),
        ("vip_first", &w.node3, &w.node2, group),
        ("vip_first_back", &w.node2, &w.node3, group),
    ];
    for (order, from, to, stops) in moves {
        let group_order = stops == group;
        let writers = [
            (
                "v3",
                Loop::journal(&w.client, VB.mnt, &format!("vb-{order}")),
            ),
            (
                "v42",
                Loop::journal(&w.client, vb4, &format!("vb4-{order}")),
            ),
        ];
        std::thread::sleep(Duration::from_secs(1));
        // No monitor since the writers connected: what the taking node
        // tickles is what the stop recorded (in the group's order, what
        // vip noted as it removed the address).
        let list = members(&VB);
        let since = SystemTime::now();
        // stop_members stops a list in reverse: give it `stops` reversed.
        let reversed: Members = stops
            .iter()
            .rev()
            .filter_map(|name| list.iter().find(|(n, _)| n == name).cloned())
            .collect();
        let (ok, detail) = all_ok(&stop_members(from, &VB, reversed));
        let (ok, detail) = if ok {
            all_ok(&start_members(to, &VB, members(&VB)))
        } else {
            (false, detail)
        };
        check(
            &format!("vservers: VB moves {} to {} ({order})", from.name, to.name),
            ok,
            detail,
        );
        std::thread::sleep(Duration::from_secs(1));
        let events = timeline::events_in(
            &[
                (from.name.as_str(), from.read("/run/agents.log")),
                (to.name.as_str(), to.read("/run/agents.log")),
            ],
            since,
        );
        let up = timeline::first(&events, &to.name, "(vb_vip)", "start succeeded");
        if group_order {
            let noted = timeline::first(&events, &from.name, "(vb_vip)", "noted ");
            check(
                &format!(
                    "vservers: VB's vip on {} noted its clients' connections as it left ({order})",
                    from.name
                ),
                noted.is_some(),
                "no 'noted N client connection(s)' from vb_vip's stop",
            );
        }
        for (v, l) in writers {
            let d = l.finish();
            let after = up.map_or(f64::NAN, |up| timeline::stall_after(&d, up));
            let errors = d["errors"].as_u64().unwrap_or(u64::MAX);
            metric(&format!("order_{order}_{v}_after_address_ms"), after, "ms");
            metric(
                &format!("order_{order}_{v}_failed_writes"),
                errors as f64,
                "writes",
            );
            check(
                &format!(
                    "vservers: VB's {v} writer ({order}) resumed{}",
                    if group_order {
                        " and failed no write"
                    } else {
                        ""
                    }
                ),
                after.is_finite() && (errors == 0 || !group_order),
                format!("{after:.0} ms after VB's address; {d}"),
            );
        }
    }
}

/// The three virtual servers start (VA and VB on node3, VC on node2), with
/// what each costs, and each group monitors clean.
fn start_servers(w: &World) {
    sys::ok(&["mkfs.ext4", "-q", "-F", "-L", "export_vc", VC.dev]);
    for g in [&VA, &VB, &VC] {
        let _ = std::fs::create_dir_all(g.dir);
        let _ = std::fs::create_dir_all(g.mnt);
    }
    let mem_before = mem_available_kb();
    let nfsd_before = kernel_threads("nfsd");
    let ok = start(&w.node3, &VA, "setup")
        & start(&w.node3, &VB, "setup")
        & start(&w.node2, &VC, "setup");
    assert!(ok, "the virtual servers did not start");
    let (procs, rss) = server_kb(&w.node2, &VC, "status", "VmRSS:");
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
    for (h, g) in [(&w.node3, &VA), (&w.node3, &VB), (&w.node2, &VC)] {
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
        "vservers: node3's own network namespace has none of the servers' addresses",
        !w.node3.run(&["ip", "-o", "addr"]).stdout.contains(VA.vip),
        "",
    );
    // Every first start is a grace period too (each its own).
    let settled = wait_for(Duration::from_secs(60), || {
        !in_grace(&w.node3, &VA) && !in_grace(&w.node3, &VB) && !in_grace(&w.node2, &VC)
    });
    check(
        "vservers: the first grace periods end",
        settled.is_some(),
        "",
    );
}

/// The NFSv3 client writes to VA and holds locks on all three.
fn hold_v3(w: &mut World) {
    let (a_dev, b_dev, c_dev) = (rdev(VA.dev), rdev(VB.dev), rdev(VC.dev));
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
        w.node3.pid, VA.dir
    ))
    .map(|d| d.count())
    .unwrap_or(0);
    check(
        "vservers: VA's statd records its client on VA's own filesystem",
        records == 1,
        format!("{records} record(s)"),
    );
}

/// NFSv4.2 beside NFSv3; the mount points of VA, VB and VC over NFSv4.2.
fn hold_v4(w: &mut World) -> Vec<String> {
    let a_dev = rdev(VA.dev);
    // The same client mounts all three again, and on VA writes 1 MiB
    // (fsynced), holds a lock and keeps a file open.
    let v4: Vec<String> = [&VA, &VB, &VC]
        .iter()
        .map(|g| World::mount_v4(&w.client, g))
        .collect();
    let va4 = &v4[0];
    let wrote4 = w.data_at("write", &format!("{va4}/data4"), "8");
    let small = w.data_at("write", &format!("{va4}/deleg"), "5");
    let v4_held = w.hold(&format!("{va4}/f4")) && w.keep_open(&format!("{va4}/deleg"));
    // The client's lock is on the server, or under the write delegation
    // the server gave it for that file (the Linux client then locks
    // locally, and hands the lock to the server when it is recalled).
    let v4_seen = wait_for(Duration::from_secs(10), || {
        posix_locks_on(a_dev) >= 2 && v4_state_on(a_dev, 2) >= 2
    });
    check(
        "vservers: an NFSv4.2 client of VA wrote 1 MiB, holds a lock and a read delegation beside the NFSv3 client's 2 locks",
        wrote4.code == 0 && small.code == 0 && v4_held && v4_seen.is_some(),
        format!(
            "{} {}; {} byte-range locks, {} delegations on VA",
            wrote4.stdout.trim(),
            small.stdout.trim(),
            posix_locks_on(a_dev),
            delegations_on(a_dev)
        ),
    );
    let cld = format!("/proc/{}/root{}/.handoff-nfs/nfsdcld", w.node3.pid, VA.dir);
    check(
        "vservers: VA's nfsdcld keeps its NFSv4 client on VA's own filesystem",
        std::fs::read_dir(&cld).is_ok_and(|d| d.count() > 0),
        &cld,
    );

    v4
}

/// The lock loops of the groups that do not move, VB (same node) and VC
/// (the taking node), over NFSv3 and NFSv4.2, with a sampler of tasks
/// that wait.
struct Others {
    loops: Vec<(&'static str, Loop)>,
    /// VA's own client (a journal), for the timeline plot.
    va: Loop,
    since: SystemTime,
    sampler: sys::Sampler,
}

impl Others {
    fn start(w: &World, v4: &[String]) -> Others {
        let loops = vec![
            ("vb", Loop::on(&w.client, VB.mnt, "vb")),
            ("vc", Loop::on(&w.client, VC.mnt, "vc")),
            ("vb4", Loop::on(&w.client, &v4[1], "vb4")),
            ("vc4", Loop::on(&w.client, &v4[2], "vc4")),
        ];
        let va = Loop::journal(&w.client, VA.mnt, "va");
        std::thread::sleep(Duration::from_millis(500));
        // Pacemaker's recurring monitor, once VA's client is connected: it
        // records the connection for the taking node to tickle (the stop
        // adds what vip noted; after a crash this record is all there is).
        for (name, params) in members(&VA).iter().filter(|(n, _)| *n == "nfs-server") {
            let m = run_member(&w.node3, &VA, name, "monitor", params);
            check(
                "vservers: nfs-server of VA monitors 0 on node3 with its client writing",
                m.code == 0,
                m.reason(),
            );
        }
        Others {
            loops,
            va,
            since: SystemTime::now(),
            sampler: sys::Sampler::start(),
        }
    }

    /// Stop the loops without judging them (nothing after a failed step
    /// would mean anything).
    fn abandon(self) {
        for (_, l) in self.loops {
            let _ = l.finish();
        }
        let _ = self.va.finish();
        let _ = self.sampler.finish();
    }

    /// VB's and VC's clients saw no failure and no pause; the move's
    /// timeline plot.
    fn check(self, w: &World) {
        let (mut b_errors, mut c_errors, mut b_max, mut c_max) = (0, 0, 0.0f64, 0.0f64);
        let t0 = self.since - Duration::from_secs(1);
        let mut p = Plot::new(
            "va-move",
            "VA moves from node3 to node2 (its export and vip 25 s after its server); VB and VC stay",
        );
        let (va_summary, va) = self.va.finish_with_series();
        p.series(t0, "VA NFSv3 writes (moves, tickled)", &va);
        for (tag, l) in self.loops {
            let (d, points) = l.finish_with_series();
            let label = format!(
                "{} {} lock/unlock",
                tag[..2].to_uppercase(),
                if tag.ends_with('4') {
                    "NFSv4.2"
                } else {
                    "NFSv3"
                }
            );
            p.series(t0, &label, &points);
            let (errors, max) = summary(tag, &d);
            if tag.starts_with("vb") {
                b_errors += errors;
                b_max = b_max.max(max);
            } else {
                c_errors += errors;
                c_max = c_max.max(max);
            }
        }
        let logs = [
            ("node3", w.node3.read("/run/agents.log")),
            ("node2", w.node2.read("/run/agents.log")),
        ];
        let events = timeline::events_in(&logs, t0);
        p.spans(t0, &events, "va_");
        if let Some((down, up)) = timeline::address_down(&events, VA.id, "node3", "node2") {
            p.window(t0, "VA's address down", down, up);
            // What the tickles are for: without them the client waits out
            // its TCP back-off (27 s in this move before they were sent).
            let after = timeline::stall_after(&va_summary, up);
            metric("va_client_after_address_ms", after, "ms");
            check(
                "vservers: VA's writer resumed within 5 s of VA's address answering on node2 (tickled)",
                after < 5000.0,
                format!("{after:.0} ms after; {va_summary}"),
            );
        }
        plot(&p);
        let waits = self.sampler.finish();
        if b_max >= 1000.0 || c_max >= 1000.0 {
            note(format!(
                "tasks in D state during the move:\n{}",
                waits.join("\n")
            ));
        }
        check(
            "vservers: VB's and VC's clients (NFSv3 and NFSv4.2) saw no failed lock operation",
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
    }
}

/// VA stops on node3 and leaves nothing there; false if its stop failed.
fn release_va(w: &World) -> bool {
    let a_dev = rdev(VA.dev);
    let (b_dev, c_dev) = (rdev(VB.dev), rdev(VC.dev));
    let release = std::thread::scope(|scope| {
        let node3 = &w.node3;
        let job = scope.spawn(move || stop_members(node3, &VA, members(&VA)));
        if wait_for(Duration::from_secs(8), || job.is_finished()).is_none() {
            note(format!("VA's stop is slow; kernel stacks:\n{}", stacks()));
        }
        job.join().unwrap_or_default()
    });
    let (ok, detail) = all_ok(&release);
    if !check(
        "vservers: VA stops on node3 (vip, export, nfs-server, fs)",
        ok,
        &detail,
    ) {
        return false;
    }
    metric("va_release_ms", total_ms(&release), "ms");
    check(
        "vservers: VA's locks are gone from node3",
        locks_on(a_dev) == 0,
        format!("{} left", locks_on(a_dev)),
    );
    check(
        "vservers: VB's and VC's locks are still held",
        locks_on(b_dev) >= 1 && locks_on(c_dev) >= 1,
        format!("{} on VB, {} on VC", locks_on(b_dev), locks_on(c_dev)),
    );
    check(
        "vservers: nothing on node3 holds VA's disk any more",
        !w.node3.is_mounted(VA.dir)
            && device_free(VA.dev)
            && !std::path::Path::new(&netns_path(&w.node3, &VA)).exists(),
        "",
    );
    let woke = w
        .node3
        .read("/run/agents.log")
        .lines()
        .any(|l| l.contains("(va_nfs_server)") && l.contains("woke lockd through nfs-vb"));
    check(
        "vservers: node3 runs no NFS server of its own, and VA's stop woke lockd through VB's server",
        woke && w.node3.read("/proc/fs/nfsd/threads").trim() == "0",
        w.node3
            .read("/run/agents.log")
            .lines()
            .filter(|l| l.contains("lockd"))
            .collect::<Vec<_>>()
            .join(" | "),
    );
    true
}

/// VA starts on node2, its server long before its address, and its clients
/// reclaim; when it started, when the locks were back and when the grace
/// ended (None if it did not start).
#[allow(clippy::type_complexity)]
fn take_va_over(w: &World) -> Option<(Instant, Option<Duration>, Option<Duration>)> {
    let a_dev = rdev(VA.dev);
    // The group's export and vip start well after its server: longer than
    // the server's whole grace_time.
    let pause = Duration::from_secs(GRACE.parse::<u64>().unwrap_or(20) + 5);
    let takeover = start_members_paused(&w.node2, &VA, members(&VA), Some(("nfs-server", pause)));
    let taken = Instant::now();
    let (ok, detail) = all_ok(&takeover);
    if !check("vservers: VA starts on node2 beside VC", ok, &detail) {
        return None;
    }
    metric("va_takeover_ms", total_ms(&takeover), "ms");
    // 2 NLM locks, and the NFSv4 client's lock and delegations (nfsd ends
    // NFSv4's grace once that client said RECLAIM_COMPLETE).
    let reclaimed = wait_for(Duration::from_secs(60), || {
        posix_locks_on(a_dev) >= 2 && v4_state_on(a_dev, 2) >= 2
    });
    let helper_log = || {
        w.node2
            .read("/run/agents.log")
            .lines()
            .filter(|l| l.contains("(va_nfs_server)"))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    check(
        "vservers: the clients reclaim their locks on VA at node2 (2 NFSv3, and the NFSv4.2 client's lock and delegations), though VA's vip started after its server's grace_time",
        reclaimed.is_some(),
        format!(
            "{} byte-range locks, {} delegations on VA; node2 log: {}",
            posix_locks_on(a_dev),
            delegations_on(a_dev),
            helper_log()
        ),
    );
    // The release recorded 2 locks: the grace ends once they are back.
    let ended = wait_for(Duration::from_secs(60), || !in_grace(&w.node2, &VA));
    if let (Some(_), Some(e)) = (reclaimed, ended) {
        metric(
            "va_grace_end_after_reclaim_ms",
            e.as_secs_f64() * 1000.0,
            "ms",
        );
    }
    if !check(
        "vservers: VA's grace period ends as soon as its locks are back, not grace_time later",
        ended.is_some() && helper_log().contains("every client reclaimed"),
        helper_log(),
    ) {
        note(format!(
            "VA's grace: {}; stacks:\n{}",
            grace_files(&w.node2, &VA),
            stacks()
        ));
    }
    Some((taken, reclaimed, ended))
}

/// What the NFSv4.2 client finds on VA after the move.
fn after_move(w: &World, va4: &str) {
    let a_dev = rdev(VA.dev);
    let back4 = w.data_at("verify", &format!("{va4}/data4"), "8");
    check(
        "vservers: the NFSv4.2 client reads back every byte it wrote to VA",
        back4.code == 0,
        back4.stdout.trim(),
    );
    metric(
        "va_delegations_after_move",
        delegations_on(a_dev) as f64,
        "delegations",
    );
    // Another client's lock on the NFSv4 client's locked file is refused
    // (once VA's grace is over it is answered at once).
    let probe = probe_from_another_client(("client2", "192.0.2.51"), &VA, "f4");
    check(
        "vservers: another client's conflicting lock on the NFSv4 client's file is refused after the move",
        probe.stdout.trim() == "REFUSED",
        format!("{} {}", probe.stdout.trim(), probe.stderr.trim()),
    );
    // The other client's open recalled the delegation: the lock is the
    // server's now.
    check(
        "vservers: the server's lock table shows the NFSv4 client's lock on VA",
        wait_for(Duration::from_secs(10), || posix_locks_on(a_dev) == 3).is_some(),
        format!("{} byte-range locks on VA", posix_locks_on(a_dev)),
    );
}

/// VA monitors clean on node2 and grants a new lock at once after its grace.
fn va_serves_on_node2(w: &World, grace_ended: bool) {
    for (name, params) in members(&VA) {
        let m = run_member(&w.node2, &VA, name, "monitor", &params);
        check(
            &format!("vservers: {name} of VA monitors 0 on node2"),
            m.code == 0,
            m.reason(),
        );
    }
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
        grace_ended && probe.code == 0 && probe.ms() < 5000.0,
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
    // And over NFSv4.2: a lock on NA, a stream of locks on NC.
    let na4 = World::mount_v4(&w.client, &NA);
    let nc4 = World::mount_v4(&w.client, &NC);
    let held4 = w.hold(&format!("{na4}/f4"));
    check(
        "nodewide: an NFSv4.2 client holds a lock on NA too",
        held4 && wait_for(Duration::from_secs(10), || v4_state_on(a_dev, 1) >= 1).is_some(),
        format!(
            "{} byte-range locks, {} delegations on NA",
            posix_locks_on(a_dev),
            delegations_on(a_dev)
        ),
    );
    let on_c = Loop::on(&w.client, NC.mnt, "nc");
    let on_c4 = Loop::on(&w.client, &nc4, "nc4");
    std::thread::sleep(Duration::from_millis(500));
    let stopped = stop_members(&w.node1, &NA, group(&NA, "existing"));
    // A kernel whose unlock_filesystem revokes no NFSv4 state (6.1): the
    // node-wide server cannot let go of NA while the NFSv4.2 client holds
    // its lock, and nlm-locks must refuse and say so. Once that client
    // lets go (and unmounts, returning its delegation), the stop completes.
    let v4_kept = stopped
        .iter()
        .find(|(a, d)| *a == "nlm-locks" && d.code != 0)
        .map(|(_, d)| d.reason())
        .filter(|r| r.contains("revokes no NFSv4 state"));
    let stopped = if let Some(reason) = v4_kept {
        check(
            "nodewide: nlm-locks refuses to release NA under NFSv4 state this kernel cannot revoke, and says why",
            reason.contains("virtual NFS server"),
            reason,
        );
        // NA's address is gone: its NFSv4 client could not reach the
        // server to let go. Bring its export and address back (not
        // nlm-locks: its start would tell the NFSv3 client to reclaim, on
        // a server out of grace), let the client release its lock and
        // unmount, then stop again.
        let back: Members = group(&NA, "existing")
            .into_iter()
            .filter(|(a, _)| matches!(*a, "export" | "vip"))
            .collect();
        let (ok, detail) = all_of_ok(&start_members(&w.node1, &NA, back), 2);
        check(
            "nodewide: NA's NFSv4.2 client reaches node1 again after the refused stop",
            ok,
            detail,
        );
        if let Some(mut holder) = w.holders.pop() {
            let _ = holder.kill();
            let _ = holder.wait();
        }
        w.client.ok(&["umount", &na4]);
        stop_members(&w.node1, &NA, group(&NA, "existing"))
    } else {
        stopped
    };
    let (ok, detail) = all_ok(&stopped);
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
    let reclaimed = wait_for(Duration::from_secs(60), || posix_locks_on(a_dev) >= 1);
    check(
        "nodewide: NA's NFSv3 client reclaims its lock on node2",
        reclaimed.is_some(),
        format!("{} on NA", posix_locks_on(a_dev)),
    );
    // The NFSv4 client finds another server (node2's scope): whether its
    // lock still holds is what another client's attempt shows. Reported,
    // for the README's comparison.
    let probe = probe_from_another_client(("client3", "192.0.2.52"), &NA, "f4");
    let kept4 = probe.stdout.trim() == "REFUSED";
    note(format!(
        "nodewide: NA's NFSv4.2 lock after the move: {} (another client's lock: {} {})",
        if kept4 { "kept" } else { "lost" },
        probe.stdout.trim(),
        probe.stderr.trim()
    ));
    metric(
        "nodewide_na_v4_lock_kept",
        if kept4 { 1.0 } else { 0.0 },
        "locks",
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
        d.starts_with('Y') && !w.node2.in_grace()
    });
    std::thread::sleep(Duration::from_secs(1));
    let (errors, max) = summary("nc", &on_c.finish());
    let (errors4, max4) = summary("nc4", &on_c4.finish());
    metric("nodewide_nc_blocked_max_ms", max, "ms");
    metric("nodewide_nc_v4_blocked_max_ms", max4, "ms");
    note(format!(
        "nodewide: NC's NFSv4.2 client: {errors4} errors, slowest {max4:.0} ms"
    ));
    check(
        "nodewide: NC's client is blocked for the grace period (> 10 s)",
        errors == 0 && max > 10_000.0,
        format!("{errors} errors, slowest {max:.0} ms"),
    );
}
